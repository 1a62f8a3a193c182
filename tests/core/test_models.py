"""Preprocessing from column roles, the zoo, and rebuilding pipelines from model_spec.json."""

import json

import numpy as np
import pandas as pd
import pytest

from mlhelpers.core.models import (FOREST_MAX_SAMPLES, ZOO, DatetimeParts, build_pipeline, build_preprocessor,
                                   class_weighting, code_columns, encode_target, feature_columns, make_estimator, zoo_params)
from mlhelpers.core.params import PROJECT_ROOT

CREDIT_FEATURES = {
    "numeric": ["Seniority", "Time", "Age", "Expenses", "Income", "Assets", "Debt", "Amount", "Price"],
    "boolean": [], "categorical": ["Home", "Marital", "Records", "Job"], "high_cardinality": [], "datetime": [],
}


def spec_for(model, features=CREDIT_FEATURES, task="classification", **estimator_params):
    return {"model": model, "task": task, "features": features, "seed": 3, "n_jobs": 1,
            "estimator_params": estimator_params}


def test_feature_columns_group_by_role_and_leave_dropped_out():
    eda = {"columns": {
        "a": {"role": "numeric", "drop": False}, "b": {"role": "categorical", "drop": False},
        "id": {"role": "identifier", "drop": True}, "when": {"role": "datetime", "drop": False},
        "y": {"role": "target", "drop": True}, "gone": {"role": "numeric", "drop": True},
        "note": {"role": "text", "drop": False}}}
    assert feature_columns(eda) == {"numeric": ["a"], "boolean": [], "categorical": ["b"],
                                    "high_cardinality": [], "datetime": ["when"], "text": ["note"]}


@pytest.mark.parametrize("model", ZOO)
def test_every_zoo_model_fits_and_predicts_from_its_spec(small, model):
    y, classes = encode_target(small["Status"], "classification")
    pipeline = build_pipeline(spec_for(model)).fit(small, y)
    proba = pipeline.predict_proba(small.head(50))
    assert classes == ["bad", "good"] and proba.shape == (50, 2)
    assert np.allclose(proba.sum(axis=1), 1, atol=1e-5)


@pytest.mark.parametrize("model", ZOO)
def test_regression_zoo_on_diamonds(model):
    frame = pd.read_csv(PROJECT_ROOT / "data" / "diamonds.csv.gz", nrows=800)
    features = {"numeric": ["carat", "depth", "table", "x", "y", "z"], "categorical": ["cut", "color", "clarity"]}
    y, classes = encode_target(frame["price"], "regression")
    predicted = build_pipeline(spec_for(model, features, "regression")).fit(frame, y).predict(frame.head(20))
    assert classes is None and predicted.shape == (20,) and np.isfinite(predicted).all()


def test_spec_rebuilds_the_same_configuration_and_applies_estimator_params():
    spec = json.loads(json.dumps(spec_for("xgboost", n_estimators=37, scale_pos_weight=2.5)))
    first, second = build_pipeline(spec), build_pipeline(spec)
    assert repr(first.get_params()) == repr(second.get_params())
    model = first.named_steps["model"]
    assert model.n_estimators == 37 and model.scale_pos_weight == 2.5 and model.random_state == 3
    assert model.early_stopping_rounds is None  # the refit needs no validation split


def test_hist_gradient_boosting_gets_the_categorical_columns_as_native_categoricals(small):
    pipeline = build_pipeline(spec_for("hist_gradient_boosting"))
    assert pipeline.named_steps["model"].categorical_features == [0, 1, 2, 3]
    y, _ = encode_target(small["Status"], "classification")
    transformed = pipeline.named_steps["preprocess"].fit_transform(small, y)
    # the first four output columns are the integer codes of Home, Marital, Records, Job
    assert np.array_equal(transformed[:, 1], pipeline.named_steps["preprocess"]
                          .named_transformers_["categorical"].transform(small[CREDIT_FEATURES["categorical"]])[:, 1])
    with_many_levels = CREDIT_FEATURES | {"categorical": ["Home"], "high_cardinality": ["Job"], "boolean": ["Records"]}
    assert build_pipeline(spec_for("hist_gradient_boosting", with_many_levels)).named_steps["model"] \
        .categorical_features == [0, 1]  # Home and Records; Job's codes stay ordinal
    numeric_only = build_pipeline(spec_for("hist_gradient_boosting", {"numeric": ["Age"]}))
    assert numeric_only.named_steps["model"].categorical_features is None
    # the tuning stage's native-codes candidate names every code column, high-cardinality ones included
    assert code_columns(with_many_levels) == [0, 1] and code_columns(with_many_levels, high_cardinality=True) == [0, 1, 2]
    assert code_columns({"numeric": ["Age"]}, high_cardinality=True) == []
    native = build_pipeline(spec_for("hist_gradient_boosting", with_many_levels, categorical_features=[0, 1, 2]))
    codes = native.named_steps["preprocess"].fit_transform(small, y)
    assert np.array_equal(codes[:, 2], native.named_steps["preprocess"].named_transformers_["high_cardinality"]
                          .transform(small[["Job"]])[:, 0])  # output column 2 holds Job's codes
    native.fit(small, y)
    assert native.named_steps["model"].is_categorical_[:3].all() and not native.named_steps["model"].is_categorical_[3:].any()


