"""Run parameters: one typed schema for the CLI, papermill and the notebooks.

Config flows one way: YAML -> papermill -> the notebook's parameters cell -> function
arguments. Everything here is pure: importing this module reads and writes nothing.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from mlhelpers.core import sources
from mlhelpers.core.classes import RareClassError, auto_task, plan_rare_classes
from mlhelpers.core.engine import EngineError, check_engine_params
from mlhelpers.core.io import check_data_file, file_format, load_table, read_columns
from mlhelpers.core.metrics import CLASSIFICATION_METRICS, REGRESSION_METRICS
from mlhelpers.core.models import LEADERBOARD_MODELS, ZOO
from mlhelpers.core.sniff import check_compressed
from mlhelpers.core.tables import DUPLICATE_SHARE, MIN_KNOWN_TARGETS, TIME_FIX, drop_missing_target, unplaced_times
from mlhelpers.core.values import convert_table

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MAX_SEED = 2**32 - 1          # numpy's and scikit-learn's limit for a seed
MAX_ERRORS_SHOWN = 10
_CHOICES = {"primary_metric": ("metric", CLASSIFICATION_METRICS + REGRESSION_METRICS),
            "selected_model": ("model", LEADERBOARD_MODELS)}


class ParamsError(ValueError):
    """Bad parameters: the message names the key and the fix."""


class Params(BaseModel):
    """Every parameter a run takes; flat keys so papermill's ``-p key value`` works."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    data_path: str = Field("data/credit.csv", description="data file (CSV, Parquet, Excel, JSON lines, SQLite or DuckDB), a folder of Parquet or CSV files, or a glob of them; relative paths start at the project root")
    data_query: str | None = Field(None, description="SQL query, required when data_path is a SQLite or DuckDB database")
    data_sheet: str | int | None = Field(None, description="the Excel sheet holding the table (its name, or 0-based index), required when the workbook has several")
    target: str = Field("Status", description="the column to predict")
    task: Literal["auto", "classification", "regression"] = Field("auto", description="auto infers it from the target")
    primary_metric: str = Field("auto", description="auto picks one from the task and class balance")
    test_size: float = Field(0.2, gt=0, lt=1, description="held-out fraction, strictly between 0 and 1")
    cv_folds: int = Field(5, ge=2, le=50, description="cross-validation folds, 2 to 50")
    # merge by default: a class this small cannot be scored honestly either way; merged, its rows still teach the model
    # and the run finishes, saying everywhere what it merged. refuse suits a label set that is a contract (README).
    rare_classes: Literal["merge", "refuse"] = Field("merge", description=(
        "target classes too small for a test row and a row in every CV fold: merge into one class 'other' "
        "(default: the run goes on, records and serves it) or refuse (stop, naming them)"))
    seed: int = Field(42, ge=0, le=MAX_SEED, description="drives every random choice, 0 to 4294967295 (2**32 - 1)")
    group_column: str | None = Field(None, description="rows sharing a group stay on one side of every split")
    time_column: str | None = Field(None, description="split by time: test and validation rows come after training rows")
    group_duplicates: bool = Field(True, description=f"copies of rows (features and target) stay on one side of every split when they exceed {DUPLICATE_SHARE:.0%} of rows")
    drop_columns: list[str] = Field(default_factory=list, description="columns never used as features")
    keep_columns: list[str] = Field(default_factory=list, description="columns the user vouches for: never dropped as leakage")
    models: list[Literal[ZOO]] = Field(default_factory=lambda: list(ZOO), min_length=1, description="baseline zoo, cheapest first")
    selected_model: str = Field("auto", description="model to export; auto takes the leaderboard's choice, or a leaderboard row such as 'xgboost (tuned)'")
    time_budget_seconds: float = Field(600, gt=0, description="the baseline step's bound, diagnostics included: every model is fitted on as many rows as its share allows")
    tune_seconds: float = Field(30, ge=0, le=3600, description="seconds for tuning the best model family after the zoo (its own leaderboard row), at most what the zoo leaves of time_budget_seconds, 0 to 3600; 0 turns tuning off")
    profile_sample_rows: int = Field(50_000, ge=100, description="rows above this are profiled on a sample")
    # ydata draws two histograms per numeric column, ~0.4 s each column whatever the rows: most of its report's time
    profile_histograms: int = Field(6, ge=-1, description="columns the profile report draws histograms for (the target and those most related to it); -1 for every column")
    serving_budget_seconds: float = Field(6, gt=0, description="the export step's serving measurements, all formats together, take about this long (more: steadier figures)")
    n_jobs: int = Field(-1, description="cores to use; -1 means all")
    run_dir: str = Field("runs/interactive", description="run folder the steps read and write")
    mlflow_tracking_uri: str = Field("", description="empty means a local SQLite store under runs/")
    mlflow_experiment: str = Field("mlhelpers", min_length=1, description="MLflow experiment name")
    mlflow_parent_run_id: str = Field("", description="MLflow run to log this run under (mlh sweep sets it); empty for none")
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

    @field_validator("data_sheet")
    @classmethod
    def _sheet(cls, value: str | int | None) -> str | int | None:
        if isinstance(value, int) and value < 0:
            raise ValueError("a sheet index counts from 0; use 0 for the first sheet, or the sheet's name")
        if isinstance(value, str) and not value.strip():
            raise ValueError("must not be empty; give the sheet's name or 0-based index, or leave it out")
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


