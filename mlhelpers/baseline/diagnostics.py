"""Diagnostics of the selected model: out-of-fold plots, the threshold table and permutation importances (the
learning curve is ``mlhelpers.baseline.learning``).

Everything here uses the training rows only (out-of-fold predictions, validation folds) of the
``ZooResult`` from ``mlhelpers.baseline.crossval.run_zoo``; the test rows stay unseen.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from mlhelpers.baseline.results import choose_threshold
from mlhelpers.baseline.crossval import ZooResult
from mlhelpers.core.metrics import make_scorer_for
from mlhelpers.core.threads import native_threads

__all__ = ["threshold_table", "plot_diagnostics", "permutation_importances", "plot_importances",
           "diagnostic_seconds", "per_row_seconds", "CALL_SECONDS"]

PLOT_ROWS = 200_000   # out-of-fold rows drawn in the diagnostics figure (a seeded sample above: the threshold
#                       panel scores 49 thresholds, 70 s on 2.6M rows; the chosen threshold uses every row)
MIN_IMPORTANCE_ROWS = 200  # fewer validation rows than this in the time left: permutation importance is skipped
CALL_SECONDS = 0.02        # a pipeline call's fixed cost (column transformer, checks), whatever its rows
# A diagnostic explains the models, so under a time budget each (permutation importance, learning curve) spends at
# most this share of what fitting them took (``zoo.seconds``: zoo, tuning, ablation), and at least the floor. On
# Ames (2,930 x 73) they took 60 and 24 s after a 38 s zoo: 365 pipeline calls of 469 rows cost more than the zoo.
DIAGNOSTIC_SHARE = 0.25
DIAGNOSTIC_MIN_SECONDS = 10.0
FEWER_REPEATS = 3          # repeats tried before fewer rows when the full permutation importance does not fit


def diagnostic_seconds(zoo: ZooResult, seconds: float | None) -> float | None:
    """What a diagnostic may spend: the budget's ``seconds`` (None: no limit), at most ``DIAGNOSTIC_SHARE`` of the
    models' fitting time (but not below ``DIAGNOSTIC_MIN_SECONDS``)."""
    if seconds is None:
        return None
    return min(seconds, max(DIAGNOSTIC_MIN_SECONDS, DIAGNOSTIC_SHARE * zoo.seconds))


def per_row_seconds(seconds: list[float], rows: float) -> float:
    """Seconds per row of a cross-validation's fits or predictions (summed over its folds)."""
    return float(np.sum(seconds)) / max(rows, 1.0)


def threshold_table(zoo: ZooResult) -> pd.DataFrame:
    """Scores of the selected model at the default 0.5 and at the chosen threshold (binary targets);
    for other tasks a one-row table saying why there is none."""
    from sklearn import metrics

    if zoo.data.n_classes != 2:
        return pd.DataFrame({"note": ["threshold choice applies to binary classification only"]})
    y, proba = zoo.out_of_fold()
    choice = choose_threshold(zoo)
    rows = []
    for name, threshold in (("default", 0.5), ("chosen", choice["threshold"])):
        predicted = (proba[:, 1] >= threshold).astype(int)
        rows.append({"threshold": name, "value": threshold,
                     "balanced_accuracy": metrics.balanced_accuracy_score(y, predicted),
                     "precision": metrics.precision_score(y, predicted, zero_division=0),
                     "recall": metrics.recall_score(y, predicted, zero_division=0),
                     "f1": metrics.f1_score(y, predicted, zero_division=0)})
    return pd.DataFrame(rows).set_index("threshold")


def plot_confusion_matrix(y, proba, classes, ax=None, threshold: float | None = None):
    """Row-normalized confusion matrix of out-of-fold predictions (argmax, or ``threshold`` on class 1)."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    ax = ax or plt.subplots(figsize=(4, 4))[1]
    predicted = (proba[:, 1] >= threshold).astype(int) if threshold is not None else proba.argmax(axis=1)
    labels = [str(c) for c in classes]
    ConfusionMatrixDisplay.from_predictions(y, predicted, labels=np.arange(len(classes)), display_labels=labels,
                                            normalize="true", values_format=".2f", ax=ax, colorbar=False)
    ax.set_title("confusion matrix" + (f" (threshold {threshold:.2f})" if threshold is not None else ""))
    return ax


def plot_roc_pr(y, proba, classes, ax=None, kind: str = "roc"):
    """ROC (``kind="roc"``) or precision-recall curves: class 1 for binary, one-vs-rest for multiclass."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import PrecisionRecallDisplay, RocCurveDisplay

    ax = ax or plt.subplots(figsize=(4, 4))[1]
    display = RocCurveDisplay if kind == "roc" else PrecisionRecallDisplay
    shown = [1] if len(classes) == 2 else [c for c in range(len(classes)) if (y == c).any()][:8]
    for c in shown:
        display.from_predictions(y == c, proba[:, c], name=str(classes[c]), ax=ax)
    ax.set_title("ROC curve" if kind == "roc" else "precision-recall curve")
    return ax


