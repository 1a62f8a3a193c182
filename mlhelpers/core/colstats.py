"""Column statistics in one pass that merge across partitions: the same answers from a whole pandas table and
from a Dask table's partitions.

``summarize`` turns one frame (a partition, or a whole table) into a small dict; ``merge`` combines two of them
(associative, so Dask tree-reduces them on the workers); ``finalize`` turns the result into the report.

* Exact: rows, missing counts, min, max, mean, standard deviation and skew (Chan's and Pébay's pairwise
  updates), and the value counts, top values and distinct counts of every column whose distinct values stay
  under ``EXACT_DISTINCT_CAP`` (and ``EXACT_BYTES_CAP`` of text) in total.
* Approximate: the distinct count of a column over the cap (HyperLogLog over pandas' 64-bit hashes,
  2**14 registers, about 0.8% standard error) and its top values (each partition's top ``PARTITION_TOPK``
  merged: lower bounds on the counts); quantiles (each partition's exact quantiles on a 1001-point grid, the
  merged CDF the row-weighted mean of the partitions' piecewise-linear CDFs, snapped to a value seen).

Hand-written rather than Dask's ``describe``/``nunique_approx``: those need one task per column and
statistic (about 800 tasks for 21 columns against about 24 here), their ``value_counts`` shuffles and comes
back unsorted, and Dask's HyperLogLog uses 32-bit hashes with a (rows x 32) int64 temporary, about 20x
slower (measured in the prototype, /work/scratch/dask/FINDINGS.md section 3).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["EXACT_DISTINCT_CAP", "QUANTILES", "kind_of", "summarize", "merge", "merge_all", "finalize"]

EXACT_DISTINCT_CAP = 100_000     # distinct values kept exactly per column (summed over partitions)
EXACT_BYTES_CAP = 16_000_000     # ... and at most this much of them in memory (long free text overflows sooner)
PARTITION_TOPK = 1_000           # per-partition top values kept once a column goes over the cap
HLL_BITS = 14
GRID = np.linspace(0, 1, 1001)
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def kind_of(dtype) -> str:
    """``"bool"``, ``"datetime"``, ``"numeric"`` or ``"string"`` (everything else) for a column dtype."""
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_numeric_dtype(dtype):
        return "numeric"
    return "string"


def _plain(column: pd.Series) -> tuple[pd.Series, str]:
    """The column with one representation per kind, whatever the engine read: categories as their values,
    pyarrow strings as objects, booleans stored as objects (Parquet bools with nulls) as ``boolean``."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        column = column.astype(column.cat.categories.dtype)
    kind = kind_of(column.dtype)
    if kind == "string" and column.dtype != object:
        column = column.astype(object)
    if kind == "string" and pd.api.types.infer_dtype(column, skipna=True) == "boolean":
        column, kind = column.astype("boolean"), "bool"
    return column, kind


def _hll(distinct: pd.Series) -> np.ndarray:
    """HyperLogLog registers (2**HLL_BITS uint8) of the ``distinct`` non-missing values (each once: a register
    keeps the largest rank, so repeats change nothing), from pandas' 64-bit hashes."""
    registers = np.zeros(1 << HLL_BITS, dtype=np.uint8)
    if len(distinct) == 0:
        return registers
    # categorize=False: the values are distinct already (pandas would factorize them first, as value_counts did)
    h = pd.util.hash_pandas_object(distinct, index=False, categorize=False).to_numpy()
    bucket = (h >> np.uint64(64 - HLL_BITS)).astype(np.int64)
    rest = (h << np.uint64(HLL_BITS)) | np.uint64(1 << (HLL_BITS - 1))  # never 0: rank <= 64 - HLL_BITS + 1
    _, exponent = np.frexp(rest.astype(np.float64))                        # rest in [2**(e-1), 2**e)
    np.maximum.at(registers, bucket, (65 - exponent).astype(np.uint8))     # leading zeros + 1
    return registers


