"""Values as a person means them: missing-value words, yes/no, "1,200", "45%", "$300", date strings and infinities.

``convert_table`` looks at a freshly read table once (the explore step) and returns it converted with
the list of conversions it made (JSON, recorded in ``explore/eda.json`` and, for the model's features,
in ``model/input_schema.json``); ``apply_conversions`` repeats exactly those conversions wherever the
table, or a file of new rows, is read again (the baseline and export steps, ``mlh predict``, the MLflow
model). Columns are converted only when nearly all their values agree (``NEARLY_ALL``):

* numbers written as text: thousands separators (``1,200``), one unit or currency per column (``45%``,
  ``$300``, ``12 kg``), with missing-value words (``unknown``, ``-``, ``n/a`` ...) read as missing;
* booleans written as words: ``yes``/``no``, ``y``/``n``, ``true``/``false``, ``t``/``f`` (any case),
  and true/false columns with gaps, become pandas' ``boolean`` dtype (missing kept);
* date-time strings (with a date part; a zone or ``Z`` makes them UTC) become ``datetime64``;
* infinities (``inf``, ``-inf``) in numeric columns are read as missing, like the words above: the
  models cannot use them, and an imputed gap is what a division by zero usually means.

On the training data the few values that still do not convert are read as missing and counted. When
new rows are scored (``strict=True``) they are kept as written, so the input schema check refuses
them by name; infinities become missing only in columns whose training data had them.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["MISSING_WORDS", "NEARLY_ALL", "convert_table", "infer_conversions", "apply_conversions",
           "conversions_table"]

NEARLY_ALL = 0.99          # share of a column's known values that must convert for the column to convert
# Words and signs that mean "no value" in the wild (compared lower-cased, spaces stripped). pandas already
# reads "", NA, N/A, null, NaN and None as missing; these are the ones it leaves as text.
MISSING_WORDS = frozenset({
    "unknown", "unk", "n/a", "n.a.", "n.a", "na", "nan", "none", "null", "nil", "missing", "-", "--", "---",
    "—", "–", ".", "?", "??", "not available", "not applicable", "no data", "undefined", "#n/a", "#na",
    "#value!", "#div/0!", "#ref!", "#num!", "#null!", "(blank)", "blank", "empty"})
BOOLEAN_WORDS = ({"yes": True, "no": False}, {"y": True, "n": False}, {"true": True, "false": False},
                 {"t": True, "f": False})
_NUMBER = re.compile(r"^(?P<sign>[-+\u2212]?)\s*(?P<currency>[$€£¥₹])?\s*"
                     r"(?P<number>[-+]?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)"
                     r"\s*(?P<unit>%|‰|[A-Za-zµ°]{1,5})?$")
_DATE_PART = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}")
_ZONE = re.compile(r"(?:Z|[+-]\d{2}:?\d{2}|UTC|GMT)$", re.IGNORECASE)
_SCREEN = 1000             # distinct values looked at before parsing a whole column
_EXAMPLES = 3


def _is_text_column(column: pd.Series) -> bool:
    return column.dtype == object or isinstance(column.dtype, pd.StringDtype)


def _is_marker(texts: pd.Series) -> np.ndarray:
    """Stripped texts that mean "no value": a missing-value word, or nothing but spaces (a cell of one space read
    as an unreadable number, and a column with 1% of them stayed text)."""
    return (texts.str.lower().isin(MISSING_WORDS) | (texts == "")).to_numpy()


def _texts(values: pd.Index) -> pd.Series:
    """Each distinct value as stripped text, indexed by the value itself."""
    return pd.Series([str(value).strip() for value in values], index=values, dtype=object)


def _parse_numbers(texts: pd.Series) -> pd.DataFrame:
    """``number`` (float, NaN when the text is no number) and ``unit`` for each text."""
    parts = texts.astype(str).str.extract(_NUMBER)
    number = parts["number"].str.replace(",", "", regex=False)
    infinity = texts.astype(str).str.lower().str.fullmatch(r"[-+]?inf(inity)?")
    number = number.mask(infinity, texts.astype(str).str.lower().str.replace("inity", "", regex=False))
    values = pd.to_numeric(number, errors="coerce")
    values = values.where(~parts["sign"].isin(["-", "\u2212"]), -values)
    unit = parts["currency"].fillna("") + parts["unit"].fillna("")
    return pd.DataFrame({"number": values.astype(float), "unit": unit.where(values.notna(), "")},
                        index=texts.index)


def _infer_number(texts: pd.Series, counts: pd.Series) -> dict[str, Any] | None:
    parsed = _parse_numbers(texts)
    ok = parsed["number"].notna()
    if counts[ok.to_numpy()].sum() < NEARLY_ALL * counts.sum():
        return None
    units = sorted(set(parsed.loc[ok, "unit"]) - {""})
    if len(units) > 1:  # "165cm" next to "5ft": mixed units need a person, not a parser
        return None
    codes = texts[ok].str.match(r"^0\d")
    if counts[ok.to_numpy()][codes.to_numpy()].sum() > 0.01 * counts.sum():  # "00123": codes, not quantities
        return None
    return {"infinite": bool(np.isinf(parsed.loc[ok, "number"]).any()), "unit": units[0] if units else None,
            "thousands": bool(texts[ok].str.contains(r"\d,\d{3}", regex=True).any())}


def _infer_boolean(values: pd.Index, texts: pd.Series) -> dict[str, Any] | None:
    lowered = texts.str.lower()
    if all(isinstance(value, (bool, np.bool_)) for value in values):
        return {"true": "True", "false": "False", "from": "true/false with gaps"}
    for words in BOOLEAN_WORDS:
        if set(lowered) <= set(words):
            true_word = next((t for t, low in zip(texts, lowered) if words[low]), None)
            false_word = next((t for t, low in zip(texts, lowered) if not words[low]), None)
            return {"true": true_word, "false": false_word, "from": "text"}
    return None


def _parse_dates(values: pd.Series, utc: bool) -> pd.Series:
    """Date-times from text (fast ISO 8601 first, then any format pandas reads); NaT where none."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text = values.astype(object).where(values.notna(), None)
        try:
            return pd.to_datetime(text, format="ISO8601", utc=utc)
        except (ValueError, TypeError):
            return pd.to_datetime(text, format="mixed", errors="coerce", utc=utc)


