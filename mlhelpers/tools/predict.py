"""``mlh predict``: score a file with an exported model folder into a predictions file and a rejects file.

The scoring itself is ``mlhelpers.formats.scoring.score_file``; this module decides the files from the
command line's arguments, and refuses, before reading anything, any choice that would lose a file the
user owns: an output that is the input, a rejects file that is the output or the input, an existing
output or rejects file (unless ``overwrite``).
"""

from __future__ import annotations

import os
from pathlib import Path

from mlhelpers.core.engine import check_engine_params, open_engine
from mlhelpers.core.params import validate_params
from mlhelpers.formats.partitioned import score_partitions
from mlhelpers.formats.scoring import ScoreSummary, score_file
from mlhelpers.formats.served import ScoringError, load_model_dir

__all__ = ["predict_file", "predict_partitions", "plan_outputs", "rejects_name"]


def rejects_name(output_path: str | Path) -> Path:
    """The default rejects file next to ``output_path``: its whole name but the last suffix, plus
    ``.rejects.csv`` (``scores.jan.csv`` -> ``scores.jan.rejects.csv``), so two outputs never share one."""
    output_path = Path(output_path)
    stem = output_path.name[: -len(output_path.suffix)] if output_path.suffix else output_path.name
    return output_path.with_name(f"{stem}.rejects.csv")


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)  # hard links and symlinks too
    return a.resolve() == b.resolve()


def plan_outputs(input_path: str | Path, output_path: str | Path, rejects_path: str | Path | None = None,
                 overwrite: bool = False) -> tuple[Path, Path]:
    """The output and rejects files to write, after refusing (``ScoringError``) any that would replace the
    input, each other, or an existing file without ``overwrite``. Reads and writes nothing."""
    input_path, output_path = Path(input_path), Path(output_path)
    rejects_path = Path(rejects_path) if rejects_path is not None else rejects_name(output_path)
    for what, path in (("-o/--output", output_path), ("--rejects", rejects_path)):
        if _same_file(path, input_path):
            raise ScoringError(f"{what} {path} is the input file: writing it would destroy the rows being "
                               "scored; choose another file name.")
    if _same_file(output_path, rejects_path):
        raise ScoringError(f"--rejects {rejects_path} is the output file too: the rejected rows would overwrite "
                           f"the predictions; leave --rejects out (default {rejects_name(output_path).name}) "
                           "or name another file.")
    for what, path in (("output", output_path), ("rejects", rejects_path)):
        if path.is_dir():
            raise ScoringError(f"the {what} file {path} is a folder; give a file name.")
        if path.exists() and not overwrite:
            raise ScoringError(f"the {what} file {path} exists already; pass --overwrite to replace it, "
                               "or choose another name.")
    return output_path, rejects_path


def predict_file(model_dir: str | Path, input_path: str | Path, output_path: str | Path,
                 rejects_path: str | Path | None = None, chunk_rows: int = 50_000,
                 progress: bool = True, overwrite: bool = False, sheet: str | int | None = None) -> ScoreSummary:
    """Score ``input_path`` (any format the pipeline reads; ``sheet`` for an Excel workbook with several) with
    the model in ``model_dir`` into the files ``plan_outputs`` decides; return what was written (see ``score_file``)."""
    output_path, rejects_path = plan_outputs(input_path, output_path, rejects_path, overwrite=overwrite)
    return score_file(model_dir, input_path, output_path, rejects_path=rejects_path, chunk_rows=chunk_rows,
                      progress=progress, sheet=sheet)


def predict_partitions(model_dir: str | Path, input_path: str | Path, output_dir: str | Path,
                       rejects_dir: str | Path | None = None, scheduler: str = "", workers: int = -1,
                       worker_memory: str = "2GB", overwrite: bool = False,
                       sheet: str | int | None = None) -> ScoreSummary:
    """``mlh predict --engine dask``: score ``input_path`` partition by partition on ``scheduler`` or on a local
    cluster started (its dashboard link printed) and closed here; see ``score_partitions``. Unusable engine
    settings raise ``EngineError`` before anything starts; ``overwrite`` and ``sheet`` are refused
    (``ScoringError``): the output folders are always new, never removed for you, and Dask reads no workbook."""
    if sheet is not None:
        raise ScoringError("--sheet applies to an Excel workbook, which --engine dask does not read (Parquet or CSV "
                           "files, a folder or a glob); leave --sheet out or score the workbook with --engine pandas.")
    if overwrite:
        raise ScoringError("--overwrite applies to --engine pandas files; --engine dask writes new folders of parts "
                           "and never replaces one: remove the old folders yourself or name others with -o/--rejects.")
    check_engine_params("dask", scheduler, workers, worker_memory)
    load_model_dir(model_dir)  # a wrong folder is refused before a cluster starts
    params = validate_params({"engine": "dask", "dask_scheduler": scheduler, "dask_workers": workers,
                              "dask_worker_memory": worker_memory}, check_data=False)
    with open_engine(params) as engine:
        if engine.cluster is not None:
            print(f"Dask local cluster: {len(engine.cluster.workers)} workers x {worker_memory}; "
                  f"dashboard {engine.dashboard_link}", flush=True)
        return score_partitions(model_dir, input_path, output_dir, rejects_dir)
