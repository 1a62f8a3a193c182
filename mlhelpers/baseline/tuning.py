"""The tuning stage: successive halving over a small space for the zoo's best family, as its own leaderboard row.

After the zoo, ``tune_best`` takes the family with the best cross-validated primary metric (linear, random
forest, HistGradientBoosting or XGBoost) -- and, when that is the linear model or the forest and the better
boosting family is within one fold standard deviation of it, that boosting family too (``families_to_tune``;
a boosting family gives way to the other one when the budget scored that one on fewer rows and, rematched on the
same rows and first fold, it scores better: ``rematch``) --, draws a few seeded candidate parameter sets from a
small space chosen for each family, and keeps the better third of them rung by rung on more and more of the SAME
folds (rung 1: the first fold; rung 2: the next two); the last one standing is cross-validated on every fold (on
every training row, where the folds it already ran count and only the others run, or on the largest seeded sample
the stage's seconds pay for when that is more rows than the family's defaults had: ``sample_rows``) and becomes
the row "<family> (tuned)" when it beat the family's defaults on the folds it was compared on. The leaderboard and
the selection are then recomputed (``crossval.rank``), so the tuned row wins only by its CV score, and export
rebuilds exactly its ``estimator_params``.

Hand-made rather than scikit-learn's ``HalvingRandomSearchCV``: the candidates must run through the zoo's own
fold fits (preprocessing fitted once per fold and shared, early stopping on an inner split, the median number
of trees recorded for the refit) and be compared with the zoo's scores on the same folds, which that class
cannot reuse; and the stage must stop at a wall-clock bound, which it does not offer.

The stage never starts a fit it expects to end after ``seconds`` (an estimate from the fits it has timed);
with seconds to spare it evaluates every candidate, so two runs with the same seed give the same row.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlhelpers.baseline.budget import Budget, capped_rows
from mlhelpers.baseline.crossval import MIN_CAP_ROWS, ModelResult, ZooResult, cross_validate_model, rank
from mlhelpers.baseline.search_space import N_CANDIDATES, TUNABLE, candidates
from mlhelpers.baseline.selection import joined
from mlhelpers.core.metrics import LOWER_IS_BETTER
from mlhelpers.core.models import TUNED_SUFFIX, code_columns

__all__ = ["TUNABLE", "Tuning", "candidates", "families_to_tune", "rematch", "sample_rows", "seconds_left",
           "tune_best"]

KEEP_SHARE = 1 / 3         # of each rung's candidates go on to the next
RUNG_FOLDS = (1, 3)        # folds seen by the end of rung 1 and rung 2; the winner then sees all of them
BOOSTING = ("hist_gradient_boosting", "xgboost")
# When the linear model (or the forest) leads and a boosting family follows within one fold standard deviation,
# both are tuned: the leader first, in at most this share of the stage's seconds (the linear model has one knob),
# then the boosting family in the rest. Boosting rather than the forest: its space holds shallow, slow trees
# (``search_space``'s second candidate), near-additive models that can beat a linear model where it leads, which
# deep trees cannot. On telecom churn (wa_churn) the linear model led XGBoost by 0.004 ROC AUC (fold std 0.008);
# tuned, XGBoost (depth 4, rate 0.05) beat it (CV 0.8481 vs 0.8463, test 0.8469 vs 0.842). A one-off probe: 4-leaf
# HistGradientBoosting, 0.8488.
LEADER_SHARE = 0.35
REMATCH_SHARE = 0.15  # of the stage's seconds that ``rematch`` may take
REMATCH_ROWS = 0.75   # a trailing boosting family scored on at most this share of the leader's rows is rematched
SAMPLE_MARGIN = 0.8  # of the stage's seconds left that the winner's cross-validation on a sample is sized to use
FIXED_SHARE = 0.25   # of a fold's seconds on every row that a fold on a sample still pays (``sample_rows``)


@dataclass
class Tuning:
    """What the stage did: the zoo with the tuned row (or unchanged), every candidate's scores, a note."""

    zoo: ZooResult
    table: pd.DataFrame     # one row per candidate: its parameters, folds it reached, mean score on them
    note: str
    seconds: float
    family: str | None = None  # the family tuned (``rematch`` may have swapped the boosting family)

    def summary(self) -> pd.DataFrame:
        tried = int((self.table["folds"] > 0).sum()) if len(self.table) else 0
        return pd.DataFrame({"value": [self.note, f"{self.seconds:.1f}", f"{tried} of {len(self.table)}"]},
                            index=["tuning", "seconds", "candidates evaluated"])


