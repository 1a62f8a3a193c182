"""Metrics: one scoring code for cross-validation, diagnostics, the test split and comparisons.

``score`` / ``scores`` compute metrics from class probabilities (classification) or values (regression),
``task_metrics`` lists a task's metrics with the primary one first, and ``make_scorer_for`` wraps a metric
as a scikit-learn scorer. ``MetricError`` names an unknown or unfitting metric and the choices.
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["MetricError", "score", "scores", "task_metrics", "make_scorer_for"]

CLASSIFICATION_METRICS = (
    "roc_auc", "average_precision", "log_loss", "balanced_accuracy", "accuracy", "f1",
)
REGRESSION_METRICS = ("rmse", "mae", "r2")
LOWER_IS_BETTER = {"rmse", "mae", "log_loss"}


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

    Binary metrics take class index 1 as positive; multiclass ROC AUC and average precision are
    one-vs-rest macro averages over the classes present in ``y``; F1 is macro-averaged.
    Error metrics (rmse, mae, log_loss) are positive, lower is better.
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
    predicted = proba.argmax(axis=1)
    if metric == "log_loss":
        return float(metrics.log_loss(y, proba, labels=np.arange(k)))
    if metric == "accuracy":
        return float(metrics.accuracy_score(y, predicted))
    if metric == "balanced_accuracy":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a class absent from a small fold
            return float(metrics.balanced_accuracy_score(y, predicted))
    if metric == "f1":
        if k == 2:
            return float(metrics.f1_score(y, predicted, zero_division=0))
        return float(metrics.f1_score(y, predicted, average="macro", labels=np.unique(y), zero_division=0))
    if metric in ("roc_auc", "average_precision"):
        curve = metrics.roc_auc_score if metric == "roc_auc" else metrics.average_precision_score
        if k == 2:
            return float(curve(y, proba[:, 1])) if len(np.unique(y)) == 2 else float("nan")
        values = [curve(y == c, proba[:, c]) for c in np.unique(y) if 0 < (y == c).sum() < len(y)]
        return float(np.mean(values)) if values else float("nan")
    raise MetricError(f"unknown metric {metric!r}; choose one of "
                        f"{', '.join(CLASSIFICATION_METRICS + REGRESSION_METRICS)}.")


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