def _format_error(error: dict[str, Any], source: str, schema: type[BaseModel] = Params) -> str:
    key = ".".join(str(part) for part in error["loc"]) or "(file)"
    top_key = str(error["loc"][0]) if error["loc"] else ""
    if error["type"] == "extra_forbidden":
        hint = _did_you_mean(top_key, list(schema.model_fields))
        return f"{source}: unknown key {top_key!r}{hint}."
    field = schema.model_fields.get(top_key)
    expected = f" ({field.description})" if field is not None and field.description else ""
    message = error["msg"].removeprefix("Value error, ")
    return f"{source}: key {key!r}: {message}; got {short_repr(error.get('input'))}{expected}."


def short_repr(value: Any) -> str:
    """``repr(value)`` cut short (a few items, 60 characters per string)."""
    # Bounded whatever the value: a YAML alias bomb once turned one message into gigabytes.
    import reprlib

    shortener = reprlib.Repr()
    shortener.maxlevel, shortener.maxlist, shortener.maxdict, shortener.maxstring, shortener.maxother = 2, 4, 4, 60, 60
    return shortener.repr(value)


def validate_params(values: dict[str, Any], source: str = "params", check_data: bool = True) -> Params:
    """Validate raw parameter values; raise ``ParamsError`` naming the key and the fix.

    With ``check_data`` the data file must exist and every named column must be in it.
    """
    params = parse_params(Params, values, source)
    if check_data:
        _check_against_data(params, source)
        _check_engine(params, source)
    return params


def parse_params(schema: type[BaseModel], values: dict[str, Any], source: str = "params") -> BaseModel:
    """``values`` as an instance of the pydantic ``schema`` (``Params``, or an after-pipeline notebook's own);
    raise ``ParamsError`` naming each bad key (unknown keys with a "did you mean" hint) and the fix."""
    try:
        return schema(**values)
    except ValidationError as exc:
        errors = exc.errors()
        lines = [_format_error(e, source, schema) for e in errors[:MAX_ERRORS_SHOWN]]
        if len(errors) > MAX_ERRORS_SHOWN:
            lines.append(f"{source}: and {len(errors) - MAX_ERRORS_SHOWN} more problems.")
        if any(e["type"] == "extra_forbidden" for e in errors):  # once, not after every unknown key
            lines.append(f"{source}: known keys: {', '.join(schema.model_fields)}.")
        raise ParamsError("\n".join(lines)) from None


def _check_against_data(params: Params, source: str) -> None:
    if not sources.source_exists(params.data_file):
        raise ParamsError(f"{source}: key 'data_path': file {params.data_file} does not exist; "
                          "point data_path at a data file (relative paths start at the project root).")
    try:
        if sources.is_multi_file(params.data_file) and params.data_sheet is not None:
            raise ParamsError(f"{source}: key 'data_sheet' ({params.data_sheet!r}) applies to one Excel workbook, "
                              f"and data_path {params.data_file} names a folder or glob of files; remove data_sheet.")
        if not sources.is_multi_file(params.data_file):
            check_data_file(params.data_file, params.data_sheet)
            check_compressed(params.data_file)  # a truncated archive is refused now, not halfway through explore
        columns = read_columns(params.data_file, query=params.data_query, sheet=params.data_sheet)
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
    for key in ("group_column", "time_column"):  # both ran to the end: a time split ordered by the answer itself
        if getattr(params, key) == params.target:
            raise ParamsError(f"{source}: key {key!r} names the target {params.target!r}, so the answer would decide "
                              f"the split; point {key} at another column, or remove it.")
    if params.group_column and params.time_column:  # the baseline's time split would quietly ignore the groups
        raise ParamsError(f"{source}: keys 'group_column' and 'time_column' are both set; a split follows either time "
                          "or groups, not both; remove one.")


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


