"""Database connections for ``data_query`` that can only read: the query sees its database's tables and
nothing else (no other file read or written, no attached database, no extension, no setting changed).

``mlhelpers.core.io`` runs every query through these, so ``mlh validate`` and every step read alike.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DUCKDB_READ_ONLY", "sqlite_read_only", "not_a_read"]

# DuckDB's own switches: no file but the database itself is read or written (COPY, read_csv, ATTACH,
# INSTALL/LOAD all refused), and the query cannot switch that back on.
DUCKDB_READ_ONLY = {"enable_external_access": False, "autoinstall_known_extensions": False,
                    "autoload_known_extensions": False, "lock_configuration": True}

# What a read does, in SQLite's authorizer terms; everything else (writes, ATTACH and VACUUM INTO, PRAGMA,
# transactions, schema changes) is denied.
_SQLITE_READ_ACTIONS = ("SQLITE_SELECT", "SQLITE_READ", "SQLITE_FUNCTION", "SQLITE_RECURSIVE")


def sqlite_read_only(path: Path):
    """A SQLite connection to ``path`` that only reads, and the list its authorizer appends denied actions to.

    ``mode=ro`` alone still lets ATTACH (and VACUUM INTO, which attaches) create and write other files, so
    no database may be attached at all and an authorizer lets a statement only select and read.
    """
    import sqlite3

    allowed = {getattr(sqlite3, name) for name in _SQLITE_READ_ACTIONS}
    names = {value: name.removeprefix("SQLITE_").replace("_", " ") for name, value in vars(sqlite3).items()
             if name.startswith("SQLITE_") and not name.startswith("SQLITE_LIMIT") and isinstance(value, int)
             and name not in ("SQLITE_OK", "SQLITE_DENY", "SQLITE_IGNORE")}
    denied: list[str] = []

    def authorize(action: int, *_details) -> int:
        if action in allowed:
            return sqlite3.SQLITE_OK
        denied.append(names.get(action, f"action {action}"))
        return sqlite3.SQLITE_DENY

    connection = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
    connection.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    connection.set_authorizer(authorize)
    return connection, denied


def not_a_read(path: Path, refused: str) -> str:
    """The message for a query that tried more than reading its database; ``refused`` says what."""
    for prefix in ("Permission Error: ", "Invalid Input Error: "):
        refused = refused.removeprefix(prefix)
    return (f"{path}: data_query may only read this database's own tables; refused: {refused}. "
            "Write a SELECT over its tables.")
