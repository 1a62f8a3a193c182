"""Reading tabular data from files and databases into pandas: the one reader every path that reads a table goes through.

``load_table`` reads a whole table (the pipeline's steps), ``iter_table`` the same file in chunks
(``mlh predict``), both through the same per-format readers (``mlhelpers.core.readers``): CSV files have
their encoding, delimiter and decimal mark detected (``mlhelpers.core.sniff``); ``NA``, empty, ``null``
and ``?`` read as missing in every format; Excel workbooks with several sheets need ``sheet``. Every
error is a ``DataError`` naming the file, the problem and the fix.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from mlhelpers.core import readers, sources, sql
from mlhelpers.core.sniff import (COMPRESSION_SUFFIXES, MISSING_MARKERS, SQL_SUFFIXES, CsvFormat, DataError,
                                  check_unique_names, file_format, sniff_csv)

__all__ = ["DataError", "CsvFormat", "MISSING_MARKERS", "COMPRESSION_SUFFIXES", "SQL_SUFFIXES", "file_format",
           "sniff_csv", "check_data_file", "check_flat", "load_table", "iter_table", "read_columns", "missing_as_nan"]

_check_duplicate_names = check_unique_names


def check_data_file(path: str | Path, sheet: str | int | None = None) -> str:
    """The file's format, after refusing what cannot be a data file: a missing path, a folder, an empty
    file, an unknown extension, ``sheet`` on anything but an Excel workbook. Cheap: reads nothing."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file does not exist.")
    if path.is_dir():
        inside = sorted(child.name for child in path.iterdir())
        shown = ", ".join(inside[:5]) + (", ..." if len(inside) > 5 else "")
        raise DataError(f"{path}: is a folder, not a data file; point at one file inside it"
                        + (f" (it holds: {shown})." if inside else " (it is empty)."))
    kind = file_format(path)
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty (0 bytes); it needs a header and at least one data row.")
    if sheet is not None and kind != "excel":
        raise DataError(f"{path}: data_sheet ({sheet!r}) applies to Excel workbooks only, and this is a {kind} "
                        "file; remove data_sheet.")
    return kind


def _read_sql(path: Path, query: str | None) -> pd.DataFrame:
    """Run ``query`` as a read of the database ``path`` (``mlhelpers.core.sql``: nothing else is reachable)."""
    if not query:
        raise DataError(f"{path}: a database needs a query; set data_query, e.g. 'SELECT * FROM my_table'.")
    if path.suffix.lower() == ".duckdb":
        return _read_duckdb(path, query)
    # SQLite through the standard library: DuckDB's sqlite extension would need a download.
    import sqlite3

    denied: list[str] = []
    try:
        with open(path, "rb") as handle:
            if not handle.read(16).startswith(b"SQLite format 3"):
                raise DataError(f"{path}: not a SQLite database (wrong header); check the file or its extension.")
        connection, denied = sql.sqlite_read_only(path)
        try:
            cursor = connection.execute(query)
            names = [column[0] for column in cursor.description or []]
            _check_duplicate_names(path, names)
            return pd.DataFrame.from_records(cursor.fetchall(), columns=names)
        finally:
            connection.close()
    except (sqlite3.Error, sqlite3.Warning) as exc:
        if denied or "attach" in str(exc).lower():
            raise DataError(sql.not_a_read(path, denied[0] if denied else "ATTACH")) from None
        raise DataError(f"{path}: the query failed: {exc}; check data_query (table and column names).") from None


def _read_duckdb(path: Path, query: str) -> pd.DataFrame:
    import duckdb

    try:
        connection = duckdb.connect(str(path), read_only=True, config=sql.DUCKDB_READ_ONLY)
    except duckdb.Error as exc:
        raise DataError(f"{path}: not a readable DuckDB database ({str(exc).splitlines()[0]}).") from None
    try:
        result = connection.execute(query)
        if result.description is None:  # a statement, not a query
            raise DataError(sql.not_a_read(path, "a statement that returns no rows"))
        _check_duplicate_names(path, [column[0] for column in result.description])
        return result.df()
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0]
        if isinstance(exc, duckdb.PermissionException) or "configuration" in first or "read-only mode" in first:
            raise DataError(sql.not_a_read(path, first)) from None
        raise DataError(f"{path}: the query failed: {first}; check data_query (table and column names).") from None
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


