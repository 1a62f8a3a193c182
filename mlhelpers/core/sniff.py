"""Opening a data file before reading it: its format from the name, compressed streams, and a CSV's dialect.

``sniff_csv`` detects a CSV file's encoding, delimiter and decimal mark from its first 256 KB;
``check_compressed`` proves a compressed file decompresses to its end. Every problem is a ``DataError``
naming the file and the fix. The readers themselves live in ``mlhelpers.core.io``.
"""

from __future__ import annotations

import codecs
import csv
import re
from dataclasses import dataclass
from pathlib import Path

SQL_SUFFIXES = {".db", ".sqlite", ".sqlite3", ".duckdb"}
COMPRESSION_SUFFIXES = {".gz", ".bz2", ".zip", ".xz", ".zst"}
# Strings read as missing, on top of pandas' defaults (which include NA, null, NULL, NaN and "").
# \N is how MySQL and PostgreSQL dumps write NULL: left as text it became a "free text" feature.
MISSING_MARKERS = ["?", "", "NA", "N/A", "null", "NULL", "Null", "NaN", "nan", "None", "\\N"]
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
    """``csv``, ``parquet``, ``excel``, ``jsonl`` or ``sql`` from the file name (a compression suffix aside)."""
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


def truncated_message(path: Path, exc: BaseException) -> str:
    """The message for a compressed file that ends early or is corrupt inside."""
    return (f"{path}: the compressed file is truncated or corrupt ({exc}); it does not decompress to its end. "
            "Copy or download it again (compare its size with the original), or decompress it yourself to "
            "see how far it reads.")


# Errors a decompressing stream raises for a cut or damaged file: EOFError (gzip, bz2, lzma cut short),
# OSError (gzip.BadGzipFile, CRC mismatch), zlib.error, lzma.LZMAError, zipfile.BadZipFile.
def _stream_errors() -> tuple[type[BaseException], ...]:
    import lzma
    import zipfile
    import zlib

    return EOFError, OSError, zlib.error, lzma.LZMAError, zipfile.BadZipFile


def open_binary(path: Path):
    """The file's bytes as a stream, decompressed when its name says it is compressed (gz, bz2, xz, zip)."""
    suffix = path.suffix.lower()
    if suffix == ".gz":
        import gzip

        return gzip.open(path, "rb")
    if suffix == ".bz2":
        import bz2

        return bz2.open(path, "rb")
    if suffix == ".xz":
        import lzma

        return lzma.open(path, "rb")
    if suffix == ".zip":
        import zipfile

        archive = zipfile.ZipFile(path)
        names = [name for name in archive.namelist() if not name.endswith("/")]
        if len(names) != 1:
            archive.close()
            raise DataError(f"{path}: a zip archive must hold exactly one data file; it holds {len(names)} "
                            f"({', '.join(names[:5]) or 'none'}). Extract the one you mean and point at it.")
        return archive.open(names[0])
    return open(path, "rb")


def head_bytes(path: Path, size: int = SAMPLE_BYTES) -> bytes:
    """The first ``size`` bytes of the file, decompressed when its name says it is compressed."""
    compressed = path.suffix.lower() in COMPRESSION_SUFFIXES
    try:
        with open_binary(path) as handle:
            return handle.read(size)
    except DataError:
        raise
    except EOFError as exc:
        raise DataError(truncated_message(path, exc)) from None
    except _stream_errors() as exc:
        if not compressed:
            raise
        raise DataError(f"{path}: cannot decompress ({exc}); is it really a {path.suffix} file? Check the "
                        "file or its extension.") from None


def check_compressed(path: Path) -> None:
    """Decompress the whole file (nothing kept) so a truncated or corrupt archive is refused before any work.

    Plain files return at once; a compressed one costs one streaming pass (about 1 s per 100 MB of gzip).
    """
    if path.suffix.lower() not in COMPRESSION_SUFFIXES or path.suffix.lower() == ".zst":
        return
    head_bytes(path, 64)  # a file that is not this kind of archive at all gets the clearer message
    try:
        with open_binary(path) as handle:
            while handle.read(1 << 22):
                pass
    except _stream_errors() as exc:
        raise DataError(truncated_message(path, exc)) from None


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


def check_unique_names(path: Path, names: list) -> None:
    """Refuse a table whose column names repeat (after stripping spaces), naming the repeated ones."""
    written = [str(name) for name in names]
    names = [name.strip() for name in written]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        # 'age' and 'age ' are one name once stripped: show them as written, or the message names one column
        spelled = {name: [w for w in written if w.strip() == name] for name in duplicates}
        shown = "; ".join(name if len(set(ws)) == 1 else " and ".join(map(repr, ws)) + " (the same without spaces)"
                          for name, ws in spelled.items())
        raise DataError(f"{path}: duplicate column names {duplicates}"
                        + (f": {shown}" if shown != "; ".join(duplicates) else "")
                        + "; rename them so every column has a unique name.")


def sniff_csv(path: str | Path) -> CsvFormat:
    """Detect a CSV file's encoding, delimiter and decimal mark from its first 256 KB.

    Raises ``DataError`` for an empty, binary or undecodable file and for duplicate column names.
    """
    path = Path(path)
    sample = head_bytes(path)
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
    check_unique_names(path, header)
    decimal, thousands = _detect_decimal(lines, delimiter)
    return CsvFormat(encoding=encoding, delimiter=delimiter, decimal=decimal, thousands=thousands)
