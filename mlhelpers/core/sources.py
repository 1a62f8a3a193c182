"""``data_path`` as one file, a folder of Parquet (or CSV) files, or a glob: the files it names, in order, and
their fingerprint.

Both engines read the same files in the same order: the pandas engine concatenates them
(``mlhelpers.core.io.load_table``), the Dask engine reads them lazily (``mlhelpers.core.lazy``), one
partition per file or row group. The order is the natural order of the paths (``part.2`` before ``part.10``),
which fixes the row labels, the seeded sample and the held-out partitions under either engine.
"""

from __future__ import annotations

import glob
import hashlib
import re
from pathlib import Path
from typing import Any, Callable

import pandas as pd

__all__ = ["SourceError", "is_pattern", "is_multi_file", "data_files", "files_format", "source_exists",
           "concatenate", "data_fingerprint"]

# The formats a folder or a glob may hold (whole tables in one file stay with mlhelpers.core.io).
PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".tsv", ".csv.gz", ".tsv.gz", ".csv.bz2", ".csv.xz", ".csv.zst")
# Files that writers leave next to the data (Spark, Dask, Hadoop): never rows.
_MARKERS = {"_SUCCESS", "_metadata", "_common_metadata"}
_FINGERPRINT_BLOCK = 1 << 20


class SourceError(ValueError):
    """``data_path`` names no readable set of files: the message names the path and the fix."""


def is_pattern(path: str | Path) -> bool:
    """Whether ``path`` is a glob (``*``, ``?`` or ``[``), not a plain path: a path that exists as written is
    never a pattern (a folder named "odd ?#% name" holds a file, it matches nothing)."""
    return glob.has_magic(str(path)) and not Path(path).exists()


# A folder named like one of these files (x.csv/, x.xlsx/) is a mistake the io module refuses with what it
# holds; a Parquet dataset is often a folder named x.parquet/ (Dask, Spark), so that suffix reads as a folder.
_FILE_LIKE_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".xls", ".xlsm", ".jsonl", ".ndjson", ".json", ".db",
                       ".sqlite", ".sqlite3", ".duckdb", ".gz", ".bz2", ".zip", ".xz", ".zst")


def is_multi_file(path: str | Path) -> bool:
    """Whether ``path`` names several files: a glob, or a folder not named like a single data file (a single
    file, or a folder named x.csv, is the io module's)."""
    if is_pattern(path):
        return True
    path = Path(path)
    return path.is_dir() and not path.name.lower().endswith(_FILE_LIKE_SUFFIXES)


def source_exists(path: str | Path) -> bool:
    """A file or folder that exists, or a glob matching at least one file."""
    return bool(glob.glob(str(path))) if is_pattern(path) else Path(path).exists()


def _natural_key(path: Path) -> list:
    # "part.2" before "part.10": digits compare as numbers, as Dask orders the files of a folder.
    return [int(piece) if piece.isdigit() else piece for piece in re.split(r"(\d+)", str(path))]


def _kind(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    return None


def data_files(path: str | Path) -> list[Path]:
    """The files ``path`` names, in natural path order: ``[path]`` for a file; for a folder the Parquet or
    CSV files directly inside it (writer markers such as ``_SUCCESS`` and hidden files skipped); for a glob
    its matching files.

    Raises ``SourceError`` naming the path and the fix: nothing matches, an empty folder, nested folders,
    files of another format, Parquet and CSV mixed.
    """
    path = Path(path)
    if is_pattern(path):
        matches = [Path(p) for p in glob.glob(str(path))]
        files = [p for p in matches if p.is_file()]
        if not files:
            raise SourceError(f"{path}: the pattern matches no file; check the folder and the pattern "
                              "(e.g. data/flights/*.parquet).")
        where = f"the files matching {path}"
    elif path.is_dir():
        entries = [p for p in path.iterdir() if not p.name.startswith(".") and p.name not in _MARKERS]
        files = [p for p in entries if p.is_file()]
        folders = sorted(p.name for p in entries if p.is_dir())
        if not files and folders:
            raise SourceError(f"{path}: holds folders ({', '.join(folders[:3])}{', ...' if len(folders) > 3 else ''}), "
                              "not data files; nested folders (e.g. Hive partitions year=2013/) are not read: "
                              f"point data_path at a glob such as {path}/*/*.parquet.")
        if not files:
            raise SourceError(f"{path}: the folder is empty; it needs Parquet or CSV files.")
        where = f"folder {path}"
    else:
        if not path.exists():
            raise SourceError(f"{path}: file does not exist.")
        return [path]
    unknown = sorted(p.name for p in files if _kind(p) is None)
    if unknown:
        raise SourceError(f"{where}: {', '.join(unknown[:3])}{' ...' if len(unknown) > 3 else ''} "
                          "is neither Parquet (.parquet) nor CSV (.csv); a folder or glob holds files of one of those "
                          "formats only: move the others out or narrow the pattern.")
    kinds = {_kind(p) for p in files}
    if len(kinds) > 1:
        raise SourceError(f"{where}: mixes Parquet and CSV files; keep one format (narrow the pattern, e.g. *.parquet).")
    return sorted(files, key=_natural_key)


def files_format(files: list[Path]) -> str:
    """``"parquet"`` or ``"csv"``: the format of files ``data_files`` returned."""
    kind = _kind(files[0])
    if kind is None:
        raise SourceError(f"{files[0]}: neither Parquet nor CSV.")
    return kind


def concatenate(files: list[Path], read: Callable[[Path], pd.DataFrame], nrows: int | None = None) -> pd.DataFrame:
    """The files read one by one (``read``) and stacked in order; row labels 0..n-1 across all files.

    With ``nrows`` stops once that many rows are read. Raises ``SourceError`` when a file's columns
    differ from the first file's.
    """
    frames, total = [], 0
    for path in files:
        frame = read(path)
        if frames and set(frame.columns) != set(frames[0].columns):
            raise SourceError(f"{path}: its columns differ from {files[0].name}'s; every file of a folder or "
                              "glob must hold the same columns.")
        frames.append(frame[list(frames[0].columns)] if frames else frame)
        total += len(frame)
        if nrows is not None and total >= nrows:
            break
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)
    return frame.head(nrows) if nrows is not None else frame


def data_fingerprint(path: str | Path) -> dict[str, Any]:
    """``{"path", "sha256", "bytes", "files"}`` of the data as it is now: a content hash of every byte.

    One file: its sha256 (as ``mlhelpers.core.tables.file_sha256``). A folder or glob: the sha256 of each
    file's name (relative to the folder), size and bytes, in reading order, so a renamed, added, removed or
    changed file is seen. Hashing every byte costs about 2 s per GB on one core, small next to any step
    that reads the rows; file sizes and modification times would be cheaper but miss a rewrite of the same
    size and flag an untouched copy.
    """
    path = Path(path)
    files = data_files(path)
    digest = hashlib.sha256()
    base = path
    while is_pattern(base):  # names relative to the pattern's fixed folder
        base = base.parent
    for file in files:
        if len(files) > 1 or file != path:
            try:
                name = file.relative_to(base).as_posix()
            except ValueError:
                name = file.name
            digest.update(f"{name}\0{file.stat().st_size}\0".encode())
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(_FINGERPRINT_BLOCK), b""):
                digest.update(block)
    return {"path": str(path), "sha256": digest.hexdigest(), "bytes": sum(f.stat().st_size for f in files),
            "files": len(files)}