def seconds_left(tune_seconds: float, budget: Budget) -> float:
    """The stage's seconds: ``tune_seconds``, but no more than what the zoo left of the step's time budget
    (``budget.available("tuning")``: what remains -- the stage's own hold included -- less what the diagnostics
    still hold)."""
    return max(0.0, min(float(tune_seconds), budget.available("tuning")))


def _signed(metric: str, value: float) -> float:
    """Higher is better."""
    return -value if metric in LOWER_IS_BETTER else value


def families_to_tune(zoo: ZooResult) -> list[str]:
    """The zoo's CV-best tunable family; when that is the linear model or the forest, also the better boosting
    family if its mean is within one fold standard deviation of the best (boosting's space holds what the others'
    cannot: shallow, slow trees; the selection still goes by CV). Empty when nothing is tunable."""
    metric = zoo.data.primary_metric
    scored = [(name, r) for name, r in zoo.results.items()
              if r.model in TUNABLE and not name.endswith(TUNED_SUFFIX) and np.isfinite(r.mean(metric))]
    if not scored:
        return []
    # on the folds every family has: the first one alone when the zoo's race stopped some families after it
    common = min(r.folds for _, r in scored)

    def mean(result: ModelResult) -> float:
        return _signed(metric, float(np.mean(result.fold_scores[metric][:common])))

    scored.sort(key=lambda item: -mean(item[1]))
    best, result = scored[0]
    boosting = [name for name, _ in scored if name in BOOSTING]
    if best in BOOSTING or not boosting:
        return [best]
    gap = mean(result) - mean(zoo.results[boosting[0]])
    return [best, boosting[0]] if gap <= float(np.std(result.fold_scores[metric])) else [best]


def rematch(zoo: ZooResult, family: str, seconds: float) -> tuple[str, ModelResult, str]:
    """The family to tune for ``family``, the defaults' scores its candidates must beat, and a note: ``family`` and
    its zoo row, unless the other boosting family had at most ``REMATCH_ROWS`` of its rows (the budget caps each
    family by its own speed) and, run on ``family``'s rows and first fold within ``REMATCH_SHARE`` of ``seconds``,
    scores better there. Hotel rates at 48 s: XGBoost led on 7,432 rows (RMSE 15.2), HistGradientBoosting trailed
    on 2,860 (17.1); cross-validated on every row (a probe), HistGradientBoosting scored 13.9 against 14.3."""
    leader = zoo.results[family]
    other = next((name for name in BOOSTING if name != family and name in zoo.results), None)
    if family not in BOOSTING or other is None:
        return family, leader, ""
    trailer = zoo.results[other]
    leader_rows = leader.train_rows or len(zoo.split.train_index)
    if (trailer.train_rows or leader_rows) > REMATCH_ROWS * leader_rows:
        return family, leader, ""
    estimate = float(trailer.fit_seconds[0] + trailer.predict_seconds[0]) * leader_rows / trailer.train_rows
    if estimate > REMATCH_SHARE * seconds:
        return family, leader, ""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        challenger = cross_validate_model(other, zoo.data, zoo.split, seed=zoo.seed, n_jobs=zoo.n_jobs,
                                          rows=leader.rows, fold_numbers=[0])
    metric = zoo.data.primary_metric
    theirs, ours = challenger.fold_scores[metric][0], leader.fold_scores[metric][0]
    rows = f"{leader_rows:,} rows ({other} had {trailer.train_rows:,})"
    if not np.isfinite(theirs) or _signed(metric, theirs) <= _signed(metric, ours):
        return family, leader, f"{other} rematched on {family}'s {rows}: {metric} {theirs:.4f} vs {ours:.4f} on fold 1"
    # its candidates run on those rows and are compared with this first fold
    return other, challenger, (f"{other} tuned instead of {family}: on {family}'s {rows} it scored {metric} "
                               f"{theirs:.4f} vs {ours:.4f} on fold 1")


