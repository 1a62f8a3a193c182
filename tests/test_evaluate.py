"""Baseline step: split, cross-validation without leaks, leaderboard, selection, diagnostics, edge cases."""

import json
import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from mlhelpers import evaluate  # noqa: E402
from mlhelpers.artifacts import MissingArtifactError, write_json  # noqa: E402
from mlhelpers.config import PROJECT_ROOT, validate_params  # noqa: E402
from mlhelpers.evaluate import BaselineError, LeakageWarning  # noqa: E402
from mlhelpers.modeling import build_pipeline  # noqa: E402

FAST = ["dummy", "linear", "hist_gradient_boosting"]
TIMING = ["fit_seconds", "predict_seconds"]


def eda_for(frame, target, task="classification", metric="roc_auc", cardinality=30):
    """What the explore step would write, derived from dtypes (its own eda.json is not needed here)."""
    columns = {}
    for name in frame.columns:
        if name == target:
            columns[name] = {"role": "target", "drop": True, "reason": "target"}
        elif name == "rownames":
            columns[name] = {"role": "identifier", "drop": True, "reason": "row number"}
        elif pd.api.types.is_numeric_dtype(frame[name]):
            columns[name] = {"role": "numeric", "drop": False, "reason": "numeric"}
        else:
            role = "high_cardinality" if frame[name].nunique() > cardinality else "categorical"
            columns[name] = {"role": role, "drop": False, "reason": "text"}
    classes = sorted(frame[target].unique().tolist(), key=str) if task == "classification" else None
    return {"schema_version": 1, "target": target, "task": task, "primary_metric": metric,
            "classes": classes, "columns": columns, "leakage_suspects": []}


@pytest.fixture(scope="module")
def credit():
    return pd.read_csv(PROJECT_ROOT / "data" / "credit.csv")


@pytest.fixture(scope="module")
def small(credit):
    return credit.sample(1000, random_state=1)


def prepared(frame, target="Status", **kwargs):
    eda = eda_for(frame, target, **{k: kwargs.pop(k) for k in ("task", "metric") if k in kwargs})
    return evaluate.prepare_baseline_data(frame, eda, **kwargs)


def run(frame, models=FAST, folds=3, seed=0, target="Status", **kwargs):
    data = prepared(frame, target, **kwargs)
    split = evaluate.make_split(data, test_size=0.2, cv_folds=folds, seed=seed)
    return evaluate.run_zoo(data, split, models=models, seed=seed, n_jobs=1)


# --- metrics --------------------------------------------------------------------------------------

def test_scores_of_perfect_and_uninformative_predictions():
    y = np.array([0, 1, 1, 0])
    perfect = np.eye(2)[y]
    assert evaluate.score("roc_auc", y, perfect) == 1.0
    assert evaluate.score("roc_auc", y, np.full((4, 2), 0.5)) == 0.5
    assert evaluate.score("roc_auc", y, perfect[:, 1]) == 1.0  # class 1's probability alone
    assert evaluate.score("log_loss", y, perfect) < 1e-6
    assert evaluate.score("rmse", np.array([1.0, 3.0]), np.array([2.0, 2.0])) == 1.0
    three = np.array([0, 1, 2, 2])
    assert evaluate.score("roc_auc", three, np.eye(3)[three]) == 1.0
    assert evaluate.score("f1", three, np.eye(3)[[0, 1, 2, 1]]) == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)


def test_metric_errors_name_the_fix():
    with pytest.raises(BaselineError, match="unknown metric 'auc'"):
        evaluate.score("auc", np.array([0, 1]), np.eye(2))
    with pytest.raises(BaselineError, match="primary_metric 'rmse' does not fit a classification task"):
        evaluate.task_metrics("classification", "rmse")


# --- data and split --------------------------------------------------------------------------------

