"""Whole tables in memory: loaded with their values converted and dtypes compacted (with a load report),
read again the same way, seeded samples, rows with a known target, duplicate rows, content hashes.

The reading itself (formats, dialects, errors) lives in ``mlhelpers.core.io``, the value conversions in
``mlhelpers.core.values``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlhelpers.core import io, values


def compact_dtypes(frame: pd.DataFrame, max_category_share: float = 0.5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Shrink dtypes without changing any value: strings to ``category`` (when at most
    ``max_category_share`` of rows are distinct), integers to the smallest integer type, floats to
    float32 where that is lossless.

    Returns the compacted frame (a copy) and a per-column table: dtype before and after, memory in MB.
    """
    import numpy as np

    out = {}
    rows = []
    for name in frame.columns:
        column = frame[name]
        before = column.memory_usage(index=False, deep=True)
        new = column
        if column.dtype == object:
            kind = pd.api.types.infer_dtype(column, skipna=True)
            if kind == "string" and column.nunique(dropna=True) <= max_category_share * len(column):
                new = column.astype("category")
        elif pd.api.types.is_integer_dtype(column.dtype) and not isinstance(column.dtype, pd.api.extensions.ExtensionDtype):
            new = pd.to_numeric(column, downcast="integer")
        elif column.dtype == np.float64:
            small = column.astype(np.float32)
            with np.errstate(invalid="ignore", over="ignore"):
                same = np.array_equal(small.to_numpy(dtype=np.float64), column.to_numpy(), equal_nan=True)
            if same:
                new = small
        out[name] = new
        rows.append({"column": name, "dtype_before": str(column.dtype), "dtype_after": str(new.dtype),
                     "mb_before": before / 1e6,
                     "mb_after": new.memory_usage(index=False, deep=True) / 1e6})
    compact = pd.DataFrame(out, index=frame.index)
    return compact, pd.DataFrame(rows).set_index("column").round(3)


@dataclass
class LoadReport:
    """What loading a table did: ``summary`` (source, format, dialect, shape, memory) and ``conversions``
    (``mlhelpers.core.values``: the values read differently from how they were written, recorded in
    eda.json so every later read repeats them). Shows both as tables in a notebook."""

    summary: pd.DataFrame
    conversions: dict[str, dict[str, Any]] = field(default_factory=dict)

    def conversions_table(self) -> pd.DataFrame:
        return values.conversions_table(self.conversions)

    def _repr_html_(self) -> str:
        if not self.conversions:
            note = "<p>Every value read as written: no text markers, units, yes/no words or infinities to convert.</p>"
        else:
            note = (f"<p><b>{len(self.conversions)} column(s) read differently from how they are written</b> "
                    "(the same conversion is applied whenever this data or new rows are read):</p>"
                    + self.conversions_table().to_html())
        return self.summary.to_html() + note


def load_compact(path: str | Path, query: str | None = None, sheet: str | int | None = None,
                 target: str | None = None, frame: pd.DataFrame | None = None) -> tuple[pd.DataFrame, LoadReport]:
    """Load a table (``mlhelpers.core.io.load_table``), convert its values (``mlhelpers.core.values``:
    missing-value words, yes/no, units, dates, infinities; the target only to numbers) and compact its dtypes.
    ``frame``: the table as ``load_table`` read it already (not read again).

    Returns the frame and a ``LoadReport``: a summary table (source, format, CSV dialect, shape, memory
    before and after, the share saved) and the conversions made.
    """
    path = Path(path)
    frame = io.load_table(path, query=query, sheet=sheet) if frame is None else frame
    frame, conversions = values.convert_table(frame, target=target, from_text=io.file_format(path) == "csv")
    compact, per_column = compact_dtypes(frame)
    before, after = per_column["mb_before"].sum(), per_column["mb_after"].sum()
    summary = {"source": path.name + (f" ({query})" if query else "") + (f", sheet {sheet!r}" if sheet is not None else ""),
               "format": io.file_format(path)}
    if summary["format"] == "csv":
        fmt = io.sniff_csv(path)
        summary |= {"encoding": fmt.encoding, "delimiter": repr(fmt.delimiter), "decimal mark": repr(fmt.decimal)}
    changed = per_column[per_column["dtype_before"] != per_column["dtype_after"]]
    summary |= {"rows": f"{len(compact):,}", "columns": str(compact.shape[1]),
                "memory as read (MB)": f"{before:,.1f}", "memory compacted (MB)": f"{after:,.1f}",
                "memory saved": f"{1 - after / before:.0%}" if before else "0%",
                "values converted": ", ".join(f"{name} ({conversion['kind']})" for name, conversion
                                              in conversions.items()) or "none",
                "dtypes changed": ", ".join(f"{c}: {r.dtype_before}->{r.dtype_after}"
                                            for c, r in changed.iterrows()) or "none"}
    return compact, LoadReport(pd.DataFrame({"value": summary}), conversions)