def test_native_splits_fit_a_code_column_with_more_levels_than_the_trees_take_and_missing_values(flights):
    # 20,000 flights: 3,264 tail numbers, 1,566 of them on at least 5 flights, and 144 flights with no tail number.
    # The codes (the most frequent levels, the rest "infrequent", missing -1) must stay within HistGradientBoosting's
    # 255 native categories: at 255 codes plus the missing code the fit raised "cardinality of 256"
    rows = flights.sample(20_000, random_state=0)
    assert rows["tailnum"].isna().any() and (rows["tailnum"].value_counts() >= 5).sum() > 255
    features = {"high_cardinality": ["tailnum"], "numeric": ["distance", "dep_time"]}
    target = rows["arr_delay"].fillna(0).to_numpy(float)
    pipeline = build_pipeline(spec_for("hist_gradient_boosting", features, task="regression", max_iter=20,
                                       categorical_features=code_columns(features, high_cardinality=True)))
    pipeline.fit(rows, target)
    assert pipeline.named_steps["model"].is_categorical_[0] and np.isfinite(pipeline.predict(rows)).all()


def test_preprocessing_handles_every_dtype_a_loader_may_give_and_missing_values():
    frame = pd.DataFrame({
        "flag": [True, False, True, False, True, False],
        "flag_missing": pd.Series([True, False, None, True, False, True], dtype="boolean"),
        "yes_no": ["yes", "no", np.nan, "yes", "no", "yes"],
        "cat": pd.Series(["a", "b", None, "a", "b", "a"], dtype="category"),
        "code": [10, 20, np.nan, 10, 20, 10],  # integer codes treated as a category
        "x": [1.0, np.nan, 3.0, 4.0, 5.0, 6.0],
    })
    features = {"boolean": ["flag", "flag_missing", "yes_no"], "categorical": ["cat", "code"], "numeric": ["x"]}
    for model in ("linear", "xgboost"):
        out = build_preprocessor(features, model).fit_transform(frame)
        assert np.isfinite(out).all() and out.shape[0] == 6
    codes = build_preprocessor(features, "xgboost").fit_transform(frame)
    # columns: cat, code (categorical first), flag, flag_missing, yes_no, x, x's missing indicator
    assert codes[2, 0] == codes[2, 1] == codes[2, 3] == codes[2, 4] == -1  # missing -> its own code
    assert codes[2, 2] == 0
    assert codes[1, -1] == 1  # the missing-value indicator of x


def test_linear_one_hot_caps_a_10000_level_column():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"zip": [f"z{i}" for i in rng.integers(0, 10_000, 20_000)]})
    out = build_preprocessor({"high_cardinality": ["zip"]}, "linear").fit_transform(frame)
    assert out.shape == (20_000, 50)  # 49 most frequent levels + "infrequent"


def test_datetime_parts_from_strings_datetimes_and_time_zones():
    frame = pd.DataFrame({"when": ["2013-01-01 05:30:00", "2013-06-15T17:45:00Z", "not a date"],
                          "stamp": pd.to_datetime(["2020-02-29", "2021-03-01", None])})
    parts = DatetimeParts().fit(frame)
    out = parts.transform(frame)
    names = list(parts.get_feature_names_out())
    assert out.shape == (3, 14) and names[:3] == ["when_year", "when_month", "when_day"]
    row = dict(zip(names, out[0]))
    assert (row["when_year"], row["when_month"], row["when_hour"], row["when_minute"]) == (2013, 1, 5, 30)
    assert dict(zip(names, out[1]))["when_hour"] == 17
    assert np.isnan(out[2, :7]).all() and np.isnan(out[2, 7:]).all()
    assert dict(zip(names, out[0]))["stamp_dayofweek"] == 5  # 2020-02-29 was a Saturday


def test_datetime_feature_in_a_pipeline_is_imputed():
    frame = pd.DataFrame({"when": pd.date_range("2020-01-01", periods=60, freq="13h").astype(str)})
    frame.loc[3, "when"] = None
    y = np.arange(60) % 2
    pipeline = build_pipeline(spec_for("linear", {"datetime": ["when"]})).fit(frame, y)
    assert pipeline.predict_proba(frame).shape == (60, 2)


