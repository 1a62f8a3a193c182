"""The compact forest's C walk: built at install, exact against the pipeline, and the walks it falls back to."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import ExtraTreesRegressor, RandomForestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlhelpers.formats.parity import check_parity
from mlhelpers.formats.probe import edge_rows, probe_parity
from mlhelpers.tools.compact import compact_forest, load_compact, save_compact
from mlhelpers.tools.forest_walk import CompactForest, c_walk


def one_hot_pipeline(text: list[str], numbers: list[str], model) -> Pipeline:
    # numbers pass through with their NaN (the trees route them), text NaN is a one-hot category of its own
    return Pipeline([("preprocess", ColumnTransformer([
        ("text", OneHotEncoder(handle_unknown="ignore", sparse_output=False), text),
        ("numbers", StandardScaler(), numbers)])), ("model", model)])


def served_both_ways(pipeline, frame: pd.DataFrame, path, task: str, monkeypatch) -> None:
    """The compact file of ``pipeline`` walked in C and in the fallback (numpy, numba for large batches) matches the
    pipeline on ``frame`` and on its parity probe, and every walk reaches the same leaves."""
    model = load_compact(save_compact(pipeline, frame, path))
    probe = edge_rows(frame, seed=0)
    assert check_parity(pipeline, model, frame, task).ok and probe_parity(pipeline, model, probe, task).ok
    X = model.features(frame)
    c_values, c_leaves = model.forest.predict_values(X), model.forest.leaf_rows(X)
    one_row = model._values(frame.iloc[[3]])  # a single row walks in C too, on the calling thread
    monkeypatch.setenv("MLH_COMPACT_WALK", "fallback")  # as where the extension was not built
    assert c_walk() is None
    assert probe_parity(pipeline, model, probe, task).ok
    np.testing.assert_array_equal(model.forest.leaf_rows(X, compiled=False), c_leaves)  # numpy
    np.testing.assert_array_equal(model.forest.leaf_rows(X), c_leaves)  # numba
    np.testing.assert_allclose(model.forest.predict_values(X), c_values, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(model._values(frame.iloc[[3]]), one_row, rtol=1e-12, atol=1e-15)
    monkeypatch.delenv("MLH_COMPACT_WALK")


def test_the_c_walk_is_built_at_install_and_exact(tmp_path, credit, penguins, diamonds_8k, monkeypatch):
    assert c_walk() is not None  # `make setup` / pip install -e . compiles mlhelpers/tools/_forest_walk.c
    # credit: missing numbers and categories, binary
    text, numbers = ["Home", "Marital", "Records", "Job"], ["Seniority", "Income", "Assets", "Debt", "Amount"]
    frame = credit[text + numbers]
    binary = one_hot_pipeline(text, numbers, RandomForestClassifier(n_estimators=15, random_state=0, n_jobs=1))
    served_both_ways(binary.fit(frame, credit["Status"]), frame, tmp_path / "credit.npz", "classification", monkeypatch)
    # penguins: three species, missing sizes and sex
    text, numbers = ["island", "sex"], ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
    frame = penguins[text + numbers]
    three = one_hot_pipeline(text, numbers, RandomForestClassifier(n_estimators=15, random_state=0, n_jobs=1))
    served_both_ways(three.fit(frame, penguins["species"]), frame, tmp_path / "penguins.npz", "classification",
                     monkeypatch)
    # diamonds: regression, uint16 thresholds (many distinct) and uint32 leaf references
    text, numbers = ["cut", "color", "clarity"], ["carat", "depth", "table", "x", "y", "z"]
    frame = diamonds_8k[text + numbers].iloc[:3000]
    regression = one_hot_pipeline(text, numbers, ExtraTreesRegressor(n_estimators=10, random_state=0, n_jobs=1))
    regression.fit(frame, diamonds_8k["price"].iloc[:3000])
    served_both_ways(regression, frame, tmp_path / "diamonds.npz", "regression", monkeypatch)


def test_a_damaged_forest_is_refused_before_the_c_walk_reads_it(diamonds_8k):
    X = diamonds_8k[["carat", "depth", "table"]].to_numpy()
    model = ExtraTreesRegressor(n_estimators=3, max_depth=4, random_state=0).fit(X, diamonds_8k["price"])
    good = compact_forest(model)
    arrays = {name: getattr(good, name).copy() for name in ("feature", "split", "left", "right", "roots",
                                                              "thresholds", "values")}
    internal_right = np.flatnonzero((arrays["feature"] >> 6) & 1 == 0)[0]
    arrays["right"][internal_right] = len(arrays["feature"])  # an offset past the last split
    damaged = CompactForest(task="regression", n_features=3, **arrays)
    with pytest.raises(ValueError, match=f"damaged: right child out of range at split {internal_right}; write"):
        damaged.predict_values(X[:5])
    arrays["right"] = good.right
    arrays["roots"] = good.roots + len(arrays["feature"])
    with pytest.raises(ValueError, match="damaged: tree root out of range at tree 0"):
        CompactForest(task="regression", n_features=3, **arrays).predict_values(X[:5])
    np.testing.assert_allclose(good.predict_values(X), model.predict(X), rtol=1e-12)