def _infer_datetime(texts: pd.Series, counts: pd.Series) -> dict[str, Any] | None:
    screen = texts.head(_SCREEN)
    if screen.str.contains(_DATE_PART).mean() < 0.95:
        return None
    utc = bool(texts.str.contains(_ZONE).any())
    parsed = _parse_dates(pd.Series(texts.to_numpy(), dtype=object), utc)
    ok = parsed.notna().to_numpy()
    if counts[ok].sum() < NEARLY_ALL * counts.sum():
        return None
    return {"utc": utc}


def infer_conversions(frame: pd.DataFrame, target: str | None = None,
                      from_text: bool = False) -> dict[str, dict[str, Any]]:
    """The conversions ``frame`` needs, by column (JSON-ready; see the module doc). The target column
    only ever converts to a number (its labels stay as written). ``from_text``: the file held only text (a
    CSV), so a column the reader already parsed as date-times (pyarrow does, pandas' own parser does not)
    is recorded as converted from text too, and new rows read as text get the same conversion."""
    conversions: dict[str, dict[str, Any]] = {}
    for name in frame.columns:
        column = frame[name]
        if from_text and pd.api.types.is_datetime64_any_dtype(column.dtype) and name != target:
            conversions[str(name)] = {"kind": "datetime", "from": "text", "utc": column.dt.tz is not None,
                                      "markers": []}
            continue
        if pd.api.types.is_float_dtype(column.dtype):
            if np.isinf(column.to_numpy(dtype=float, na_value=np.nan)).any():
                conversions[str(name)] = {"kind": "number", "from": "number", "unit": None, "thousands": False,
                                          "infinite": True}
            continue
        if not _is_text_column(column):
            continue
        counts = column.value_counts(dropna=True)
        if counts.empty:
            continue
        texts = _texts(counts.index)
        marker = _is_marker(texts)
        known, known_texts = counts[~marker], texts[~marker]
        if known.empty:
            continue
        found: dict[str, Any] | None = None
        boolean = None if name == target else _infer_boolean(known.index, known_texts)
        if boolean is not None:
            found = {"kind": "boolean"} | boolean
        elif known_texts.head(_SCREEN).str.match(r"^[-+\u2212]?\s*[$€£¥₹]?\s*[-+]?\.?\d").mean() >= 0.9:
            number = _infer_number(known_texts, known)
            date = None if number is not None or name == target else _infer_datetime(known_texts, known)
            if number is not None:
                found = {"kind": "number", "from": "text", "infinite": bool(number.pop("infinite"))} | number
            elif date is not None:
                found = {"kind": "datetime", "from": "text"} | date
        if found is not None:
            conversions[str(name)] = found | {"markers": sorted(texts[marker].tolist())}
    return conversions


def _boolean_words(conversion: dict[str, Any]) -> dict[str, bool]:
    """Every spelling the column's pair of words may take (any case), plus true/false themselves."""
    seen = {str(word).lower() for word in (conversion.get("true"), conversion.get("false")) if word is not None}
    pair = next((words for words in BOOLEAN_WORDS if seen & set(words)), {})
    return pair | {"true": True, "false": False}


