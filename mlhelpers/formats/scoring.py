"""Batch scoring of a file with an exported model folder, in chunks; rows that break its schema go to a
rejects file with the reason per row.

Rows are judged by ``mlhelpers.core.schema.check_rows`` and answered by ``mlhelpers.formats.served``, the
same code the MLflow model runs, so a row is treated alike by ``mlh predict``, the export notebook and
``mlflow models serve``.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mlhelpers.core import io, sources
from mlhelpers.core.artifacts import atomic_path, relative_to_run
from mlhelpers.core.schema import check_rows
from mlhelpers.formats.served import ScoringError, load_model_dir, predict_rows

__all__ = ["ScoreSummary", "score_file"]

OUTPUT_SUFFIXES = {".csv": "csv", ".parquet": "parquet"}


@dataclass
class ScoreSummary:
    """What ``score_file`` did: row counts, files written, ignored columns and time taken."""

    rows: int
    scored: int
    rejected: int
    output: Path
    rejects: Path
    extra_columns: list[str]
    seconds: float

    def line(self, relative_to: str | Path | None = None) -> str:
        """The one-line summary ``mlh predict`` prints; paths relative to ``relative_to`` when given."""
        def shown(path: Path) -> str:
            return relative_to_run(path, relative_to) if relative_to is not None else str(path)

        extra = f"; ignored extra columns: {', '.join(self.extra_columns)}" if self.extra_columns else ""
        return (f"{self.rows} rows: {self.scored} scored -> {shown(self.output)}, {self.rejected} rejected -> "
                f"{shown(self.rejects)}{extra} ({self.seconds:.1f} s)")


def score_file(model_dir: str | Path, input_path: str | Path, output_path: str | Path,
               rejects_path: str | Path | None = None, chunk_rows: int = 50_000,
               progress: bool = True, sheet: str | int | None = None, query: str | None = None) -> ScoreSummary:
    """Score a data file chunk by chunk (bounded memory), read by ``mlhelpers.core.io.iter_table``: every
    format and dialect the pipeline reads (CSV with its delimiter, decimal mark and encoding detected,
    compressed or not, Parquet, JSON lines, Excel with ``sheet``, a database with ``query``), with the
    training's value conversions.

    Writes predictions (``row``: the 0-based data row of the input, then ``predict_rows``'s
    columns) to ``output_path`` (.csv or .parquet) and refused rows with their reason to
    ``rejects_path`` (default ``<output>.rejects.csv``). Both files appear atomically.
    Raises ``DataError``/``ScoringError``/``SchemaError`` before scoring when the files or columns are wrong.
    """
    input_path, output_path = Path(input_path), Path(output_path)
    rejects_path = Path(rejects_path) if rejects_path else output_path.with_name(output_path.name.split(".")[0] + ".rejects.csv")
    out_kind = _kind(output_path, OUTPUT_SUFFIXES, "output", ".csv or .parquet")
    if chunk_rows < 1:
        raise ScoringError(f"chunk_rows must be >= 1, got {chunk_rows}.")
    # a missing, empty or unknown file fails before the model loads; a folder or glob (data_path under engine
    # pandas) is scored file after file, its rows numbered across the files as load_table stacks them
    kind = io.check_data_file(input_path, sheet) if not sources.is_multi_file(input_path) else "files"
    model, schema = load_model_dir(model_dir)
    chunks = io.iter_table(input_path, chunk_rows, sheet=sheet, query=query, dtypes=reading_types(schema),
                           keep_blank_lines=True)
    first = next(chunks)
    nothing = check_rows(first.iloc[:0].rename_axis("row"), schema)  # missing columns fail here, before any work
    start = time.perf_counter()
    counts = {"rows": 0, "scored": 0, "rejected": 0}
    with atomic_path(output_path) as out_temp, atomic_path(rejects_path) as rejects_temp, \
            _progress(input_path, kind, progress) as bar:
        writer = _OutputWriter(out_temp, out_kind)
        for number, chunk in enumerate(itertools.chain([first], chunks)):
            chunk.index = pd.RangeIndex(counts["rows"], counts["rows"] + len(chunk), name="row")
            check = check_rows(chunk, schema)
            predictions = predict_rows(model, check.valid, schema)
            writer.write(predictions.reset_index())
            check.rejects.reset_index().to_csv(rejects_temp, mode="w" if number == 0 else "a",
                                               header=number == 0, index=False)
            counts["rows"] += len(chunk)
            counts["scored"] += len(predictions)
            counts["rejected"] += len(check.rejects)
            bar.update(len(chunk))
        writer.close(lambda: predict_rows(model, nothing.valid, schema).reset_index())
    return ScoreSummary(rows=counts["rows"], scored=counts["scored"], rejected=counts["rejected"],
                        output=output_path, rejects=rejects_path, extra_columns=nothing.extra_columns,
                        seconds=time.perf_counter() - start)


def reading_types(schema: dict[str, Any]) -> dict[str, str]:
    """How each model column of a CSV is read: ``"number"`` for numeric training dtypes, else ``"text"``
    (categories, booleans and dates are judged from their text, identically in every chunk)."""
    return {name: "number" if info["dtype"].startswith(("int", "uint", "float")) else "text"
            for name, info in schema["columns"].items()}


def _kind(path: Path, suffixes: dict[str, str], what: str, expected: str) -> str:
    suffix = [s.lower() for s in path.suffixes if s.lower() not in io.COMPRESSION_SUFFIXES][-1:]
    if not suffix or suffix[0] not in suffixes:
        raise ScoringError(f"{what} file {path}: unsupported type {''.join(path.suffixes) or '(none)'!r}; use {expected}.")
    return suffixes[suffix[0]]


def _progress(path: Path, kind: str, enabled: bool):
    from tqdm import tqdm  # a text bar: mlh predict runs in a terminal (tqdm.auto warns without ipywidgets)

    total = None
    if enabled and kind == "parquet":
        import pyarrow.parquet as pq

        total = pq.ParquetFile(path).metadata.num_rows
    elif enabled and kind in ("csv", "jsonl") and path.suffix.lower() not in io.COMPRESSION_SUFFIXES:
        total = _count_lines(path) - (1 if kind == "csv" else 0)
    return tqdm(total=total, unit="rows", unit_scale=True, disable=not enabled, desc=f"scoring {path.name}")


def _count_lines(path: Path) -> int:
    lines, last = 0, b"\n"
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n")


class _OutputWriter:
    """Appends prediction chunks to a CSV or Parquet file."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path, self.kind, self.started, self._parquet = path, kind, False, None

    def write(self, frame: pd.DataFrame) -> None:
        if self.kind == "csv":
            frame.to_csv(self.path, mode="a" if self.started else "w", header=not self.started, index=False)
            self.started = True
        elif len(frame):
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.path, table.schema)
            self._parquet.write_table(table.cast(self._parquet.schema))
            self.started = True

    def close(self, empty) -> None:
        """Finish the file; ``empty()`` gives the columns when no row was written."""
        if self._parquet is not None:
            self._parquet.close()
        elif not self.started:
            empty = empty()
            if self.kind == "csv":
                empty.to_csv(self.path, index=False)
            else:
                empty.to_parquet(self.path, index=False)
