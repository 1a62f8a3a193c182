"""The comparison in tables: the parameters that differ, one row per run (``comparison.csv``) and the verdict
on the best run: is its lead larger than the cross-validation spread?
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlhelpers.compare.runs import RunInfo
from mlhelpers.core.artifacts import artifact_path, atomic_path, relative_to_run
from mlhelpers.core.metrics import LOWER_IS_BETTER

__all__ = ["comparison_metric", "differing_params", "comparison_table", "write_comparison", "verdict"]


def comparison_metric(runs: list[RunInfo]) -> str:
    """The primary metric the runs are compared on: theirs when they agree, else the commonest (every run of a
    task records every metric of it, so each run has a score on it)."""
    metrics = Counter(run.cv_results["primary_metric"] for run in runs if run.cv_results)
    return metrics.most_common(1)[0][0]


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def differing_params(runs: list[RunInfo]) -> pd.DataFrame:
    """The parameters whose values differ between the runs (only those), one row per run; a one-row note when
    none differs or the runs have no manifest (notebooks run by hand)."""
    known = [run for run in runs if run.params]
    keys = sorted({key for run in known for key in run.params})
    differing = [key for key in keys if len({_shown(run.params.get(key)) for run in known}) > 1]
    if len(runs) == 1:
        return pd.DataFrame({"note": [f"one run ({runs[0].label}): no other run to differ from"]})
    if not differing:
        note = ("every run has the same parameters" if len(known) == len(runs)
                else f"{len(runs) - len(known)} run(s) have no manifest.json (notebooks run by hand): their parameters "
                     "are unknown; the others share theirs")
        return pd.DataFrame({"note": [note]})
    return pd.DataFrame([{"run": run.label} | {key: _shown(run.params.get(key, "?")) if run.params else "?"
                                               for key in differing} for run in runs]).set_index("run")


def _cv(run: RunInfo, model: str | None, metric: str) -> tuple[float | None, float | None, float | None]:
    result = ((run.cv_results or {}).get("models") or {}).get(model or "")
    if not result or metric not in result.get("fold_scores", {}):
        return None, None, None
    folds = np.asarray(result["fold_scores"][metric], dtype=float)
    fit = result.get("fit_seconds")
    return float(folds.mean()), float(folds.std()), float(np.mean(fit)) if fit else None


def comparison_table(runs: list[RunInfo], metric: str) -> pd.DataFrame:
    """One row per run: its folder, overrides, model, the primary metric's CV mean and std and the test score,
    the run's seconds and the model's mean fit seconds per fold. What ``comparison.csv`` holds."""
    rows = []
    for run in runs:
        model = run.model
        mean, std, fit = _cv(run, model, metric)
        test = (run.metrics or {}).get("test", {}).get(metric)
        rows.append({"run": run.label, "run_folder": str(run.path), "status": run.status,
                     "overrides": "; ".join(f"{k}={_shown(v)}" for k, v in run.overrides.items()),
                     "model": model, "metric": metric, "cv_mean": mean, "cv_std": std, "test": test,
                     "seconds": run.seconds, "fit_seconds": fit})
    return pd.DataFrame(rows).set_index("run")


def write_comparison(table: pd.DataFrame, output_dir: str | Path) -> pd.DataFrame:
    """Write ``comparison.csv`` into ``output_dir`` (run folders relative to it when inside); return a table
    naming the file and its rows."""
    path = artifact_path(output_dir, "comparison")
    written = table.reset_index()
    written["run_folder"] = [relative_to_run(folder, output_dir) for folder in written["run_folder"]]
    with atomic_path(path) as temp:
        written.to_csv(temp, index=False)
    return pd.DataFrame({"file": [path.name], "rows": [len(written)], "holds": ["one row per run, the table above"]})


def verdict(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The best run by CV mean and whether its lead over the runner-up exceeds the CV spread (the larger of the
    two standard deviations over the folds): one row, with the sentence a reader needs."""
    scored = table.dropna(subset=["cv_mean"])
    if scored.empty:
        return pd.DataFrame({"verdict": ["no run has a cross-validated score on " + metric]})
    lower = metric in LOWER_IS_BETTER
    ordered = scored.sort_values("cv_mean", ascending=lower, kind="stable")
    best = ordered.iloc[0]
    row = {"best run": ordered.index[0], "model": best["model"], f"cv {metric}": f"{best['cv_mean']:.4f} ± {best['cv_std']:.4f}",
           "test": None if pd.isna(best["test"]) else round(float(best["test"]), 4)}
    if len(ordered) == 1:
        row["verdict"] = (f"only one run has a CV score: {ordered.index[0]} ({best['model']}, {metric} "
                          f"{best['cv_mean']:.4f} ± {best['cv_std']:.4f}); nothing to beat")
        return pd.DataFrame([row]).set_index("best run")
    second = ordered.iloc[1]
    lead = abs(best["cv_mean"] - second["cv_mean"])
    spread = max(best["cv_std"], second["cv_std"])
    row |= {"runner-up": ordered.index[1], "lead": round(float(lead), 4), "cv spread": round(float(spread), 4),
            "lead exceeds spread": bool(lead > spread)}
    if lead > spread:
        row["verdict"] = (f"{ordered.index[0]} leads {ordered.index[1]} by {lead:.4f} {metric}, more than the CV spread "
                          f"({spread:.4f}): a real difference at this data size")
    else:
        row["verdict"] = (f"{ordered.index[0]} leads {ordered.index[1]} by {lead:.4f} {metric}, within the CV spread "
                          f"({spread:.4f}): the runs are not distinguishable; prefer the simpler or faster one")
    return pd.DataFrame([row]).set_index("best run")
