"""What the table holds: each column's role with its evidence, computed exactly on the whole data.

``column_roles`` says what every column is (numeric, categorical, identifier, constant, duplicate, ...)
and why. Errors are ``mlhelpers.explore.EdaError``: the message names the column and the fix.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import numpy as np
import pandas as pd

from mlhelpers.explore import EdaError

__all__ = ["column_roles", "show_value", "parse_dates"]

MOSTLY_MISSING = 0.9        # share of missing values from which a column is "mostly missing"
NEAR_CONSTANT = 0.99        # share of the most frequent value from which a column is "near constant"
IDENTIFIER_UNIQUE = 0.99    # share of distinct values from which an integer/string column is an identifier
MAX_CATEGORIES = 30         # more distinct values than this: high cardinality

_ID_NAME = re.compile(r"^(id|uuid|guid|key|index|rownames|row_?(id|num|number)|unnamed: ?\d+)$"
                      r"|[_\s.-](id|uuid|guid|key|no|number)$", re.IGNORECASE)
_CAMEL_ID = re.compile(r"[a-z0-9](ID|Id)$")
_PERSON_NAME = re.compile(r"(?i)^(first|last|full|customer|user|person|passenger|employee)?[_ ]?name$")
_DATE_LIKE = re.compile(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}|\d{4}-\d{2}|\d{1,2}:\d{2}")


def show_value(value: Any) -> str:
    """A value as a reader wants to see it: 2013, not np.int16(2013)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def parse_dates(column: pd.Series) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pd.to_datetime(column.astype("string"), errors="coerce", format="mixed")


def _looks_like_dates(values: pd.Series) -> tuple[bool, str]:
    sample = values.dropna().astype(str).drop_duplicates().head(500)
    if sample.empty or not sample.str.contains(_DATE_LIKE).mean() >= 0.95:
        return False, ""
    parsed = parse_dates(sample)
    share = parsed.notna().mean()
    return share >= 0.95, f"strings parsed as dates ({share:.0%} of {len(sample)} distinct values), e.g. {sample.iloc[0]!r}"


def _is_stringish(column: pd.Series) -> bool:
    return column.dtype == object or isinstance(column.dtype, (pd.CategoricalDtype, pd.StringDtype))


def _base_role(column: pd.Series, n_unique: int, nonnull: int, values: pd.Index) -> tuple[str, str]:
    """The role a column has as a feature, ignoring flags such as identifier or constant."""
    if pd.api.types.is_bool_dtype(column.dtype):
        return "boolean", "true/false values"
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        return "datetime", "datetime dtype"
    if pd.api.types.is_numeric_dtype(column.dtype):
        if n_unique <= 2 and set(values.tolist()) <= {0, 1}:
            return "boolean", "numeric 0/1 values"
        return "numeric", f"numeric, {n_unique:,} distinct values"
    if column.dtype == object and pd.api.types.infer_dtype(column, skipna=True) == "boolean":
        return "categorical", "true/false values stored as objects"
    is_date, evidence = _looks_like_dates(pd.Series(values[:500]))  # distinct values, most frequent first
    if is_date:
        return "datetime", evidence
    sample = pd.Series(values[:2000].astype(str))
    lengths, words = sample.str.len().mean(), sample.str.count(r"\s+").mean() + 1
    if nonnull and n_unique / nonnull > 0.5 and lengths >= 30 and words >= 4:
        return "text", f"free text: {lengths:.0f} characters and {words:.0f} words on average"
    if n_unique <= MAX_CATEGORIES:
        shown = ", ".join(map(str, values[:4])) + (", ..." if n_unique > 4 else "")
        return "categorical", f"{n_unique} categories ({shown})"
    return "high_cardinality", f"{n_unique:,} categories (more than {MAX_CATEGORIES})"


def _same_information(a: pd.Series, b: pd.Series, nonnull: int, n_unique: int) -> str:
    """How ``b`` duplicates ``a`` ('' if it does not)."""
    missing_a, missing_b = a.isna().to_numpy(), b.isna().to_numpy()
    if not np.array_equal(missing_a, missing_b):
        return ""
    values_a, values_b = a.to_numpy(dtype=object)[~missing_a], b.to_numpy(dtype=object)[~missing_b]
    if bool((values_a == values_b).all()):
        return "identical values"
    if n_unique <= 0.5 * nonnull:
        pairs = pd.DataFrame({"a": pd.factorize(a)[0], "b": pd.factorize(b)[0]}).drop_duplicates()
        if len(pairs) == pairs["a"].nunique() == pairs["b"].nunique():
            return "the same values under other labels (one-to-one)"
    return ""