def plot_calibration(y, proba, classes, ax=None):
    """Reliability curve: predicted probability of class 1 (binary) or of the predicted class vs observed rate."""
    import matplotlib.pyplot as plt
    from sklearn.calibration import calibration_curve

    ax = ax or plt.subplots(figsize=(4, 4))[1]
    if len(classes) == 2:
        observed, predicted = calibration_curve(y == 1, proba[:, 1], n_bins=10, strategy="quantile")
        label = f"P({classes[1]})"
    else:
        observed, predicted = calibration_curve(proba.argmax(axis=1) == y, proba.max(axis=1), n_bins=10,
                                                strategy="quantile")
        label = "confidence of predicted class"
    ax.plot([0, 1], [0, 1], ls="--", color="grey", label="perfectly calibrated")
    ax.plot(predicted, observed, marker="o", label=label)
    ax.set(xlabel="mean predicted probability", ylabel="observed frequency", title="calibration")
    ax.legend(loc="upper left", fontsize="small")
    return ax


def threshold_curves(y, score, grid) -> dict[str, np.ndarray]:
    """Precision, recall, balanced accuracy of class 1 when ``score >= t``, per t of ``grid``: numpy counts, as
    scikit-learn's metrics give (``zero_division=0``), whose input checks cost 5 of the figure's 9 s under load."""
    positive = np.asarray(y) == 1
    predicted = np.asarray(score)[None, :] >= np.asarray(grid)[:, None]
    tp = (predicted & positive).sum(axis=1)
    fp = predicted.sum(axis=1) - tp
    n_pos, n_neg = max(positive.sum(), 1), max((~positive).sum(), 1)
    precision = np.divide(tp, tp + fp, out=np.zeros(len(tp)), where=(tp + fp) > 0)
    recall, specificity = tp / n_pos, ((~positive).sum() - fp) / n_neg
    return {"precision": precision, "recall": recall, "balanced accuracy": (recall + specificity) / 2}


def plot_threshold(y, proba, threshold: float, ax=None):
    """Precision, recall and balanced accuracy of class 1 against the decision threshold."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(4, 4))[1]
    grid = np.linspace(0.02, 0.98, 49)
    for name, values in threshold_curves(y, proba[:, 1], grid).items():
        ax.plot(grid, values, label=name)
    ax.axvline(threshold, color="black", ls=":", label=f"chosen {threshold:.2f}")
    ax.set(xlabel="threshold", title="threshold choice")
    ax.legend(fontsize="small")
    return ax


def plot_regression(y, predicted, ax=None, kind: str = "actual_vs_predicted"):
    """Actual vs predicted, or residuals vs predicted (``kind="residual_vs_predicted"``), on up to 2,000 rows."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import PredictionErrorDisplay

    ax = ax or plt.subplots(figsize=(4, 4))[1]
    PredictionErrorDisplay.from_predictions(y, predicted, kind=kind, subsample=2000, random_state=0, ax=ax,
                                            scatter_kwargs={"alpha": 0.3, "s": 8})
    ax.set_title(kind.replace("_", " "))
    return ax


def plot_diagnostics(zoo: ZooResult):
    """One figure of the selected model's out-of-fold diagnostics, and the figure returned.

    Classification: confusion matrix, ROC and precision-recall curves, calibration and (binary)
    the threshold choice. Regression: actual vs predicted, residuals vs predicted, residual histogram.
    """
    import matplotlib.pyplot as plt

    y, prediction = zoo.out_of_fold()
    threshold = choose_threshold(zoo)["threshold"] if zoo.data.n_classes == 2 else None  # from every row
    shown = f"{len(y):,} training rows"
    if len(y) > PLOT_ROWS:
        shown = f"a seeded sample of {PLOT_ROWS:,} of the {len(y):,} validated training rows"
        drawn = np.sort(np.random.default_rng(zoo.seed).choice(len(y), size=PLOT_ROWS, replace=False))
        y, prediction = y[drawn], prediction[drawn]
    if zoo.data.task == "classification":
        classes = zoo.data.classes
        binary = len(classes) == 2
        fig, axes = plt.subplots(1, 5 if binary else 4, figsize=(22 if binary else 18, 4.2))
        plot_confusion_matrix(y, prediction, classes, ax=axes[0], threshold=threshold)
        plot_roc_pr(y, prediction, classes, ax=axes[1], kind="roc")
        plot_roc_pr(y, prediction, classes, ax=axes[2], kind="pr")
        plot_calibration(y, prediction, classes, ax=axes[3])
        if binary:
            plot_threshold(y, prediction, threshold, ax=axes[4])
    else:
        fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
        plot_regression(y, prediction, ax=axes[0], kind="actual_vs_predicted")
        plot_regression(y, prediction, ax=axes[1], kind="residual_vs_predicted")
        axes[2].hist(y - prediction, bins=50)
        axes[2].set(title="residuals", xlabel="actual - predicted", ylabel="rows")
    fig.suptitle(f"{zoo.selected}: out-of-fold diagnostics ({shown})")
    fig.tight_layout()
    return fig


