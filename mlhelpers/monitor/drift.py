"""Has one column (or the prediction) moved away from its reference summary? Effect sizes gate, a test confirms.

Every column is put on the reference's bins (20 equal-mass bins for numbers and dates, the reference's
categories plus one "other" bin for categories, and a "missing" bin for both), then:

* **PSI** (population stability index) over those bins: the usual credit-risk rule of thumb reads < 0.1 as
  stable, 0.1-0.25 as a moderate shift and > 0.25 as a major one;
* **numbers and dates**: the Wasserstein distance between the two quantile functions, divided by the
  reference's standard deviation ("how far did the mass move, in standard deviations");
* **categories**: the Jensen-Shannon distance (base 2, 0 = identical, 1 = disjoint);
* a **chi-square test** of homogeneity on the same bins (adjacent bins merged until each expects 5 new rows),
  for the p-value.

A column drifts when an effect size crosses its threshold (PSI, or Wasserstein / Jensen-Shannon) *and* the
test says the difference is not noise (p below ``p_value``). At a million rows every p-value is tiny, so a
p-value alone would flag every column; an effect size alone flags noise on a few dozen rows; both together
stay quiet on large undrifted samples and on small ones. The defaults follow evidently's (Wasserstein 0.1
standard deviation, Jensen-Shannon 0.1) and the PSI convention (0.2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlhelpers.core.reference import QUANTILES, bin_counts, category_keys, numeric_values

__all__ = ["Thresholds", "ColumnDrift", "psi", "numeric_drift", "categorical_drift", "column_drift"]

_EPSILON = 1e-4          # share given to an empty bin so PSI stays finite (as evidently and most PSI code do)
MISSING_BIN = "(missing)"
OTHER_BIN = "(other)"
_SHOWN_UNSEEN = 20
_MIN_EXPECTED = 5        # new rows a chi-square cell should expect (Cochran's rule)


@dataclass(frozen=True)
class Thresholds:
    """When a column counts as drifted (see the module doc)."""

    psi: float = 0.2
    wasserstein: float = 0.1          # in reference standard deviations
    jensen_shannon: float = 0.1
    p_value: float = 0.01


@dataclass
class ColumnDrift:
    """One column's comparison with its reference: the figures ``drift_report.json`` holds, and the binned
    shares the figure draws."""

    name: str
    role: str
    kind: str                          # numeric | datetime | categorical
    test: str                          # wasserstein | jensen_shannon
    statistic: float | None            # the test's distance; None when the new column has no value at all
    p_value: float | None              # chi-square test on the bins; None when one side is empty
    psi: float | None
    drifted: bool
    missing_rate: float
    reference_missing_rate: float
    n_rows: int
    unseen_categories: list = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    reference_shares: np.ndarray = field(default_factory=lambda: np.zeros(0))
    new_shares: np.ndarray = field(default_factory=lambda: np.zeros(0))
    quantiles: tuple[list, list] | None = None   # (reference, new) percentiles, numbers and dates only

    def as_dict(self) -> dict[str, Any]:
        """The entry of ``drift_report.json``'s ``columns`` (or its ``prediction``)."""
        return {"test": self.test, "statistic": self.statistic, "p_value": self.p_value, "psi": self.psi,
                "drifted": self.drifted, "missing_rate": self.missing_rate,
                "unseen_categories": self.unseen_categories, "role": self.role, "kind": self.kind,
                "reference_missing_rate": self.reference_missing_rate, "reasons": self.reasons}


def psi(reference: np.ndarray, new: np.ndarray) -> float:
    """Population stability index of two share vectors over the same bins (empty bins get a tiny share)."""
    reference = np.clip(np.asarray(reference, dtype=float), _EPSILON, None)
    new = np.clip(np.asarray(new, dtype=float), _EPSILON, None)
    return float(np.sum((new - reference) * np.log(new / reference)))


def _merged_bins(reference_shares: np.ndarray, n_new: int) -> list[np.ndarray]:
    """Adjacent bins grouped so that each group expects at least ``_MIN_EXPECTED`` new rows under the reference.

    The chi-square approximation needs about 5 expected rows per cell (Cochran's rule); 20 bins on 30 rows
    would otherwise give tiny p-values to pure noise."""
    groups, current, mass = [], [], 0.0
    for index, share in enumerate(reference_shares):
        current.append(index)
        mass += share
        if mass * n_new >= _MIN_EXPECTED:
            groups.append(np.array(current))
            current, mass = [], 0.0
    if current:
        if groups:
            groups[-1] = np.concatenate([groups[-1], current])
        else:
            groups.append(np.array(current))
    return groups


def _chi2_p_value(reference_shares: np.ndarray, n_reference: int, new_counts: np.ndarray) -> float | None:
    """Chi-square test of homogeneity of the reference and the new rows over the bins (merged where sparse);
    1.0 when too few rows leave a single group, None when a side is empty."""
    from scipy.stats import chi2_contingency

    n_new = int(new_counts.sum())
    if n_new == 0 or n_reference == 0:
        return None
    groups = _merged_bins(reference_shares, n_new)
    table = np.array([[reference_shares[g].sum() * n_reference for g in groups],
                      [new_counts[g].sum() for g in groups]], dtype=float)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 1.0
    return float(chi2_contingency(table, correction=False).pvalue)


