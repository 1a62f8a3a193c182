"""End to end: `mlh sweep` of two variants on the demo data, `mlh compare` of the sweep and `mlh drift`, as a user
runs them (apart from tests/test_e2e.py so the two whole-run fixtures can run on different test workers)."""

import json
import subprocess
import sys

import nbformat
import pandas as pd
import pytest

from mlhelpers.core.params import PROJECT_ROOT

MLH = [sys.executable, "-m", "mlhelpers.cli"]
pytestmark = pytest.mark.slow  # whole runs with a real kernel


@pytest.fixture(scope="module")
def demo_sweep(tmp_path_factory):
    """`mlh sweep` of two model sets on the demo data, as a user runs it."""
    runs_root = tmp_path_factory.mktemp("sweep-runs")
    done = subprocess.run(
        MLH + ["sweep", "params/demo.yaml", "--grid", "models=[dummy,linear],[linear,hist_gradient_boosting]",
               "--set", "cv_folds=3",
               # the sweep's mechanics are under test, not tuning or serving figures: keep both short
               "--set", "tune_seconds=0", "--set", "serving_budget_seconds=3",
               "--set", f"mlflow_tracking_uri=sqlite:///{runs_root / 'mlflow.db'}",
               "--runs-root", str(runs_root)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=1800)
    (sweep_dir,) = (runs_root / "demo").iterdir()
    return done, runs_root, sweep_dir


def _report_cells_are_clean(notebook_path):
    for cell in nbformat.read(notebook_path, as_version=4).cells:
        for output in cell.get("outputs", []):
            assert not (output.output_type == "stream" and output.name == "stderr"), \
                f"{notebook_path.name}: {cell.source[:80]!r} printed to stderr: {output.text[:300]}"
            assert output.output_type != "error", f"{notebook_path.name}: {cell.source[:80]!r} failed"


def test_sweep_runs_both_variants_and_reuses_explore(demo_sweep):
    import mlflow

    done, runs_root, sweep_dir = demo_sweep
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "2 of 2 variants succeeded" in done.stdout and f"mlh compare {sweep_dir}" in done.stdout
    sweep = json.loads((sweep_dir / "sweep.json").read_text())
    assert [(r["run"], r["status"]) for r in sweep["runs"]] == [("v01", "succeeded"), ("v02", "succeeded")]
    assert sweep["runs"][1]["overrides"] == {"models": ["linear", "hist_gradient_boosting"]}
    assert sweep["runs"][1]["explore_reused_from"] == str(sweep_dir / "v01")
    manifest = json.loads((sweep_dir / "v02" / "manifest.json").read_text())
    assert manifest["steps"]["explore"]["reused_from"] == str(sweep_dir / "v01")
    assert manifest["params"]["models"] == ["linear", "hist_gradient_boosting"]
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{runs_root / 'mlflow.db'}")
    parent = client.get_run(sweep["mlflow_parent_run_id"])
    assert parent.info.run_name == f"demo/{sweep_dir.name}" and parent.info.status == "FINISHED"
    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert sorted(run.data.tags["mlhelpers.run_dir"] for run in children) == \
        [str(sweep_dir / "v01"), str(sweep_dir / "v02")]


def test_compare_writes_the_comparison_into_the_sweep_folder(demo_sweep):
    _, _, sweep_dir = demo_sweep
    done = subprocess.run(MLH + ["compare", str(sweep_dir)], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    comparison = pd.read_csv(sweep_dir / "comparison.csv")
    assert comparison["run"].tolist() == ["v01", "v02"] and comparison["metric"].unique().tolist() == ["roc_auc"]
    assert comparison["overrides"].str.startswith("cv_folds=3; ").all() and comparison["test"].between(0.7, 1).all()
    assert (comparison["cv_std"] > 0).all() and (comparison["seconds"] > 0).all()
    for figure in ("cv_scores", "fit_times", "curves"):
        assert (sweep_dir / f"{figure}.png").stat().st_size > 0
    _report_cells_are_clean(sweep_dir / "04_compare.ipynb")


def test_drift_is_quiet_on_the_training_file_and_flags_a_shifted_one(demo_sweep, tmp_path):
    _, _, sweep_dir = demo_sweep
    model_dir = sweep_dir / "v01" / "model"
    same = subprocess.run(MLH + ["drift", str(model_dir), "data/credit.csv", "-o", str(tmp_path / "same"),
                                 "--fail-on-drift"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    assert same.returncode == 0, same.stderr[-3000:]
    assert json.loads((tmp_path / "same" / "drift_report.json").read_text())["drifted"] is False
    assert "None of the 13 columns drifted" in same.stdout

    shifted = pd.read_csv(PROJECT_ROOT / "data" / "credit.csv")
    shifted["Income"] = shifted["Income"] * 1.6
    shifted["Age"] = shifted["Age"] + 8
    shifted.to_parquet(tmp_path / "later.parquet")  # any format the pipeline reads
    moved = subprocess.run(MLH + ["drift", str(model_dir), str(tmp_path / "later.parquet"), "-o",
                                  str(tmp_path / "moved"), "--fail-on-drift"],
                           cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    assert moved.returncode == 3, moved.stderr[-3000:]
    report = json.loads((tmp_path / "moved" / "drift_report.json").read_text())
    assert report["drifted"] is True and sorted(report["drifted_columns"]) == ["Age", "Income"]
    assert (tmp_path / "moved" / "drift_Age.png").is_file() and "2 of 13 columns drifted" in moved.stdout
    _report_cells_are_clean(tmp_path / "moved" / "05_monitor.ipynb")
