"""MLflow: log the export step's run (params, metrics, reports, notebooks) and a model that serves.

The logged model is an MLflow "model from code": a few lines that build ``served_model()``; no
pickle is stored. At load time it reads the format the export step recommends
(``mlhelpers.formats.served.served_model_file``: ``model.onnx``, or ``model.skops`` with the trusted
type list) and ``input_schema.json``, checks every row like ``mlh predict`` does
(``mlhelpers.core.schema.check_rows``) and returns class labels with one
probability per class. Bad rows raise ``MlflowException(INVALID_PARAMETER_VALUE)``, which
``mlflow models serve`` answers with HTTP 400 and the reasons.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mlhelpers.core.artifacts import MANIFEST, STEPS, artifact_file, read_artifact
from mlhelpers.core.environment import package_versions
from mlhelpers.core.quiet import quiet_libraries
from mlhelpers.core.schema import SchemaError, check_rows
from mlhelpers.formats.served import load_served_file, predict_rows, served_model_file

__all__ = ["TrackingResult", "served_model", "model_signature", "log_export_run", "log_run", "log_model",
           "compare_logged_model", "logged_input", "served_predictions", "compare_predictions", "open_store",
           "local_store_paths"]

_MODEL_CODE = '''"""MLflow model from code: the mlhelpers pipeline behind input-schema checks."""
from mlflow.models import set_model

from mlhelpers.export.tracking import served_model

set_model(served_model())
'''
# Files never logged from the run folder: raw pickles (only measured as a reference) and temp files.
_SKIPPED_SUFFIXES = {".pkl", ".pickle", ".joblib", ".tmp"}
_MAX_REASONS = 5


@dataclass
class TrackingResult:
    """Where the run and its model went, and the command that serves the model."""

    tracking_uri: str
    experiment_id: str
    run_id: str
    model_uri: str
    logged_files: list[str]
    run_dir: Path

    @property
    def serve_command(self) -> str:
        """A shell command that serves the logged model on http://127.0.0.1:5001/invocations."""
        return (f"MLFLOW_TRACKING_URI='{self.tracking_uri}' mlflow models serve -m {self.model_uri} "
                "--env-manager local -h 127.0.0.1 -p 5001")

    def table(self) -> pd.DataFrame:
        """The result as a two-column table for the notebook."""
        return pd.DataFrame({"value": [self.tracking_uri, self.experiment_id, self.run_id, self.model_uri,
                                       len(self.logged_files), self.serve_command]},
                            index=["tracking_uri", "experiment_id", "run_id", "model_uri", "files logged",
                                   "serve with"])


def served_model():
    """The ``mlflow.pyfunc.PythonModel`` that serves an exported pipeline (see the module doc)."""
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

    class ServedPipeline(mlflow.pyfunc.PythonModel):
        """Checks rows against the input schema, then predicts labels (and class probabilities)."""

        def load_context(self, context) -> None:
            self.pipeline = load_served_file(context.artifacts["model"])
            self.schema = json.loads(Path(context.artifacts["input_schema"]).read_text(encoding="utf-8"))

        def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
            frame = pd.DataFrame(model_input)
            try:
                check = check_rows(frame.reset_index(drop=True), self.schema)
            except SchemaError as error:
                raise MlflowException(str(error), error_code=INVALID_PARAMETER_VALUE) from None
            if len(check.rejects):
                reasons = "; ".join(f"row {row}: {reason}" for row, reason
                                    in check.rejects["reason"].head(_MAX_REASONS).items())
                more = f" (and {len(check.rejects) - _MAX_REASONS} more)" if len(check.rejects) > _MAX_REASONS else ""
                raise MlflowException(f"{len(check.rejects)} of {len(frame)} rows break the input schema, "
                                      f"nothing was scored: {reasons}{more}", error_code=INVALID_PARAMETER_VALUE)
            return predict_rows(self.pipeline, check.valid, self.schema).reset_index(drop=True)

    return ServedPipeline()


def model_signature(schema: dict[str, Any]):
    """The MLflow signature of the served model, from ``input_schema.json``: numeric columns as
    doubles, categories as strings (booleans as booleans); outputs ``prediction`` (+ probabilities).

    Date-time columns and columns whose values training converted (``"1,200"``, ``"yes"``, ``"unknown"``:
    the schema's ``conversions``) are typed ``Any``: MLflow's own casts would refuse them before the model
    sees them (a ``datetime`` column refuses zoned times; a ``double`` column refuses ``"1,200"``), so the
    served model's schema check (``check_rows``) judges them, as ``mlh predict`` does.
    """
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, Schema

    converted = set(schema.get("conversions") or {})

    def input_type(name: str, info: dict[str, Any]):
        if name in converted or info.get("role") == "datetime" or info["dtype"].startswith("datetime64"):
            return AnyType()
        if info["dtype"] in ("bool", "boolean"):
            return "boolean"
        return "double" if info["dtype"].startswith(("int", "uint", "float")) else "string"

    inputs = Schema([ColSpec(input_type(name, info), name) for name, info in schema["columns"].items()])
    if schema["task"] == "classification":
        # number labels with rare ones merged into "other" (core.classes) are mixed: they serve as text
        label = "string" if any(isinstance(c, str) for c in schema["classes"]) else "double"
        outputs = Schema([ColSpec(label, "prediction")]
                         + [ColSpec("double", f"proba_{c}") for c in schema["classes"]])
    else:
        outputs = Schema([ColSpec("double", "prediction")])
    return ModelSignature(inputs=inputs, outputs=outputs)


