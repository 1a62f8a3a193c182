"""The zoo's results: each model's cross-validation (``ModelResult``), the whole zoo (``ZooResult``), which model
goes to export and the leaderboard that shows why.

``select`` takes the best primary-metric mean among the rows scored on every fold: a tuned row that leads is
kept; else a simpler (earlier in ``ZOO``) family, cross-validated on as many rows, within one standard error of
the mean per-fold difference wins. ``leaderboard_table`` lists every model's scores, rows, folds and timings,
best first. Both take the ``ModelResult``s of ``mlhelpers.baseline.crossval``; ``joined`` puts a model's
cross-validation together from the zoo race's two parts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlhelpers.baseline import BaselineError
from mlhelpers.baseline.budget import Budget
from mlhelpers.baseline.inputs import BaselineData
from mlhelpers.baseline.splits import Split
from mlhelpers.core.metrics import LOWER_IS_BETTER
from mlhelpers.core.models import TUNED_SUFFIX, ZOO

__all__ = ["ModelResult", "ZooResult", "joined", "pipeline_spec", "rank", "select", "leaderboard_table",
           "trees_scale", "with_trees"]

MAX_TREES_SCALE = 2.0  # the most a refit's trees exceed the folds' median (``trees_scale``)


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
    train_rows: int | None = None       # training rows its cross-validation used (a seeded sample when capped)
    rows: np.ndarray | None = None      # those rows (positions into the training rows) when capped, else None
    trees: list[int] | None = None      # early-stopped trees (iterations) per fold, boosting only
    trees_scale: float = 1.0            # the refit's trees over the folds' median (``trees_scale``)
    fold_numbers: list[int] | None = None  # the split's folds it was scored on (None: every fold); a race's loser: [0]

    @property
    def folds(self) -> int:
        return len(next(iter(self.fold_scores.values()), []))

    def mean(self, metric: str) -> float:
        return float(np.mean(self.fold_scores[metric]))

    def std(self, metric: str) -> float:
        return float(np.std(self.fold_scores[metric]))


def with_trees(model: str, estimator_params: dict[str, Any], trees: list[int], scale: float = 1.0) -> dict[str, Any]:
    """The parameters a refit uses: the median early-stopped number of trees (iterations) over the folds, times
    ``scale`` (``trees_scale``: the refit sees more rows than a fold's early-stopped fit)."""
    if not trees:
        return estimator_params
    count = max(1, int(round(float(np.median(trees)) * scale)))
    if model == "xgboost":
        return estimator_params | {"n_estimators": count}
    return estimator_params | {"max_iter": count, "early_stopping": False}


def trees_scale(refit_rows: int, fold_fit_rows: list[int]) -> float:
    """How many more trees the refit on ``refit_rows`` (every training row) gets than the folds' early-stopped fits
    on ``fold_fit_rows`` each: the ratio of the rows, between 1 and ``MAX_TREES_SCALE``. More rows take more trees
    before they overfit: on bench_quality's eight splits (boosting defaults, five folds: x1.39) the scaled refit
    scored better on the test rows for 10 of 16 (family, table) pairs, by up to 3.5% (attrition's average
    precision) and 1.4% (hotel rates' RMSE 13.18 -> 12.99), and worse for 6, by at most 0.5%. A capped sample's
    ratio is larger than the rows' benefit: hence the bound."""
    if not fold_fit_rows:
        return 1.0
    return float(np.clip(refit_rows / float(np.median(fold_fit_rows)), 1.0, MAX_TREES_SCALE))


def joined(first: ModelResult, rest: ModelResult, keep_models: bool = False, n_folds: int | None = None) -> ModelResult:
    """One model's cross-validation from two parts on the same rows (the race's fold 0, then the other folds; the
    tuning stage's winner, fold by fold): the scores, timings and out-of-fold predictions of both, the median trees
    over all folds; equal to running those folds at once. ``n_folds`` (the split's folds) names the folds the result
    holds unless they are all of them; None takes the two parts to cover every fold, as the race's do."""
    trees = (first.trees or []) + (rest.trees or [])
    numbers = (first.fold_numbers or []) + (rest.fold_numbers or [])
    return dataclasses.replace(
        rest, estimator_params=with_trees(rest.model, rest.estimator_params, trees, rest.trees_scale),
        fold_scores={metric: first.fold_scores[metric] + rest.fold_scores[metric] for metric in rest.fold_scores},
        fit_seconds=first.fit_seconds + rest.fit_seconds, predict_seconds=first.predict_seconds + rest.predict_seconds,
        oof=np.where(np.isnan(rest.oof), first.oof, rest.oof), trees=trees or None,
        fold_models=(first.fold_models + rest.fold_models) if keep_models else rest.fold_models,
        fold_numbers=None if numbers == list(range(len(numbers) if n_folds is None else n_folds)) else numbers)


def pipeline_spec(data: BaselineData, model: str, seed: int, n_jobs: int,
                  estimator_params: dict[str, Any]) -> dict[str, Any]:
    """The pipeline spec (``model_spec.json``'s rebuild keys) of ``model`` on ``data``."""
    return {"model": model, "task": data.task, "features": data.features, "seed": seed,
            "n_jobs": n_jobs, "estimator_params": estimator_params}


@dataclass
class ZooResult:
    """The cross-validated zoo: leaderboard, the chosen model and why, the rows the time budget allowed each model."""

    leaderboard: pd.DataFrame
    results: dict[str, ModelResult]
    selected: str
    reason: str
    seconds: float
    data: BaselineData
    split: Split
    seed: int
    n_jobs: int
    budget: Budget | None = None        # the step's clock: what remains for the parts after the zoo
    notes: dict[str, str] = field(default_factory=dict)  # later part -> how the budget shaped it (skipped, sampled)

    @property
    def best(self) -> ModelResult:
        return self.results[self.selected]

    def out_of_fold(self, model: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The training rows' targets and ``model``'s (the selected one's) out-of-fold predictions,
        for the rows some fold validated."""
        result = self.results[model or self.selected]
        y = self.data.y[self.split.positions(self.data.X)]
        seen = ~np.isnan(result.oof).reshape(len(y), -1).any(axis=1)
        return y[seen], result.oof[seen]

    def spec(self, model: str | None = None) -> dict[str, Any]:
        """The pipeline spec (model_spec.json's rebuild keys) for ``model``, the selected one by default."""
        result = self.results[model or self.selected]
        return pipeline_spec(self.data, result.model, self.seed, self.n_jobs, result.estimator_params)

    @property
    def capped(self) -> dict[str, int]:
        """Models the time budget cross-validated on a sample of the training rows: model -> rows used."""
        return {model: result.train_rows for model, result in self.results.items()
                if result.rows is not None}

    def rows_note(self) -> str:
        """One sentence on the rows each model used: all of them, or which models the budget capped."""
        total = len(self.split.train_index)
        if not self.capped:
            return f"every model was cross-validated on all {total:,} training rows within the time budget."
        capped = ", ".join(f"{model} on {rows:,}" for model, rows in self.capped.items())
        return (f"to end within the time budget ({self.budget.seconds:g} s) some models were cross-validated on a "
                f"seeded sample of the {total:,} training rows: {capped} (train_rows on the leaderboard; the same "
                "seed gives the same rows). Raise time_budget_seconds to use more rows.")

    def budget_summary(self) -> pd.DataFrame:
        """What the time budget shaped: each capped model, each skipped or subsampled later part, the seconds."""
        total = len(self.split.train_index)
        shaped = {model: f"cross-validated on a seeded sample of {rows:,} of the {total:,} training rows"
                  for model, rows in self.capped.items()}
        shaped |= {part.replace("_", " "): note for part, note in self.notes.items()}
        if not shaped:
            shaped["every part"] = "ran on all the rows it asks for"
        if self.budget is not None:
            shaped["whole step so far"] = f"{self.budget.spent():.1f} s of {self.budget.seconds:g} s"
        return pd.DataFrame({"what the time budget did": list(shaped.values())},
                            index=pd.Index(list(shaped), name="part"))

    def summary(self) -> pd.DataFrame:
        """The choice, the reason, the rows the time budget allowed and the seconds spent."""
        return pd.DataFrame({"value": [self.selected, self.reason, self.rows_note(), f"{self.seconds:.1f}"]},
                            index=["selected model", "why", "rows (time budget)", "seconds"])

    def __repr__(self) -> str:
        return f"ZooResult(selected={self.selected!r}, models={list(self.results)}, capped={self.capped})"


def rank(results: dict[str, ModelResult], metrics_: list[str]) -> tuple[pd.DataFrame, str, str]:
    """The leaderboard of ``results`` (keyed by leaderboard name), the selected name and why; ``metrics_[0]``
    is the primary metric. The tuning stage calls it again after adding its row."""
    selected, reason = select(results, metrics_[0])
    return leaderboard_table(results, metrics_, selected), selected, reason


def select(results: dict[str, ModelResult], metric: str) -> tuple[str, str]:
    """The leaderboard row export gets, and why: among the rows scored on every fold, the best ``metric`` mean
    (a row cross-validated on a sample only when it beats the best row on more rows by more than one standard
    error); unless it is a default (untuned) row and a simpler family, cross-validated on as many rows, is within
    one standard error of the mean per-fold difference to it."""
    valid = {m: r for m, r in results.items() if np.isfinite(r.mean(metric))}
    if not valid:
        raise BaselineError(f"no model produced a finite {metric}; the validation folds may hold a single class.")
    # a model the zoo's race stopped after its first fold is no candidate: models are compared on the same folds
    folds = max(r.folds for r in valid.values())
    valid = {m: r for m, r in valid.items() if r.folds == folds}

    def better_first(m: str) -> float:
        return valid[m].mean(metric) if metric in LOWER_IS_BETTER else -valid[m].mean(metric)

    def gap(m: str, against: str | None = None) -> tuple[float, float]:
        # every model is scored on the same folds: the noise that matters is the standard error of the mean
        # per-fold difference (fold difficulty cancels out). The spread of one model's own scores counted it: on
        # a housing table (RMSE 25,900 +- 3,600) it called every model within 14% a tie, and on Titanic it chose
        # the linear model (test ROC AUC 0.870) over tuned XGBoost (0.890, CV better on most folds)
        lead = against or top
        diff = np.asarray(valid[lead].fold_scores[metric], dtype=float) - np.asarray(valid[m].fold_scores[metric], dtype=float)
        diff = diff[np.isfinite(diff)]
        if len(diff) < 2:
            return (float(abs(np.mean(diff))) if len(diff) else 0.0), valid[lead].std(metric)
        return float(abs(np.mean(diff))), float(np.std(diff, ddof=1) / np.sqrt(len(diff)))

    # simplicity is the zoo family's rank: a tuned row is as simple as its family's defaults, so between
    # the two the better score wins, while a simpler family within one standard error still wins
    def rows(m: str) -> float:
        return valid[m].train_rows if valid[m].train_rows is not None else np.inf

    top = min(valid, key=lambda m: (better_first(m), ZOO.index(valid[m].model)))
    best_text = f"{top} has the best {metric} ({valid[top].mean(metric):.4f} ± {valid[top].std(metric):.4f})"
    # A leader the time budget cross-validated on a sample must beat the best row on more rows by more than one
    # standard error: a sample's folds validate a few hundred rows, so its mean is noisy. On telecom churn under
    # load a forest on 1,000 of 5,634 rows (0.8497 +- 0.037) led HistGradientBoosting (tuned) on all of them
    # (0.8488 +- 0.008) and scored 0.838 on the test rows (FLAML 0.845).
    most = max(rows(m) for m in valid)
    if rows(top) < most:
        covered = min((m for m in valid if rows(m) == most), key=lambda m: (better_first(m), ZOO.index(valid[m].model)))
        difference, spread = gap(covered, top)
        if difference <= spread:
            best_text = (f"{covered} has the best {metric} on {most:,.0f} rows, the most any model had "
                         f"({valid[covered].mean(metric):.4f} ± "
                         f"{valid[covered].std(metric):.4f}); {top} ({valid[top].mean(metric):.4f}, on {rows(top):,.0f} "
                         f"rows) is not better by more than one standard error (mean per-fold difference "
                         f"{difference:.4f}, standard error {spread:.4f})")
            top = covered
    if top.endswith(TUNED_SUFFIX):
        # A tuned row that leads stays: its candidates were compared with the family's defaults on the same folds,
        # as AutoML tools choose. The preference for a simpler family guards against noise between the zoo's
        # defaults; against a tuned leader it exported linear (tuned) on telecom churn (CV ROC AUC 0.8463, test
        # 0.842) over XGBoost (tuned) (0.8481, test 0.8469; FLAML 0.8450).
        return top, best_text + "; a tuned row that leads is kept (tuned on the same folds as every other row)"
    within = [m for m in valid if m != top and gap(m)[0] <= gap(m)[1]]
    # A model the time budget cross-validated on fewer rows than the best is no tie: its folds validate other
    # rows, and a sample's noisier scores widen the standard error. On covid_testing a linear model on 1,000 rows
    # (0.862 +- 0.088) was preferred over HistGradientBoosting on all 12,419 (0.881 +- 0.019).
    fewer_rows = [m for m in within if rows(m) < rows(top)]
    tied = [top] + [m for m in within if m not in fewer_rows]
    chosen = min(tied, key=lambda m: (ZOO.index(valid[m].model), better_first(m), np.mean(valid[m].fit_seconds)))
    if chosen == top:
        skipped = (f" on as many rows ({', '.join(f'{m} used {rows(m):,.0f}' for m in fewer_rows)} of "
                   f"{rows(top):,.0f})") if fewer_rows else ""
        return chosen, best_text + f"; no simpler model is within one standard error of the per-fold difference{skipped}"
    difference, spread = gap(chosen)
    return chosen, (best_text + f"; {chosen} ({valid[chosen].mean(metric):.4f}) is within one standard error "
                    f"of it (mean per-fold difference {difference:.4f}, standard error {spread:.4f}) and simpler/faster, "
                    "so it is preferred")


def leaderboard_table(results: dict[str, Any], metrics_: list[str], selected: str) -> pd.DataFrame:
    primary = metrics_[0]
    rows = []
    for model, result in results.items():
        row: dict[str, Any] = {"model": model}
        for metric in metrics_:
            row[f"{metric}_mean"] = result.mean(metric)
            row[f"{metric}_std"] = result.std(metric)
        row["train_rows"] = result.train_rows
        row["folds"] = result.folds  # fewer than the split's: the zoo's race stopped it after its first fold
        row["fit_seconds"] = float(np.mean(result.fit_seconds))
        row["predict_seconds"] = float(np.mean(result.predict_seconds))
        row["selected"] = model == selected
        rows.append(row)
    frame = pd.DataFrame(rows)
    ascending = primary in LOWER_IS_BETTER
    frame = frame.sort_values(f"{primary}_mean", ascending=ascending, kind="stable", na_position="last")
    # rows scored on every fold first: a race's one-fold score (Ames: an easy first fold) is no rank among them
    frame = frame.sort_values("folds", ascending=False, kind="stable")
    return frame.reset_index(drop=True)



