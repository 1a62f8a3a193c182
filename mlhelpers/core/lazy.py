"""The Dask engine's reader: ``data_path`` as a lazy Dask DataFrame, and what steps pull from it (statistics over
every row, seeded samples, the held-out partitions).

Next to the one reader (``mlhelpers.core.io``): the same files (``mlhelpers.core.sources``), in the same
order, with the same missing markers and CSV dialect. Values reach pandas code the way the pandas engine reads
them (``pandas_like``) and scikit-learn the way it expects them (``sklearn_frame``), so both engines feed a
pipeline identical inputs. Partitions are the files (or their row groups): they are the unit the held-out
share is drawn from, so they must not change between steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlhelpers.core import colstats, hashsample, io, readers, sniff, sources

__all__ = ["LazyTable", "LazyReadError", "read_lazy", "pandas_like", "sklearn_frame", "partition_lengths",
           "column_summary", "lazy_sample", "sample_candidates", "smallest_rows", "partition_split"]

LAZY_FORMATS = ("parquet", "csv")
CSV_BLOCKSIZE = "64MB"       # uncompressed CSV is cut into blocks of this size (one partition each)
CSV_SAMPLE_BYTES = 1_000_000  # Dask types every CSV column from the first rows (at most this many bytes) ...
CSV_SAMPLE_ROWS = 10_000      # ... of the first file: this many (its default, 10, made a sparse column a float)
MIN_PARTITIONS = 3           # the baseline holds out whole partitions: training, validation and test need one each
SMALL_TABLE_BYTES = 64e6     # data files this small that read as fewer partitions are cut into SMALL_TABLE_PARTITIONS
SMALL_TABLE_PARTITIONS = 10


class LazyReadError(ValueError):
    """The data cannot be read lazily: the message names the file and the fix."""


@dataclass
class LazyTable:
    """``data_path`` as Dask reads it: the frame, its files and format, and the rows (known up front for Parquet)."""

    frame: Any                       # dask.dataframe.DataFrame
    files: list[Path]
    format: str
    rows: int | None                 # from the Parquet footers; None for CSV until counted
    lengths: list[int] | None = None  # rows per partition, once known
    object_bools: tuple[str, ...] = ()  # booleans with nulls that pandas reads as objects (no pandas metadata)

    @property
    def npartitions(self) -> int:
        return self.frame.npartitions


def read_lazy(path: str | Path, query: str | None = None) -> LazyTable:
    """``path`` (a Parquet or CSV file, a folder of them or a glob) as a lazy Dask DataFrame.

    Parquet: one partition per file, or per group of row groups for big files; booleans with missing values
    read as pandas' ``boolean`` (Dask's metadata says ``bool`` while the partitions hold objects). CSV: the
    dialect of the first file (``mlhelpers.core.io.sniff_csv``), the same missing markers as the pandas
    engine, numbers as floats (a later block may hold the first missing value of an integer column), lines
    ending at "\n" when a field holds a bare "\r" (``mlhelpers.core.readers.line_ends``).
    A table under ``SMALL_TABLE_BYTES`` on disk that reads as fewer than ``MIN_PARTITIONS`` partitions is cut into
    ``SMALL_TABLE_PARTITIONS`` by rows. Raises ``LazyReadError`` for formats Dask cannot split (Excel, JSON lines,
    databases) and files whose columns differ.
    """
    import dask.dataframe as dd

    if query:
        raise LazyReadError(f"{path}: engine: dask reads Parquet or CSV files, not a database query; export the "
                            "query's result to Parquet (e.g. DuckDB's COPY ... TO 'x.parquet') or use engine: pandas.")
    files = sources.data_files(path)
    kind = sources.files_format(files) if sources.is_multi_file(path) else _single_format(files[0])
    names = [str(f) for f in files]
    if kind == "parquet":
        rows, lengths = _parquet_layout(files)
        frame = dd.read_parquet(names)
        bools = [name for name, dtype in frame.dtypes.items() if dtype == bool and _has_nulls(files, name)]
        if bools:
            frame = frame.astype({name: "boolean" for name in bools})
    else:
        fmt = io.sniff_csv(files[0])
        compressed = files[0].suffix.lower() in io.COMPRESSION_SUFFIXES
        options = dict(sep=fmt.delimiter, decimal=fmt.decimal, thousands=fmt.thousands, encoding=fmt.encoding,
                       na_values=io.MISSING_MARKERS, keep_default_na=True, **_csv_line_ends(files))
        frame = dd.read_csv(names, assume_missing=True, blocksize=None if compressed else CSV_BLOCKSIZE,
                            dtype=_empty_in_sample(files[0], options), sample=CSV_SAMPLE_BYTES,
                            sample_rows=CSV_SAMPLE_ROWS, **options)
        frame.columns = [str(name).strip() for name in frame.columns]
        rows, lengths = None, None
    if frame.npartitions < MIN_PARTITIONS and sum(f.stat().st_size for f in files) <= SMALL_TABLE_BYTES:
        # one small file (a compressed CSV, a Parquet file of one row group) is one partition: its rows are cut,
        # not its bytes (a CSV block cut inside a quoted field would break rows), in order and lazily
        frame = frame.repartition(npartitions=SMALL_TABLE_PARTITIONS)
    if lengths is not None and len(lengths) != frame.npartitions:  # big files split by row groups
        lengths = None
    return LazyTable(frame=frame, files=files, format=kind, rows=rows, lengths=lengths,
                     object_bools=tuple(bools) if kind == "parquet" else ())


def _empty_in_sample(path: Path, options: dict) -> dict[str, Any]:
    """Types for the columns with no value in the rows Dask types the columns from (``CSV_SAMPLE_ROWS`` within
    ``CSV_SAMPLE_BYTES``): Dask reads such a column as float, so the first text in a later row stopped the read
    ("Mismatched dtypes": openintro's bird strikes, whose ``effect`` is 90% missing). Their type is the one pandas
    gives them over the whole first file (text, or float: a survey's questions not asked in its early years)."""
    import fsspec

    with fsspec.open(str(path), "rb", compression="infer") as handle:  # as Dask opens it: decompressed
        head = handle.read(CSV_SAMPLE_BYTES)
    if b"\n" not in head:
        return {}
    sample = pd.read_csv(BytesIO(head[:head.rfind(b"\n") + 1]), nrows=CSV_SAMPLE_ROWS, **options)
    empty = [str(name) for name in sample.columns[sample.isna().all().to_numpy()]]
    if not empty:
        return {}
    whole = pd.read_csv(path, usecols=lambda name: str(name) in empty, **options)
    return {str(name): "float64" if column.dtype.kind in "iuf" else object for name, column in whole.items()}


def _csv_line_ends(files: list[Path]) -> dict:
    r"""The pandas engine's line ends for the files (one option for all: Dask reads them with one set): lines end
    at "\n" when a file's text holds a bare "\r" (pandas' to_csv leaves it unquoted; the parser cut the row
    there). Refuses files that mix such text with "\r\n" line ends: "\n" would leave a "\r" in their last
    column, and "\r" splits the others' rows."""
    bare = [path for path in files if readers.line_ends(path)]
    if not bare:
        return {}
    crlf = [path for path in files if b"\r\n" in sniff.head_bytes(path)]
    if crlf:
        raise LazyReadError(f"{bare[0]} holds a carriage return inside a field (lines end at \\n) while {crlf[0]} "
                            "ends its lines with \\r\\n; engine: dask reads all files with one line end: rewrite "
                            "the files with the same line ends (e.g. pandas: read each one, then to_parquet) or "
                            "use engine: pandas.")
    return readers.line_ends(bare[0])


def _has_nulls(files: list[Path], name: str) -> bool:
    """Whether a Parquet boolean column holds a null in any file (the footers' statistics; unknown counts as yes)."""
    import pyarrow.parquet as pq

    for path in files:
        meta = pq.ParquetFile(path).metadata
        index = meta.schema.to_arrow_schema().get_field_index(name)
        for group in range(meta.num_row_groups):
            stats = meta.row_group(group).column(index).statistics
            if stats is None or not stats.has_null_count or stats.null_count:
                return True
    return False


def _single_format(path: Path) -> str:
    kind = io.file_format(path)
    if kind not in LAZY_FORMATS:
        raise LazyReadError(f"{path}: engine: dask reads Parquet or CSV files, and this is a {kind} file; convert it "
                            "to Parquet (pandas: read it, then DataFrame.to_parquet) or use engine: pandas.")
    return kind


def _parquet_layout(files: list[Path]) -> tuple[int, list[int]]:
    """Rows in all and per file, from the footers (no data read); refuses files whose columns differ from the
    first file's."""
    import pyarrow.parquet as pq

    lengths, columns = [], None
    for path in files:
        try:
            meta = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
            raise LazyReadError(readers.unreadable_parquet(path, exc)) from None
        names = list(meta.schema_arrow.names)
        if columns is None:
            columns = names
            duplicates = sorted({name for name in names if names.count(name) > 1})
            if duplicates:
                raise LazyReadError(f"{path}: duplicate column names {duplicates}; rename them so every column "
                                    "has a unique name.")
        elif set(names) != set(columns):
            missing, extra = sorted(set(columns) - set(names)), sorted(set(names) - set(columns))
            raise LazyReadError(f"{path}: its columns differ from {files[0].name}'s"
                                + (f" (lacks {missing})" if missing else "") + (f" (adds {extra})" if extra else "")
                                + "; every file of a folder or glob must hold the same columns.")
        lengths.append(meta.metadata.num_rows)
    return sum(lengths), lengths


def pandas_like(frame: pd.DataFrame, object_bools: tuple[str, ...] = ()) -> pd.DataFrame:
    """``frame`` with the dtypes the pandas engine reads the same file with: pyarrow strings as objects (missing
    as NaN, as ``io.missing_as_nan`` gives them); the nullable booleans named in ``object_bools`` (Parquet written without pandas metadata) as
    ``bool``, or as objects when a value is missing; other nullable booleans stay ``boolean``."""
    out = {}
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, pd.BooleanDtype) and name in object_bools:
            column = column.astype(bool) if not column.isna().any() else column.astype(object).where(column.notna(), np.nan)
        elif isinstance(column.dtype, (pd.StringDtype, pd.ArrowDtype)):
            column = column.astype(object).where(column.notna(), np.nan)
        out[name] = column
    return pd.DataFrame(out, index=frame.index)


def sklearn_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` as scikit-learn's encoders take it: pyarrow strings, nullable booleans and objects as objects with
    NaN for missing (``OrdinalEncoder`` refuses ``pd.NA``: "Got ['NAType', 'str']")."""
    out = {}
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, (pd.StringDtype, pd.BooleanDtype, pd.ArrowDtype)) or column.dtype == object:
            # one missing marker: None (pandas' Parquet reader) and NaN encode differently (measured: a
            # prediction moved by 0.13 for a row whose categories were None rather than NaN)
            column = column.astype(object).where(column.notna(), np.nan)
        out[name] = column
    return pd.DataFrame(out, index=frame.index)


# --------------------------------------------------------------------------- one pass over every row

def sample_candidates(frame: pd.DataFrame, partition: int, seed: int, threshold: int,
                      known: str | None = None) -> pd.DataFrame:
    """One partition's (``partition``: its number in the table) rows whose content key is below ``threshold``
    (``hashsample.keep_below``), only those where ``known`` is not missing; positions count every row of the
    partition. ``smallest_rows`` turns the candidates of all partitions into the sample. Runs on the workers."""
    positions = np.arange(len(frame)) if known is None else np.flatnonzero(frame[known].notna().to_numpy())
    candidates = hashsample.keep_below(frame.iloc[positions], seed, threshold, partition)
    candidates["_pos"] = positions[candidates["_pos"].to_numpy()]
    return candidates


def _summary_and_candidates(frame: pd.DataFrame, partition: int, seed: int, threshold: int | None,
                            known: str | None, summarize: bool = True) -> tuple[dict | None, pd.DataFrame | None, int]:
    """One partition's statistics, its sample candidates (positions counted in the whole partition) and rows."""
    candidates = None if threshold is None else sample_candidates(frame, partition, seed, threshold, known)
    return (colstats.summarize(frame) if summarize else None), candidates, len(frame)


def partition_lengths(table: LazyTable) -> list[int]:
    """Rows per partition: from the Parquet footers when each file is one partition, else counted (a pass)."""
    if table.lengths is None:
        table.lengths = [int(n) for n in table.frame.map_partitions(len).compute()]
    return table.lengths


def column_summary(table: LazyTable, *, sample_rows: int = 0, seed: int = 42, known: str | None = None,
                   partitions: list[int] | None = None,
                   all_counts: tuple[str, ...] = ()) -> tuple[dict[str, Any], pd.DataFrame | None]:
    """Statistics of every row (``mlhelpers.core.colstats.finalize``) and, with ``sample_rows``, the seeded
    content-hash sample of the rows whose ``known`` column is not missing: one pass over the data when the row
    count is known up front (Parquet footers), else two. ``partitions`` restricts both to those partitions.

    The sample's row labels are the rows' positions in the whole table (0-based, in file order), the labels the
    pandas engine gives the same rows. ``all_counts`` names columns whose every value count the report keeps
    (``colstats.finalize``). Only the merged statistics and the sample reach the client; the merges run on the
    workers.
    """
    import dask

    numbers = list(range(table.npartitions)) if partitions is None else list(partitions)
    frame = table.frame if partitions is None else table.frame.partitions[numbers]
    total = table.rows if partitions is None and known is None else None
    threshold = hashsample.sample_threshold(sample_rows, total) if sample_rows and total is not None else None
    parts = [dask.delayed(_summary_and_candidates, nout=3)(part, number, seed, threshold, known)
             for number, part in zip(numbers, frame.to_delayed())]
    summaries = [part[0] for part in parts]
    while len(summaries) > 1:  # a tree of merges on the workers; only the last dict reaches the client
        summaries = [dask.delayed(colstats.merge)(summaries[i], summaries[i + 1]) if i + 1 < len(summaries)
                     else summaries[i] for i in range(0, len(summaries), 2)]
    summary, pieces, lengths = dask.compute(summaries[0], [part[1] for part in parts], [part[2] for part in parts])
    if partitions is None:
        table.lengths = [int(n) for n in lengths]
    report = colstats.finalize(summary, all_counts=all_counts)
    if not sample_rows:
        return report, None
    wanted = report["rows"] - (report["columns"][known]["missing"] if known else 0)
    if threshold is None:  # the count was unknown before this pass: a second one keeps the candidates
        return report, lazy_sample(table, sample_rows, seed, total=wanted, known=known, partitions=partitions)
    return report, smallest_rows(table, list(pieces), sample_rows, min(sample_rows, wanted))


def lazy_sample(table: LazyTable, n: int, seed: int, *, total: int | None = None, known: str | None = None,
                partitions: list[int] | None = None) -> pd.DataFrame:
    """The ``n`` rows with the smallest content keys (``mlhelpers.core.hashsample``) of the table (or of its
    ``partitions``), in table order, labelled by their position in the table: the rows ``hash_sample`` takes
    from the same table in pandas. ``known`` keeps only rows where that column is not missing; ``total``
    (their count) is computed when not given (a pass)."""
    import dask

    numbers = list(range(table.npartitions)) if partitions is None else list(partitions)
    frame = table.frame if partitions is None else table.frame.partitions[numbers]
    if total is None:
        rows = frame if known is None else frame[~frame[known].isna()]
        total = int(rows.shape[0].compute())
    threshold = hashsample.sample_threshold(n, total)
    parts = [dask.delayed(_summary_and_candidates, nout=3)(part, number, seed, threshold, known, False)[1]
             for number, part in zip(numbers, frame.to_delayed())]
    (pieces,) = dask.compute(parts)
    return smallest_rows(table, list(pieces), n, min(n, total))


def smallest_rows(table: LazyTable, pieces: list[pd.DataFrame], n: int, expected: int) -> pd.DataFrame:
    """The ``n`` candidates (``sample_candidates`` of each partition) with the smallest keys, in table order,
    labelled by their position in the table, with the dtypes the pandas engine reads (``pandas_like``). Raises
    ``RuntimeError`` when the candidates are fewer than ``expected`` (``min(n, rows that qualify)``)."""
    candidates = pd.concat(pieces)
    if len(candidates) < expected:  # 6 standard deviations of slack: practically never
        raise RuntimeError(f"the seeded sample found {len(candidates)} candidate rows for {expected}; "
                           "rerun with another seed.")
    order = candidates.sort_values(["_key", "_part", "_pos"], kind="stable").head(n)
    chosen = order.sort_values(["_part", "_pos"], kind="stable")
    offsets = np.concatenate([[0], np.cumsum(partition_lengths(table))[:-1]])
    labels = offsets[chosen["_part"].to_numpy()] + chosen["_pos"].to_numpy()
    sample = chosen.drop(columns=["_key", "_part", "_pos"])
    sample.index = pd.Index(labels.astype(np.int64))
    return pandas_like(sample, table.object_bools)


def too_few_partitions(npartitions: int) -> str:
    return (f"the data has {npartitions} partition(s); engine: dask holds out whole partitions (test and "
            f"validation), so it needs at least {MIN_PARTITIONS}: split the data into more files (a compressed CSV "
            "or a Parquet file of one row group is one partition), or use engine: pandas.")


def partition_split(npartitions: int, test_size: float, seed: int, valid_size: float = 0.1) -> dict[str, list[int]]:
    """Partitions for training, validation (early stopping) and the held-out test, by a seeded permutation:
    ``test_size`` of them held out (at least one), ``valid_size`` for validation (at least one), the rest
    for training (at least one). Raises ``LazyReadError`` below three partitions."""
    if npartitions < MIN_PARTITIONS:
        raise LazyReadError(too_few_partitions(npartitions))
    order = np.random.default_rng(seed).permutation(npartitions)
    n_test = min(max(1, round(test_size * npartitions)), npartitions - 2)
    n_valid = min(max(1, round(valid_size * npartitions)), npartitions - n_test - 1)
    return {"train": sorted(order[n_test + n_valid:].tolist()),
            "valid": sorted(order[n_test:n_test + n_valid].tolist()),
            "test": sorted(order[:n_test].tolist())}
