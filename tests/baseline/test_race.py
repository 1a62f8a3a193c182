"""The zoo's race under a short budget, a cross-validation in two parts, the cost model, a tuned leader's selection."""

import numpy as np
import pytest

from mlhelpers.baseline import crossval, race, selection, splits, tuning


def _result(model, values, metric="roc_auc", folds=None):
    return selection.ModelResult(model, {}, {metric: values}, [1.0] * len(values), [0.1] * len(values),
                                 np.zeros(1), [], 0, fold_numbers=folds)


def test_a_cross_validation_in_two_parts_equals_one_in_a_single_go(small, prepared):
    data = prepared(small)
    split = splits.make_split(data, cv_folds=3, seed=0)
    whole = crossval.cross_validate_model("xgboost", data, split, seed=0, n_jobs=1)
    first = crossval.cross_validate_model("xgboost", data, split, seed=0, n_jobs=1, fold_numbers=[0])
    assert first.folds == 1 and first.fold_numbers == [0] and first.last_fold == 0
    assert np.isnan(first.oof[:, 0]).sum() == len(split.train_index) - len(split.folds[0][1])
    rest = crossval.cross_validate_model("xgboost", data, split, seed=0, n_jobs=1, fold_numbers=[1, 2])
    both = selection.joined(first, rest)
    assert both.fold_scores == whole.fold_scores and both.estimator_params == whole.estimator_params
    assert both.trees == whole.trees and len(both.trees) == 3 and both.fold_numbers is None and both.last_fold == 2
    assert np.array_equal(both.oof, whole.oof, equal_nan=True)


def test_a_short_budget_races_the_families_on_the_first_fold(credit, prepared):
    # 3,563 real credit applications, a budget that pays for no second fold: every family is scored on the first
    # fold, only the first-fold leader on every fold, and only it can be selected
    data = prepared(credit)
    split = splits.make_split(data, cv_folds=3, seed=0)
    zoo = crossval.run_zoo(data, split, models=["dummy", "linear", "hist_gradient_boosting"], seed=0, n_jobs=1,
                           time_budget_seconds=0.01)
    board = zoo.leaderboard.set_index("model")
    first_scores = {m: r.fold_scores["roc_auc"][0] for m, r in zoo.results.items()}
    leader = max(["linear", "hist_gradient_boosting"], key=first_scores.get)
    assert board.loc[leader, "folds"] == 3 and zoo.selected == leader
    assert (board.drop(index=leader)["folds"] == 1).all() and board["roc_auc_mean"].notna().all()
    assert "went on to every fold" in zoo.notes["race"] and "race" in zoo.budget_summary().index
    # the leader's three folds are those of a plain cross-validation on the same rows
    plain = crossval.cross_validate_model(leader, data, split, seed=0, n_jobs=1, rows=zoo.results[leader].rows)
    assert plain.fold_scores == zoo.results[leader].fold_scores


def test_a_budget_that_pays_for_every_fold_runs_no_race(small, quick_zoo):
    zoo = quick_zoo(small, models=["dummy", "linear"])
    assert (zoo.leaderboard["folds"] == 3).all() and "race" not in zoo.notes


def test_the_race_keeps_the_leader_then_the_next_best_while_its_folds_fit():
    first = {"dummy": _result("dummy", [0.5]), "linear": _result("linear", [0.80]),
             "random_forest": _result("random_forest", [0.84]), "xgboost": _result("xgboost", [0.83])}
    remaining = {"dummy": 0.2, "linear": 1.0, "random_forest": 8.0, "xgboost": 10.0}
    assert race.finishers(first, remaining, 30.0, "roc_auc") == list(first)   # all fit: no race
    assert race.finishers(first, remaining, 19.0, "roc_auc") == ["random_forest", "xgboost"]
    assert race.finishers(first, remaining, 12.0, "roc_auc") == ["random_forest"]   # xgboost's folds do not fit
    assert race.finishers(first, remaining, 1.0, "roc_auc") == ["random_forest"]    # the leader always finishes
    # a short budget (rows capped, a tuning stage to come) races even when every model's folds fit
    assert race.finishers(first, remaining, 30.0, "roc_auc", short=True) == ["random_forest", "xgboost"]
    assert race.finishers(first, remaining, 12.0, "roc_auc", short=True) == ["random_forest"]
    errors = {m: _result(m, [value], "rmse") for m, value in
              {"dummy": 3.0, "linear": 1.0, "random_forest": 1.2, "xgboost": 1.1}.items()}
    assert race.finishers(errors, remaining, 12.0, "rmse") == ["linear", "xgboost"]   # lower is better


