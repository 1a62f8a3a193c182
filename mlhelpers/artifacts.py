"""The files steps talk through: where each lives in a run folder, atomic writes, checked reads.

A step reads only earlier steps' artifacts, never their in-memory state. Every JSON artifact
carries ``schema_version``; docs/artifacts.md documents each one.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

SCHEMA_VERSION = 1

# Artifact -> (path inside the run folder, the step that writes it, its notebook).
ARTIFACTS = {
    "eda": ("explore/eda.json", "explore", "01_explore.ipynb"),
    "leaderboard": ("baseline/leaderboard.csv", "baseline", "02_baseline.ipynb"),
    "cv_results": ("baseline/cv_results.json", "baseline", "02_baseline.ipynb"),
    "model_spec": ("baseline/model_spec.json", "baseline", "02_baseline.ipynb"),
    "split": ("baseline/split.json", "baseline", "02_baseline.ipynb"),
    "metrics": ("model/metrics.json", "export", "03_export.ipynb"),
    "input_schema": ("model/input_schema.json", "export", "03_export.ipynb"),
    "serving_report": ("model/serving_report.json", "export", "03_export.ipynb"),
}


class MissingArtifactError(FileNotFoundError):
    """An earlier step's artifact is absent: the message says which step to run first."""


def artifact_path(run_dir: str | Path, name: str) -> Path:
    """Where the named artifact lives in ``run_dir``."""
    return Path(run_dir) / ARTIFACTS[name][0]


def step_dir(run_dir: str | Path, step: str) -> Path:
    """The step's own folder in the run folder, created if needed."""
    folder = Path(run_dir) / ("model" if step == "export" else step)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


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
    if not path.exists():
        _, step, notebook = ARTIFACTS[name]
        raise MissingArtifactError(
            f"{path} is missing: run the {step} step first (notebooks/{notebook}, "
            f"or `mlh run <params> --steps {step}`) with the same run_dir.")
    payload = json.loads(path.read_text(encoding="utf-8"))
    version = payload.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ValueError(f"{path} has schema_version {version!r}, this code reads {SCHEMA_VERSION}; "
                         f"rerun the {ARTIFACTS[name][1]} step.")
    return payload