def check_table(params: Params, source: str = "params") -> dict[str, Any] | None:
    """Read the table and check what a run needs of it (``mlh validate`` calls it, so a run that would be refused
    is refused before it starts): ``time_column`` holds dates or numbers in every row with a target, the target
    has at least ``MIN_KNOWN_TARGETS`` known values and two distinct ones (the explore step refuses both, later),
    and the ``rare_classes`` policy applies to its classes. Returns the plan (``core.classes``), or None when the
    target is a number and ``task`` is auto, or regression. Raises ``ParamsError`` naming the key.

    Under ``engine: dask`` only the target column is read (every file, in order), never the whole table."""
    if params.engine == "dask":  # the target column alone, every file on this process's threads
        from mlhelpers.core import lazy

        table = lazy.read_lazy(params.data_file)
        if table.npartitions < lazy.MIN_PARTITIONS:
            raise ParamsError(f"{source}: key 'data_path': {lazy.too_few_partitions(table.npartitions)}")
        frame = lazy.pandas_like(table.frame[[params.target]].compute(), table.object_bools)
    else:
        frame = load_table(params.data_file, query=params.data_query, sheet=params.data_sheet)
    frame = _as_explore_reads(frame, params)
    frame, n_missing = drop_missing_target(frame, params.target)
    if params.time_column:
        _check_time_column(frame[params.time_column], params.data_file.name, source)
    y = frame[params.target]
    if len(y) < MIN_KNOWN_TARGETS:
        raise ParamsError(f"{source}: key 'target': only {len(y)} row(s) of {params.data_file.name} have a known "
                          f"{params.target!r} ({n_missing:,} missing); a model needs at least {MIN_KNOWN_TARGETS}. "
                          "Point target at the column to predict, or fill it in.")
    if y.nunique() < 2:
        only = short_repr(y.astype(object).iloc[0])  # object: numpy's 0 shows as 0, not np.int64(0)
        raise ParamsError(f"{source}: key 'target': {params.target!r} holds a single value ({only}) "
                          f"in all {len(y):,} rows with a known target: there is nothing to predict. Point target "
                          "at the column to predict, or check the data selection.")
    if params.task == "regression" or (params.task == "auto" and auto_task(y)[0] == "regression"):
        return None
    try:
        return plan_rare_classes(y, policy=params.rare_classes, cv_folds=params.cv_folds, test_size=params.test_size)
    except RareClassError as exc:
        raise ParamsError(f"{source}: key 'rare_classes': {exc}") from None


def _as_explore_reads(frame: pd.DataFrame, params: Params) -> pd.DataFrame:
    """The target and time columns with the explore step's value conversions (``core.values``): an age column with
    a few 'n/a' and 'NULL' in it is a number there, and validate had called its 70 ages rare classes."""
    names = [name for name in (params.target, params.time_column) if name and name in frame.columns]
    files = sources.data_files(params.data_file) if sources.is_multi_file(params.data_file) else [params.data_file]
    converted, _ = convert_table(frame[names], target=params.target, from_text=file_format(files[0]) == "csv")
    return frame.assign(**{name: converted[name] for name in names})


def _check_time_column(times: pd.Series, file_name: str, source: str) -> None:
    """The baseline orders rows by ``time_column`` (core.tables.parse_times) and refuses a row it cannot place."""
    problem = unplaced_times(times, f" in {file_name}")
    if problem:
        raise ParamsError(f"{source}: key 'time_column': {problem}; {TIME_FIX}.")


_NOTEBOOK_NAMES = {"In", "Out", "exit", "quit", "get_ipython", "open"}


def validate_notebook_params(namespace: dict[str, Any], schema: type[BaseModel] = Params):
    """Validate the parameters a notebook holds (pass ``globals()``) the same way the CLI does.

    Papermill injects every ``-p``/``-f`` value as a variable; any plain value bound to a
    name the schema does not know is reported as an unknown key, so a typo is never ignored.
    Call it right after the parameters cell. The pipeline steps use ``Params`` (their data
    file and columns are checked too); the compare and monitor notebooks pass their own schema.
    """
    injectable = (str, int, float, bool, list, dict, type(None))
    values = {name: value for name, value in namespace.items()
              if not name.startswith("_") and name not in _NOTEBOOK_NAMES
              and isinstance(value, injectable)}
    if schema is Params:
        return validate_params(values, source="notebook parameters")
    return parse_params(schema, values, source="notebook parameters")
