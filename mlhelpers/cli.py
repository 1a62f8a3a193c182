"""The ``mlh`` command: run, validate and list pipeline runs (and the commands other modules add).

Exit codes: 0 success, 1 a step failed, 2 bad input (parameters, files, arguments).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlhelpers.core.io import load_table
from mlhelpers.core.params import PROJECT_ROOT, ParamsError, load_params
from mlhelpers.pipeline import check_step_inputs, list_runs, new_run_dir, parse_steps, run_pipeline
from mlhelpers.tools.optimize import format_report, optimize_model
from mlhelpers.tools.predict import predict_file, predict_partitions


def _add_run_parser(commands) -> None:
    run = commands.add_parser("run", help="run the pipeline (explore, baseline, export) from a params file")
    run.add_argument("params_file", type=Path, help="YAML params file, e.g. params/demo.yaml")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override one parameter (repeatable), e.g. --set cv_folds=3")
    run.add_argument("--steps", default=None, help="comma-separated steps to run (default: all)")
    run.add_argument("--from", dest="based_on", type=Path, default=None, metavar="RUN_DIR",
                     help="start from an earlier run's results (needed when --steps skips explore)")
    run.add_argument("--runs-root", type=Path, default=PROJECT_ROOT / "runs", help="where run folders go")
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    steps = parse_steps(args.steps)
    params = load_params(args.params_file, args.overrides)
    check_step_inputs(steps, args.based_on)
    run_dir = new_run_dir(args.runs_root, args.params_file.stem)
    print(f"run folder: {run_dir}", flush=True)
    result = run_pipeline(params, steps, run_dir, params_file=args.params_file, based_on=args.based_on)
    if result.succeeded:
        print(f"succeeded in {result.manifest['seconds']:.1f} s: {run_dir}")
        return 0
    error = result.manifest["error"]
    print(f"\nstep {error['step']!r} failed at cell [{error['cell']}]: {error['message']}\n"
          f"executed notebook (with the failing cell): {error['notebook']}\n"
          f"manifest: {run_dir / 'manifest.json'}", file=sys.stderr)
    return 1


def _add_validate_parser(commands) -> None:
    validate = commands.add_parser("validate", help="check a params file (and its data) without running")
    validate.add_argument("params_file", type=Path)
    validate.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    validate.set_defaults(handler=_validate)


def _validate(args: argparse.Namespace) -> int:
    params = load_params(args.params_file, args.overrides)
    print(f"{args.params_file}: ok (data {params.data_file}, target {params.target!r}, task {params.task})")
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
    header = f"{'run':<36} {'status':<10} {'seconds':>8}  headline"
    print(header)
    for row in rows:
        seconds = f"{row['seconds']:.1f}" if row["seconds"] is not None else "-"
        print(f"{row['run']:<36} {row['status']:<10} {seconds:>8}  {row['headline']}")
    return 0


def _add_predict_parser(commands) -> None:
    predict = commands.add_parser(
        "predict", help="score a file with an exported model; rows that break its schema go to a rejects file")
    predict.add_argument("model_dir", type=Path, help="the export step's model folder, e.g. runs/interactive/model")
    predict.add_argument("input_file", type=Path, help="rows to score: .csv, .parquet or .jsonl")
    predict.add_argument("-o", "--output", type=Path, required=True, help="predictions file: .csv or .parquet")
    predict.add_argument("--rejects", type=Path, default=None,
                         help="rejected rows with the reason per row (default: <output>.rejects.csv)")
    predict.add_argument("--chunk-rows", type=int, default=50_000, help="rows read and scored at a time")
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
                                     worker_memory=args.dask_worker_memory)
    else:
        summary = predict_file(args.model_dir, args.input_file, args.output, rejects_path=args.rejects,
                               chunk_rows=args.chunk_rows, progress=not args.no_progress)
    print(summary.line())
    return 0


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
    optimize.add_argument("--tolerance", type=float, default=None,
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlh", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for add in (_add_run_parser, _add_validate_parser, _add_runs_parser, _add_predict_parser,
                _add_optimize_parser):
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