def local_store_paths(tracking_uri: str) -> Path | None:
    """For a local ``sqlite:///<file>`` store, the artifact folder next to the database; else None."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    return Path(tracking_uri.removeprefix("sqlite:///")).parent / "mlartifacts"


def log_export_run(params, data, skip_notebooks: tuple[str, ...] = ("03_export.ipynb",)) -> TrackingResult:
    """Log the export as one MLflow run and return where it went: ``log_run`` with the ``ExportData``'s spec and
    test rows (``tracking_job.TrackingJob`` does the same in a second process)."""
    return log_run(params, data.spec, data.X_test, skip_notebooks)


def log_run(params, spec: dict[str, Any], test_rows: pd.DataFrame,
            skip_notebooks: tuple[str, ...] = ("03_export.ipynb",)) -> TrackingResult:
    """Log the export as one MLflow run and return where it went.

    ``params`` are the validated ``Params``, ``spec`` the model spec and ``test_rows`` the held-out rows (the
    first 5 are the input example). Logs the
    params and the model spec as params, the test scores and CV mean/std (``model/metrics.json``)
    as metrics, the run folder's executed notebooks (those present, except ``skip_notebooks``: the
    notebook still running is incomplete) and every report under explore/, baseline/ and model/ as
    artifacts, and the model with its signature and an input example (test rows in the input
    schema's form). Uses ``params.tracking_uri``; a local SQLite store keeps its artifacts in
    ``mlartifacts/`` next to the database file. Raises ``FileNotFoundError`` when the model files
    are not saved yet.
    """
    with quiet_libraries():
        import mlflow  # its first import warns about tqdm without ipywidgets

    run_dir = Path(params.run_path)
    model_dir = run_dir / STEPS["export"].folder
    for name in (artifact_file("model_skops"), artifact_file("input_schema"), artifact_file("metrics")):
        if not (model_dir / name).is_file():
            raise FileNotFoundError(f"{model_dir / name} is missing: save the model, its input schema and metrics "
                                    "(earlier cells of notebooks/03_export.ipynb) before logging to MLflow.")
    served = served_model_file(model_dir)  # refuses a folder whose recommended file is missing, before logging
    metrics = read_artifact(run_dir, "metrics")
    input_example = logged_input(run_dir, test_rows, 5)
    with quiet_libraries():
        previous_uri = mlflow.get_tracking_uri()
        try:
            experiment_id = open_store(params.tracking_uri, params.mlflow_experiment)
            with mlflow.start_run(experiment_id=experiment_id, run_name=f"{spec['model']}-{run_dir.name}",
                                  parent_run_id=params.mlflow_parent_run_id or None) as run:
                mlflow.log_params(_flat_params(run_parameters(run_dir, params), spec))
                mlflow.log_metrics(_flat_metrics(metrics))
                mlflow.set_tags({"mlhelpers.run_dir": str(run_dir), "mlhelpers.model": spec["model"],
                                 "mlhelpers.task": spec["task"], "mlhelpers.served_file": served.name})
                logged = _log_run_files(run_dir, skip_notebooks)
                info = log_model(model_dir, served, input_example)
            return TrackingResult(tracking_uri=params.tracking_uri, experiment_id=experiment_id,
                                  run_id=run.info.run_id, model_uri=info.model_uri, logged_files=logged,
                                  run_dir=run_dir)
        finally:
            mlflow.set_tracking_uri(previous_uri)


def open_store(tracking_uri: str, experiment: str) -> str:
    """Point MLflow at ``tracking_uri`` (a local SQLite store's folder created first: SQLite creates the file, not
    its folder) and return ``experiment``'s id, created when missing. Opening a store checks its schema: about 2
    CPU seconds, which ``tracking_job.TrackingJob`` spends while the notebook refits."""
    import mlflow

    artifacts = local_store_paths(tracking_uri)
    if artifacts is not None:
        artifacts.parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking_uri)
    return _experiment_id(experiment, tracking_uri)


def _naive_utc(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with timezone-aware datetimes as naive UTC: MLflow's signature refuses aware ones."""
    for name in frame.columns:
        if isinstance(frame[name].dtype, pd.DatetimeTZDtype):
            frame[name] = frame[name].dt.tz_convert("UTC").dt.tz_localize(None)
    return frame


def compare_logged_model(result: TrackingResult, pipeline, data, rows: int = 200) -> pd.DataFrame:
    """Load the logged model back from MLflow (as ``mlflow models serve`` does) and compare its
    answers on the first ``rows`` test rows with the in-memory pipeline's: one row of figures."""
    frame = logged_input(result.run_dir, data.X_test, rows)
    return compare_predictions(result, served_predictions(result, frame), pipeline, frame)


def logged_input(run_dir: Path, test_rows: pd.DataFrame, rows: int = 200) -> pd.DataFrame:
    """The first ``rows`` test rows as the logged model takes them (schema-checked, datetimes naive UTC)."""
    return _naive_utc(check_rows(test_rows.head(rows), read_artifact(run_dir, "input_schema")).valid)


def served_predictions(result: TrackingResult, frame: pd.DataFrame) -> pd.DataFrame:
    """The logged model's answers on ``frame``, loaded back from MLflow as ``mlflow models serve`` loads it."""
    with quiet_libraries():
        import mlflow  # its first import warns about tqdm without ipywidgets

    previous_uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(result.tracking_uri)
    try:
        with quiet_libraries():
            return mlflow.pyfunc.load_model(result.model_uri).predict(frame)
    finally:
        mlflow.set_tracking_uri(previous_uri)


def compare_predictions(result: TrackingResult, served: pd.DataFrame, pipeline, frame: pd.DataFrame) -> pd.DataFrame:
    """``served`` (the logged model's answers on ``frame``) against the in-memory pipeline's: one row of figures."""
    import numpy as np

    schema = read_artifact(result.run_dir, "input_schema")
    expected = predict_rows(pipeline, frame, schema).reset_index(drop=True)
    numbers = [c for c in expected.columns if c != "prediction" or schema["task"] != "classification"]
    return pd.DataFrame({"rows": [len(frame)],
                         "same_predictions": [bool((served["prediction"] == expected["prediction"]).all())],
                         "max_abs_diff": [float(np.max(np.abs(served[numbers].to_numpy(float)
                                                              - expected[numbers].to_numpy(float))))]},
                        index=[result.model_uri])


def _experiment_id(name: str, tracking_uri: str) -> str:
    import mlflow

    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    artifacts = local_store_paths(tracking_uri)
    return mlflow.create_experiment(name, artifact_location=artifacts.as_uri() if artifacts else None)


def run_parameters(run_dir: Path, params) -> dict[str, Any]:
    """The parameters the run's steps used: the manifest's under ``mlh run`` (every step got them), else
    (notebooks run by hand, which share their defaults) this step's ``params``."""
    manifest = Path(run_dir) / MANIFEST
    if manifest.is_file():
        return dict(json.loads(manifest.read_text(encoding="utf-8"))["params"])
    return params.model_dump(mode="json")


def _flat_params(values: dict[str, Any], spec: dict[str, Any]) -> dict[str, str]:
    values = dict(values)
    values |= {"spec.model": spec["model"], "spec.primary_metric": spec["primary_metric"],
               "spec.n_features": sum(len(v) for v in spec["features"].values())}
    values |= {f"spec.estimator.{k}": v for k, v in spec.get("estimator_params", {}).items()}
    return {key: str(value)[:6000] for key, value in values.items()}


def _flat_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    flat = {f"test_{name}": float(value) for name, value in metrics["test"].items()}
    for name, spread in metrics.get("cv", {}).items():
        flat |= {f"cv_{name}_mean": float(spread["mean"]), f"cv_{name}_std": float(spread["std"])}
    return flat


def _log_run_files(run_dir: Path, skip_notebooks: tuple[str, ...]) -> list[str]:
    import mlflow

    logged = []
    for notebook in sorted(run_dir.glob("*.ipynb")):
        if notebook.name not in skip_notebooks:
            mlflow.log_artifact(str(notebook), artifact_path="notebooks")
            logged.append(f"notebooks/{notebook.name}")
    for step in STEPS.values():
        folder = run_dir / step.folder
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix.lower() not in _SKIPPED_SUFFIXES and not path.name.startswith("."):
                where = Path("reports", step.folder, *path.relative_to(folder).parts[:-1]).as_posix()
                mlflow.log_artifact(str(path), artifact_path=where)
                logged.append(f"{where}/{path.name}")
    manifest = run_dir / MANIFEST
    if manifest.is_file():
        mlflow.log_artifact(str(manifest), artifact_path="reports")
        logged.append(f"reports/{MANIFEST}")
    return logged


def log_model(model_dir: Path, served: Path, input_example: pd.DataFrame):
    """Log the model folder's ``served`` file and input schema as an MLflow model from code (in the active
    run); return MLflow's ``ModelInfo``."""
    import mlflow

    schema = json.loads((model_dir / artifact_file("input_schema")).read_text(encoding="utf-8"))
    versions = package_versions()
    requirements = [f"{name}=={versions[name]}" for name in
                    ("mlflow", "scikit-learn", "xgboost", "pandas", "numpy", "skops", "onnxruntime")
                    if versions[name] != "not installed"]
    with tempfile.TemporaryDirectory() as folder:
        code = Path(folder) / "served_model.py"
        code.write_text(_MODEL_CODE, encoding="utf-8")
        return mlflow.pyfunc.log_model(
            name="model", python_model=str(code),
            artifacts={"model": str(served), "input_schema": str(model_dir / artifact_file("input_schema"))},
            code_paths=[str(Path(__file__).resolve().parents[1])],  # ships mlhelpers with the model
            signature=model_signature(schema), input_example=input_example,
            pip_requirements=requirements)
