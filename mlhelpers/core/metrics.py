"""Metrics: one scoring code for cross-validation, diagnostics, the test split and comparisons.

``score`` / ``scores`` compute metrics from class probabilities (classification) or values (regression),
``task_metrics`` lists a task's metrics with the primary one first, and ``make_scorer_for`` wraps a metric
as a scikit-learn scorer. ``absent_classes`` and ``cv_spread_check`` say how far one test score can be trusted.
``MetricError`` names an unknown or unfitting metric and the choices.
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["MetricError", "score", "scores", "task_metrics", "make_scorer_for", "absent_classes", "cv_spread_check"]

CLASSIFICATION_METRICS = (
    "roc_auc", "average_precision", "log_loss", "balanced_accuracy", "accuracy", "f1",
)
REGRESSION_METRICS = ("rmse", "mae", "r2")
LOWER_IS_BETTER = {"rmse", "mae", "log_loss"}
OUTSIDE_CV_STDS = 3.0   # a test score beyond CV mean +- 3 std of the folds is flagged (export, model card)
# A cross-validated score this good is more often leakage than skill (the baseline warns, the model card says so).
SUSPICIOUS = {"roc_auc": 0.99, "balanced_accuracy": 0.98, "r2": 0.995}


class MetricError(ValueError):
    """An unknown metric, or one that does not fit the task: the message lists the choices."""


def task_metrics(task: str, primary_metric: str) -> list[str]:
    """Every metric reported for ``task``, the primary one first."""
    known = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    if primary_metric not in known:
        raise MetricError(f"primary_metric {primary_metric!r} does not fit a {task} task; "
                            f"choose one of {', '.join(known)} (or 'auto').")
    return [primary_metric] + [m for m in known if m != primary_metric]


def score(metric: str, y: np.ndarray, prediction: np.ndarray, n_classes: int | None = None) -> float:
    """One metric of predictions: class probabilities ``(n, k)`` for classification, values for regression.

    Binary metrics take class index 1 as positive; multiclass ROC AUC, average precision, balanced
    accuracy and F1 are macro averages over the classes seen in training (``0..n_classes-1``, passed to
    scikit-learn explicitly), never over whichever classes the rows at hand happen to hold. A class with no
    row in ``y`` (``absent_classes``) has no recall, ROC AUC or average precision: 0/0, not 0. Counting it as
    0 would score the model on rows that do not exist (a perfect model would get (k-1)/k), counting it as 1
    would flatter it; so it is left out of those averages, and the caller counts and reports it (export writes
    ``classes_absent_from_test``; the stratified split and ``rare_classes`` keep every class in the test split).
    F1 is different: a class absent from ``y`` that the model still predicts has precision 0, so its F1 is 0
    (those false alarms are real errors) and it stays in the average; one neither present nor predicted is
    left out (nothing to judge). Error metrics (rmse, mae, log_loss) are positive, lower is better.
    """
    from sklearn import metrics

    y = np.asarray(y)
    if metric in REGRESSION_METRICS:
        if metric == "rmse":
            return float(np.sqrt(metrics.mean_squared_error(y, prediction)))
        if metric == "mae":
            return float(metrics.mean_absolute_error(y, prediction))
        return float(metrics.r2_score(y, prediction))
    proba = np.asarray(prediction, dtype=float)
    if proba.ndim == 1:  # a scorer hands over class 1's probability only
        proba = np.column_stack([1 - proba, proba])
    proba = proba / proba.sum(axis=1, keepdims=True)  # float32 outputs (XGBoost) sum to 1 only roughly
    k = n_classes or proba.shape[1]
    labels = np.arange(k)
    present = [c for c in labels if (y == c).any()]
    predicted = proba.argmax(axis=1)
    if metric == "log_loss":
        return float(metrics.log_loss(y, proba, labels=labels))
    if metric == "accuracy":
        return float(metrics.accuracy_score(y, predicted))
    if metric == "balanced_accuracy":  # the mean recall of the classes present (recall is 0/0 for the others)
        return float(metrics.recall_score(y, predicted, labels=present, average="macro", zero_division=np.nan))
    if metric == "f1":
        if k == 2:
            return float(metrics.f1_score(y, predicted, labels=labels, zero_division=0))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "F-score is ill-defined": such classes are left out, as documented
            return float(metrics.f1_score(y, predicted, average="macro", labels=labels, zero_division=np.nan))
    if metric in ("roc_auc", "average_precision"):
        curve = metrics.roc_auc_score if metric == "roc_auc" else metrics.average_precision_score
        if len(present) < 2:
            return float("nan")  # one class only: no ranking to judge
        if k == 2:
            return float(curve(y, proba[:, 1]))
        return float(np.mean([curve(y == c, proba[:, c]) for c in present]))
    raise MetricError(f"unknown metric {metric!r}; choose one of "
                        f"{', '.join(CLASSIFICATION_METRICS + REGRESSION_METRICS)}.")


def absent_classes(y: np.ndarray, n_classes: int) -> list[int]:
    """Class indices seen in training (``0..n_classes-1``) with no row in ``y``: left out of the macro averages."""
    return [c for c in range(n_classes) if not (np.asarray(y) == c).any()]


def cv_spread_check(metric: str, test: float | None, cv: dict[str, float] | None, n_std: float = OUTSIDE_CV_STDS) -> dict:
    """Whether one test score falls outside the CV mean +- ``n_std`` standard deviations of the folds.

    A test score far better than CV usually means the test rows are easier than the folds (a hard class
    missing from them, a lucky draw); far worse, that the data moved or the split leaks in CV. Returns
    ``metric``, ``test``, ``cv_mean``, ``cv_std``, ``low``, ``high``, ``n_std``, ``outside`` (bool, None when a
    figure is missing) and ``direction`` (better, worse or None) for metrics.json, the notebook and the card.
    """
    mean, std = (cv or {}).get("mean"), (cv or {}).get("std")
    result = {"metric": metric, "test": test, "cv_mean": mean, "cv_std": std, "n_std": n_std,
              "low": None, "high": None, "outside": None, "direction": None}
    if None in (test, mean, std) or not all(np.isfinite([test, mean, std])):
        return result
    low, high = mean - n_std * std, mean + n_std * std
    outside = bool(test < low or test > high)
    direction = None
    if outside:
        direction = "better" if _better(metric, test, mean) else "worse"
    return result | {"low": float(low), "high": float(high), "outside": outside, "direction": direction}


def scores(metrics_: list[str], y: np.ndarray, prediction: np.ndarray, n_classes: int | None = None) -> dict[str, float]:
    """Every metric in ``metrics_`` for one set of predictions."""
    return {metric: score(metric, y, prediction, n_classes) for metric in metrics_}


def _better(metric: str, a: float, b: float) -> bool:
    return a < b if metric in LOWER_IS_BETTER else a > b


def make_scorer_for(metric: str, n_classes: int | None):
    """A scikit-learn scorer for ``metric`` (probabilities for classification), higher is better."""
    from sklearn.metrics import make_scorer

    def metric_function(y, prediction):
        return score(metric, y, prediction, n_classes)

    response = "predict" if metric in REGRESSION_METRICS else "predict_proba"
    return make_scorer(metric_function, greater_is_better=metric not in LOWER_IS_BETTER,
                       response_method=response)

