"""The ``mlh`` command: run, sweep, validate, list and compare pipeline runs, check new data for drift, predict.

Exit codes: 0 success, 1 a step (or notebook) failed, 2 bad input (parameters, files, arguments; nothing
started), 3 drift found (``mlh drift --fail-on-drift``); ``mlh sweep`` exits with the number of failed variants.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlhelpers.compare.runs import load_runs
from mlhelpers.core.artifacts import SWEEP, artifact_path
from mlhelpers.core.classes import describe_plan
from mlhelpers.core.io import load_table
from mlhelpers.core.paramfile import load_params, parse_overrides
from mlhelpers.core.params import PROJECT_ROOT, ParamsError, check_table, parse_params
from mlhelpers.lifecycle import Interrupted
from mlhelpers.monitor.params import MonitorParams
from mlhelpers.monitor.report import check_inputs
from mlhelpers.pipeline import check_step_inputs, new_run_dir, parse_steps, run_after_step, run_pipeline
from mlhelpers.runs import list_runs
from mlhelpers.sweep import new_sweep_dir, plan_sweep, run_sweep
from mlhelpers.tools.optimize import format_report, optimize_model
from mlhelpers.tools.predict import predict_file, predict_partitions


def _add_run_options(parser: argparse.ArgumentParser, *, set_help: str, from_help: str, cache_help: str) -> None:
    """The options `mlh run` and `mlh sweep` share: --set, --steps, --from, --runs-root, --no-cache."""
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=set_help)
    parser.add_argument("--steps", default=None, help="comma-separated steps to run (default: all)")
    parser.add_argument("--from", dest="based_on", type=Path, default=None, metavar="RUN_DIR", help=from_help)
    parser.add_argument("--runs-root", type=Path, default=PROJECT_ROOT / "runs", help="where run folders go")
    parser.add_argument("--no-cache", action="store_true", help=cache_help)


def _add_run_parser(commands) -> None:
    run = commands.add_parser("run", help="run the pipeline (explore, baseline, export) from a params file")
    run.add_argument("params_file", type=Path, help="YAML params file, e.g. params/demo.yaml")
    _add_run_options(run, set_help="override one parameter (repeatable), e.g. --set cv_folds=3",
                     from_help="start from an earlier run's results (needed when --steps skips explore)",
                     cache_help="always compute the explore step (by default it is reused from an earlier run with "
                                "the same explore parameters, data and code)")
    run.set_defaults(handler=_run)


def _cache_root(args: argparse.Namespace) -> Path | None:
    return None if args.no_cache else args.runs_root / ".cache"


def _print_failure(error: dict, where: str) -> None:
    print(f"\nstep {error['step']!r} failed at cell [{error['cell']}]: {error['message']}\n"
          f"executed notebook (with the failing cell): {error['notebook']}\n{where}", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    steps = parse_steps(args.steps)
    params = load_params(args.params_file, args.overrides)
    check_step_inputs(steps, args.based_on, params.data_file)
    run_dir = new_run_dir(args.runs_root, args.params_file.stem)
    print(f"run folder: {run_dir}", flush=True)
    try:
        result = run_pipeline(params, steps, run_dir, params_file=args.params_file, based_on=args.based_on,
                              overrides=parse_overrides(args.overrides), cache_root=_cache_root(args))
    except Interrupted as stop:
        print(f"\ninterrupted by {stop.signal_name}: the run is marked failed (interrupted); "
              f"manifest: {run_dir / 'manifest.json'}", file=sys.stderr)
        return stop.exit_code
    if result.succeeded:
        print(f"succeeded in {result.manifest['seconds']:.1f} s: {run_dir}")
        return 0
    _print_failure(result.manifest["error"], f"manifest: {run_dir / 'manifest.json'}")
    return 1


def _add_sweep_parser(commands) -> None:
    sweep = commands.add_parser("sweep", help="run every combination of a parameter grid, each as its own run")
    sweep.add_argument("params_file", type=Path, help="YAML params file, e.g. params/demo.yaml")
    sweep.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2", required=True,
                       help="values of one parameter to try (repeatable; every combination runs), e.g. --grid "
                            "cv_folds=3,5 or --grid models=[dummy,linear],[xgboost]")
    _add_run_options(sweep, set_help="override one parameter for every variant (repeatable)",
                     from_help="start every variant from an earlier run's results (needed when --steps skips explore)",
                     cache_help="compute the explore step in every variant")
    sweep.set_defaults(handler=_sweep)


def _sweep(args: argparse.Namespace) -> int:
    steps = parse_steps(args.steps)
    plan = plan_sweep(args.params_file, args.grid, args.overrides)
    check_step_inputs(steps, args.based_on)
    sweep_dir = new_sweep_dir(args.runs_root, plan.name)
    print(f"sweep folder: {sweep_dir} ({len(plan.variants)} variants)", flush=True)
    record = run_sweep(plan, steps, sweep_dir, based_on=args.based_on, cache_root=_cache_root(args))
    print(f"\n{'run':<5} {'status':<10} {'seconds':>8}  {'overrides':<40} headline")
    for run in record["runs"]:
        shown = ", ".join(f"{key}={value}" for key, value in run["overrides"].items())
        seconds = f"{run['seconds']:.1f}" if run["seconds"] is not None else "-"
        print(f"{run['run']:<5} {run['status']:<10} {seconds:>8}  {shown:<40} {run['headline'] or '-'}")
    failed = record["n_failed"]
    print(f"\n{len(record['runs']) - failed} of {len(record['runs'])} variants succeeded; {sweep_dir / SWEEP} lists them."
          f"\ncompare them: mlh compare {sweep_dir}")
    if record.get("mlflow_error"):
        print(f"MLflow: {record['mlflow_error']}", file=sys.stderr)
    return min(failed, 125)


def _add_compare_parser(commands) -> None:
    compare = commands.add_parser("compare", help="compare runs (or a sweep) side by side: notebooks/04_compare.ipynb")
    compare.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run folders, or one sweep folder")
    compare.add_argument("-o", "--output", type=Path, default=None,
                         help="folder for comparison.csv and the executed notebook (default: the sweep folder, "
                              "else <runs-root>/compare/<id>)")
    compare.add_argument("--runs-root", type=Path, default=PROJECT_ROOT / "runs")
    compare.set_defaults(handler=_compare)


def _compare(args: argparse.Namespace) -> int:
    runs = load_runs(args.runs)  # refuses folders that are no runs, other targets or data, before any work
    sweep = len(args.runs) == 1 and (args.runs[0] / SWEEP).is_file()
    output = args.output or (args.runs[0] if sweep else new_run_dir(args.runs_root, "compare"))
    print(f"comparing {len(runs)} runs into {output}", flush=True)
    error = run_after_step("compare", output, {"run_dirs": [str(path.resolve()) for path in args.runs],
                                               "output_dir": str(output.resolve())})
    if error:
        _print_failure(error, "")
        return 1
    print(artifact_path(output, "comparison").read_text(encoding="utf-8").rstrip())
    print(f"\ncomparison: {artifact_path(output, 'comparison')}\nnotebook: {output / '04_compare.ipynb'}")
    return 0


def _add_drift_parser(commands) -> None:
    drift = commands.add_parser("drift", help="check a new data file against an exported model's training data: "
                                              "notebooks/05_monitor.ipynb")
    drift.add_argument("model_dir", type=Path, help="the export step's model folder, e.g. runs/demo/<run-id>/model")
    drift.add_argument("new_file", type=Path, help="the new data: CSV, Parquet, Excel, JSON lines, SQLite/DuckDB")
    drift.add_argument("-o", "--output", type=Path, default=None,
                       help="folder for drift_report.json, the figures and the notebook (default: <runs-root>/drift/<id>)")
    drift.add_argument("--query", default=None, help="SQL query when the new file is a SQLite or DuckDB database")
    drift.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="a threshold or the seed (repeatable), e.g. --set psi_threshold=0.25")
    drift.add_argument("--fail-on-drift", action="store_true", help="exit with code 3 when drift is found")
    drift.add_argument("--runs-root", type=Path, default=PROJECT_ROOT / "runs")
    drift.set_defaults(handler=_drift)


def _drift(args: argparse.Namespace) -> int:
    import json

    values = {"model_dir": str(args.model_dir.resolve()), "new_data_path": str(args.new_file.resolve()),
              "new_data_query": args.query} | parse_overrides(args.overrides)
    parse_params(MonitorParams, values | {"output_dir": "-"}, source="mlh drift")
    check_inputs(args.model_dir, args.new_file, args.query)  # a model with a reference, a file with its columns
    output = args.output or new_run_dir(args.runs_root, "drift")
    print(f"checking {args.new_file} against {args.model_dir} into {output}", flush=True)
    error = run_after_step("monitor", output, values | {"output_dir": str(output.resolve())})
    if error:
        _print_failure(error, "")
        return 1
    report = json.loads(artifact_path(output, "drift_report").read_text(encoding="utf-8"))
    print(report["summary"])
    print(f"\nreport: {artifact_path(output, 'drift_report')}\nnotebook: {output / '05_monitor.ipynb'}")
    return 3 if report["drifted"] and args.fail_on_drift else 0


def _add_validate_parser(commands) -> None:
    validate = commands.add_parser("validate", help="check a params file (and its data) without running")
    validate.add_argument("params_file", type=Path)
    validate.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    validate.set_defaults(handler=_validate)


def _validate(args: argparse.Namespace) -> int:
    params = load_params(args.params_file, args.overrides)
    plan = check_table(params, str(args.params_file))  # reads the target: refused classes fail here, not mid-run
    print(f"{args.params_file}: ok (data {params.data_file}, target {params.target!r}, task {params.task})"
          + (f"; rare classes: {describe_plan(plan)}" if plan and plan["rare"] else ""))
    return 0


def _add_runs_parser(commands) -> None:
    runs = commands.add_parser("runs", help="list runs with status, duration and headline metric")
    runs.add_argument("--runs-root", type=Path, default=PROJECT_ROOT / "runs")
    runs.set_defaults(handler=_runs)


def _runs(args: argparse.Namespace) -> int:
    rows = list_runs(args.runs_root)
    if not rows:
        print(f"no runs under {args.runs_root}; start one with `mlh run params/demo.yaml`")
        return 0
    header = f"{'run':<36} {'status':<11} {'seconds':>8}  headline"
    print(header)
    for row in rows:
        seconds = f"{row['seconds']:.1f}" if row["seconds"] is not None else "-"
        print(f"{row['run']:<36} {row['status']:<11} {seconds:>8}  {row['headline']}")
    return 0


def _add_predict_parser(commands) -> None:
    predict = commands.add_parser(
        "predict", help="score a file with an exported model; rows that break its schema go to a rejects file")
    predict.add_argument("model_dir", type=Path, help="the export step's model folder, e.g. runs/interactive/model")
    predict.add_argument("input_file", type=Path,
                         help="rows to score: any file `mlh run` reads (CSV of any dialect, compressed or not, "
                              "Parquet, JSON lines, Excel)")
    predict.add_argument("-o", "--output", type=Path, required=True, help="predictions file: .csv or .parquet")
    predict.add_argument("--rejects", type=Path, default=None,
                         help="rejected rows with the reason per row (default: the output's name with .rejects.csv, "
                              "e.g. scores.jan.csv -> scores.jan.rejects.csv)")
    predict.add_argument("--overwrite", action="store_true",
                         help="replace the output and rejects files if they exist (never the input file)")
    predict.add_argument("--chunk-rows", type=int, default=50_000, help="rows read and scored at a time")
    predict.add_argument("--sheet", type=_sheet, default=None,
                         help="the Excel sheet to score (name, or 0-based index) when the workbook has several")
    predict.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    predict.add_argument("--engine", choices=("pandas", "dask"), default="pandas",
                         help="dask: score a Parquet/CSV file, folder or glob partition by partition on a cluster; "
                              "-o and --rejects name folders of Parquet parts")
    predict.add_argument("--dask-scheduler", default="", help="engine dask: an existing scheduler (default: a local cluster)")
    predict.add_argument("--dask-workers", type=int, default=-1, help="engine dask, local cluster: workers (-1: one per core)")
    predict.add_argument("--dask-worker-memory", default="2GB", help="engine dask, local cluster: memory limit per worker")
    predict.set_defaults(handler=_predict)


def _predict(args: argparse.Namespace) -> int:
    if args.engine == "dask":
        summary = predict_partitions(args.model_dir, args.input_file, args.output, rejects_dir=args.rejects,
                                     scheduler=args.dask_scheduler, workers=args.dask_workers,
                                     worker_memory=args.dask_worker_memory, overwrite=args.overwrite,
                                     sheet=args.sheet)
    else:
        summary = predict_file(args.model_dir, args.input_file, args.output, rejects_path=args.rejects,
                               chunk_rows=args.chunk_rows, progress=not args.no_progress, overwrite=args.overwrite,
                               sheet=args.sheet)
    print(summary.line())
    return 0


def _sheet(text: str) -> str | int:
    return int(text) if text.isdigit() else text


def _add_optimize_parser(commands) -> None:
    optimize = commands.add_parser(
        "optimize", help="make a fitted pipeline smaller and faster to serve, with parity proved on a sample")
    optimize.add_argument("model", type=Path, help="fitted pipeline: .skops, or .joblib/.pkl (a pickle runs "
                                                   "code when loaded: only files you trust)")
    optimize.add_argument("--sample", type=Path, required=True,
                          help="data file with the pipeline's input columns (parity and timings run on it)")
    optimize.add_argument("--out", type=Path, default=None,
                          help="folder for the optimized files and optimize_report.json (default: <model>.optimized/)")
    optimize.add_argument("--target", default=None, help="the sample's label column (needed for --tolerance)")
    optimize.add_argument("--tolerance", type=_finite_float, default=None,
                          help="also build a lossy model whose error is at most this much higher, e.g. 0.01 = 1%%")
    optimize.add_argument("--n-single", type=int, default=1000, help="single-row calls timed per format (>= 1000 for p99)")
    optimize.add_argument("--trust", action="append", default=[], metavar="TYPE",
                          help="extra type a .skops file may hold, after you vetted it (repeatable)")
    optimize.set_defaults(handler=_optimize)


def _optimize(args: argparse.Namespace) -> int:
    sample = load_table(args.sample)
    out = args.out or args.model.with_name(args.model.name.split(".")[0] + ".optimized")
    result = optimize_model(args.model, sample, out, target=args.target, tolerance=args.tolerance,
                            n_single=args.n_single, extra_trusted=args.trust)
    print(format_report(result))
    print(f"report: {out / 'optimize_report.json'}")
    return 0


def _finite_float(text: str) -> float:
    import math

    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlh", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for add in (_add_run_parser, _add_sweep_parser, _add_validate_parser, _add_runs_parser, _add_compare_parser,
                _add_drift_parser, _add_predict_parser, _add_optimize_parser):
        add(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ParamsError, FileNotFoundError, ValueError) as exc:
        # Bad input: one clear message, no traceback, nothing started.
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
