"""Benchmark: the workspace's exported model against a 60-second FLAML AutoML run, same split, same columns.

    .venv/bin/python benchmarks/bench_quality.py                                # every table, about an hour
    .venv/bin/python benchmarks/bench_quality.py --tables titanic,attrition --flaml-seconds 30
    .venv/bin/python benchmarks/bench_quality.py --tables ames --set time_budget_seconds=60

For each real table (``quality_tables.py``: housing, HR attrition, hotel rates, two loan tables, films,
police stops, telecom churn, Titanic, pet licences, HPC jobs (4 classes), diamonds; offline, no downloads):

* **ours**: ``mlh run`` (explore -> baseline -> export) on a params file the benchmark writes (MLflow into
  a throw-away SQLite store), then ``mlh predict`` of the exported model on the test rows of
  ``baseline/split.json``;
* **FLAML**: ``AutoML.fit`` with ``time_budget`` seconds on exactly the training rows of that split and the
  columns the baseline kept (``baseline/model_spec.json`` ``features``), the same metric (mapped to FLAML's
  name, or a custom metric), a fixed seed; it predicts the same test rows.

Both test scores are computed here, from the two sets of predictions, by one function (``score``: the
workspace's metric definitions, restated). The workspace is used only through its command line and its
run-folder files, never imported. FLAML pins xgboost < 3, so it runs in its own virtual environment,
created on first use in ``benchmarks/.flaml-venv/`` (git-ignored); tables are cached as Parquet in
``benchmarks/.quality-cache/``. Prints one line per table and writes the figures to ``<out>/results.json``.
Goal (issue 11): ours >= FLAML on every table, with the baseline step no slower than FLAML. Like with like: the
workspace gets ``time_budget_seconds`` = FLAML's budget less ``STARTUP_SECONDS`` (a kernel's start and imports,
which the step's clock does not see, and the figures written after it), unless ``--set time_budget_seconds=...``
says otherwise; the step's wall-clock seconds (kernel start included) are compared with FLAML's wall-clock
seconds (its process start, imports and prediction included). ``results.json`` keeps the baseline notebook's
slowest cells (papermill's timings): where the step's seconds went.
Run it under the shared lock, a few tables at a time (``--tables``; ``--resume`` keeps finished tables).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FLAML_VENV = HERE / ".flaml-venv"
CACHE = HERE / ".quality-cache"
# FLAML with its AutoML extras (lightgbm, xgboost < 3); versions pinned so reruns compare like with like.
FLAML_REQUIREMENTS = ["flaml[automl]==2.8.0", "lightgbm==4.7.0", "xgboost==2.1.4", "scikit-learn==1.9.1",
                      "pandas==3.1.1", "pyarrow==26.0.1"]
SEED = 42
# seconds of the baseline step that its time budget does not bound: the kernel's start and imports before the
# clock starts (8-12 s on 2 busy cores), the figures after the last budgeted part
STARTUP_SECONDS = 12
LOWER_IS_BETTER = {"rmse", "mae", "log_loss"}
REGRESSION_METRICS = {"rmse", "mae", "r2"}
BOOTSTRAP_RESAMPLES = 200  # paired resamples of the test rows for the difference's interval


# ---------------------------------------------------------------------------------------------
# One metric code for both sides (the workspace's definitions: evaluate.score, restated)
# ---------------------------------------------------------------------------------------------

def score(metric: str, y: np.ndarray, prediction: np.ndarray) -> float:
    """A metric of predictions: class probabilities ``(n, k)`` with ``y`` as class indices, or values.

    Binary metrics take class index 1 as positive; multiclass ROC AUC / average precision are one-vs-rest
    macro averages over the classes present in ``y``; labels are argmax of the probabilities.
    """
    from sklearn import metrics

    y = np.asarray(y)
    if metric == "rmse":
        return float(np.sqrt(metrics.mean_squared_error(y, prediction)))
    if metric == "mae":
        return float(metrics.mean_absolute_error(y, prediction))
    if metric == "r2":
        return float(metrics.r2_score(y, prediction))
    proba = np.asarray(prediction, dtype=float)
    proba = proba / proba.sum(axis=1, keepdims=True)
    k = proba.shape[1]
    predicted = proba.argmax(axis=1)
    if metric == "log_loss":
        return float(metrics.log_loss(y, proba, labels=np.arange(k)))
    if metric == "accuracy":
        return float(metrics.accuracy_score(y, predicted))
    if metric == "balanced_accuracy":
        return float(metrics.balanced_accuracy_score(y, predicted))
    if metric == "f1":
        if k == 2:
            return float(metrics.f1_score(y, predicted, zero_division=0))
        return float(metrics.f1_score(y, predicted, average="macro", labels=np.unique(y), zero_division=0))
    if metric in ("roc_auc", "average_precision"):
        curve = metrics.roc_auc_score if metric == "roc_auc" else metrics.average_precision_score
        if k == 2:
            return float(curve(y, proba[:, 1]))
        values = [curve(y == c, proba[:, c]) for c in np.unique(y) if 0 < (y == c).sum() < len(y)]
        return float(np.mean(values))
    raise ValueError(f"unknown metric {metric!r}")


def better_share(metric: str, ours: float, theirs: float) -> float:
    """Relative difference, positive when ours is better: (ours - FLAML) / |FLAML|, sign-flipped for errors."""
    diff = (theirs - ours) if metric in LOWER_IS_BETTER else (ours - theirs)
    return diff / abs(theirs) if theirs else float("nan")


def difference_interval(metric: str, y: np.ndarray, ours: np.ndarray, theirs: np.ndarray,
                        resamples: int = BOOTSTRAP_RESAMPLES) -> list[float]:
    """The 95% interval of ``better_share`` over paired bootstrap resamples of the test rows: how large a gap the
    choice of test rows alone makes. FLAML's own score moved 0.9816-0.9836 average precision on lending_club and
    13.9-15.8 RMSE on hotel_rates across runs; a -0.2% verdict inside an interval of +-0.3% is a draw of the rows,
    not a better model. Reported next to the verdict, which stays the plain comparison."""
    rng = np.random.default_rng(SEED)
    values = []
    for _ in range(resamples):
        rows = rng.integers(0, len(y), len(y))
        if len(np.unique(y[rows])) < 2 and metric not in REGRESSION_METRICS:
            continue
        values.append(better_share(metric, score(metric, y[rows], ours[rows]), score(metric, y[rows], theirs[rows])))
    return [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))]


# ---------------------------------------------------------------------------------------------
# FLAML, in its own virtual environment (this same file, run with that environment's python)
# ---------------------------------------------------------------------------------------------

def ensure_flaml_venv() -> Path:
    """The FLAML environment's python, creating the environment on first use (a minute or two)."""
    python = FLAML_VENV / "bin" / "python"
    stamp = FLAML_VENV / "requirements.txt"
    wanted = "\n".join(FLAML_REQUIREMENTS) + "\n"
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    print(f"creating the FLAML environment in {FLAML_VENV} ...", file=sys.stderr, flush=True)
    shutil.rmtree(FLAML_VENV, ignore_errors=True)
    base = getattr(sys, "_base_executable", None) or shutil.which("python3") or sys.executable
    subprocess.run([base, "-m", "venv", str(FLAML_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    *FLAML_REQUIREMENTS], check=True)
    stamp.write_text(wanted)
    return python


def _flaml_metric(metric: str, n_classes: int | None):
    """FLAML's name for our metric, or a custom metric function with our definition."""
    binary = n_classes == 2
    names = {"rmse": "rmse", "mae": "mae", "r2": "r2", "log_loss": "log_loss", "accuracy": "accuracy",
             "roc_auc": "roc_auc" if binary else "roc_auc_ovr", "f1": "f1" if binary else "macro_f1"}
    if metric in names:
        return names[metric]
    if metric == "average_precision" and binary:
        return "ap"

    def custom(X_val, y_val, estimator, labels, X_train, y_train, *args, **kwargs):  # FLAML's signature
        proba = estimator.predict_proba(X_val)
        classes = getattr(estimator, "classes_", None)
        classes = list(range(proba.shape[1])) if classes is None else list(classes)
        position = {c: i for i, c in enumerate(classes)}
        y_index = np.array([position[v] for v in np.asarray(y_val).tolist()])
        value = score(metric, y_index, proba)
        return 1 - value, {metric: value}  # FLAML minimizes; every custom metric here is higher-is-better

    return custom


def flaml_child(job_file: str) -> None:
    """Fit FLAML on the job's training rows, predict its test rows (runs in the FLAML environment)."""
    import resource
    import warnings

    import flaml
    from flaml import AutoML

    job = json.loads(Path(job_file).read_text())
    work = Path(job["work_dir"])
    train = pd.read_parquet(work / "flaml_train.parquet")
    test = pd.read_parquet(work / "flaml_test.parquet")
    target = job["target"]
    X, y = train.drop(columns=[target]), train[target]
    fit_options = {}
    if job["task"] == "classification":
        y = y.astype(str)
        if job["balanced_weights"]:  # as the workspace's class_weight="balanced": n / (k * class count)
            counts = y.value_counts()
            fit_options["sample_weight"] = (len(y) / (len(counts) * y.map(counts))).to_numpy()
    automl = AutoML()
    load = os.getloadavg()[0]
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        automl.fit(X, y, task=job["task"], metric=_flaml_metric(job["metric"], job["n_classes"]),
                   time_budget=job["time_budget"], seed=job["seed"], n_jobs=-1, verbose=0,
                   log_file_name=str(work / "flaml.log"), log_type="all", **fit_options)
        fit_seconds = time.perf_counter() - started
        if job["task"] == "classification":
            proba = automl.predict_proba(test[X.columns])
            columns = [f"proba_{c}" for c in automl.classes_]
            predictions = pd.DataFrame(proba, columns=columns)
        else:
            predictions = pd.DataFrame({"prediction": automl.predict(test[X.columns])})
    predictions.to_parquet(work / "flaml_predictions.parquet", index=False)
    log = work / "flaml.log"
    trials = sum(1 for _ in log.open()) if log.exists() else None

    def plain(value):
        return value.item() if hasattr(value, "item") else value

    result = {
        "flaml_version": flaml.__version__, "fit_seconds": fit_seconds, "best_estimator": automl.best_estimator,
        "best_config": {k: plain(v) for k, v in (automl.best_config or {}).items()},
        "best_loss": plain(automl.best_loss), "time_to_find_best": plain(automl.time_to_find_best_model),
        "best_config_train_time": plain(automl.best_config_train_time), "trials": trials,
        "best_loss_per_estimator": {k: plain(v) for k, v in automl.best_loss_per_estimator.items()},
        "cpu_seconds": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]),  # all threads, imports included
        "load_average": (load + os.getloadavg()[0]) / 2,
        "metric_passed": job["metric"] if callable(_flaml_metric(job["metric"], job["n_classes"]))
        else _flaml_metric(job["metric"], job["n_classes"]),
    }
    print("RESULT " + json.dumps(result, default=str))


