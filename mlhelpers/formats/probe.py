"""The parity probe: edge rows generated from the training frame, on which every saved format must answer
as the in-memory pipeline does (issue 9.1: a test split without a missing category let a wrong ONNX ship).

``edge_rows(frame, roles=None, seed=0, max_missing_rows=200, max_categories=100) -> Probe``
    One typical row (medians, most frequent values), then per feature one row changing only that
    feature: missing (``np.nan``, and ``None`` for text), every category seen in training (at most
    ``max_categories``, the most frequent) and an unseen one; for numbers the minimum, maximum, beyond
    both, and zero; then every training row holding a missing value (at most ``max_missing_rows``,
    seeded). A second part gives numbers as strings ("3.5"), as JSON or a text file may.
``probe_parity(reference, candidate, probe, task, name) -> ProbeResult``
    ``ok``, rows, max differences, and which rows and columns break it (or what the candidate raised).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlhelpers.formats.parity import parity_by_row

UNSEEN = "__mlh_unseen_category__"
_SHOWN = 10  # breaking rows named in a result


@dataclass
class Probe:
    """Edge rows in parts (frames scored separately: numbers given as text change a column's dtype);
    ``labels[i][j]`` says what row ``j`` of part ``i`` probes ("Home=None", "Age=max+span")."""

    parts: list[pd.DataFrame]
    labels: list[list[str]]
    columns: list[list[list[str]]]   # per part, per row: the columns the row changes

    @property
    def n_rows(self) -> int:
        return sum(len(part) for part in self.parts)


@dataclass
class ProbeResult:
    """How ``name`` answered the probe next to the reference."""

    name: str
    ok: bool
    n_rows: int
    max_abs_diff: float
    max_rel_diff: float
    breaking_rows: list[str] = field(default_factory=list)    # labels, at most _SHOWN
    n_breaking: int = 0
    breaking_columns: list[str] = field(default_factory=list)
    error: str | None = None                                  # what the candidate raised
    skipped: list[str] = field(default_factory=list)          # parts the reference itself refuses

    def describe(self) -> str:
        """One sentence for reports: passed, or which rows and columns break it."""
        if self.ok:
            return f"{self.name}: the parity probe holds on {self.n_rows} edge rows (max difference {self.max_abs_diff:.3g})"
        if self.error:
            return f"{self.name}: fails the parity probe: {self.error}"
        return (f"{self.name}: fails the parity probe on {self.n_breaking} of {self.n_rows} edge rows (max "
                f"difference {self.max_abs_diff:.3g}), columns {self.breaking_columns}; e.g. "
                f"{', '.join(self.breaking_rows[:5])}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _typical(frame: pd.DataFrame) -> dict[str, Any]:
    row = {}
    for name in frame.columns:
        series = frame[name].dropna()
        if len(series) == 0:
            row[name] = np.nan
        elif pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
            row[name] = series.mode().iloc[0]
        else:
            row[name] = series.median()
    return row


def edge_rows(frame: pd.DataFrame, roles: dict[str, str] | None = None, seed: int = 0,
              max_missing_rows: int = 200, max_categories: int = 100) -> Probe:
    """The probe's rows for a model fitted on ``frame`` (its feature columns only); see the module doc.

    ``roles`` (column -> role from the model spec) marks numeric columns read as numbers and
    ``datetime`` columns (probed with a missing value only); without it, dtypes decide.
    """
    roles = roles or {}
    base = _typical(frame)
    rows, labels, changed = [dict(base)], ["typical row"], [[]]

    def vary(name: str, value: Any, what: str) -> None:
        rows.append(base | {name: value})
        labels.append(f"{name}={what}")
        changed.append([name])

    numbers = []
    for name in frame.columns:
        series = frame[name]
        role = roles.get(name)
        vary(name, np.nan, "NaN")
        numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        if role == "datetime" or pd.api.types.is_datetime64_any_dtype(series):
            continue
        if numeric and role in (None, "numeric"):
            present = series.dropna()
            if len(present) == 0:
                continue
            low, high = float(present.min()), float(present.max())
            span = max(high - low, 1.0)
            for value, what in ((low, "min"), (high, "max"), (low - span, "min-span"), (high + span, "max+span"),
                                (0.0, "0")):
                vary(name, value, what)
            numbers.append(name)
            continue
        vary(name, None, "None")
        counts = series.dropna().value_counts()
        for value in counts.index[:max_categories]:
            vary(name, value, repr(value) if not isinstance(value, str) else value)
        vary(name, UNSEEN if not numeric else -987654321, "unseen")
    typed = pd.DataFrame(rows, columns=frame.columns)
    for name in frame.columns:  # keep the training dtype where the values allow it (NaN in ints: float)
        if pd.api.types.is_numeric_dtype(frame[name]) and not pd.api.types.is_bool_dtype(frame[name]):
            typed[name] = pd.to_numeric(typed[name], errors="coerce") if typed[name].dtype == object else typed[name]
    missing = frame[frame.isna().any(axis=1)]
    if len(missing) > max_missing_rows:
        missing = missing.sample(max_missing_rows, random_state=seed)
    training_labels = [f"training row {index!r}" for index in missing.index]
    training_columns = [list(missing.columns[row.isna().to_numpy()]) for _, row in missing.iterrows()]
    parts = [pd.concat([typed, missing], ignore_index=True)]
    part_labels = [labels + training_labels]
    part_columns = [changed + training_columns]
    if numbers:  # the typical row, then every number at its minimum and maximum, as text
        texts = typed.iloc[[0, 0, 0]].copy().reset_index(drop=True)
        for name in numbers:
            present = frame[name].dropna()
            texts[name] = [repr(v.item() if hasattr(v, "item") else v) for v in
                           (base[name], present.min(), present.max())]
            texts[name] = texts[name].astype(object)
        parts.append(texts)
        part_labels.append(["numbers as text: typical", "numbers as text: min", "numbers as text: max"])
        part_columns.append([numbers] * 3)
    return Probe(parts, part_labels, part_columns)


def probe_parity(reference: Any, candidate: Any, probe: Probe, task: str, name: str = "candidate",
                 tolerance: float | None = None) -> ProbeResult:
    """Score every part of ``probe`` with both models; the bounds are ``check_parity``'s.

    A part the reference itself refuses (numbers as text, for a pipeline that takes only numbers) is
    skipped and listed; a part the candidate refuses while the reference answers fails the probe.
    """
    max_abs = max_rel = 0.0
    broken_labels: list[str] = []
    broken_columns: set[str] = set()
    skipped: list[str] = []
    for part, labels, columns in zip(probe.parts, probe.labels, probe.columns):
        try:
            reference.predict(part.head(1))
        except Exception as error:  # scikit-learn raises many kinds for input it does not take
            skipped.append(f"{labels[0].split(':')[0]} ({type(error).__name__})")
            continue
        try:
            result, broken = parity_by_row(reference, candidate, part, task, tolerance, name)
        except Exception as error:
            message = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
            return ProbeResult(name, False, probe.n_rows, float("nan"), float("nan"),
                               error=f"raised {type(error).__name__} ({message}) on the rows "
                                     f"{labels[:3]}...", skipped=skipped)
        max_abs, max_rel = max(max_abs, result.max_abs_diff), max(max_rel, result.max_rel_diff)
        for position in np.flatnonzero(broken):
            broken_labels.append(labels[position])
            broken_columns.update(columns[position])
    return ProbeResult(name, not broken_labels, probe.n_rows, max_abs, max_rel, broken_labels[:_SHOWN],
                       len(broken_labels), sorted(broken_columns), None, skipped)
