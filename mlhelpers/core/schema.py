"""The model's input schema: inferred from the training rows at export, checked on every row scored.

``infer_input_schema`` writes what a scoring row must look like (``model/input_schema.json``);
``check_rows`` splits rows into valid ones (converted to the training dtypes) and rejects with a
reason each. ``mlh predict``, the MLflow model and the drift check all use the same check.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlhelpers.core.values import apply_conversions

# Roles whose values are checked against the categories seen in training; high-cardinality
# columns accept unseen values (the encoder maps them to "unknown").
CLOSED_ROLES = ("boolean", "categorical")
_SHOWN_CATEGORIES = 8


class SchemaError(ValueError):
    """The input as a whole does not fit the model's input schema (e.g. columns are missing)."""


def infer_input_schema(X_train: pd.DataFrame, spec: dict[str, Any], classes: list | None,
                       conversions: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """What a scoring row must look like: columns, dtypes, allowed categories, ranges seen in training.

    Numeric columns record ``min``/``max`` (informational: values outside are scored);
    ``boolean``/``categorical`` columns list every value seen (others are refused);
    ``high_cardinality`` columns accept any value; ``datetime`` columns record the range and
    refuse values that do not parse as a date/time. Missing values are accepted everywhere
    (the pipeline imputes them); a row with every feature missing is refused. ``conversions`` (eda.json's,
    ``mlhelpers.core.values``) are kept for the feature columns: scoring repeats them before checking.
    """
    roles = {name: role for role, names in spec["features"].items() for name in names}
    columns: dict[str, Any] = {}
    for name in X_train.columns:
        series = X_train[name]
        info: dict[str, Any] = {"role": roles[name], "dtype": str(series.dtype),
                                "missing_seen": bool(series.isna().any())}
        if roles[name] == "numeric" and pd.api.types.is_numeric_dtype(series):
            info |= {"min": _builtin(series.min()), "max": _builtin(series.max())}
        elif roles[name] == "datetime":
            parsed = pd.to_datetime(series.astype("object"), errors="coerce", format="mixed")
            info |= {"min": _iso(parsed.min()), "max": _iso(parsed.max())}
        elif roles[name] in CLOSED_ROLES:
            info["categories"] = sorted((_builtin(v) for v in series.dropna().unique()), key=str)
        else:
            info["n_categories"] = int(series.nunique())
        columns[name] = info
    kept = {name: {key: value for key, value in conversion.items() if key != "counts"}
            for name, conversion in (conversions or {}).items() if name in columns}
    return {"target": spec["target"], "task": spec["task"], "classes": classes,
            "model": spec["model"], "columns": columns, "conversions": kept}


def _iso(value: Any) -> str | None:
    return None if pd.isna(value) else value.isoformat()


def _builtin(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


@dataclass
class RowCheck:
    """Rows split by the schema: ``valid`` (converted to the training dtypes, original index)
    and ``rejects`` (the raw row with a ``reason`` column); ``extra_columns`` were ignored."""

    valid: pd.DataFrame
    rejects: pd.DataFrame
    extra_columns: list[str] = field(default_factory=list)


def check_rows(frame: pd.DataFrame, schema: dict[str, Any]) -> RowCheck:
    """Check every row against ``schema`` (``input_schema.json``) and convert the good ones.

    A row is refused, with every reason listed, when it is empty (every feature missing), or has
    a value that is not a number in a numeric column, a category never seen in training in a
    categorical/boolean column, or a value that is no date/time in a datetime column. The schema's
    ``conversions`` (missing-value words, units, yes/no, dates, infinities: ``mlhelpers.core.values``) are
    applied first, as training applied them. Missing values are allowed (the pipeline imputes them);
    extra columns are ignored. Raises ``SchemaError`` when columns the model needs are absent.
    """
    columns: dict[str, Any] = schema["columns"]
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise SchemaError(f"the input lacks column(s) {missing} that the model needs; every row must have "
                          f"the columns {list(columns)} (see input_schema.json; extra columns are ignored).")
    extra = [str(name) for name in frame.columns if name not in columns]
    read = apply_conversions(frame[list(columns)], schema.get("conversions") or {}, strict=True)
    reasons = np.full(len(frame), "", dtype=object)
    converted = {}
    for name, info in columns.items():
        converted[name], bad, why = _convert(read[name], name, info)
        if bad.any():
            reasons[bad] = reasons[bad] + "; " + why
    empty = read.isna().all(axis=1).to_numpy()
    reasons[empty] = "; empty row: every feature is missing"
    refused = reasons != ""
    valid = pd.DataFrame(converted, index=frame.index).loc[~refused]
    rejects = frame.loc[refused].copy()
    rejects.insert(0, "reason", [text[2:] for text in reasons[refused]])
    return RowCheck(valid=valid, rejects=rejects, extra_columns=extra)


def _convert(raw: pd.Series, name: str, info: dict[str, Any]) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """The column in its training type, a mask of bad values and one reason per bad value."""
    present = raw.notna().to_numpy()
    dtype = info["dtype"]
    allowed = info.get("categories")
    # A true/false column with missing values trained as objects (pandas' CSV reader, Parquet without pandas
    # metadata, the Dask engine's sklearn_frame) lists Python bools as its categories: its values are checked as
    # true/false too, never as text ("True" is not True: every present value was refused)
    booleans = bool(allowed) and all(isinstance(value, bool) for value in allowed)
    if dtype in ("bool", "boolean") or booleans:
        text = raw.astype(str).str.strip().str.lower()
        values = text.map({"true": True, "1": True, "1.0": True, "false": False, "0": False, "0.0": False})
        bad = present & values.isna().to_numpy()
        why = _why(raw, bad, f"{name}: {{}} is not true/false")
        if dtype == "boolean":
            return values.where(present, None).astype("boolean"), bad, why
        if dtype == "object":  # as trained: Python bools, NaN for missing (io.missing_as_nan)
            return values.astype(object).where(present & ~bad, np.nan), bad, why
        return values.where(present, None), bad, why
    if info["role"] == "datetime":  # the pipeline parses dates itself: check they parse, pass them on
        if getattr(raw.dtype, "unit", None) == "ns" and pd.api.types.is_datetime64_any_dtype(raw.dtype):
            # already dates in nanoseconds (Parquet, the Dask engine): each one parses; the parse below turns them
            # into Timestamp objects first, 6 of a 375k-row partition's 14 CPU-s of scoring
            return raw, np.zeros(len(raw), dtype=bool), np.array([], dtype=object)
        with warnings.catch_warnings():  # mixed zones and formats: utc=True reads them all
            warnings.simplefilter("ignore")
            parsed = pd.to_datetime(raw.astype("object"), errors="coerce", format="mixed", utc=True)
        bad = present & parsed.isna().to_numpy()
        return raw, bad, _why(raw, bad, f"{name}: {{}} is not a date/time")
    numeric_dtype = dtype.startswith(("int", "uint", "float"))
    if numeric_dtype:
        values = pd.to_numeric(raw, errors="coerce").astype(float)
        finite = np.isfinite(values.to_numpy())
        bad = present & ~finite
        values = values.where(finite)
        why = _why(raw, bad, f"{name}: {{}} is not a finite number")
    else:  # text; every missing value as NaN, as the training data was read (io.missing_as_nan)
        values = raw.astype(str).astype(object).where(present, np.nan)
        bad = np.zeros(len(raw), dtype=bool)
        why = np.array([], dtype=object)
    if allowed is not None:
        unseen = present & ~bad & ~values.isin(allowed).to_numpy()
        if unseen.any():
            shown = ", ".join(map(str, allowed[:_SHOWN_CATEGORIES])) + (" ..." if len(allowed) > _SHOWN_CATEGORIES else "")
            bad = bad | unseen
            why = _why(raw, bad, f"{name}: unseen category {{}} (known: {shown})")
    return values, bad, why


def _why(raw: pd.Series, bad: np.ndarray, template: str) -> np.ndarray:
    before, _, after = template.partition("{}")
    # the bad values only: the whole column as objects first costs seconds for dates and nothing is bad mostly
    return np.array([f"{before}{value!r}{after}" for value in raw[bad].to_numpy()], dtype=object)