def test_selection_keeps_a_tuned_leader_and_ignores_rows_stopped_after_one_fold():
    # telecom churn's figures: linear (tuned) within one standard error of the leading XGBoost (tuned)
    rows = {"linear (tuned)": _result("linear", [0.846, 0.851, 0.840, 0.852, 0.843]),
            "xgboost (tuned)": _result("xgboost", [0.853, 0.846, 0.846, 0.849, 0.847])}
    chosen, reason = selection.select(rows, "roc_auc")
    assert chosen == "xgboost (tuned)" and "a tuned row that leads is kept" in reason
    untuned = {"linear": rows["linear (tuned)"], "xgboost": rows["xgboost (tuned)"]}
    assert selection.select(untuned, "roc_auc")[0] == "linear"   # between defaults the simpler one still wins
    raced = untuned | {"random_forest": _result("random_forest", [0.95], folds=[0])}   # one easy fold
    assert selection.select(raced, "roc_auc")[0] == "linear"
    board = selection.leaderboard_table(raced, ["roc_auc"], "linear")
    assert list(board["model"]) == ["xgboost", "linear", "random_forest"]   # rows on every fold first
    assert list(board["folds"]) == [5, 5, 1]


def test_tuning_compares_a_family_the_race_stopped_on_its_first_fold(credit, prepared):
    data = prepared(credit.sample(1200, random_state=3))
    split = splits.make_split(data, cv_folds=3, seed=0)
    zoo = crossval.run_zoo(data, split, models=["linear", "hist_gradient_boosting"], seed=0, n_jobs=1,
                           time_budget_seconds=0.01)
    assert sorted(r.folds for r in zoo.results.values()) == [1, 3]
    families = tuning.families_to_tune(zoo)
    scores = {m: r.fold_scores["roc_auc"][0] for m, r in zoo.results.items()}
    assert families[0] == max(scores, key=scores.get)   # ranked on the fold both have
    tuned = tuning.tune_best(zoo, seconds=5)
    assert tuned.zoo.results[tuned.zoo.selected].folds == 3, tuned.note


def test_the_cost_model_separates_a_fold_s_fixed_cost_from_its_cost_per_row():
    # 1,250 rows in 0.6 s, 5,000 in 1.2 s: 0.4 s fixed + 0.16 ms per row (all per row would say 0.48 ms)
    fixed, per_row = crossval.cost_model([(1250, 0.6), (5000, 1.2)])
    assert fixed == pytest.approx(0.4) and per_row == pytest.approx(0.00016)
    assert crossval.cost_model([(1250, 0.6)]) == (0.0, pytest.approx(0.6 / 1250))
    fixed, per_row = crossval.cost_model([(1250, 0.6), (5000, 0.5)])   # noise: a larger probe ran faster
    assert per_row == pytest.approx(0.25 * 0.5 / 5000) and fixed >= 0


def test_a_leader_on_a_sample_must_beat_the_best_row_on_every_row_by_a_standard_error():
    def result(model, values, rows):
        return selection.ModelResult(model, {}, {"roc_auc": values}, [1.0] * 5, [0.1] * 5, np.zeros(1), [], 0,
                                     train_rows=rows, rows=None if rows == 5_634 else np.arange(rows))

    # telecom churn under load: a forest on 1,000 of 5,634 rows led the tuned HistGradientBoosting on all of them
    board = {"random_forest": result("random_forest", [0.8073, 0.8396, 0.9160, 0.8582, 0.8275], 1_000),
             "hist_gradient_boosting (tuned)": result("hist_gradient_boosting",
                                                      [0.8392, 0.8494, 0.8630, 0.8415, 0.8510], 5_634)}
    chosen, reason = selection.select(board, "roc_auc")
    assert chosen == "hist_gradient_boosting (tuned)" and "on 1,000 rows) is not better by more than one" in reason
    assert "has the best roc_auc on 5,634 rows, the most any model had" in reason
    # far ahead on every fold, the sample's leader stays
    board["random_forest"] = result("random_forest", [0.90, 0.91, 0.93, 0.92, 0.90], 1_000)
    assert selection.select(board, "roc_auc")[0] == "random_forest"


def test_a_budget_that_caps_rows_before_a_tuning_stage_races_for_the_stage(credit, prepared):
    from mlhelpers.baseline.budget import Budget

    # 3,563 real credit applications; a budget too short for every row caps each family's sample (1,000 rows)
    data = prepared(credit)
    split = splits.make_split(data, cv_folds=3, seed=0)
    models = ["dummy", "linear", "hist_gradient_boosting"]
    tuned = crossval.run_zoo(data, split, models=models, seed=0, n_jobs=1,
                             budget=Budget(0.01, parts=(), tune_seconds=30))
    assert all(r.rows is not None for r in tuned.results.values())
    assert "only on samples of the training rows (the tuning stage gets" in tuned.notes["race"]
    assert sum(r.folds == 3 for r in tuned.results.values()) <= race.RACE_KEEP
    # without a tuning stage to feed, the same caps say the budget could not pay for every fold
    plain = crossval.run_zoo(data, split, models=models, seed=0, n_jobs=1, budget=Budget(0.01, parts=()))
    assert "could not cross-validate all of them on every fold" in plain.notes["race"]
