"""Runs side by side: a sweep folder stands for its variants, only differing parameters are shown, one row per
run in comparison.csv, the verdict weighs the lead against the CV spread, other targets or data are refused."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from mlhelpers.baseline.results import write_baseline_artifacts
from mlhelpers.compare import CompareError
from mlhelpers.compare.params import CompareParams
from mlhelpers.compare.plots import fold_scores, plot_curves, plot_cv_scores, plot_fit_times
from mlhelpers.compare.runs import load_runs
from mlhelpers.compare.table import comparison_metric, comparison_table, differing_params, verdict, write_comparison
from mlhelpers.core.artifacts import write_json
from mlhelpers.core.params import PROJECT_ROOT, ParamsError, validate_notebook_params
from mlhelpers.core.tables import file_sha256

CREDIT_SHA = file_sha256(PROJECT_ROOT / "data" / "credit.csv")


def _run(folder, zoo, folds, seed, sha=CREDIT_SHA, seconds=10.0):
    write_baseline_artifacts(zoo, folder)
    write_json(folder / "manifest.json", {
        "params": {"target": "Status", "cv_folds": folds, "seed": seed, "run_dir": str(folder), "data_query": None},
        "overrides": {"cv_folds": folds}, "data": {"sha256": sha}, "status": "succeeded", "seconds": seconds})
    return folder


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, small, quick_zoo):
    """A sweep folder of two credit variants (3 and 4 folds) as `mlh sweep` leaves it."""
    root = tmp_path_factory.mktemp("sweep")
    for name, folds in (("v01", 3), ("v02", 4)):
        _run(root / name, quick_zoo(small, models=("dummy", "linear"), folds=folds), folds, 0)
    write_json(root / "sweep.json", {"runs": [{"run": "v01", "overrides": {"cv_folds": 3}, "status": "succeeded"},
                                              {"run": "v02", "overrides": {"cv_folds": 4}, "status": "succeeded"}]})
    return root


def test_a_sweep_folder_is_compared_on_what_differs(sweep, tmp_path):
    runs = load_runs([sweep])
    assert [run.label for run in runs] == ["v01", "v02"] and comparison_metric(runs) == "roc_auc"
    differing = differing_params(runs)
    assert list(differing.columns) == ["cv_folds"] and differing["cv_folds"].tolist() == ["3", "4"]  # not seed, target
    table = comparison_table(runs, "roc_auc")
    assert table["model"].tolist() == [run.cv_results["selected"] for run in runs]
    assert table.loc["v01", "overrides"] == "cv_folds=3" and table.loc["v02", "seconds"] == 10.0
    folds = runs[0].cv_results["models"][table.loc["v01", "model"]]["fold_scores"]["roc_auc"]
    assert table.loc["v01", "cv_mean"] == pytest.approx(sum(folds) / 3)
    write_comparison(table, sweep)
    written = pd.read_csv(sweep / "comparison.csv")
    assert written.columns.tolist() == ["run", "run_folder", "status", "overrides", "model", "metric", "cv_mean",
                                        "cv_std", "test", "seconds", "fit_seconds"]
    assert written["run_folder"].tolist() == ["v01", "v02"]  # relative to the sweep folder


def test_the_verdict_weighs_the_lead_against_the_cv_spread():
    table = pd.DataFrame({"model": ["linear", "xgboost"], "cv_mean": [0.80, 0.83], "cv_std": [0.01, 0.012],
                          "test": [0.79, None]}, index=["a", "b"])
    clear = verdict(table, "roc_auc").iloc[0]
    assert clear.name == "b" and clear["lead exceeds spread"] and "more than the CV spread" in clear["verdict"]
    close = verdict(table.assign(cv_mean=[0.825, 0.83]), "roc_auc").iloc[0]
    assert not close["lead exceeds spread"] and "not distinguishable" in close["verdict"]
    errors = verdict(table.assign(cv_mean=[500.0, 520.0], cv_std=[5.0, 5.0]), "rmse").iloc[0]
    assert errors.name == "a"  # lower is better for an error
    alone = verdict(table.head(1), "roc_auc").iloc[0]
    assert "only one run" in alone["verdict"]


def test_one_run_still_makes_a_report(sweep):
    runs = load_runs([sweep / "v01"])
    assert "one run (v01)" in differing_params(runs).iloc[0, 0]
    assert len(comparison_table(runs, "roc_auc")) == 1


def test_figures_show_every_run_and_model(sweep):
    runs = load_runs([sweep])
    scores = fold_scores(runs, "roc_auc")
    assert len(scores) == 2 * 3 + 2 * 4  # two models, 3 and 4 folds
    ax = plot_cv_scores(runs, "roc_auc")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["dummy", "linear"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["v01", "v02"]
    assert len(plot_fit_times(runs).patches) == 4
    curves = plot_curves(runs)
    assert [t.get_text().split(" (AUC")[0] for t in curves.axes[0].get_legend().get_texts()] == \
        [f"{run.label} ({run.model})" for run in runs]
    plt.close("all")


def test_regression_runs_overlay_residuals(tmp_path, diamonds, quick_zoo):
    zoo = quick_zoo(diamonds, models=("dummy", "linear"), target="price", task="regression", metric="rmse")
    runs = load_runs([_run(tmp_path / "r1", zoo, 3, 0, sha="d" * 64)])
    figure = plot_curves(runs)
    assert figure.axes[0].get_xlabel() == "residual (actual - predicted)" and len(figure.axes[1].lines) == 1
    plt.close("all")


def test_runs_of_other_targets_or_data_are_refused(sweep, tmp_path, small, quick_zoo):
    other_data = _run(tmp_path / "other", quick_zoo(small, models=("dummy",)), 3, 0, sha="0" * 64)
    with pytest.raises(CompareError, match="learned from different data .*sha256 000000000000"):
        load_runs([sweep / "v01", other_data])
    other_target = tmp_path / "target"
    _run(other_target, quick_zoo(small.assign(Rich=small["Income"] > 150), models=("dummy",), target="Rich"), 3, 0)
    with pytest.raises(CompareError, match="predict different targets .*v01: Status; .*target: Rich"):
        load_runs([sweep / "v01", other_target])
    with pytest.raises(CompareError, match="neither a run folder .* nor a sweep folder"):
        load_runs([tmp_path / "nothing"])
    (tmp_path / "early" / "explore").mkdir(parents=True)
    with pytest.raises(CompareError, match="none of the runs has baseline results"):
        load_runs([tmp_path / "early"])


def test_compare_params_name_the_bad_key():
    with pytest.raises(ParamsError, match=r"unknown key 'run_dir' \(did you mean 'run_dirs'\?\)"):
        validate_notebook_params({"run_dir": "runs/x"}, CompareParams)
    with pytest.raises(ParamsError, match="key 'run_dirs'"):
        validate_notebook_params({"run_dirs": "runs/x"}, CompareParams)  # a list, not one string
    assert json.loads(CompareParams().model_dump_json())["run_dirs"] == ["runs/interactive"]
