"""Batch scoring: check rows against ``input_schema.json``, score the good ones, report the rest.

``check_rows`` and ``predict_rows`` are shared with the MLflow model (``mlhelpers.tracking``), so
a row is judged the same way by ``mlh predict`` and by ``mlflow models serve``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

__all__ = ["ScoringError", "SchemaError", "RowCheck", "ScoreSummary", "check_rows", "predict_rows",
           "load_model_dir", "load_served_file", "served_model_file", "score_file"]

INPUT_SUFFIXES = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet",
                  ".jsonl": "jsonl", ".ndjson": "jsonl"}
OUTPUT_SUFFIXES = {".csv": "csv", ".parquet": "parquet"}
_SHOWN_CATEGORIES = 8


class ScoringError(ValueError):
    """Scoring cannot start: the message names the file or argument and the fix."""


class SchemaError(ScoringError):
    """The input as a whole does not fit the model's input schema (e.g. columns are missing)."""


@dataclass
class RowCheck:
    """Rows split by the schema: ``valid`` (converted to the training dtypes, original index)
    and ``rejects`` (the raw row with a ``reason`` column); ``extra_columns`` were ignored."""

    valid: pd.DataFrame
    rejects: pd.DataFrame
    extra_columns: list[str] = field(default_factory=list)


def check_rows(frame: pd.DataFrame, schema: dict[str, Any]) -> RowCheck:
    """Check every row against ``schema`` (``input_schema.json``) and convert the good ones.

    A row is refused, with every reason listed, when it is empty (every feature missing), or has
    a value that is not a number in a numeric column, a category never seen in training in a
    categorical/boolean column, or a value that is no date/time in a datetime column. Missing
    values are allowed (the pipeline imputes them); extra columns are ignored. Raises
    ``SchemaError`` when columns the model needs are absent.
    """
    columns: dict[str, Any] = schema["columns"]
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise SchemaError(f"the input lacks column(s) {missing} that the model needs; every row must have "
                          f"the columns {list(columns)} (see input_schema.json; extra columns are ignored).")
    extra = [str(name) for name in frame.columns if name not in columns]
    reasons = np.full(len(frame), "", dtype=object)
    converted = {}
    for name, info in columns.items():
        converted[name], bad, why = _convert(frame[name], name, info)
        if bad.any():
            reasons[bad] = reasons[bad] + "; " + why
    empty = frame[list(columns)].isna().all(axis=1).to_numpy()
    reasons[empty] = "; empty row: every feature is missing"
    refused = reasons != ""
    valid = pd.DataFrame(converted, index=frame.index).loc[~refused]
    rejects = frame.loc[refused].copy()
    rejects.insert(0, "reason", [text[2:] for text in reasons[refused]])
    return RowCheck(valid=valid, rejects=rejects, extra_columns=extra)


def _convert(raw: pd.Series, name: str, info: dict[str, Any]) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """The column in its training type, a mask of bad values and one reason per bad value."""
    present = raw.notna().to_numpy()
    dtype = info["dtype"]
    if dtype == "bool":
        text = raw.astype(str).str.strip().str.lower()
        values = text.map({"true": True, "1": True, "1.0": True, "false": False, "0": False, "0.0": False})
        bad = present & values.isna().to_numpy()
        return values.where(present, None), bad, _why(raw, bad, f"{name}: {{}} is not true/false")
    if info["role"] == "datetime":  # the pipeline parses dates itself: check they parse, pass them on
        parsed = pd.to_datetime(raw.astype("object"), errors="coerce", format="mixed")
        bad = present & parsed.isna().to_numpy()
        return raw, bad, _why(raw, bad, f"{name}: {{}} is not a date/time")
    numeric_dtype = dtype.startswith(("int", "uint", "float"))
    if numeric_dtype:
        values = pd.to_numeric(raw, errors="coerce").astype(float)
        finite = np.isfinite(values.to_numpy())
        bad = present & ~finite
        values = values.where(finite)
        why = _why(raw, bad, f"{name}: {{}} is not a finite number")
    else:
        values = raw.where(~present, raw.astype(str))
        bad = np.zeros(len(raw), dtype=bool)
        why = np.array([], dtype=object)
    allowed = info.get("categories")
    if allowed is not None:
        unseen = present & ~bad & ~values.isin(allowed).to_numpy()
        if unseen.any():
            shown = ", ".join(map(str, allowed[:_SHOWN_CATEGORIES])) + (" ..." if len(allowed) > _SHOWN_CATEGORIES else "")
            bad = bad | unseen
            why = _why(raw, bad, f"{name}: unseen category {{}} (known: {shown})")
    return values, bad, why


