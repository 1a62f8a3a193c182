"""What the table holds: each column's role with its evidence, computed exactly on the whole data.

``column_roles`` says what every column is (numeric, categorical, identifier, constant, duplicate, ...)
and why. Errors are ``mlhelpers.explore.EdaError``: the message names the column and the fix.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from mlhelpers.core.models import MIN_CATEGORY_ROWS, ORDINAL_MAX_CATEGORIES
from mlhelpers.explore import EdaError

__all__ = ["column_roles", "show_value", "parse_dates", "text_statistics", "is_free_text"]

MOSTLY_MISSING = 0.9        # share of missing values from which a column is "mostly missing"
NEAR_CONSTANT = 0.99        # share of the most frequent value from which a column is "near constant"
IDENTIFIER_UNIQUE = 0.99    # share of distinct values from which an integer/string column is an identifier
NAMED_KEY_UNIQUE = 0.1      # ... or one named like a key (id, key, row_id): repeated values are rows of one entity
MAX_CATEGORIES = 30         # more distinct values than this: high cardinality

_ID_NAME = re.compile(r"^(id|uuid|guid|key|index|rownames|row_?(id|num|number)|unnamed: ?\d+)$"
                      r"|[_\s.-](id|uuid|guid|key|no|number)$", re.IGNORECASE)
_CAMEL_ID = re.compile(r"[a-z0-9](ID|Id)$")
_PERSON_NAME = re.compile(r"(?i)^(first|last|full|customer|user|person|passenger|employee)?[_ ]?name$")
# Free text versus categories and keys, from the numbers ``text_statistics`` computes:
TEXT_TAIL_SHARE = 0.5       # share of rows a categorical encoding would pool as "infrequent" (values outside
                            # the ``ORDINAL_MAX_CATEGORIES`` most frequent, or seen in fewer than 5 rows), from
                            # which a column is text: a category keeps most rows in its frequent levels, text
                            # does not
TEXT_WORDS = 3              # values of this many words on average are phrases (art media: "Oil paint on canvas") ...
TEXT_WORDS_TAIL_SHARE = 0.1 # ... text once this share of rows is pooled: on Tate's 1,033 media (28% pooled) the
                            # text encoder lifted year R² from 0.35 to 0.44 (HistGradientBoosting, 5-fold CV)
TEXT_LETTER_SHARE = 0.6     # share of letters among non-space characters: keys and codes are digits or hex
TEXT_SHARED_NGRAMS = 0.5    # mean share of a value's 3-character pieces found in other values: words,
                            # stems and titles recur across free text, random keys share little
KEY_UNIQUE_SHARE = 0.99     # single-word values this unique are keys (user names, e-mails, codes), not text
_TEXT_SAMPLE = 2000         # distinct values sampled (seeded) to measure words, letters and shared pieces
_TEXT_CHARS = 200           # characters of each sampled value looked at

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


def _base_role(column: pd.Series, n_unique: int, nonnull: int, counts: pd.Series) -> tuple[str, str]:
    """The role a column has as a feature, ignoring flags such as identifier or constant."""
    values = counts.index
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
    if n_unique <= MAX_CATEGORIES:
        shown = ", ".join(map(str, values[:4])) + (", ..." if n_unique > 4 else "")
        return "categorical", f"{n_unique} categories ({shown})"
    stats = text_statistics(counts)
    if is_free_text(stats):
        return "text", _text_evidence(stats)
    return "high_cardinality", f"{n_unique:,} categories (more than {MAX_CATEGORIES})"


def text_statistics(counts: pd.Series) -> dict[str, Any]:
    """The numbers that tell free text from categories and keys, for a column's ``value_counts()``
    (most frequent first, missing values left out).

    ``unique_share`` (distinct values per row), ``tail_share`` (rows whose value a categorical
    encoding pools as "infrequent": outside the ``ORDINAL_MAX_CATEGORIES`` most frequent values, or seen in fewer than 5
    rows), and, on a seeded sample of up to 2,000 distinct values: ``mean_words``, ``mean_length``,
    ``letter_share`` (letters among non-space characters) and ``shared_ngram_share`` (mean share of a
    value's lower-cased 3-character pieces that occur in another sampled value).
    """
    nonnull = int(counts.sum())
    frequent = counts.iloc[:ORDINAL_MAX_CATEGORIES]
    covered = int(frequent[frequent >= MIN_CATEGORY_ROWS].sum())
    values = counts.index.to_numpy(dtype=object)
    if len(values) > _TEXT_SAMPLE:
        values = values[np.sort(np.random.default_rng(0).choice(len(values), _TEXT_SAMPLE, replace=False))]
    texts = [str(value)[:_TEXT_CHARS] for value in values]
    compact = "".join("".join(text.split()) for text in texts)
    pieces = [{text.lower()[i:i + 3] for i in range(max(len(text) - 2, 1))} for text in texts]
    seen = Counter(piece for value_pieces in pieces for piece in value_pieces)
    shared = [sum(seen[piece] > 1 for piece in value_pieces) / len(value_pieces) for value_pieces in pieces if value_pieces]
    return {"unique_share": round(len(counts) / nonnull, 4) if nonnull else 0.0,
            "tail_share": round(1 - covered / nonnull, 4) if nonnull else 0.0,
            "mean_words": round(float(np.mean([len(text.split()) for text in texts])), 2) if texts else 0.0,
            "mean_length": round(float(np.mean([len(text) for text in texts])), 1) if texts else 0.0,
            "letter_share": round(sum(ch.isalpha() for ch in compact) / len(compact), 4) if compact else 0.0,
            "shared_ngram_share": round(float(np.mean(shared)), 4) if shared else 0.0,
            "n_sampled": len(texts)}


def is_free_text(stats: dict[str, Any]) -> bool:
    """Whether ``text_statistics`` describe free text: mostly letters, pieces shared between values, not
    single unique words (keys), and either most rows outside the levels a categorical encoding keeps, or
    phrases of several words with a real share of rows outside them."""
    key_like = stats["mean_words"] < 1.5 and stats["unique_share"] >= KEY_UNIQUE_SHARE
    pooled = stats["tail_share"] >= TEXT_TAIL_SHARE or (
        stats["mean_words"] >= TEXT_WORDS and stats["tail_share"] >= TEXT_WORDS_TAIL_SHARE)
    return (pooled and stats["letter_share"] >= TEXT_LETTER_SHARE
            and stats["shared_ngram_share"] >= TEXT_SHARED_NGRAMS and not key_like)


def _text_evidence(stats: dict[str, Any]) -> str:
    shape = (f"several words ({stats['mean_words']:.1f} on average)" if stats["mean_words"] >= 2
             else f"short strings ({stats['mean_words']:.1f} words, {stats['mean_length']:.0f} characters on average)")
    return (f"free text: {shape}; {stats['tail_share']:.0%} of rows outside the {ORDINAL_MAX_CATEGORIES} most "
            f"frequent values a category keeps, {stats['unique_share']:.0%} distinct, "
            f"{stats['letter_share']:.0%} letters, {stats['shared_ngram_share']:.0%} of 3-character pieces shared")


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
        base, base_evidence = ("numeric", "no values") if not nonnull else _base_role(column, n_unique, nonnull, counts)
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
    if base in ("boolean", "datetime"):
        return ""
    named = bool(_ID_NAME.search(str(name)) or _CAMEL_ID.search(str(name)) or _PERSON_NAME.match(str(name)))
    if base == "text":
        # Free text is a feature, unless its name says it is a key or a person's name (row labels such
        # as "rownames", customer names): those stay out of the model unless vouched for.
        if not (named and unique_share >= 0.5):
            return ""
        return (f"unique for {unique_share:.0%} of rows ({n_unique:,} distinct) and its name looks like a key "
                "or a name; it reads as free text: keep_columns uses it as text")
    integral = pd.api.types.is_integer_dtype(column.dtype) or _is_stringish(column)
    unique = integral and unique_share >= IDENTIFIER_UNIQUE and nonnull >= 20
    if not (unique or (named and unique_share >= NAMED_KEY_UNIQUE)):
        return ""
    evidence = [f"unique for {unique_share:.0%} of rows ({n_unique:,} distinct)"]
    if named:
        evidence.append("its name looks like a key or a name")
    if named and unique_share < 0.5:  # mlmRev's star: a pupil's id in each of the grades they were tested in
        evidence.append(f"each value in {nonnull / n_unique:.1f} rows on average, rows of one entity: set "
                        f"group_column: {name} to keep each on one side of every split")
    if pd.api.types.is_numeric_dtype(column.dtype) and column.is_monotonic_increasing:
        evidence.append("it increases with the row order (a row number)")
    return ", ".join(evidence)


def _pct(share: float) -> str:
    return f"{share:.0%}" if share >= 0.01 or share == 0 else f"{share:.2%}"



