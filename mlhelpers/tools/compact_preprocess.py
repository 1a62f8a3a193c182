"""A compact forest's preprocessing in numpy: the fitted ColumnTransformer's parameters as JSON, replayed without
scikit-learn or onnxruntime.

``numpy_spec(preprocessor) -> (spec | None, reason | None)`` reads a fitted preprocessor (a ColumnTransformer, alone or
as the only step of a Pipeline) whose parts are all one-hot encoders (no infrequent or dropped categories), standard
scalers, numeric simple imputers (with or without missing indicators), passthrough and drop; ``NumpyPreprocessor(spec)``
has ``transform(frame)``. Anything else returns a reason, and the compact format keeps its ONNX preprocessing.

Hand-written because what does this in a library costs a serving process more than the forest: onnxruntime's
import (~19 MB) and per-call work (~25 ms for one row of the 73-column Ames table, ~40% of a diamonds batch), or
scikit-learn's import (~100 MB). The arithmetic is scikit-learn's own, in float64 (``(x - mean) / scale``, the
imputer's statistics), and ``mlhelpers.tools.compact`` keeps this path only when it reproduces the features exactly.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


_FEW_ROWS = 64  # up to this many rows, categories are looked up in a dict (same equality and hash as pandas')


def _missing(value) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def _plain(value):
    """A category as a JSON value (numpy scalars to Python; NaN as {"missing": "nan"}, None as {"missing": "none"}:
    scikit-learn's encoders tell them apart)."""
    if value is None:
        return {"missing": "none"}
    if _missing(value) or (isinstance(value, np.floating) and np.isnan(value)):
        return {"missing": "nan"}
    return value.item() if isinstance(value, np.generic) else value


def _columns(columns, names: list[str]) -> list[str] | None:
    items = list(columns) if not isinstance(columns, str) else [columns]
    if all(isinstance(c, str) for c in items):
        return items
    if all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in items):
        return [names[int(c)] for c in items]
    return None  # boolean masks, callables: not worth the code


def _part(transformer, columns: list[str]) -> dict[str, Any] | str:
    """One fitted ColumnTransformer part as a dict of steps, or the reason it is not covered."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    steps = transformer.steps if isinstance(transformer, Pipeline) else [(None, transformer)]
    out = []
    for _, step in steps:
        if step == "passthrough" or step is None:
            continue
        if isinstance(step, FunctionTransformer) and step.func is None:  # a fitted "passthrough" part
            continue
        if isinstance(step, OneHotEncoder):
            if step.drop_idx_ is not None or getattr(step, "infrequent_categories_", None) and any(
                    c is not None for c in step.infrequent_categories_) or step.handle_unknown == "error":
                return "a one-hot encoder that drops, pools infrequent categories or raises on unknown ones"
            if [s["kind"] for s in out] not in ([], ["fill_text"]):
                return "a one-hot encoder after another step"
            out.append({"kind": "one_hot", "categories": [[_plain(v) for v in c] for c in step.categories_]})
        elif isinstance(step, StandardScaler):
            out.append({"kind": "scale",
                        "mean": None if step.mean_ is None or not step.with_mean else step.mean_.tolist(),
                        "scale": None if step.scale_ is None or not step.with_std else step.scale_.tolist()})
        elif isinstance(step, SimpleImputer):
            if not (isinstance(step.missing_values, float) and math.isnan(step.missing_values)):
                return "an imputer whose missing value is not NaN"
            if step.statistics_.dtype.kind not in "iuf":  # "most_frequent" or "constant" on text columns
                if out or step.indicator_ is not None or not all(isinstance(v, str) for v in step.statistics_):
                    return "an imputer of text values other than a fill before a one-hot encoder"
                out.append({"kind": "fill_text", "statistics": [str(v) for v in step.statistics_]})
                continue
            statistics = np.asarray(step.statistics_, dtype=np.float64)
            keep = np.ones(len(statistics), bool) if step.keep_empty_features else ~np.isnan(statistics)
            indicator = None if step.indicator_ is None else np.asarray(step.indicator_.features_).tolist()
            if step.indicator_ is not None and step.indicator_.features != "missing-only":
                return "a missing indicator over all features"
            out.append({"kind": "impute", "statistics": np.where(np.isnan(statistics), 0.0, statistics).tolist(),
                        "keep": keep.tolist(), "indicator": indicator})
        else:
            return f"{type(step).__name__}"
    return {"columns": columns, "steps": out}


def numpy_spec(preprocessor) -> tuple[dict[str, Any] | None, str | None]:
    """The preprocessor's parameters as JSON-ready values, or (None, why not)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if isinstance(preprocessor, Pipeline):
        if len(preprocessor.steps) != 1:
            return None, "a preprocessing pipeline of more than one step"
        preprocessor = preprocessor.steps[0][1]
    if not isinstance(preprocessor, ColumnTransformer):
        return None, f"{type(preprocessor).__name__} is not a ColumnTransformer"
    names = [str(c) for c in getattr(preprocessor, "feature_names_in_", [])]
    parts = []
    for _, transformer, columns in preprocessor.transformers_:
        if transformer == "drop":
            continue
        selected = _columns(columns, names)
        if selected is None:
            return None, "a column selection that is not names or positions"
        if not selected:
            continue
        part = _part(transformer, selected)
        if isinstance(part, str):
            return None, f"{part} is not covered by the numpy preprocessing"
        parts.append(part)
    return {"parts": parts}, None


