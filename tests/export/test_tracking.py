"""MLflow tracking and serving for real: a local SQLite store, the logged model, `mlflow models serve`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlhelpers.core.params import validate_params
from mlhelpers.core.schema import check_rows
from mlhelpers.export.parent_runs import end_parent_run, start_parent_run
from mlhelpers.export.tracking import compare_logged_model, local_store_paths, log_export_run, model_signature
from mlhelpers.formats.parity import PROBA_ATOL
from mlhelpers.formats.served import predict_rows

SERVER_START_SECONDS = 120


@pytest.fixture(scope="module")
def logged(tmp_path_factory, model_run):
    """One export run folder (with executed-notebook stand-ins) logged to a fresh SQLite store."""
    root = tmp_path_factory.mktemp("tracking")
    run_dir, spec, data, pipeline = model_run(root / "run")
    # served from a compressed graph, as a large forest's export is: the logged pyfunc (and the slow server
    # test) must load model.onnx.gz; plain model.onnx folders are covered by the scoring tests
    import onnx

    from mlhelpers.formats.onnx_io import save_onnx

    save_onnx(onnx.load(run_dir / "model" / "model.onnx"), run_dir / "model" / "model.onnx", compress=True)
    report = json.loads((run_dir / "model" / "serving_report.json").read_text())
    (run_dir / "model" / "serving_report.json").write_text(json.dumps(report | {"recommended": "onnx"}))
    for name in ("01_explore.ipynb", "02_baseline.ipynb", "03_export.ipynb"):
        (run_dir / name).write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    (run_dir / "model" / "reference.joblib").write_bytes(b"not logged")
    params = validate_params({"run_dir": str(run_dir), "mlflow_tracking_uri": f"sqlite:///{root / 'store' / 'mlflow.db'}",
                              "mlflow_experiment": "export-tests"})
    # what `mlh run` records: the parameters every step got (the export notebook declares only a few of them)
    manifest_params = params.model_dump(mode="json") | {"time_budget_seconds": 123.0, "cv_folds": 3}
    (run_dir / "manifest.json").write_text(json.dumps({"schema_version": 1, "params": manifest_params}))
    schema = json.loads((run_dir / "model" / "input_schema.json").read_text())
    result = log_export_run(params, data)
    return result, params, schema, data, pipeline


def test_run_holds_params_metrics_reports_and_notebooks(logged):
    import mlflow

    result, params, *_ = logged
    client = mlflow.MlflowClient(tracking_uri=result.tracking_uri)
    run = client.get_run(result.run_id)
    assert run.data.params["spec.model"] == "xgboost" and run.data.params["seed"] == "42"
    assert run.data.params["spec.estimator.n_estimators"] == "40"
    # the parameters the run used (its manifest), not the export notebook's defaults
    assert run.data.params["time_budget_seconds"] == "123.0" and run.data.params["cv_folds"] == "3"
    assert run.data.tags["mlhelpers.served_file"] == "model.onnx.gz"  # the file the export step recommends
    assert run.data.metrics["cv_roc_auc_mean"] == 0.83 and run.data.metrics["cv_roc_auc_std"] == 0.01
    assert 0.75 < run.data.metrics["test_roc_auc"] < 0.95
    assert client.get_experiment(result.experiment_id).name == "export-tests"
    assert "notebooks/01_explore.ipynb" in result.logged_files and "notebooks/02_baseline.ipynb" in result.logged_files
    assert "notebooks/03_export.ipynb" not in result.logged_files  # still running when logged: incomplete
    assert {"reports/model/metrics.json", "reports/model/input_schema.json", "reports/model/model.skops",
            "reports/baseline/model_spec.json", "reports/baseline/leaderboard.csv",
            "reports/explore/eda.json"} <= set(result.logged_files)
    assert not any(name.endswith(".joblib") for name in result.logged_files)
    stored = {a.path for a in client.list_artifacts(result.run_id, "notebooks")}
    assert stored == {"notebooks/01_explore.ipynb", "notebooks/02_baseline.ipynb"}
    artifacts = local_store_paths(result.tracking_uri)
    assert artifacts == Path(params.tracking_uri.removeprefix("sqlite:///")).parent / "mlartifacts"
    assert any(artifacts.rglob("metrics.json"))  # next to the database, not in the working directory


def test_logged_model_predicts_labels_like_the_pipeline(logged):
    import mlflow
    from mlflow.exceptions import MlflowException

    result, _, schema, data, pipeline = logged
    mlflow.set_tracking_uri(result.tracking_uri)
    try:
        served = mlflow.pyfunc.load_model(result.model_uri)
    finally:
        mlflow.set_tracking_uri(None)
    rows = check_rows(data.X_test.head(50), schema).valid
    expected = predict_rows(pipeline, rows, schema).reset_index(drop=True)
    # served from the recommended format (ONNX here): labels exact, probabilities within the parity bound
    pd.testing.assert_frame_equal(served.predict(rows), expected, check_exact=False, atol=PROBA_ATOL)
    assert str(served.metadata.get_input_schema().input_types_dict()["Home"]) == "DataType.string"
    bad = rows.head(3).copy()
    bad.loc[bad.index[1], "Home"] = "castle"
    with pytest.raises(MlflowException, match="1 of 3 rows break the input schema.*row 1: Home: unseen category"):
        served.predict(bad)
    compared = compare_logged_model(result, pipeline, data, rows=40).iloc[0]
    assert compared["rows"] == 40 and compared["same_predictions"] and compared["max_abs_diff"] <= PROBA_ATOL


def test_the_tracking_job_logs_the_same_run_from_a_second_process(logged):
    """The export notebook's MLflow work, done by TrackingJob's process: the same params, metrics and files as
    log_export_run in this process, and the logged model loaded back answers like the pipeline."""
    import mlflow

    from mlhelpers.export.tracking_job import TrackingJob

    direct, params, _, data, pipeline = logged
    result, compared = TrackingJob(params.tracking_uri, params.mlflow_experiment).log(params, data, pipeline).wait()
    client = mlflow.MlflowClient(tracking_uri=result.tracking_uri)
    ours, theirs = client.get_run(result.run_id).data, client.get_run(direct.run_id).data
    assert result.run_id != direct.run_id and result.experiment_id == direct.experiment_id
    assert ours.params == theirs.params and ours.metrics == theirs.metrics
    assert sorted(result.logged_files) == sorted(direct.logged_files) and result.run_dir == direct.run_dir
    assert compared.iloc[0]["rows"] == min(200, len(data.X_test)) and compared.iloc[0]["same_predictions"]
    assert compared.iloc[0]["max_abs_diff"] <= PROBA_ATOL


def test_a_tracking_job_that_fails_says_why(tmp_path, logged):
    from mlhelpers.export import ExportError
    from mlhelpers.export.tracking_job import TrackingJob

    _, params, _, data, pipeline = logged
    (tmp_path / "a-file").write_text("not a folder")
    job = TrackingJob(f"sqlite:///{tmp_path / 'a-file' / 'mlflow.db'}", "x")
    with pytest.raises(ExportError, match="never handed over"):
        job.wait()
    with pytest.raises(ExportError, match="(?s)MLflow logging failed in its process.*a-file"):
        job.log(params, data, pipeline)


def test_a_sweep_variant_logs_as_a_child_of_the_sweeps_parent_run(logged):
    import mlflow

    result, params, _, data, _ = logged
    parent = start_parent_run(params.tracking_uri, params.mlflow_experiment, "demo/sweep-1",
                              {"grid.cv_folds": [3, 5]})
    child = log_export_run(params.model_copy(update={"mlflow_parent_run_id": parent}), data)
    end_parent_run(params.tracking_uri, parent, failed=1, total=2)
    client = mlflow.MlflowClient(tracking_uri=params.tracking_uri)
    assert client.get_run(child.run_id).data.tags["mlflow.parentRunId"] == parent
    run = client.get_run(parent)
    assert run.info.run_name == "demo/sweep-1" and run.info.experiment_id == result.experiment_id
    assert run.data.params["grid.cv_folds"] == "[3, 5]" and run.data.metrics["variants_failed"] == 1
    assert run.info.status == "FAILED"  # a variant failed
    assert "mlflow.parentRunId" not in client.get_run(result.run_id).data.tags  # a plain run stays top-level


def test_signature_types_follow_the_input_schema():
    schema = {"task": "classification", "classes": ["no", "yes"],
              "columns": {"a": {"dtype": "int64"}, "b": {"dtype": "object"}, "c": {"dtype": "bool"}}}
    signature = model_signature(schema)
    assert [t.name for t in signature.inputs.input_types()] == ["double", "string", "boolean"]
    assert signature.outputs.input_names() == ["prediction", "proba_no", "proba_yes"]
    regression = model_signature({"task": "regression", "classes": None, "columns": {"a": {"dtype": "float64"}}})
    assert regression.outputs.input_names() == ["prediction"]
    numbers = model_signature(schema | {"classes": [1, 2, 3]})
    assert numbers.outputs.input_types()[0].name == "double"
    merged = model_signature(schema | {"classes": [1, 2, "other"]})  # rare number labels merged into 'other'
    assert merged.outputs.input_types()[0].name == "string" and merged.outputs.input_names()[-1] == "proba_other"


def test_logging_needs_the_saved_model(tmp_path, logged):
    params = validate_params({"run_dir": str(tmp_path)})
    with pytest.raises(FileNotFoundError, match=r"model\.skops is missing: save the model, its input schema"):
        log_export_run(params, logged[3])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _post(url: str, payload: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def server(logged, tmp_path_factory):
    """`mlflow models serve` on a free loopback port; always stopped at the end."""
    result = logged[0]
    port = _free_port()
    bin_dir = str(Path(sys.executable).parent)
    env = os.environ | {"MLFLOW_TRACKING_URI": result.tracking_uri, "PATH": bin_dir + os.pathsep + os.environ["PATH"]}
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with open(log, "w") as output:
        process = subprocess.Popen([os.path.join(bin_dir, "mlflow"), "models", "serve", "-m", result.model_uri,
                                    "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
                                   env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow models serve did not come up in {SERVER_START_SECONDS} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/invocations"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.slow
def test_served_model_answers_like_the_notebook_and_refuses_bad_rows(logged, server):
    _, _, schema, data, pipeline = logged
    rows = data.X_test.head(25)  # as loaded: ints, floats, strings and missing values
    payload = json.loads(rows.to_json(orient="split", index=False))
    status, body = _post(server, {"dataframe_split": payload})
    assert status == 200, body
    served = pd.DataFrame(body["predictions"])
    expected = predict_rows(pipeline, rows, schema).reset_index(drop=True)
    assert served["prediction"].tolist() == expected["prediction"].tolist()
    np.testing.assert_allclose(served[["proba_bad", "proba_good"]], expected[["proba_bad", "proba_good"]], atol=PROBA_ATOL)

    unseen = json.loads(rows.head(2).assign(Home=["rent", "castle"]).to_json(orient="split", index=False))
    status, body = _post(server, {"dataframe_split": unseen})
    assert status == 400
    assert "row 1: Home: unseen category 'castle'" in body["message"]

    wrong_type = json.loads(rows.head(2).astype({"Age": object}).assign(Age=[30, "forty"]).to_json(orient="split", index=False))
    status, body = _post(server, {"dataframe_split": wrong_type})
    assert status == 400 and "Age" in body["message"]

    missing = json.loads(rows.head(2).drop(columns="Income").to_json(orient="split", index=False))
    status, body = _post(server, {"dataframe_split": missing})
    assert 400 <= status < 500 and "Income" in body["message"]
