"""Duplicate rows on real tables: copies are counted with examples, coincidences of common values are not copies."""

import numpy as np
import pandas as pd
import pytest

from mlhelpers.core.tables import DUPLICATE_SHARE, copied_rows
from mlhelpers.explore import recommend
from mlhelpers.explore.duplicates import duplicate_rows


@pytest.fixture(scope="module")
def repeated(credit):
    """The credit table with each row present one to three times (a table built by repeating rows)."""
    rng = np.random.default_rng(0)
    return credit.loc[credit.index.repeat(rng.integers(1, 4, len(credit)))].reset_index(drop=True)


def test_repeated_rows_are_counted_with_the_largest_groups_as_examples(credit, repeated):
    found = duplicate_rows(repeated, examples=3)
    assert found.duplicate_rows == len(repeated) - len(credit) == found.copy_rows
    assert found.largest_group == 3 and found.groups > 0.5 * len(credit)
    assert list(found.examples["copies"]) == [3, 3, 3] and list(found.examples.columns[1:]) == list(credit.columns)
    assert found.grouped_split and "keeps each group of copies" in found.summary().loc["baseline split", "value"]
    assert duplicate_rows(credit).duplicate_rows == 0 and not duplicate_rows(credit).grouped_split


def test_identical_rows_of_common_values_are_coincidences_not_copies(credit):
    """Four categorical columns and the target take few combinations: identical rows are expected in i.i.d.
    data, and grouping them would put each combination's good and bad rows in different folds."""
    categorical = credit[["Status", "Home", "Marital", "Records", "Job"]]
    found = duplicate_rows(categorical)
    assert found.share > 0.9 and found.copy_rows == 0 and not found.grouped_split
    groups, copied = copied_rows(categorical)
    assert len(np.unique(groups)) < 300 and not copied.any()


def test_eda_json_reports_duplicates_over_all_columns_and_over_the_kept_features(credit):
    """Copies made with a fresh row number are not whole-row duplicates, but they are duplicates of
    everything the model sees (the row number is dropped as an identifier)."""
    frame = pd.concat([credit, credit.sample(300, random_state=2)], ignore_index=True)
    frame["rownames"] = np.arange(len(frame))  # every row number unique again
    before = duplicate_rows(credit.drop(columns="rownames")).copy_rows  # the table itself holds 2 copies
    payload = recommend.recommend(frame, target="Status", seed=0)
    entry = payload["duplicates"]
    assert entry["duplicate_rows"] == 0 and entry["threshold"] == DUPLICATE_SHARE and entry["examples"] == []
    assert before == 2 and entry["features_and_target"] == {
        "duplicate_rows": 302, "copy_rows": 302, "copy_share": round(302 / len(frame), 6), "grouped_split": True}
    assert "keeps each group of copies on one side" in recommend.summarize(payload).data
