"""Benchmark: the baseline step's time budget is a bound and its peak memory a small multiple of the table.

    flock /tmp/heavy.lock .venv/bin/python benchmarks/bench_budget.py --big /tmp/flights_3m3.parquet
    flock /tmp/heavy.lock .venv/bin/python benchmarks/bench_budget.py --small-only --repeats 3

The big table is the 3.3M-row flights table (``gen_flights.py --rows 3300000`` from the Dask prototype, written as
one Parquet file: resampled nycflights13 with noise, target "late" = arrived more than 15 minutes late; the
columns known only after departure are dropped). The small ones are the bundled demo (credit, 4,454 rows) at the
default budget and diamonds (53,940 rows) at a tight one, to show the bound holds there too.

Each case runs the explore step once (not timed), then the baseline notebook exactly as ``mlh run --steps baseline``
runs it, in a fresh process (papermill, a fresh kernel): wall time against ``time_budget_seconds`` (goal: at
most +10%), the time inside the notebook's cells, the kernel's peak resident memory against the table's in-memory
size as the step reads it (goal at 3.3M rows: at most 3x; the compact form is printed too), every model's score and
``train_rows``. Medians over the repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
MLH = [sys.executable, "-m", "mlhelpers.cli"]
FLIGHTS_DROP = ["dep_time", "dep_delay", "arr_time", "arr_delay", "air_time", "rownames"]


def cases(args) -> list[dict]:
    found = []
    if args.big:
        found.append({"name": "flights 3.3M", "params": {"data_path": str(Path(args.big).resolve()), "target": "late",
                                                        "drop_columns": FLIGHTS_DROP,
                                                        "time_budget_seconds": args.budget}})
    if not args.big_only:
        demo = yaml.safe_load((ROOT / "params" / "demo.yaml").read_text())
        diamonds = yaml.safe_load((ROOT / "params" / "diamonds.yaml").read_text())
        found.append({"name": "credit (default budget)", "params": demo | {"time_budget_seconds": 600}})
        found.append({"name": f"diamonds ({args.small_budget:g} s budget)",
                      "params": diamonds | {"data_path": str(ROOT / diamonds["data_path"]),
                                            "time_budget_seconds": args.small_budget}})
    return found


def table_mb(params: dict) -> tuple[float, float, int, int]:
    """The table's size in memory as the step reads it (``core.io.load_table``: pandas' own dtypes) and in its
    compact form (``core.tables.load_compact``: categories, small integers), measured in a child process."""
    code = ("import sys; from mlhelpers.core.io import load_table; from mlhelpers.core.tables import load_compact; "
            "f = load_table(sys.argv[1]); read = f.memory_usage(deep=True).sum() / 2**20; del f; "
            "f = load_compact(sys.argv[1])[0]; print(read, f.memory_usage(deep=True).sum() / 2**20, len(f), f.shape[1])")
    out = subprocess.run([sys.executable, "-c", code, params["data_path"]], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.split()
    return float(out[0]), float(out[1]), int(out[2]), int(out[3])


def mlh(params_file: Path, work: Path, *extra: str) -> tuple[float, Path]:
    """``mlh run`` in a fresh process; its wall seconds and the run folder it made."""
    command = MLH + ["run", str(params_file), "--runs-root", str(work / "runs"),
                     "--set", f"mlflow_tracking_uri=sqlite:///{work}/mlflow.db", *extra]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=os.environ | {"PYTHONWARNINGS": "ignore"})
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    run_dir = Path([line for line in done.stdout.splitlines() if "run folder:" in line or "succeeded" in line][-1]
                   .split(": ")[-1].strip())
    return seconds, run_dir


def baseline_once(params_file: Path, explored: Path, work: Path) -> dict:
    """One baseline step in a fresh process tree: wall time, cell time, peak RSS of the largest process (the
    kernel), and what the step wrote."""
    code = ("import json, resource, subprocess, sys, time; t = time.perf_counter(); "
            "done = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
            "print(json.dumps({'rc': done.returncode, 'seconds': time.perf_counter() - t, 'out': done.stdout[-3000:], "
            "'err': done.stderr[-3000:], 'max_rss_mb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))")
    command = MLH + ["run", str(params_file), "--steps", "baseline", "--from", str(explored),
                     "--runs-root", str(work / "runs"), "--set", f"mlflow_tracking_uri=sqlite:///{work}/mlflow.db"]
    done = json.loads(subprocess.run([sys.executable, "-c", code, *command], capture_output=True, text=True,
                                     cwd=ROOT, check=True).stdout)
    if done["rc"] != 0:
        raise RuntimeError(f"baseline failed:\n{done['out']}\n{done['err']}")
    run_dir = Path([line for line in done["out"].splitlines() if "succeeded" in line][-1].split(": ")[-1].strip())
    notebook = json.loads((run_dir / "02_baseline.ipynb").read_text())
    cells = sum(cell["metadata"].get("papermill", {}).get("duration") or 0 for cell in notebook["cells"])
    board = __import__("pandas").read_csv(run_dir / "baseline" / "leaderboard.csv")
    cv = json.loads((run_dir / "baseline" / "cv_results.json").read_text())
    metric = cv["primary_metric"]
    return {"seconds": done["seconds"], "cell_seconds": cells, "max_rss_mb": done["max_rss_mb"],
            "models": {row["model"]: {"score": row[f"{metric}_mean"], "train_rows": int(row["train_rows"])}
                       for _, row in board.iterrows()},
            "selected": cv["selected"], "notes": cv.get("budget_notes", {}), "metric": metric,
            "training_rows": cv.get("training_rows")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", default=None, help="the 3.3M-row flights Parquet file (gen_flights.py)")
    parser.add_argument("--budget", type=float, default=600, help="time_budget_seconds for the big table")
    parser.add_argument("--small-budget", type=float, default=60, help="time_budget_seconds for diamonds")
    parser.add_argument("--repeats", type=int, default=1, help="baseline runs per case; medians are printed")
    parser.add_argument("--big-only", action="store_true")
    parser.add_argument("--small-only", action="store_true")
    args = parser.parse_args()
    if args.small_only:
        args.big = None
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench_budget_") as scratch:
        work = Path(scratch)
        for case in cases(args):
            params_file = work / "params.yaml"
            params_file.write_text(yaml.safe_dump(case["params"]))
            read_mb, size_mb, n_rows, n_cols = table_mb(case["params"])
            explore_seconds, explored = mlh(params_file, work, "--steps", "explore")
            runs = [baseline_once(params_file, explored, work) for _ in range(args.repeats)]
            budget = case["params"]["time_budget_seconds"]
            median = lambda key: statistics.median(run[key] for run in runs)  # noqa: E731
            wall, peak = median("seconds"), median("max_rss_mb")
            print(f"\n== {case['name']}: {n_rows:,} x {n_cols}, {read_mb:,.0f} MB as read, {size_mb:,.0f} MB compact; "
                  f"explore {explore_seconds:.0f} s "
                  f"(not timed); {args.repeats} baseline run(s), medians")
            print(f"wall {wall:.1f} s (cells {median('cell_seconds'):.1f} s) for a {budget:g} s budget: "
                  f"{wall / budget:.2f}x the budget (goal <= 1.10); runs {[round(r['seconds'], 1) for r in runs]}")
            print(f"peak RSS {peak:,.0f} MB = {peak / read_mb:.2f}x the table as read (goal at 3.3M rows <= 3x), "
                  f"{peak / size_mb:.2f}x its compact form; "
                  f"runs {[round(r['max_rss_mb']) for r in runs]}")
            last = runs[-1]
            print(f"selected {last['selected']}; {len(last['models'])} models scored on {last['training_rows']:,} "
                  f"training rows ({last['metric']}, train_rows):")
            for model, info in last["models"].items():
                print(f"  {model:32s} {info['score']:.4f}  {info['train_rows']:>10,}")
            for part, note in last["notes"].items():
                print(f"  {part}: {note}")
            print(f"load average now: {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