def _decide(result: ColumnDrift, threshold: float, thresholds: Thresholds) -> ColumnDrift:
    effects = []
    if result.psi is not None and result.psi >= thresholds.psi:
        effects.append(f"PSI {result.psi:.3f} >= {thresholds.psi:g}")
    if result.statistic is not None and result.statistic >= threshold:
        unit = " sd" if result.test == "wasserstein" else ""
        effects.append(f"{result.test.replace('_', '-')} {result.statistic:.3f}{unit} >= {threshold:g}")
    significant = result.p_value is None or result.p_value < thresholds.p_value
    result.drifted = bool(effects) and significant
    if effects and not significant:
        effects.append(f"but p = {result.p_value:.3g} >= {thresholds.p_value:g}: too few rows to tell it from noise")
    result.reasons = effects
    return result


def numeric_drift(name: str, role: str, reference: dict[str, Any], values: np.ndarray,
                  thresholds: Thresholds = Thresholds()) -> ColumnDrift:
    """Numbers (or dates as seconds) against a numeric reference summary (``mlhelpers.core.reference``)."""
    present = values[~np.isnan(values)]
    missing_rate = float(1 - len(present) / len(values)) if len(values) else 0.0
    ref_missing = float(reference["missing_rate"])
    edges = reference.get("edges") or []
    ref_shares = np.append(np.asarray(reference.get("shares") or [1.0], dtype=float) * (1 - ref_missing), ref_missing)
    new_counts = np.append(bin_counts(values, edges), len(values) - len(present))
    new_shares = new_counts / max(len(values), 1)
    statistic, quantiles = None, None
    if len(present) and reference.get("quantiles"):
        ref_q = np.asarray(reference["quantiles"], dtype=float)
        new_q = np.quantile(present, QUANTILES)
        spread = reference["std"] if reference["std"] else max(abs(reference["mean"]), 1.0)
        gaps = np.abs(ref_q - new_q)  # the area between the quantile functions (trapezoids on the percentiles)
        statistic = float(((gaps[:-1] + gaps[1:]) / 2).mean() / spread)
        quantiles = (ref_q.tolist(), new_q.tolist())
    labels = _bin_labels(edges, reference["kind"]) + [MISSING_BIN]
    result = ColumnDrift(
        name=name, role=role, kind=reference["kind"], test="wasserstein", statistic=statistic,
        p_value=_chi2_p_value(ref_shares, reference["n"], new_counts), psi=psi(ref_shares, new_shares),
        drifted=False, missing_rate=missing_rate, reference_missing_rate=ref_missing, n_rows=len(values),
        labels=labels, reference_shares=ref_shares, new_shares=new_shares, quantiles=quantiles)
    return _decide(result, thresholds.wasserstein, thresholds)


def categorical_drift(name: str, role: str, reference: dict[str, Any], series: pd.Series,
                      known: list | None = None, thresholds: Thresholds = Thresholds()) -> ColumnDrift:
    """Categories against a categorical reference summary; ``known`` are the categories the input schema
    accepts (closed roles), so values outside them are listed as unseen."""
    from scipy.spatial.distance import jensenshannon

    keys = category_keys(series)
    n_missing = len(series) - len(keys)
    counts = keys.value_counts()
    categories = list(reference["categories"])
    ref_missing = float(reference["missing_rate"])
    ref_shares = np.array([*reference["categories"].values(), reference["other_share"]]) * (1 - ref_missing)
    ref_shares = np.append(ref_shares, ref_missing)
    in_reference = counts.reindex(categories, fill_value=0).to_numpy()
    new_counts = np.array([*in_reference, counts.sum() - in_reference.sum(), n_missing])
    new_shares = new_counts / max(len(series), 1)
    unseen: list = []
    if known is not None:
        accepted = set(category_keys(pd.Series(known))) if known else set()
        unseen = [value for value in counts.index if value not in accepted][:_SHOWN_UNSEEN]
    result = ColumnDrift(
        name=name, role=role, kind="categorical", test="jensen_shannon",
        statistic=float(jensenshannon(ref_shares, new_shares, base=2)) if len(keys) or n_missing else None,
        p_value=_chi2_p_value(ref_shares, reference["n"], new_counts), psi=psi(ref_shares, new_shares),
        drifted=False, missing_rate=float(n_missing / len(series)) if len(series) else 0.0,
        reference_missing_rate=ref_missing, n_rows=len(series), unseen_categories=unseen,
        labels=categories + [OTHER_BIN, MISSING_BIN], reference_shares=ref_shares, new_shares=new_shares)
    return _decide(result, thresholds.jensen_shannon, thresholds)


def column_drift(name: str, series: pd.Series, reference: dict[str, Any], schema_info: dict[str, Any] | None = None,
                 thresholds: Thresholds = Thresholds()) -> ColumnDrift:
    """The raw new column ``series`` against its entry of ``reference.json`` (its kind decides the test);
    ``schema_info`` (its ``input_schema.json`` entry) lists the categories a closed column accepts."""
    role = reference.get("role", "prediction")
    if reference["kind"] == "categorical":
        known = (schema_info or {}).get("categories")
        return categorical_drift(name, role, reference, series, known=known, thresholds=thresholds)
    return numeric_drift(name, role, reference, numeric_values(series, reference["kind"]), thresholds)


def _bin_labels(edges: list[float], kind: str) -> list[str]:
    shown = [_show(edge, kind) for edge in edges]
    if not shown:
        return ["all"]
    return [f"<= {shown[0]}"] + [f"({a}, {b}]" for a, b in zip(shown, shown[1:])] + [f"> {shown[-1]}"]


def _show(value: float, kind: str) -> str:
    if kind == "datetime":
        return pd.Timestamp(value, unit="s").strftime("%Y-%m-%d")
    return f"{value:.4g}"