def _hll_estimate(registers: np.ndarray) -> float:
    m = len(registers)
    estimate = 0.7213 / (1 + 1.079 / m) * m * m / np.sum(2.0 ** -registers.astype(np.float64))
    zeros = int((registers == 0).sum())
    if estimate <= 2.5 * m and zeros:
        return float(m * np.log(m / zeros))  # linear counting for small cardinalities
    return float(estimate)


def _as_numbers(values: pd.Series, kind: str) -> np.ndarray:
    if kind == "datetime":
        stamps = pd.to_datetime(values, utc=True).dt.tz_localize(None)
        return stamps.to_numpy(dtype="datetime64[ns]").view("int64")
    return values.to_numpy(dtype="float64")


def summarize(frame: pd.DataFrame) -> dict[str, Any]:
    """The statistics of one partition (or a whole table): a small dict for ``merge`` and ``finalize``."""
    out: dict[str, Any] = {"rows": len(frame), "columns": {}}
    for name in frame.columns:
        column, kind = _plain(frame[name])
        values = column.dropna()
        stats: dict[str, Any] = {"kind": kind, "missing": int(len(column) - len(values))}
        if kind in ("numeric", "bool", "datetime"):
            stats["count"] = len(values)
            if len(values):
                x = _as_numbers(values, kind)
                xf = x.astype(np.float64)
                mean = float(xf.mean())
                centered = xf - mean
                stats |= {"min": x.min().item(), "max": x.max().item(), "mean": mean,
                          "m2": float(np.dot(centered, centered)), "m3": float(np.sum(centered ** 3))}
                if kind == "numeric":
                    stats["grids"] = [(np.quantile(xf, GRID, method="inverted_cdf"), len(xf))]
        counts = values.value_counts()
        # hashing the distinct values rather than every row: a partition of long free text (every row different,
        # 20 MB) took 1.8 s, half of it hashing each string twice (factorize, then hash)
        stats["hll"] = _hll(pd.Series(counts.index.array))
        if _too_many(counts):
            stats |= {"top": counts.head(PARTITION_TOPK), "overflow": True}
        else:
            stats["counts"] = counts
        out["columns"][name] = stats
    return out


def _too_many(counts: pd.Series) -> bool:
    return len(counts) > EXACT_DISTINCT_CAP or (counts.index.dtype == object
                                                and counts.index.memory_usage(deep=True) > EXACT_BYTES_CAP)