def tune_best(zoo: ZooResult, *, seconds: float, n_candidates: int = N_CANDIDATES) -> Tuning:
    """Tune the zoo's best family (``families_to_tune``: sometimes two) for at most ``seconds`` in all (0 turns
    the stage off); see the module docstring.

    Returns a ``Tuning`` whose ``zoo`` holds the row "<family> (tuned)" (leaderboard, results and selection
    recomputed) for each family where a candidate beat the defaults and its cross-validation on every fold fitted
    in time (on every row, or on a larger sample than the defaults': ``sample_rows``); else ``zoo`` unchanged, and
    ``note`` says why. ``table`` lists every candidate with its family.
    """
    started = time.perf_counter()
    metric = zoo.data.primary_metric
    families = families_to_tune(zoo)
    if seconds <= 0 or len(families) < 2:
        return _tune_family(zoo, families[0] if families else None, seconds, n_candidates)
    stages = []
    for position, family in enumerate(families):
        left = seconds - (time.perf_counter() - started)
        share = LEADER_SHARE * seconds if position < len(families) - 1 else left
        stage = _tune_family(zoo, family, min(share, left), n_candidates)
        zoo = stage.zoo
        stages.append(stage)
    table = pd.concat([stage.table.assign(family=stage.family) for stage in stages], ignore_index=True)
    note = "; ".join(stage.note for stage in stages)
    note += f" (both tuned: {families[1]} within one fold std of {families[0]}'s {metric})"
    return Tuning(zoo, table, note, time.perf_counter() - started, stages[-1].family)


def _tune_family(zoo: ZooResult, family: str | None, seconds: float, n_candidates: int) -> Tuning:
    """One family's successive halving (``tune_best`` for one family)."""
    started = time.perf_counter()
    metric = zoo.data.primary_metric
    empty = pd.DataFrame(columns=["candidate", "params", "folds", f"{metric}_mean"])
    if seconds <= 0:
        return Tuning(zoo, empty, "off (tune_seconds: 0, or the step's time budget is spent)", 0.0)
    if family is None:
        return Tuning(zoo, empty, "nothing to tune: no linear or tree model on the leaderboard", 0.0)
    family, defaults, rematched = rematch(zoo, family, seconds)
    stage = _halving(zoo, family, defaults, seconds, n_candidates, started)
    return dataclasses.replace(stage, note=f"{rematched}; {stage.note}" if rematched else stage.note, family=family)


