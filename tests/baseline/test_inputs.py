"""Baseline inputs: features by role from eda.json, the encoded target, the held-out split and its folds."""

import json

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from mlhelpers.baseline import BaselineError, crossval, diagnostics, inputs, splits  # noqa: E402
from mlhelpers.core.artifacts import MissingArtifactError, write_json  # noqa: E402
from mlhelpers.core.params import validate_params  # noqa: E402


# --- data -----------------------------------------------------------------------------------------

def test_prepare_uses_eda_roles_and_never_uses_drop_or_group_columns(credit, prepared):
    data = prepared(credit, drop_columns=["Income"], group_column="Job")
    used = [c for cols in data.features.values() for c in cols]
    assert "Income" not in used and "Job" not in used and "rownames" not in used and "Status" not in used
    assert data.excluded["Income"] == "in drop_columns" and "group_column" in data.excluded["Job"]
    assert data.classes == ["bad", "good"] and data.metrics[0] == "roc_auc" and len(data.metrics) == 6
    assert "Income" in data.summary().index.str.cat(sep=" ")


def test_prepare_errors_name_the_fix(credit, eda_for):
    eda = eda_for(credit, "Status")
    with pytest.raises(BaselineError, match="lacks; the data changed since the explore step: rerun 01_explore"):
        inputs.prepare_baseline_data(credit.drop(columns=["Age"]), eda)
    with pytest.raises(BaselineError, match="target 'Status' is not numeric"):
        inputs.prepare_baseline_data(credit, eda, task="regression", primary_metric="rmse")
    with pytest.raises(BaselineError, match="no feature columns left"):
        inputs.prepare_baseline_data(credit[["Status", "Age"]], eda_for(credit[["Status", "Age"]], "Status"),
                                       drop_columns=["Age"])
    one_class = credit[credit["Status"] == "good"]
    with pytest.raises(BaselineError, match="single class"):
        inputs.prepare_baseline_data(one_class, eda_for(one_class, "Status"))


def test_rare_classes_are_merged_before_the_split_or_refused_with_their_counts(credit, prepared):
    frame = credit.dropna(subset=["Home"]).copy()
    frame.loc[frame.index[:10], "Home"] = "tiny"   # 10 rows, and 'ignore' has 20: with 20 folds both are too few
    data = prepared(frame, target="Home", cv_folds=20, test_size=0.2)
    # credit's Home already has a class 'other': the merged one must not take its name (or its meaning)
    assert data.rare_classes["rare"] == {"tiny": 10, "ignore": 20} and data.rare_classes["merged_into"] == "other_rare"
    assert data.classes == ["other", "other_rare", "owner", "parents", "priv", "rent"]
    assert np.bincount(data.y)[data.classes.index("other_rare")] == 30
    assert "merged into one class 'other_rare' (30 rows)" in data.summary().loc["rare classes", "value"]
    split = splits.make_split(data, test_size=0.2, cv_folds=20, seed=0)
    assert split.absent_from_test == []          # stratified: every class kept has test rows
    y_test = data.y[data.X.index.get_indexer(split.test_index)]
    assert set(y_test) == set(range(len(data.classes)))
    with pytest.raises(BaselineError, match=r"target 'Home': classes with too few rows \('tiny': 10, 'ignore': 20\); "
                                            r"a class needs at least 25 rows .*Fix: set rare_classes: merge"):
        prepared(frame, target="Home", cv_folds=20, rare_classes="refuse")
    assert prepared(frame, target="Home", cv_folds=5).classes == sorted(frame["Home"].unique())  # 5 folds: none rare



def test_a_target_with_hundreds_of_rare_classes_is_refused_in_a_few_lines(credit, prepared):
    frame = credit.assign(ratio=(credit["Amount"] / credit["Price"]).round(4))  # a continuous value as "classes"
    with pytest.raises(BaselineError, match=r"classes with too few rows \(.* and [\d,]+ more; with [\d,]+ classes "
                                            r"the target looks continuous: set task: regression\); merged they would "
                                            r"make [\d,]+ of [\d,]+ rows one class") as raised:
        prepared(frame, target="ratio")
    assert len(str(raised.value)) < 800  # not thousands of classes printed

# --- split ----------------------------------------------------------------------------------------

def test_stratified_split_is_disjoint_complete_and_balanced(credit, prepared):
    data = prepared(credit)
    split = splits.make_split(data, test_size=0.2, cv_folds=5, seed=7)
    assert split.strategy == "stratified"
    assert set(split.train_index).isdisjoint(split.test_index)
    assert sorted(split.train_index + split.test_index) == sorted(credit.index)
    test_share = (credit.loc[split.test_index, "Status"] == "bad").mean()
    assert test_share == pytest.approx((credit["Status"] == "bad").mean(), abs=0.01)
    validated = np.concatenate([val for _, val in split.folds])
    assert sorted(validated) == list(range(len(split.train_index)))  # every training row validated once


