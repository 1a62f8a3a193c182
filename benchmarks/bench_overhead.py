"""Benchmark: what each step costs before its first real cell (papermill + kernel start + imports).

    .venv/bin/python benchmarks/bench_overhead.py             # 3 repeats, about a minute
    .venv/bin/python benchmarks/bench_overhead.py --repeats 5

Each step notebook is cut after its imports cell (parameters, validation, imports) and run exactly as
`mlh run` runs a step (`mlhelpers.execution.execute_notebook`: papermill, the project's kernel on private
sockets) on the demo data, in a fresh process per run so no import is warm. Printed per step, medians:
  * papermill + kernel: the step's wall time minus the time inside its cells (reading and translating the
    notebook, starting and stopping the kernel, writing the executed copy);
  * parameters + validation + imports: the time inside those cells;
  * total: the step's overhead, goal < 3 s; and the CPU seconds it used (all processes), which other jobs
    sharing the machine inflate less than wall time.
Reference in the same run: a bare `python -c "import pandas, sklearn"` (the imports no step can avoid).
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
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STEPS = ("explore", "baseline", "export")


def truncated(source: Path, target: Path) -> None:
    """``source`` cut after its imports cell: the first code cell after the validation that starts with imports
    (explore's also starts its profile process there: part of its start-up)."""
    notebook = json.loads(source.read_text())
    code = [i for i, cell in enumerate(notebook["cells"]) if cell["cell_type"] == "code"]
    for index in code[2:]:
        lines = [line.strip() for line in "".join(notebook["cells"][index]["source"]).splitlines()
                 if line.strip() and not line.strip().startswith("#")]
        if lines and lines[0].startswith(("from ", "import ")):
            notebook["cells"] = notebook["cells"][: index + 1]
            target.write_text(json.dumps(notebook))
            return
    raise RuntimeError(f"{source.name}: no imports cell after the validation cell")


def child(step: str, run_dir: Path) -> dict:
    from mlhelpers.core.artifacts import STEPS as REGISTRY
    from mlhelpers.core.params import validate_params
    from mlhelpers.execution import ensure_kernel, execute_notebook
    from mlhelpers.pipeline import step_parameters

    params = validate_params({"data_path": "data/credit.csv", "target": "Status"})
    ensure_kernel()
    source = run_dir / f"cut_{REGISTRY[step].notebook}"
    truncated(ROOT / "notebooks" / REGISTRY[step].notebook, source)
    out = run_dir / REGISTRY[step].notebook
    start = time.perf_counter()
    execute_notebook(source, out, step_parameters(params, run_dir))
    seconds = time.perf_counter() - start
    cells = [c["metadata"]["papermill"] for c in json.loads(out.read_text())["cells"] if c["cell_type"] == "code"]
    inside = sum(c["duration"] for c in cells)
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return {"seconds": seconds, "papermill_kernel": seconds - inside, "cells": inside,
            "cpu": sum(u.ru_utime + u.ru_stime for u in usage)}


def measure_reference() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import pandas, sklearn"], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("STEP", "RUN_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]))))
        return
    results: dict[str, list[dict]] = {step: [] for step in STEPS}
    reference = []
    for _ in range(args.repeats):
        reference.append(measure_reference())
        with tempfile.TemporaryDirectory(prefix="mlh-bench-overhead-") as run_dir:
            for step in STEPS:  # in order: baseline and export check what explore recorded
                done = subprocess.run([sys.executable, __file__, "--child", step, run_dir],
                                      capture_output=True, text=True, cwd=ROOT)
                if done.returncode:
                    raise RuntimeError(f"{step} failed:\n{done.stderr[-3000:]}")
                results[step].append(json.loads(done.stdout.strip().splitlines()[-1]))
                r = results[step][-1]
                print(f"  {step:<8} {r['seconds']:5.2f} s (papermill + kernel {r['papermill_kernel']:5.2f} s, "
                      f"cells {r['cells']:5.2f} s), {r['cpu']:5.2f} CPU s", flush=True)
    med = lambda rows, key: statistics.median(r[key] for r in rows)  # noqa: E731
    print(f"\nStep overhead before the first real cell, median of {args.repeats} "
          f"({datetime.now():%Y-%m-%d %H:%M}, load average {open('/proc/loadavg').read().split()[0]}):")
    print(f"  reference: python -c 'import pandas, sklearn': {statistics.median(reference):5.2f} s")
    for step, rows in results.items():
        total = med(rows, "seconds")
        print(f"  {step:<8} total {total:5.2f} s ({'met' if total < 3 else 'NOT met'}: goal < 3 s) = papermill + "
              f"kernel {med(rows, 'papermill_kernel'):5.2f} s + parameters/validation/imports "
              f"{med(rows, 'cells'):5.2f} s; {med(rows, 'cpu'):5.2f} CPU s; "
              f"{total / statistics.median(reference):.1f}x the reference")


if __name__ == "__main__":
    main()