def _merge_moments(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    na, nb = a["count"], b["count"]
    if not (na and nb):
        return {key: value for key, value in (a if na else b).items() if key in ("count", "min", "max", "mean", "m2", "m3", "grids")}
    n = na + nb
    delta = b["mean"] - a["mean"]
    m2 = a["m2"] + b["m2"] + delta ** 2 * na * nb / n
    m3 = (a["m3"] + b["m3"] + delta ** 3 * na * nb * (na - nb) / n ** 2
          + 3 * delta * (na * b["m2"] - nb * a["m2"]) / n)
    merged = {"count": n, "min": min(a["min"], b["min"]), "max": max(a["max"], b["max"]),
              "mean": a["mean"] + delta * nb / n, "m2": m2, "m3": m3}
    if "grids" in a or "grids" in b:
        merged["grids"] = a.get("grids", []) + b.get("grids", [])
    return merged


def _merge_column(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {"kind": a["kind"], "missing": a["missing"] + b["missing"]}
    if "count" in a and "count" in b:
        merged |= _merge_moments(a, b)
    both = pd.concat([a.get("counts", a.get("top")), b.get("counts", b.get("top"))])
    counts = both.groupby(level=0, sort=False).sum()
    if a.get("overflow") or b.get("overflow") or _too_many(counts):
        merged |= {"top": counts.nlargest(PARTITION_TOPK), "overflow": True}
    else:
        merged["counts"] = counts
    merged["hll"] = np.maximum(a["hll"], b["hll"])
    return merged


def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Two summaries (of disjoint rows with the same columns) as one."""
    return {"rows": a["rows"] + b["rows"],
            "columns": {name: _merge_column(a["columns"][name], b["columns"][name]) for name in a["columns"]}}


def merge_all(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Pairwise merges in a tree, the order Dask runs them in: the same floating-point sums either way."""
    while len(summaries) > 1:
        summaries = [merge(summaries[i], summaries[i + 1]) if i + 1 < len(summaries) else summaries[i]
                     for i in range(0, len(summaries), 2)]
    return summaries[0]


def _merged_quantiles(grids: list[tuple[np.ndarray, int]], qs) -> list[float]:
    values = np.unique(np.concatenate([grid for grid, _ in grids]))
    total = sum(n for _, n in grids)
    cdf = sum(n * np.interp(values, grid, GRID, left=0.0, right=1.0) for grid, n in grids) / total
    # snap to a value some partition holds: integer columns stay integers, and gaps (HHMM times 1360-1399) stay gaps
    return [float(values[np.argmin(np.abs(values - np.interp(q, cdf, values)))]) for q in qs]


def _ranked(counts: pd.Series) -> pd.Series:
    """Most frequent first, ties by value: the same order however the rows were partitioned."""
    by_value = counts.iloc[np.argsort(counts.index.astype(str).to_numpy(), kind="stable")]
    return by_value.sort_values(ascending=False, kind="stable")


def _show(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value.item() if isinstance(value, np.generic) else value


def finalize(summary: dict[str, Any], top: int = 10, all_counts: tuple[str, ...] = ()) -> dict[str, Any]:
    """The report: ``rows`` and per column ``kind``, ``missing``, ``missing_rate``, ``min``/``max``/``mean``/
    ``std``/``skew`` (numbers, booleans as 0/1, datetimes as ISO text), ``quantiles_approx`` (numbers),
    ``n_unique`` with ``n_unique_exact``, and ``top``: ``[value, count]`` pairs, most frequent first (values as
    Python scalars), with ``top_exact``. The columns in ``all_counts`` (e.g. the target) keep every value's count."""
    n = summary["rows"]
    report: dict[str, Any] = {"rows": n, "columns": {}}
    for name, s in summary["columns"].items():
        col: dict[str, Any] = {"kind": s["kind"], "missing": s["missing"], "missing_rate": s["missing"] / n if n else 0.0}
        count = s.get("count", 0)
        if count:
            std = float(np.sqrt(s["m2"] / (count - 1))) if count > 1 else 0.0
            population_std = np.sqrt(s["m2"] / count)
            skew = float(s["m3"] / count / population_std ** 3) if population_std > 0 else 0.0
            skew = skew * np.sqrt(count * (count - 1)) / (count - 2) if count > 2 else 0.0  # pandas' adjusted skew
            col |= {"count": count, "min": _show(s["min"]), "max": _show(s["max"]), "mean": s["mean"], "std": std, "skew": skew}
            if s["kind"] == "datetime":
                col |= {"min": pd.Timestamp(s["min"]).isoformat(), "max": pd.Timestamp(s["max"]).isoformat(),
                        "mean": pd.Timestamp(int(round(s["mean"]))).isoformat(), "std": str(pd.Timedelta(std, unit="ns"))}
            if s.get("grids"):
                col["quantiles_approx"] = dict(zip(map(str, QUANTILES), _merged_quantiles(s["grids"], QUANTILES)))
        keep = None if name in all_counts else top
        if s.get("counts") is not None:
            counts = _ranked(s["counts"])
            col |= {"n_unique": int(len(counts)), "n_unique_exact": True,
                    "top": [[_show(k), int(v)] for k, v in counts.head(keep).items()], "top_exact": True}
        else:
            col |= {"n_unique": int(round(_hll_estimate(s["hll"]))), "n_unique_exact": False,
                    "top": [[_show(k), int(v)] for k, v in _ranked(s["top"]).head(keep).items()], "top_exact": False}
        report["columns"][name] = col
    return report
