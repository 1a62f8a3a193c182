"""data_path as a folder or a glob: its files in natural order, one table under the pandas engine, a content
fingerprint, and a clear refusal of every folder that is not one table."""

import os

import pandas as pd
import pytest

from mlhelpers.core.io import DataError, load_table, read_columns
from mlhelpers.core.sources import SourceError, data_files, data_fingerprint, source_exists
from mlhelpers.core.tables import file_sha256


@pytest.mark.filterwarnings("ignore:Mismatched null-like values")  # Parquet gives None where CSV gave NaN
def test_a_folder_is_its_files_in_natural_order_and_loads_as_one_table(credit, write_parts, tmp_path):
    folder = write_parts(credit, tmp_path / "credit", 12)
    assert [f.name for f in data_files(folder)][:3] == ["part.0.parquet", "part.1.parquet", "part.2.parquet"]
    assert data_files(folder)[-1].name == "part.11.parquet"  # not between part.1 and part.2
    frame = load_table(folder)
    pd.testing.assert_frame_equal(frame, credit.reset_index(drop=True), check_dtype=False)
    assert read_columns(folder) == list(credit.columns)


def test_a_glob_of_csv_files_loads_like_the_folder(credit, write_parts, tmp_path):
    folder = write_parts(credit, tmp_path / "csv", 3, kind="csv")
    (folder / "notes.txt").write_text("not data")
    frame = load_table(folder / "part.*.csv")
    assert frame.shape == credit.shape and frame["Income"].isna().sum() == credit["Income"].isna().sum()
    assert source_exists(folder / "*.csv") and not source_exists(folder / "*.parquet")


def test_writer_markers_and_hidden_files_are_not_rows(credit, write_parts, tmp_path):
    folder = write_parts(credit.head(100), tmp_path / "spark", 2)
    (folder / "_SUCCESS").write_text("")
    (folder / ".part.0.parquet.crc").write_text("x")
    assert len(load_table(folder)) == 100


@pytest.mark.parametrize("setup, message", [
    (lambda d: None, "the folder is empty"),
    (lambda d: (d / "year=2013").mkdir(), r"nested folders .* point data_path at a glob"),
    (lambda d: (d / "a.xlsx").write_text("x"), "is neither Parquet"),
    (lambda d: [(d / "a.csv").write_text("x\n1\n"), (d / "b.parquet").write_text("x")], "mixes Parquet and CSV"),
])
def test_folders_that_are_not_one_table_are_refused(tmp_path, setup, message):
    folder = tmp_path / "data"
    folder.mkdir()
    setup(folder)
    with pytest.raises(SourceError, match=message):
        data_files(folder)


def test_a_pattern_matching_nothing_is_refused(tmp_path):
    with pytest.raises(SourceError, match="the pattern matches no file"):
        load_table(tmp_path / "*.parquet")


def test_files_with_other_columns_are_refused_naming_the_file(credit, write_parts, tmp_path):
    folder = write_parts(credit, tmp_path / "mixed", 2)
    credit.drop(columns=["Income"]).head(10).to_parquet(folder / "part.2.parquet", index=False)
    with pytest.raises(DataError, match=r"part.2.parquet: its columns differ .*lacks \['Income'\]"):
        read_columns(folder)
    with pytest.raises(SourceError, match="part.2.parquet: its columns differ"):
        load_table(folder)


def test_the_fingerprint_sees_every_byte_and_every_file(credit, write_parts, tmp_path):
    folder = write_parts(credit, tmp_path / "fp", 3)
    first = data_fingerprint(folder)
    assert first["files"] == 3 and first["bytes"] == sum(f.stat().st_size for f in folder.iterdir())
    assert data_fingerprint(folder / "*.parquet")["sha256"] == first["sha256"]
    os.utime(folder / "part.1.parquet", (0, 0))  # a touched file with the same bytes: the same data
    assert data_fingerprint(folder)["sha256"] == first["sha256"]
    (folder / "part.1.parquet").rename(folder / "part.9.parquet")
    renamed = data_fingerprint(folder)["sha256"]
    assert renamed != first["sha256"]
    credit.head(5).to_parquet(folder / "part.10.parquet", index=False)
    assert data_fingerprint(folder)["sha256"] not in (first["sha256"], renamed)
    single = data_fingerprint(folder / "part.0.parquet")
    assert single["sha256"] == file_sha256(folder / "part.0.parquet") and single["files"] == 1


def test_a_parquet_dataset_folder_is_read_but_a_folder_named_like_a_csv_file_is_refused(credit, write_parts, tmp_path):
    dataset = write_parts(credit, tmp_path / "credit.parquet", 3)  # as Dask and Spark name their output folders
    assert load_table(dataset).equals(load_table(write_parts(credit, tmp_path / "plain", 3)))
    mistaken = write_parts(credit, tmp_path / "credit.csv", 2, kind="csv")
    with pytest.raises(DataError, match=r"credit\.csv: is a folder, not a data file; point at one file inside it"):
        load_table(mistaken)


def test_an_existing_path_with_glob_characters_is_read_as_written(credit, tmp_path):
    folder = tmp_path / "odd [1] name?"
    folder.mkdir()
    credit.head(30).to_csv(folder / "credit.csv", index=False)
    assert source_exists(folder / "credit.csv") and len(load_table(folder / "credit.csv")) == 30
