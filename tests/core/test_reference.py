"""The compact reference: per column quantiles and bin shares or category frequencies and the missing rate,
the same keys for training and new data, and never a row."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from mlhelpers.core.reference import (N_BINS, QUANTILES, TOP_CATEGORIES, bin_counts, build_reference, category_keys,
                                      column_kind, numeric_values, summarize)


def test_numeric_summary_has_equal_mass_bins_quantiles_and_missing_rate(credit):
    summary = summarize(credit["Income"], "numeric")
    assert summary["missing_rate"] == credit["Income"].isna().mean()
    assert len(summary["quantiles"]) == len(QUANTILES) and len(summary["edges"]) <= N_BINS - 1
    assert summary["quantiles"][0] == credit["Income"].min() and summary["quantiles"][-1] == credit["Income"].max()
    assert np.isclose(sum(summary["shares"]), 1.0)
    assert max(summary["shares"]) < 0.15  # about 5% each: equal-mass bins, whatever the skew


def test_a_few_distinct_values_get_a_bin_each(flights):
    months = summarize(flights["month"], "numeric")
    assert months["edges"] == list(range(1, 13)) and months["shares"][-1] == 0  # (12, inf) stays empty
    counts = bin_counts(numeric_values(flights["month"]), months["edges"])
    assert counts[:12].tolist() == flights["month"].value_counts().sort_index().tolist()


def test_dates_are_summarized_as_seconds(flights):
    dates = summarize(flights["time_hour"], "datetime")
    first = pd.Timestamp(dates["quantiles"][0], unit="s", tz="UTC")
    assert first == pd.Timestamp(flights["time_hour"].min()) and dates["missing_rate"] == 0


def test_category_keys_match_across_ints_floats_and_strings():
    assert category_keys(pd.Series([1, 2, 2])).tolist() == ["1", "2", "2"]
    assert category_keys(pd.Series([1.0, np.nan, 2.5])).tolist() == ["1", "2.5"]  # a missing value makes codes floats
    assert category_keys(pd.Series(["rent", None])).tolist() == ["rent"]
    assert category_keys(pd.Series([True, False])).tolist() == ["True", "False"]


def test_categories_keep_the_commonest_and_one_other_share(flights):
    tails = summarize(flights["tailnum"], "categorical")
    assert len(tails["categories"]) == TOP_CATEGORIES and tails["n_categories"] == flights["tailnum"].nunique()
    assert np.isclose(sum(tails["categories"].values()) + tails["other_share"], 1.0)
    assert np.isclose(tails["missing_rate"], flights["tailnum"].isna().mean())


def test_reference_of_a_model_run_follows_its_schema_and_holds_no_row(tmp_path, model_run):
    run_dir, _, data, _ = model_run(tmp_path / "run")
    reference = json.loads((run_dir / "model" / "reference.json").read_text())
    schema = json.loads((run_dir / "model" / "input_schema.json").read_text())
    assert reference["schema_version"] == 1 and reference["n_rows"] == len(data.X_train)
    assert list(reference["columns"]) == list(schema["columns"])
    assert {name: c["kind"] for name, c in reference["columns"].items()} == \
        {name: column_kind(info) for name, info in schema["columns"].items()}
    assert reference["prediction"]["column"] == "proba_good" and reference["prediction"]["n"] == len(data.X_test)
    # compact: a fixed size per column, whatever the row count (quantiles, bins, at most 50 categories)
    assert (run_dir / "model" / "reference.json").stat().st_size < 40_000
    listed = [len(v) for c in reference["columns"].values() for v in c.values() if isinstance(v, (list, dict))]
    assert max(listed) <= len(QUANTILES)


def test_build_reference_on_a_regression(diamonds, diamond_features):
    schema = {"task": "regression", "classes": None,
              "columns": {name: {"role": role, "dtype": str(diamonds[name].dtype)}
                          for role, names in diamond_features.items() for name in names}}
    reference = build_reference(diamonds, schema, pd.DataFrame({"prediction": diamonds["price"] * 1.0}))
    assert reference["columns"]["cut"]["kind"] == "categorical" and reference["columns"]["carat"]["kind"] == "numeric"
    assert reference["prediction"]["column"] == "prediction" and reference["prediction"]["kind"] == "numeric"
