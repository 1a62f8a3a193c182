"""End to end on the Dask engine: `mlh run` with engine dask on a folder of Parquet files (a real local cluster of
2 workers started by the run), then `mlh predict --engine dask`; no worker restarted, answers equal to the
pandas engine's where they should be."""

import json
import re
import subprocess
import sys

import pandas as pd
import pytest

from mlhelpers.core.io import load_table
from mlhelpers.core.params import PROJECT_ROOT

MLH = [sys.executable, "-m", "mlhelpers.cli"]
pytestmark = pytest.mark.slow  # a whole run with real kernels and a cluster


@pytest.fixture(scope="module")
def dask_run(credit_parts, tmp_path_factory):
    work = tmp_path_factory.mktemp("dask_e2e")
    params = work / "credit_dask.yaml"
    # the cheapest run that still shows every point: two models (the zoo's XGBoost is the full-data model's twin),
    # two folds, a short serving measurement
    params.write_text(f"data_path: {credit_parts}\ntarget: Status\nengine: dask\ndask_workers: 2\n"
                      "dask_worker_memory: 1GB\ndask_sample_rows: 2000\nmodels: [dummy, xgboost]\ncv_folds: 2\n"
                      "serving_budget_seconds: 3\n")
    done = subprocess.run(MLH + ["run", str(params), "--runs-root", str(work / "runs"),
                                 "--set", f"mlflow_tracking_uri=sqlite:///{work / 'runs' / 'mlflow.db'}"],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=1500)
    (run_dir,) = list((work / "runs" / "credit_dask").iterdir())
    return done, run_dir, work


def test_the_run_succeeds_and_prints_the_dashboard_link(dask_run):
    done, run_dir, _ = dask_run
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "Dask local cluster: 2 workers x 1GB; dashboard http://" in done.stdout
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["engine"] == "dask" and manifest["data"]["files"] == 4


def test_every_step_reports_a_healthy_cluster_and_exact_counts(dask_run, credit_parts):
    _, run_dir, _ = dask_run
    eda = json.loads((run_dir / "explore" / "eda.json").read_text())
    frame = load_table(credit_parts)
    assert (eda["engine"], eda["sample_rows"], eda["n_rows"]) == ("dask", 2000, len(frame))
    assert eda["class_counts"] == frame["Status"].value_counts().to_dict()
    assert eda["column_stats"]["Income"]["missing"] == int(frame["Income"].isna().sum())
    for notebook in ("01_explore.ipynb", "02_baseline.ipynb", "03_export.ipynb"):
        text = (run_dir / notebook).read_text()
        assert re.search(r"workers restarted or lost\s+none", text), notebook
    board = pd.read_csv(run_dir / "baseline" / "leaderboard.csv")
    assert board["trained_on"].str.startswith("full data").sum() == 1
    metrics = json.loads((run_dir / "model" / "metrics.json").read_text())
    assert metrics["holdout"]["rows"] > 0 and metrics["test"]["roc_auc"] > 0.75


def test_predict_on_dask_writes_parts_for_every_row(dask_run, credit_parts, dask_engine):
    """On the session's shared cluster (an existing scheduler: nothing started; its workers' health is checked when
    the session ends). Every row is scored: a true/false column with gaps was once refused as text."""
    _, run_dir, work = dask_run
    done = subprocess.run(MLH + ["predict", str(run_dir / "model"), str(credit_parts), "-o", str(work / "scored"),
                                 "--engine", "dask", "--dask-scheduler", dask_engine.address],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"4454 rows: 4454 scored -> \S+, 0 rejected", done.stdout), done.stdout
    assert len(pd.read_parquet(work / "scored")) == 4454 and (work / "scored_rejects").is_dir()
