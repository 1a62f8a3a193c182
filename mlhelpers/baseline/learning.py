"""Would more data help? The selected model's learning curve: its validation score fitted on growing shares of the
training rows (a stratified sample), within what the time budget leaves the diagnostics
(``mlhelpers.baseline.diagnostics.diagnostic_seconds``). Training rows only; the test rows stay unseen.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlhelpers.baseline.budget import capped_rows
from mlhelpers.baseline.crossval import ZooResult
from mlhelpers.baseline.diagnostics import CALL_SECONDS, diagnostic_seconds, per_row_seconds
from mlhelpers.core.metrics import LOWER_IS_BETTER, make_scorer_for
from mlhelpers.core.models import build_pipeline, fit_params
from mlhelpers.core.threads import native_threads

__all__ = ["LearningCurveCheck", "learning_curve_check", "plot_learning_curve"]

MIN_CURVE_ROWS = 500  # fewer rows than this in the time left: the learning curve is skipped
# Of a boosting model's fold fit, the share that does not shrink with the rows: every fit of the curve grows the
# refit's trees, whatever its rows, and on small tables a tree's own cost dominates. On Ames (2,344 rows) the tuned
# HistGradientBoosting (~480 trees at rate 0.05) took 19.4 s for the curve's 12 fits of 156-1,562 rows against
# its fold fits' 1.7 s each: a fixed half, while a cost in proportion to the rows had estimated a third of that,
# and the step overran its 48 s budget by 7 s.
BOOSTING_FIXED_SHARE = 0.5


@dataclass
class LearningCurveCheck:
    """Validation score of the selected model against training rows, and the verdict."""

    table: pd.DataFrame
    verdict: str
    metric: str

    def __repr__(self) -> str:
        return self.verdict


def _no_curve(zoo: ZooResult, verdict: str) -> LearningCurveCheck:
    """A check without a curve (an empty table), whose verdict says why; noted on the zoo."""
    zoo.notes["learning_curve"] = verdict
    return LearningCurveCheck(table=pd.DataFrame(columns=["train_rows", "train_mean", "validation_mean",
                                                          "validation_std"]),
                              verdict=verdict, metric=zoo.data.primary_metric)


def learning_curve_check(zoo: ZooResult, *, max_rows: int = 20_000, folds: int = 3,
                         seconds: float | None = None) -> LearningCurveCheck:
    """Would more data help? Fit the selected model on growing shares of (a sample of at most
    ``max_rows``) training rows and compare the validation score at the last two sizes.

    Verdict: still rising by more than its spread across folds means more data would likely help.
    ``seconds`` (what the time budget leaves; None: no limit; capped by ``diagnostic_seconds``) lowers
    ``max_rows`` to what the model's measured fit speed allows, or skips below ``MIN_CURVE_ROWS`` rows (the verdict
    says so).
    """
    from sklearn.model_selection import KFold, StratifiedKFold, learning_curve

    data, result = zoo.data, zoo.best
    train_rows = zoo.split.positions(data.X)
    seconds = diagnostic_seconds(zoo, seconds)
    if seconds is not None:
        fit_rows = sum(len(fit) for fit, _ in zoo.split.folds) * result.train_rows / len(train_rows)
        # the curve fits the refit's trees: trees_scale times the folds' median (crossval, selection.trees_scale)
        fit_seconds = [fold_seconds * result.trees_scale for fold_seconds in result.fit_seconds]
        fixed_share = BOOSTING_FIXED_SHARE if result.trees else 0.0
        per_fit = fixed_share * float(np.median(fit_seconds))  # paid by each of the curve's four fits per fold
        per_row = (per_row_seconds(fit_seconds, fit_rows) * (1 - fixed_share)
                   + per_row_seconds(result.predict_seconds, result.train_rows) * 2)  # training and validation scores
        shares = (0.1 + 0.25 + 0.5 + 1.0) * (folds - 1) / folds + 4 / folds  # rows fitted and scored per max_rows
        affordable = int((seconds / folds - 4 * (3 * CALL_SECONDS + per_fit)) / (per_row * shares))
        if affordable < min(MIN_CURVE_ROWS, len(train_rows)):
            return _no_curve(zoo, f"skipped: a learning curve on at least {MIN_CURVE_ROWS} rows needs more than the "
                                  f"{seconds:.0f} s the time budget allows")
        if affordable < min(max_rows, len(train_rows)):
            zoo.notes["learning_curve"] = (f"on {affordable:,} rows instead of {min(max_rows, len(train_rows)):,}: "
                                           f"the time budget allows {seconds:.0f} s")
            max_rows = affordable
    classification = data.task == "classification"
    if len(train_rows) > max_rows:  # stratified: a plain draw can leave out a rare class, and XGBoost then fails
        order = capped_rows(data.y[train_rows] if classification else None, len(train_rows), zoo.seed)
        train_rows = np.sort(train_rows[order[:max_rows]])
    X, y = data.X.iloc[train_rows], data.y[train_rows]
    cv = (StratifiedKFold(folds, shuffle=True, random_state=zoo.seed) if classification
          else KFold(folds, shuffle=True, random_state=zoo.seed))
    spec = zoo.spec()
    with warnings.catch_warnings(), native_threads(len(X), zoo.n_jobs):
        warnings.simplefilter("ignore")
        try:
            sizes, train_scores, val_scores = learning_curve(
                build_pipeline(spec), X, y, train_sizes=[0.1, 0.25, 0.5, 1.0], cv=cv,
                scoring=make_scorer_for(data.primary_metric, data.n_classes), shuffle=True,
                random_state=zoo.seed, error_score=np.nan, n_jobs=1, params=fit_params(spec, y) or None)
        except ValueError:  # every fit failed: rare classes missing from its subsets (XGBoost needs them all)
            return _no_curve(zoo, "not computed: every fit failed on the curve's subsets (with classes this rare a "
                                  "subset misses some, and the model needs every class)")
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
    if table.empty:
        why = "skipped (time budget)" if check.verdict.startswith("skipped") else "not computed (every fit failed)"
        ax.set(title=f"learning curve {why}", xlabel="training rows", ylabel=check.metric)
        return ax
    ax.plot(table["train_rows"], table["train_mean"], marker="o", label="training")
    ax.errorbar(table["train_rows"], table["validation_mean"], yerr=table["validation_std"], marker="o",
                label="validation")
    ax.set(xscale="log", xlabel="training rows", ylabel=check.metric, title="learning curve")
    ax.legend()
    return ax
