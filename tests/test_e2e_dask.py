"""End to end on the Dask engine with less memory than the table: `mlh run` with engine dask on a folder of Parquet
files whose in-memory size is several times a worker's memory limit (a real local cluster of 2 workers started by
the run), then `mlh predict --engine dask` on a cluster with the same limit; no worker restarted, paused into
trouble or killed, answers equal to the pandas engine's where they should be."""

import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from mlhelpers.core.engine import open_engine, parse_memory
from mlhelpers.core.io import load_table
from mlhelpers.core.params import PROJECT_ROOT, validate_params
from mlhelpers.core.workermemory import PLUGIN_NAME

MLH = [sys.executable, "-m", "mlhelpers.cli"]
pytestmark = pytest.mark.slow  # a whole run with real kernels and a cluster

# A worker holds ~260 MB once scikit-learn, XGBoost and pyarrow are loaded (~300 MB after training); at 500 MB (it
# pauses at 80%, is killed at 95%) the explore pass over 30 MB partitions of this table got a worker killed, and at
# 750 MB without mlhelpers.core.workermemory a worker paused for good in export (604 MB resident, 25 MB of data).
WORKER_MEMORY = "750MB"
# Few rows with long notes: the bytes make the table big, the rows (scored, hashed, trained on) stay cheap.
COPIES, PARTS, WORDS = 15, 80, 3_000  # 66,810 rows; 80 files of ~20 MB in pandas' memory; notes of 24,000 characters


