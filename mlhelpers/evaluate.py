"""Baseline step: metrics, the held-out split, cross-validation of the zoo, the leaderboard, diagnostics.

The notebook ``02_baseline.ipynb`` calls these in order:
``load_baseline_data`` -> ``make_split`` (+ ``write_split``) -> ``run_zoo`` -> ``write_baseline_artifacts``
-> ``check_leakage`` -> ``plot_diagnostics`` / ``threshold_table`` -> ``permutation_importances`` ->
``learning_curve_check``. Every random choice comes from ``seed``; the test rows are never fitted on.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlhelpers.config import CLASSIFICATION_METRICS, REGRESSION_METRICS

__all__ = [
    "BaselineData", "Split", "ModelResult", "ZooResult", "LeakageWarning", "BaselineError",
    "prepare_baseline_data", "load_baseline_data", "make_split", "write_split", "cross_validate_model",
    "run_zoo", "write_baseline_artifacts", "check_leakage", "score", "scores", "choose_threshold",
    "threshold_table", "plot_diagnostics", "permutation_importances", "plot_importances",
    "learning_curve_check", "plot_learning_curve",
]

LOWER_IS_BETTER = {"rmse", "mae", "log_loss"}
MIN_CLASS_ROWS = 5        # a class needs one row in the test split and two in every CV training fold
XGB_MAX_TREES = 400       # boosting rounds cap (XGBoost, HistGradientBoosting); early stopping picks the number
XGB_EARLY_STOPPING = 20   # rounds without improvement on the inner validation split
# Below this many rows OpenMP models (HistGradientBoosting) run on one thread: thread start-up
# costs more than it saves, and OpenMP's busy waiting slows fits 10-50x when other processes
# share the cores (measured: 0.7 s on one thread vs 10-50 s on two for 2,850 rows under load).
OPENMP_MIN_ROWS = 50_000
# A cross-validated score this good is more often leakage than skill.
SUSPICIOUS = {"roc_auc": 0.99, "balanced_accuracy": 0.98, "r2": 0.995}


class BaselineError(ValueError):
    """The baseline step cannot run on this data/params: the message names the problem and the fix."""


class LeakageWarning(UserWarning):
    """A cross-validated score is suspiciously perfect: a feature probably leaks the target."""


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------

def task_metrics(task: str, primary_metric: str) -> list[str]:
    """Every metric reported for ``task``, the primary one first."""
    known = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    if primary_metric not in known:
        raise BaselineError(f"primary_metric {primary_metric!r} does not fit a {task} task; "
                            f"choose one of {', '.join(known)} (or 'auto').")
    return [primary_metric] + [m for m in known if m != primary_metric]


def score(metric: str, y: np.ndarray, prediction: np.ndarray, n_classes: int | None = None) -> float:
    """One metric of predictions: class probabilities ``(n, k)`` for classification, values for regression.

    Binary metrics take class index 1 as positive; multiclass ROC AUC and average precision are
    one-vs-rest macro averages over the classes present in ``y``; F1 is macro-averaged.
    Error metrics (rmse, mae, log_loss) are positive, lower is better.
    """
    from sklearn import metrics

    y = np.asarray(y)
    if metric in REGRESSION_METRICS:
        if metric == "rmse":
            return float(np.sqrt(metrics.mean_squared_error(y, prediction)))
        if metric == "mae":
            return float(metrics.mean_absolute_error(y, prediction))
        return float(metrics.r2_score(y, prediction))
    proba = np.asarray(prediction, dtype=float)
    if proba.ndim == 1:  # a scorer hands over class 1's probability only
        proba = np.column_stack([1 - proba, proba])
    proba = proba / proba.sum(axis=1, keepdims=True)  # float32 outputs (XGBoost) sum to 1 only roughly
    k = n_classes or proba.shape[1]
    predicted = proba.argmax(axis=1)
    if metric == "log_loss":
        return float(metrics.log_loss(y, proba, labels=np.arange(k)))
    if metric == "accuracy":
        return float(metrics.accuracy_score(y, predicted))
    if metric == "balanced_accuracy":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a class absent from a small fold
            return float(metrics.balanced_accuracy_score(y, predicted))
    if metric == "f1":
        if k == 2:
            return float(metrics.f1_score(y, predicted, zero_division=0))
        return float(metrics.f1_score(y, predicted, average="macro", labels=np.unique(y), zero_division=0))
    if metric in ("roc_auc", "average_precision"):
        curve = metrics.roc_auc_score if metric == "roc_auc" else metrics.average_precision_score
        if k == 2:
            return float(curve(y, proba[:, 1])) if len(np.unique(y)) == 2 else float("nan")
        values = [curve(y == c, proba[:, c]) for c in np.unique(y) if 0 < (y == c).sum() < len(y)]
        return float(np.mean(values)) if values else float("nan")
    raise BaselineError(f"unknown metric {metric!r}; choose one of "
                        f"{', '.join(CLASSIFICATION_METRICS + REGRESSION_METRICS)}.")


def scores(metrics_: list[str], y: np.ndarray, prediction: np.ndarray, n_classes: int | None = None) -> dict[str, float]:
    """Every metric in ``metrics_`` for one set of predictions."""
    return {metric: score(metric, y, prediction, n_classes) for metric in metrics_}


def _better(metric: str, a: float, b: float) -> bool:
    return a < b if metric in LOWER_IS_BETTER else a > b


def make_scorer_for(metric: str, n_classes: int | None):
    """A scikit-learn scorer for ``metric`` (probabilities for classification), higher is better."""
    from sklearn.metrics import make_scorer

    def metric_function(y, prediction):
        return score(metric, y, prediction, n_classes)

    response = "predict" if metric in REGRESSION_METRICS else "predict_proba"
    return make_scorer(metric_function, greater_is_better=metric not in LOWER_IS_BETTER,
                       response_method=response)


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------

@dataclass
class BaselineData:
    """The features, the encoded target and the choices the explore step made."""

    X: pd.DataFrame                  # feature columns only, index = row labels of the loaded table
    y: np.ndarray                    # class indices (classification) or values (regression)
    target: str
    task: str
    primary_metric: str
    metrics: list[str]
    classes: list | None
    features: dict[str, list[str]]   # role -> columns, as in model_spec.json
    groups: pd.Series | None = None
    times: pd.Series | None = None
    leakage_suspects: list[str] = field(default_factory=list)
    excluded: dict[str, str] = field(default_factory=dict)  # column -> why it is not a feature

    @property
    def n_classes(self) -> int | None:
        return len(self.classes) if self.classes is not None else None

    def summary(self) -> pd.DataFrame:
        """Rows, task, metric, classes and the feature columns by role."""
        rows = [("rows", len(self.X)), ("task", self.task), ("primary metric", self.primary_metric)]
        if self.classes is not None:
            counts = np.bincount(self.y, minlength=len(self.classes))
            rows.append(("classes", ", ".join(f"{c}: {n} ({n / len(self.y):.0%})" for c, n in zip(self.classes, counts))))
        rows += [(f"features: {role}", ", ".join(cols)) for role, cols in self.features.items() if cols]
        rows += [(f"not used: {col}", why) for col, why in self.excluded.items()]
        return pd.DataFrame(rows, columns=["item", "value"]).set_index("item")

    def __repr__(self) -> str:
        used = sum(len(c) for c in self.features.values())
        return (f"BaselineData({len(self.X)} rows, {used} features, task={self.task!r}, "
                f"primary_metric={self.primary_metric!r}, classes={self.classes!r})")


def prepare_baseline_data(frame: pd.DataFrame, eda: dict[str, Any], *, task: str = "auto",
                          primary_metric: str = "auto", drop_columns: list[str] | None = None,
                          group_column: str | None = None, time_column: str | None = None) -> BaselineData:
    """Features by role (from ``eda.json``), the encoded target and the task/metric to use.

    ``frame`` is the loaded table with missing-target rows already dropped. ``task`` and
    ``primary_metric`` override eda.json's unless "auto". ``drop_columns`` and the group column
    are never features. Raises ``BaselineError`` when eda.json and the data disagree.
    """
    from mlhelpers.modeling import encode_target, feature_columns

    target = eda["target"]
    if target not in frame.columns:
        raise BaselineError(f"eda.json's target {target!r} is not a column of the data; rerun 01_explore "
                            "with the same data_path and target.")
    task = eda["task"] if task == "auto" else task
    metric = eda["primary_metric"] if primary_metric == "auto" else primary_metric
    metrics_ = task_metrics(task, metric)
    missing = sorted(set(eda["columns"]) - set(frame.columns))
    if missing:
        raise BaselineError(f"eda.json describes columns {missing} that the data lacks; the data changed "
                            "since the explore step: rerun 01_explore.")
    features = feature_columns(eda)
    excluded = {name: f"{info['role']}: {info.get('reason', 'dropped by the explore step')}"
                for name, info in eda["columns"].items() if info["drop"] and name != target}
    never = {name: "in drop_columns" for name in (drop_columns or [])}
    if group_column:
        never[group_column] = "group_column (groups decide the split, they are not a feature)"
    for name, why in never.items():
        for role in features:
            if name in features[role]:
                features[role].remove(name)
                excluded[name] = why
    used = [name for cols in features.values() for name in cols]
    if not used:
        raise BaselineError("no feature columns left: eda.json drops every column or drop_columns removes "
                            "the rest; keep at least one column (keep_columns in 01_explore, or fewer drop_columns).")
    y_raw = frame[target]
    if task == "classification":
        y, classes = encode_target(y_raw, task, eda.get("classes") or None)
        _check_class_sizes(y, classes)
    else:
        if not pd.api.types.is_numeric_dtype(y_raw):
            raise BaselineError(f"task is regression but target {target!r} is not numeric ({y_raw.dtype}); "
                                "set task: classification or pick a numeric target.")
        y, classes = encode_target(y_raw, task)
    return BaselineData(
        X=frame[used], y=y, target=target, task=task, primary_metric=metric, metrics=metrics_,
        classes=classes, features=features,
        groups=frame[group_column] if group_column else None,
        times=frame[time_column] if time_column else None,
        leakage_suspects=list(eda.get("leakage_suspects") or []), excluded=excluded)


def _check_class_sizes(y: np.ndarray, classes: list) -> None:
    counts = np.bincount(y, minlength=len(classes))
    if len(classes) < 2 or (counts > 0).sum() < 2:
        raise BaselineError(f"the target has a single class ({classes}); classification needs two or more.")
    small = {str(c): int(n) for c, n in zip(classes, counts) if n < MIN_CLASS_ROWS}
    if small:
        raise BaselineError(
            f"classes {small} have fewer than {MIN_CLASS_ROWS} rows: a stratified split needs one in the "
            "test split and two in every cross-validation training fold. Merge rare classes into a "
            "similar one or an 'other' class, or filter their rows out (data_query), then rerun 01_explore.")


def load_baseline_data(params) -> BaselineData:
    """Read ``explore/eda.json`` and the data file named by ``params``, and prepare them.

    Raises ``MissingArtifactError`` ("run the explore step first") when eda.json is absent.
    """
    from mlhelpers.artifacts import read_artifact
    from mlhelpers.data import drop_missing_target, load_table

    eda = read_artifact(params.run_path, "eda")
    if eda["target"] != params.target:
        raise BaselineError(f"eda.json in {params.run_path} is for target {eda['target']!r}, params say "
                            f"{params.target!r}; rerun 01_explore with this target and run_dir.")
    frame, _ = drop_missing_target(load_table(params.data_file, query=params.data_query), params.target)
    return prepare_baseline_data(frame, eda, task=params.task, primary_metric=params.primary_metric,
                                 drop_columns=list(params.drop_columns), group_column=params.group_column,
                                 time_column=params.time_column)


# ---------------------------------------------------------------------------------------------
# Split
# ---------------------------------------------------------------------------------------------

@dataclass
class Split:
    """The held-out test rows and the cross-validation folds over the training rows."""

    strategy: str                     # stratified | random | group | time
    train_index: list                 # row labels of the loaded table
    test_index: list
    folds: list[tuple[np.ndarray, np.ndarray]]  # positions into train_index: (fit rows, validation rows)
    seed: int

    def summary(self) -> pd.DataFrame:
        """Rows on each side and in each fold."""
        rows = [{"part": "train (cross-validated)", "rows": len(self.train_index)},
                {"part": "test (held out for export)", "rows": len(self.test_index)}]
        rows += [{"part": f"fold {i + 1}: fit / validate", "rows": f"{len(a)} / {len(b)}"}
                 for i, (a, b) in enumerate(self.folds)]
        return pd.DataFrame(rows).set_index("part")

    def __repr__(self) -> str:
        return (f"Split(strategy={self.strategy!r}, train={len(self.train_index)}, "
                f"test={len(self.test_index)}, folds={len(self.folds)})")


def make_split(data: BaselineData, *, test_size: float = 0.2, cv_folds: int = 5, seed: int = 42) -> Split:
    """Hold out ``test_size`` of the rows once, and build ``cv_folds`` folds over the rest.

    Time-ordered when ``data.times`` is set (the test rows and each validation fold come after
    the rows fitted on), grouped when ``data.groups`` is set (a group never straddles two sides),
    stratified for classification, random otherwise.
    """
    from sklearn.model_selection import (GroupKFold, GroupShuffleSplit, KFold, StratifiedGroupKFold,
                                         StratifiedKFold, TimeSeriesSplit, train_test_split)

    n = len(data.X)
    positions = np.arange(n)
    n_test = int(np.ceil(test_size * n))
    if n - n_test < 2 * cv_folds:
        raise BaselineError(f"{n} rows leave {n - n_test} for cross-validation, too few for cv_folds={cv_folds}; "
                            "lower cv_folds or test_size, or use more data.")
    classification = data.task == "classification"
    if data.times is not None:
        strategy = "time"
        times = pd.to_datetime(data.times, errors="coerce", format="mixed") if not pd.api.types.is_numeric_dtype(data.times) else data.times
        if pd.isna(times).any():
            raise BaselineError(f"time_column {data.times.name!r} has {int(pd.isna(times).sum())} missing or "
                                "unparseable values; fix them or drop those rows (data_query).")
        order = np.argsort(np.asarray(times), kind="stable")
        train_pos, test_pos = np.sort(order[: n - n_test]), np.sort(order[n - n_test:])
        train_order = np.argsort(np.asarray(times)[train_pos], kind="stable")
        folds = [(train_order[a], train_order[b]) for a, b in TimeSeriesSplit(n_splits=cv_folds).split(train_order)]
    elif data.groups is not None:
        strategy = "group"
        groups = data.groups.to_numpy()
        n_groups = pd.Series(groups).nunique(dropna=False)
        if n_groups < cv_folds + 1:
            raise BaselineError(f"group_column {data.groups.name!r} has {n_groups} groups; grouped splitting needs "
                                f"at least cv_folds + 1 = {cv_folds + 1}. Lower cv_folds or use another group column.")
        train_pos, test_pos = next(GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
                                   .split(positions, groups=groups))
        splitter = (StratifiedGroupKFold(cv_folds, shuffle=True, random_state=seed) if classification
                    else GroupKFold(cv_folds, shuffle=True, random_state=seed))
        folds = list(splitter.split(train_pos, data.y[train_pos], groups=groups[train_pos]))
    else:
        strategy = "stratified" if classification else "random"
        train_pos, test_pos = train_test_split(positions, test_size=n_test, random_state=seed,
                                               stratify=data.y if classification else None)
        train_pos, test_pos = np.sort(train_pos), np.sort(test_pos)
        splitter = (StratifiedKFold(cv_folds, shuffle=True, random_state=seed) if classification
                    else KFold(cv_folds, shuffle=True, random_state=seed))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "least populated class has fewer members than n_splits"
            folds = list(splitter.split(train_pos, data.y[train_pos]))
    split = Split(strategy=strategy, train_index=data.X.index[train_pos].tolist(),
                  test_index=data.X.index[test_pos].tolist(), folds=folds, seed=seed)
    if classification:
        _check_folds_hold_every_class(data, split)
    return split


def _check_folds_hold_every_class(data: BaselineData, split: Split) -> None:
    y_train = data.y[data.X.index.get_indexer(split.train_index)]
    present = np.unique(y_train)
    for i, (fit_rows, _) in enumerate(split.folds):
        counts = np.bincount(y_train[fit_rows], minlength=len(data.classes))[present]
        if counts.min() < 2:
            rare = [str(data.classes[c]) for c, n in zip(present, counts) if n < 2]
            raise BaselineError(f"cross-validation fold {i + 1} would fit on fewer than 2 rows of classes {rare}; "
                                "merge or filter rare classes, or lower cv_folds / test_size.")


def write_split(split: Split, run_dir: str | Path) -> Path:
    """Write ``baseline/split.json`` (row labels of the test and training rows) and return its path."""
    from mlhelpers.artifacts import artifact_path, write_json

    return write_json(artifact_path(run_dir, "split"), {
        "strategy": split.strategy, "seed": split.seed, "n_folds": len(split.folds),
        "test_index": split.test_index, "train_index": split.train_index})


# ---------------------------------------------------------------------------------------------
# Cross-validation
# ---------------------------------------------------------------------------------------------

@dataclass
class ModelResult:
    """One model's cross-validation: per-fold scores and timings, out-of-fold predictions."""

    model: str
    estimator_params: dict[str, Any]    # what model_spec.json records for this model
    fold_scores: dict[str, list[float]]
    fit_seconds: list[float]
    predict_seconds: list[float]
    oof: np.ndarray                     # out-of-fold predictions per training row (NaN where never validated)
    fold_models: list                   # fitted fold pipelines (the last one only unless keep_models)
    last_fold: int

    def mean(self, metric: str) -> float:
        return float(np.mean(self.fold_scores[metric]))

    def std(self, metric: str) -> float:
        return float(np.std(self.fold_scores[metric]))


