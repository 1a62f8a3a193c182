"""The runs under a runs root as ``mlh runs`` lists them: status (a vanished process shown as interrupted), duration
and each run's headline metric, read from the manifests and artifacts the pipeline wrote."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from mlhelpers.core.artifacts import MANIFEST, artifact_path
from mlhelpers.lifecycle import read_manifest, shown_status

__all__ = ["headline_metric", "list_runs"]


def headline_metric(run_dir: Path) -> str:
    """The run's key figure: the test score if exported, else the best cross-validated score ("-" if none,
    or if the files holding it are unreadable)."""
    try:
        metrics_path = artifact_path(run_dir, "metrics")
        if metrics_path.exists():
            metrics = json.loads(metrics_path.read_text())
            name = metrics.get("primary_metric")
            value = metrics.get("test", {}).get(name)
            if value is not None:
                return f"test {name} {value:.4f}"
        spec_path = artifact_path(run_dir, "model_spec")
        if spec_path.exists():
            spec = json.loads(spec_path.read_text())
            name = spec.get("primary_metric")
            score = spec.get("cv", {}).get(name, {})
            if "mean" in score:
                return f"cv {name} {score['mean']:.4f} ± {score.get('std', 0):.4f} ({spec.get('model')})"
    except (OSError, ValueError, TypeError, AttributeError):
        return "- (metrics unreadable)"
    return "-"


# A run folder's name: the start time, and a counter when two runs started in the same second.
_RUN_ID = re.compile(r"\d{8}-\d{6}(-\d+)?")


def list_runs(runs_root: Path) -> list[dict[str, Any]]:
    """Every run under ``runs_root`` (newest first): name, id, status, duration, headline metric.

    A run whose process is gone while its manifest says running is ``interrupted``; a run folder whose
    manifest is missing or corrupt is listed as ``unreadable`` with the problem and its path, never skipped.
    """
    rows = []
    folders = {path.parent for pattern in (f"*/*/{MANIFEST}", f"*/sweep-*/*/{MANIFEST}")
               for path in runs_root.glob(pattern)}
    folders |= {path for pattern in ("*/*", "*/sweep-*/*") for path in runs_root.glob(pattern)
                if path.is_dir() and _RUN_ID.fullmatch(path.name)}
    for run_dir in folders:
        row = {"run": run_dir.relative_to(runs_root).as_posix(), "path": str(run_dir), "steps": "", "seconds": None}
        try:
            manifest = read_manifest(run_dir)
        except ValueError as exc:
            rows.append(row | {"status": "unreadable", "started": "", "headline": str(exc)})
            continue
        seconds = manifest.get("seconds")
        started = manifest.get("started_at")
        steps = manifest.get("steps")
        status = shown_status(manifest)
        headline = headline_metric(run_dir)
        error = manifest.get("error")
        if status == "failed" and isinstance(error, dict):
            headline = f"{headline}; {error.get('step')}: {str(error.get('message'))[:80]}"
        rows.append(row | {
            "status": status,
            "steps": ",".join(steps) if isinstance(steps, dict) else "",
            "started": started if isinstance(started, str) else "",
            "seconds": seconds if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) else None,
            "headline": headline,
        })
    return sorted(rows, key=lambda row: (row["started"], row["run"]), reverse=True)
