"""Run parameters: one typed schema for the CLI, papermill and the notebooks.

Config flows one way: YAML -> papermill -> the notebook's parameters cell -> function
arguments. Everything here is pure: importing this module reads and writes nothing.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from mlhelpers.core import sources
from mlhelpers.core.engine import EngineError, check_engine_params
from mlhelpers.core.io import file_format, read_columns
from mlhelpers.core.metrics import CLASSIFICATION_METRICS, REGRESSION_METRICS
from mlhelpers.core.models import ZOO

PROJECT_ROOT = Path(__file__).resolve().parents[2]
_CHOICES = {"primary_metric": ("metric", CLASSIFICATION_METRICS + REGRESSION_METRICS),
            "selected_model": ("model", ZOO)}


class ParamsError(ValueError):
    """Bad parameters: the message names the key and the fix."""


class Params(BaseModel):
    """Every parameter a run takes; flat keys so papermill's ``-p key value`` works."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    data_path: str = Field("data/credit.csv", description="data file (CSV, Parquet, Excel, JSON lines, SQLite or DuckDB), a folder of Parquet or CSV files, or a glob of them; relative paths start at the project root")
    data_query: str | None = Field(None, description="SQL query, required when data_path is a SQLite or DuckDB database")
    target: str = Field("Status", description="the column to predict")
    task: Literal["auto", "classification", "regression"] = Field("auto", description="auto infers it from the target")
    primary_metric: str = Field("auto", description="auto picks one from the task and class balance")
    test_size: float = Field(0.2, gt=0, lt=1, description="held-out fraction, strictly between 0 and 1")
    cv_folds: int = Field(5, ge=2, le=50, description="cross-validation folds, 2 to 50")
    seed: int = Field(42, ge=0, description="drives every random choice")
    group_column: str | None = Field(None, description="rows sharing a group stay on one side of every split")
    time_column: str | None = Field(None, description="split by time: test and validation rows come after training rows")
    drop_columns: list[str] = Field(default_factory=list, description="columns never used as features")
    keep_columns: list[str] = Field(default_factory=list, description="columns the user vouches for: never dropped as leakage")
    models: list[Literal[ZOO]] = Field(default_factory=lambda: list(ZOO), min_length=1, description="baseline zoo, cheapest first")
    selected_model: str = Field("auto", description="model to export; auto takes the leaderboard's choice")
    time_budget_seconds: float = Field(600, gt=0, description="the baseline step stops adding models after this")
    profile_sample_rows: int = Field(50_000, ge=100, description="rows above this are profiled on a sample")
    n_jobs: int = Field(-1, description="cores to use; -1 means all")
    run_dir: str = Field("runs/interactive", description="run folder the steps read and write")
    mlflow_tracking_uri: str = Field("", description="empty means a local SQLite store under runs/")
    mlflow_experiment: str = Field("mlhelpers", min_length=1, description="MLflow experiment name")
    engine: Literal["pandas", "dask"] = Field("pandas", description="pandas: one process; dask: a cluster, for tables larger than memory")
    dask_scheduler: str = Field("", description="engine dask: empty starts a local cluster for the run; an address such as tcp://10.0.0.5:8786 uses that cluster")
    dask_workers: int = Field(-1, description="engine dask, local cluster: workers, -1 means one per core")
    dask_worker_memory: str = Field("2GB", min_length=1, description="engine dask, local cluster: memory limit per worker, e.g. 2GB")
    dask_sample_rows: int = Field(200_000, ge=1_000, description="engine dask: rows of the seeded sample for roles, figures, the profile and the zoo")

    @field_validator("target", "data_path", "run_dir")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("primary_metric", "selected_model")
    @classmethod
    def _known_choice(cls, value: str, info: ValidationInfo) -> str:
        kind, names = _CHOICES[info.field_name]
        known = ("auto",) + names
        if value not in known:
            raise ValueError(f"unknown {kind} {value!r}{_did_you_mean(value, known)}; choose one of {', '.join(known)}")
        return value

    @field_validator("n_jobs", "dask_workers")
    @classmethod
    def _valid_n_jobs(cls, value: int) -> int:
        if value == 0 or value < -1:
            raise ValueError("must be -1 (all cores) or a positive number of cores")
        return value

    # Resolved locations: relative paths start at the project root, wherever the caller runs.
    @property
    def data_file(self) -> Path:
        return resolve_path(self.data_path)

    @property
    def run_path(self) -> Path:
        return resolve_path(self.run_dir)

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{resolve_path('runs/mlflow.db')}"


