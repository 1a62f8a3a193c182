"""Serving measurements: fresh-process figures per format, the report against the pickle."""

from __future__ import annotations

import json

import pytest

from mlhelpers.formats.serving import measure_serving, serving_report
from mlhelpers.formats.skops_io import ModelFileError, load_skops, save_skops


def test_measure_serving_rejects_unimportable_loaders(tmp_path, credit, credit_forest):
    path = save_skops(credit_forest, tmp_path / "model.skops")
    with pytest.raises(ValueError, match="importable"):
        measure_serving("skops", path, lambda p: load_skops(p), credit)
    with pytest.raises(ModelFileError, match="does not exist"):
        measure_serving("skops", tmp_path / "absent.skops", load_skops, credit)


def test_serving_report_measures_every_format_against_the_pickle(tmp_path, credit, credit_forest):
    report = serving_report(credit_forest, credit.iloc[:300], tmp_path, n_single=200)
    assert report["name"].tolist() == ["pickle", "skops", "onnx"]
    assert report["parity_ok"].all() and report["reference"].tolist() == [True, False, False]
    for column in ("size_bytes", "load_seconds", "peak_memory_mb", "single_row_p50_ms",
                   "single_row_p99_ms", "batch_rows_per_second"):
        assert (report[column] > 0).all(), column
    assert (report["single_row_p99_ms"] >= report["single_row_p50_ms"]).all()
    assert report["single_row_speedup"].iloc[0] == 1.0 and report["recommended"].sum() == 1
    assert not report.loc[report["recommended"], "reference"].any()
    saved = json.loads((tmp_path / "serving_report.json").read_text())
    assert saved["schema_version"] == 1 and saved["reference"] == "pickle"
    assert saved["recommended"] in ("skops", "onnx") and len(saved["formats"]) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "model.skops", "serving_report.json"]
