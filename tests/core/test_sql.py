"""data_query is a read: it sees its database's tables and nothing else, in `mlh validate` and in every step
(both read through mlhelpers.core.io.load_table)."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from mlhelpers.core.io import DataError, load_table
from mlhelpers.core.params import ParamsError, validate_params


@pytest.fixture
def databases(tmp_path, credit):
    """The credit table in a SQLite and a DuckDB database, and a file outside both that a query must not see."""
    import duckdb

    sqlite_path = tmp_path / "credit.db"
    with sqlite3.connect(sqlite_path) as connection:
        credit.to_sql("credit", connection, index=False)
    duck_path = tmp_path / "credit.duckdb"
    with duckdb.connect(str(duck_path)) as connection:
        connection.execute("CREATE TABLE credit AS SELECT * FROM credit")
    secret = tmp_path / "secret.csv"
    secret.write_text("Status,password\ngood,hunter2\n")
    return sqlite_path, duck_path, secret


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_plain_queries_still_read(databases, credit):
    sqlite_path, duck_path, _ = databases
    assert len(load_table(sqlite_path, query="SELECT * FROM credit")) == len(credit)
    grouped = load_table(duck_path, query="WITH c AS (SELECT Status, Age FROM credit) "
                                          "SELECT Status, avg(Age) AS age FROM c GROUP BY Status ORDER BY Status")
    assert list(grouped["Status"]) == ["bad", "good"]
    recursive = load_table(sqlite_path, query="WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                                              "WHERE i < 5) SELECT i, upper('x') AS x FROM n")
    assert list(recursive["i"]) == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("query, tried", [
    ("COPY (SELECT * FROM credit) TO '{out}'", "Cannot access file"),
    ("SELECT * FROM read_csv('{secret}')", "Cannot access file"),
    ("SELECT * FROM '{secret}'", "Cannot access file"),
    ("SELECT * FROM read_text('/etc/passwd')", "Cannot access file"),
    ("ATTACH '{out}' AS other", "Cannot access file"),
    ("INSTALL sqlite", "Cannot access directory"),
    ("LOAD sqlite", "Loading external extensions is disabled"),
    ("SET enable_external_access = true", "Cannot change configuration option"),
    ("SELECT 1 AS Status; COPY (SELECT 1) TO '{out}'", "Cannot access file"),
    ("CREATE TABLE copy AS SELECT * FROM credit", 'Cannot execute statement of type "CREATE"'),
])
def test_duckdb_queries_cannot_reach_other_files(databases, tmp_path, query, tried):
    _, duck_path, secret = databases
    out = tmp_path / "written.csv"
    before = _sha(duck_path)
    with pytest.raises(DataError, match=r"data_query may only read this database's own tables; refused: "
                                        + tried.split()[0]) as caught:
        load_table(duck_path, query=query.format(out=out, secret=secret))
    assert tried in str(caught.value)
    assert not out.exists() and _sha(duck_path) == before


@pytest.mark.parametrize("query, tried", [
    ("ATTACH 'file:{secret_db}?mode=ro' AS other", "ATTACH"),
    ("ATTACH 'file:{out}?mode=rwc' AS other", "ATTACH"),   # would create a new database file
    ("VACUUM INTO '{out}'", "ATTACH"),                      # would copy the database out
    ("INSERT INTO credit (Status) VALUES ('x')", "INSERT"),
    ("DELETE FROM credit", "DELETE"),
    ("PRAGMA writable_schema = ON", "PRAGMA"),
    ("DROP TABLE credit", "(DROP TABLE|DELETE)"),  # SQLite asks about the schema row it deletes first
])
def test_sqlite_queries_cannot_reach_other_files(databases, tmp_path, query, tried):
    sqlite_path, _, _ = databases
    secret_db = tmp_path / "secret.db"
    with sqlite3.connect(secret_db) as connection:
        connection.execute("CREATE TABLE s (password TEXT)")
    out = tmp_path / "written.db"
    before = _sha(sqlite_path)
    with pytest.raises(DataError, match=f"data_query may only read this database's own tables; refused: {tried}"):
        load_table(sqlite_path, query=query.format(out=out, secret_db=secret_db))
    assert not out.exists() and _sha(sqlite_path) == before


def test_mlh_validate_runs_the_query_the_same_way(databases, tmp_path):
    sqlite_path, duck_path, secret = databases
    out = tmp_path / "written.csv"
    for path, query in ((duck_path, f"COPY (SELECT 1 AS Status) TO '{out}'"),
                        (duck_path, f"SELECT * FROM read_csv('{secret}')"),
                        (sqlite_path, f"VACUUM INTO '{out}'")):
        with pytest.raises(DataError, match="data_query may only read"):
            validate_params({"data_path": str(path), "data_query": query, "target": "Status"})
        assert not out.exists()
    with pytest.raises(ParamsError, match="key 'target': 'password' is not a column"):
        validate_params({"data_path": str(duck_path), "data_query": "SELECT * FROM credit", "target": "password"})


def test_a_database_path_with_uri_characters_opens_read_only(tmp_path, credit):
    folder = tmp_path / "odd ?#% name"
    folder.mkdir()
    path = folder / "credit.db"
    with sqlite3.connect(path) as connection:
        credit.head(20).to_sql("credit", connection, index=False)
    assert len(load_table(path, query="SELECT * FROM credit")) == 20
    with pytest.raises(DataError, match="refused: INSERT"):
        load_table(path, query="INSERT INTO credit (Status) VALUES ('x')")
