"""The runs to compare: run folders (or a sweep folder's variants) read through their artifacts, and the check
that they predict the same target from the same data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mlhelpers.compare import CompareError
from mlhelpers.core.artifacts import MANIFEST, SCHEMA_VERSION, SWEEP, artifact_path

__all__ = ["RunInfo", "expand_run_dirs", "load_run", "load_runs", "check_comparable"]

# Parameters that differ between any two runs by construction: never "a difference" worth showing.
_OWN_KEYS = {"run_dir", "mlflow_parent_run_id"}


@dataclass
class RunInfo:
    """What one run folder holds, as far as a comparison needs it (None where a step did not run)."""

    path: Path
    label: str                                   # how tables and figures name the run
    status: str                                  # succeeded | failed | running (manifest), or "no manifest"
    params: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    data: tuple | None = None                    # (sha256, data_query) from the manifest
    seconds: float | None = None
    eda: dict[str, Any] | None = None
    cv_results: dict[str, Any] | None = None
    spec: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    explore_reused_from: str | None = None

    @property
    def target(self) -> str | None:
        return (self.spec or self.eda or {}).get("target")

    @property
    def task(self) -> str | None:
        return (self.spec or self.eda or {}).get("task")

    @property
    def model(self) -> str | None:
        """The run's model: the exported one, else the one the baseline selected."""
        if self.metrics:
            return self.metrics.get("model")
        return (self.cv_results or {}).get("selected")

    @property
    def classes(self) -> list | None:
        return (self.spec or self.eda or {}).get("classes")

    def out_of_fold(self) -> pd.DataFrame | None:
        """The selected model's out-of-fold predictions (``baseline/oof_predictions.parquet``), if written."""
        path = artifact_path(self.path, "oof_predictions")
        return pd.read_parquet(path) if path.is_file() else None


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise CompareError(f"{path} is unreadable ({error}); rerun the step that writes it.") from None
    if payload.get("schema_version") != SCHEMA_VERSION:
        raise CompareError(f"{path} has schema_version {payload.get('schema_version')!r}, this code reads "
                           f"{SCHEMA_VERSION}; rerun the step that writes it.")
    return payload


def expand_run_dirs(paths: list[str | Path]) -> list[Path]:
    """Run folders from ``paths``: a sweep folder (holding ``sweep.json``) stands for its variants, in order.

    Raises ``CompareError`` for a path that is neither a run folder nor a sweep folder."""
    found: list[Path] = []
    for path in map(Path, paths):
        sweep = _read_json(path / SWEEP)
        if sweep is not None:
            found += [path / entry["run"] for entry in sweep.get("runs", []) if (path / entry["run"]).is_dir()]
        elif (path / MANIFEST).is_file() or (path / "explore").is_dir() or (path / "baseline").is_dir():
            found.append(path)
        else:
            raise CompareError(f"{path} is neither a run folder (with {MANIFEST} or explore/, baseline/) nor a sweep "
                               f"folder (with {SWEEP}); pass run folders such as runs/demo/<run-id>, or a sweep folder.")
    return list(dict.fromkeys(path.resolve() for path in found))


def _labels(paths: list[Path]) -> list[str]:
    """Short unique names: the folder name when the runs share a parent, else parent/name."""
    if len({path.parent for path in paths}) <= 1:
        return [path.name for path in paths]
    return [f"{path.parent.name}/{path.name}" for path in paths]


def load_run(path: Path, label: str | None = None) -> RunInfo:
    """Read one run folder's manifest and artifacts (those that exist)."""
    manifest = _read_json(path / MANIFEST)
    info = RunInfo(path=path, label=label or path.name, status=(manifest or {}).get("status", "no manifest"))
    if manifest:
        info.params = {k: v for k, v in manifest.get("params", {}).items() if k not in _OWN_KEYS}
        info.overrides = manifest.get("overrides") or {}
        data = manifest.get("data") or {}
        info.data = (data.get("sha256"), info.params.get("data_query"))
        info.seconds = manifest.get("seconds")
        info.explore_reused_from = (manifest.get("steps", {}).get("explore") or {}).get("reused_from")
    info.eda = _read_json(artifact_path(path, "eda"))
    info.cv_results = _read_json(artifact_path(path, "cv_results"))
    info.spec = _read_json(artifact_path(path, "model_spec"))
    info.metrics = _read_json(artifact_path(path, "metrics"))
    return info


def load_runs(paths: list[str | Path]) -> list[RunInfo]:
    """Every run of ``paths`` (a sweep folder stands for its variants), checked to be comparable
    (``check_comparable``)."""
    folders = expand_run_dirs(paths)
    if not folders:
        raise CompareError(f"no run folder in {', '.join(map(str, paths))}: the sweep has not started a variant yet.")
    runs = [load_run(folder, label) for folder, label in zip(folders, _labels(folders))]
    check_comparable(runs)
    return runs


def check_comparable(runs: list[RunInfo]) -> None:
    """Refuse runs that predict different targets (or tasks), or learn from different data, and a set of runs
    none of which has baseline results."""
    if not any(run.cv_results for run in runs):
        raise CompareError("none of the runs has baseline results (baseline/cv_results.json): run the baseline step "
                           f"first ({', '.join(run.label for run in runs)}).")
    for what, value_of in (("targets", lambda r: r.target), ("tasks", lambda r: r.task)):
        values = {run.label: value_of(run) for run in runs if value_of(run) is not None}
        if len(set(values.values())) > 1:
            raise CompareError(f"the runs predict different {what} ({_listing(values)}): compare runs of one target "
                               "and task only.")
    data = {run.label: run.data for run in runs if run.data is not None}
    if len(set(data.values())) > 1:
        shown = {label: f"sha256 {sha[:12]}" + (f", query {query!r}" if query else "") for label, (sha, query) in data.items()}
        raise CompareError(f"the runs learned from different data ({_listing(shown)}): compare runs of the same data "
                           "file (and data_query) only.")
    shapes = {run.label: (run.eda.get("n_rows"), tuple(run.eda.get("columns", {}))) for run in runs if run.eda}
    if len(set(shapes.values())) > 1:
        shown = {label: f"{rows} rows, {len(columns)} columns" for label, (rows, columns) in shapes.items()}
        raise CompareError(f"the runs explored different tables ({_listing(shown)}): compare runs of the same data only.")


def _listing(values: dict[str, Any]) -> str:
    return "; ".join(f"{label}: {value}" for label, value in values.items())