def missing_as_nan(frame: pd.DataFrame) -> pd.DataFrame:
    """Every missing value in a text column as ``np.nan`` (never ``None`` or ``pd.NA``); returns ``frame``.

    scikit-learn's encoders take only NaN as missing: ``None`` is an ordinary category to them (its own
    code, or the infrequent one, instead of ``encoded_missing_value``), so a pipeline fitted on ``None``
    answered differently for NaN, and no exported format can match both (issue 9.1). pyarrow's CSV
    engine, Parquet, JSON lines and SQL give ``None``, pandas' C engine NaN: one representation whatever
    the reader, and the same one at scoring time (``core.schema.check_rows``). String-dtype columns
    (``pd.NA``) become object columns.
    """
    for name, dtype in frame.dtypes.items():
        if dtype == object or isinstance(dtype, pd.StringDtype):
            column = frame[name]
            absent = column.isna()
            if absent.any() or dtype != object:
                frame[name] = column.astype(object).where(~absent, np.nan)
    return frame


_NESTED = (list, tuple, dict, set, np.ndarray)


def check_flat(path: Path, frame: pd.DataFrame) -> None:
    """Refuse columns holding lists, arrays or objects (a Parquet list or struct column, a JSON value that is an
    array or object): no step can use one as a feature, and they failed deep inside explore (``unhashable type:
    'dict'``, ``setting an array element with a sequence``) after ``mlh validate`` had said ok."""
    from pandas.api.types import infer_dtype

    nested = {}
    for name in frame.columns[frame.dtypes == object]:
        column = frame[name]
        if infer_dtype(column, skipna=True) not in ("mixed", "mixed-integer", "unknown-array"):
            continue  # C-level scan: flat text, numbers or dates; only mixed columns are checked value by value
        hits = column[column.map(lambda value: isinstance(value, _NESTED))]
        if len(hits):
            nested[name] = hits.iloc[0]
    if nested:  # no counts: read_columns sees only a table's first rows
        raise DataError(readers.nested_columns(path, {name: f"e.g. {_short(value)}" for name, value in nested.items()}))


def _short(value: object) -> str:
    text = repr(value.tolist() if isinstance(value, np.ndarray) else value)
    return text if len(text) <= 60 else text[:57] + "..."


