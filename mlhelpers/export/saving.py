"""The exported model's files: skops always, ONNX when the pipeline converts, each with its parity proved
on the test split and the parity probe's edge rows, and what serving each costs next to a pickle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from mlhelpers.core.artifacts import artifact_file, artifact_path
from mlhelpers.export.refit import ExportData
from mlhelpers.formats import onnx_io, partitioned, scoring, skops_io
from mlhelpers.formats.parity import ParityError, assert_parity, check_parity
from mlhelpers.formats.probe import Probe, edge_rows, probe_parity
from mlhelpers.formats.serving import DEFAULT_BUDGET_SECONDS, MIN_BATCH_SHARE, serving_report

__all__ = ["parity_probe", "save_formats", "measure_formats", "serving_summary", "score_data"]


def parity_probe(data: ExportData) -> Probe:
    """The edge rows every saved format is compared on besides the test split (``formats.probe``):
    built from the training rows and the spec's column roles, seeded with the spec's seed."""
    roles = {name: role for role, names in data.spec.get("features", {}).items() for name in names}
    return edge_rows(data.X_train, roles, seed=int(data.spec.get("seed", 0)))


def save_formats(pipeline, data: ExportData, model_dir: str | Path) -> pd.DataFrame:
    """Save the model in every format that works and prove each file's parity on the test split.

    ``model.skops`` always (the trusted format, reloaded with the explicit type allowlist);
    ``model.onnx`` when the pipeline converts (``mlhelpers.onnx_io.to_onnx``; ``model.onnx.gz`` when the
    graph is large, ``onnx_io.save_onnx``), else the row says why and any graph left by an earlier run is removed. Every saved file is
    reloaded and compared with the in-memory pipeline; a broken bound on the test split raises
    ``ParityError`` (after the table is built, naming the format), so nothing ships silently. Each is
    also compared on the parity probe (``parity_probe``): a format failing it keeps its file but is
    marked ``fails the parity probe`` with the rows and columns that break it, and is never
    recommended for serving (``measure_formats``). Returns one row per format: file, size, status,
    precision, parity and probe figures and a note.
    """
    model_dir = Path(model_dir)
    probe = parity_probe(data)
    skops_path = skops_io.save_skops(pipeline, model_dir / artifact_file("model_skops"))
    loaded = skops_io.load_skops(skops_path)
    parities = [check_parity(pipeline, loaded, data.X_test, data.task, name="skops")]
    checked = {"skops": (parities[0], probe_parity(pipeline, loaded, probe, data.task, name="skops"))}
    rows = [_format_row("skops", skops_path, parities[0], "exact copy of the fitted pipeline",
                        "trusted format: loaded with an explicit allowlist of types", checked["skops"][1])]
    converted = onnx_io.to_onnx(pipeline, data.X_test)
    if converted.model is None:
        onnx_io.remove_onnx(model_dir)  # never ship a stale graph from an earlier run
        rows.append({"format": "onnx", "file": None, "status": "not exported", "note": converted.reason})
    else:
        onnx_path = onnx_io.save_onnx(converted.model, model_dir / artifact_file("model_onnx"))
        loaded = onnx_io.OnnxPredictor(onnx_path)
        parities.append(check_parity(pipeline, loaded, data.X_test, data.task, name="onnx"))
        checked["onnx"] = (parities[-1], probe_parity(pipeline, loaded, probe, data.task, name="onnx"))
        precision = "double" if converted.double_precision else "float32 where double is unavailable (XGBoost trees)"
        rows.append(_format_row("onnx", onnx_path, parities[-1], precision, "portable, fast single-row serving",
                                checked["onnx"][1]))
    table = pd.DataFrame(rows).set_index("format")
    table.attrs[CHECKED] = checked  # measure_formats reuses them: the same files, rows and probe
    for parity in parities:
        assert_parity(parity)
    return table


def measure_formats(pipeline, data: ExportData, formats: pd.DataFrame, model_dir: str | Path,
                    budget_seconds: float | None = DEFAULT_BUDGET_SECONDS) -> pd.DataFrame:
    """Serving cost of every saved format next to a joblib pickle of the same pipeline, measured in
    the same run within ``budget_seconds`` for all formats together (``Params.serving_budget_seconds``;
    ``mlhelpers.formats.serving.serving_report`` on the test split and the parity probe; writes
    ``model/serving_report.json``). Raises ``ParityError`` if a measured format breaks parity on the test
    split; one failing the probe only is measured but not recommended."""
    model_dir = Path(model_dir)
    onnx_ok = "onnx" in formats.index and formats.loc["onnx", "status"] == "ok"
    onnx_ok = onnx_ok or ("onnx" in formats.index and formats.loc["onnx", "status"] == PROBE_FAILED)
    report = serving_report(pipeline, data.X_test, model_dir, skops_path=model_dir / artifact_file("model_skops"),
                            onnx_path=onnx_io.onnx_file(model_dir) if onnx_ok else None,
                            budget_seconds=budget_seconds, probe=parity_probe(data), checked=formats.attrs.get(CHECKED))
    broken = report.loc[~report["parity_ok"].astype(bool), "name"].tolist()
    if broken:
        raise ParityError(f"formats {broken} break parity with the in-memory model on the test split "
                          "(see serving_report.json); they must not ship.")
    return report


def serving_summary(serving: pd.DataFrame) -> pd.DataFrame:
    """The recommended serving format against the pickle reference, and whether it meets the goal
    (at least 10x faster per single row, not larger, parity holding)."""
    reference = serving[serving["reference"].astype(bool)].iloc[0]
    picked = serving[serving["recommended"].astype(bool)]
    refused = {}
    if "probe_ok" in serving.columns:
        for _, row in serving[~serving["probe_ok"].astype(bool)].iterrows():
            refused[f"not recommended: {row['name']}"] = row["probe_note"]
    if "batch_ok" in serving.columns:
        for _, row in serving[~serving["batch_ok"].astype(bool)].iterrows():
            share = row["batch_rows_per_second"] / reference["batch_rows_per_second"]
            refused.setdefault(f"not recommended: {row['name']}",
                               f"{row['name']}: batches at {share:.2f}x the pickle's rows/s (below {MIN_BATCH_SHARE}x): "
                               "`mlh predict` would score files slower")
    if picked.empty:
        rows = {"recommended": "none: no format holds parity"} | refused
        return pd.DataFrame({"value": list(rows.values())}, index=list(rows))
    best = picked.iloc[0]
    speedup = reference["single_row_p50_ms"] / best["single_row_p50_ms"]
    rows = {"recommended": best["name"],
            "single-row p50 (ms)": f"{best['single_row_p50_ms']:.3f} vs pickle {reference['single_row_p50_ms']:.3f} "
                                   f"({_calls(best, 'single_row_calls')} vs {_calls(reference, 'single_row_calls')} calls)",
            "single-row speedup vs pickle": f"{speedup:.1f}x",
            "size (bytes)": f"{int(best['size_bytes'])} vs pickle {int(reference['size_bytes'])}",
            "batch rows/s": f"{best['batch_rows_per_second']:.0f} vs pickle {reference['batch_rows_per_second']:.0f} "
                            f"({_calls(best, 'batch_calls')} vs {_calls(reference, 'batch_calls')} calls)",
            "goal (>= 10x faster, not larger, parity)": "met" if speedup >= 10 and best["size_bytes"] <= reference["size_bytes"]
            and bool(best["parity_ok"]) else "not met"}
    if "probe_ok" in serving.columns:
        rows["parity probe"] = best["probe_note"]
    rows |= refused
    return pd.DataFrame({"value": list(rows.values())}, index=list(rows))


PROBE_FAILED = "fails the parity probe"
CHECKED = "mlhelpers.parity"  # save_formats' table.attrs key: each format's (ParityResult, ProbeResult)


def _calls(row: pd.Series, column: str) -> str:
    return f"{int(row[column]):,}" if column in row and pd.notna(row[column]) else "?"  # a table without the counts


def _format_row(name: str, path: Path, parity, precision: str, note: str, probed) -> dict[str, Any]:
    status = "PARITY BROKEN" if not parity.ok else "ok" if probed.ok else PROBE_FAILED
    return {"format": name, "file": path.name, "size_bytes": path.stat().st_size,
            "status": status, "precision": precision,
            "max_abs_diff": parity.max_abs_diff, "max_rel_diff": parity.max_rel_diff,
            "label_mismatches": parity.label_mismatches, "tolerance": parity.tolerance,
            "parity_rows": parity.n_rows, "probe_rows": probed.n_rows,
            "probe_max_abs_diff": probed.max_abs_diff, "probe_ok": probed.ok,
            "note": note if probed.ok else probed.describe()}


def score_data(params, model_dir: str | Path) -> str:
    """Score the run's data with the exported folder as ``mlh predict`` would, and say what was written.

    pandas: ``scoring/predictions.csv`` (chunk by chunk). Dask: the partitions scored on the workers into
    ``scoring/predictions/part.<i>.parquet`` and ``scoring/predictions_rejects/`` (bounded memory per worker)."""
    if params.engine == "dask":
        folder = artifact_path(params.run_path, "prediction_parts")
        return partitioned.score_partitions(model_dir, params.data_file, folder).line(relative_to=params.run_path)
    return scoring.score_file(model_dir, params.data_file, artifact_path(params.run_path, "predictions"),
                              progress=False, sheet=params.data_sheet,
                              query=params.data_query).line(relative_to=params.run_path)
