"""Models saved before the package layout of 2026-11 still load and serve (mlhelpers.modeling.DatetimeParts)."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from mlhelpers.cli import main
from mlhelpers.core.params import PROJECT_ROOT
from mlhelpers.core.schema import check_rows
from mlhelpers.formats.served import load_model_dir, predict_rows
from mlhelpers.formats.skops_io import skops_untrusted_types

LEGACY = PROJECT_ROOT / "tests" / "fixtures" / "legacy_model"


@pytest.fixture
def legacy_dir(tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(LEGACY, folder)
    return folder


def test_the_fixture_names_the_old_module_path():
    assert "mlhelpers.modeling.DatetimeParts" in skops_untrusted_types(LEGACY / "model.skops")


def test_old_model_predicts_what_it_predicted_when_saved(legacy_dir):
    model, schema = load_model_dir(legacy_dir)
    rows = pd.read_csv(legacy_dir / "rows.csv")
    expected = pd.read_csv(legacy_dir / "expected_predictions.csv")
    got = predict_rows(model, rows, schema).reset_index(drop=True)
    assert type(model[0].named_transformers_["datetime"][0]).__module__ == "mlhelpers.core.models"
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12)


def test_old_model_scores_through_mlh_predict(legacy_dir, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    assert main(["predict", str(legacy_dir), str(legacy_dir / "rows.csv"), "-o", str(out), "--no-progress"]) == 0
    scored = pd.read_csv(out)
    expected = pd.read_csv(legacy_dir / "expected_predictions.csv")
    assert scored["prediction"].tolist() == expected["prediction"].tolist()
    assert scored["proba_good"].to_numpy() == pytest.approx(expected["proba_good"].to_numpy(), rel=1e-12)


@pytest.mark.slow
def test_old_model_serves_through_the_mlflow_pyfunc(legacy_dir, tmp_path):
    """The model folder logged as today's MLflow model from code, loaded back as `mlflow models serve` does."""
    import mlflow

    from mlhelpers.export.tracking import log_model

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = mlflow.create_experiment("legacy", artifact_location=(tmp_path / "artifacts").as_uri())
    _, schema = load_model_dir(legacy_dir)
    rows = check_rows(pd.read_csv(legacy_dir / "rows.csv"), schema).valid  # in the signature's types, as served
    with mlflow.start_run(experiment_id=experiment):
        info = log_model(legacy_dir, legacy_dir / "model.skops", rows.head(3))
    served = mlflow.pyfunc.load_model(info.model_uri).predict(rows)
    expected = pd.read_csv(legacy_dir / "expected_predictions.csv")
    assert served["prediction"].tolist() == expected["prediction"].tolist()
    assert served["proba_good"].to_numpy() == pytest.approx(expected["proba_good"].to_numpy(), rel=1e-12)
