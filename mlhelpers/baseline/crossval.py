"""The zoo: cross-validation of each model, cheapest first, within the step's time budget (a race when short).

The notebook calls ``run_zoo`` on the data (``mlhelpers.baseline.inputs``) and split
(``mlhelpers.baseline.splits``) with the step's ``budget.Budget``: every model is scored, on all the training rows
or on the largest seeded sample its share of the budget allows. ``mlhelpers.baseline.selection`` holds the results,
the choice and the leaderboard; ``mlhelpers.baseline.results`` writes them and ``mlhelpers.baseline.diagnostics``
inspects the selected model. Every random choice comes from ``seed``; the test rows are never fitted on.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

from mlhelpers.baseline import BaselineError, race
from mlhelpers.baseline.budget import Budget, capped_rows
from mlhelpers.baseline.inputs import BaselineData
from mlhelpers.baseline.selection import (ModelResult, ZooResult, joined, pipeline_spec, rank, trees_scale,
                                          with_trees)
from mlhelpers.baseline.splits import Split
from mlhelpers.baseline.stopping import EARLY_STOPPING_SHARE, early_stopping_rows, fit_xgboost_early_stopping, patience
from mlhelpers.core.metrics import scores
from mlhelpers.core.models import ZOO, build_pipeline, build_preprocessor, sample_weights, zoo_params
from mlhelpers.core.threads import native_threads, predict_on_one_thread

__all__ = ["ModelResult", "ZooResult", "cross_validate_model", "run_zoo", "rank", "Budget"]

XGB_MAX_TREES = 400       # boosting rounds cap (XGBoost, HistGradientBoosting); early stopping picks the number
# The time budget: each model gets a share of what remains in proportion to its weight (the strongest families the
# most; what a model leaves unspent goes to the next) and its cost is measured on one fold of PROBE_ROWS rows (more
# while cheap: _rows_within). A model whose share cannot cover every training row is cross-validated on a seeded
# sample, never fewer than MIN_CAP_ROWS rows (a tiny budget can then overrun: below that a score says little).
PROBE_ROWS = 1_000
PROBE_SHARE = 0.1
MIN_CAP_ROWS = 1_000
SHARE_WEIGHTS = {"dummy": 1, "linear": 4, "random_forest": 5, "hist_gradient_boosting": 8, "xgboost": 10}
OVERRUN = 1.5  # a race's leader whose other folds project past this multiple of what is left is capped again


def _fit_fold(spec: dict[str, Any], X: pd.DataFrame, y: np.ndarray, fold: int, fit_rows: np.ndarray,
              val_rows: np.ndarray, metrics_: list[str], n_classes: int | None, cache: dict | None = None):
    """Fit one fold (preprocessing included, on the fold's rows only), predict its validation rows."""
    with native_threads(len(fit_rows), spec["n_jobs"]):
        return _fit_fold_unlimited(spec, X, y, fold, fit_rows, val_rows, metrics_, n_classes, cache)


def _preprocessed(spec: dict[str, Any], X: pd.DataFrame, y: np.ndarray, fold: int, fit_rows: np.ndarray,
                  val_rows: np.ndarray, cache: dict | None):
    """The fold's preprocessor fitted on its fit rows, the transformed fit and validation rows, and the
    seconds that took. The tree models and the dummy share one configuration (integer codes), so with a
    ``cache`` it is fitted once per fold and reused; each model is still charged the full time."""
    shared = spec["model"] != "linear"
    key = (fold, "codes", len(fit_rows), len(val_rows))
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
        for other in [k for k in cache if k[2:] != key[2:]]:
            del cache[other]  # another row cap: its transformed rows would only hold memory
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
        best_trees = fit_xgboost_early_stopping(model, Z_fit, y_fit, spec, XGB_MAX_TREES, sample_weights(spec, y_fit))
    elif spec["model"] == "hist_gradient_boosting":
        # early stopping on an inner 10% validation split; the refit takes the median iterations, scaled
        model.set_params(early_stopping=True, max_iter=max(XGB_MAX_TREES, model.max_iter),
                         n_iter_no_change=patience(model.learning_rate), validation_fraction=EARLY_STOPPING_SHARE)
        if n_classes and np.bincount(y_fit, minlength=n_classes).min() < 2:  # its own stratified split would fail
            inner_fit, inner_val = early_stopping_rows(y_fit, model.validation_fraction, spec["seed"], True)
            model.fit(Z_fit[inner_fit], y_fit[inner_fit], X_val=Z_fit[inner_val], y_val=y_fit[inner_val])
        else:
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


def cross_validate_model(model: str, data: BaselineData, split: Split, *, seed: int = 42, n_jobs: int = -1,
                         keep_models: bool = False, cache: dict | None = None,
                         rows: np.ndarray | None = None, fold_numbers: list[int] | None = None,
                         estimator_params: dict[str, Any] | None = None) -> ModelResult:
    """Cross-validate ``model`` on the training rows of ``split``, fold by fold.

    Each fold builds a fresh pipeline (``modeling.build_pipeline``) and fits it, preprocessing
    included, on that fold's rows only. XGBoost and HistGradientBoosting stop early on an inner
    validation split; the median number of trees (iterations) over the folds goes into
    ``estimator_params`` so a refit needs no validation split and is deterministic. Pass the same
    ``cache`` dict to several calls to fit the tree models' shared preprocessing once per fold. ``rows``
    (positions into the training rows) restricts every fold to those rows: fitted and validated on them only.
    ``fold_numbers`` runs only those folds of the split (the zoo's race: fold 0 first, the rest for the models
    that stay in it; ``joined`` puts the two parts together as one cross-validation).
    ``estimator_params`` override the zoo's (``zoo_params``) for this model: the tuning stage's candidates.
    """
    train_rows = split.positions(data.X)
    folds = split.folds if rows is None else _restricted(split.folds, rows, len(train_rows))
    used = train_rows if rows is None else train_rows[rows]
    estimator_params = zoo_params(model, data.task, data.y[used], data.primary_metric) | dict(estimator_params or {})
    spec = pipeline_spec(data, model, seed, n_jobs, estimator_params)
    # Folds index the loaded table directly (positions of their training rows): no copy of the training rows.
    # Folds run one after another: every model is multi-threaded itself (forest n_jobs, OpenMP boosting,
    # BLAS in the Newton-Cholesky logistic regression), and parallel folds would multiply peak memory.
    numbers = list(range(len(folds))) if fold_numbers is None else list(fold_numbers)
    runs = []
    for fold in numbers:  # the split's fold numbers: the shared preprocessing is cached under them
        fit_rows, val_rows = folds[fold]
        runs.append(_fit_fold(spec, data.X, data.y, fold, train_rows[fit_rows], train_rows[val_rows], data.metrics,
                              data.n_classes, cache))
    width = (data.n_classes,) if data.n_classes else ()
    oof = np.full((len(train_rows),) + width, np.nan)
    fold_scores: dict[str, list[float]] = {metric: [] for metric in data.metrics}
    for fold, (_, prediction, fold_score, *_rest) in zip(numbers, runs):
        oof[folds[fold][1]] = prediction
        for metric, value in fold_score.items():
            fold_scores[metric].append(value)
    trees = [run[5] for run in runs if run[5] is not None]
    # the export refits on every training row; a fold's early stopping fitted its rows less the inner validation
    scale = trees_scale(len(train_rows), [round(len(folds[fold][0]) * (1 - EARLY_STOPPING_SHARE)) for fold in numbers]
                        ) if trees else 1.0
    return ModelResult(model=model, estimator_params=with_trees(model, estimator_params, trees, scale),
                       fold_scores=fold_scores, fit_seconds=[run[3] for run in runs],
                       predict_seconds=[run[4] for run in runs], oof=oof,
                       fold_models=[run[0] for run in runs] if keep_models else [runs[-1][0]],
                       last_fold=numbers[-1], train_rows=len(train_rows) if rows is None else len(rows),
                       rows=rows, trees=trees or None, trees_scale=scale,
                       fold_numbers=None if fold_numbers is None else numbers)


def projected_seconds(first_fold_seconds: float, folds: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Seconds all ``folds`` will take, from the first one's: in proportion to the rows each fits and predicts,
    not to their number. A time split's folds grow (its first is the smallest: a sixth of the rows of five folds),
    so five times the first fold once projected 200 s for a 400 s model on a 373k-row table."""
    first = len(folds[0][0]) + len(folds[0][1])
    return first_fold_seconds * sum(len(fit) + len(val) for fit, val in folds) / max(first, 1)


def _restricted(folds: list[tuple[np.ndarray, np.ndarray]], rows: np.ndarray, n_rows: int):
    """``folds`` keeping only ``rows``: each fold's fit and validation rows among them, in the same order."""
    kept = np.zeros(n_rows, dtype=bool)
    kept[rows] = True
    return [(fit_rows[kept[fit_rows]], val_rows[kept[val_rows]]) for fit_rows, val_rows in folds]


def run_zoo(data: BaselineData, split: Split, *, models: list[str] | tuple[str, ...] | None = None,
            seed: int = 42, n_jobs: int = -1, time_budget_seconds: float = 600.0, budget: Budget | None = None,
            keep_models: bool = False) -> ZooResult:
    """Cross-validate every model, cheapest first, within the time budget.

    ``budget`` (the step's clock, started before the data was read) or else a new ``Budget(time_budget_seconds)``:
    the zoo spends what the later parts do not hold. Each model gets a share of it (``SHARE_WEIGHTS``) for its
    whole cross-validation; when a probe (one fold of ``PROBE_ROWS`` rows) says the share cannot cover every
    training row, it is cross-validated on the largest seeded, stratified sample that it can
    (``budget.capped_rows``: the same seed always gives the same rows), at least ``MIN_CAP_ROWS``. Every model is
    scored on the first fold; then ``race.finishers`` says which go on to the other folds: all of them when the
    budget allows (exactly a plain cross-validation), else the best first-fold scores (``folds`` on the
    leaderboard). ``train_rows`` on the leaderboard says how many rows each used; ``selection.select`` chooses.
    """
    models = list(models or ZOO)
    unknown = [m for m in models if m not in ZOO]
    if unknown:
        raise BaselineError(f"unknown models {unknown}; choose from {', '.join(ZOO)}.")
    budget = budget if budget is not None else Budget(time_budget_seconds)
    if not data.features.get("text") or all(role == "text" for role, cols in data.features.items() if cols):
        budget.release("text_ablation")  # no ablation will run: the zoo may spend its share
    ordered = sorted(dict.fromkeys(models), key=ZOO.index)
    started = time.perf_counter()
    n_train = len(split.train_index)
    order = capped_rows(data.y[split.positions(data.X)] if data.n_classes else None, n_train, seed,
                        folds=split.folds)
    cache: dict = {}  # per-fold preprocessing shared by the dummy and the tree models
    first: dict[str, ModelResult] = {}
    remaining: dict[str, float] = {}  # each model's projected seconds for its other folds
    fold_seconds: dict[str, float] = {}
    fold_rows = sum(len(fit) + len(val) for fit, val in split.folds) / n_train  # a row's fits and validations
    for position, model in enumerate(ordered):
        # a share of what is left once the models before it finish their folds (what they leave goes to the next)
        share = max(budget.available() - sum(remaining.values()), 0.0) * SHARE_WEIGHTS[model] / \
            sum(SHARE_WEIGHTS[m] for m in ordered[position:])
        rows = _rows_within(model, share, data, split, order, seed, n_jobs)
        started_model = time.perf_counter()
        first[model] = cross_validate_model(model, data, split, seed=seed, n_jobs=n_jobs, keep_models=keep_models,
                                            cache=cache, rows=rows, fold_numbers=[0])
        fold_seconds[model] = time.perf_counter() - started_model
        folds = split.folds if rows is None else _restricted(split.folds, rows, n_train)
        remaining[model] = projected_seconds(fold_seconds[model], folds) - fold_seconds[model]
    # rows capped (the dummy aside) with a tuning stage to come: a short budget, raced even when the caps let
    # every model finish (race.finishers)
    short = "tuning" in budget.held and any(r.rows is not None for r in first.values() if r.model != "dummy")
    finished = race.finishers(first, remaining, budget.available(), data.primary_metric, short=short)
    results: dict[str, ModelResult] = {}
    for model in ordered:
        result = first[model]
        if model in finished and len(split.folds) > 1:
            size = n_train if result.rows is None else len(result.rows)
            # only the first-fold leader finishes without fitting: its first fold (on more rows than a probe)
            # measures the rows its folds can have in what is left
            per_row = max(fold_seconds[model] / (len(split.folds[0][0]) + len(split.folds[0][1]))
                          * (n_train / size) * fold_rows, 1e-9)
            fewer = max(MIN_CAP_ROWS, int(budget.available() / per_row))
            if remaining[model] > OVERRUN * budget.available() and fewer < size:
                result = cross_validate_model(model, data, split, seed=seed, n_jobs=n_jobs, keep_models=keep_models,
                                              cache=cache, rows=np.sort(order[:fewer]), fold_numbers=[0])
            rest = cross_validate_model(model, data, split, seed=seed, n_jobs=n_jobs, keep_models=keep_models,
                                        cache=cache, rows=result.rows, fold_numbers=list(range(1, len(split.folds))))
            result = joined(result, rest, keep_models, n_folds=len(split.folds))
        results[model] = result
    notes = {} if len(finished) == len(first) else {"race": race.race_note(first, finished, data.primary_metric,
                                                                           short)}
    cache.clear()
    leaderboard, selected, reason = rank(results, data.metrics)
    return ZooResult(leaderboard=leaderboard, results=results, selected=selected, reason=reason,
                     seconds=time.perf_counter() - started, data=data, split=split, seed=seed, n_jobs=n_jobs,
                     budget=budget, notes=notes)


def _rows_within(model: str, seconds: float, data: BaselineData, split: Split, order: np.ndarray, seed: int,
                 n_jobs: int) -> np.ndarray | None:
    """The training rows ``model`` can be cross-validated on in ``seconds`` (sorted positions, the first rows of
    ``order``), or None for all of them.

    The cost is measured on the first fold of a sample of ``PROBE_ROWS`` rows, then of 4x as many while the next
    measurement would take under ``PROBE_SHARE`` of what is left; a fold costs a fixed part (threads, checks,
    preprocessing set-up) plus a part per row (``cost_model``: from the last two measurements, else all per row,
    which overcharges). A table whose probe would hold half its rows or more is not probed: its first fold, on
    every row, is the measurement (``run_zoo`` caps from it when it projects past the share)."""
    n_train = len(order)
    fold_rows = sum(len(fit) + len(val) for fit, val in split.folds) / n_train  # each row's share of the fold fits
    train_rows = split.positions(data.X)
    size, spent = int(np.ceil(PROBE_ROWS * fold_rows / max(fold_rows - 1, 1e-9))), 0.0
    measured: list[tuple[int, float]] = []
    while True:
        if 2 * size >= n_train:
            return None
        probe = np.sort(order[:size])
        fit_rows, val_rows = _restricted(split.folds[:1], probe, n_train)[0]
        spec = pipeline_spec(data, model, seed, n_jobs, zoo_params(model, data.task, data.y[train_rows[probe]],
                                                           data.primary_metric))
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a probe's convergence or rare-class warnings are not the model's
            try:
                _fit_fold(spec, data.X, data.y, 0, train_rows[fit_rows], train_rows[val_rows], data.metrics,
                          data.n_classes, None)
            except BaselineError:
                pass  # a class missing from the probe's fold: its time still measures the cost
        probed = time.perf_counter() - started
        spent += probed
        measured.append((len(fit_rows) + len(val_rows), probed))
        fixed, per_row = cost_model(measured)
        fixed *= len(split.folds)   # every fold pays it
        per_row *= fold_rows        # seconds per sample row, all folds
        left = seconds - spent
        if fixed + per_row * n_train <= left:
            return None
        if 4 * probed > PROBE_SHARE * left:
            break
        size *= 4
    return np.sort(order[:min(n_train, max(MIN_CAP_ROWS, int((left - fixed) / per_row)))])


def cost_model(measured: list[tuple[int, float]]) -> tuple[float, float]:
    """A fold's fixed seconds and seconds per row from (rows, seconds) measurements of one fold: the line
    through the last two (a per-row cost never below a quarter of the larger one's average, so timing noise
    cannot make rows free), or all per row from a single one."""
    rows, seconds = measured[-1]
    if len(measured) < 2 or measured[-2][0] >= rows:
        return 0.0, seconds / max(rows, 1)
    smaller, before = measured[-2]
    per_row = max((seconds - before) / (rows - smaller), 0.25 * seconds / rows)
    return max(seconds - per_row * rows, 0.0), per_row
