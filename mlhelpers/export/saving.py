"""The exported model's files: skops always, ONNX when the pipeline converts, each with its parity proved,
and what serving each costs next to a pickle of the same pipeline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from mlhelpers.core.artifacts import artifact_file, artifact_path
from mlhelpers.export.refit import ExportData
from mlhelpers.formats import onnx_io, partitioned, scoring, skops_io
from mlhelpers.formats.parity import ParityError, assert_parity, check_parity
from mlhelpers.formats.serving import serving_report

__all__ = ["save_formats", "measure_formats", "serving_summary", "score_data"]


def save_formats(pipeline, data: ExportData, model_dir: str | Path) -> pd.DataFrame:
    """Save the model in every format that works and prove each file's parity on the test split.

    ``model.skops`` always (the trusted format, reloaded with the explicit type allowlist);
    ``model.onnx`` when the pipeline converts (``mlhelpers.onnx_io.to_onnx``), else the row
    says why and any ``model.onnx`` left by an earlier run is removed. Every saved file is
    reloaded and compared with the in-memory pipeline; a broken bound raises ``ParityError``
    (after the table is built, naming the format), so nothing ships silently. Returns one row per
    format: file, size, status, precision, parity figures and a note.
    """
    model_dir = Path(model_dir)
    skops_path = skops_io.save_skops(pipeline, model_dir / artifact_file("model_skops"))
    parities = [check_parity(pipeline, skops_io.load_skops(skops_path), data.X_test,
                             data.task, name="skops")]
    rows = [_format_row("skops", skops_path, parities[0], "exact copy of the fitted pipeline",
                        "trusted format: loaded with an explicit allowlist of types")]
    onnx_path = model_dir / artifact_file("model_onnx")
    converted = onnx_io.to_onnx(pipeline, data.X_test)
    if converted.model is None:
        onnx_path.unlink(missing_ok=True)  # never ship a stale graph from an earlier run
        rows.append({"format": "onnx", "file": None, "status": "not exported", "note": converted.reason})
    else:
        onnx_io.save_onnx(converted.model, onnx_path)
        parities.append(check_parity(pipeline, onnx_io.OnnxPredictor(onnx_path), data.X_test,
                                     data.task, name="onnx"))
        precision = "double" if converted.double_precision else "float32 where double is unavailable (XGBoost trees)"
        rows.append(_format_row("onnx", onnx_path, parities[-1], precision, "portable, fast single-row serving"))
    table = pd.DataFrame(rows).set_index("format")
    for parity in parities:
        assert_parity(parity)
    return table


def measure_formats(pipeline, data: ExportData, formats: pd.DataFrame, model_dir: str | Path) -> pd.DataFrame:
    """Serving cost of every saved format next to a joblib pickle of the same pipeline, measured in
    the same run (``mlhelpers.formats.serving.serving_report`` on the test split; writes
    ``model/serving_report.json``). Raises ``ParityError`` if a measured format breaks parity."""
    model_dir = Path(model_dir)
    onnx_ok = "onnx" in formats.index and formats.loc["onnx", "status"] == "ok"
    report = serving_report(pipeline, data.X_test, model_dir, skops_path=model_dir / artifact_file("model_skops"),
                            onnx_path=model_dir / artifact_file("model_onnx") if onnx_ok else None)
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
    if picked.empty:
        return pd.DataFrame({"value": ["none: no format holds parity"]}, index=["recommended"])
    best = picked.iloc[0]
    speedup = reference["single_row_p50_ms"] / best["single_row_p50_ms"]
    rows = {"recommended": best["name"],
            "single-row p50 (ms)": f"{best['single_row_p50_ms']:.3f} vs pickle {reference['single_row_p50_ms']:.3f}",
            "single-row speedup vs pickle": f"{speedup:.1f}x",
            "size (bytes)": f"{int(best['size_bytes'])} vs pickle {int(reference['size_bytes'])}",
            "batch rows/s": f"{best['batch_rows_per_second']:.0f} vs pickle {reference['batch_rows_per_second']:.0f}",
            "goal (>= 10x faster, not larger, parity)": "met" if speedup >= 10 and best["size_bytes"] <= reference["size_bytes"]
            and bool(best["parity_ok"]) else "not met"}
    return pd.DataFrame({"value": list(rows.values())}, index=list(rows))


def _format_row(name: str, path: Path, parity, precision: str, note: str) -> dict[str, Any]:
    return {"format": name, "file": path.name, "size_bytes": path.stat().st_size,
            "status": "ok" if parity.ok else "PARITY BROKEN", "precision": precision,
            "max_abs_diff": parity.max_abs_diff, "max_rel_diff": parity.max_rel_diff,
            "label_mismatches": parity.label_mismatches, "tolerance": parity.tolerance,
            "parity_rows": parity.n_rows, "note": note}


def score_data(params, model_dir: str | Path) -> str:
    """Score the run's data with the exported folder as ``mlh predict`` would, and say what was written.

    pandas: ``scoring/predictions.csv`` (chunk by chunk). Dask: the partitions scored on the workers into
    ``scoring/predictions/part.<i>.parquet`` and ``scoring/predictions_rejects/`` (bounded memory per worker)."""
    if params.engine == "dask":
        folder = artifact_path(params.run_path, "prediction_parts")
        return partitioned.score_partitions(model_dir, params.data_file, folder).line(relative_to=params.run_path)
    return scoring.score_file(model_dir, params.data_file, artifact_path(params.run_path, "predictions"),
                              progress=False).line(relative_to=params.run_path)
