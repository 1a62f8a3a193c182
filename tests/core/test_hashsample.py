"""The content-hash sample: exactly n rows, in table order, the same under any dtypes and any partitioning."""

import numpy as np
import pandas as pd

from mlhelpers.core.hashsample import hash_sample, keep_below, row_keys, sample_threshold


def test_exactly_n_rows_in_table_order_and_seeded(credit):
    sample = hash_sample(credit, 1000, seed=3)
    assert len(sample) == 1000 and sample.index.is_monotonic_increasing
    assert sample.index.equals(hash_sample(credit, 1000, seed=3).index)
    assert not sample.index.equals(hash_sample(credit, 1000, seed=4).index)
    assert hash_sample(credit, 10_000, seed=3) is credit


def test_keys_ignore_how_a_reader_typed_the_values(credit):
    typed = credit.astype({"Home": "category", "Job": "string[pyarrow]", "Seniority": "float64"})
    typed["Income"] = credit["Income"].astype("Float64")
    assert (row_keys(credit, 1) == row_keys(typed, 1)).all()


def test_partitions_kept_below_the_threshold_hold_the_same_sample(credit):
    n, seed = 500, 9
    threshold = sample_threshold(n, len(credit))
    pieces = [keep_below(credit.iloc[p], seed, threshold, i) for i, p in enumerate(np.array_split(np.arange(len(credit)), 6))]
    candidates = pd.concat(pieces)
    assert len(candidates) >= n
    chosen = candidates.sort_values(["_key", "_part", "_pos"]).head(n).sort_values(["_part", "_pos"])
    assert chosen.index.tolist() == hash_sample(credit, n, seed).index.tolist()