def permutation_importances(zoo: ZooResult, *, max_rows: int = 2000, n_repeats: int = 5,
                            seconds: float | None = None) -> pd.DataFrame:
    """Permutation importance of each input column for the selected model, on its last CV fold's
    validation rows (at most ``max_rows``, sampled with the seed): the drop in the primary metric
    when that column is shuffled. Sorted, most important first.

    ``seconds`` (what the time budget leaves; None: no limit; capped by ``diagnostic_seconds``) lowers the
    repeats to ``FEWER_REPEATS``, then the rows, to what the model's measured prediction speed allows, or skips
    (an empty table) below ``MIN_IMPORTANCE_ROWS``; ``zoo.notes`` says which."""
    from sklearn.inspection import permutation_importance

    data, result = zoo.data, zoo.best
    train_rows = zoo.split.positions(data.X)
    val_rows = zoo.split.folds[result.last_fold][1]
    if result.rows is not None:
        val_rows = val_rows[np.isin(val_rows, result.rows)]  # the rows its last fold validated
    seconds = diagnostic_seconds(zoo, seconds)
    if seconds is not None:
        per_row = per_row_seconds(result.predict_seconds, result.train_rows)
        for repeats in dict.fromkeys([n_repeats, min(n_repeats, FEWER_REPEATS)]):
            calls = repeats * data.X.shape[1] + 1
            affordable = int((seconds / calls - CALL_SECONDS) / max(per_row, 1e-9))
            if affordable >= min(max_rows, len(val_rows)):
                break
        if repeats < n_repeats:
            zoo.notes["permutation_importance"] = f"{repeats} repeats instead of {n_repeats}: {seconds:.0f} s allowed"
        n_repeats = repeats
        if affordable < min(MIN_IMPORTANCE_ROWS, len(val_rows)):
            zoo.notes["permutation_importance"] = (f"skipped: {calls} predictions of at least "
                                                   f"{MIN_IMPORTANCE_ROWS} rows need more than the {seconds:.0f} s "
                                                   "the time budget allows")
            return pd.DataFrame({"feature": pd.Series(dtype=object), "importance_mean": pd.Series(dtype=float),
                                 "importance_std": pd.Series(dtype=float)})
        if affordable < min(max_rows, len(val_rows)):
            zoo.notes["permutation_importance"] = (f"on {affordable:,} validation rows instead of "
                                                   f"{min(max_rows, len(val_rows)):,}, {n_repeats} repeats: the "
                                                   f"time budget allows {seconds:.0f} s")
            max_rows = affordable
    rng = np.random.default_rng(zoo.seed)
    if len(val_rows) > max_rows:
        val_rows = np.sort(rng.choice(val_rows, size=max_rows, replace=False))
    X_val = data.X.iloc[train_rows[val_rows]]
    y_val = data.y[train_rows[val_rows]]
    scorer = make_scorer_for(data.primary_metric, data.n_classes)
    with warnings.catch_warnings(), native_threads(len(X_val), zoo.n_jobs):
        warnings.simplefilter("ignore", UserWarning)
        found = permutation_importance(result.fold_models[-1], X_val, y_val, scoring=scorer, n_repeats=n_repeats,
                                       random_state=zoo.seed, n_jobs=1)
    table = pd.DataFrame({"feature": X_val.columns, "importance_mean": found.importances_mean,
                          "importance_std": found.importances_std})
    return table.sort_values("importance_mean", ascending=False, kind="stable").reset_index(drop=True)


def plot_importances(table: pd.DataFrame, ax=None, top: int = 20):
    """Horizontal bars of the ``top`` permutation importances with their standard deviations."""
    import matplotlib.pyplot as plt

    shown = table.head(top).iloc[::-1]
    ax = ax or plt.subplots(figsize=(6, 0.3 * len(shown) + 1))[1]
    ax.barh(shown["feature"].astype(str), shown["importance_mean"], xerr=shown["importance_std"])
    ax.set(xlabel="drop in score when shuffled",
           title="permutation importance" + (" skipped (time budget)" if table.empty else ""))
    return ax
