"""One reader per file format (CSV, Parquet, Excel, JSON lines), each whole or in chunks, with the same options.

``mlhelpers.core.io`` picks the reader from the file name; a whole read (the pipeline's steps) and a chunked
read (``mlh predict``) of the same file see the same dialect, encoding, missing markers and types, and
every failure is a ``DataError`` naming the file, the problem and the fix.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pandas as pd

from mlhelpers.core.sniff import (MISSING_MARKERS, CsvFormat, DataError, check_unique_names, head_bytes,
                                  open_binary, sniff_csv, truncated_message)

__all__ = ["read_csv", "iter_csv", "line_ends", "unreadable_parquet", "parquet_columns", "read_parquet", "iter_parquet",
           "read_excel", "excel_sheet", "read_jsonl",
           "iter_jsonl", "parse_numbers"]


@contextmanager
def _csv_errors(path: Path, fmt: CsvFormat):
    """Turn what pandas and the decompressors raise while reading a CSV into one ``DataError``."""
    import lzma
    import zlib

    try:
        yield
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: unreadable text encoding: byte {exc.start} past the sample is not "
                        f"valid {fmt.encoding} ({exc.reason}); re-save the file as UTF-8.") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty; it needs a header line and at least one data row.") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: malformed CSV with delimiter {fmt.delimiter!r}: {exc}".rstrip()
                        + "; check quoting and the number of fields per line.") from None
    except (EOFError, zlib.error, lzma.LZMAError, OSError) as exc:
        raise DataError(truncated_message(path, exc)) from None


def _csv_options(fmt: CsvFormat) -> dict:
    return {"sep": fmt.delimiter, "decimal": fmt.decimal, "thousands": fmt.thousands, "encoding": fmt.encoding,
            "na_values": MISSING_MARKERS, "keep_default_na": True, "skipinitialspace": True}


def read_csv(path: Path, nrows: int | None = None) -> tuple[pd.DataFrame, CsvFormat]:
    """The whole CSV file (or its first ``nrows`` rows) and the dialect it was read with."""
    fmt = sniff_csv(path)
    with _csv_errors(path, fmt):  # a truncated archive is found while looking for line ends
        options = _csv_options(fmt) | line_ends(path)
    if nrows is None and fmt.thousands is None and "lineterminator" not in options:
        # pyarrow's multithreaded reader is ~5x faster with half the peak memory on big files; anything
        # it rejects is read again by the C parser below, whose errors are the clear ones.
        try:
            return pd.read_csv(path, engine="pyarrow", sep=fmt.delimiter, decimal=fmt.decimal,
                               encoding=fmt.encoding, na_values=MISSING_MARKERS, keep_default_na=True), fmt
        except Exception:  # noqa: BLE001 - any failure falls back to the C parser
            pass
    with _csv_errors(path, fmt):
        return pd.read_csv(path, nrows=nrows, low_memory=False, **options), fmt


def line_ends(path: Path) -> dict:
    r"""``lineterminator="\n"`` for a file whose lines end at "\n" and whose text holds a bare "\r": pandas'
    to_csv leaves such a carriage return unquoted, and the parsers took it for a line end (rows split
    silently, or "Buffer overflow caught"). The Dask engine's reader (``mlhelpers.core.lazy``) uses it too.
    Raises ``DataError`` for a compressed file that does not decompress to its end."""
    import lzma
    import zlib

    try:
        bare = _bare_carriage_returns(path)
    except (EOFError, zlib.error, lzma.LZMAError, OSError) as exc:
        raise DataError(truncated_message(path, exc)) from None
    return {"lineterminator": "\n"} if bare else {}


def _bare_carriage_returns(path: Path) -> bool:
    r"""Whether the (decompressed) file holds a "\r" that ends no "\r\n" line, and no "\r\n" at all."""
    bare, previous = False, b""
    with open_binary(path) as handle:
        while block := handle.read(1 << 20):
            text = previous + block
            if b"\r\n" in text:
                return False
            bare = bare or b"\r" in text[:-1]
            previous = text[-1:]
    return bare or previous == b"\r"


def iter_csv(path: Path, chunk_rows: int, dtypes: dict[str, str] | None = None,
             keep_blank_lines: bool = False) -> Iterator[pd.DataFrame]:
    """The CSV file in chunks of ``chunk_rows`` rows, read with the dialect ``read_csv`` uses.

    ``dtypes`` (column -> ``"text"`` or ``"number"``) fixes how those columns are read in every chunk, so a
    chunk that happens to hold only digits in a text column does not turn them into numbers: both are read
    as text, and ``"number"`` columns are then parsed with the file's decimal mark and thousands separator,
    the text kept where a value is no number (so a check can refuse it by name). Blank lines are kept as
    empty rows with ``keep_blank_lines`` (row numbers then match the file's data lines).
    """
    fmt = sniff_csv(path)
    numbers = [name for name, kind in (dtypes or {}).items() if kind == "number"]
    with _csv_errors(path, fmt):
        reader = pd.read_csv(path, chunksize=chunk_rows, skip_blank_lines=not keep_blank_lines,
                             dtype={name: str for name in dtypes or {}}, low_memory=False,
                             **_csv_options(fmt) | line_ends(path))
        with reader:
            for chunk in reader:
                for name in numbers:
                    if name in chunk.columns:
                        chunk[name] = parse_numbers(chunk[name], fmt.decimal, fmt.thousands)
                yield chunk


def parse_numbers(text: pd.Series, decimal: str = ".", thousands: str | None = None) -> pd.Series:
    """Numbers written in a CSV dialect as floats; a value that is no number keeps its text (missing stays missing)."""
    cleaned = text.astype("string").str.strip()
    if thousands:
        cleaned = cleaned.str.replace(thousands, "", regex=False)
    if decimal != ".":
        cleaned = cleaned.str.replace(decimal, ".", regex=False)
    values = pd.to_numeric(cleaned, errors="coerce").astype(float)
    unreadable = values.isna() & text.notna()
    if not unreadable.any():
        return values
    return values.astype(object).where(~unreadable, text)


def unreadable_parquet(path: Path, exc: BaseException) -> str:
    """The message for a file pyarrow cannot read as Parquet (either engine's readers raise it)."""
    return f"{path}: not a readable Parquet file ({exc}); check the file or its extension."


def parquet_columns(path: Path) -> list[str]:
    """The column names from a Parquet file's footer (the data is not read)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(unreadable_parquet(path, exc)) from None
    nested = {field.name: str(field.type) for field in schema if pa.types.is_nested(field.type)}
    if nested:  # refused from the footer: mlh validate under engine: dask reads no rows of a Parquet file
        raise DataError(nested_columns(path, {name: f"type {kind}" for name, kind in nested.items()}))
    return list(schema.names)


def nested_columns(path: Path, examples: dict[str, str]) -> str:
    """The message for columns holding lists or objects (``examples``: column -> an example or its type)."""
    listed = "; ".join(f"{name!r} ({example})" for name, example in examples.items())
    return (f"{path}: column(s) hold lists or objects, not single values: {listed}. A model takes one number, text "
            "or date per cell; flatten each into plain columns (one per field or element, e.g. pandas.json_normalize "
            "or DataFrame.explode) or leave it out of the file.")


def read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow as pa

    check_unique_names(path, parquet_columns(path))
    try:
        return pd.read_parquet(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(unreadable_parquet(path, exc)) from None


def iter_parquet(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        check_unique_names(path, parquet_columns(path))  # nested columns too: refused from the footer
        source = pq.ParquetFile(path)
        empty = source.schema_arrow.empty_table().to_pandas()
        yielded = False
        for batch in source.iter_batches(batch_size=chunk_rows):
            yielded = True
            yield batch.to_pandas()
        if not yielded:
            yield empty
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(unreadable_parquet(path, exc)) from None


def excel_sheet(path: Path, sheet: str | int | None) -> str | int:
    """The sheet to read: ``sheet`` checked against the workbook's sheets, or the only one.

    Raises ``DataError`` for a workbook with several sheets and no ``sheet`` (listing them), an unknown
    sheet name or an index out of range.
    """
    try:
        with pd.ExcelFile(path) as workbook:
            names = [str(name) for name in workbook.sheet_names]
    except Exception as exc:  # openpyxl and xlrd raise many types for a file that is not Excel
        raise DataError(f"{path}: not a readable Excel file ({type(exc).__name__}: {exc}); "
                        "check the file or its extension.") from None
    listed = ", ".join(f"{i}: {name!r}" for i, name in enumerate(names))
    if sheet is None:
        if len(names) == 1:
            return names[0]
        raise DataError(f"{path}: the workbook has {len(names)} sheets ({listed}); set data_sheet to the one "
                        f"holding the table, by name or 0-based index (e.g. data_sheet: {names[0]!r}).")
    if isinstance(sheet, int) and not isinstance(sheet, bool):
        if 0 <= sheet < len(names):
            return names[sheet]
        raise DataError(f"{path}: data_sheet {sheet} is out of range: the workbook has {len(names)} sheet(s) "
                        f"({listed}); use an index from 0 to {len(names) - 1} or a sheet name.")
    if str(sheet) not in names:
        raise DataError(f"{path}: no sheet named {sheet!r}; the workbook's sheets are {listed}.")
    return str(sheet)


def read_excel(path: Path, nrows: int | None = None, sheet: str | int | None = None,
               dtypes: dict[str, str] | None = None) -> pd.DataFrame:
    name = excel_sheet(path, sheet)
    try:
        header = pd.read_excel(path, sheet_name=name, header=None, nrows=1)
        check_unique_names(path, header.iloc[0].tolist() if len(header) else [])
        names = {str(value).strip() for value in (header.iloc[0].tolist() if len(header) else [])}
        text = [column for column, kind in (dtypes or {}).items() if kind == "text" and column in names]
        return pd.read_excel(path, sheet_name=name, nrows=nrows, na_values=MISSING_MARKERS,
                             dtype={column: str for column in text} or None)
    except DataError:
        raise
    except Exception as exc:  # openpyxl and xlrd raise many types for a file that is not Excel
        raise DataError(f"{path}: sheet {name!r} is not readable ({type(exc).__name__}: {exc}); "
                        "check the file or its extension.") from None


def _first_bad_line(path: Path) -> str:
    """Where a JSON-lines file breaks: the first line that is not one JSON object, and what it is instead."""
    with open_binary(path) as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.decode("utf-8", errors="replace").strip()
            if not line:
                continue
            try:
                value = json.loads(line)
            except ValueError as exc:
                return f"line {number} is not valid JSON ({exc.msg} at column {exc.colno})"
            if not isinstance(value, dict):
                kind = {list: "an array", str: "a string", bool: "true/false"}.get(type(value), "a number")
                kind = "null" if value is None else kind
                return f"line {number} is {kind}, not a JSON object"
    return ""


def _jsonl_error(path: Path, exc: Exception) -> DataError:
    where = _first_bad_line(path)
    detail = where or f"{type(exc).__name__}: {exc}"
    return DataError(f"{path}: not valid JSON lines: {detail}; every line must be one JSON object "
                     '({"column": value, ...}); fix or remove that line.')


def _check_first_object(path: Path) -> None:
    first = next((line for line in head_bytes(path).decode("utf-8", errors="replace").splitlines()
                  if line.strip()), "")

    def no_duplicates(pairs):
        check_unique_names(path, [key for key, _ in pairs])
        return dict(pairs)

    try:
        json.loads(first, object_pairs_hook=no_duplicates)
    except DataError:
        raise
    except ValueError:
        pass  # a first line that is no JSON at all is reported with its line number by the reader


# JSON values keep the types the file gives them (numbers, strings, booleans); strings that look like
# numbers or dates are converted, and reported, by mlhelpers.core.values like those of every format.
_JSON_OPTIONS = {"lines": True, "dtype": False, "convert_dates": False}


def read_jsonl(path: Path, nrows: int | None = None) -> pd.DataFrame:
    _check_first_object(path)
    try:
        return pd.read_json(path, nrows=nrows, **_JSON_OPTIONS)
    except DataError:
        raise
    except (ValueError, AttributeError, TypeError, EOFError, OSError) as exc:
        raise _jsonl_error(path, exc) from None


def iter_jsonl(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """The file in chunks; a key absent from every object of a chunk still appears (all missing) once seen."""
    _check_first_object(path)
    columns: list[str] = []
    try:
        with pd.read_json(path, chunksize=chunk_rows, **_JSON_OPTIONS) as reader:
            for chunk in reader:
                columns += [name for name in chunk.columns if name not in columns]
                yield chunk.reindex(columns=columns)
    except DataError:
        raise
    except (ValueError, AttributeError, TypeError, EOFError, OSError) as exc:
        raise _jsonl_error(path, exc) from None