def load_as_explored(path: str | Path, conversions: dict[str, dict[str, Any]], query: str | None = None,
                     sheet: str | int | None = None) -> pd.DataFrame:
    """Read the table again as the explore step read it: ``load_table``, then the ``conversions`` it
    recorded in eda.json (values that do not convert become missing, as they did then)."""
    frame = io.load_table(path, query=query, sheet=sheet)
    return values.apply_conversions(frame, conversions)


def seeded_sample(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """``frame`` itself when it has at most ``rows`` rows, else a seeded sample of ``rows`` rows in table order."""
    return frame if len(frame) <= rows else frame.sample(n=rows, random_state=seed).sort_index()


MIN_KNOWN_TARGETS = 10  # rows with a known target below which no step can explore or model


def parse_times(times: pd.Series) -> pd.Series:
    """A time column in a form that orders: numbers and datetimes as they are (a year, a timestamp), anything else
    parsed as dates in mixed formats, NaT where a value is not one."""
    if pd.api.types.is_numeric_dtype(times) or pd.api.types.is_datetime64_any_dtype(times):
        return times
    return pd.to_datetime(times, errors="coerce", format="mixed")


TIME_FIX = "point time_column at a date or number column, or fill in or remove those rows"


def unplaced_times(times: pd.Series, where: str = "") -> str:
    """What keeps ``times`` from ordering rows (``parse_times``): how many values are missing or neither dates nor
    numbers, with examples; empty when every value has its place. ``where`` follows the count (" in x.csv")."""
    unplaced = pd.isna(parse_times(times))
    if not unplaced.any():
        return ""
    examples = ", ".join(repr(value) for value in times[unplaced].dropna().astype(str).unique()[:3])
    return (f"{times.name!r} has {int(unplaced.sum()):,} of {len(times):,} values{where} that are missing or neither "
            "dates nor numbers" + (f" (e.g. {examples})" if examples else ""))


def drop_missing_target(frame: pd.DataFrame, target: str) -> tuple[pd.DataFrame, int]:
    """Rows whose target is known, and how many were dropped."""
    known = frame[target].notna()
    return frame.loc[known], int((~known).sum())


# Exact copies of a row on both sides of a split make a model that memorises rows look better than it
# is. Above this share of rows that copy an earlier one, the baseline keeps each group of copies
# (features and target) on one side of the test split and of every fold. Below it the inflation is at
# most about that share of the validation rows, and exact stratification is worth more.
DUPLICATE_SHARE = 0.01
# Identical rows are copies, not coincidences, when their values together would occur fewer than this
# many times in a table of this size by chance (each column's value frequencies multiplied, as if the
# columns were independent). In a table of a few categorical columns identical rows are expected and
# i.i.d.: grouping them would put every "yes" row of a combination in one fold and every "no" row in
# another, and score the model on the opposite of what it learned (credit's categorical columns: ROC AUC
# 0.44). Copies of rows with continuous values are far below it (1e-10 on credit).
CHANCE_COUNT = 0.01


def duplicate_groups(frame: pd.DataFrame) -> np.ndarray:
    """One group number per row, equal for identical rows (every column, missing values equal),
    numbered in order of first appearance. Rows are compared by a 64-bit hash of their values
    (pandas' ``hash_pandas_object``), so a table of any width costs one pass."""
    hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return pd.factorize(hashes)[0]


def copied_rows(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(groups, copied)``: ``duplicate_groups(frame)``, and whether each row belongs to a group of
    copies: two rows or more whose values would occur by chance fewer than ``CHANCE_COUNT`` times in
    a table of this size (columns taken as independent, so correlated columns make this conservative
    only up to their correlation; identical rows of common values are coincidences, not copies)."""
    groups = duplicate_groups(frame)
    n = len(frame)
    if n == 0:
        return groups, np.zeros(0, dtype=bool)
    log_share = np.zeros(n)
    for position in range(frame.shape[1]):
        codes = pd.factorize(frame.iloc[:, position], use_na_sentinel=False)[0]
        log_share += np.log(np.bincount(codes)[codes] / n)
    repeated = np.bincount(groups)[groups] > 1
    return groups, repeated & (n * np.exp(log_share) < CHANCE_COUNT)


def file_sha256(path: str | Path) -> str:
    """Content hash of a file, so a changed input is visible in the manifest."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