def test_group_split_keeps_each_group_on_one_side(credit, prepared):
    frame = credit.assign(branch=credit.index // 40)
    data = prepared(frame, group_column="branch")
    split = splits.make_split(data, test_size=0.25, cv_folds=4, seed=0)
    assert split.strategy == "group"
    assert set(frame.loc[split.train_index, "branch"]).isdisjoint(frame.loc[split.test_index, "branch"])
    train_groups = frame.loc[split.train_index, "branch"].to_numpy()
    for fit_rows, val_rows in split.folds:
        assert set(train_groups[fit_rows]).isdisjoint(train_groups[val_rows])
    with pytest.raises(BaselineError, match="has 3 groups; grouped splitting needs at least cv_folds \\+ 1 = 5"):
        splits.make_split(prepared(credit.assign(branch=credit.index % 3), group_column="branch"), cv_folds=4)


def test_group_split_draws_again_until_every_class_has_test_rows(credit, prepared):
    from sklearn.model_selection import GroupShuffleSplit

    frame = credit.dropna(subset=["Home"]).assign(branch=lambda f: f.index // 40)
    frame.loc[frame["branch"].isin([3, 50, 60, 70]), "Home"] = "branch_only"   # a class living in four groups
    first_test = next(GroupShuffleSplit(1, test_size=0.25, random_state=1).split(frame, groups=frame["branch"]))[1]
    assert "branch_only" not in set(frame["Home"].iloc[first_test])   # the plain group draw would test without it
    data = prepared(frame, target="Home", group_column="branch", cv_folds=4, test_size=0.25)
    split = splits.make_split(data, test_size=0.25, cv_folds=4, seed=1)
    assert split.strategy == "group" and split.absent_from_test == []
    assert set(frame.loc[split.test_index, "Home"]) == set(data.classes)
    assert set(frame.loc[split.train_index, "branch"]).isdisjoint(frame.loc[split.test_index, "branch"])
    assert splits.make_split(data, test_size=0.25, cv_folds=4, seed=1).test_index == split.test_index  # seeded


def test_time_split_tests_on_the_latest_rows_and_validates_forward(credit, prepared):
    frame = credit.assign(when=pd.date_range("2020-01-01", periods=len(credit), freq="h")[::-1].astype(str))
    data = prepared(frame, time_column="when")
    split = splits.make_split(data, test_size=0.2, cv_folds=3, seed=0)
    when = pd.to_datetime(frame["when"])
    assert split.strategy == "time" and when[split.test_index].min() > when[split.train_index].max()
    train_when = when[split.train_index].to_numpy()
    for fit_rows, val_rows in split.folds:
        assert train_when[val_rows].min() > train_when[fit_rows].max()
    zoo = crossval.run_zoo(data, split, models=["dummy", "linear"], seed=0, n_jobs=1)
    assert np.isnan(zoo.results["linear"].oof[:, 0]).sum() > 0  # the first chunk is never validated
    assert len(diagnostics.plot_diagnostics(zoo).axes) == 5
    plt.close("all")
    bad = frame.assign(when=frame["when"].where(frame.index != 5, "not a time"))
    with pytest.raises(BaselineError, match=r"time_column 'when' has 1 of 4,454 values that are missing or neither dates "
                                            r"nor numbers \(e\.g\. 'not a time'\); point time_column"):
        splits.make_split(prepared(bad, time_column="when"), cv_folds=3)


def test_too_few_rows_for_the_folds_is_explained(credit, prepared):
    with pytest.raises(BaselineError, match="too few for cv_folds=10; lower cv_folds or test_size"):
        splits.make_split(prepared(credit.head(20), target="Amount", task="regression", metric="rmse"),
                            test_size=0.2, cv_folds=10)


def test_split_json_holds_row_labels(tmp_path, credit, prepared):
    frame = credit.iloc[100:400]  # labels are not positions
    split = splits.make_split(prepared(frame), test_size=0.2, cv_folds=3, seed=0)
    payload = json.loads(splits.write_split(split, tmp_path).read_text())
    assert payload["schema_version"] == 1 and payload["strategy"] == "stratified"
    assert len(payload["test_index"]) == 60 and min(payload["train_index"] + payload["test_index"]) == 100

# --- the notebook's entry point -------------------------------------------------------------------

def test_load_baseline_data_needs_the_explore_step(tmp_path, credit, eda_for):
    params = validate_params({"run_dir": str(tmp_path)})
    with pytest.raises(MissingArtifactError, match="run the explore step first"):
        inputs.load_baseline_data(params)
    write_json(tmp_path / "explore" / "eda.json", eda_for(credit, "Status") | {"target": "Income"})
    with pytest.raises(BaselineError, match="is for target 'Income', params say 'Status'"):
        inputs.load_baseline_data(params)
    write_json(tmp_path / "explore" / "eda.json", eda_for(credit, "Status"))
    assert len(inputs.load_baseline_data(params).X) == len(credit)