def run_flaml(python: Path, work: Path, frame: pd.DataFrame, run: dict, seconds: int) -> dict:
    """FLAML on the run's training rows and kept columns; its test predictions and what it chose."""
    spec, split = run["spec"], run["split"]
    columns = run["feature_columns"]
    data = frame[columns + [spec["target"]]].copy()
    for name in spec["features"].get("datetime", []):  # FLAML expands datetime64 columns into parts
        data[name] = pd.to_datetime(data[name], errors="coerce", utc=True).dt.tz_localize(None)
    data.loc[split["train_index"]].reset_index(drop=True).to_parquet(work / "flaml_train.parquet", index=False)
    data.loc[split["test_index"]].reset_index(drop=True).to_parquet(work / "flaml_test.parquet", index=False)
    job = {"work_dir": str(work), "target": spec["target"], "task": spec["task"], "metric": spec["primary_metric"],
           "n_classes": len(spec["classes"]) if spec.get("classes") else None, "time_budget": seconds, "seed": SEED,
           # balanced accuracy and F1 judge hard labels: give FLAML the class weights the workspace uses there
           "balanced_weights": spec["primary_metric"] in ("balanced_accuracy", "f1")}
    (work / "flaml_job.json").write_text(json.dumps(job))
    started = time.perf_counter()
    done = subprocess.run([str(python), __file__, "--flaml-child", str(work / "flaml_job.json")],
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"FLAML failed:\n{done.stderr[-3000:]}")
    result = json.loads(lines[-1][len("RESULT "):])
    result["wall_seconds"] = wall
    result["sample_weight"] = "balanced" if job["balanced_weights"] else None
    result["predictions"] = pd.read_parquet(work / "flaml_predictions.parquet")
    return result