def test_prepare_uses_eda_roles_and_never_uses_drop_or_group_columns(credit):
    data = prepared(credit, drop_columns=["Income"], group_column="Job")
    used = [c for cols in data.features.values() for c in cols]
    assert "Income" not in used and "Job" not in used and "rownames" not in used and "Status" not in used
    assert data.excluded["Income"] == "in drop_columns" and "group_column" in data.excluded["Job"]
    assert data.classes == ["bad", "good"] and data.metrics[0] == "roc_auc" and len(data.metrics) == 6
    assert "Income" in data.summary().index.str.cat(sep=" ")


def test_prepare_errors_name_the_fix(credit):
    eda = eda_for(credit, "Status")
    with pytest.raises(BaselineError, match="lacks; the data changed since the explore step: rerun 01_explore"):
        evaluate.prepare_baseline_data(credit.drop(columns=["Age"]), eda)
    with pytest.raises(BaselineError, match="target 'Status' is not numeric"):
        evaluate.prepare_baseline_data(credit, eda, task="regression", primary_metric="rmse")
    with pytest.raises(BaselineError, match="no feature columns left"):
        evaluate.prepare_baseline_data(credit[["Status", "Age"]], eda_for(credit[["Status", "Age"]], "Status"),
                                       drop_columns=["Age"])
    one_class = credit[credit["Status"] == "good"]
    with pytest.raises(BaselineError, match="single class"):
        evaluate.prepare_baseline_data(one_class, eda_for(one_class, "Status"))


def test_multiclass_target_with_a_two_member_class_is_refused_with_the_reason(credit):
    frame = credit.dropna(subset=["Home"])
    frame = frame[frame["Home"] != "other"].copy()
    frame.loc[frame.index[:2], "Home"] = "tiny"
    with pytest.raises(BaselineError, match=r"classes \{'tiny': 2\} have fewer than 5 rows: a stratified split"):
        prepared(frame, target="Home")


def test_multiclass_target_works(credit):
    frame = credit.sample(900, random_state=0)
    frame = frame[frame["Home"].isin(["owner", "rent", "parents", "priv"])]
    zoo = run(frame, models=["dummy", "linear", "xgboost"], target="Home")
    assert set(zoo.leaderboard["model"]) == {"dummy", "linear", "xgboost"}
    assert zoo.results["linear"].mean("roc_auc") > zoo.results["dummy"].mean("roc_auc") + 0.05
    assert len(evaluate.plot_diagnostics(zoo).axes) == 4
    assert "binary classification only" in evaluate.threshold_table(zoo)["note"].iloc[0]
    plt.close("all")


def test_stratified_split_is_disjoint_complete_and_balanced(credit):
    data = prepared(credit)
    split = evaluate.make_split(data, test_size=0.2, cv_folds=5, seed=7)
    assert split.strategy == "stratified"
    assert set(split.train_index).isdisjoint(split.test_index)
    assert sorted(split.train_index + split.test_index) == sorted(credit.index)
    test_share = (credit.loc[split.test_index, "Status"] == "bad").mean()
    assert test_share == pytest.approx((credit["Status"] == "bad").mean(), abs=0.01)
    validated = np.concatenate([val for _, val in split.folds])
    assert sorted(validated) == list(range(len(split.train_index)))  # every training row validated once


