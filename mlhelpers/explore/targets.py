"""The target: rows without one dropped, the task inferred and the primary metric chosen, each with a reason.

``prepare_target`` is exact on the whole data; ``TargetSummary`` shows it in the notebook. Classes too small for
the split are merged or refused there (``rare_classes``, ``mlhelpers.core.classes``), so every later step sees them so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mlhelpers.core.classes import (MAX_CLASSES, RareClassError, auto_task, describe_plan, merge_rare_classes,
                                    plan_rare_classes)
from mlhelpers.core.metrics import CLASSIFICATION_METRICS, REGRESSION_METRICS
from mlhelpers.core.tables import MIN_KNOWN_TARGETS, drop_missing_target
from mlhelpers.explore import EdaError
from mlhelpers.explore.roles import show_value



@dataclass
class TargetSummary:
    """The target: task and metric with their reasons, rows dropped, class balance or spread."""

    target: str
    task: str
    task_reason: str
    primary_metric: str
    metric_reason: str
    n_rows: int
    n_rows_missing_target: int
    classes: list | None
    distribution: pd.DataFrame = field(repr=False)
    rare_classes: dict | None = None   # the plan of core.classes (classification), as eda.json records it

    def _repr_html_(self) -> str:
        facts = pd.DataFrame({"value": {
            "target": self.target, "task": f"{self.task} ({self.task_reason})",
            "primary metric": f"{self.primary_metric} ({self.metric_reason})",
            "rows with a known target": f"{self.n_rows:,}",
            "rows dropped (target missing)": f"{self.n_rows_missing_target:,}"}
            | ({"rare classes": describe_plan(self.rare_classes)} if self.rare_classes else {})})
        return facts.to_html() + self.distribution.to_html()


def _integral(y: pd.Series) -> bool:
    return bool(np.all(np.mod(y.to_numpy(dtype=float), 1) == 0))


def _infer_task(y: pd.Series, task: str, target: str) -> tuple[str, str]:
    n_unique = y.nunique()
    numeric = pd.api.types.is_numeric_dtype(y.dtype) and not pd.api.types.is_bool_dtype(y.dtype)
    if task == "regression":
        if not numeric:
            raise EdaError(f"task is 'regression' but target {target!r} holds {y.dtype} values, not numbers; "
                           "set task: classification (or auto), or pick a numeric target.")
        return task, "set by the task parameter"
    if task == "classification":
        if numeric and n_unique > MAX_CLASSES and not _integral(y):
            example = show_value(y.dropna().loc[lambda v: np.mod(v.astype(float), 1) != 0].iloc[0])
            raise EdaError(f"task is 'classification' but target {target!r} looks continuous: {n_unique:,} distinct "
                           f"values, not whole numbers (e.g. {example}); set task: regression (or auto), or turn the "
                           "target into classes first (bins or thresholds, in the data or with data_query).")
        if numeric and n_unique > MAX_CLASSES:
            # whole numbers are fine as classes, but this many look like a count: the weeks AER's Fertility women
            # worked (0-52) ran as 53 classes to a balanced accuracy of 0.02, ordering and distance thrown away
            return task, (f"set by the task parameter; note: {n_unique:,} distinct whole numbers look like a count "
                          "or a quantity: task: regression (or auto) would use their order")
        return task, "set by the task parameter"
    if task != "auto":
        raise EdaError(f"task {task!r} is unknown; use auto, classification or regression.")
    return auto_task(y)


def _choose_metric(task: str, y: pd.Series, primary_metric: str, shares: pd.Series | None) -> tuple[str, str]:
    if primary_metric != "auto":
        allowed = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
        if primary_metric not in allowed:
            raise EdaError(f"primary_metric {primary_metric!r} does not fit a {task} task; choose one of "
                           f"{', '.join(allowed)} or auto.")
        return primary_metric, "set by the primary_metric parameter"
    if task == "regression":
        skew = float(y.astype(float).skew())
        if abs(skew) > 2:
            return "mae", f"heavy-tailed target (skew {skew:.1f}): MAE is not dominated by the few extreme values"
        return "rmse", f"target spread is moderate (skew {skew:.1f}): RMSE, in the target's unit"
    minority = float(shares.min())
    if len(shares) == 2:
        if minority < 0.2:
            return "average_precision", (f"binary target, {minority:.0%} minority class: average precision "
                                         "focuses on the rare class where ROC AUC looks flattering")
        return "roc_auc", f"binary target, {minority:.0%} minority class"
    ratio = minority / float(shares.max())
    if ratio < 0.5:
        return "balanced_accuracy", (f"{len(shares)} classes, the smallest {ratio:.0%} the size of the "
                                     "largest: balanced accuracy weighs every class equally")
    return "log_loss", f"{len(shares)} fairly balanced classes: log loss rewards calibrated probabilities"


def prepare_target(frame: pd.DataFrame, target: str, task: str = "auto", primary_metric: str = "auto", *,
                   rare_classes: str = "merge", cv_folds: int = 5,
                   test_size: float = 0.2) -> tuple[pd.DataFrame, TargetSummary]:
    """Drop rows with a missing target, infer the task and pick the primary metric, each with a reason.

    Classes with too few rows for a test row and a row in every one of ``cv_folds`` folds are merged into one
    class (``rare_classes="merge"``, the returned rows carry the merged label) or refused (``"refuse"``).
    Returns the rows with a known target (original row labels kept) and a ``TargetSummary``.
    Raises ``EdaError`` for an unknown target, a target with one class, too few rows, or rare classes refused.
    """
    if target not in frame.columns:
        raise EdaError(f"target {target!r} is not a column; columns: {', '.join(map(str, frame.columns))}.")
    known, n_missing = drop_missing_target(frame, target)
    if len(known) < MIN_KNOWN_TARGETS:
        raise EdaError(f"only {len(known)} row(s) have a known target {target!r} ({n_missing} missing); "
                       f"exploring and modelling need at least {MIN_KNOWN_TARGETS}.")
    y = known[target]
    task, task_reason = _infer_task(y, task, target)
    shares, classes, plan = None, None, None
    if task == "classification":
        try:
            plan = plan_rare_classes(y, policy=rare_classes, cv_folds=cv_folds, test_size=test_size)
        except RareClassError as exc:
            raise EdaError(f"target {target!r}: {exc}") from None
        if plan["merged_into"]:
            known = known.copy()
            known[target] = y = merge_rare_classes(y, plan)
        counts = y.value_counts(dropna=True)
        counts = counts[counts > 0]
        if len(counts) < 2:
            raise EdaError(f"target {target!r} has a single class ({show_value(counts.index[0])}) in all {len(known):,} "
                           "rows with a known target; a classifier needs at least two classes. Check the "
                           "target column or the data selection.")
        shares = counts / counts.sum()
        classes = sorted(pd.unique(y.astype(object)).tolist(), key=str)
        distribution = pd.DataFrame({"count": counts, "share": shares.round(4)})
        distribution.index.name = target
    else:
        stats = y.astype(float).describe()
        stats["skew"] = y.astype(float).skew()
        distribution = stats.round(4).to_frame(target)
    metric, metric_reason = _choose_metric(task, y, primary_metric, shares)
    if n_missing:
        task_reason += f"; {n_missing:,} rows with a missing target dropped"
    return known, TargetSummary(target=target, task=task, task_reason=task_reason, primary_metric=metric,
                                metric_reason=metric_reason, n_rows=len(known), n_rows_missing_target=n_missing,
                                classes=classes, distribution=distribution, rare_classes=plan)
