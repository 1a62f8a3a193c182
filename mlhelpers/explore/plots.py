"""Figures: plot helpers take ``ax=None`` and return the axes (or the figure for grids); they never
call ``show()``; ``mlhelpers.core.artifacts.save_figure`` writes them into the run folder.

Big data is plotted from a seeded sample (``sample_rows``); counts and rates come from all rows.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from mlhelpers.core.tables import seeded_sample


def _axes(ax, size=(6, 4)):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=size)
    return ax


def _check_column(frame: pd.DataFrame, column: str) -> None:
    if column not in frame.columns:
        raise KeyError(f"column {column!r} is not in the frame; columns: {', '.join(map(str, frame.columns))}.")


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)


def plot_target(frame: pd.DataFrame, target: str, task: str, ax=None, sample_rows: int = 200_000, seed: int = 42):
    """Class counts with shares (classification) or a histogram of the target (regression); returns the axes."""
    import seaborn as sns

    _check_column(frame, target)
    ax = _axes(ax)
    y = frame[target].dropna()
    if task == "classification":
        counts = y.astype(str).value_counts()
        sns.barplot(x=counts.values, y=counts.index, ax=ax, color="C0", orient="h")
        for i, value in enumerate(counts.values):
            ax.text(value, i, f" {value:,} ({value / counts.sum():.0%})", va="center")
        ax.set_xlim(0, counts.max() * 1.25)
        ax.set(xlabel="rows", ylabel=target, title=f"{target}: {len(counts)} classes, {len(y):,} rows")
    else:
        values = seeded_sample(y.to_frame(), sample_rows, seed)[target].astype(float)
        sns.histplot(values, ax=ax, bins=50, color="C0")
        ax.axvline(float(y.median()), color="k", linestyle="--", label=f"median {y.median():,.4g}")
        ax.legend()
        ax.set(xlabel=target, ylabel="rows", title=f"{target}: skew {float(y.astype(float).skew()):.2f}, {len(y):,} rows")
    return ax


def plot_missingness(frame: pd.DataFrame, ax=None, sample_rows: int = 300, seed: int = 42):
    """Missing-value pattern: one row per sampled record (most-missing first), one column per column
    with any missing value, labelled with its exact missing rate; returns the axes."""
    import seaborn as sns

    rates = frame.isna().mean()
    rates = rates[rates > 0].sort_values(ascending=False)
    ax = _axes(ax, (min(12, 2 + 0.6 * max(len(rates), 3)), 4))
    if rates.empty:
        ax.text(0.5, 0.5, "no missing values", ha="center", va="center", fontsize=14)
        ax.set_axis_off()
        return ax
    pattern = seeded_sample(frame[rates.index], sample_rows, seed).isna()
    pattern = pattern.loc[pattern.sum(axis=1).sort_values(ascending=False, kind="stable").index]
    pattern.columns = [f"{c} ({r:.1%})" if r >= 0.01 else f"{c} ({r:.2%})" for c, r in rates.items()]
    sns.heatmap(pattern.astype(int).reset_index(drop=True), ax=ax, cbar=False, yticklabels=False,
                cmap=sns.color_palette(["#e8e8e8", "#c0392b"], as_cmap=True), vmin=0, vmax=1)
    rows_with_missing = frame[rates.index].isna().any(axis=1).mean()
    ax.set(ylabel=f"{len(pattern):,} sampled rows", title=f"Missing values (red): {rows_with_missing:.1%} of rows have at least one")
    ax.tick_params(axis="x", rotation=45)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    return ax


def plot_feature_vs_target(frame: pd.DataFrame, feature: str, target: str, task: str, ax=None,
                           sample_rows: int = 20_000, seed: int = 42, max_categories: int = 10):
    """One feature against the target, the view that fits the types; returns the axes.

    Numeric feature: per-class box plots (classification) or a scatter/hexbin (regression).
    Categorical feature: the share of each class per category (classification) or per-category box
    plots of the target (regression), for the ``max_categories`` most frequent categories.
    """
    _check_column(frame, feature)
    _check_column(frame, target)
    ax = _axes(ax)
    data = seeded_sample(frame[[feature, target]].dropna(subset=[target]), sample_rows, seed)
    x, y = data[feature], data[target]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)  # seaborn 0.13 on matplotlib 3.10
        _draw_feature_vs_target(ax, x, y, target, task, max_categories)
    ax.set_title(feature)
    return ax


def _draw_feature_vs_target(ax, x: pd.Series, y: pd.Series, target: str, task: str, max_categories: int) -> None:
    import seaborn as sns

    feature = x.name
    numeric_feature = _is_numeric(x) and x.nunique() > max_categories
    if not numeric_feature:
        top = x.astype(str).where(x.notna(), "(missing)")
        frequent = top.value_counts().index[:max_categories]
        top = top.where(top.isin(frequent), "(other)")
        x = top
    if task == "classification":
        if numeric_feature:
            sns.boxplot(x=x.astype(float), y=y.astype(str), ax=ax, orient="h", showfliers=False, color="C0")
        else:
            shares = pd.crosstab(x, y.astype(str), normalize="index")
            shares.plot.barh(stacked=True, ax=ax, width=0.8, colormap="tab10", legend=True)
            ax.legend(title=target, fontsize="small", loc="lower right")
            ax.set_xlabel(f"share of {target}")
    else:
        if numeric_feature:
            ax.hexbin(x.astype(float), y.astype(float), gridsize=40, mincnt=1, cmap="Blues", bins="log")
            ax.set(xlabel=feature, ylabel=target)
        else:
            sns.boxplot(x=y.astype(float), y=x, ax=ax, orient="h", showfliers=False, color="C0")


def plot_top_features(frame: pd.DataFrame, relevance: pd.DataFrame, target: str, task: str, top: int = 6,
                      sample_rows: int = 20_000, seed: int = 42):
    """The ``top`` features by mutual information (``relevance`` from ``association.associations``), each
    against the target; returns the figure."""
    import matplotlib.pyplot as plt

    names = [c for c in relevance.index if relevance.loc[c, "role"] not in ("identifier", "mostly_missing")][:top]
    if not names:  # e.g. a table whose only features are free text (ranked in the baseline, not here)
        fig, ax = plt.subplots(figsize=(7, 1.4))
        ax.set_axis_off()
        ax.text(0.5, 0.5, f"No numeric or categorical feature to rank against {target}: free text, identifiers "
                "and mostly-missing columns are not ranked here.", ha="center", va="center", wrap=True)
        return fig
    cols = min(3, len(names))
    rows = int(np.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    for ax, name in zip(axes.ravel(), names):
        plot_feature_vs_target(frame, name, target, task, ax=ax, sample_rows=sample_rows, seed=seed)
        ax.set_title(f"{name} (MI {relevance.loc[name, 'mutual_info']:.3f})")
    for ax in axes.ravel()[len(names):]:
        ax.set_axis_off()
    fig.suptitle(f"Most informative features against {target}")
    fig.tight_layout()
    return fig


HEATMAP_COLUMNS = 40   # a heatmap of 752 columns took 144 s to draw and showed nothing readable


def plot_correlations(corr: pd.DataFrame, ax=None):
    """Heatmap of a correlation matrix (lower triangle, annotated when small); returns the axes.

    Above ``HEATMAP_COLUMNS`` features it shows those most correlated with another feature, and says so.
    """
    import seaborn as sns

    title = "Spearman rank correlation between numeric features"
    if len(corr) > HEATMAP_COLUMNS:
        strongest = corr.abs().where(~np.eye(len(corr), dtype=bool)).max().fillna(0)
        keep = [name for name in corr.columns if name in set(strongest.nlargest(HEATMAP_COLUMNS).index)]
        title += f"\n{HEATMAP_COLUMNS} of {len(corr)}: those most correlated with another"
        corr = corr.loc[keep, keep]
    size = max(4, 0.5 * len(corr) + 2)
    ax = _axes(ax, (size + 1, size))
    if corr.empty:
        ax.text(0.5, 0.5, "fewer than two numeric features", ha="center", va="center")
        ax.set_axis_off()
        return ax
    mask = np.triu(np.ones(corr.shape, dtype=bool), k=1)
    sns.heatmap(corr, mask=mask, ax=ax, vmin=-1, vmax=1, center=0, cmap="vlag", square=True,
                annot=len(corr) <= 15, fmt=".2f", annot_kws={"size": 8}, cbar_kws={"shrink": 0.7})
    ax.set_title(title)
    return ax