class NumpyPreprocessor:
    """``transform(frame)`` -> the float64 feature matrix the fitted ColumnTransformer would give."""

    def __init__(self, spec: dict[str, Any]):
        self.parts = []
        for part in spec["parts"]:
            steps = []
            for step in part["steps"]:
                if step["kind"] == "one_hot":
                    # a pandas Index looks values up by Python equality and hash, as scikit-learn's encoder does
                    indexes = []
                    for cats in step["categories"]:
                        known = [(i, c) for i, c in enumerate(cats) if not isinstance(c, dict)]
                        missing = {c["missing"]: i for i, c in enumerate(cats) if isinstance(c, dict)}
                        indexes.append((pd.Index([c for _, c in known], dtype=object), np.array([i for i, _ in known]),
                                        {c: i for i, c in known}, missing.get("nan", -1), missing.get("none", -1),
                                        len(cats)))
                    steps.append(("one_hot", indexes))
                elif step["kind"] == "fill_text":
                    steps.append(("fill_text", np.asarray(step["statistics"], dtype=object)))
                elif step["kind"] == "scale":
                    steps.append(("scale", None if step["mean"] is None else np.asarray(step["mean"]),
                                  None if step["scale"] is None else np.asarray(step["scale"])))
                else:
                    steps.append(("impute", np.asarray(step["statistics"]), np.asarray(step["keep"], bool),
                                  step["indicator"]))
            self.parts.append((part["columns"], steps))

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        if len(frame) <= _FEW_ROWS:
            # one pandas call for the whole frame: selecting columns costs ~0.1 ms each on a one-row frame
            values = frame.to_numpy(dtype=object)
            position = {name: i for i, name in enumerate(frame.columns)}

            def select(columns: list[str], numbers: bool) -> np.ndarray:
                picked = values[:, [position[c] for c in columns]]
                return pd.DataFrame(picked).to_numpy(dtype=np.float64, na_value=np.nan) if numbers else picked
        else:
            def select(columns: list[str], numbers: bool) -> np.ndarray:
                return (frame[columns].to_numpy(dtype=np.float64, na_value=np.nan) if numbers
                        else frame[columns].to_numpy(dtype=object))
        blocks = [self._part(select, len(frame), columns, steps) for columns, steps in self.parts]
        return np.hstack(blocks) if blocks else np.empty((len(frame), 0))

    @staticmethod
    def _part(select, n_rows: int, columns: list[str], steps: list) -> np.ndarray:
        fills = None
        if steps and steps[0][0] == "fill_text":  # SimpleImputer on text: NaN (not None, as scikit-learn) filled
            fills, steps = steps[0][1], steps[1:]
        if steps and steps[0][0] == "one_hot":
            indexes = steps[0][1]
            out = np.zeros((n_rows, sum(size for *_, size in indexes)))
            values = select(columns, numbers=False)
            if fills is not None:
                values = values.copy()
                for j in range(values.shape[1]):
                    nan = np.array([isinstance(v, float) and v != v for v in values[:, j]], dtype=bool)
                    values[nan, j] = fills[j]
            offset = 0
            for j, (index, positions, lookup, nan_at, none_at, size) in enumerate(indexes):
                column = values[:, j]
                if len(column) <= _FEW_ROWS:  # a dict beats pandas' per-call cost on a few rows
                    codes = np.array([none_at if v is None else nan_at if _missing(v) else lookup.get(v, -1)
                                      for v in column], dtype=np.int64)
                else:
                    found = index.get_indexer(column)
                    codes = np.where(found >= 0, positions[np.maximum(found, 0)] if len(positions) else -1, -1)
                    none = np.array([v is None for v in column], dtype=bool)
                    codes = np.where(none, none_at, np.where(pd.isna(column) & ~none, nan_at, codes))
                rows = np.flatnonzero(codes >= 0)  # unknown categories: all zeros, as handle_unknown="ignore"
                out[rows, offset + codes[rows]] = 1.0
                offset += size
            X = out
            steps = steps[1:]
        else:
            X = select(columns, numbers=True)
        for step in steps:
            if step[0] == "scale":
                _, mean, scale = step
                if mean is not None:
                    X = X - mean
                if scale is not None:
                    X = X / scale
            else:
                _, statistics, keep, indicator = step
                missing = np.isnan(X)
                X = np.where(missing, statistics, X)[:, keep]
                if indicator is not None:
                    X = np.hstack([X, missing[:, indicator].astype(np.float64)])
        return X
