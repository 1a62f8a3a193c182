"""Same params + same data, all cores: the baseline and export artifacts are the same bytes (timings aside)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from mlhelpers.baseline import crossval, results, splits
from mlhelpers.baseline.inputs import load_baseline_data
from mlhelpers.core.artifacts import artifact_path, write_json
from mlhelpers.core.models import build_pipeline
from mlhelpers.core.threads import predict_on_one_thread
from mlhelpers.core.params import validate_params
from mlhelpers.core.provenance import check_data
from mlhelpers.export.refit import load_export_data, refit, write_metrics

TIMINGS = ("fit_seconds", "predict_seconds")


def _baseline_and_export(run_dir, data_file, eda, models) -> dict[str, bytes]:
    """The baseline and export steps' calls, as the notebooks make them, with n_jobs=-1; the bytes they wrote."""
    params = validate_params({"data_path": str(data_file), "run_dir": str(run_dir), "n_jobs": -1, "cv_folds": 3,
                              "selected_model": "random_forest", "target": eda["target"], "models": models},
                             check_data=False)
    check_data(run_dir, data_file, "explore")
    write_json(artifact_path(run_dir, "eda"), eda)
    data = load_baseline_data(params)
    split = splits.make_split(data, test_size=params.test_size, cv_folds=params.cv_folds, seed=params.seed)
    splits.write_split(split, run_dir)
    zoo = crossval.run_zoo(data, split, models=params.models, seed=params.seed, n_jobs=params.n_jobs)
    results.write_baseline_artifacts(zoo, run_dir)
    export = load_export_data(params)
    pipeline = refit(export)
    write_metrics(run_dir, export, pipeline)
    board = pd.read_csv(artifact_path(run_dir, "leaderboard")).drop(columns=list(TIMINGS))
    cv_results = json.loads(artifact_path(run_dir, "cv_results").read_text())
    for result in cv_results["models"].values():
        for timing in TIMINGS:
            result.pop(timing)
    return {"leaderboard.csv": board.to_csv(index=False).encode(),
            "cv_results.json": json.dumps(cv_results).encode(),
            "model_spec.json": artifact_path(run_dir, "model_spec").read_bytes(),
            "metrics.json": artifact_path(run_dir, "metrics").read_bytes(),
            "split.json": artifact_path(run_dir, "split").read_bytes(),
            "predictions": (pipeline.predict_proba(export.X_test) if export.task == "classification"
                            else pipeline.predict(export.X_test)).tobytes()}


@pytest.mark.parametrize("table, target, task, metric, models", [
    ("small", "Status", "classification", "roc_auc",
     ["dummy", "linear", "random_forest", "hist_gradient_boosting", "xgboost"]),
    # regression: the case (a forest's CV RMSE changed in the 13th digit between two runs)
    ("diamonds", "price", "regression", "rmse", ["dummy", "random_forest"]),
])
def test_two_runs_on_all_cores_write_the_same_bytes(request, tmp_path, eda_for, table, target, task, metric, models):
    frame = request.getfixturevalue(table)
    data_file = tmp_path / "data.csv"
    frame.to_csv(data_file, index=False)
    eda = eda_for(frame, target, task=task, metric=metric)
    first = _baseline_and_export(tmp_path / "first", data_file, eda, models)
    second = _baseline_and_export(tmp_path / "second", data_file, eda, models)
    assert json.loads(first["model_spec.json"])["n_jobs"] == -1
    different = [name for name in first if first[name] != second[name]]
    assert different == [], f"differ between identical runs: {different}"


def test_a_forest_predicts_the_same_digits_on_every_call(small, credit_features):
    # the root cause: on several threads a forest sums its trees in the order the threads finish
    frame = small.dropna(subset=["Status"])
    y = (frame["Status"] == "good").to_numpy(int)
    spec = {"model": "random_forest", "task": "classification", "features": credit_features, "seed": 0,
            "n_jobs": -1, "estimator_params": {"n_estimators": 60}}
    forest = predict_on_one_thread(build_pipeline(spec).fit(frame, y))
    assert forest[-1].n_jobs == 1
    digests = {hashlib.sha256(forest.predict_proba(frame).tobytes()).hexdigest() for _ in range(6)}
    assert len(digests) == 1
    # and the fit itself stayed parallel and deterministic: a second fit gives the same forest
    again = predict_on_one_thread(build_pipeline(spec).fit(frame, y))
    np.testing.assert_array_equal(again.predict_proba(frame), forest.predict_proba(frame))
