"""Reading tabular data from files and databases into pandas: one reader for every path that reads a table.

CSV files have their encoding, delimiter and decimal mark detected; ``NA``, empty, ``null`` and
``?`` read as missing in every format. Every error names the file and the problem.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mlhelpers.core import sources

SQL_SUFFIXES = {".db", ".sqlite", ".sqlite3", ".duckdb"}
COMPRESSION_SUFFIXES = {".gz", ".bz2", ".zip", ".xz", ".zst"}
# Strings read as missing, on top of pandas' defaults (which include NA, null, NULL, NaN and "").
MISSING_MARKERS = ["?", "", "NA", "N/A", "null", "NULL", "Null", "NaN", "nan", "None"]
SAMPLE_BYTES = 256 * 1024
CSV_DELIMITERS = ",;\t|"
_MAGIC = {b"PAR1": "a Parquet file", b"PK\x03\x04": "a zip archive (an Excel .xlsx file?)",
          b"SQLite format 3": "a SQLite database", b"\x1f\x8b": "a gzip archive",
          b"%PDF": "a PDF document", b"\x89PNG": "a PNG image",
          b"\xd0\xcf\x11\xe0": "an old Excel .xls / Office file"}


class DataError(ValueError):
    """A data file that cannot be read: the message names the file and the problem."""


@dataclass(frozen=True)
class CsvFormat:
    """What ``sniff_csv`` found: the text encoding, the field delimiter and the decimal mark."""

    encoding: str
    delimiter: str
    decimal: str = "."
    thousands: str | None = None


def file_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSION_SUFFIXES:
        suffixes = suffixes[:-1]
    suffix = suffixes[-1] if suffixes else ""
    if suffix in {".csv", ".tsv", ".txt"}:
        return "csv"
    if suffix in {".parquet", ".pq"}:
        return "parquet"
    if suffix in {".xlsx", ".xls", ".xlsm"}:
        return "excel"
    if suffix in {".jsonl", ".ndjson", ".json"}:
        return "jsonl"
    if suffix in SQL_SUFFIXES:
        return "sql"
    raise DataError(f"{path}: unsupported file type {suffix or '(none)'!r}; use CSV, Parquet, Excel, "
                    "JSON lines, or a SQLite/DuckDB database with data_query.")


def _head_bytes(path: Path, size: int = SAMPLE_BYTES) -> bytes:
    """The first ``size`` bytes of the file, decompressed when its name says it is compressed."""
    suffix = path.suffix.lower()
    if suffix == ".gz":
        import gzip as opener
    elif suffix == ".bz2":
        import bz2 as opener
    elif suffix == ".xz":
        import lzma as opener
    elif suffix == ".zip":
        import zipfile

        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if not names:
                return b""
            with archive.open(names[0]) as handle:
                return handle.read(size)
    else:
        with open(path, "rb") as handle:
            return handle.read(size)
    try:
        with opener.open(path, "rb") as handle:
            return handle.read(size)
    except (OSError, EOFError, ValueError) as exc:
        raise DataError(f"{path}: cannot decompress ({exc}); is it really a {suffix} file?") from None


def _detect_encoding(path: Path, sample: bytes) -> str:
    if sample.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    for magic, what in _MAGIC.items():
        if sample.startswith(magic):
            raise DataError(f"{path}: this is {what}, not a text CSV file; give it the right "
                            "file extension or export the data as CSV.")
    if b"\x00" in sample:
        raise DataError(f"{path}: the file is binary (it contains NUL bytes), not a text CSV file; "
                        "check that it is the right file or convert it to CSV (UTF-8).")
    try:
        # An incremental decoder tolerates a multi-byte character cut at the end of the sample.
        import codecs

        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        text = sample.decode("cp1252")
        if not re.search(r"[\x80-\x9f]", text):  # Windows-1252 / Latin-1, the usual non-UTF-8 CSV
            return "cp1252"
    except UnicodeDecodeError:
        pass
    import charset_normalizer

    best = charset_normalizer.from_bytes(sample).best()
    if best is None:
        raise DataError(f"{path}: unreadable text encoding (neither UTF-8, Windows-1252 nor any "
                        "encoding charset-normalizer recognises); re-save the file as UTF-8.")
    return best.encoding


def _detect_delimiter(lines: list[str]) -> str:
    text = "\n".join(lines)
    try:
        return csv.Sniffer().sniff(text, delimiters=CSV_DELIMITERS).delimiter
    except csv.Error:
        pass
    # Fallback: the candidate that splits the most lines into the same number (>1) of fields.
    best, best_score = ",", 0
    for candidate in CSV_DELIMITERS:
        widths = [len(row) for row in csv.reader(lines, delimiter=candidate)]
        if not widths:
            continue
        mode = max(set(widths), key=widths.count)
        score = widths.count(mode) if mode > 1 else 0
        if score > best_score:
            best, best_score = candidate, score
    return best


def _detect_decimal(lines: list[str], delimiter: str) -> tuple[str, str | None]:
    if delimiter == ",":
        return ".", None
    fields = [field.strip() for row in csv.reader(lines[1:], delimiter=delimiter) for field in row]
    comma = sum(bool(re.fullmatch(r"[-+]?(\d{1,3}(\.\d{3})+|\d+),\d+", f)) for f in fields)
    dot = sum(bool(re.fullmatch(r"[-+]?\d+\.\d+", f)) for f in fields)
    if comma > dot:
        grouped = any(re.fullmatch(r"[-+]?\d{1,3}(\.\d{3})+(,\d+)?", f) for f in fields)
        return ",", "." if grouped else None
    return ".", None


def sniff_csv(path: str | Path) -> CsvFormat:
    """Detect a CSV file's encoding, delimiter and decimal mark from its first 256 KB.

    Raises ``DataError`` for an empty, binary or undecodable file and for duplicate column names.
    """
    path = Path(path)
    sample = _head_bytes(path)
    if not sample.strip():
        raise DataError(f"{path}: the file is empty; it needs a header line and at least one data row.")
    encoding = _detect_encoding(path, sample)
    text = sample.decode(encoding, errors="ignore")
    lines = text.splitlines()
    if len(sample) == SAMPLE_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line of a cut sample is usually incomplete
    lines = [line for line in lines[:200] if line.strip()]
    delimiter = _detect_delimiter(lines)
    header = next(csv.reader(lines[:1], delimiter=delimiter), [])
    names = [name.strip() for name in header]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise DataError(f"{path}: duplicate column names {duplicates}; rename them so every column "
                        "has a unique name.")
    decimal, thousands = _detect_decimal(lines, delimiter)
    return CsvFormat(encoding=encoding, delimiter=delimiter, decimal=decimal, thousands=thousands)


def _read_csv(path: Path, nrows: int | None) -> pd.DataFrame:
    fmt = sniff_csv(path)
    if nrows is None and fmt.thousands is None:
        # pyarrow's multithreaded reader is ~5x faster with half the peak memory on big files; anything
        # it rejects is read again by the C parser below, whose errors are the clear ones.
        try:
            return pd.read_csv(path, engine="pyarrow", sep=fmt.delimiter, decimal=fmt.decimal,
                               encoding=fmt.encoding, na_values=MISSING_MARKERS, keep_default_na=True)
        except Exception:  # noqa: BLE001 - any failure falls back to the C parser
            pass
    try:
        return pd.read_csv(path, sep=fmt.delimiter, decimal=fmt.decimal, thousands=fmt.thousands,
                           encoding=fmt.encoding, na_values=MISSING_MARKERS, keep_default_na=True,
                           skipinitialspace=True, nrows=nrows, low_memory=False)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: unreadable text encoding: byte {exc.start} past the sample is not "
                        f"valid {fmt.encoding} ({exc.reason}); re-save the file as UTF-8.") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty; it needs a header line and at least one data row.") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: malformed CSV with delimiter {fmt.delimiter!r}: {exc}".rstrip()
                        + "; check quoting and the number of fields per line.") from None


def _check_duplicate_names(path: Path, names: list) -> None:
    names = [str(name).strip() for name in names]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise DataError(f"{path}: duplicate column names {duplicates}; rename them so every column "
                        "has a unique name.")


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
        _check_duplicate_names(path, schema.names)
        return pd.read_parquet(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc}); check the file or its extension.") from None


def _read_excel(path: Path, nrows: int | None) -> pd.DataFrame:
    try:
        header = pd.read_excel(path, header=None, nrows=1)
        _check_duplicate_names(path, header.iloc[0].tolist() if len(header) else [])
        return pd.read_excel(path, nrows=nrows, na_values=MISSING_MARKERS)
    except DataError:
        raise
    except Exception as exc:  # openpyxl and xlrd raise many types for a file that is not Excel
        raise DataError(f"{path}: not a readable Excel file ({type(exc).__name__}: {exc}); "
                        "check the file or its extension.") from None


def _read_jsonl(path: Path, nrows: int | None) -> pd.DataFrame:
    import json

    first = next((line for line in _head_bytes(path).decode("utf-8", errors="replace").splitlines()
                  if line.strip()), "")

    def no_duplicates(pairs):
        _check_duplicate_names(path, [key for key, _ in pairs])
        return dict(pairs)

    try:
        json.loads(first, object_pairs_hook=no_duplicates)
        return pd.read_json(path, lines=True, nrows=nrows)
    except DataError:
        raise
    except ValueError as exc:
        raise DataError(f"{path}: not valid JSON lines ({exc}); expected one JSON object per line.") from None


def _read_sql(path: Path, query: str | None) -> pd.DataFrame:
    if not query:
        raise DataError(f"{path}: a database needs a query; set data_query, e.g. 'SELECT * FROM my_table'.")
    if path.suffix.lower() == ".duckdb":
        return _read_duckdb(path, query)
    # SQLite through the standard library: DuckDB's sqlite extension would need a download.
    import sqlite3

    try:
        with open(path, "rb") as handle:
            if not handle.read(16).startswith(b"SQLite format 3"):
                raise DataError(f"{path}: not a SQLite database (wrong header); check the file or its extension.")
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            cursor = connection.execute(query)
            names = [column[0] for column in cursor.description or []]
            _check_duplicate_names(path, names)
            return pd.DataFrame.from_records(cursor.fetchall(), columns=names)
        finally:
            connection.close()
    except sqlite3.Error as exc:
        raise DataError(f"{path}: the query failed: {exc}; check data_query (table and column names).") from None


def _read_duckdb(path: Path, query: str) -> pd.DataFrame:
    import duckdb

    try:
        connection = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise DataError(f"{path}: not a readable DuckDB database ({str(exc).splitlines()[0]}).") from None
    try:
        result = connection.execute(query)
        _check_duplicate_names(path, [column[0] for column in result.description])
        return result.df()
    except duckdb.Error as exc:
        raise DataError(f"{path}: the query failed: {str(exc).splitlines()[0]}; check data_query "
                        "(table and column names).") from None
    finally:
        connection.close()


def _normalize_missing(frame: pd.DataFrame) -> pd.DataFrame:
    """Turn the missing markers in string columns into real missing values (non-CSV formats)."""
    markers = set(MISSING_MARKERS)
    for name in frame.columns[frame.dtypes == object]:
        column = frame[name]
        try:
            is_marker = column.str.strip().isin(markers)
        except AttributeError:  # no strings in this column
            continue
        if is_marker.any():
            frame[name] = column.mask(is_marker)
    return frame


def load_table(path: str | Path, query: str | None = None, nrows: int | None = None) -> pd.DataFrame:
    """Read a whole table (or its first ``nrows`` rows) from a file or a SQL query.

    Returns the DataFrame as read (no dtype changes beyond missing markers). Raises ``DataError``
    naming the file and the problem: missing, empty, header only, binary or wrong format,
    duplicate column names, unreadable encoding.
    """
    path = Path(path)
    if sources.is_multi_file(path):  # a folder or a glob: its files read one by one, stacked in file order
        return sources.concatenate(sources.data_files(path), lambda file: load_table(file, nrows=nrows), nrows)
    if not path.exists():
        raise DataError(f"{path}: file does not exist.")
    kind = file_format(path)
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty (0 bytes); it needs a header and at least one data row.")
    if kind == "csv":
        frame = _read_csv(path, nrows)
    elif kind == "parquet":
        frame = _read_parquet(path)
    elif kind == "excel":
        frame = _read_excel(path, nrows)
    elif kind == "jsonl":
        frame = _read_jsonl(path, nrows)
    else:
        frame = _read_sql(path, query)
    if nrows:
        frame = frame.head(nrows)
    if kind != "csv":
        frame = _normalize_missing(frame)
    if frame.shape[1] == 0:
        raise DataError(f"{path}: no columns found; the file needs a header line naming the columns.")
    if len(frame) == 0:
        raise DataError(f"{path}: header only, no data rows (columns: {', '.join(map(str, frame.columns[:10]))}).")
    frame.columns = [str(name).strip() for name in frame.columns]
    return frame


def read_columns(path: str | Path, query: str | None = None) -> list[str]:
    """Column names of a table, reading as little of it as possible; a folder or glob's files must all hold the
    same columns (``DataError`` names the first file that differs)."""
    path = Path(path)
    if sources.is_multi_file(path):
        files = sources.data_files(path)
        columns = read_columns(files[0])
        for other in files[1:]:
            names = read_columns(other)
            if set(names) != set(columns):
                raise DataError(f"{other}: its columns differ from {files[0].name}'s (lacks "
                                f"{sorted(set(columns) - set(names))}, adds {sorted(set(names) - set(columns))}); "
                                "every file of a folder or glob must hold the same columns.")
        return columns
    if file_format(path) == "parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    return [str(c) for c in load_table(path, query=query, nrows=5).columns]