def column_roles(frame: pd.DataFrame, target: str | None = None) -> pd.DataFrame:
    """Each column's role with its evidence, computed exactly on the whole frame.

    Returns a DataFrame indexed by column: ``role`` (numeric, boolean, categorical,
    high_cardinality, datetime, text, identifier, constant, near_constant, mostly_missing,
    duplicate, target), ``base_role`` (what the column would be as a feature), ``dtype``,
    ``missing_pct``, ``n_unique``, ``top_pct`` (share of the most frequent value) and ``evidence``;
    ``attrs["duplicate_comparisons"]`` counts the exact column comparisons the duplicate check made.
    """
    if target is not None and target not in frame.columns:
        raise EdaError(f"target {target!r} is not a column; columns: {', '.join(map(str, frame.columns))}.")
    n = len(frame)
    rows: list[dict[str, Any]] = []
    # Columns are grouped by a digest of what a duplicate must share, and compared exactly only within a group,
    # so the check is linear in the number of columns (5,000 columns: one pass; comparing every pair took 26 s
    # for 1,000). See _duplicate_digest.
    seen: dict[tuple[int, int, bytes], list[str]] = {}
    comparisons = 0
    for name in frame.columns:
        column = frame[name]
        counts = column.value_counts(dropna=True, sort=True)
        nonnull = int(counts.sum())
        n_unique = len(counts)
        missing = 1 - nonnull / n if n else 0.0
        top = counts.iloc[0] / nonnull if nonnull else 0.0
        base, base_evidence = ("numeric", "no values") if not nonnull else _base_role(column, n_unique, nonnull, counts.index)
        missing_note = f", {_pct(missing)} missing" if missing else ""
        role, evidence = base, base_evidence + missing_note
        if name == target:
            role, evidence = "target", "the column to predict" + missing_note
        elif nonnull == 0:
            role, evidence = "mostly_missing", "all values missing"
        elif n_unique == 1 and missing == 0:
            role, evidence = "constant", f"a single value ({show_value(counts.index[0])}) in every row"
        elif missing >= MOSTLY_MISSING:
            role, evidence = "mostly_missing", f"{missing:.1%} missing (from {MOSTLY_MISSING:.0%} on)"
        else:
            duplicate_of = ""
            for other in seen.get(key := (n_unique, nonnull, _duplicate_digest(column, n_unique, nonnull)), []):
                comparisons += 1
                how = _same_information(frame[other], column, nonnull, n_unique)
                if how:
                    duplicate_of = f"duplicate of {other!r}: {how}"
                    break
            identifier = _identifier_evidence(name, column, base, n_unique, nonnull)
            if duplicate_of:
                role, evidence = "duplicate", duplicate_of
            elif identifier:
                role, evidence = "identifier", identifier
            elif n_unique == 1:
                evidence = f"a single value plus {missing:.0%} missing: only missingness carries information"
            elif top >= NEAR_CONSTANT and base != "text":
                role = "near_constant"
                evidence = f"{top:.1%} of known values are {show_value(counts.index[0])}{missing_note}"
            seen.setdefault(key, []).append(name)
        rows.append({"column": name, "role": role, "base_role": base, "dtype": str(column.dtype),
                     "missing_pct": round(100 * missing, 2), "n_unique": n_unique,
                     "top_pct": round(100 * top, 2), "evidence": evidence})
    table = pd.DataFrame(rows).set_index("column")
    table.attrs["duplicate_comparisons"] = comparisons  # exact column comparisons made (a measure of the cost)
    return table


def _duplicate_digest(column: pd.Series, n_unique: int, nonnull: int) -> bytes:
    """What a duplicate of ``column`` must share, hashed. Where ``_same_information`` also accepts other labels
    (at most half the values distinct), the factorized codes: a one-to-one relabelling (and equal values) gives
    the same codes, in order of appearance. Elsewhere the values themselves, numbers as float64 so an integer
    column and its float copy agree; codes would not tell apart all columns of distinct values (all 0..n-1)."""
    import hashlib

    if n_unique <= 0.5 * nonnull:
        data = pd.factorize(column, use_na_sentinel=True)[0].astype(np.int64)
    elif pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
        data = column.to_numpy(dtype=np.float64, na_value=np.nan)
        data = np.where(np.isnan(data), np.inf, data) + 0.0  # one NaN pattern, and -0.0 == 0.0
    else:
        data = pd.util.hash_pandas_object(column.astype(object), index=False).to_numpy()
    return hashlib.blake2b(np.ascontiguousarray(data).tobytes(), digest_size=16).digest()


def _identifier_evidence(name: str, column: pd.Series, base: str, n_unique: int, nonnull: int) -> str:
    unique_share = n_unique / nonnull if nonnull else 0.0
    if base in ("boolean", "datetime", "text"):
        return ""
    named = bool(_ID_NAME.search(str(name)) or _CAMEL_ID.search(str(name)) or _PERSON_NAME.match(str(name)))
    integral = pd.api.types.is_integer_dtype(column.dtype) or _is_stringish(column)
    unique = integral and unique_share >= IDENTIFIER_UNIQUE and nonnull >= 20
    if not (unique or (named and unique_share >= 0.5)):
        return ""
    evidence = [f"unique for {unique_share:.0%} of rows ({n_unique:,} distinct)"]
    if named:
        evidence.append("its name looks like a key or a name")
    if pd.api.types.is_numeric_dtype(column.dtype) and column.is_monotonic_increasing:
        evidence.append("it increases with the row order (a row number)")
    return ", ".join(evidence)


def _pct(share: float) -> str:
    return f"{share:.0%}" if share >= 0.01 or share == 0 else f"{share:.2%}"