def _why(raw: pd.Series, bad: np.ndarray, template: str) -> np.ndarray:
    before, _, after = template.partition("{}")
    return np.array([f"{before}{value!r}{after}" for value in raw.to_numpy()[bad]], dtype=object)


def predict_rows(model, frame: pd.DataFrame, schema: dict[str, Any]) -> pd.DataFrame:
    """Predictions for rows that passed ``check_rows``: ``prediction`` (the class label, not its
    index, for classification) and one ``proba_<class>`` column per class. Index kept."""
    classification = schema["task"] == "classification"
    classes = np.asarray(schema["classes"] if classification else [], dtype=object)
    if len(frame) == 0:  # estimators refuse empty input; keep the columns and their types
        return pd.DataFrame({"prediction": pd.Series([], dtype=object if classification else float),
                             **{f"proba_{c}": pd.Series([], dtype=float) for c in classes}}, index=frame.index)
    if not classification:
        return pd.DataFrame({"prediction": np.asarray(model.predict(frame), dtype=float)}, index=frame.index)
    result = pd.DataFrame({"prediction": classes[np.asarray(model.predict(frame), dtype=int)]}, index=frame.index)
    proba = np.asarray(model.predict_proba(frame), dtype=float)
    for i, label in enumerate(classes):
        result[f"proba_{label}"] = proba[:, i]
    return result


def served_model_file(model_dir: str | Path) -> Path:
    """The file a model folder is served from: ``model.onnx`` when the export step's
    ``serving_report.json`` recommends it (parity proved, fastest per row), else ``model.skops``."""
    model_dir = Path(model_dir)
    report = model_dir / "serving_report.json"
    recommended = None
    if report.is_file():
        try:
            recommended = json.loads(report.read_text(encoding="utf-8")).get("recommended")
        except (ValueError, AttributeError) as error:
            raise ScoringError(f"{report} is not a serving report ({error}); run the export step again "
                               "(notebooks/03_export.ipynb) to rewrite the folder.") from None
    if recommended != "onnx":
        return model_dir / "model.skops"
    if not (model_dir / "model.onnx").is_file():
        raise ScoringError(f"{report} recommends model.onnx, which is missing from {model_dir}; run the export "
                           "step again (notebooks/03_export.ipynb) to rewrite the folder.")
    return model_dir / "model.onnx"


def load_served_file(path: str | Path):
    """The model in a served file: ``model.onnx`` as an ``OnnxPredictor``, ``model.skops`` loaded with
    the trusted type list."""
    from mlhelpers.persistence import OnnxPredictor, load_skops

    return OnnxPredictor(path) if Path(path).suffix == ".onnx" else load_skops(path)


def load_model_dir(model_dir: str | Path):
    """The model to serve (``served_model_file``: the ONNX graph, or the pipeline from ``model.skops``
    loaded with the trusted type list) and the input schema."""
    model_dir = Path(model_dir)
    missing = [name for name in ("model.skops", "input_schema.json") if not (model_dir / name).is_file()]
    if missing:
        raise ScoringError(f"{model_dir} is not an exported model folder: {', '.join(missing)} missing; "
                           "pass <run_dir>/model after the export step (notebooks/03_export.ipynb) ran.")
    schema = json.loads((model_dir / "input_schema.json").read_text(encoding="utf-8"))
    return load_served_file(served_model_file(model_dir)), schema


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

    def line(self) -> str:
        """The one-line summary ``mlh predict`` prints."""
        extra = f"; ignored extra columns: {', '.join(self.extra_columns)}" if self.extra_columns else ""
        return (f"{self.rows} rows: {self.scored} scored -> {self.output}, {self.rejected} rejected -> "
                f"{self.rejects}{extra} ({self.seconds:.1f} s)")


