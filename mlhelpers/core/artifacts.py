"""The files steps talk through: the one registry of step -> notebook -> folder -> files, atomic writes, checked reads.

A step reads only earlier steps' artifacts, never their in-memory state. Every JSON artifact
carries ``schema_version``; docs/artifacts.md documents each one. Every path the workspace writes
into a run folder comes from here (``artifact_path``, ``step_dir``, ``artifact_file``).
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"   # in every run folder `mlh run` or `mlh sweep` makes
SWEEP = "sweep.json"         # in a sweep folder: its variants (run folders), their overrides and statuses


@dataclass(frozen=True)
class Step:
    """One pipeline step: its notebook and the folder of the run folder it writes."""

    name: str
    notebook: str
    folder: str


# The pipeline's steps in order (what `mlh run` sequences); a step reads only the folders of the steps before it.
STEPS = {step.name: step for step in (
    Step("explore", "01_explore.ipynb", "explore"),
    Step("baseline", "02_baseline.ipynb", "baseline"),
    Step("export", "03_export.ipynb", "model"),
)}
# The notebooks that run after a pipeline, on its results, each into an output folder of its own (the folder
# is that output folder itself): `mlh compare` (runs or a sweep side by side) and `mlh drift` (new data
# against an exported model's reference). They are not pipeline steps: `mlh run` never runs them.
AFTER_STEPS = {step.name: step for step in (
    Step("compare", "04_compare.ipynb", ""),
    Step("monitor", "05_monitor.ipynb", ""),
)}
# Every notebook in notebooks/, in the order Run All (and nbval) takes them.
NOTEBOOK_STEPS = STEPS | AFTER_STEPS

# Artifact -> (the step that writes it, its path inside the run folder).
ARTIFACTS = {
    "eda": ("explore", "explore/eda.json"),
    "data_fingerprint": ("explore", "explore/data.json"),   # the data file explore read: path, sha256, bytes
    "profile": ("explore", "explore/profile.html"),
    "leaderboard": ("baseline", "baseline/leaderboard.csv"),
    "cv_results": ("baseline", "baseline/cv_results.json"),
    "model_spec": ("baseline", "baseline/model_spec.json"),
    "split": ("baseline", "baseline/split.json"),
    "full_model": ("baseline", "baseline/xgboost_full.skops"),  # engine dask: XGBoost trained on every training row
    "oof_predictions": ("baseline", "baseline/oof_predictions.parquet"),  # the selected model's, per training row
    # engine dask: the zoo's seeded sample and a seeded sample of the held-out rows, as drawn; export's rows
    "dask_sample": ("baseline", "baseline/sample.parquet"),
    "holdout_sample": ("baseline", "baseline/holdout_sample.parquet"),
    "metrics": ("export", "model/metrics.json"),
    "input_schema": ("export", "model/input_schema.json"),
    "serving_report": ("export", "model/serving_report.json"),
    "model_skops": ("export", "model/model.skops"),
    "model_onnx": ("export", "model/model.onnx"),
    # the same graph gzip-compressed, written instead of model.onnx when it is large (formats.onnx_io.save_onnx)
    "model_onnx_gz": ("export", "model/model.onnx.gz"),
    "model_card": ("export", "model/model_card.md"),
    "reference": ("export", "model/reference.json"),  # compact summary of the training data, for drift checks
    "predictions": ("export", "scoring/predictions.csv"),   # the data file scored as a demo
    "prediction_parts": ("export", "scoring/predictions"),  # ... on engine dask: a folder of Parquet parts
    # in the output folder of an after-pipeline notebook
    "comparison": ("compare", "comparison.csv"),
    "drift_report": ("monitor", "drift_report.json"),
}


class MissingArtifactError(FileNotFoundError):
    """An earlier step's artifact is absent: the message says which step to run first."""


def artifact_file(name: str) -> str:
    """The named artifact's file name, e.g. inside a model folder (``"model_skops"`` -> ``"model.skops"``)."""
    return Path(ARTIFACTS[name][1]).name


def artifact_path(run_dir: str | Path, name: str) -> Path:
    """Where the named artifact lives in ``run_dir``."""
    return Path(run_dir) / ARTIFACTS[name][1]


def step_dir(run_dir: str | Path, step: str) -> Path:
    """The step's own folder in the run folder (an after-pipeline notebook's: its output folder), created if needed."""
    folder = Path(run_dir) / NOTEBOOK_STEPS[step].folder
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def relative_to_run(path: str | Path, run_dir: str | Path) -> str:
    """``path`` as a reader of the run folder sees it: relative to ``run_dir`` when inside it."""
    path, run_dir = Path(path), Path(run_dir)
    try:
        return path.resolve().relative_to(run_dir.resolve()).as_posix()
    except ValueError:
        return str(path)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it into place only if the block succeeds.

    A crash leaves the old file (or none), never a half-written one. The file gets the permissions any
    file the user creates gets (``0o666`` less the umask), or those of the file it replaces.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp_path = _new_temp_file(path)
    try:
        yield temp_path
        if path.exists():
            os.chmod(temp_path, stat.S_IMODE(path.stat().st_mode))
        os.replace(temp_path, path)
    finally:
        temp_path.unlink(missing_ok=True)