def _spec(data: BaselineData, model: str, seed: int, n_jobs: int, estimator_params: dict[str, Any]) -> dict[str, Any]:
    return {"model": model, "task": data.task, "features": data.features, "seed": seed,
            "n_jobs": n_jobs, "estimator_params": estimator_params}


def _openmp_threads(n_rows: int, n_jobs: int):
    """A context limiting OpenMP threads: one for small data, else ``n_jobs`` (-1: all cores)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1 if n_rows < OPENMP_MIN_ROWS else (n_jobs if n_jobs > 0 else None), user_api="openmp")


def _fit_fold(spec: dict[str, Any], X: pd.DataFrame, y: np.ndarray, fold: int, fit_rows: np.ndarray,
              val_rows: np.ndarray, metrics_: list[str], n_classes: int | None, cache: dict | None = None):
    """Fit one fold (preprocessing included, on the fold's rows only), predict its validation rows."""
    with _openmp_threads(len(fit_rows), spec["n_jobs"]):
        return _fit_fold_unlimited(spec, X, y, fold, fit_rows, val_rows, metrics_, n_classes, cache)


def _preprocessed(spec: dict[str, Any], X: pd.DataFrame, y: np.ndarray, fold: int, fit_rows: np.ndarray,
                  val_rows: np.ndarray, cache: dict | None):
    """The fold's preprocessor fitted on its fit rows, the transformed fit and validation rows, and the
    seconds that took. The tree models and the dummy share one configuration (integer codes), so with a
    ``cache`` it is fitted once per fold and reused; each model is still charged the full time."""
    from mlhelpers.modeling import build_preprocessor

    shared = spec["model"] != "linear"
    key = (fold, "codes")
    if shared and cache is not None and key in cache:
        return cache[key]
    started = time.perf_counter()
    preprocess = build_preprocessor(spec["features"], spec["model"])
    Z_fit = preprocess.fit_transform(X.iloc[fit_rows], y[fit_rows])
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    Z_val = preprocess.transform(X.iloc[val_rows])
    entry = (preprocess, Z_fit, Z_val, fit_seconds, time.perf_counter() - started)
    if shared and cache is not None:
        cache[key] = entry
    return entry


def _fit_fold_unlimited(spec: dict[str, Any], X: pd.DataFrame, y: np.ndarray, fold: int, fit_rows: np.ndarray,
                        val_rows: np.ndarray, metrics_: list[str], n_classes: int | None, cache: dict | None):
    from sklearn.pipeline import Pipeline

    from mlhelpers.modeling import build_pipeline

    model = build_pipeline(spec).named_steps["model"]
    preprocess, Z_fit, Z_val, preprocess_seconds, transform_seconds = _preprocessed(
        spec, X, y, fold, fit_rows, val_rows, cache)
    y_fit = y[fit_rows]
    started = time.perf_counter()
    best_trees = None
    if spec["model"] == "xgboost":
        best_trees = _fit_xgboost_early_stopping(model, Z_fit, y_fit, spec)
    elif spec["model"] == "hist_gradient_boosting":
        # early stopping on an inner 10% validation split; the refit takes the median iterations
        model.set_params(early_stopping=True, max_iter=XGB_MAX_TREES)
        model.fit(Z_fit, y_fit)
        best_trees = int(model.n_iter_)
    else:
        model.fit(Z_fit, y_fit)
    fit_seconds = preprocess_seconds + time.perf_counter() - started
    started = time.perf_counter()
    prediction = model.predict_proba(Z_val) if n_classes else model.predict(Z_val)
    predict_seconds = transform_seconds + time.perf_counter() - started
    if n_classes and prediction.shape[1] != n_classes:
        raise BaselineError(f"{spec['model']} saw only {prediction.shape[1]} of {n_classes} classes in a fold; "
                            "merge or filter rare classes.")
    fold_scores = scores(metrics_, y[val_rows], prediction, n_classes)
    pipeline = Pipeline([("preprocess", preprocess), ("model", model)])  # both fitted on the fold's rows only
    return pipeline, prediction, fold_scores, fit_seconds, predict_seconds, best_trees


def _fit_xgboost_early_stopping(model, Z_fit: np.ndarray, y_fit: np.ndarray, spec: dict[str, Any]) -> int:
    """Fit XGBoost on 90% of the fold's (preprocessed) rows; stop adding trees when the other 10%
    stops improving. Returns the number of trees kept."""
    from sklearn.model_selection import train_test_split

    classification = spec["task"] == "classification"
    n_classes = len(np.unique(y_fit)) if classification else 0
    n_val = max(int(0.1 * len(y_fit)), n_classes, 1)
    inner_fit, inner_val = train_test_split(np.arange(len(y_fit)), test_size=n_val, random_state=spec["seed"],
                                            stratify=y_fit if classification else None)
    model.set_params(n_estimators=XGB_MAX_TREES, early_stopping_rounds=XGB_EARLY_STOPPING)
    model.fit(Z_fit[inner_fit], y_fit[inner_fit], eval_set=[(Z_fit[inner_val], y_fit[inner_val])], verbose=False)
    return int(model.best_iteration) + 1


def cross_validate_model(model: str, data: BaselineData, split: Split, *, seed: int = 42, n_jobs: int = -1,
                         keep_models: bool = False, cache: dict | None = None) -> ModelResult:
    """Cross-validate ``model`` on the training rows of ``split``, fold by fold.

    Each fold builds a fresh pipeline (``modeling.build_pipeline``) and fits it, preprocessing
    included, on that fold's rows only. XGBoost and HistGradientBoosting stop early on an inner
    validation split; the median number of trees (iterations) over the folds goes into
    ``estimator_params`` so a refit needs no validation split and is deterministic. Pass the same
    ``cache`` dict to several calls to fit the tree models' shared preprocessing once per fold.
    """
    from mlhelpers.modeling import zoo_params

    train_rows = data.X.index.get_indexer(split.train_index)
    X, y = data.X.iloc[train_rows], data.y[train_rows]
    estimator_params = zoo_params(model, data.task, y, data.primary_metric)
    spec = _spec(data, model, seed, n_jobs, estimator_params)
    # Folds run one after another: every model is multi-threaded itself (forest n_jobs, OpenMP boosting,
    # BLAS in the Newton-Cholesky logistic regression), and parallel folds would multiply peak memory.
    runs = [_fit_fold(spec, X, y, fold, fit_rows, val_rows, data.metrics, data.n_classes, cache)
            for fold, (fit_rows, val_rows) in enumerate(split.folds)]
    width = (data.n_classes,) if data.n_classes else ()
    oof = np.full((len(y),) + width, np.nan)
    fold_scores: dict[str, list[float]] = {metric: [] for metric in data.metrics}
    for (_, val_rows), (_, prediction, fold_score, *_rest) in zip(split.folds, runs):
        oof[val_rows] = prediction
        for metric, value in fold_score.items():
            fold_scores[metric].append(value)
    trees = [run[5] for run in runs if run[5] is not None]
    if trees and model == "xgboost":
        estimator_params = estimator_params | {"n_estimators": int(np.median(trees))}
    elif trees:
        estimator_params = estimator_params | {"max_iter": int(np.median(trees)), "early_stopping": False}
    return ModelResult(model=model, estimator_params=estimator_params, fold_scores=fold_scores,
                       fit_seconds=[run[3] for run in runs], predict_seconds=[run[4] for run in runs],
                       oof=oof, fold_models=[run[0] for run in runs] if keep_models else [runs[-1][0]],
                       last_fold=len(split.folds) - 1)


@dataclass
class ZooResult:
    """The cross-validated zoo: leaderboard, the chosen model and why, what the time budget skipped."""

    leaderboard: pd.DataFrame
    results: dict[str, ModelResult]
    selected: str
    reason: str
    skipped: list[str]
    seconds: float
    data: BaselineData
    split: Split
    seed: int
    n_jobs: int

    @property
    def best(self) -> ModelResult:
        return self.results[self.selected]

    def spec(self, model: str | None = None) -> dict[str, Any]:
        """The pipeline spec (model_spec.json's rebuild keys) for ``model``, the selected one by default."""
        result = self.results[model or self.selected]
        return _spec(self.data, result.model, self.seed, self.n_jobs, result.estimator_params)

    def summary(self) -> pd.DataFrame:
        """The choice, the reason and the models the time budget skipped."""
        return pd.DataFrame({"value": [self.selected, self.reason, ", ".join(self.skipped) or "none",
                                       f"{self.seconds:.1f}"]},
                            index=["selected model", "why", "skipped (time budget)", "seconds"])

    def __repr__(self) -> str:
        return f"ZooResult(selected={self.selected!r}, models={list(self.results)}, skipped={self.skipped})"


def run_zoo(data: BaselineData, split: Split, *, models: list[str] | tuple[str, ...] | None = None,
            seed: int = 42, n_jobs: int = -1, time_budget_seconds: float = 600.0,
            keep_models: bool = False) -> ZooResult:
    """Cross-validate each model, cheapest first, until ``time_budget_seconds`` is spent.

    A model starts only while budget remains (the first always runs); the rest are listed as
    skipped. The best primary-metric mean wins, but a simpler (earlier) model within one standard
    deviation of it is preferred.
    """
    from mlhelpers.modeling import ZOO

    models = list(models or ZOO)
    unknown = [m for m in models if m not in ZOO]
    if unknown:
        raise BaselineError(f"unknown models {unknown}; choose from {', '.join(ZOO)}.")
    ordered = sorted(dict.fromkeys(models), key=ZOO.index)
    started = time.perf_counter()
    results: dict[str, ModelResult] = {}
    skipped: list[str] = []
    cache: dict = {}  # per-fold preprocessing shared by the dummy and the tree models
    for model in ordered:
        if results and time.perf_counter() - started >= time_budget_seconds:
            skipped.append(model)
            continue
        results[model] = cross_validate_model(model, data, split, seed=seed, n_jobs=n_jobs, keep_models=keep_models,
                                              cache=cache)
    cache.clear()
    if skipped:
        warnings.warn(f"time budget of {time_budget_seconds:g} s spent after {list(results)}; skipped {skipped}. "
                      "Raise time_budget_seconds to run them.", stacklevel=2)
    selected, reason = _select(results, data.primary_metric)
    leaderboard = _leaderboard(results, data.metrics, selected)
    return ZooResult(leaderboard=leaderboard, results=results, selected=selected, reason=reason, skipped=skipped,
                     seconds=time.perf_counter() - started, data=data, split=split, seed=seed, n_jobs=n_jobs)


def _select(results: dict[str, ModelResult], metric: str) -> tuple[str, str]:
    from mlhelpers.modeling import ZOO

    valid = {m: r for m, r in results.items() if np.isfinite(r.mean(metric))}
    if not valid:
        raise BaselineError(f"no model produced a finite {metric}; the validation folds may hold a single class.")
    top = min(valid, key=lambda m: (valid[m].mean(metric) if metric in LOWER_IS_BETTER else -valid[m].mean(metric),
                                    ZOO.index(m)))
    tolerance = valid[top].std(metric)
    tied = [m for m in valid if abs(valid[m].mean(metric) - valid[top].mean(metric)) <= tolerance]
    chosen = min(tied, key=lambda m: (ZOO.index(m), np.mean(valid[m].fit_seconds)))
    best_text = f"{top} has the best {metric} ({valid[top].mean(metric):.4f} ± {tolerance:.4f})"
    if chosen == top:
        return chosen, best_text + "; no simpler model is within one standard deviation"
    return chosen, (best_text + f"; {chosen} ({valid[chosen].mean(metric):.4f}) is within one standard "
                    "deviation and simpler/faster, so it is preferred")


def _leaderboard(results: dict[str, ModelResult], metrics_: list[str], selected: str) -> pd.DataFrame:
    primary = metrics_[0]
    rows = []
    for model, result in results.items():
        row: dict[str, Any] = {"model": model}
        for metric in metrics_:
            row[f"{metric}_mean"] = result.mean(metric)
            row[f"{metric}_std"] = result.std(metric)
        row["fit_seconds"] = float(np.mean(result.fit_seconds))
        row["predict_seconds"] = float(np.mean(result.predict_seconds))
        row["selected"] = model == selected
        rows.append(row)
    frame = pd.DataFrame(rows)
    ascending = primary in LOWER_IS_BETTER
    frame = frame.sort_values(f"{primary}_mean", ascending=ascending, kind="stable", na_position="last")
    return frame.reset_index(drop=True)


def write_baseline_artifacts(zoo: ZooResult, run_dir: str | Path) -> pd.DataFrame:
    """Write ``leaderboard.csv``, ``cv_results.json`` and ``model_spec.json``; return a table of the files."""
    from mlhelpers.artifacts import artifact_path, atomic_path, write_json

    data = zoo.data
    board_path = artifact_path(run_dir, "leaderboard")
    with atomic_path(board_path) as temp:
        zoo.leaderboard.to_csv(temp, index=False)
    cv_results = write_json(artifact_path(run_dir, "cv_results"), {
        "primary_metric": data.primary_metric, "strategy": zoo.split.strategy, "n_folds": len(zoo.split.folds),
        "selected": zoo.selected, "selection_reason": zoo.reason, "skipped": zoo.skipped,
        "models": {model: {"fold_scores": r.fold_scores, "fit_seconds": r.fit_seconds,
                           "predict_seconds": r.predict_seconds, "estimator_params": r.estimator_params}
                   for model, r in zoo.results.items()}})
    best = zoo.best
    spec = zoo.spec() | {
        "target": data.target, "primary_metric": data.primary_metric, "classes": data.classes,
        "cv": {metric: {"mean": best.mean(metric), "std": best.std(metric)} for metric in data.metrics},
        "selection_reason": zoo.reason,
    }
    if data.task == "classification" and data.n_classes == 2:
        spec["decision_threshold"] = choose_threshold(zoo)
    spec_path = write_json(artifact_path(run_dir, "model_spec"), spec)
    return pd.DataFrame({"file": [str(board_path), str(cv_results), str(spec_path)]})


def check_leakage(zoo: ZooResult) -> pd.DataFrame:
    """Warn (``LeakageWarning``) about every suspiciously perfect cross-validated score.

    Returns one row per finding, or a one-row note naming the limits when nothing looks too good.
    """
    findings = []
    for model, result in zoo.results.items():
        for metric, limit in SUSPICIOUS.items():
            if metric in result.fold_scores and result.mean(metric) >= limit:
                findings.append({"model": model, "metric": metric, "mean": result.mean(metric), "limit": limit})
    if not findings:
        limits = ", ".join(f"{metric} >= {limit}" for metric, limit in SUSPICIOUS.items())
        return pd.DataFrame({"note": [f"no suspiciously perfect cross-validated score ({limits})"]})
    table = pd.DataFrame(findings, columns=["model", "metric", "mean", "limit"])
    if findings:
        suspects = zoo.data.leakage_suspects
        hint = f" The explore step flagged: {', '.join(suspects)}." if suspects else ""
        warnings.warn(
            "POSSIBLE LEAKAGE: " + "; ".join(f"{f['model']} {f['metric']} = {f['mean']:.4f}" for f in findings)
            + ". Scores this good usually mean a feature is computed from the target or known only after it "
            "(check the permutation importances below), or rows are duplicated across folds. Drop the column "
            f"(drop_columns) and rerun.{hint}", LeakageWarning, stacklevel=2)
    return table


# ---------------------------------------------------------------------------------------------
# Diagnostics (out-of-fold predictions of the selected model; the test rows stay unseen)
# ---------------------------------------------------------------------------------------------

def _oof(zoo: ZooResult, model: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    result = zoo.results[model or zoo.selected]
    y = zoo.data.y[zoo.data.X.index.get_indexer(zoo.split.train_index)]
    seen = ~np.isnan(result.oof).reshape(len(y), -1).any(axis=1)
    return y[seen], result.oof[seen]


def choose_threshold(zoo: ZooResult) -> dict[str, Any]:
    """For a binary target: the probability threshold on class 1 maximizing balanced accuracy
    (Youden's J) on out-of-fold predictions, with its scores next to those at 0.5."""
    from sklearn.metrics import roc_curve

    if zoo.data.n_classes != 2:
        raise BaselineError("a decision threshold applies to binary classification only.")
    y, proba = _oof(zoo)
    fpr, tpr, thresholds = roc_curve(y, proba[:, 1])
    finite = np.isfinite(thresholds)
    best = np.argmax((tpr - fpr)[finite])
    threshold = float(np.clip(thresholds[finite][best], 0.0, 1.0))
    return {"threshold": threshold, "positive_class": zoo.data.classes[1],
            "rule": "maximizes balanced accuracy (Youden's J) on out-of-fold predictions"}


def threshold_table(zoo: ZooResult) -> pd.DataFrame:
    """Scores of the selected model at the default 0.5 and at the chosen threshold (binary targets);
    for other tasks a one-row table saying why there is none."""
    from sklearn import metrics

    if zoo.data.n_classes != 2:
        return pd.DataFrame({"note": ["threshold choice applies to binary classification only"]})
    y, proba = _oof(zoo)
    choice = choose_threshold(zoo)
    rows = []
    for name, threshold in (("default", 0.5), ("chosen", choice["threshold"])):
        predicted = (proba[:, 1] >= threshold).astype(int)
        rows.append({"threshold": name, "value": threshold,
                     "balanced_accuracy": metrics.balanced_accuracy_score(y, predicted),
                     "precision": metrics.precision_score(y, predicted, zero_division=0),
                     "recall": metrics.recall_score(y, predicted, zero_division=0),
                     "f1": metrics.f1_score(y, predicted, zero_division=0)})
    return pd.DataFrame(rows).set_index("threshold")


def plot_confusion_matrix(y, proba, classes, ax=None, threshold: float | None = None):
    """Row-normalized confusion matrix of out-of-fold predictions (argmax, or ``threshold`` on class 1)."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    ax = ax or plt.subplots(figsize=(4, 4))[1]
    predicted = (proba[:, 1] >= threshold).astype(int) if threshold is not None else proba.argmax(axis=1)
    labels = [str(c) for c in classes]
    ConfusionMatrixDisplay.from_predictions(y, predicted, labels=np.arange(len(classes)), display_labels=labels,
                                            normalize="true", values_format=".2f", ax=ax, colorbar=False)
    ax.set_title("confusion matrix" + (f" (threshold {threshold:.2f})" if threshold is not None else ""))
    return ax


def plot_roc_pr(y, proba, classes, ax=None, kind: str = "roc"):
    """ROC (``kind="roc"``) or precision-recall curves: class 1 for binary, one-vs-rest for multiclass."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import PrecisionRecallDisplay, RocCurveDisplay

    ax = ax or plt.subplots(figsize=(4, 4))[1]
    display = RocCurveDisplay if kind == "roc" else PrecisionRecallDisplay
    shown = [1] if len(classes) == 2 else [c for c in range(len(classes)) if (y == c).any()][:8]
    for c in shown:
        display.from_predictions(y == c, proba[:, c], name=str(classes[c]), ax=ax)
    ax.set_title("ROC curve" if kind == "roc" else "precision-recall curve")
    return ax


def plot_calibration(y, proba, classes, ax=None):
    """Reliability curve: predicted probability of class 1 (binary) or of the predicted class vs observed rate."""
    import matplotlib.pyplot as plt
    from sklearn.calibration import calibration_curve

    ax = ax or plt.subplots(figsize=(4, 4))[1]
    if len(classes) == 2:
        observed, predicted = calibration_curve(y == 1, proba[:, 1], n_bins=10, strategy="quantile")
        label = f"P({classes[1]})"
    else:
        observed, predicted = calibration_curve(proba.argmax(axis=1) == y, proba.max(axis=1), n_bins=10,
                                                strategy="quantile")
        label = "confidence of predicted class"
    ax.plot([0, 1], [0, 1], ls="--", color="grey", label="perfectly calibrated")
    ax.plot(predicted, observed, marker="o", label=label)
    ax.set(xlabel="mean predicted probability", ylabel="observed frequency", title="calibration")
    ax.legend(loc="upper left", fontsize="small")
    return ax


def plot_threshold(y, proba, threshold: float, ax=None):
    """Precision, recall and balanced accuracy of class 1 against the decision threshold."""
    import matplotlib.pyplot as plt
    from sklearn import metrics

    ax = ax or plt.subplots(figsize=(4, 4))[1]
    grid = np.linspace(0.02, 0.98, 49)
    curves = {name: [] for name in ("precision", "recall", "balanced accuracy")}
    for t in grid:
        predicted = (proba[:, 1] >= t).astype(int)
        curves["precision"].append(metrics.precision_score(y, predicted, zero_division=0))
        curves["recall"].append(metrics.recall_score(y, predicted, zero_division=0))
        curves["balanced accuracy"].append(metrics.balanced_accuracy_score(y, predicted))
    for name, values in curves.items():
        ax.plot(grid, values, label=name)
    ax.axvline(threshold, color="black", ls=":", label=f"chosen {threshold:.2f}")
    ax.set(xlabel="threshold", title="threshold choice")
    ax.legend(fontsize="small")
    return ax


def plot_regression(y, predicted, ax=None, kind: str = "actual_vs_predicted"):
    """Actual vs predicted, or residuals vs predicted (``kind="residual_vs_predicted"``), on up to 2,000 rows."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import PredictionErrorDisplay

    ax = ax or plt.subplots(figsize=(4, 4))[1]
    PredictionErrorDisplay.from_predictions(y, predicted, kind=kind, subsample=2000, random_state=0, ax=ax,
                                            scatter_kwargs={"alpha": 0.3, "s": 8})
    ax.set_title(kind.replace("_", " "))
    return ax


def plot_diagnostics(zoo: ZooResult):
    """One figure of the selected model's out-of-fold diagnostics, and the figure returned.

    Classification: confusion matrix, ROC and precision-recall curves, calibration and (binary)
    the threshold choice. Regression: actual vs predicted, residuals vs predicted, residual histogram.
    """
    import matplotlib.pyplot as plt

    y, prediction = _oof(zoo)
    if zoo.data.task == "classification":
        classes = zoo.data.classes
        binary = len(classes) == 2
        fig, axes = plt.subplots(1, 5 if binary else 4, figsize=(22 if binary else 18, 4.2))
        threshold = choose_threshold(zoo)["threshold"] if binary else None
        plot_confusion_matrix(y, prediction, classes, ax=axes[0], threshold=threshold)
        plot_roc_pr(y, prediction, classes, ax=axes[1], kind="roc")
        plot_roc_pr(y, prediction, classes, ax=axes[2], kind="pr")
        plot_calibration(y, prediction, classes, ax=axes[3])
        if binary:
            plot_threshold(y, prediction, threshold, ax=axes[4])
    else:
        fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
        plot_regression(y, prediction, ax=axes[0], kind="actual_vs_predicted")
        plot_regression(y, prediction, ax=axes[1], kind="residual_vs_predicted")
        axes[2].hist(y - prediction, bins=50)
        axes[2].set(title="residuals", xlabel="actual - predicted", ylabel="rows")
    fig.suptitle(f"{zoo.selected}: out-of-fold diagnostics ({len(y)} training rows)")
    fig.tight_layout()
    return fig


def permutation_importances(zoo: ZooResult, *, max_rows: int = 2000, n_repeats: int = 5) -> pd.DataFrame:
    """Permutation importance of each input column for the selected model, on its last CV fold's
    validation rows (at most ``max_rows``, sampled with the seed): the drop in the primary metric
    when that column is shuffled. Sorted, most important first."""
    from sklearn.inspection import permutation_importance

    data, result = zoo.data, zoo.best
    train_rows = data.X.index.get_indexer(zoo.split.train_index)
    val_rows = zoo.split.folds[result.last_fold][1]
    rng = np.random.default_rng(zoo.seed)
    if len(val_rows) > max_rows:
        val_rows = np.sort(rng.choice(val_rows, size=max_rows, replace=False))
    X_val = data.X.iloc[train_rows[val_rows]]
    y_val = data.y[train_rows[val_rows]]
    scorer = make_scorer_for(data.primary_metric, data.n_classes)
    with warnings.catch_warnings(), _openmp_threads(len(X_val), zoo.n_jobs):
        warnings.simplefilter("ignore", UserWarning)
        found = permutation_importance(result.fold_models[-1], X_val, y_val, scoring=scorer, n_repeats=n_repeats,
                                       random_state=zoo.seed, n_jobs=1)
    table = pd.DataFrame({"feature": X_val.columns, "importance_mean": found.importances_mean,
                          "importance_std": found.importances_std})
    return table.sort_values("importance_mean", ascending=False, kind="stable").reset_index(drop=True)


def plot_importances(table: pd.DataFrame, ax=None, top: int = 20):
    """Horizontal bars of the ``top`` permutation importances with their standard deviations."""
    import matplotlib.pyplot as plt

    shown = table.head(top).iloc[::-1]
    ax = ax or plt.subplots(figsize=(6, 0.3 * len(shown) + 1))[1]
    ax.barh(shown["feature"].astype(str), shown["importance_mean"], xerr=shown["importance_std"])
    ax.set(xlabel="drop in score when shuffled", title="permutation importance")
    return ax


@dataclass
class LearningCurveCheck:
    """Validation score of the selected model against training rows, and the verdict."""

    table: pd.DataFrame
    verdict: str
    metric: str

    def __repr__(self) -> str:
        return self.verdict


def learning_curve_check(zoo: ZooResult, *, max_rows: int = 20_000, folds: int = 3) -> LearningCurveCheck:
    """Would more data help? Fit the selected model on growing shares of (a sample of at most
    ``max_rows``) training rows and compare the validation score at the last two sizes.

    Verdict: still rising by more than its spread across folds means more data would likely help.
    """
    from sklearn.model_selection import KFold, StratifiedKFold, learning_curve

    from mlhelpers.modeling import build_pipeline

    data = zoo.data
    train_rows = data.X.index.get_indexer(zoo.split.train_index)
    rng = np.random.default_rng(zoo.seed)
    if len(train_rows) > max_rows:
        train_rows = np.sort(rng.choice(train_rows, size=max_rows, replace=False))
    X, y = data.X.iloc[train_rows], data.y[train_rows]
    classification = data.task == "classification"
    cv = (StratifiedKFold(folds, shuffle=True, random_state=zoo.seed) if classification
          else KFold(folds, shuffle=True, random_state=zoo.seed))
    spec = zoo.spec()
    with warnings.catch_warnings(), _openmp_threads(len(X), zoo.n_jobs):
        warnings.simplefilter("ignore")
        sizes, train_scores, val_scores = learning_curve(
            build_pipeline(spec), X, y, train_sizes=[0.1, 0.25, 0.5, 1.0], cv=cv,
            scoring=make_scorer_for(data.primary_metric, data.n_classes), shuffle=True,
            random_state=zoo.seed, error_score=np.nan, n_jobs=1)
    sign = -1.0 if data.primary_metric in LOWER_IS_BETTER else 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # sizes where every fit failed give NaN, handled below
        table = pd.DataFrame({"train_rows": sizes, "train_mean": sign * np.nanmean(train_scores, axis=1),
                              "validation_mean": sign * np.nanmean(val_scores, axis=1),
                              "validation_std": np.nanstd(val_scores, axis=1)})
    metric = data.primary_metric
    sampled = (f" (on a {len(train_rows):,}-row sample of the {len(zoo.split.train_index):,} training rows)"
               if len(train_rows) < len(zoo.split.train_index) else "")
    if table["validation_mean"].isna().any() or len(table) < 2:
        verdict = "not enough rows for a learning curve (some fits failed on tiny subsets)"
    else:
        gain = sign * (table["validation_mean"].iloc[-1] - table["validation_mean"].iloc[-2])
        noise = max(float(table["validation_std"].iloc[-1]), 1e-3)
        if gain > noise:
            verdict = (f"more data would likely help: {metric} still improves by {gain:.4f} from "
                       f"{sizes[-2]} to {sizes[-1]} rows (fold spread {noise:.4f}){sampled}")
        else:
            verdict = (f"more data is unlikely to help much: {metric} changes by {gain:+.4f} from {sizes[-2]} to "
                       f"{sizes[-1]} rows, within the fold spread {noise:.4f}{sampled}; better features matter more")
    return LearningCurveCheck(table=table, verdict=verdict, metric=metric)


def plot_learning_curve(check: LearningCurveCheck, ax=None):
    """Training and validation score against training rows, with the verdict as title."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(6, 4))[1]
    table = check.table
    ax.plot(table["train_rows"], table["train_mean"], marker="o", label="training")
    ax.errorbar(table["train_rows"], table["validation_mean"], yerr=table["validation_std"], marker="o",
                label="validation")
    ax.set(xscale="log", xlabel="training rows", ylabel=check.metric, title="learning curve")
    ax.legend()
    return ax
