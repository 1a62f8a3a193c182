"""Figures of a drift check: the effect size of every column against its threshold, and reference vs new for
each drifted column (shares on the reference's bins; numbers and dates also as quantile curves)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from mlhelpers.core.artifacts import relative_to_run, save_figure
from mlhelpers.core.reference import QUANTILES
from mlhelpers.monitor.drift import ColumnDrift
from mlhelpers.monitor.report import DriftResult

__all__ = ["plot_overview", "plot_column_drift", "save_drift_figures"]

_MAX_BARS = 25


def plot_overview(result: DriftResult, ax=None):
    """PSI per column (and the predictions) with the threshold; drifted ones in red. Returns the axes."""
    import matplotlib.pyplot as plt

    items = list(result.columns.values()) + ([result.prediction] if result.prediction else [])
    items.sort(key=lambda c: c.psi or 0.0)
    ax = ax or plt.subplots(figsize=(7, 0.3 * len(items) + 1.2))[1]
    values = [max(c.psi or 0.0, 1e-5) for c in items]
    ax.barh([c.name for c in items], values, color=["tab:red" if c.drifted else "tab:gray" for c in items])
    ax.axvline(result.thresholds.psi, color="black", linestyle="--", linewidth=1, label=f"PSI threshold {result.thresholds.psi:g}")
    ax.set_xscale("log")
    ax.set_xlabel("PSI against the reference (log scale; red: drifted)")
    ax.legend(loc="lower right")
    ax.set_title("drift per column")
    return ax


def plot_column_drift(column: ColumnDrift, axes=None):
    """Reference vs new shares on the reference's bins (the largest bins when there are many); for numbers
    and dates, also both quantile curves. Returns the figure."""
    import matplotlib.pyplot as plt

    curves = column.quantiles is not None
    if axes is None:
        _, axes = plt.subplots(1, 2 if curves else 1, figsize=(11 if curves else 7, 3.6), squeeze=False)
        axes = axes[0]
    shown = np.arange(len(column.labels))
    if len(shown) > _MAX_BARS:
        shown = np.sort(np.argsort(-np.maximum(column.reference_shares, column.new_shares))[:_MAX_BARS])
    width = 0.4
    axes[0].bar(np.arange(len(shown)) - width / 2, column.reference_shares[shown], width, label="reference (training)")
    axes[0].bar(np.arange(len(shown)) + width / 2, column.new_shares[shown], width, label="new")
    axes[0].set_xticks(np.arange(len(shown)), [column.labels[i] for i in shown], rotation=60, ha="right", fontsize=7)
    axes[0].set_ylabel("share of rows")
    axes[0].set_title(f"{column.name}: PSI {column.psi:.3f}")
    axes[0].legend()
    if curves:
        reference, new = (np.asarray(q, dtype=float) for q in column.quantiles)
        if column.kind == "datetime":
            reference, new = pd.to_datetime(reference, unit="s"), pd.to_datetime(new, unit="s")
        axes[1].plot(reference, QUANTILES, label="reference (training)")
        axes[1].plot(new, QUANTILES, label="new")
        axes[1].set_ylabel("share of rows at or below")
        axes[1].set_title(f"quantiles: Wasserstein {column.statistic:.3f} sd")
        axes[1].legend()
    figure = axes[0].figure
    figure.tight_layout()
    return figure


def save_drift_figures(result: DriftResult, output_dir: str | Path) -> pd.DataFrame:
    """Draw and save one figure per drifted column (and for the predictions when they drifted) into
    ``output_dir``; return the files (relative to it), one row per column."""
    drifted = [c for c in result.columns.values() if c.drifted]
    if result.prediction is not None and result.prediction.drifted:
        drifted.append(result.prediction)
    rows = []
    for column in drifted:
        figure = plot_column_drift(column)
        name = "drift_" + re.sub(r"[^A-Za-z0-9_.-]+", "_", column.name).strip("_")
        path = save_figure(figure, output_dir, "monitor", name)
        rows.append({"column": column.name, "figure": relative_to_run(path, output_dir)})
    if not rows:
        return pd.DataFrame({"note": ["no column drifted: no figure to draw"]})
    return pd.DataFrame(rows).set_index("column")
