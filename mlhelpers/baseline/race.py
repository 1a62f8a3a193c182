"""The zoo's race: which models finish their cross-validation when the time budget cannot pay for all of them.

``crossval.run_zoo`` scores every model on the first fold, then asks ``finishers`` which go on to the other folds.
When every model's remaining folds fit in what the budget leaves the zoo, all of them finish: the scores are then
exactly those of a plain cross-validation. Otherwise, or when the budget capped the models' rows (``short``: their
folds fit only on samples) and a tuning stage follows, it is successive halving across the families: the models
finish in the order of their first-fold score, the leader always, the next ones (at most ``RACE_KEEP`` in all)
when their remaining folds still fit; the others keep their first-fold score (``folds`` 1 on the leaderboard) and
are not selected (selection compares models on the same folds). What the race saves goes to the tuning stage,
which improves the leading family on the same folds. Five families x five folds left nothing for tuning on a 48 s
budget (Ames: the zoo alone took 63 s, on 1,000 of 2,344 rows); five first folds and two finishers take about
half of that.
"""

from __future__ import annotations

import numpy as np

from mlhelpers.baseline.selection import ModelResult
from mlhelpers.core.metrics import LOWER_IS_BETTER
from mlhelpers.core.models import ZOO

__all__ = ["RACE_KEEP", "finishers", "race_note"]

# the best half of the four families that can win (successive halving's usual rate); the dummy is a reference
RACE_KEEP = 2


def finishers(first: dict[str, ModelResult], remaining: dict[str, float], available: float,
              metric: str, short: bool = False) -> list[str]:
    """The models of ``first`` (each scored on the first fold) that go on to the other folds, in zoo order.

    ``remaining``: each model's projected seconds for its other folds; ``available``: the zoo's seconds left.
    All of them when their folds fit together and the budget is not ``short``; else the best first-fold scores:
    the leader always, then others up to ``RACE_KEEP`` while their folds fit in what is left. ``short``: the
    budget capped the models' rows (``run_zoo``), so every second the losers' folds would cost is better spent by
    the tuning stage on more rows for the leading family (hotel rates at 48 s: five families on five folds of
    1,000-4,100 rows, then no seconds to cross-validate the tuned winner on every row)."""
    if not short and sum(remaining.values()) <= available:
        return list(first)
    sign = 1.0 if metric in LOWER_IS_BETTER else -1.0

    def rank(model: str) -> tuple[float, int]:
        value = first[model].fold_scores[metric][0]
        return (sign * value if np.isfinite(value) else np.inf, ZOO.index(first[model].model))

    ranked = sorted((m for m in first if first[m].model != "dummy"), key=rank) or list(first)
    chosen, left = [ranked[0]], available - remaining[ranked[0]]
    for model in ranked[1:RACE_KEEP]:
        if remaining[model] <= left:
            chosen.append(model)
            left -= remaining[model]
    return [m for m in first if m in chosen]


def race_note(first: dict[str, ModelResult], finished: list[str], metric: str, short: bool = False) -> str:
    """One sentence for the notebook's budget table: which models the race stopped after the first fold."""
    stopped = [m for m in first if m not in finished]
    scores = ", ".join(f"{m} {first[m].fold_scores[metric][0]:.4f}" for m in first)
    why = ("could cross-validate them only on samples of the training rows (the tuning stage gets the seconds of "
           "the other models' folds)" if short else "could not cross-validate all of them on every fold")
    return (f"every model scored on fold 1 ({metric}: {scores}); the time budget {why}, "
            f"so {', '.join(finished)} went on to every fold and {', '.join(stopped)} kept "
            "the fold-1 score (folds 1 on the leaderboard; not selected: models are compared on the same folds). "
            "Raise time_budget_seconds to cross-validate every model.")
