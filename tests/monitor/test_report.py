"""The drift check of a file against an exported model: the report's exact shape, shifted vs unshifted data,
the input schema, the figures and the summary; bad inputs fail naming the fix."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import pytest

from mlhelpers.core.io import DataError
from mlhelpers.core.params import ParamsError, parse_params, validate_notebook_params
from mlhelpers.core.schema import SchemaError
from mlhelpers.monitor import MonitorError
from mlhelpers.monitor.params import MonitorParams
from mlhelpers.monitor.plots import plot_overview, save_drift_figures
from mlhelpers.monitor.report import check_drift, check_inputs, write_drift_report

COLUMN_KEYS = {"test", "statistic", "p_value", "psi", "drifted", "missing_rate", "unseen_categories"}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, baseline_run):
    """An exported credit model folder (skops file, input schema, metrics, reference), without the serving
    measurements (the skops file serves)."""
    from mlhelpers.core.params import validate_params
    from mlhelpers.export.reference import write_reference
    from mlhelpers.export.refit import load_export_data, refit, write_input_schema, write_metrics
    from mlhelpers.formats.skops_io import save_skops

    run_dir = baseline_run(tmp_path_factory.mktemp("monitor") / "run")
    data = load_export_data(validate_params({"run_dir": str(run_dir)}))
    pipeline = refit(data)
    save_skops(pipeline, run_dir / "model" / "model.skops")
    write_input_schema(run_dir, data)
    write_metrics(run_dir, data, pipeline)
    write_reference(run_dir, data, pipeline)
    return run_dir / "model"


@pytest.fixture(scope="module")
def shifted_file(tmp_path_factory, credit):
    """credit.csv as a later month might bring it: incomes up 60%, applicants 8 years older, a new housing
    category in 30% of rows."""
    shifted = credit.copy()
    shifted["Income"] = shifted["Income"] * 1.6
    shifted["Age"] = shifted["Age"] + 8
    shifted.loc[shifted.sample(frac=0.3, random_state=0).index, "Home"] = "boat"
    path = tmp_path_factory.mktemp("new") / "shifted.csv"
    shifted.to_csv(path, index=False)
    return path


def test_the_training_file_itself_does_not_drift(model_dir):
    from mlhelpers.core.params import PROJECT_ROOT

    result = check_drift(model_dir, PROJECT_ROOT / "data" / "credit.csv")
    assert not result.drifted and result.drifted_columns == [] and result.n_rejected == 0
    assert not result.prediction.drifted and result.prediction.n_rows == result.n_rows == 4454
    assert "None of the 13 columns drifted" in result.summary()


def test_a_shifted_file_drifts_where_it_was_shifted(model_dir, shifted_file, tmp_path):
    result = check_drift(model_dir, shifted_file)
    assert result.drifted and set(result.drifted_columns) == {"Income", "Age", "Home"}
    assert result.columns["Home"].unseen_categories == ["boat"]
    assert result.n_rejected == round(0.3 * 4454) and result.reject_reasons == {"Home: unseen category": 1336}
    assert result.table().index[:3].tolist() == ["Home", "Age", "Income"]  # drifted first, by PSI
    summary = result.summary()
    assert "3 of 13 columns drifted" in summary and "'boat'" in summary and "1,336 rows break" in summary

    shown = write_drift_report(result, tmp_path)
    report = json.loads((tmp_path / "drift_report.json").read_text())
    assert shown.loc[0, "drifted"] and report["schema_version"] == 1
    assert {"drifted", "n_rows", "columns", "prediction"} <= set(report)
    assert report["drifted"] is True and report["n_rows"] == 4454
    for entry in report["columns"].values():
        assert COLUMN_KEYS <= set(entry)
        assert isinstance(entry["statistic"], float) and isinstance(entry["psi"], float)
        assert isinstance(entry["unseen_categories"], list) and isinstance(entry["drifted"], bool)
    assert report["columns"]["Income"]["test"] == "wasserstein" and report["columns"]["Home"]["test"] == "jensen_shannon"
    assert COLUMN_KEYS <= set(report["prediction"]) and report["summary"] == summary

    figures = save_drift_figures(result, tmp_path)
    # older, richer applicants also move the predictions: by more than 0.1 reference standard deviations
    assert result.prediction.drifted and result.prediction.statistic >= 0.1
    assert sorted(figures["figure"]) == ["drift_Age.png", "drift_Home.png", "drift_Income.png",
                                         "drift_prediction_proba_good.png"]
    assert all((tmp_path / name).stat().st_size > 0 for name in figures["figure"])
    assert len(plot_overview(result).patches) == 14  # 13 columns and the predictions
    plt.close("all")


def test_missing_columns_stop_the_check_before_any_work(model_dir, credit, tmp_path):
    path = tmp_path / "partial.csv"
    credit.drop(columns=["Income", "Age"]).to_csv(path, index=False)
    with pytest.raises(SchemaError, match=r"lacks column\(s\) \['Age', 'Income'\] that the model needs"):
        check_inputs(model_dir, path)
    with pytest.raises(SchemaError, match="lacks column"):
        check_drift(model_dir, path)


def test_a_model_folder_without_reference_says_to_rerun_export(model_dir, tmp_path):
    import shutil

    old = tmp_path / "model"
    shutil.copytree(model_dir, old)
    (old / "reference.json").unlink()
    with pytest.raises(MonitorError, match=r"exported before drift checks existed\): rerun the export step"):
        check_inputs(old, tmp_path / "x.csv")
    with pytest.raises(MonitorError, match="is not an exported model folder"):
        check_inputs(tmp_path, tmp_path / "x.csv")
    with pytest.raises(MonitorError, match="does not exist"):
        check_inputs(model_dir, tmp_path / "missing.csv")


def test_an_empty_file_is_refused_by_the_one_reader(model_dir, credit, tmp_path):
    path = tmp_path / "empty.csv"
    credit.head(0).to_csv(path, index=False)
    with pytest.raises(DataError, match="header only, no data rows"):
        check_drift(model_dir, path)


def test_monitor_params_name_the_bad_key():
    assert parse_params(MonitorParams, {}).thresholds.psi == 0.2
    with pytest.raises(ParamsError, match=r"unknown key 'psi_treshold' \(did you mean 'psi_threshold'\?\)"):
        validate_notebook_params({"psi_treshold": 0.3, "model_dir": "x"}, MonitorParams)
    with pytest.raises(ParamsError, match="key 'p_value_threshold': Input should be less than 1"):
        parse_params(MonitorParams, {"p_value_threshold": 1.5})
    with pytest.raises(ParamsError, match="key 'wasserstein_threshold'"):
        parse_params(MonitorParams, {"wasserstein_threshold": "high"})