@pytest.fixture(scope="module")
def wide_parts(credit_parts, tmp_path_factory):
    """credit_parts' rows 15 times over (rownames renumbered) plus ``note``: a free-text column of 24,000 characters
    per row, different in every row (7-letter words drawn from a seeded vocabulary of 64), written as 80 Parquet
    files (~400 MB on disk). Returns the folder, the base frame and the table's size in pandas' memory, summed over
    the files (~1.6 GB: more than both workers may hold together). Built with pyarrow, the text straight from
    numpy buffers: about 10 s on an idle 2-core machine."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path_factory.mktemp("wide_parts")
    base = load_table(credit_parts)
    big = pd.concat([base] * COPIES, ignore_index=True)
    big["rownames"] = np.arange(1, len(big) + 1)
    rng = np.random.default_rng(14)
    words = np.hstack([rng.integers(ord("a"), ord("z") + 1, (64, 7)), np.full((64, 1), ord(" "))])
    words = words.astype(np.uint8).view(np.uint64).ravel()  # one 8-byte word per entry: gathered in one step
    in_memory = 0
    for number, rows in enumerate(np.array_split(np.arange(len(big)), PARTS)):
        offsets = np.arange(len(rows) + 1, dtype=np.int32) * WORDS * 8
        text = words[rng.integers(0, 64, (len(rows), WORDS))]
        note = pa.Array.from_buffers(pa.string(), len(rows), [None, pa.py_buffer(offsets), pa.py_buffer(text)])
        table = pa.Table.from_pandas(big.iloc[rows], preserve_index=False).append_column("note", note)
        # no dictionary for the note (every value differs: trying one only costs time)
        pq.write_table(table, folder / f"part.{number}.parquet", use_dictionary=list(big.columns))
        # the part as the pandas engine holds it (load_table reads Parquet through this same conversion)
        in_memory += int(table.to_pandas().memory_usage(deep=True).sum())
    return folder, base, in_memory


@pytest.fixture(scope="module")
def dask_run(wide_parts, tmp_path_factory):
    folder, *_ = wide_parts
    work = tmp_path_factory.mktemp("dask_e2e")
    params = work / "credit_dask.yaml"
    # the cheapest run that still shows every point: two models (the zoo's XGBoost is the full-data model's twin),
    # two folds, no tuning stage, a short serving measurement; the note is left to explore (free text) and out of
    # the models
    params.write_text(f"data_path: {folder}\ntarget: Status\nengine: dask\ndask_workers: 2\n"
                      f"dask_worker_memory: {WORKER_MEMORY}\ndask_sample_rows: 2000\nmodels: [dummy, xgboost]\n"
                      "cv_folds: 2\ntune_seconds: 0\nserving_budget_seconds: 3\ndrop_columns: [note]\n")
    done = subprocess.run(MLH + ["run", str(params), "--runs-root", str(work / "runs"),
                                 "--set", f"mlflow_tracking_uri=sqlite:///{work / 'runs' / 'mlflow.db'}"],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=1500)
    (run_dir,) = list((work / "runs" / "credit_dask").iterdir())
    return done, run_dir, work


def test_the_run_succeeds_with_workers_smaller_than_the_table(dask_run, wide_parts):
    done, run_dir, _ = dask_run
    _, _, in_memory = wide_parts
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert f"Dask local cluster: 2 workers x {WORKER_MEMORY}; dashboard http://" in done.stdout
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["engine"] == "dask" and manifest["data"]["files"] == PARTS
    cluster = manifest["dask"]
    # the point of the test: a worker may hold at most half the table, both together less than all of it
    limit = parse_memory(cluster["worker_memory"])
    assert cluster["workers"] == 2 and 2 * limit < in_memory and limit <= in_memory / 2, (cluster, in_memory)


def test_every_step_reports_a_healthy_cluster_and_exact_counts(dask_run, wide_parts):
    _, run_dir, _ = dask_run
    _, base, _ = wide_parts
    eda = json.loads((run_dir / "explore" / "eda.json").read_text())
    assert (eda["engine"], eda["sample_rows"], eda["n_rows"]) == ("dask", 2000, COPIES * len(base))
    assert eda["class_counts"] == (COPIES * base["Status"].value_counts()).to_dict()
    for name in base.columns:  # missing counts over every row, as the pandas engine counts them
        assert eda["column_stats"][name]["missing"] == COPIES * int(base[name].isna().sum()), name
    for name in ("Home", "Marital", "Job", "Records", "approved"):  # few values: distinct counts exact
        stats = eda["column_stats"][name]
        assert (stats["n_unique"], stats["n_unique_exact"]) == (base[name].nunique(), True), name
    note = eda["column_stats"]["note"]
    assert note["missing"] == 0 and not note["n_unique_exact"] and note["n_unique"] == pytest.approx(len(base) * COPIES, rel=0.03)
    assert eda["columns"]["note"]["drop"] and not eda["columns"]["Income"]["drop"]
    for notebook in ("01_explore.ipynb", "02_baseline.ipynb", "03_export.ipynb"):
        text = (run_dir / notebook).read_text()
        health = dict(re.findall(r"(workers restarted or lost|workers paused at the end|warnings in the workers' logs|"
                                 r"first warning) +([^\\]+)", text))
        # Dask's own pause-and-resume under a busy machine is shown apart and allowed; a worker left paused is not
        assert health == {"workers restarted or lost": "none", "workers paused at the end": "0",
                          "warnings in the workers' logs": "0", "first warning": "none"}, (notebook, health)
    board = pd.read_csv(run_dir / "baseline" / "leaderboard.csv")
    assert board["trained_on"].str.startswith("full data").sum() == 1
    metrics = json.loads((run_dir / "model" / "metrics.json").read_text())
    assert metrics["holdout"]["rows"] > 0 and metrics["test"]["roc_auc"] > 0.75
    # export took its rows from the baseline's saved samples (no pass of its own over the 80 files)
    samples = json.loads((run_dir / "baseline" / "model_spec.json").read_text())["samples"]
    assert samples["rows"]["test"] == metrics["n_test"] == len(pd.read_parquet(run_dir / samples["test"]))


@pytest.fixture(scope="module")
def small_cluster():
    """A local cluster of 2 workers with the run's memory limit, owned by this module, so its health after
    `mlh predict` can be asserted."""
    params = validate_params({"engine": "dask", "dask_workers": 2, "dask_worker_memory": WORKER_MEMORY}, check_data=False)
    engine = open_engine(params)
    yield engine
    engine.close()


def test_predict_on_dask_scores_every_row_with_bounded_workers(dask_run, wide_parts, small_cluster):
    """Every row is scored (a true/false column with gaps was once refused as text), partition by partition, on
    workers that could not hold the table: none restarted, removed or killed for memory, no warning logged."""
    _, run_dir, work = dask_run
    folder, base, in_memory = wide_parts
    limits = [w["memory_limit"] for w in small_cluster.client.scheduler_info()["workers"].values()]
    assert len(limits) == 2 and sum(limits) < in_memory and max(limits) <= in_memory / 2
    done = subprocess.run(MLH + ["predict", str(run_dir / "model"), str(folder), "-o", str(work / "scored"),
                                 "--engine", "dask", "--dask-scheduler", small_cluster.address],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = COPIES * len(base)
    assert re.search(rf"{rows} rows: {rows} scored -> \S+, 0 rejected", done.stdout), done.stdout
    scored = pd.read_parquet(work / "scored")
    assert len(scored) == rows and sorted(scored["row"]) == list(range(rows)) and (work / "scored_rejects").is_dir()
    # every worker hands freed memory back after each task (without it a worker stalled here, paused at 80%)
    plugins = small_cluster.client.run(lambda dask_worker: sorted(dask_worker.plugins))
    assert all(PLUGIN_NAME in names for names in plugins.values()), plugins
    health = small_cluster.health()
    if not health["workers_unchanged"]:  # pytest.fail shows the whole message (an assertion's is cut)
        pytest.fail(f"workers changed: {small_cluster.identity} at the start, {health['workers_now']} now; {health}")
    assert not health["memory_restarts"] and not health["removed_workers"], health
    assert not health["flagged_log_lines"] and not health["paused_workers"], health
