"""Batch scoring on the Dask engine: a folder, glob or file of Parquet/CSV scored partition by partition on the
workers, into a folder of Parquet prediction parts and a folder of Parquet reject parts.

Each task checks its partition's rows (``mlhelpers.core.schema.check_rows``), predicts the good ones
(``mlhelpers.formats.served.predict_rows``, the code ``mlh predict`` and the MLflow model run) and writes its
own two part files; only row counts return to the client, so a worker holds one partition and the model at a
time whatever the table's size. Each worker loads the served file once (``served_model_file``: ONNX or skops) and
keeps it: an ONNX session cannot be pickled to the workers, so the workers must see ``model_dir`` (as they must
see the input and output folders: a shared disk on a remote cluster).
``row`` is the 0-based position of the row in the whole input (files in name order), as ``score_file`` numbers it.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import pandas as pd

from mlhelpers.core import engine, lazy
from mlhelpers.core.schema import check_rows
from mlhelpers.formats.scoring import ScoreSummary
from mlhelpers.formats.served import ScoringError, load_model_dir, load_served_file, predict_rows, served_model_file

__all__ = ["score_partitions"]

_LOADED: dict[tuple[str, float], Any] = {}   # per worker process: (served file, mtime) -> model


def _served(path: str) -> Any:
    key = (path, Path(path).stat().st_mtime)
    if key not in _LOADED:
        _LOADED.clear()
        _LOADED[key] = load_served_file(path)
    return _LOADED[key]


def _score_partition(frame: pd.DataFrame, served: str, schema: dict, number: int, offset: int,
                     object_bools: tuple[str, ...], outputs: tuple[str, str]) -> tuple[int, int, int]:
    """Score one partition and write ``part.<number>.parquet`` into both folders; returns (rows, scored, rejected)."""
    model = _served(served)
    frame = lazy.pandas_like(frame, object_bools)
    frame.index = pd.RangeIndex(offset, offset + len(frame), name="row")
    check = check_rows(frame, schema)
    predictions = predict_rows(model, check.valid, schema)
    for table, folder in ((predictions, outputs[0]), (check.rejects, outputs[1])):
        path = Path(folder) / f"part.{number}.parquet"
        temp = path.with_name(f".{path.name}.tmp")
        table.reset_index().to_parquet(temp, index=False)
        os.replace(temp, path)  # a part file is whole or absent
    return len(frame), len(predictions), len(check.rejects)


def score_partitions(model_dir: str | Path, input_path: str | Path, output_dir: str | Path,
                     rejects_dir: str | Path | None = None) -> ScoreSummary:
    """Score ``input_path`` (Parquet or CSV: a file, a folder or a glob) with the exported model in ``model_dir``
    on the open Dask engine; write ``output_dir/part.<i>.parquet`` (``row``, ``prediction``, ``proba_<class>``)
    and ``rejects_dir/part.<i>.parquet`` (default ``<output_dir>_rejects``; ``row``, the reasons and the row's
    values), one part per input partition.

    Both folders appear whole (written beside, then renamed) and are never overwritten. Raises ``ScoringError``
    (an output folder exists, the input cannot be read lazily) or ``SchemaError`` (columns the model needs are
    absent) before any row is scored; ``EngineError`` when no engine is open.
    """
    import dask

    output_dir = Path(output_dir)
    rejects_dir = Path(rejects_dir) if rejects_dir else output_dir.with_name(output_dir.name + "_rejects")
    for folder in (output_dir, rejects_dir):
        if folder.exists():
            raise ScoringError(f"{folder} already exists; scoring never overwrites: remove it or name another folder.")
    engine.current_client()
    _, schema = load_model_dir(model_dir)  # refuses a folder that is no exported model
    served = str(served_model_file(model_dir).resolve())
    try:
        table = lazy.read_lazy(input_path)
    except (lazy.LazyReadError, ValueError) as exc:
        raise ScoringError(f"{exc}") from None
    check_rows(lazy.pandas_like(table.frame._meta, table.object_bools), schema)  # missing columns fail here
    started = time.perf_counter()
    lengths = lazy.partition_lengths(table)
    offsets = [sum(lengths[:i]) for i in range(len(lengths))]
    temps = [folder.with_name(f".{folder.name}.partial") for folder in (output_dir, rejects_dir)]
    for temp in temps:
        shutil.rmtree(temp, ignore_errors=True)  # a crashed earlier attempt's leftovers
        temp.mkdir(parents=True)
    try:
        tasks = [dask.delayed(_score_partition)(part, served, schema, number, offsets[number], table.object_bools,
                                                (str(temps[0]), str(temps[1])))
                 for number, part in enumerate(table.frame.to_delayed())]
        (counts,) = dask.compute(tasks)
    except BaseException:
        for temp in temps:
            shutil.rmtree(temp, ignore_errors=True)
        raise
    for temp, folder in zip(temps, (output_dir, rejects_dir)):
        os.replace(temp, folder)
    extra = [name for name in table.frame.columns if name not in schema["columns"]]
    return ScoreSummary(rows=sum(c[0] for c in counts), scored=sum(c[1] for c in counts),
                        rejected=sum(c[2] for c in counts), output=output_dir, rejects=rejects_dir,
                        extra_columns=extra, seconds=time.perf_counter() - started)