def _halving(zoo: ZooResult, family: str, defaults: ModelResult, seconds: float, n_candidates: int,
             started: float) -> Tuning:
    """Successive halving of ``family``'s candidates against ``defaults`` (its zoo row, or ``rematch``'s), within
    ``seconds`` from ``started`` (the stage's start, before any rematch)."""
    metric = zoo.data.primary_metric
    folds = zoo.split.folds
    # the rows the defaults were cross-validated on (the zoo's seeded sample when the budget capped them; after a
    # rematch, the leading family's rows): candidates on every row were timed by the defaults' 1,000-row folds, and
    # babynames' first candidate (text, 1.5M rows) took 301 s of a 30 s stage, then compared with defaults scored
    # on other rows
    rows = defaults.rows
    features = zoo.data.features
    codes = code_columns(features, high_cardinality=True) if features.get("high_cardinality") else None
    pool = candidates(family, zoo.data.task, defaults.train_rows, zoo.seed, n_candidates, native_codes=codes)
    # until a candidate is timed: one fold of the defaults, x2 for a candidate's slower rate or bigger trees
    guess = 2 * (float(np.mean(defaults.fit_seconds)) + float(np.mean(defaults.predict_seconds)))
    # per-fold preprocessing, fitted once and shared by every candidate as the zoo shares it (a one-fold split
    # caches under fold number 0, so each real fold gets its own dict)
    caches: dict[int, dict] = {fold: {} for fold in range(len(folds))}
    stopped = ""
    timed: dict[int, list[float]] = {}  # each candidate's fold seconds
    fold_results: dict[int, dict[int, ModelResult]] = {i: {} for i in range(len(pool))}  # one-fold runs, by fold

    def scores(index: int) -> dict[int, float]:
        return {fold: result.fold_scores[metric][0] for fold, result in fold_results[index].items()}

    def fits_in_time(n_fits: int, share: float, index: int | None = None) -> bool:
        per_fit = max(timed.get(index) or [max(own) for own in timed.values()] or [guess])  # its own, else the slowest
        return time.perf_counter() - started + n_fits * per_fit <= share * seconds

    def evaluate(index: int, fold: int) -> None:
        mark = time.perf_counter()
        result = cross_validate_model(family, zoo.data, zoo.split, seed=zoo.seed, n_jobs=zoo.n_jobs,
                                      cache=caches[fold], rows=rows, estimator_params=pool[index], fold_numbers=[fold])
        fold_results[index][fold] = result
        timed.setdefault(index, []).append(time.perf_counter() - mark)

    alive = list(range(len(pool)))
    seen = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of extreme candidates: they simply lose
        for rung, upto in enumerate(RUNG_FOLDS, start=1):
            upto = min(upto, len(folds))
            if upto <= seen:
                break
            share = 0.45 if rung == 1 else 0.7
            evaluated = []
            for index in alive:
                if not fits_in_time(upto - seen, share, index):
                    stopped = f"rung {rung} stopped after {len(evaluated)} of {len(alive)} candidates (time)"
                    break
                for fold in range(seen, upto):
                    evaluate(index, fold)
                evaluated.append(index)
            if not evaluated:
                break
            seen = upto
            keep = max(1, math.ceil(KEEP_SHARE * len(evaluated))) if rung < len(RUNG_FOLDS) else 1
            alive = sorted(evaluated, key=lambda i: -_signed(metric, _mean(scores(i), seen)))[:keep]
            if stopped:
                break

    table = _table(pool, {i: scores(i) for i in fold_results}, metric)
    if not seen:
        return _done(zoo, table, f"no candidate fitted within {seconds:g} s", started)
    seen = min(seen, defaults.folds)  # the defaults' folds: the first alone when the zoo's race stopped them
    base_score = float(np.mean(defaults.fold_scores[metric][:seen]))
    winner = alive[0]
    winner_score = _mean(scores(winner), seen)
    if _signed(metric, winner_score) <= _signed(metric, base_score):
        return _done(zoo, table, f"{family}'s defaults stayed best ({metric} {base_score:.4f} on the first {seen} "
                     f"fold(s) vs {winner_score:.4f} for the best candidate){'; ' + stopped if stopped else ''}",
                     started)
    # on every row the winner's folds so far count: only the others are still to run
    done = sorted(fold_results[winner]) if rows is None else []
    final_rows = _final_rows(zoo, defaults, rows, max(timed[winner]), seconds - (time.perf_counter() - started),
                             len(folds) - len(done))
    if final_rows is False:
        return _done(zoo, table, f"the best candidate's full cross-validation would not end within {seconds:g} s, "
                     f"not even on the rows {family}'s defaults had (candidate {winner}: {winner_score:.4f} "
                     f"vs defaults {base_score:.4f} on {seen} fold(s))", started)
    reused = done if final_rows is None else []  # a sample of other rows runs every fold again
    rows = final_rows
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parts = [fold_results[winner][fold] for fold in reused]
        remaining = [fold for fold in range(len(folds)) if fold not in reused]
        if remaining:
            parts.append(cross_validate_model(family, zoo.data, zoo.split, seed=zoo.seed, n_jobs=zoo.n_jobs,
                                              estimator_params=pool[winner], rows=rows,
                                              fold_numbers=remaining if reused else None))
        tuned = functools.reduce(lambda whole, part: joined(whole, part, n_folds=len(folds)), parts)
    name = family + TUNED_SUFFIX
    results: dict[str, ModelResult] = dict(zoo.results) | {name: tuned}
    leaderboard, selected, reason = rank(results, zoo.data.metrics)
    seconds_spent = time.perf_counter() - started
    new_zoo = dataclasses.replace(zoo, leaderboard=leaderboard, results=results, selected=selected, reason=reason,
                                  seconds=zoo.seconds + seconds_spent)
    sampled = "" if rows is None else (f" on a seeded sample of {len(rows):,} of the "
                                       f"{len(zoo.split.train_index):,} training rows (all of them would not end in time)")
    compared = f"fold 1 on {defaults.train_rows:,} rows" if defaults.fold_numbers == [0] else ""
    note = (f"{name}: candidate {winner} of {len(pool)} ({metric} {tuned.mean(metric):.4f} over {len(folds)} folds"
            f"{sampled}; {family} defaults {defaults.mean(metric):.4f}{' on ' + compared if compared else ''})"
            f"{'; ' + stopped if stopped else ''}")
    return Tuning(new_zoo, table, note, seconds_spent)


