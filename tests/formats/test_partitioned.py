"""Scoring on the Dask engine (real LocalCluster): a folder of Parquet files scored partition by partition into
Parquet parts of predictions and rejects, row for row what the pandas engine's chunked scoring writes; bad input
refused before any row is scored, and nothing overwritten."""

import numpy as np
import pandas as pd
import pytest

from mlhelpers.core.io import load_table
from mlhelpers.core.schema import SchemaError
from mlhelpers.formats.partitioned import score_partitions
from mlhelpers.formats.scoring import score_file
from mlhelpers.formats.served import ScoringError


@pytest.fixture(scope="module")
def model_dir(model_run, tmp_path_factory):
    run_dir, *_ = model_run(tmp_path_factory.mktemp("model_run"))
    return run_dir / "model"


@pytest.fixture(scope="module")
def unseen_parts(credit_parts, tmp_path_factory, write_parts):
    """credit_parts with a few rows the model must refuse: an unseen category, every feature missing."""
    frame = load_table(credit_parts)
    frame.loc[[5, 1200], "Home"] = "castle"
    features = [c for c in frame.columns if c not in ("rownames", "Status", "approved")]
    frame.loc[3000, features] = None
    return frame, write_parts(frame, tmp_path_factory.mktemp("unseen_parts"), 4)


def test_partitions_score_like_the_pandas_engine(model_dir, unseen_parts, dask_engine, tmp_path):
    frame, folder = unseen_parts
    summary = score_partitions(model_dir, folder, tmp_path / "predictions")
    assert (summary.rows, summary.rejected, summary.scored) == (4454, 3, 4451)
    assert sorted(p.name for p in (tmp_path / "predictions").iterdir()) == [f"part.{i}.parquet" for i in range(4)]
    assert "approved" in summary.extra_columns
    single = tmp_path / "whole.parquet"
    frame.to_parquet(single, index=False)
    reference = score_file(model_dir, single, tmp_path / "reference.parquet", progress=False)
    expected = pd.read_parquet(tmp_path / "reference.parquet")
    got = pd.read_parquet(tmp_path / "predictions").sort_values("row").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    rejects = pd.read_parquet(tmp_path / "predictions_rejects").sort_values("row")
    assert rejects["row"].tolist() == [5, 1200, 3000] == pd.read_csv(reference.rejects)["row"].tolist()


def test_bad_input_is_refused_before_scoring_and_nothing_is_overwritten(model_dir, credit_parts, dask_engine,
                                                                        tmp_path, write_parts):
    (tmp_path / "taken").mkdir()
    with pytest.raises(ScoringError, match="taken already exists; scoring never overwrites"):
        score_partitions(model_dir, credit_parts, tmp_path / "taken")
    lacking = write_parts(load_table(credit_parts).drop(columns="Income"), tmp_path / "lacking", 2)
    with pytest.raises(SchemaError, match="lacks column"):
        score_partitions(model_dir, lacking, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not any(tmp_path.glob(".out*"))
    with pytest.raises(ScoringError, match="pattern matches no file"):
        score_partitions(model_dir, tmp_path / "nothing" / "*.parquet", tmp_path / "out")
