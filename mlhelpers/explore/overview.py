"""The table as the explore step sees it under either engine: the rows it works on in memory, and statistics
over every row.

``load_for_explore`` returns the frame the notebook explores (pandas: the whole table; Dask: a seeded
content-hash sample of ``dask_sample_rows`` rows pulled from the cluster), the load report, and a
``TableOverview``: row count, missing rates, min/max/mean/std/skew, distinct counts, top values and the
target's balance or spread over **all** rows (``mlhelpers.core.colstats``, one pass; on Dask the merges run on
the workers). The overview then makes the sample's conclusions exact where counts decide them
(``exact_target``, ``exact_roles``) and says in ``eda.json`` which figures are exact (``eda_keys``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from mlhelpers.core import colstats, engine, io, lazy, sources, tables, values
from mlhelpers.explore import EdaError
from mlhelpers.explore.roles import IDENTIFIER_UNIQUE, MAX_CATEGORIES, MOSTLY_MISSING, NEAR_CONSTANT
from mlhelpers.explore.targets import TargetSummary

__all__ = ["TableOverview", "load_for_explore"]


@dataclass(repr=False)
class TableOverview:
    """Statistics over every row (``stats``: ``mlhelpers.core.colstats.finalize``) and how the rest of the step
    sees the table: ``engine`` and ``sample_rows`` (None: every row is in memory)."""

    engine: str
    stats: dict[str, Any]
    sample_rows: int | None = None
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        return int(self.stats["rows"])

    def exact(self, name: str, what: str) -> bool:
        """Whether ``what`` (``n_unique``, ``top`` or ``quantiles``) of column ``name`` is exact."""
        column = self.stats["columns"][name]
        if what == "quantiles":
            return self.engine == "pandas"
        return bool(column.get(f"{what}_exact", True))

    def table(self) -> pd.DataFrame:
        """One row per column: kind, missing count and share, min/max/mean/std, distinct values (``~`` marks a
        HyperLogLog estimate), the most frequent value with its share, and the 1%/50%/99% quantiles (``~``
        marks approximate ones)."""
        rows = []
        for name, column in self.stats["columns"].items():
            known = self.n_rows - column["missing"]
            top = column.get("top") or []
            approx_q = "" if self.exact(name, "quantiles") else "~"
            quantiles = column.get("quantiles_approx") or {}
            rows.append({
                "column": name, "kind": column["kind"], "missing": column["missing"],
                "missing %": round(100 * column["missing_rate"], 2),
                "min": column.get("min"), "max": column.get("max"),
                "mean": _rounded(column.get("mean")), "std": _rounded(column.get("std")),
                "distinct": ("" if column["n_unique_exact"] else "~") + f"{column['n_unique']:,}",
                "most frequent": f"{top[0][0]!r} ({top[0][1] / known:.1%})" if top and known else None,
                "p1 / p50 / p99": " / ".join(f"{approx_q}{quantiles[q]:g}" for q in ("0.01", "0.5", "0.99")) if quantiles else None,
            })
        return pd.DataFrame(rows).set_index("column")

    def caption(self) -> str:
        where = ("pandas: every row in memory, every figure exact" if self.engine == "pandas" else
                 f"dask: counted on the cluster over all {self.n_rows:,} rows; distinct counts marked ~ are "
                 "HyperLogLog estimates, quantiles are approximate; the rest of this notebook works on a seeded "
                 f"sample of {self.sample_rows:,} rows")
        return f"{self.n_rows:,} rows x {len(self.stats['columns'])} columns ({where})."

    def _repr_html_(self) -> str:
        return f"<p>{self.caption()}</p>" + self.table().to_html()

    def __repr__(self) -> str:
        return self.caption() + "\n" + self.table().to_string()

    def exact_target(self, target_info: TargetSummary) -> TargetSummary:
        """``target_info`` with the row counts and the class balance (classification) or spread (regression)
        counted over every row; the task and metric stay as decided (on the sample under Dask)."""
        if self.sample_rows is None:
            return target_info
        column = self.stats["columns"][target_info.target]
        missing = int(column["missing"])
        known = self.n_rows - missing
        if target_info.task == "classification":
            counts = pd.Series({value: count for value, count in column["top"]}, dtype="int64")
            counts.index.name = target_info.target
            counts = counts.sort_values(ascending=False, kind="stable")
            distribution = pd.DataFrame({"count": counts, "share": (counts / counts.sum()).round(4)})
            classes = sorted(counts.index.tolist(), key=str)
        else:
            quantiles = column.get("quantiles_approx") or {}
            distribution = pd.Series({"count": known, "mean": column["mean"], "std": column["std"], "min": column["min"],
                                      "25% (approx)": quantiles.get("0.25"), "50% (approx)": quantiles.get("0.5"),
                                      "75% (approx)": quantiles.get("0.75"), "max": column["max"],
                                      "skew": column["skew"]}, dtype=float).round(4).to_frame(target_info.target)
            classes = None
        reason = target_info.task_reason.split("; ")[0] + (f"; {missing:,} rows with a missing target dropped" if missing else "")
        return TargetSummary(target=target_info.target, task=target_info.task, task_reason=reason,
                             primary_metric=target_info.primary_metric, metric_reason=target_info.metric_reason,
                             n_rows=known, n_rows_missing_target=missing, classes=classes, distribution=distribution)

    def exact_roles(self, roles: pd.DataFrame) -> pd.DataFrame:
        """``roles`` (from the sample) with ``missing_pct``, ``n_unique`` and ``top_pct`` over every row, and the
        roles those counts decide made over every row: constant, mostly missing, identifier by uniqueness,
        categorical versus high cardinality. Under pandas the counts are the same: ``roles`` comes back as is."""
        if self.sample_rows is None:
            return roles
        roles = roles.copy()
        note = f" (counted over all {self.n_rows:,} rows)"
        for name in roles.index:
            column = self.stats["columns"].get(name)
            if column is None:
                continue
            nonnull = self.n_rows - column["missing"]
            missing, n_unique = column["missing_rate"], int(column["n_unique"])
            top = (column["top"][0][1] / nonnull) if column.get("top") and nonnull else 0.0
            roles.loc[name, ["missing_pct", "n_unique", "top_pct"]] = [round(100 * missing, 2), n_unique, round(100 * top, 2)]
            role, base = roles.loc[name, "role"], roles.loc[name, "base_role"]
            if role == "target":
                continue
            new, why = role, ""
            if nonnull and missing >= MOSTLY_MISSING:
                new, why = "mostly_missing", f"{missing:.1%} missing (from {MOSTLY_MISSING:.0%} on)"
            elif role == "mostly_missing" and nonnull:
                new, why = base, f"{missing:.1%} missing, below {MOSTLY_MISSING:.0%}"
            elif role == "constant" and (n_unique > 1 or missing):
                new = "near_constant" if top >= NEAR_CONSTANT else base
                why = f"{n_unique:,} distinct values, {top:.1%} the most frequent"
            elif role == "identifier" and nonnull and n_unique / nonnull < IDENTIFIER_UNIQUE \
                    and "name looks like" not in roles.loc[name, "evidence"]:
                new, why = base, f"unique for only {n_unique / nonnull:.0%} of rows ({n_unique:,} distinct)"
            elif role == "categorical" and n_unique > MAX_CATEGORIES and column["kind"] == "string":
                new, why = "high_cardinality", f"{n_unique:,} categories (more than {MAX_CATEGORIES})"
            if new != role:
                roles.loc[name, ["role", "evidence"]] = [new, why + note]
        return roles

    def eda_keys(self) -> dict[str, Any]:
        """What ``eda.json`` adds under either engine: ``engine``, ``sample_rows`` (null: every row), ``exact``
        (which figures count every row) and ``column_stats`` (this overview, per column)."""
        sampled = self.sample_rows is not None
        columns = self.stats["columns"]
        exact = {"n_rows": True, "class_counts": True, "missing_pct": True,
                 "min_max_mean_std": True, "quantiles": not sampled,
                 "n_unique": {name: self.exact(name, "n_unique") for name in columns},
                 "top_values": {name: self.exact(name, "top") for name in columns},
                 "on_sample": (["task and metric choice", "role evidence", "feature_ranking", "leakage",
                                "redundant_pairs", "figures", "profile"] if sampled else [])}
        stats = {name: {key: value for key, value in column.items() if key != "top"} | {"top": (column.get("top") or [])[:5]}
                 for name, column in columns.items()}
        return {"engine": self.engine, "sample_rows": self.sample_rows, "exact": exact,
                "data_files": self.source, "column_stats": stats}


def _rounded(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


def load_for_explore(params) -> tuple[pd.DataFrame, tables.LoadReport, TableOverview]:
    """The frame to explore, the load report (with the value conversions, ``mlhelpers.core.values``) and the
    overview over every row, for ``params.engine``.

    pandas: the whole table, values converted, with compact dtypes (``mlhelpers.core.tables.load_compact``; a
    folder or glob is its files stacked in order). Dask: a seeded content-hash sample of ``params.dask_sample_rows``
    rows (the rows the pandas engine's ``hash_sample`` takes from the same table), from the same pass over the
    data that counts the overview; its conversions are inferred on the sample (the overview's statistics are of
    the values as written), then applied on every partition by the later steps. Needs the engine open
    (``mlhelpers.core.engine.open_engine``).
    """
    path = params.data_file
    if params.engine != "dask":
        # the statistics over every row are of the values as written, as the Dask engine counts them
        raw = io.load_table(path, query=params.data_query, sheet=params.data_sheet)
        stats = colstats.finalize(colstats.summarize(raw), all_counts=(params.target,))
        if sources.is_multi_file(path):
            files = sources.data_files(path)
            kind = sources.files_format(files)
            converted, conversions = values.convert_table(raw, target=params.target, from_text=kind == "csv")
            frame, per_column = tables.compact_dtypes(converted)
            report = tables.LoadReport(_report({"source": f"{path.name} ({len(files)} {kind} files)", "format": kind},
                                               frame, per_column), conversions)
        else:
            frame, report = tables.load_compact(path, query=params.data_query, sheet=params.data_sheet,
                                                target=params.target, frame=raw)
        del raw
        _check_time_column(frame, params)
        return frame, report, TableOverview(engine="pandas", stats=stats)
    engine.current_client()
    table = lazy.read_lazy(path, query=params.data_query)
    stats, sample = lazy.column_summary(table, sample_rows=params.dask_sample_rows, seed=params.seed,
                                        all_counts=(params.target,))
    converted, conversions = values.convert_table(sample, target=params.target, from_text=table.format == "csv")
    frame, per_column = tables.compact_dtypes(converted)
    source = {"files": len(table.files), "format": table.format, "partitions": table.npartitions,
              "bytes_on_disk": sum(f.stat().st_size for f in table.files)}
    in_memory = per_column["mb_before"].sum() * stats["rows"] / max(len(sample), 1)
    report = _report({"source": f"{path.name} ({source['files']} {table.format} file(s), {table.npartitions} partitions, "
                                f"{source['bytes_on_disk'] / 1e6:,.1f} MB on disk)", "format": table.format,
                      "engine": "dask: read lazily, counted on the cluster",
                      "rows (all)": f"{stats['rows']:,}",
                      "in memory, all rows (estimated, MB)": f"{in_memory:,.0f}",
                      "sample in this notebook": f"{len(frame):,} rows (seeded by content, seed {params.seed})"},
                     frame, per_column)
    return frame, tables.LoadReport(report, conversions), TableOverview(engine="dask", stats=stats, sample_rows=len(frame), source=source)


def _report(head: dict[str, str], frame: pd.DataFrame, per_column: pd.DataFrame) -> pd.DataFrame:
    before, after = per_column["mb_before"].sum(), per_column["mb_after"].sum()
    changed = per_column[per_column["dtype_before"] != per_column["dtype_after"]]
    rows = head | {"rows": f"{len(frame):,}", "columns": str(frame.shape[1]),
                   "memory as read (MB)": f"{before:,.1f}", "memory compacted (MB)": f"{after:,.1f}",
                   "memory saved": f"{1 - after / before:.0%}" if before else "0%",
                   "dtypes changed": ", ".join(f"{c}: {r.dtype_before}->{r.dtype_after}"
                                               for c, r in changed.iterrows()) or "none"}
    return pd.DataFrame({"value": rows})


def _check_time_column(frame: pd.DataFrame, params) -> None:
    """A time split cannot place a row with a known target and no time: refused now, as ``mlh validate`` does,
    not by the baseline step after this one has run (a Bundesliga table with two kick-offs missing)."""
    if params.time_column and params.time_column in frame.columns and params.target in frame.columns:
        times = frame.loc[frame[params.target].notna(), params.time_column]
        problem = tables.unplaced_times(times, f" in {params.data_file.name}")
        if problem:
            raise EdaError(f"time_column {problem}; {tables.TIME_FIX}.")
