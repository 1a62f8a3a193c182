"""The parity probe (issue 9.1): edge rows from the training frame, every zoo model's formats holding on them,
and a wrong format refused with the rows and columns that break it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlhelpers.core.io import load_table
from mlhelpers.core.models import ZOO, build_pipeline, encode_target
from mlhelpers.core.params import PROJECT_ROOT
from mlhelpers.formats.onnx_io import OnnxPredictor, save_onnx, to_onnx
from mlhelpers.formats.probe import UNSEEN, edge_rows, probe_parity

FEATURES = {"numeric": ["Seniority", "Time", "Age", "Expenses", "Income", "Assets", "Debt", "Amount", "Price"],
            "categorical": ["Home", "Marital", "Records", "Job"]}
COLUMNS = FEATURES["numeric"] + FEATURES["categorical"]
ROLES = {name: role for role, names in FEATURES.items() for name in names}


@pytest.fixture(scope="module")
def credit_read():
    """credit.csv through the workspace's reader (missing text values as NaN), split 80/20."""
    frame = load_table(PROJECT_ROOT / "data" / "credit.csv")
    test = frame.sample(frac=0.2, random_state=1)
    return frame.drop(index=test.index), test


def _fit(model, train, **params):
    spec = {"model": model, "task": "classification", "features": FEATURES, "seed": 0, "n_jobs": 1,
            "estimator_params": params}
    y, classes = encode_target(train["Status"], "classification")
    return spec, build_pipeline(spec).fit(train[COLUMNS], y), y, classes


def test_edge_rows_cover_every_feature(credit_read):
    train = credit_read[0][COLUMNS]
    probe = edge_rows(train, ROLES, seed=3)
    labels = probe.labels[0]
    for name in COLUMNS:
        assert f"{name}=NaN" in labels
    for name in FEATURES["numeric"]:
        assert {f"{name}={what}" for what in ("min", "max", "min-span", "max+span", "0")} <= set(labels)
    for name in FEATURES["categorical"]:
        assert {f"{name}=None", f"{name}=unseen"} <= set(labels)
        assert {f"{name}={value}" for value in train[name].dropna().unique()} <= set(labels)
    rows = probe.parts[0]
    assert rows.loc[labels.index("Age=max+span"), "Age"] == 2 * train["Age"].max() - train["Age"].min()
    assert rows.loc[labels.index("Home=None"), "Home"] is None
    assert rows.loc[labels.index("Job=unseen"), "Job"] == UNSEEN
    # the training rows holding a missing value (328 here, capped at 200, seeded), then numbers as text
    assert sum(label.startswith("training row") for label in labels) == 200 < len(train[train.isna().any(axis=1)])
    assert probe.parts[1]["Age"].map(type).eq(str).all()
    capped = edge_rows(train, ROLES, seed=3, max_missing_rows=10)
    assert capped.labels[0][-10:] == edge_rows(train, ROLES, seed=3, max_missing_rows=10).labels[0][-10:]
    assert capped.labels[0][-10:] != edge_rows(train, ROLES, seed=4, max_missing_rows=10).labels[0][-10:]


@pytest.mark.parametrize("model", ZOO)
def test_every_zoo_model_holds_the_probe_in_every_saved_format(tmp_path, credit_read, model):
    # credit has missing values in numbers (Income, Assets, Debt) and categories (Home, Marital, Job)
    from mlhelpers.export.refit import ExportData
    from mlhelpers.export.saving import save_formats

    train, test = credit_read
    small = {"random_forest": {"n_estimators": 10}, "xgboost": {"n_estimators": 20},
             "hist_gradient_boosting": {"max_iter": 20}}.get(model, {})
    spec, pipeline, y, classes = _fit(model, train, **small)
    y_test = test["Status"].map({label: i for i, label in enumerate(classes)}).to_numpy(int)
    data = ExportData(spec, train[COLUMNS], y, test[COLUMNS], y_test, "classification", classes, "random")
    table = save_formats(pipeline, data, tmp_path)
    expected = ["skops"] if model == "dummy" else ["skops", "onnx"]
    assert table.index[table["status"] == "ok"].tolist() == expected, table[["status", "note"]]
    assert (table.loc[expected, "probe_rows"] > 250).all()
    assert (table.loc[expected, "probe_max_abs_diff"] <= 1e-5).all()


def test_a_wrong_format_fails_the_probe_and_is_not_recommended(tmp_path, credit_read):
    # the bug of issue 9.1 rebuilt on purpose: a pipeline fitted on None for missing categories answers
    # NaN differently; its ONNX graph passes a sample without missing categories and must fail the probe
    from mlhelpers.formats.serving import serving_report

    train, _ = credit_read
    as_none = train.copy()
    for name in ("Home", "Marital", "Job"):
        as_none[name] = as_none[name].astype(object).where(as_none[name].notna(), None)
    _, wrong, _, _ = _fit("random_forest", as_none, n_estimators=10)
    complete = train[COLUMNS].dropna()
    converted = to_onnx(wrong, complete)
    assert converted.reason is None and converted.parity.ok  # the sample alone cannot tell
    probe = edge_rows(train[COLUMNS], ROLES)
    result = probe_parity(wrong, OnnxPredictor(converted.model), probe, "classification", name="onnx")
    assert not result.ok and result.n_breaking > 0
    assert set(result.breaking_columns) >= {"Home", "Marital", "Job"}
    assert "fails the parity probe" in result.describe() and "Home" in result.describe()
    # served: the report measures it but recommends the skops file, and says why
    path = save_onnx(converted.model, tmp_path / "model.onnx")
    report = serving_report(wrong, complete.head(200), tmp_path, onnx_path=path, n_single=5, probe=probe)
    by_name = report.set_index("name")
    assert bool(by_name.loc["onnx", "parity_ok"]) and not bool(by_name.loc["onnx", "probe_ok"])
    assert "Home" in by_name.loc["onnx", "probe_note"]
    saved = json.loads((tmp_path / "serving_report.json").read_text())
    assert saved["recommended"] == "skops" and saved["probe"]["n_rows"] == probe.n_rows


def test_a_candidate_that_raises_on_edge_rows_fails_the_probe(credit_read):
    train, _ = credit_read
    _, pipeline, _, _ = _fit("linear", train)

    class RefusesMissing:  # a stand-in for a format that cannot read a missing value
        def predict(self, frame):
            if frame.isna().any().any():
                raise ValueError("missing values are not supported")
            return pipeline.predict(frame)

        def predict_proba(self, frame):
            self.predict(frame)
            return pipeline.predict_proba(frame)

    result = probe_parity(pipeline, RefusesMissing(), edge_rows(train[COLUMNS], ROLES), "classification", "odd")
    assert not result.ok and "ValueError" in result.error
    np.testing.assert_equal(result.max_abs_diff, np.nan)