def _finish(path: Path, frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    if kind not in ("csv", "excel"):  # CSV and Excel cells are single values; Parquet, JSON and SQL may nest
        check_flat(path, frame)
    if kind != "csv":
        frame = _normalize_missing(frame)
    frame = missing_as_nan(frame)
    frame.columns = [str(name).strip() for name in frame.columns]
    return frame


def load_table(path: str | Path, query: str | None = None, nrows: int | None = None,
               sheet: str | int | None = None) -> pd.DataFrame:
    """Read a whole table (or its first ``nrows`` rows) from a file or a SQL query.

    ``sheet`` names the sheet (or its 0-based index) of an Excel workbook with several. Returns the
    DataFrame as read (no dtype changes beyond missing markers; missing text values are ``np.nan``, see
    ``missing_as_nan``; ``mlhelpers.core.values`` converts values). Raises ``DataError`` naming the file
    and the problem: missing, a folder, empty, header only, binary or wrong format, truncated archive,
    duplicate column names, unreadable encoding, a JSON line that is no object, a workbook with several
    sheets and no ``sheet``.
    """
    path = Path(path)
    if sources.is_multi_file(path):  # a folder or a glob: its files read one by one, stacked in file order
        return sources.concatenate(sources.data_files(path), lambda file: load_table(file, nrows=nrows), nrows)
    kind = check_data_file(path, sheet)
    if kind == "csv":
        frame = readers.read_csv(path, nrows)[0]
    elif kind == "parquet":
        frame = readers.read_parquet(path)
    elif kind == "excel":
        frame = readers.read_excel(path, nrows, sheet)
    elif kind == "jsonl":
        frame = readers.read_jsonl(path, nrows)
    else:
        frame = _read_sql(path, query)
    if nrows:
        frame = frame.head(nrows)
    if frame.shape[1] == 0:
        raise DataError(f"{path}: no columns found; the file needs a header line naming the columns.")
    if len(frame) == 0:
        raise DataError(f"{path}: header only, no data rows (columns: {', '.join(map(str, frame.columns[:10]))}).")
    return _finish(path, frame, kind)


def iter_table(path: str | Path, chunk_rows: int = 50_000, *, query: str | None = None,
               sheet: str | int | None = None, dtypes: dict[str, str] | None = None,
               keep_blank_lines: bool = False) -> Iterator[pd.DataFrame]:
    """The table in chunks of at most ``chunk_rows`` rows (bounded memory for CSV, Parquet and JSON lines;
    Excel and SQL are read whole, then cut), read exactly as ``load_table`` reads it.

    ``dtypes`` (column -> ``"text"`` or ``"number"``) fixes how those columns of a CSV file are read in
    every chunk (see ``mlhelpers.core.readers.iter_csv``); ``keep_blank_lines`` keeps a CSV's blank lines as
    empty rows. Always yields at least one frame (an empty one with the columns for a header-only file).
    A folder or glob yields its files' chunks one file after another (as ``load_table`` stacks them). File
    problems raise ``DataError`` at the call, before any chunk (for a folder: its first file's problems and
    files whose columns differ).
    """
    path = Path(path)
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}.")
    if sources.is_multi_file(path):
        files = sources.data_files(path)
        read_columns(path)  # files whose columns differ are refused before any chunk
        first = iter_table(files[0], chunk_rows, dtypes=dtypes, keep_blank_lines=keep_blank_lines)
        # one file open at a time: the later files are opened only when the earlier ones are read
        later = (chunk for file in files[1:]
                 for chunk in iter_table(file, chunk_rows, dtypes=dtypes, keep_blank_lines=keep_blank_lines))
        return itertools.chain(first, later)
    kind = check_data_file(path, sheet)
    if kind == "csv":
        chunks = readers.iter_csv(path, chunk_rows, dtypes, keep_blank_lines)
    elif kind == "parquet":
        chunks = readers.iter_parquet(path, chunk_rows)
    elif kind == "jsonl":
        chunks = readers.iter_jsonl(path, chunk_rows)
    else:
        whole = readers.read_excel(path, sheet=sheet, dtypes=dtypes) if kind == "excel" else _read_sql(path, query)
        # copies: each chunk is cleaned in place (missing_as_nan), which on a slice of ``whole`` would warn
        chunks = (whole.iloc[start:start + chunk_rows].copy() for start in range(0, max(len(whole), 1), chunk_rows))
    first = next(chunks, None)  # file problems surface here, at the call
    if first is None or first.shape[1] == 0:
        raise DataError(f"{path}: no columns found; the file needs a header line naming the columns.")
    return _chain(path, first, chunks, kind)


def _chain(path: Path, first: pd.DataFrame, rest: Iterator[pd.DataFrame], kind: str) -> Iterator[pd.DataFrame]:
    yield _finish(path, first, kind)
    for chunk in rest:
        yield _finish(path, chunk, kind)


def read_columns(path: str | Path, query: str | None = None, sheet: str | int | None = None) -> list[str]:
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
    if check_data_file(path, sheet) == "parquet":
        return readers.parquet_columns(path)
    return [str(c) for c in load_table(path, query=query, nrows=5, sheet=sheet).columns]
