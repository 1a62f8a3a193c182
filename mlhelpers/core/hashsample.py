"""A seeded sample chosen by each row's content: exactly ``n`` rows, the same whatever the engine and the
partitioning.

Every row gets a 64-bit key, the hash of a canonical copy of its values salted with the seed; the sample is
the ``n`` rows with the smallest keys, in table order. A Dask table keeps, per partition, the rows whose key
is below a threshold set from the row count (with slack), and the client keeps the ``n`` smallest
(``mlhelpers.core.lazy.lazy_sample``); a pandas table takes them directly (``hash_sample``). Both give the
same rows. ``DataFrame.sample`` would not: Dask's draws about ``frac * n`` rows, and other rows once the
partitions change (which a narrow column selection alone can do).
Rows with identical values get the same key, so they are in or out of the sample together.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlhelpers.core.colstats import kind_of

__all__ = ["row_keys", "sample_threshold", "keep_below", "hash_sample"]


def row_keys(frame: pd.DataFrame, seed: int) -> np.ndarray:
    """A 64-bit key per row from its values and ``seed``, the same for any dtype a reader gives a value
    (object or pyarrow strings, categories, bool/boolean/object booleans, int/Int64/float numbers)."""
    canon = {}
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            column = column.astype(column.cat.categories.dtype)
        kind = kind_of(column.dtype)
        if kind == "string" and pd.api.types.infer_dtype(column, skipna=True) == "boolean":
            kind = "bool"
        if kind == "numeric":
            canon[name] = column.astype("float64")
        elif kind == "bool":
            canon[name] = column.astype("boolean").astype("float64")
        elif kind == "datetime":
            stamps = pd.to_datetime(column, utc=True).dt.tz_localize(None)
            canon[name] = pd.Series(stamps.to_numpy(dtype="datetime64[ns]").view("int64"), index=column.index).where(column.notna(), -1)
        else:
            # one missing value whatever the reader wrote (None, NaN, pd.NA): they would hash apart
            canon[name] = column.astype(object).where(column.notna(), None)
    salt = f"{seed:016d}"[-16:]
    return pd.util.hash_pandas_object(pd.DataFrame(canon, index=frame.index), index=False, hash_key=salt).to_numpy()


def sample_threshold(n: int, total: int) -> int:
    """The key threshold that keeps at least ``n`` of ``total`` rows with overwhelming probability
    (6 standard deviations of slack)."""
    share = min(1.0, (n + 6 * np.sqrt(n) + 10) / max(total, 1))
    return int(min(2 ** 64 - 1, share * 2 ** 64))


def keep_below(frame: pd.DataFrame, seed: int, threshold: int, partition: int = 0) -> pd.DataFrame:
    """The rows whose key is below ``threshold``, with three helper columns: the key, the partition number
    and the position in it (the client keeps the smallest keys and puts the rows back in table order)."""
    keys = row_keys(frame, seed)
    kept = keys < np.uint64(threshold)
    out = frame.loc[kept].copy()
    out["_key"] = keys[kept]
    out["_part"] = np.int64(partition)
    out["_pos"] = np.flatnonzero(kept).astype(np.int64)
    return out


def hash_sample(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """The ``n`` rows of ``frame`` with the smallest keys, in table order (row labels kept); all of
    ``frame`` when it has at most ``n`` rows."""
    if len(frame) <= n:
        return frame
    keys = row_keys(frame, seed)
    order = np.lexsort((np.arange(len(frame)), keys))[:n]
    return frame.iloc[np.sort(order)]
