"""The baseline step on the Dask engine, on a real LocalCluster: the zoo's sample comes only from the training
partitions and equals the pandas engine's sample of those rows; XGBoost trained on every training row with
xgboost.dask is scored on the held-out partitions exactly as a local pandas scoring would score it, and it gets
its own leaderboard line next to its sample twin; when it wins, model_spec.json and the saved pipeline say so.
When the workers' memory cannot hold every training partition, it trains on a seeded subset and says so."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from mlhelpers.baseline import BaselineError, fulldata, results
from mlhelpers.baseline.crossval import run_zoo
from mlhelpers.baseline.splits import make_split
from mlhelpers.baseline.trainmemory import BALANCE, SAFE_SHARE, WorkerMemory, bytes_per_training_row, fit_partitions
from mlhelpers.core import lazy
from mlhelpers.core.artifacts import artifact_path, read_artifact, write_json
from mlhelpers.core.hashsample import hash_sample
from mlhelpers.core.io import load_table
from mlhelpers.core.metrics import score
from mlhelpers.core.params import validate_params
from mlhelpers.formats.skops_io import load_skops


@pytest.fixture(scope="module")
def run(credit_parts, dask_engine, eda_for, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("dask_run")
    frame = load_table(credit_parts)
    eda = eda_for(frame.drop(columns="approved"), "Status")
    eda["columns"]["approved"] = {"role": "boolean", "drop": False, "reason": "true/false with gaps"}
    write_json(artifact_path(run_dir, "eda"), eda)
    params = validate_params({"data_path": str(credit_parts), "target": "Status", "engine": "dask", "seed": 7,
                              "dask_sample_rows": 2000, "run_dir": str(run_dir)}, check_data=False)
    data, inputs = fulldata.load_inputs(params)
    split = make_split(data, test_size=0.2, cv_folds=2, seed=7)  # the cheapest zoo with XGBoost's sample twin
    zoo = run_zoo(data, split, models=["dummy", "xgboost"], seed=7, n_jobs=1)
    holdout = fulldata.train_full_xgboost(inputs, data, zoo, params)
    return params, frame, data, inputs, zoo, holdout


def test_the_zoo_sample_comes_from_the_training_partitions_only(run):
    params, frame, data, inputs, *_ = run
    parts = inputs.partitions
    assert sorted(parts["train"] + parts["valid"] + parts["test"]) == [0, 1, 2, 3] and len(parts["test"]) == 1
    bounds = np.cumsum([0] + lazy.partition_lengths(inputs.table))
    allowed = np.concatenate([np.arange(bounds[i], bounds[i + 1]) for i in sorted(parts["train"] + parts["valid"])])
    assert len(data.X) == inputs.sample_rows == 2000 and set(data.X.index) <= set(allowed)
    expected = hash_sample(frame.iloc[allowed], 2000, 7)
    assert data.X.index.tolist() == expected.index.tolist()


def test_full_data_xgboost_is_scored_on_the_held_out_partitions_like_pandas_would(run):
    params, frame, data, inputs, zoo, holdout = run
    test_rows = np.concatenate([np.arange(*np.cumsum([0] + lazy.partition_lengths(inputs.table))[[i, i + 1]])
                                for i in inputs.partitions["test"]])
    test = frame.iloc[test_rows]
    y = (test["Status"] == "good").astype(int).to_numpy()  # classes sorted: bad=0, good=1
    local = score("roc_auc", y, holdout.full_pipeline.predict_proba(lazy.sklearn_frame(test[list(data.X.columns)])))
    full = holdout.table[holdout.table["trained_on"].str.startswith("full")].iloc[0]
    assert full["holdout_roc_auc"] == pytest.approx(local, abs=1e-6)
    assert f"{sum(lazy.partition_lengths(inputs.table)[i] for i in inputs.partitions['train']):,} rows" in full["trained_on"]
    assert set(holdout.table["model"]) == {"xgboost", zoo.selected} and len(holdout.table) == 2 + (zoo.selected != "xgboost")
    assert holdout.details["test_rows"] == len(test) and 0.7 < local < 0.95
    assert holdout.winner in ("full", "sample") and params.data_file.name in str(inputs.table.files[0].parent)


def test_leaderboard_and_spec_record_the_full_data_model(run, tmp_path):
    params, frame, data, inputs, zoo, holdout = run
    forced = dataclasses.replace(holdout, winner="full")
    write_json(artifact_path(tmp_path, "eda"), read_artifact(params.run_path, "eda"))
    results.write_baseline_artifacts(zoo, tmp_path, forced)
    board = pd.read_csv(artifact_path(tmp_path, "leaderboard"))
    twins = board[board["model"] == "xgboost"]
    assert len(twins) == 2 and twins["trained_on"].str.startswith("full data").sum() == 1
    assert board.loc[board["selected"], "trained_on"].str.startswith("full data").all()
    spec = read_artifact(tmp_path, "model_spec")
    assert (spec["model"], spec["trained_on"], spec["engine"]) == ("xgboost", "full", "dask")
    assert spec["holdout"]["partitions"] == inputs.partitions
    saved = load_skops(tmp_path / spec["full_model"])
    sample = lazy.sklearn_frame(frame.head(200)[list(data.X.columns)])
    np.testing.assert_array_equal(saved.predict_proba(sample), holdout.full_pipeline.predict_proba(sample))
    results.write_baseline_artifacts(zoo, tmp_path, dataclasses.replace(holdout, winner="sample"))
    assert read_artifact(tmp_path, "model_spec")["trained_on"] == "sample"


def test_the_baseline_saves_the_rows_export_would_draw_again(run, tmp_path):
    """The held-out sample comes from the scoring pass (no pass of its own) and is the sample export drew before:
    the seeded sample of the test partitions; with too few candidates it is drawn in a pass of its own, the same.
    Both samples are saved as Parquet with their row labels and dtypes, and model_spec.json names them."""
    params, frame, data, inputs, zoo, holdout = run
    drawn = lazy.lazy_sample(inputs.table, 2000, 7, known="Status", partitions=inputs.partitions["test"])
    pd.testing.assert_frame_equal(holdout.samples["test"], drawn, check_exact=True)
    again = fulldata._holdout_sample(inputs.table, [], 2000, 7, len(drawn), "Status", inputs.partitions["test"])
    pd.testing.assert_frame_equal(again, drawn, check_exact=True)
    assert holdout.samples["train"].index.tolist() == data.X.index.tolist()
    write_json(artifact_path(tmp_path, "eda"), read_artifact(params.run_path, "eda"))
    results.write_baseline_artifacts(zoo, tmp_path, holdout)
    spec = read_artifact(tmp_path, "model_spec")
    assert spec["samples"] == {"train": "baseline/sample.parquet", "test": "baseline/holdout_sample.parquet", "seed": 7,
                               "rows": {"train": 2000, "test": len(drawn)}, "test_rows_requested": 2000}
    for side, name in (("train", "dask_sample"), ("test", "holdout_sample")):
        saved = pd.read_parquet(artifact_path(tmp_path, name))  # None back for NaN: sklearn_frame makes both NaN
        pd.testing.assert_frame_equal(lazy.sklearn_frame(saved), lazy.sklearn_frame(holdout.samples[side]),
                                      check_exact=True)


def test_the_full_data_model_trains_on_every_row_when_the_workers_hold_them(run):
    *_, inputs, zoo, holdout = run
    available = sum(lazy.partition_lengths(inputs.table)[i] for i in inputs.partitions["train"])
    assert not holdout.details["memory_capped"] and holdout.details["train_rows"] == available
    assert holdout.details["trained_partitions"] == {side: inputs.partitions[side] for side in ("train", "valid")}
    assert f"trained on all {available:,} training rows" in repr(holdout)


def test_the_row_estimate_and_the_seeded_choice_of_partitions():
    # measured on one worker: 120 bytes a row at 10 features, 211 at 25
    assert (bytes_per_training_row(10), bytes_per_training_row(25)) == (120, 210)
    assert bytes_per_training_row(25, n_outputs=3, weighted=True) == 210 + 4 + 24
    lengths = [1000] * 10
    roomy = [WorkerMemory(limit=2 * 10**9, resident=300 * 10**6)] * 2
    fit = fit_partitions(lengths, list(range(7)), [7], 210, roomy, seed=1)
    assert (fit.train, fit.valid, fit.capped) == (list(range(7)), [7], False)
    # room for (0.6 x 100 MB - 30 MB) x 2 workers x 0.8 = 48 MB: 48e6 / 16,000 = 3,000 rows, one for validation
    assert (SAFE_SHARE, BALANCE) == (0.6, 0.8)
    tight = [WorkerMemory(limit=100 * 10**6, resident=30 * 10**6)] * 2
    fit = fit_partitions(lengths, list(range(7)), [7, 8], 16_000, tight, seed=1)
    assert fit.capacity_rows == 3000 and len(fit.valid) == 1 and fit.train_rows == 2000 and fit.capped
    assert fit == fit_partitions(lengths, list(range(7)), [7, 8], 16_000, tight, seed=1)  # seeded
    assert fit.note().startswith("trained on 2,000 of 7,000 training rows (2 partitions, seeded)")
    assert "raise dask_worker_memory or dask_workers" in fit.note()
    with pytest.raises(BaselineError, match="cannot hold even one training and one validation partition.*"
                                            "raise dask_worker_memory"):
        fit_partitions(lengths, list(range(7)), [7], 40_000, tight, seed=1)


def test_a_memory_cap_trains_on_fewer_partitions_and_the_leaderboard_says_so(run, tmp_path):
    """A real xgboost.dask training on the session's cluster, told its workers have room for one training and one
    validation partition of credit's four (as 2 x 100 MB workers would): it trains on one and says so."""
    params, frame, data, inputs, zoo, uncapped = run
    lengths = lazy.partition_lengths(inputs.table)
    per_row = bytes_per_training_row(len(uncapped.full_pipeline[0].get_feature_names_out()))
    room = (max(lengths) * 2.5) * per_row / (2 * BALANCE)  # rows for 2.5 partitions over both workers
    workers = [WorkerMemory(limit=int(room / SAFE_SHARE), resident=0)] * 2
    holdout = fulldata.train_full_xgboost(inputs, data, zoo, params, workers=workers)
    (trained,) = holdout.details["trained_partitions"]["train"]
    assert trained in inputs.partitions["train"] and len(inputs.partitions["train"]) == 2
    assert holdout.details["memory_capped"] and holdout.details["train_rows"] == lengths[trained]
    full = holdout.table[holdout.table["trained_on"].str.startswith("full")].iloc[0]
    assert f"{lengths[trained]:,} of {holdout.details['available_train_rows']:,} training rows" in full["trained_on"]
    assert f"trained on {lengths[trained]:,} of" in repr(holdout) and "raise dask_worker_memory" in repr(holdout)
    write_json(artifact_path(tmp_path, "eda"), read_artifact(params.run_path, "eda"))
    results.write_baseline_artifacts(zoo, tmp_path, holdout)
    board = pd.read_csv(artifact_path(tmp_path, "leaderboard"))
    line = board[board["trained_on"].str.startswith("full data")].iloc[0]
    assert line["train_rows"] == lengths[trained]
    assert read_artifact(tmp_path, "model_spec")["holdout"]["full_train_rows"] == lengths[trained]
