"""Figures of a comparison: every run's cross-validated scores per model with their spread, the fit times, and
the selected models' out-of-fold curves overlaid (ROC and precision-recall, or residuals)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlhelpers.compare.runs import RunInfo
from mlhelpers.core.models import ZOO

__all__ = ["fold_scores", "plot_cv_scores", "plot_fit_times", "plot_curves"]


def fold_scores(runs: list[RunInfo], metric: str) -> pd.DataFrame:
    """Long table of every run's cross-validation: run, model, fold, score on ``metric``, fit seconds."""
    rows = []
    for run in runs:
        for model, result in ((run.cv_results or {}).get("models") or {}).items():
            scores = result.get("fold_scores", {}).get(metric, [])
            fits = result.get("fit_seconds") or [np.nan] * len(scores)
            rows += [{"run": run.label, "model": model, "fold": i + 1, "score": s, "fit_seconds": f}
                     for i, (s, f) in enumerate(zip(scores, fits))]
    return pd.DataFrame(rows, columns=["run", "model", "fold", "score", "fit_seconds"])


def _ordered_models(frame: pd.DataFrame) -> list[str]:
    return sorted(frame["model"].unique(), key=lambda m: ZOO.index(m) if m in ZOO else len(ZOO))


def plot_cv_scores(runs: list[RunInfo], metric: str, ax=None):
    """Per model (rows) and run (colours): the fold scores as dots and mean ± std as a bar. Returns the axes."""
    import matplotlib.pyplot as plt

    frame = fold_scores(runs, metric)
    models, labels = _ordered_models(frame), [run.label for run in runs]
    ax = ax or plt.subplots(figsize=(8, 0.5 + 0.35 * len(models) * max(len(labels), 2)))[1]
    offsets = np.linspace(-0.3, 0.3, len(labels)) if len(labels) > 1 else np.zeros(1)
    colours = plt.get_cmap("tab10")
    for j, label in enumerate(labels):
        legend_label = label
        for i, model in enumerate(models):
            scores = frame.loc[(frame["run"] == label) & (frame["model"] == model), "score"].to_numpy(float)
            if not len(scores):
                continue
            y = i + offsets[j]
            ax.errorbar(scores.mean(), y, xerr=scores.std(), fmt="o", color=colours(j % 10), capsize=3, label=legend_label)
            ax.scatter(scores, np.full(len(scores), y), s=8, color=colours(j % 10), alpha=0.4)
            legend_label = None  # one legend entry per run
    ax.set_yticks(range(len(models)), models)
    ax.invert_yaxis()
    ax.set_xlabel(f"{metric} per fold (dots), mean ± std (bars)")
    ax.set_title(f"cross-validated {metric} by run and model")
    ax.legend(fontsize=8, loc="best")
    return ax


def plot_fit_times(runs: list[RunInfo], ax=None):
    """Mean fit seconds per fold, by model and run (log scale). Returns the axes."""
    import matplotlib.pyplot as plt

    metric = next((run.cv_results["primary_metric"] for run in runs if run.cv_results), None)
    frame = fold_scores(runs, metric) if metric else pd.DataFrame(columns=["run", "model", "fit_seconds"])
    means = frame.groupby(["model", "run"], sort=False)["fit_seconds"].mean().unstack("run")
    means = means.reindex(index=_ordered_models(frame), columns=[run.label for run in runs if run.label in means.columns])
    ax = ax or plt.subplots(figsize=(8, 0.6 + 0.3 * means.size))[1]
    means.plot.barh(ax=ax, logx=True, legend=len(means.columns) > 1)
    ax.invert_yaxis()
    ax.set_xlabel("fit seconds per fold (preprocessing included, log scale)")
    ax.set_ylabel("")
    ax.set_title("fit times")
    return ax


def plot_curves(runs: list[RunInfo]):
    """The selected models' out-of-fold curves overlaid, one line per run: ROC and precision-recall for
    classification (class 1 of a binary target, micro-averaged one-vs-rest for several classes), residual
    distributions and the mean absolute residual by prediction decile for regression. Returns the figure."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    drawn = 0
    for run in runs:
        oof = run.out_of_fold()
        if oof is None or oof.empty:
            continue
        name = f"{run.label} ({run.model})"
        if run.task == "classification":
            _classification_curves(oof, run.classes, name, axes)
        else:
            _regression_curves(oof, name, axes)
        drawn += 1
    if not drawn:
        for ax in axes:
            ax.text(0.5, 0.5, "no run has out-of-fold predictions\n(baseline/oof_predictions.parquet)",
                    ha="center", va="center", transform=ax.transAxes)
    figure.tight_layout()
    return figure


def _classification_curves(oof: pd.DataFrame, classes: list, name: str, axes) -> None:
    from sklearn.metrics import PrecisionRecallDisplay, RocCurveDisplay

    proba = oof[[f"proba_{c}" for c in classes]].to_numpy(float)
    actual = oof["actual"].to_numpy(object)
    if len(classes) == 2:
        truth, score = actual == classes[1], proba[:, 1]
    else:
        truth = (actual[:, None] == np.asarray(classes, dtype=object)[None, :]).ravel()
        score = proba.ravel()
    RocCurveDisplay.from_predictions(truth, score, name=name, ax=axes[0])
    PrecisionRecallDisplay.from_predictions(truth, score, name=name, ax=axes[1])
    positive = f"positive: {classes[1]}" if len(classes) == 2 else "every class against the rest"
    axes[0].set(xlabel=f"false positive rate ({positive})", ylabel=f"true positive rate ({positive})")
    axes[1].set(xlabel=f"recall ({positive})", ylabel=f"precision ({positive})")
    suffix = "" if len(classes) == 2 else " (micro-average over classes)"
    axes[0].set_title("ROC, out-of-fold" + suffix)
    axes[1].set_title("precision-recall, out-of-fold" + suffix)


def _regression_curves(oof: pd.DataFrame, name: str, axes) -> None:
    predicted = oof["prediction"].to_numpy(float)
    residual = oof["actual"].to_numpy(float) - predicted
    axes[0].hist(residual, bins=60, histtype="step", density=True, label=name)
    axes[0].set_xlabel("residual (actual - predicted)")
    axes[0].set_title("residuals, out-of-fold")
    axes[0].legend(fontsize=8)
    deciles = pd.qcut(predicted, 10, labels=False, duplicates="drop")
    by_decile = pd.Series(np.abs(residual)).groupby(deciles).mean()
    axes[1].plot(by_decile.index + 1, by_decile.to_numpy(), marker="o", label=name)
    axes[1].set_xlabel("prediction decile")
    axes[1].set_ylabel("mean absolute residual")
    axes[1].set_title("error by prediction size")
    axes[1].legend(fontsize=8)