def test_group_split_keeps_each_group_on_one_side(credit):
    frame = credit.assign(branch=credit.index // 40)
    data = prepared(frame, group_column="branch")
    split = evaluate.make_split(data, test_size=0.25, cv_folds=4, seed=0)
    assert split.strategy == "group"
    assert set(frame.loc[split.train_index, "branch"]).isdisjoint(frame.loc[split.test_index, "branch"])
    train_groups = frame.loc[split.train_index, "branch"].to_numpy()
    for fit_rows, val_rows in split.folds:
        assert set(train_groups[fit_rows]).isdisjoint(train_groups[val_rows])
    with pytest.raises(BaselineError, match="has 3 groups; grouped splitting needs at least cv_folds \\+ 1 = 5"):
        evaluate.make_split(prepared(credit.assign(branch=credit.index % 3), group_column="branch"), cv_folds=4)


def test_time_split_tests_on_the_latest_rows_and_validates_forward(credit):
    frame = credit.assign(when=pd.date_range("2020-01-01", periods=len(credit), freq="h")[::-1].astype(str))
    data = prepared(frame, time_column="when")
    split = evaluate.make_split(data, test_size=0.2, cv_folds=3, seed=0)
    when = pd.to_datetime(frame["when"])
    assert split.strategy == "time" and when[split.test_index].min() > when[split.train_index].max()
    train_when = when[split.train_index].to_numpy()
    for fit_rows, val_rows in split.folds:
        assert train_when[val_rows].min() > train_when[fit_rows].max()
    zoo = evaluate.run_zoo(data, split, models=["dummy", "linear"], seed=0, n_jobs=1)
    assert np.isnan(zoo.results["linear"].oof[:, 0]).sum() > 0  # the first chunk is never validated
    assert len(evaluate.plot_diagnostics(zoo).axes) == 5
    plt.close("all")
    bad = frame.assign(when=frame["when"].where(frame.index != 5, "not a time"))
    with pytest.raises(BaselineError, match="time_column 'when' has 1 missing or unparseable values"):
        evaluate.make_split(prepared(bad, time_column="when"), cv_folds=3)


def test_too_few_rows_for_the_folds_is_explained(credit):
    with pytest.raises(BaselineError, match="too few for cv_folds=10; lower cv_folds or test_size"):
        evaluate.make_split(prepared(credit.head(20), target="Amount", task="regression", metric="rmse"),
                            test_size=0.2, cv_folds=10)


def test_split_json_holds_row_labels(tmp_path, credit):
    frame = credit.iloc[100:400]  # labels are not positions
    split = evaluate.make_split(prepared(frame), test_size=0.2, cv_folds=3, seed=0)
    payload = json.loads(evaluate.write_split(split, tmp_path).read_text())
    assert payload["schema_version"] == 1 and payload["strategy"] == "stratified"
    assert len(payload["test_index"]) == 60 and min(payload["train_index"] + payload["test_index"]) == 100


# --- cross-validation: nothing leaks ---------------------------------------------------------------

def test_preprocessing_never_sees_test_or_validation_rows(credit):
    frame = credit.head(600).copy()
    data = prepared(frame)
    split = evaluate.make_split(data, test_size=0.2, cv_folds=3, seed=0)
    # mark the held-out rows: a job and an income that exist only there
    frame.loc[split.test_index, "Job"] = "only_in_test"
    frame.loc[split.test_index, "Income"] = 1e9
    data = prepared(frame)
    result = evaluate.cross_validate_model("linear", data, split, seed=0, n_jobs=1, keep_models=True)
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


def test_xgboost_records_its_early_stopped_tree_count(small):
    zoo = run(small, models=["xgboost"])
    params = zoo.results["xgboost"].estimator_params
    assert 1 <= params["n_estimators"] <= evaluate.XGB_MAX_TREES
    assert build_pipeline(zoo.spec()).named_steps["model"].n_estimators == params["n_estimators"]


# --- zoo, leaderboard, selection, budget, reproducibility ---------------------------------------------

def test_leaderboard_columns_and_order(small):
    zoo = run(small)
    board = zoo.leaderboard
    metrics = ["roc_auc", "average_precision", "log_loss", "balanced_accuracy", "accuracy", "f1"]
    assert list(board.columns) == ["model"] + [f"{m}_{s}" for m in metrics for s in ("mean", "std")] + TIMING + ["selected"]
    assert board["roc_auc_mean"].is_monotonic_decreasing and board["selected"].sum() == 1
    assert board.set_index("model").loc["dummy", "roc_auc_mean"] == 0.5
    assert zoo.selected != "dummy"


def test_selection_prefers_the_simpler_model_within_one_std():
    def result(model, values):
        return evaluate.ModelResult(model, {}, {"roc_auc": values}, [1.0], [0.1], np.zeros(1), [], 0)

    close = {"linear": result("linear", [0.80, 0.82]), "xgboost": result("xgboost", [0.80, 0.84])}
    assert evaluate._select(close, "roc_auc")[0] == "linear"
    apart = {"linear": result("linear", [0.70, 0.72]), "xgboost": result("xgboost", [0.80, 0.84])}
    chosen, reason = evaluate._select(apart, "roc_auc")
    assert chosen == "xgboost" and "no simpler model" in reason
    errors = {"linear": result("linear", [2.0, 2.2]), "xgboost": result("xgboost", [1.0, 1.1])}
    assert evaluate._select({k: v for k, v in errors.items()}, "roc_auc")[0] == "linear"
    errors = {k: evaluate.ModelResult(k, {}, {"rmse": v.fold_scores["roc_auc"]}, [1.0], [0.1], np.zeros(1), [], 0)
              for k, v in errors.items()}
    assert evaluate._select(errors, "rmse")[0] == "xgboost"  # lower is better


def test_time_budget_stops_adding_models_and_lists_the_rest(small):
    with pytest.warns(UserWarning, match=r"time budget of 0.001 s spent after \['dummy'\]; skipped"):
        zoo = evaluate.run_zoo(prepared(small), evaluate.make_split(prepared(small), cv_folds=3),
                               models=["xgboost", "linear", "dummy"], time_budget_seconds=0.001, n_jobs=1)
    assert list(zoo.results) == ["dummy"] and zoo.skipped == ["linear", "xgboost"]
    assert "linear, xgboost" in zoo.summary().loc["skipped (time budget)", "value"]


def test_unknown_model_is_refused(small):
    data = prepared(small)
    with pytest.raises(BaselineError, match=r"unknown models \['svm'\]"):
        evaluate.run_zoo(data, evaluate.make_split(data, cv_folds=3), models=["svm"])


def test_same_params_and_data_give_the_same_artifacts(tmp_path, small):
    outputs = []
    for name in ("first", "second"):
        zoo = run(small, models=["dummy", "linear", "random_forest", "xgboost"], seed=5)
        evaluate.write_split(zoo.split, tmp_path / name)
        evaluate.write_baseline_artifacts(zoo, tmp_path / name)
        board = pd.read_csv(tmp_path / name / "baseline" / "leaderboard.csv").drop(columns=TIMING)
        spec = json.loads((tmp_path / name / "baseline" / "model_spec.json").read_text())
        split = (tmp_path / name / "baseline" / "split.json").read_text()
        outputs.append((board, spec, split))
    pd.testing.assert_frame_equal(outputs[0][0], outputs[1][0], check_exact=True)
    assert outputs[0][1] == outputs[1][1] and outputs[0][2] == outputs[1][2]


def test_model_spec_rebuilds_the_selected_pipeline(tmp_path, small):
    zoo = run(small)
    evaluate.write_baseline_artifacts(zoo, tmp_path)
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

def test_a_leaked_column_is_caught_loudly(small):
    leaky = small.assign(paid_back=(small["Status"] == "good") * 100 + np.random.default_rng(0).normal(0, 1, len(small)))
    zoo = run(leaky, models=["dummy", "linear"])
    with pytest.warns(LeakageWarning, match="POSSIBLE LEAKAGE: linear roc_auc = 1.0000"):
        findings = evaluate.check_leakage(zoo)
    assert list(findings["model"]) == ["linear", "linear"]
    assert evaluate.permutation_importances(zoo)["feature"].iloc[0] == "paid_back"


def test_an_honest_model_raises_no_leakage_warning(small):
    zoo = run(small, models=["dummy", "linear"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", LeakageWarning)
        assert list(evaluate.check_leakage(zoo)["note"]) == [
            "no suspiciously perfect cross-validated score (roc_auc >= 0.99, balanced_accuracy >= 0.98, r2 >= 0.995)"]


# --- edge cases: it works, or says why not ----------------------------------------------------------

def test_tiny_data_runs_the_whole_zoo(credit):
    tiny = credit.sample(50, random_state=3)
    zoo = run(tiny, models=["dummy", "linear", "random_forest", "hist_gradient_boosting", "xgboost"])
    assert len(zoo.leaderboard) == 5 and zoo.leaderboard["roc_auc_mean"].notna().all()
    assert evaluate.learning_curve_check(zoo).verdict
    assert len(evaluate.permutation_importances(zoo)) == 13


def test_a_single_feature(small):
    zoo = run(small[["Status", "Seniority"]], models=["dummy", "linear", "hist_gradient_boosting"])
    assert zoo.results["linear"].mean("roc_auc") > 0.6


def test_all_categorical_features(small):
    frame = small[["Status", "Home", "Marital", "Records", "Job"]]
    zoo = run(frame, models=["linear", "hist_gradient_boosting", "xgboost"])
    assert zoo.results["hist_gradient_boosting"].mean("roc_auc") > 0.6


def test_a_10000_level_categorical(credit):
    rng = np.random.default_rng(0)
    frame = pd.concat([credit] * 3, ignore_index=True)
    frame["customer"] = [f"c{i}" for i in rng.permutation(len(frame)) % 10_000]
    assert frame["customer"].nunique() == 10_000
    data = prepared(frame[["Status", "customer", "Seniority"]])
    assert data.features["high_cardinality"] == ["customer"]
    split = evaluate.make_split(data, test_size=0.2, cv_folds=2, seed=0)
    zoo = evaluate.run_zoo(data, split, models=["linear", "hist_gradient_boosting"], seed=0, n_jobs=1)
    assert zoo.leaderboard["roc_auc_mean"].between(0.55, 0.9).all()


# --- diagnostics and the notebook's entry point --------------------------------------------------------

def test_binary_diagnostics_threshold_and_learning_curve(tmp_path, small):
    zoo = run(small, models=["dummy", "linear"])
    fig = evaluate.plot_diagnostics(zoo)
    assert [ax.get_title() for ax in fig.axes][1:] == ["ROC curve", "precision-recall curve", "calibration",
                                                       "threshold choice"]
    table = evaluate.threshold_table(zoo)
    assert list(table.index) == ["default", "chosen"]
    assert table.loc["chosen", "balanced_accuracy"] >= table.loc["default", "balanced_accuracy"]
    check = evaluate.learning_curve_check(zoo, max_rows=600)
    assert check.table["train_rows"].is_monotonic_increasing and check.table["train_rows"].iloc[-1] == 400
    assert "data" in check.verdict and "(on a 600-row sample of the 800 training rows)" in check.verdict
    assert evaluate.plot_learning_curve(check).get_title() == "learning curve"
    assert evaluate.plot_importances(evaluate.permutation_importances(zoo)).get_title() == "permutation importance"
    plt.close("all")


def test_regression_zoo_and_diagnostics():
    frame = pd.read_csv(PROJECT_ROOT / "data" / "diamonds.csv.gz", nrows=1500)
    zoo = run(frame, target="price", task="regression", metric="rmse")
    board = zoo.leaderboard
    assert board["rmse_mean"].is_monotonic_increasing and board["model"].iloc[-1] == "dummy"
    assert zoo.results["hist_gradient_boosting"].mean("r2") > 0.9
    assert [ax.get_title() for ax in evaluate.plot_diagnostics(zoo).axes] == [
        "actual vs predicted", "residual vs predicted", "residuals"]
    assert evaluate.permutation_importances(zoo)["feature"].iloc[0] in {"carat", "x", "y", "z"}
    plt.close("all")


def test_load_baseline_data_needs_the_explore_step(tmp_path, credit):
    params = validate_params({"run_dir": str(tmp_path)})
    with pytest.raises(MissingArtifactError, match="run the explore step first"):
        evaluate.load_baseline_data(params)
    write_json(tmp_path / "explore" / "eda.json", eda_for(credit, "Status") | {"target": "Income"})
    with pytest.raises(BaselineError, match="is for target 'Income', params say 'Status'"):
        evaluate.load_baseline_data(params)
    write_json(tmp_path / "explore" / "eda.json", eda_for(credit, "Status"))
    assert len(evaluate.load_baseline_data(params).X) == len(credit)
