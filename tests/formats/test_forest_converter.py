"""Our scikit-learn forest converter (``formats.converters.forests``): exact ONNX for every forest kind, with
NaN passed through to the trees, splits at scikit-learn's float32 rounding, lone-leaf trees."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlhelpers.formats.converters.forest_graph import forest_onnx
from mlhelpers.formats.onnx_io import OnnxPredictor, to_onnx

NUMERIC = ["Seniority", "Age", "Income", "Assets", "Debt", "Amount"]
CATEGORICAL = ["Home", "Marital", "Job"]


def _passthrough_pipeline(estimator, columns):
    # one-hot + scaler hand NaN (Income, Assets, Debt) to the trees: their learnt NaN direction decides
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    return Pipeline([("prep", ColumnTransformer([
        ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
         [c for c in CATEGORICAL if c in columns]),
        ("numeric", StandardScaler(), [c for c in NUMERIC if c in columns])])), ("model", estimator)])


@pytest.mark.parametrize("kind,target", [
    ("RandomForestRegressor", "Amount"), ("ExtraTreesRegressor", "Amount"), ("DecisionTreeRegressor", "Amount"),
    ("RandomForestClassifier", "Status"), ("ExtraTreesClassifier", "Marital"), ("DecisionTreeClassifier", "Status")])
def test_every_forest_kind_converts_exactly_with_nan_passed_through(credit, kind, target):
    import sklearn.ensemble
    import sklearn.tree

    estimator = getattr(sklearn.ensemble, kind, None) or getattr(sklearn.tree, kind)
    params = {"random_state": 0, "min_samples_leaf": 3} | ({} if kind.startswith("Decision") else {"n_estimators": 8})
    frame = credit.iloc[:1500]
    X = frame[[c for c in NUMERIC + CATEGORICAL if c != target]]
    pipeline = _passthrough_pipeline(estimator(**params), X.columns).fit(X, frame[target])
    result = to_onnx(pipeline, X)
    assert result.reason is None and result.double_precision
    assert {n.op_type for n in result.model.graph.node} >= {"TreeEnsemble"}
    predictor = OnnxPredictor(result.model)
    with_nan = X[X[["Income", "Assets", "Debt"]].isna().any(axis=1)]
    assert len(with_nan) >= 10  # credit holds real missing numbers
    if kind.endswith("Regressor"):
        np.testing.assert_allclose(predictor.predict(X), pipeline.predict(X), rtol=1e-12)
        np.testing.assert_allclose(predictor.predict(with_nan), pipeline.predict(with_nan), rtol=1e-12)
    else:
        np.testing.assert_allclose(predictor.predict_proba(X), pipeline.predict_proba(X), atol=1e-12)
        np.testing.assert_allclose(predictor.predict_proba(with_nan), pipeline.predict_proba(with_nan), atol=1e-12)
        assert (predictor.predict(X) == pipeline.predict(X)).all()


def test_splits_decide_as_scikit_learn_at_every_threshold():
    # scikit-learn reads inputs as float32 and compares with float64 thresholds: values at, just below
    # and just above every threshold (in double) must take the same branch in ONNX
    from sklearn.ensemble import RandomForestRegressor

    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 3)) * [1.0, 1e4, 1e-3]
    X[rng.random(300) < 0.15, 1] = np.nan
    forest = RandomForestRegressor(n_estimators=5, random_state=0).fit(X, X[:, 0] + np.nan_to_num(X[:, 1]) / 1e4)
    rows = []
    for tree in forest.estimators_:
        t = tree.tree_
        split = (t.feature >= 0) & np.isfinite(t.threshold)  # inf: the split of NaN against every number
        for feature, threshold in zip(t.feature[split], t.threshold[split]):
            for value in (threshold, np.nextafter(threshold, -np.inf), np.nextafter(threshold, np.inf),
                          float(np.float32(threshold))):
                row = np.nanmedian(X, axis=0)
                row[feature] = value
                rows.append(row)
    edges = np.vstack(rows + [np.full(3, np.nan)])
    session = OnnxPredictor(forest_onnx(forest)).session
    onnx_values = session.run(None, {"X": edges})[0].ravel()
    np.testing.assert_allclose(onnx_values, forest.predict(edges), rtol=1e-13)


def test_lone_leaf_trees_and_numeric_labels():
    from sklearn.ensemble import RandomForestClassifier

    X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0] * 5})
    y = np.array([3, 3, 3, 7] * 5)
    forest = RandomForestClassifier(n_estimators=6, max_depth=1, min_samples_split=30, random_state=0).fit(X, y)
    assert all(tree.tree_.node_count == 1 for tree in forest.estimators_)  # every tree a single leaf
    result = to_onnx(forest, X)
    assert result.reason is None
    predictor = OnnxPredictor(result.model)
    assert predictor.predict(X).tolist() == forest.predict(X).tolist()
    np.testing.assert_allclose(predictor.predict_proba(X), forest.predict_proba(X), atol=1e-15)