def resolve_path(path: str | Path) -> Path:
    """An absolute path; relative ones are taken from the project root."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def _did_you_mean(word: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _format_error(error: dict[str, Any], source: str) -> str:
    key = ".".join(str(part) for part in error["loc"]) or "(file)"
    top_key = str(error["loc"][0]) if error["loc"] else ""
    if error["type"] == "extra_forbidden":
        hint = _did_you_mean(top_key, list(Params.model_fields))
        return (f"{source}: unknown key {top_key!r}{hint}. "
                f"Known keys: {', '.join(Params.model_fields)}.")
    field = Params.model_fields.get(top_key)
    expected = f" ({field.description})" if field is not None and field.description else ""
    message = error["msg"].removeprefix("Value error, ")
    return f"{source}: key {key!r}: {message}; got {error.get('input')!r}{expected}."


def validate_params(values: dict[str, Any], source: str = "params", check_data: bool = True) -> Params:
    """Validate raw parameter values; raise ``ParamsError`` naming the key and the fix.

    With ``check_data`` the data file must exist and every named column must be in it.
    """
    try:
        params = Params(**values)
    except ValidationError as exc:
        raise ParamsError("\n".join(_format_error(e, source) for e in exc.errors())) from None
    if check_data:
        _check_against_data(params, source)
        _check_engine(params, source)
    return params


def _check_against_data(params: Params, source: str) -> None:
    if not sources.source_exists(params.data_file):
        raise ParamsError(f"{source}: key 'data_path': file {params.data_file} does not exist; "
                          "point data_path at a data file (relative paths start at the project root).")
    try:
        columns = read_columns(params.data_file, query=params.data_query)
    except sources.SourceError as exc:
        raise ParamsError(f"{source}: key 'data_path': {exc}") from None
    named = {"target": [params.target], "group_column": [params.group_column],
             "time_column": [params.time_column], "drop_columns": params.drop_columns,
             "keep_columns": params.keep_columns}
    for key, names in named.items():
        for name in names:
            if name is not None and name not in columns:
                raise ParamsError(
                    f"{source}: key {key!r}: {name!r} is not a column of {params.data_file.name}"
                    f"{_did_you_mean(name, columns)}. Columns: {', '.join(columns)}.")
    if params.target in params.drop_columns:
        raise ParamsError(f"{source}: key 'drop_columns' lists the target {params.target!r}; remove it.")


def _check_engine(params: Params, source: str) -> None:
    """Dask settings that cannot work are refused here, before any step (the scheduler is contacted)."""
    if params.engine != "dask":
        return
    for key in ("group_column", "time_column"):
        if getattr(params, key):
            raise ParamsError(f"{source}: key {key!r}: engine: dask holds out whole partitions chosen at random, so "
                              f"grouped and time-ordered splits are not available; remove {key} or use engine: pandas.")
    if params.data_query or not sources.is_multi_file(params.data_file) and \
            file_format(params.data_file) not in ("parquet", "csv"):
        raise ParamsError(f"{source}: key 'data_path': engine: dask reads Parquet or CSV files (a file, a folder or a "
                          f"glob), not {params.data_file.name}; convert it to Parquet or use engine: pandas.")
    try:
        check_engine_params(params.engine, params.dask_scheduler, params.dask_workers, params.dask_worker_memory)
    except EngineError as exc:
        raise ParamsError(f"{source}: key {str(exc).split(':')[0]!r}: {str(exc).split(': ', 1)[1]}") from None


def read_params_file(path: str | Path) -> dict[str, Any]:
    """Parse a params YAML file into a dict; malformed or empty files raise ``ParamsError``."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"params file {path} does not exist; pass a YAML file such as params/demo.yaml.")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ParamsError(f"{path}: malformed YAML{line}: {problem}; fix the syntax (key: value, one per line).") from None
    if values is None:
        raise ParamsError(f"{path}: the file is empty; it needs at least 'data_path' and 'target' (see params/demo.yaml).")
    if not isinstance(values, dict):
        raise ParamsError(f"{path}: expected a mapping of key: value lines, got a {type(values).__name__}.")
    return values


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """Turn ``["cv_folds=3", "models=[dummy,linear]"]`` into typed values (YAML scalars)."""
    import yaml

    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ParamsError(f"--set {pair!r}: expected key=value, e.g. --set cv_folds=3.")
        try:
            values[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            values[key.strip()] = raw
    return values


def load_params(path: str | Path, overrides: list[str] | None = None, check_data: bool = True) -> Params:
    """Read, override and validate a params file."""
    values = read_params_file(path) | parse_overrides(overrides or [])
    return validate_params(values, source=str(path), check_data=check_data)


_NOTEBOOK_NAMES = {"In", "Out", "exit", "quit", "get_ipython", "open"}


def validate_notebook_params(namespace: dict[str, Any]) -> Params:
    """Validate the parameters a notebook holds (pass ``globals()``) the same way the CLI does.

    Papermill injects every ``-p``/``-f`` value as a variable; any plain value bound to a
    name the schema does not know is reported as an unknown key, so a typo is never ignored.
    Call it right after the parameters cell.
    """
    injectable = (str, int, float, bool, list, dict, type(None))
    values = {name: value for name, value in namespace.items()
              if not name.startswith("_") and name not in _NOTEBOOK_NAMES
              and isinstance(value, injectable)}
    return validate_params(values, source="notebook parameters")
