"""The baseline's files: the selected model's out-of-fold predictions, one row per validated training row."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlhelpers.baseline.results import out_of_fold_table, write_baseline_artifacts


def test_out_of_fold_predictions_are_written_per_training_row(tmp_path, small, quick_zoo):
    zoo = quick_zoo(small, models=("dummy", "linear"))
    files = write_baseline_artifacts(zoo, tmp_path)
    assert "baseline/oof_predictions.parquet" in files["file"].tolist()
    oof = pd.read_parquet(tmp_path / "baseline" / "oof_predictions.parquet")
    assert sorted(oof["row"]) == sorted(zoo.split.train_index)  # stratified folds validate every training row
    assert sorted(oof["fold"].unique()) == [1, 2, 3]
    assert np.allclose(oof[["proba_bad", "proba_good"]].sum(axis=1), 1.0)
    assert (oof["actual"] == small.loc[oof["row"], "Status"].to_numpy()).all()  # labels, not codes
    y, proba = zoo.out_of_fold()
    assert np.allclose(oof["proba_good"], proba[:, 1]) and (oof["prediction"] == np.where(proba[:, 1] >= 0.5, "good", "bad")).all()


def test_a_time_split_leaves_out_the_rows_no_fold_validated(diamonds, quick_zoo):
    frame = diamonds.reset_index(drop=True).assign(when=pd.date_range("2020-01-01", periods=len(diamonds), freq="h"))
    zoo = quick_zoo(frame, models=("dummy",), target="price", task="regression", metric="rmse", time_column="when")
    oof = out_of_fold_table(zoo)
    assert len(oof) < len(zoo.split.train_index) and list(oof.columns) == ["row", "fold", "actual", "prediction"]
    assert np.allclose(oof["actual"], frame.loc[oof["row"], "price"])