def test_datetime_parts_errors_name_the_fix():
    with pytest.raises(ValueError, match="unknown parts \\['week'\\]"):
        DatetimeParts(parts=("year", "week")).fit(pd.DataFrame({"d": ["2020-01-01"]}))
    with pytest.raises(ValueError, match="not fitted yet"):
        DatetimeParts().transform(pd.DataFrame({"d": ["2020-01-01"]}))
    with pytest.raises(ValueError, match="fitted on 1 columns, got 2"):
        DatetimeParts().fit(pd.DataFrame({"d": ["2020"]})).transform(pd.DataFrame({"d": ["2020"], "e": ["2020"]}))


def test_errors_name_the_problem_and_the_fix():
    with pytest.raises(ValueError, match="unknown model 'svm'; choose one of dummy, linear"):
        make_estimator("svm", "classification", seed=0)
    with pytest.raises(ValueError, match="unknown task 'ranking'"):
        make_estimator("linear", "ranking", seed=0)
    with pytest.raises(ValueError, match="no feature columns"):
        build_preprocessor({"numeric": [], "categorical": []}, "linear")
    with pytest.raises(ValueError, match=r"target has classes \['maybe'\] not seen in training"):
        encode_target(pd.Series(["yes", "maybe"]), "classification", classes=["no", "yes"])


def test_class_weighting_rule():
    moderate = np.array([0] * 28 + [1] * 72)  # the credit data's balance
    rare = np.array([0] * 5 + [1] * 95)
    assert class_weighting(moderate, "classification", "roc_auc") is None
    assert class_weighting(moderate, "classification", "balanced_accuracy") == "balanced"
    assert class_weighting(rare, "classification", "roc_auc") == "balanced"
    assert class_weighting(np.array([0] * 50 + [1] * 50), "classification", "f1") is None
    assert class_weighting(np.arange(100.0), "regression", "rmse") is None


def test_zoo_params_weight_classes_and_subsample_big_forests():
    rare = np.array([0] * 95 + [1] * 5)
    assert zoo_params("xgboost", "classification", rare, "roc_auc") == {"scale_pos_weight": 19.0}
    assert zoo_params("linear", "classification", rare, "roc_auc") == {"class_weight": "balanced"}
    assert zoo_params("dummy", "classification", rare, "roc_auc") == {}
    big = np.zeros(100_000)
    assert zoo_params("random_forest", "regression", big, "rmse") == {"max_samples": FOREST_MAX_SAMPLES}
    assert zoo_params("random_forest", "regression", big[:1000], "rmse") == {}
    assert zoo_params("xgboost", "regression", big, "rmse") == {"learning_rate": 0.3}
    assert zoo_params("hist_gradient_boosting", "regression", big[:1000], "rmse") == {}


def test_multiclass_xgboost_class_weight_becomes_sample_weights():
    from mlhelpers.core.models import fit_params, sample_weights

    y = np.array([0] * 80 + [1] * 15 + [2] * 5)
    params = zoo_params("xgboost", "classification", y, "balanced_accuracy")
    assert params == {"class_weight": "balanced"}
    spec = {"model": "xgboost", "task": "classification", "seed": 0, "n_jobs": 1, "estimator_params": params,
            "features": {"numeric": ["x"]}}
    assert "class_weight" not in build_pipeline(spec).named_steps["model"].get_params()
    weights = sample_weights(spec, y)
    assert np.allclose(np.bincount(y, weights=weights), len(y) / 3)  # every class weighs the same in total
    assert list(fit_params(spec, y)) == ["model__sample_weight"]
    assert fit_params(spec | {"model": "linear"}, y) == {}
    assert sample_weights(spec | {"estimator_params": {}}, y) is None


def test_the_trees_get_fewer_text_components_than_the_linear_model(tate):
    from mlhelpers.core.models import TREE_TEXT_COMPONENTS, build_preprocessor
    from mlhelpers.core.text import TEXT_COMPONENTS

    titles = tate[["title"]].head(500)
    widths = {model: build_preprocessor({"text": ["title"]}, model).fit_transform(titles).shape[1]
              for model in ("linear", "random_forest", "hist_gradient_boosting", "xgboost")}
    assert TREE_TEXT_COMPONENTS < TEXT_COMPONENTS
    assert widths == {"linear": TEXT_COMPONENTS, "random_forest": TREE_TEXT_COMPONENTS,
                      "hist_gradient_boosting": TREE_TEXT_COMPONENTS, "xgboost": TREE_TEXT_COMPONENTS}
