"""Which cross-validated model goes to export, and the leaderboard that shows why.

``select`` takes the best primary-metric mean unless a simpler (earlier in ``ZOO``) model is within one standard
deviation of it; ``leaderboard_table`` lists every model's scores, rows and timings, best first. Both take the
``ModelResult``s of ``mlhelpers.baseline.crossval``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlhelpers.baseline import BaselineError
from mlhelpers.core.metrics import LOWER_IS_BETTER
from mlhelpers.core.models import ZOO

__all__ = ["select", "leaderboard_table"]


def select(results: dict[str, Any], metric: str) -> tuple[str, str]:
    valid = {m: r for m, r in results.items() if np.isfinite(r.mean(metric))}
    if not valid:
        raise BaselineError(f"no model produced a finite {metric}; the validation folds may hold a single class.")
    top = min(valid, key=lambda m: (valid[m].mean(metric) if metric in LOWER_IS_BETTER else -valid[m].mean(metric),
                                    ZOO.index(m)))
    tolerance = valid[top].std(metric)
    tied = [m for m in valid if abs(valid[m].mean(metric) - valid[top].mean(metric)) <= tolerance]
    chosen = min(tied, key=lambda m: (ZOO.index(m), np.mean(valid[m].fit_seconds)))
    best_text = f"{top} has the best {metric} ({valid[top].mean(metric):.4f} ± {tolerance:.4f})"
    if chosen == top:
        return chosen, best_text + "; no simpler model is within one standard deviation"
    return chosen, (best_text + f"; {chosen} ({valid[chosen].mean(metric):.4f}) is within one standard "
                    "deviation and simpler/faster, so it is preferred")


def leaderboard_table(results: dict[str, Any], metrics_: list[str], selected: str) -> pd.DataFrame:
    primary = metrics_[0]
    rows = []
    for model, result in results.items():
        row: dict[str, Any] = {"model": model}
        for metric in metrics_:
            row[f"{metric}_mean"] = result.mean(metric)
            row[f"{metric}_std"] = result.std(metric)
        row["train_rows"] = result.train_rows
        row["fit_seconds"] = float(np.mean(result.fit_seconds))
        row["predict_seconds"] = float(np.mean(result.predict_seconds))
        row["selected"] = model == selected
        rows.append(row)
    frame = pd.DataFrame(rows)
    ascending = primary in LOWER_IS_BETTER
    frame = frame.sort_values(f"{primary}_mean", ascending=ascending, kind="stable", na_position="last")
    return frame.reset_index(drop=True)