# ---------------------------------------------------------------------------------------------
# The workspace, through its command line and run-folder files only
# ---------------------------------------------------------------------------------------------

def _mlh() -> str:
    beside = Path(sys.executable).parent / "mlh"
    return str(beside if beside.exists() else ROOT / ".venv" / "bin" / "mlh")


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def run_ours(name: str, table, data_path: Path, work: Path, overrides: list[str], budget_seconds: float) -> dict:
    """``mlh run`` on the table; the run folder's artifacts, the step timings and the CPU it took."""
    import resource

    import yaml

    params = {"data_path": str(data_path), "target": table.target, "task": table.task, "seed": SEED,
              "drop_columns": list(table.drop), "mlflow_tracking_uri": f"sqlite:///{work / 'mlflow.db'}",
              "mlflow_experiment": "bench_quality"}
    if not any(pair.startswith("time_budget_seconds=") for pair in overrides):
        overrides = [f"time_budget_seconds={budget_seconds}", *overrides]
    params_file = work / f"{name}.yaml"
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    command = [_mlh(), "run", str(params_file), "--runs-root", str(work / "runs")]
    for pair in overrides:
        command += ["--set", pair]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    folder = next((line.split(":", 1)[1].strip() for line in done.stdout.splitlines()
                   if line.startswith("run folder:")), None)
    if done.returncode != 0 or folder is None:
        raise RuntimeError(f"mlh run failed ({done.returncode}):\n{done.stdout[-1500:]}\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)  # the run and its kernels
    return read_run(Path(folder), table) | {"wall_seconds": wall, "cpu_seconds": cpu,
                                            "load_average": (load + os.getloadavg()[0]) / 2}


def cell_seconds(notebook: Path, top: int = 8) -> dict:
    """Papermill's timing of a run notebook: its whole duration (kernel start included) and its slowest cells."""
    if not notebook.exists():
        return {}
    book = json.loads(notebook.read_text())
    cells = [(float(c["metadata"].get("papermill", {}).get("duration") or 0.0), "".join(c["source"]).strip())
             for c in book["cells"] if c["cell_type"] == "code"]
    total = book["metadata"].get("papermill", {}).get("duration")
    slowest = sorted(cells, key=lambda cell: -cell[0])[:top]
    shown = {}  # what the tuning stage did and what the time budget shaped (the race, caps, skipped parts)
    for cell in book["cells"]:
        source = "".join(cell["source"]).strip()
        if cell["cell_type"] == "code" and source in ("tuned.summary()", "tuned.table", "zoo.budget_summary()"):
            shown[source] = next(("".join(o["data"]["text/plain"]) for o in cell.get("outputs", [])
                                  if "text/plain" in o.get("data", {})), None)
    return {"papermill_seconds": total, "cells_seconds": round(sum(d for d, _ in cells), 2),
            "slowest": [[round(d, 2), source.splitlines()[0][:80] if source else ""] for d, source in slowest],
            "outputs": shown}


def read_run(run_dir: Path, table) -> dict:
    """The artifacts of a finished run folder that the benchmark needs."""
    eda = _read_json(run_dir / "explore" / "eda.json")
    spec = _read_json(run_dir / "baseline" / "model_spec.json")
    columns = [c for role_columns in spec["features"].values() for c in role_columns]
    kept_by_eda = [c for c, info in eda["columns"].items()
                   if not info["drop"] and c != table.target and c not in table.drop]
    return {
        "run_dir": str(run_dir), "manifest": _read_json(run_dir / "manifest.json"), "eda": eda, "spec": spec,
        "split": _read_json(run_dir / "baseline" / "split.json"),
        "metrics": _read_json(run_dir / "model" / "metrics.json"),
        "schema": _read_json(run_dir / "model" / "input_schema.json"),
        "leaderboard": pd.read_csv(run_dir / "baseline" / "leaderboard.csv"),
        "feature_columns": columns,
        "eda_kept_not_used": sorted(set(kept_by_eda) - set(columns)),
        "baseline_cells": cell_seconds(run_dir / "02_baseline.ipynb"),
    }


def predict_ours(run: dict, frame: pd.DataFrame, work: Path) -> tuple[pd.DataFrame, int]:
    """``mlh predict`` of the exported model on the test rows; the predictions in test-row order, rejects."""
    test = frame.loc[run["split"]["test_index"], list(run["schema"]["columns"])].reset_index(drop=True)
    test.to_parquet(work / "test.parquet", index=False)
    output = work / "ours_predictions.csv"
    done = subprocess.run([_mlh(), "predict", str(Path(run["run_dir"]) / "model"), str(work / "test.parquet"),
                           "-o", str(output), "--no-progress"], capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"mlh predict failed:\n{done.stderr[-3000:]}")
    predictions = pd.read_csv(output).set_index("row").reindex(range(len(test)))  # rejected rows: NaN
    rejects = int(predictions["prediction"].isna().sum()) if len(predictions) else 0
    return predictions, rejects


# ---------------------------------------------------------------------------------------------
# One table, start to finish
# ---------------------------------------------------------------------------------------------

def _as_matrix(predictions: pd.DataFrame, classes: list | None) -> np.ndarray:
    if classes is None:
        return predictions["prediction"].to_numpy(dtype=float)
    return predictions[[f"proba_{c}" for c in classes]].to_numpy(dtype=float)


def bench_table(name: str, flaml_python: Path, out: Path, flaml_seconds: int, overrides: list[str],
                reuse: dict | None = None) -> dict:
    """One table: ``mlh run`` (or the run of an earlier result, ``reuse``), FLAML, both test scores."""
    from quality_tables import TABLES, materialize

    table = TABLES[name]
    work = out / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    data_path = materialize(name, CACHE)
    frame = pd.read_parquet(data_path)  # row labels 0..n-1, as the workspace loads the file
    if reuse is None:
        print(f"[{name}] mlh run ...", file=sys.stderr, flush=True)
        run = run_ours(name, table, data_path, work, overrides, max(flaml_seconds - STARTUP_SECONDS, 1))
    else:
        seconds = reuse["ours"]["seconds"]
        run = read_run(Path(reuse["ours"]["run_dir"]), table) | {
            "wall_seconds": seconds["run_wall"], "cpu_seconds": seconds.get("run_cpu"),
            "load_average": seconds.get("load_average")}
    spec, metric = run["spec"], run["spec"]["primary_metric"]
    classes = [str(c) for c in spec["classes"]] if spec.get("classes") else None
    ours_pred, rejects = predict_ours(run, frame, work)
    print(f"[{name}] FLAML {flaml_seconds} s ...", file=sys.stderr, flush=True)
    flaml = run_flaml(flaml_python, work, frame, run, flaml_seconds)

    y_raw = frame.loc[run["split"]["test_index"], table.target].reset_index(drop=True)
    y = (y_raw.astype(str).map({c: i for i, c in enumerate(classes)}).to_numpy() if classes
         else y_raw.to_numpy(dtype=float))
    accepted = ours_pred["prediction"].notna().to_numpy()
    ours_matrix = _as_matrix(ours_pred, classes)[accepted]
    flaml_matrix = _as_matrix(flaml["predictions"], classes)[accepted]
    ours_score, flaml_score = score(metric, y[accepted], ours_matrix), score(metric, y[accepted], flaml_matrix)
    steps = run["manifest"]["steps"]
    selected = spec.get("leaderboard_row", spec["model"])  # "xgboost (tuned)" when the tuning stage's row won
    board = run["leaderboard"].set_index("model")
    dropped = {c: {"role": info["role"], "reason": info.get("reason")} for c, info in run["eda"]["columns"].items()
               if info["drop"] and c != table.target}
    return {
        "table": name, "description": table.description, "source": table.source, "target": table.target,
        "task": spec["task"], "metric": metric, "classes": classes,
        "n_rows": int(run["eda"].get("n_rows", len(frame))), "n_columns_raw": int(frame.shape[1] - 1),
        "n_features": len(run["feature_columns"]), "features": spec["features"],
        "n_train": len(run["split"]["train_index"]), "n_test": len(run["split"]["test_index"]),
        "split_strategy": run["split"].get("strategy"),
        "ours": {"model": selected, "test": ours_score, "test_metrics_json": run["metrics"]["test"][metric],
                 "cv_mean": spec["cv"][metric]["mean"], "cv_std": spec["cv"][metric]["std"],
                 "estimator_params": spec.get("estimator_params"), "selection_reason": spec.get("selection_reason"),
                 "leaderboard": {m: float(board.loc[m, f"{metric}_mean"]) for m in board.index},
                 "folds": {m: int(board.loc[m, "folds"]) for m in board.index} if "folds" in board else None,
                 "train_rows": {m: int(board.loc[m, "train_rows"]) for m in board.index},
                 "fit_seconds_per_fold": {m: float(board.loc[m, "fit_seconds"]) for m in board.index},
                 "rejected_test_rows": rejects,
                 "seconds": {"run_wall": run["wall_seconds"], "run": run["manifest"].get("seconds"),
                             "run_cpu": run["cpu_seconds"], "load_average": run["load_average"],
                             **{step: info.get("seconds") for step, info in steps.items()}},
                 "baseline_cells": run["baseline_cells"],
                 "time_budget_seconds": run["manifest"]["params"].get("time_budget_seconds"),
                 "tune_seconds": run["manifest"]["params"].get("tune_seconds"),
                 "dropped_columns": dropped, "leakage_suspects": run["eda"].get("leakage_suspects"),
                 "review": run["eda"].get("review"), "eda_kept_not_used": run["eda_kept_not_used"],
                 "run_dir": run["run_dir"]},
        "flaml": {k: v for k, v in flaml.items() if k != "predictions"} | {"test": flaml_score},
        "rel_diff": better_share(metric, ours_score, flaml_score),
        "rel_diff_interval": difference_interval(metric, y[accepted], ours_matrix, flaml_matrix),
        "ours_ge_flaml": bool(better_share(metric, ours_score, flaml_score) >= 0),
        # like with like: the step's wall-clock (kernel start included) against FLAML's process wall-clock
        "baseline_le_flaml_seconds": bool(steps["baseline"]["seconds"] <= flaml["wall_seconds"]),
    }


def _fmt(value: float) -> str:
    return f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"


def print_table(results: list[dict]) -> str:
    rows = []
    for r in results:
        if "error" in r:
            rows.append({"table": r["table"], "verdict": f"FAILED: {r['error'].splitlines()[0][:60]}"})
            continue
        ours, flaml = r["ours"], r["flaml"]
        rows.append({
            "table": r["table"], "rows x cols": f"{r['n_rows']:,} x {r['n_features']}", "task": r["task"][:5],
            "metric": r["metric"], "ours (model)": f"{_fmt(ours['test'])} ({ours['model']})",
            "FLAML (learner)": f"{_fmt(flaml['test'])} ({flaml['best_estimator']})",
            "rel diff": f"{100 * r['rel_diff']:+.2f}%",
            "95% of test resamples": ("{:+.2f}% to {:+.2f}%".format(*(100 * v for v in r["rel_diff_interval"]))
                                      if r.get("rel_diff_interval") else ""),
            "baseline s": f"{ours['seconds']['baseline']:.0f}",
            "FLAML s (fit/wall)": f"{flaml['fit_seconds']:.0f}/{flaml['wall_seconds']:.0f}",
            "FLAML trials": flaml.get("trials"),
            "run s": f"{ours['seconds']['run']:.0f}",
            "verdict": ("ours >= FLAML" if r["ours_ge_flaml"] else "FLAML better")
            + ("" if r["baseline_le_flaml_seconds"] else ", slower"),
        })
    text = pd.DataFrame(rows).fillna("").to_string(index=False)
    print(text)
    done = [r for r in results if "error" not in r]
    if done:
        wins = sum(r["ours_ge_flaml"] for r in done)
        fast = sum(r["baseline_le_flaml_seconds"] for r in done)
        line = (f"\nours >= FLAML on {wins} of {len(done)} tables; baseline step within FLAML's time on {fast} of "
                f"{len(done)}; median relative difference {100 * np.median([r['rel_diff'] for r in done]):+.2f}% "
                "(positive: ours better; error metrics sign-flipped)")
        print(line)
        text += "\n" + line
    return text


def main() -> None:
    from quality_tables import TABLES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default=",".join(TABLES), help=f"comma-separated, from: {', '.join(TABLES)}")
    parser.add_argument("--flaml-seconds", type=int, default=60, help="FLAML's time_budget per table")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="passed to every `mlh run`; time_budget_seconds defaults to --flaml-seconds less "
                             f"{STARTUP_SECONDS} s (the step's start-up and closing figures)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_quality"), help="run folders and results.json")
    parser.add_argument("--resume", action="store_true", help="keep the tables <out>/results.json already holds")
    parser.add_argument("--reuse", type=Path, default=None, metavar="DIR",
                        help="rerun only FLAML (and the scoring) on the runs of DIR/results.json, e.g. with "
                             "another --flaml-seconds")
    args = parser.parse_args()
    names = [n.strip() for n in args.tables.split(",") if n.strip()]
    unknown = sorted(set(names) - set(TABLES))
    if unknown:
        parser.error(f"unknown tables {unknown}; choose from {', '.join(TABLES)}")
    flaml_python = ensure_flaml_venv()
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    if args.resume and (args.out / "results.json").exists():
        kept = json.loads((args.out / "results.json").read_text())["results"]
        results = [r for r in kept if r["table"] in names and "error" not in r]
    done_before = {r["table"] for r in results}
    reused = {}
    if args.reuse:
        if args.reuse.resolve() == args.out.resolve():
            parser.error("--reuse needs another --out: the runs it reuses live under its folder")
        reused = {r["table"]: r for r in json.loads((args.reuse / "results.json").read_text())["results"]
                  if "error" not in r}
        names = [n for n in names if n in reused]
    for name in names:
        if name in done_before:
            continue
        started = time.perf_counter()
        try:
            results.append(bench_table(name, flaml_python, args.out, args.flaml_seconds, args.overrides,
                                       reuse=reused.get(name)))
        except Exception as exc:  # one failing table must not hide the others
            results.append({"table": name, "error": f"{type(exc).__name__}: {exc}"})
        print(f"[{name}] done in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        (args.out / "results.json").write_text(json.dumps(
            {"flaml_seconds": args.flaml_seconds, "overrides": args.overrides, "cpu_count": os.cpu_count(),
             "reused_runs_from": str(args.reuse) if args.reuse else None,
             "results": results}, indent=1, default=str))
    print(f"\n{len(names)} tables; FLAML time_budget {args.flaml_seconds} s; workspace overrides "
          f"{args.overrides or 'none'}\n")
    results.sort(key=lambda r: names.index(r["table"]))
    text = print_table(results)
    (args.out / "results.txt").write_text(text + "\n")
    print(f"\nfigures: {args.out / 'results.json'}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--flaml-child":
        flaml_child(sys.argv[2])
    else:
        main()