def _convert_column(column: pd.Series, conversion: dict[str, Any], strict: bool) -> tuple[pd.Series, dict[str, Any]]:
    """The converted column and what happened to it: missing-value words, unreadable values, infinities."""
    kind = conversion["kind"]
    numeric = pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype)
    if kind == "datetime" and pd.api.types.is_datetime64_any_dtype(column.dtype):
        # one resolution whichever reader parsed it (pyarrow gives seconds, pandas nanoseconds)
        zoned = column.dt.tz is not None
        return column.astype("datetime64[ns, UTC]" if zoned and conversion.get("utc") else
                             column.dtype if zoned else "datetime64[ns]"), {}
    if kind == "number" and numeric:  # numbers already: a float column with infinities, or rows converted before
        values = column.astype(float)
        infinite = np.isinf(values.to_numpy())
        if infinite.any() and (conversion.get("infinite") or not strict):
            values = values.mask(infinite)
        return values, {"infinite": int(infinite.sum())}
    present = column.notna().to_numpy()
    text = pd.Series([str(value).strip() if keep else None for value, keep in zip(column.to_numpy(), present)],
                     index=column.index, dtype=object)
    is_word = present & _is_marker(text)
    made_missing = np.zeros(len(column), dtype=bool)
    note: dict[str, Any] = {}
    if kind == "number":
        parsed = _parse_numbers(text.where(present, ""))
        wrong_unit = (parsed["unit"] != "") & (parsed["unit"] != (conversion.get("unit") or ""))
        converted = parsed["number"].mask(wrong_unit)
        infinite = np.isinf(converted.to_numpy())
        if infinite.any() and (conversion.get("infinite") or not strict):
            converted, made_missing = converted.mask(infinite), infinite
        note["infinite"] = int(infinite.sum())
    elif kind == "boolean":
        converted = text.str.lower().map(_boolean_words(conversion)).astype("boolean")
    else:
        converted = _parse_dates(text.mask(is_word), bool(conversion.get("utc")))
    unreadable = present & ~is_word & ~made_missing & converted.isna().to_numpy()
    note |= {"missing_words": int(is_word.sum()), "unreadable": int(unreadable.sum()),
             "examples": [str(v) for v in pd.unique(text[unreadable])[:_EXAMPLES]]}
    if strict and unreadable.any():  # keep what was written, so the schema check refuses it by name
        converted = converted.astype(object).where(~unreadable, column)
    return converted, note


def apply_conversions(frame: pd.DataFrame, conversions: dict[str, dict[str, Any]], strict: bool = False,
                      notes: dict[str, dict[str, Any]] | None = None) -> pd.DataFrame:
    """``frame`` (a copy) with ``conversions`` applied to the columns it has; values already converted stay.

    ``strict`` (new rows to score): values that do not convert are kept as written, for the schema check
    to refuse by name. Otherwise (the training data read again) they become missing. ``notes``, when
    given, receives per column how many values were missing words, unreadable or infinite.
    """
    out = frame.copy()
    for name, conversion in conversions.items():
        if name in out.columns:
            out[name], note = _convert_column(out[name], conversion, strict)
            if notes is not None:
                notes[name] = note
    return out


def convert_table(frame: pd.DataFrame, target: str | None = None,
                  from_text: bool = False) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """``frame`` with the conversions it needs applied, and those conversions (with their counts on this
    data: ``missing_words``, ``unreadable`` and ``examples``, ``infinite``) for the load report and eda.json.
    ``from_text``: see ``infer_conversions``."""
    conversions = infer_conversions(frame, target=target, from_text=from_text)
    notes: dict[str, dict[str, Any]] = {}
    converted = apply_conversions(frame, conversions, notes=notes)
    return converted, {name: conversion | {"counts": notes.get(name, {})} for name, conversion in conversions.items()}


def _describe(conversion: dict[str, Any]) -> tuple[str, str]:
    kind = conversion["kind"]
    if kind == "number" and conversion.get("from") == "number":
        return "number", "infinite values read as missing"
    if kind == "number":
        how = [f"unit {conversion['unit']!r} dropped" if conversion.get("unit") else "",
               "thousands separators removed" if conversion.get("thousands") else ""]
        return "number", "; ".join(part for part in how if part) or "numbers stored as text"
    if kind == "boolean":
        return "boolean", f"{conversion['true']!r} = true, {conversion['false']!r} = false"
    return "date-time" + (" (UTC)" if conversion.get("utc") else ""), "date-time strings parsed"


def conversions_table(conversions: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per converted column: from, to, how, and how many values became missing and why."""
    rows = []
    for name, conversion in conversions.items():
        to, how = _describe(conversion)
        counts = conversion.get("counts", {})
        words = ", ".join(repr(m) for m in conversion.get("markers", []))
        missing = [f"{counts['missing_words']:,} missing-value words ({words})" if counts.get("missing_words") else "",
                   f"{counts['infinite']:,} infinite" if counts.get("infinite") else "",
                   (f"{counts['unreadable']:,} unreadable (e.g. {', '.join(map(repr, counts['examples']))})"
                    if counts.get("unreadable") else "")]
        rows.append({"column": name, "read as": to, "from": conversion.get("from", "text"), "how": how,
                     "read as missing": "; ".join(part for part in missing if part) or "none"})
    table = pd.DataFrame(rows, columns=["column", "read as", "from", "how", "read as missing"])
    return table.set_index("column")
