"""End to end: `mlh run` on the demo data, the way a user runs it, and plain papermill validation."""

import json
import re
import subprocess
import sys

import nbformat

import pandas as pd
import pytest

from mlhelpers.core.artifacts import STEPS
from mlhelpers.core.params import PROJECT_ROOT
from mlhelpers.core.tables import file_sha256
from mlhelpers.execution import ensure_kernel

MLH = [sys.executable, "-m", "mlhelpers.cli"]
pytestmark = pytest.mark.slow  # whole runs with a real kernel


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    runs_root = tmp_path_factory.mktemp("runs")
    done = subprocess.run(
        MLH + ["run", "params/demo.yaml", "--runs-root", str(runs_root), "--set", "cv_folds=3",
               "--set", f"mlflow_tracking_uri=sqlite:///{runs_root / 'mlflow.db'}"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900)
    run_dirs = list((runs_root / "demo").iterdir())
    return done, runs_root, run_dirs


def test_demo_run_succeeds_with_one_run_folder(demo_run):
    done, _, run_dirs = demo_run
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(run_dirs) == 1 and "succeeded" in done.stdout
    # the kernels talk over private Unix sockets, not plain-text TCP (ipykernel would warn)
    assert "without encryption" not in done.stderr + done.stdout


def test_manifest_records_params_data_versions_and_steps(demo_run):
    _, _, (run_dir,) = demo_run
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "succeeded"
    assert manifest["params"]["cv_folds"] == 3 and manifest["params"]["run_dir"] == str(run_dir)
    assert manifest["data"]["sha256"] == file_sha256(
        PROJECT_ROOT / "data" / "credit.csv")
    assert {"python", "pandas", "scikit-learn", "xgboost", "mlflow"} <= set(manifest["versions"])
    for step, spec in STEPS.items():
        assert manifest["steps"][step]["status"] == "succeeded"
        assert (run_dir / spec.notebook).exists()


def test_artifacts_of_every_step_are_in_the_run_folder(demo_run):
    _, _, (run_dir,) = demo_run
    eda = json.loads((run_dir / "explore" / "eda.json").read_text())
    assert eda["target"] == "Status" and eda["task"] == "classification"
    assert eda["columns"]["rownames"]["drop"] is True
    leaderboard = pd.read_csv(run_dir / "baseline" / "leaderboard.csv")
    assert {"model", "fit_seconds", "predict_seconds"} <= set(leaderboard.columns)
    spec = json.loads((run_dir / "baseline" / "model_spec.json").read_text())
    metrics = json.loads((run_dir / "model" / "metrics.json").read_text())
    assert metrics["primary_metric"] == spec["primary_metric"] == eda["primary_metric"]
    score = metrics["test"][metrics["primary_metric"]]
    assert 0.7 < score <= 1.0  # credit scoring: ROC AUC of a sound baseline is about 0.8


def test_runs_lists_the_run_with_its_headline(demo_run):
    _, runs_root, (run_dir,) = demo_run
    done = subprocess.run(MLH + ["runs", "--runs-root", str(runs_root)], capture_output=True, text=True)
    assert run_dir.name in done.stdout and "succeeded" in done.stdout and "test " in done.stdout


def test_plain_papermill_validates_inside_the_notebook(tmp_path):
    ensure_kernel()
    output = tmp_path / "out.ipynb"
    done = subprocess.run(
        [sys.executable, "-m", "papermill", str(PROJECT_ROOT / "notebooks" / "01_explore.ipynb"), str(output),
         "-f", str(PROJECT_ROOT / "params" / "demo.yaml"), "-p", "cv_fold", "3",
         "-p", "run_dir", str(tmp_path / "run"), "-k", "mlhelpers"],
        capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "unknown key 'cv_fold' (did you mean 'cv_folds'?)" in done.stderr
    assert not (tmp_path / "run" / "explore" / "eda.json").exists()


def test_each_saved_figure_is_shown_once(demo_run):
    """save_figure shows the PNG it wrote and closes the figure, so the inline backend does not draw it again."""
    _, _, (run_dir,) = demo_run
    for step in STEPS.values():
        for cell in nbformat.read(run_dir / step.notebook, as_version=4).cells:
            if cell.cell_type == "code" and "save_figure(" in cell.source and "import" not in cell.source:
                images = [o for o in cell.outputs if "image/png" in o.get("data", {})]
                assert len(images) == 1, f"{step.notebook}: {cell.source[:80]!r} shows {len(images)} images"


def test_executed_notebooks_read_as_reports(demo_run):
    """What a colleague (and MLflow) reads: no library log lines or warnings, no cell whose only output is a path."""
    _, _, (run_dir,) = demo_run
    for step in STEPS.values():
        for cell in nbformat.read(run_dir / step.notebook, as_version=4).cells:
            if cell.cell_type != "code":
                continue
            for output in cell.outputs:
                assert not (output.output_type == "stream" and output.name == "stderr"), \
                    f"{step.notebook}: {cell.source[:80]!r} printed to stderr: {output.text[:300]}"
                text = output.get("data", {}).get("text/plain", "") if output.output_type == "execute_result" else ""
                assert not re.fullmatch(r"(Posix|Windows)?Path\(.*\)|'/[^']*'", text.strip()), \
                    f"{step.notebook}: {cell.source[:80]!r} shows only a path: {text}"
