"""Serving measurements: fresh-process figures per format, the report against the pickle, the time budget."""

from __future__ import annotations

import json

import pytest

from mlhelpers.formats.parity import ParityResult
from mlhelpers.formats.serving import MIN_SINGLE_CALLS, measure_serving, serving_report
from mlhelpers.formats.skops_io import ModelFileError, load_skops, save_skops


def test_measure_serving_rejects_unimportable_loaders(tmp_path, credit, credit_forest):
    path = save_skops(credit_forest, tmp_path / "model.skops")
    with pytest.raises(ValueError, match="importable"):
        measure_serving("skops", path, lambda p: load_skops(p), credit)
    with pytest.raises(ModelFileError, match="does not exist"):
        measure_serving("skops", tmp_path / "absent.skops", load_skops, credit)
    with pytest.raises(ValueError, match=r"budget_seconds must be >= 0 seconds or None, got -1"):
        measure_serving("skops", path, load_skops, credit, budget_seconds=-1)


def test_serving_report_measures_every_format_against_the_pickle(tmp_path, credit, credit_forest):
    report = serving_report(credit_forest, credit.iloc[:300], tmp_path, n_single=100, budget_seconds=None)
    assert report["name"].tolist() == ["pickle", "skops", "onnx"]
    assert report["parity_ok"].all() and report["reference"].tolist() == [True, False, False]
    for column in ("size_bytes", "load_seconds", "peak_memory_mb", "single_row_p50_ms",
                   "single_row_p99_ms", "batch_rows_per_second"):
        assert (report[column] > 0).all(), column
    assert (report["single_row_p99_ms"] >= report["single_row_p50_ms"]).all()
    # the floor: each process before its model, with the format's runtime imported (scikit-learn for the pickle
    # and skops, onnxruntime for ONNX); the model's memory is the peak above it
    assert (report["floor_memory_mb"] > 50).all()
    assert (report["floor_memory_mb"] + report["model_memory_mb"] - report["peak_memory_mb"]).abs().max() < 1e-6
    # without a budget every format gets every call it was asked for, on the whole frame
    assert (report["single_row_calls"] == 100).all() and (report["batch_rows"] == 300).all()
    assert report["batch_calls"].between(1, 3).all()
    assert report["single_row_speedup"].iloc[0] == 1.0 and report["recommended"].sum() == 1
    assert not report.loc[report["recommended"], "reference"].any()
    # no recommended format scores batches at less than half the pickle's rows/s (mlh predict serves it)
    share = report["batch_rows_per_second"] / report["batch_rows_per_second"].iloc[0]
    assert report["batch_ok"].tolist() == (share >= 0.5).tolist() and report.loc[report["recommended"], "batch_ok"].all()
    saved = json.loads((tmp_path / "serving_report.json").read_text())
    assert saved["schema_version"] == 1 and saved["reference"] == "pickle" and saved["budget_seconds"] is None
    assert saved["recommended"] in ("skops", "onnx") and len(saved["formats"]) == 3
    assert all(f["single_row_calls"] == 100 for f in saved["formats"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "model.skops", "serving_report.json"]


def test_a_budget_bounds_the_calls_not_how_each_is_timed(tmp_path, credit, credit_forest):
    # A budget far below what 1,000 one-row calls per format cost (the forest answers a row in
    # milliseconds; starting three processes alone takes seconds): the report still comes back with
    # every figure, each resting on the floor of calls, and says how many.
    # A parity result the caller already computed for a file (the export step's save_formats) is used as it is,
    # not computed again: here a made-up broken one for skops; ONNX's is computed.
    known = ParityResult(ok=False, max_abs_diff=0.25, max_rel_diff=0.25, label_mismatches=3, tolerance=1e-5,
                         n_rows=len(credit), name="skops")
    report = serving_report(credit_forest, credit, tmp_path, n_single=1000, budget_seconds=0.5,
                            checked={"skops": (known, None)})
    assert (report["single_row_calls"] == MIN_SINGLE_CALLS).all()
    assert (report["batch_calls"] >= 1).all() and (report["batch_rows"] == len(credit)).all()
    assert (report["single_row_p50_ms"] > 0).all()
    assert report.set_index("name")["parity_ok"].to_dict() == {"pickle": True, "skops": False, "onnx": True}
    assert report.set_index("name").loc["skops", "max_abs_diff"] == 0.25 and not report.loc[1, "recommended"]
    saved = json.loads((tmp_path / "serving_report.json").read_text())
    assert saved["budget_seconds"] == 0.5 and saved["n_single"] == 1000
    assert [f["single_row_calls"] for f in saved["formats"]] == [MIN_SINGLE_CALLS] * 3


def test_serving_budget_must_be_positive(tmp_path, credit, credit_forest):
    with pytest.raises(ValueError, match=r"serving_budget_seconds must be a positive number of seconds, got 0"):
        serving_report(credit_forest, credit.iloc[:50], tmp_path, budget_seconds=0)


def test_a_failing_load_names_the_format_and_the_error(tmp_path, credit):
    broken = tmp_path / "model.skops"
    broken.write_text("not a zip file")
    with pytest.raises(RuntimeError, match=r"(?s)measuring skops .*model.skops.* failed in its subprocess:.*skops"):
        measure_serving("skops", broken, load_skops, credit.head(50), n_single=5)