def _final_rows(zoo: ZooResult, defaults: ModelResult, tried_rows: np.ndarray | None, fold_seconds: float,
                seconds: float, folds_to_run: int | None = None) -> np.ndarray | None | bool:
    """The rows the winner is cross-validated on: every row (None) when its folds still to run (``folds_to_run``;
    None: all) fit in ``seconds``, else the
    largest seeded sample they pay for (``sample_rows``), else the rows the candidates were tried on when those fit;
    False when nothing fits. ``fold_seconds`` is the winner's fold on ``tried_rows`` (None: every row), which are
    the defaults' rows: the zoo's sample when the budget capped them (after a rematch, the leading family's)."""
    n_train, n_folds = len(zoo.split.train_index), len(zoo.split.folds)
    every_row = fold_seconds
    if tried_rows is not None:  # timed on a sample: a fold on every row costs the fixed part and the rest per row
        every_row = fold_seconds / (FIXED_SHARE + (1 - FIXED_SHARE) * len(tried_rows) / n_train)
    if (n_folds if folds_to_run is None else folds_to_run) * every_row <= seconds:
        return None
    larger = sample_rows(zoo, defaults, every_row, seconds)
    if larger is not None:
        return larger
    if tried_rows is not None and n_folds * fold_seconds <= seconds:
        return tried_rows
    return False


def sample_rows(zoo: ZooResult, defaults: ModelResult, fold_seconds: float, seconds: float) -> np.ndarray | None:
    """The training rows (sorted positions) the winner's cross-validation can have in ``seconds``, its fold on every
    row taking ``fold_seconds``: the first rows of the zoo's seeded order (``budget.capped_rows``: a sample that
    holds the zoo's own capped rows), or None when that is no more than ``defaults`` had. A short budget cannot
    always pay five folds of the winner on every row: on hotel rates (12,311 rows, 48 s) the zoo cross-validated
    XGBoost on 3,345 rows (RMSE 17.4) and its tuned winner scored 13.1 on the first fold of all rows, then was
    dropped for want of seconds for the other four."""
    n_train = len(zoo.split.train_index)
    # a fold on a sample is taken to cost a fixed part of the fold on every row plus its rows' share of the rest:
    # hotel rates under load, XGBoost at rate 0.05: 5.5 s a fold on all 12,311 rows, 2.7 s on 4,116 (a third of
    # the rows, half the time); sized as all per row, the sample's folds used all that was left
    affordable = SAMPLE_MARGIN * seconds / (len(zoo.split.folds) * max(fold_seconds, 1e-9))  # of a fold on every row
    share = (affordable - FIXED_SHARE) / (1 - FIXED_SHARE)
    rows = int(share * n_train)
    if rows >= n_train or rows < MIN_CAP_ROWS or rows <= (defaults.train_rows or n_train):
        return None
    y = zoo.data.y[zoo.split.positions(zoo.data.X)] if zoo.data.n_classes else None
    return np.sort(capped_rows(y, n_train, zoo.seed, folds=zoo.split.folds)[:rows])


def _mean(scores: dict[int, float], folds: int) -> float:
    return float(np.mean([scores[f] for f in range(folds)])) if all(f in scores for f in range(folds)) else float("nan")


def _table(pool: list[dict[str, Any]], fold_scores: dict[int, dict[int, float]], metric: str) -> pd.DataFrame:
    rows = [{"candidate": i, "params": ", ".join(f"{k}={v}" for k, v in params.items()),
             "folds": len(fold_scores[i]),
             f"{metric}_mean": float(np.mean(list(fold_scores[i].values()))) if fold_scores[i] else float("nan")}
            for i, params in enumerate(pool)]
    return pd.DataFrame(rows)


def _done(zoo: ZooResult, table: pd.DataFrame, note: str, started: float) -> Tuning:
    return Tuning(zoo, table, note, time.perf_counter() - started)