def _new_temp_file(path: Path) -> Path:
    # Not tempfile.mkstemp: it creates files with mode 0600 whatever the umask, so every artifact would be
    # private to its owner; os.open with 0o666 applies the umask the way every other program's files get it.
    for _ in range(100):
        temp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return temp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file next to {path}")


def write_json(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (with ``schema_version`` first) atomically as pretty, strict JSON.

    NaN and infinities are not JSON (Python's own reader accepts them, most others do not): a payload
    holding one raises ``ValueError`` naming the key, so whoever writes it decides what it means (usually null).
    """
    body = {"schema_version": SCHEMA_VERSION} | {k: v for k, v in payload.items() if k != "schema_version"}
    try:
        text = json.dumps(body, indent=2, default=_to_builtin, allow_nan=False)
    except ValueError:
        raise ValueError(f"{Path(path).name}: {_non_finite_key(body)} is not a finite number; JSON has no NaN or "
                         "infinity: write None (null) for an undefined value.") from None
    with atomic_path(path) as temp:
        temp.write_text(text + "\n", encoding="utf-8")
    return Path(path)


def finite_or_none(value: Any) -> Any:
    """``value`` with every NaN and infinity (in nested dicts, lists and arrays) replaced by None, for the
    artifacts where a number can be undefined: a score of a fold that holds one class, a range of a column
    with no value. JSON writes that as null, which every reader understands (NaN is not JSON)."""
    import math

    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(item) for item in value]
    return value


def _non_finite_key(value: Any, where: str = "") -> str:
    """The dotted key of the first NaN or infinity in ``value`` (for the error message)."""
    import math

    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return where or "the value"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, (list, tuple)) else ()
    for key, item in items:
        found = _non_finite_key(item, f"{where}.{key}" if where else str(key))
        if found:
            return found
    return ""


def _to_builtin(value: Any) -> Any:
    # numpy scalars and arrays, paths and timestamps come up in every artifact
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


class ArtifactError(ValueError):
    """A JSON file the workspace wrote is unreadable (truncated, edited, not an object): the message names
    the file and which step to rerun."""


def read_json_file(path: str | Path, fix: str) -> dict[str, Any]:
    """A JSON object from ``path``; a file that is not one (cut short, edited by hand, not UTF-8, a list)
    raises ``ArtifactError`` naming the file, what is wrong and ``fix`` (e.g. "rerun the explore step")."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ArtifactError(f"{path} is not a readable JSON file (byte {exc.start} is not UTF-8); {fix}.") from None
    except json.JSONDecodeError as exc:
        cut = exc.pos >= len(exc.doc.rstrip()) or exc.msg.startswith("Unterminated")
        problem = "it ends early: truncated" if cut else f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
        raise ArtifactError(f"{path} is corrupt: not valid JSON ({problem}); {fix}.") from None
    if not isinstance(payload, dict):
        raise ArtifactError(f"{path} is corrupt: it holds a JSON {type(payload).__name__}, not an object; {fix}.")
    return payload


def read_artifact(run_dir: str | Path, name: str) -> dict[str, Any]:
    """Read an earlier step's JSON artifact; if it is missing, say which step to run first; if it is corrupt,
    say which step to rerun (``ArtifactError``)."""
    path = artifact_path(run_dir, name)
    step = NOTEBOOK_STEPS[ARTIFACTS[name][0]]
    if not path.exists():
        how = (f"or `mlh run <params> --steps {step.name}`) with the same run_dir" if step.name in STEPS
               else "or its `mlh` command) into this folder")
        raise MissingArtifactError(f"{path} is missing: run the {step.name} step first (notebooks/{step.notebook}, {how}.")
    payload = read_json_file(path, f"rerun the {step.name} step (notebooks/{step.notebook}, or `mlh run <params>` "
                                   f"from that step on) into a new run folder")
    version = payload.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ArtifactError(f"{path} has schema_version {version!r}, this code reads {SCHEMA_VERSION}; "
                            f"rerun the {step.name} step.")
    return payload


def save_figure(fig, run_dir: str | Path, step: str, name: str, dpi: int = 110) -> Path:
    """Write ``fig`` as ``<run_dir>/<step folder>/<name>.png`` atomically and return the path.

    In a notebook (matplotlib's inline backend) the PNG just written is shown and the figure closed:
    the backend would otherwise draw the figure again at the cell's end, which takes as long as writing
    it (measured: 3 s of the explore step's 6 s of figures on 300k flight rows, loaded machine).
    Elsewhere the figure stays open for the caller.
    """
    path = step_dir(run_dir, step) / f"{name}.png"
    with atomic_path(path) as temp:
        fig.savefig(temp, format="png", dpi=dpi, bbox_inches="tight")
    _show_in_notebook(fig, path, dpi)
    return path


def _show_in_notebook(fig, path: Path, dpi: int) -> None:
    import sys

    if "matplotlib_inline" not in sys.modules:  # no notebook kernel has set matplotlib up
        return
    import matplotlib
    import matplotlib.pyplot as plt

    if "inline" not in matplotlib.get_backend():
        return
    from IPython.display import Image, display

    data = path.read_bytes()
    pixels = int.from_bytes(data[16:20], "big")  # the PNG header's width
    display(Image(data=data, format="png", width=round(pixels * 100 / dpi)))  # as wide as the inline backend's 100 dpi
    plt.close(fig)