def score_file(model_dir: str | Path, input_path: str | Path, output_path: str | Path,
               rejects_path: str | Path | None = None, chunk_rows: int = 50_000,
               progress: bool = True) -> ScoreSummary:
    """Score a CSV, Parquet or JSON-lines file chunk by chunk (bounded memory).

    Writes predictions (``row``: the 0-based data row of the input, then ``predict_rows``'s
    columns) to ``output_path`` (.csv or .parquet) and refused rows with their reason to
    ``rejects_path`` (default ``<output>.rejects.csv``). Both files appear atomically.
    Raises ``ScoringError``/``SchemaError`` before scoring when the files or columns are wrong.
    """
    from mlhelpers.artifacts import atomic_path

    input_path, output_path = Path(input_path), Path(output_path)
    rejects_path = Path(rejects_path) if rejects_path else output_path.with_name(output_path.name.split(".")[0] + ".rejects.csv")
    kind = _kind(input_path, INPUT_SUFFIXES, "input", "CSV (.csv), Parquet (.parquet) or JSON lines (.jsonl)")
    out_kind = _kind(output_path, OUTPUT_SUFFIXES, "output", ".csv or .parquet")
    if chunk_rows < 1:
        raise ScoringError(f"chunk_rows must be >= 1, got {chunk_rows}.")
    model, schema = load_model_dir(model_dir)
    header = _read_header(input_path, kind)
    header.index.name = "row"
    nothing = check_rows(header, schema)  # missing columns fail here, before any work
    start = time.perf_counter()
    counts = {"rows": 0, "scored": 0, "rejected": 0}
    with atomic_path(output_path) as out_temp, atomic_path(rejects_path) as rejects_temp, \
            _progress(input_path, kind, progress) as bar:
        writer = _OutputWriter(out_temp, out_kind)
        for number, chunk in enumerate(_read_chunks(input_path, kind, chunk_rows)):
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
        if rejects_temp.stat().st_size == 0:  # no chunk at all: still write the header
            nothing.rejects.reset_index().to_csv(rejects_temp, index=False)
        writer.close(lambda: predict_rows(model, nothing.valid, schema).reset_index())
    return ScoreSummary(rows=counts["rows"], scored=counts["scored"], rejected=counts["rejected"],
                        output=output_path, rejects=rejects_path, extra_columns=nothing.extra_columns,
                        seconds=time.perf_counter() - start)


def _kind(path: Path, suffixes: dict[str, str], what: str, expected: str) -> str:
    suffix = [s.lower() for s in path.suffixes if s.lower() not in {".gz", ".bz2", ".zip", ".xz", ".zst"}][-1:]
    if not suffix or suffix[0] not in suffixes:
        raise ScoringError(f"{what} file {path}: unsupported type {''.join(path.suffixes) or '(none)'!r}; use {expected}.")
    if what == "input" and not path.is_file():
        raise ScoringError(f"input file {path} does not exist.")
    return suffixes[suffix[0]]


def _read_header(path: Path, kind: str) -> pd.DataFrame:
    """An empty frame with the file's columns (read without scanning the file)."""
    if kind == "csv":
        return pd.read_csv(path, sep=_sep(path), nrows=0, dtype=str)
    if kind == "parquet":
        import pyarrow.parquet as pq

        return pd.DataFrame(columns=pq.read_schema(path).names)
    return next(_read_chunks(path, kind, 1)).iloc[:0]


def _sep(path: Path) -> str:
    return "\t" if ".tsv" in [s.lower() for s in path.suffixes] else ","


def _read_chunks(path: Path, kind: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
    if kind == "csv":
        # Everything as text: types are decided by the schema, identically for every chunk.
        # Blank lines are kept (as empty rows) so row numbers match the file and they get reported.
        yield from pd.read_csv(path, sep=_sep(path), dtype=str, chunksize=chunk_rows, skip_blank_lines=False)
    elif kind == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
            yield batch.to_pandas()
    else:
        yield from pd.read_json(path, lines=True, chunksize=chunk_rows, dtype=False)


def _progress(path: Path, kind: str, enabled: bool):
    from tqdm.auto import tqdm

    total = None
    if enabled and kind == "parquet":
        import pyarrow.parquet as pq

        total = pq.ParquetFile(path).metadata.num_rows
    elif enabled and path.suffix.lower() not in {".gz", ".bz2", ".zip", ".xz", ".zst"}:
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
