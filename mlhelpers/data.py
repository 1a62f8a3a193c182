"""Loading tabular data from files and databases into pandas."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

SQL_SUFFIXES = {".db", ".sqlite", ".sqlite3", ".duckdb"}


class DataError(ValueError):
    """A data file that cannot be read: the message names the file and the problem."""


def _format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in {".gz", ".bz2", ".zip", ".xz", ".zst"}:
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


def load_table(path: str | Path, query: str | None = None, nrows: int | None = None) -> pd.DataFrame:
    """Read a whole table (or its first ``nrows`` rows) from a file or a SQL query."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file does not exist.")
    kind = _format(path)
    if kind == "csv":
        return pd.read_csv(path, sep=None, engine="python", nrows=nrows) if nrows else pd.read_csv(path)
    if kind == "parquet":
        frame = pd.read_parquet(path)
    elif kind == "excel":
        frame = pd.read_excel(path, nrows=nrows)
    elif kind == "jsonl":
        frame = pd.read_json(path, lines=True, nrows=nrows)
    else:
        frame = _read_sql(path, query)
    return frame.head(nrows) if nrows else frame


def _read_sql(path: Path, query: str | None) -> pd.DataFrame:
    if not query:
        raise DataError(f"{path}: a database needs a query; set data_query, e.g. 'SELECT * FROM my_table'.")
    import duckdb

    connection = duckdb.connect()
    try:
        if path.suffix.lower() != ".duckdb":
            connection.execute("INSTALL sqlite; LOAD sqlite;")
            connection.execute(f"ATTACH '{path}' AS source (TYPE sqlite, READ_ONLY); USE source;")
        else:
            connection.execute(f"ATTACH '{path}' AS source (READ_ONLY); USE source;")
        return connection.execute(query).df()
    finally:
        connection.close()


def read_columns(path: str | Path, query: str | None = None) -> list[str]:
    """Column names of a table, reading as little of it as possible."""
    path = Path(path)
    if _format(path) == "parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    return [str(c) for c in load_table(path, query=query, nrows=5).columns]


def drop_missing_target(frame: pd.DataFrame, target: str) -> tuple[pd.DataFrame, int]:
    """Rows whose target is known, and how many were dropped."""
    known = frame[target].notna()
    return frame.loc[known], int((~known).sum())


def file_sha256(path: str | Path) -> str:
    """Content hash of a file, so a changed input is visible in the manifest."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
