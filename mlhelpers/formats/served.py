"""Which file of an exported model folder serves, loading it, and answering rows with it.

The export step recommends a format in ``serving_report.json`` (``model.onnx``, or ``model.onnx.gz`` when
the graph is large, when it holds
parity and answers fastest, else ``model.skops``); ``mlh predict``, the MLflow model and the drift
check all load a model folder through ``load_model_dir`` and answer through ``predict_rows``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlhelpers.core.artifacts import artifact_file, read_json_file
from mlhelpers.formats.onnx_files import is_onnx_file, onnx_file
from mlhelpers.formats.onnx_io import OnnxPredictor
from mlhelpers.formats.skops_io import load_skops


class ScoringError(ValueError):
    """Scoring cannot start: the message names the file or argument and the fix."""



def predict_rows(model, frame: pd.DataFrame, schema: dict[str, Any]) -> pd.DataFrame:
    """Predictions for rows that passed ``check_rows``: ``prediction`` (the class label, not its
    index, for classification) and one ``proba_<class>`` column per class. Index kept."""
    classification = schema["task"] == "classification"
    classes = np.asarray(schema["classes"] if classification else [], dtype=object)
    if len(frame) == 0:  # estimators refuse empty input; keep the columns and their types
        return pd.DataFrame({"prediction": pd.Series([], dtype=object if classification else float),
                             **{f"proba_{c}": pd.Series([], dtype=float) for c in classes}}, index=frame.index)
    if not classification:
        return pd.DataFrame({"prediction": np.asarray(model.predict(frame), dtype=float)}, index=frame.index)
    labels, proba = _labels_and_proba(model, frame)
    result = pd.DataFrame({"prediction": classes[labels]}, index=frame.index)
    for i, label in enumerate(classes):
        result[f"proba_{label}"] = proba[:, i]
    return result


def _labels_and_proba(model, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``model.predict`` (class indices) and ``model.predict_proba`` of ``frame``, the same answers. A scikit-learn
    pipeline transforms the rows once for both (as ``Pipeline.predict`` does, step by step), and an XGBoost
    classifier's labels come from its probabilities (its ``predict`` is ``P > 0.5``, or the arg max over classes,
    of the same booster output): on a 375k-row partition the two calls cost 2 x 11 s of transforms and
    2 x 14 s of trees."""
    # an ONNX graph's server never imports scikit-learn (1.5 s at every `mlh predict` and MLflow model load)
    pipelines = sys.modules.get("sklearn.pipeline")  # not imported: the model cannot be a Pipeline
    if pipelines is None or not isinstance(model, pipelines.Pipeline):
        return np.asarray(model.predict(frame), dtype=int), np.asarray(model.predict_proba(frame), dtype=float)
    features = model[:-1].transform(frame) if len(model) > 1 else frame
    final = model[-1]
    proba = np.asarray(final.predict_proba(features), dtype=float)
    xgboost = sys.modules.get("xgboost")  # not imported: the model holds no XGBoost estimator
    if xgboost is not None and isinstance(final, xgboost.XGBClassifier):
        if final.objective == "binary:logistic":
            return (proba[:, 1] > 0.5).astype(int), proba
        if final.objective == "multi:softprob" and proba.shape[1] > 2:
            return np.argmax(proba, axis=1), proba
    return np.asarray(final.predict(features), dtype=int), proba


def served_model_file(model_dir: str | Path) -> Path:
    """The file a model folder is served from: its ONNX graph (``model.onnx.gz``, or ``model.onnx`` as small
    graphs and older exports have it) when the export step's ``serving_report.json`` recommends it (parity
    proved, fastest per row, batches at least half the pickle's speed), else ``model.skops``."""
    model_dir = Path(model_dir)
    report = model_dir / artifact_file("serving_report")
    recommended = None
    if report.is_file():
        try:
            recommended = json.loads(report.read_text(encoding="utf-8")).get("recommended")
        except (ValueError, AttributeError) as error:
            raise ScoringError(f"{report} is not a serving report ({error}); run the export step again "
                               "(notebooks/03_export.ipynb) to rewrite the folder.") from None
    if recommended != "onnx":
        return model_dir / artifact_file("model_skops")
    graph = onnx_file(model_dir)
    if graph is None:
        raise ScoringError(f"{report} recommends model.onnx, which is missing from {model_dir} (neither "
                           f"{artifact_file('model_onnx_gz')} nor {artifact_file('model_onnx')}); run the export "
                           "step again (notebooks/03_export.ipynb) to rewrite the folder.")
    return graph


def load_served_file(path: str | Path):
    """The model in a served file: an ONNX graph (``.onnx`` or ``.onnx.gz``) as an ``OnnxPredictor``,
    ``model.skops`` loaded with the trusted type list."""
    return OnnxPredictor(path) if is_onnx_file(path) else load_skops(path)


def load_model_dir(model_dir: str | Path):
    """The model to serve (``served_model_file``: the ONNX graph, or the pipeline from ``model.skops``
    loaded with the trusted type list) and the input schema."""
    model_dir = Path(model_dir)
    missing = [name for name in (artifact_file("model_skops"), artifact_file("input_schema")) if not (model_dir / name).is_file()]
    if missing:
        raise ScoringError(f"{model_dir} is not an exported model folder: {', '.join(missing)} missing; "
                           "pass <run_dir>/model after the export step (notebooks/03_export.ipynb) ran.")
    schema = read_json_file(model_dir / artifact_file("input_schema"),
                            "run the export step again (notebooks/03_export.ipynb) to rewrite the model folder")
    return load_served_file(served_model_file(model_dir)), schema
