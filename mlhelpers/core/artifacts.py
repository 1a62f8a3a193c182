"""The files steps talk through: the one registry of step -> notebook -> folder -> files, atomic writes, checked reads.

A step reads only earlier steps' artifacts, never their in-memory state. Every JSON artifact
carries ``schema_version``; docs/artifacts.md documents each one. Every path the workspace writes
into a run folder comes from here (``artifact_path``, ``step_dir``, ``artifact_file``).
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Step:
    """One pipeline step: its notebook and the folder of the run folder it writes."""

    name: str
    notebook: str
    folder: str


# The pipeline's steps in order; a step reads only the folders of the steps before it.
STEPS = {step.name: step for step in (
    Step("explore", "01_explore.ipynb", "explore"),
    Step("baseline", "02_baseline.ipynb", "baseline"),
    Step("export", "03_export.ipynb", "model"),
)}

# Artifact -> (the step that writes it, its path inside the run folder).
ARTIFACTS = {
    "eda": ("explore", "explore/eda.json"),
    "profile": ("explore", "explore/profile.html"),
    "leaderboard": ("baseline", "baseline/leaderboard.csv"),
    "cv_results": ("baseline", "baseline/cv_results.json"),
    "model_spec": ("baseline", "baseline/model_spec.json"),
    "split": ("baseline", "baseline/split.json"),
    "full_model": ("baseline", "baseline/xgboost_full.skops"),  # engine dask: XGBoost trained on every training row
    "metrics": ("export", "model/metrics.json"),
    "input_schema": ("export", "model/input_schema.json"),
    "serving_report": ("export", "model/serving_report.json"),
    "model_skops": ("export", "model/model.skops"),
    "model_onnx": ("export", "model/model.onnx"),
    "model_card": ("export", "model/model_card.md"),
    "predictions": ("export", "scoring/predictions.csv"),   # the data file scored as a demo
    "prediction_parts": ("export", "scoring/predictions"),  # ... on engine dask: a folder of Parquet parts
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
    """The step's own folder in the run folder, created if needed."""
    folder = Path(run_dir) / STEPS[step].folder
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

    A crash leaves the old file (or none), never a half-written one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    temp_path = Path(temp)
    try:
        yield temp_path
        os.replace(temp_path, path)
    finally:
        temp_path.unlink(missing_ok=True)


def write_json(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (with ``schema_version`` first) atomically as pretty JSON."""
    body = {"schema_version": SCHEMA_VERSION} | {k: v for k, v in payload.items() if k != "schema_version"}
    with atomic_path(path) as temp:
        temp.write_text(json.dumps(body, indent=2, default=_to_builtin) + "\n", encoding="utf-8")
    return Path(path)


def _to_builtin(value: Any) -> Any:
    # numpy scalars and arrays, paths and timestamps come up in every artifact
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def read_artifact(run_dir: str | Path, name: str) -> dict[str, Any]:
    """Read an earlier step's JSON artifact; if it is missing, say which step to run first."""
    path = artifact_path(run_dir, name)
    step = STEPS[ARTIFACTS[name][0]]
    if not path.exists():
        raise MissingArtifactError(
            f"{path} is missing: run the {step.name} step first (notebooks/{step.notebook}, "
            f"or `mlh run <params> --steps {step.name}`) with the same run_dir.")
    payload = json.loads(path.read_text(encoding="utf-8"))
    version = payload.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ValueError(f"{path} has schema_version {version!r}, this code reads {SCHEMA_VERSION}; "
                         f"rerun the {step.name} step.")
    return payload


def save_figure(fig, run_dir: str | Path, step: str, name: str, dpi: int = 110) -> Path:
    """Write ``fig`` as ``<run_dir>/<step folder>/<name>.png`` atomically and return the path."""
    path = step_dir(run_dir, step) / f"{name}.png"
    with atomic_path(path) as temp:
        fig.savefig(temp, format="png", dpi=dpi, bbox_inches="tight")
    return path
