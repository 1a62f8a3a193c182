"""Copies of rows across splits, on a real table built by repeating rows: grouped, they stay on one side of
the test split and of every fold, and a forest's CV score falls back to its honest level."""

import json

import numpy as np
import pandas as pd
import pytest

from mlhelpers.baseline import BaselineError, crossval, splits
from mlhelpers.core.tables import duplicate_groups


@pytest.fixture(scope="module")
def honest(credit):
    """2,000 rows of credit without the row number: no copies."""
    return credit.drop(columns="rownames").sample(2000, random_state=0).reset_index(drop=True)


@pytest.fixture(scope="module")
def repeated(honest):
    """The same rows, each present one to three times (``original``: the row each copies, not a feature)."""
    rng = np.random.default_rng(0)
    return honest.loc[honest.index.repeat(rng.integers(1, 4, len(honest)))].rename_axis("original").reset_index()


def _copies(data):
    return duplicate_groups(data.X.assign(target=data.y))


def _sides(split, data):
    """Groups of copies found in the test rows and in each fold's validation rows, per side."""
    groups = _copies(data)
    train = data.X.index.get_indexer(split.train_index)
    test = data.X.index.get_indexer(split.test_index)
    yield set(groups[train]), set(groups[test])
    for fit_rows, val_rows in split.folds:
        yield set(groups[train][fit_rows]), set(groups[train][val_rows])


def test_copies_stay_on_one_side_of_the_test_split_and_every_fold(tmp_path, repeated, prepared):
    data = prepared(repeated, drop_columns=["original"])
    split = splits.make_split(data, test_size=0.2, cv_folds=4, seed=0)
    assert split.strategy == "stratified" and split.duplicates["grouped"]
    assert split.duplicates["copy_rows"] == split.duplicates["duplicate_rows"] >= len(repeated) - 2000
    for one, other in _sides(split, data):
        assert not one & other
    assert abs(len(split.test_index) / len(repeated) - 0.2) < 0.02
    y_test = data.y[data.X.index.get_indexer(split.test_index)]
    assert abs(y_test.mean() - data.y.mean()) < 0.03  # still stratified
    written = json.loads(splits.write_split(split, tmp_path).read_text())
    assert written["duplicates"]["grouped"] is True and "stays on one side" in written["duplicates"]["policy"]
    assert "copies of rows (features and target)" in split.summary().index


def test_grouping_brings_a_forests_cv_score_back_to_its_honest_level(honest, repeated, prepared):
    def forest_auc(frame, group):
        data = prepared(frame)
        split = splits.make_split(data, test_size=0.2, cv_folds=3, seed=0, group_duplicates=group)
        zoo = crossval.run_zoo(data, split, models=["random_forest"], seed=0, n_jobs=1)
        return zoo.results["random_forest"].mean("roc_auc")

    copies = repeated.drop(columns="original")
    truth, grouped, inflated = forest_auc(honest, True), forest_auc(copies, True), forest_auc(copies, False)
    assert abs(grouped - truth) < 0.02
    assert inflated > truth + 0.04


def test_group_duplicates_false_and_time_splits_leave_copies_ungrouped(repeated, prepared):
    data = prepared(repeated, drop_columns=["original"])
    off = splits.make_split(data, cv_folds=3, seed=0, group_duplicates=False)
    assert not off.duplicates["grouped"] and "group_duplicates is false" in off.duplicates["policy"]
    assert any(one & other for one, other in _sides(off, data))
    timed = splits.make_split(prepared(repeated.assign(when=np.arange(len(repeated))), time_column="when",
                                       drop_columns=["when", "original"]), cv_folds=3, seed=0)
    assert timed.strategy == "time" and not timed.duplicates["grouped"]
    assert "time-ordered" in timed.duplicates["policy"]


def test_copies_join_the_groups_of_a_group_column(repeated, prepared):
    branch = repeated["original"] % 40
    moved = repeated.index[repeated["original"].duplicated()][:6]
    branch[moved] = (branch[moved] + 1) % 40  # six copies sit in another branch than their twin
    data = prepared(repeated.assign(branch=branch), group_column="branch", drop_columns=["original"])
    split = splits.make_split(data, test_size=0.2, cv_folds=3, seed=0)
    assert split.strategy == "group" and split.duplicates["grouped"]
    for one, other in _sides(split, data):
        assert not one & other
    branches = data.groups.to_numpy()
    train, test = data.X.index.get_indexer(split.train_index), data.X.index.get_indexer(split.test_index)
    assert not set(branches[train]) & set(branches[test])


def test_copies_joining_every_group_of_a_group_column_is_explained(repeated, prepared):
    branch = repeated["original"] % 4
    copies = repeated.index[repeated["original"].duplicated()]
    # one copy of each branch sits in the next branch: joined through their copies, the four branches are one
    moved = [copies[(branch[copies] == b).to_numpy()][0] for b in range(4)]
    branch[moved] = (branch[moved] + 1) % 4
    data = prepared(repeated.assign(branch=branch), group_column="branch", drop_columns=["original"])
    with pytest.raises(BaselineError, match="'branch' has 1 groups once groups sharing copies of a row are joined; "
                                            "grouped splitting needs at least cv_folds \\+ 1 = 4.*set group_duplicates: false"):
        splits.make_split(data, test_size=0.2, cv_folds=3, seed=0)
    assert splits.make_split(data, test_size=0.2, cv_folds=3, seed=0, group_duplicates=False).strategy == "group"


def test_coincidences_of_common_values_are_not_grouped(credit, prepared):
    data = prepared(credit[["Status", "Home", "Marital", "Records", "Job"]])
    split = splits.make_split(data, cv_folds=3, seed=0)
    assert split.duplicates["duplicate_rows"] > 4000 and split.duplicates["copy_rows"] == 0
    assert not split.duplicates["grouped"] and "coincidences" in split.duplicates["policy"]


def test_too_few_distinct_rows_to_group_is_explained(honest, prepared):
    few = pd.concat([honest.head(12)] * 30, ignore_index=True)
    with pytest.raises(BaselineError, match="only 12 distinct rows .* lower cv_folds, or set group_duplicates: false"):
        splits.make_split(prepared(few), cv_folds=5, seed=0)
