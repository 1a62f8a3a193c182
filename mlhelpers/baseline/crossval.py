"""The zoo: cross-validation of each model, cheapest first, the leaderboard and the selection.

The notebook calls ``run_zoo`` on the data (``mlhelpers.baseline.inputs``) and split
(``mlhelpers.baseline.splits``); ``mlhelpers.baseline.results`` writes what it found and
``mlhelpers.baseline.diagnostics`` inspects the selected model. Every random choice comes from
``seed``; the test rows are never fitted on.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlhelpers.baseline import BaselineError
from mlhelpers.baseline.inputs import BaselineData
from mlhelpers.baseline.splits import Split
from mlhelpers.core.metrics import LOWER_IS_BETTER, scores
from mlhelpers.core.models import ZOO, build_pipeline, build_preprocessor, predict_on_one_thread, zoo_params

__all__ = ["ModelResult", "ZooResult", "cross_validate_model", "run_zoo", "openmp_threads"]

XGB_MAX_TREES = 400       # boosting rounds cap (XGBoost, HistGradientBoosting); early stopping picks the number
XGB_EARLY_STOPPING = 20   # rounds without improvement on the inner validation split
# Below this many rows OpenMP models (HistGradientBoosting) run on one thread: thread start-up
# costs more than it saves, and OpenMP's busy waiting slows fits 10-50x when other processes
# share the cores (measured: 0.7 s on one thread vs 10-50 s on two for 2,850 rows under load).
OPENMP_MIN_ROWS = 50_000


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


def openmp_threads(n_rows: int, n_jobs: int):
    """A context limiting OpenMP threads: one for small data, else ``n_jobs`` (-1: all cores)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1 if n_rows < OPENMP_MIN_ROWS else (n_jobs if n_jobs > 0 else None), user_api="openmp")


def _fit_fold(spec: dict[str, Any], X: pd.DataFrame, y: np.ndarray, fold: int, fit_rows: np.ndarray,
              val_rows: np.ndarray, metrics_: list[str], n_classes: int | None, cache: dict | None = None):
    """Fit one fold (preprocessing included, on the fold's rows only), predict its validation rows."""
    with openmp_threads(len(fit_rows), spec["n_jobs"]):
        return _fit_fold_unlimited(spec, X, y, fold, fit_rows, val_rows, metrics_, n_classes, cache)


def _preprocessed(spec: dict[str, Any], X: pd.DataFrame, y: np.ndarray, fold: int, fit_rows: np.ndarray,
                  val_rows: np.ndarray, cache: dict | None):
    """The fold's preprocessor fitted on its fit rows, the transformed fit and validation rows, and the
    seconds that took. The tree models and the dummy share one configuration (integer codes), so with a
    ``cache`` it is fitted once per fold and reused; each model is still charged the full time."""
    shared = spec["model"] != "linear"
    key = (fold, "codes")
    if shared and cache is not None and key in cache:
        return cache[key]
    started = time.perf_counter()
    preprocess = build_preprocessor(spec["features"], spec["model"], seed=spec["seed"])
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
    predict_on_one_thread(model)  # threads would sum a forest's trees in a varying order: other last digits
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

    def out_of_fold(self, model: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The training rows' targets and ``model``'s (the selected one's) out-of-fold predictions,
        for the rows some fold validated."""
        result = self.results[model or self.selected]
        y = self.data.y[self.data.X.index.get_indexer(self.split.train_index)]
        seen = ~np.isnan(result.oof).reshape(len(y), -1).any(axis=1)
        return y[seen], result.oof[seen]

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



