"""The baseline step's time budget: one clock for the whole step, and seconds held back for the parts after the zoo.

The notebook starts a ``Budget`` before it reads the data; ``crossval.run_zoo`` spends what the parts after it
do not hold back, and each later part (text ablation, permutation importance, learning curve, a tuning stage)
asks ``available`` how much it may spend, then fits in it or says why it skipped or subsampled. Row caps chosen
from the budget are seeded (``capped_rows``), so a capped run is reproducible; a table that fits the budget is
fitted on every row, exactly as without a budget.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd

from mlhelpers.baseline import BaselineError

__all__ = ["Budget", "RESERVES", "TUNING_SHARE", "capped_rows"]

# Shares of the whole budget held back, while the zoo runs, for what comes after it. The rest (80%, 90% without
# free text) is the zoo's: loading and splitting come out of it too, and tuning gets what the zoo leaves unspent.
RESERVES = {"text_ablation": 0.10, "writing": 0.04, "permutation_importance": 0.06, "learning_curve": 0.10}
# With ``tune_seconds`` the tuning stage holds this share of the budget too (at most ``tune_seconds``, so only
# budgets under 75 s feel it): it bought the wins over a 60-second AutoML run on Titanic, Ames and diamonds, and on
# a short budget the zoo would otherwise spend everything and leave it nothing. 40% rather than 25%: at 48 s the zoo
# then races the families on fold 1 (``race``) instead of cross-validating five families on five folds, and the
# stage gets about twice the seconds.
TUNING_SHARE = 0.4


class Budget:
    """``seconds`` for the whole step, counted from ``started`` (``time.perf_counter()``; now by default).

    ``hold(part)`` keeps ``RESERVES[part]`` of the budget for a later part; ``available(part)`` is what that
    part may spend now (what remains, less what the parts still held need) and releases its hold.
    ``tune_seconds`` > 0 holds ``min(tune_seconds, TUNING_SHARE * seconds)`` for the part ``"tuning"``.
    """

    def __init__(self, seconds: float, *, started: float | None = None, parts: tuple[str, ...] | None = None,
                 tune_seconds: float = 0.0):
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) \
                or seconds <= 0:
            raise BaselineError(f"time_budget_seconds must be a finite number of seconds > 0, got {seconds!r}; "
                                "e.g. time_budget_seconds: 600.")
        self.seconds = float(seconds)
        self.started = time.perf_counter() if started is None else started
        self.held: dict[str, float] = {part: RESERVES[part] * self.seconds
                                       for part in (RESERVES if parts is None else parts)}
        if tune_seconds > 0:
            self.held["tuning"] = min(float(tune_seconds), TUNING_SHARE * self.seconds)

    def spent(self) -> float:
        return time.perf_counter() - self.started

    def remaining(self) -> float:
        """Seconds left of the whole budget (never below 0)."""
        return max(self.seconds - self.spent(), 0.0)

    def release(self, part: str) -> None:
        """Give up ``part``'s hold (it will not run), so the parts before it may spend it."""
        self.held.pop(part, None)

    def available(self, part: str | None = None) -> float:
        """Seconds ``part`` may spend now: what remains less what the other parts still hold. ``part``'s own
        hold is released (it is running now); ``None`` asks without releasing anything (a tuning stage's share:
        what the zoo left unspent)."""
        if part is not None:
            self.release(part)
        return max(self.remaining() - sum(self.held.values()), 0.0)

    def __repr__(self) -> str:
        return (f"Budget({self.seconds:g} s, spent {self.spent():.1f} s, held {sum(self.held.values()):.1f} s "
                f"for {', '.join(self.held) or 'nothing'})")


def capped_rows(y: np.ndarray | None, n_rows: int, seed: int,
                folds: list[tuple[np.ndarray, np.ndarray]] | None = None) -> np.ndarray:
    """A seeded order of ``n_rows`` positions whose first k, for any k, are a sample of k rows: stratified by
    class when ``y`` holds class indices (each class in proportion, every class within the first few rows), else
    uniform. Samples of different sizes are nested: a smaller cap is a subset of a larger one.

    With ``folds`` (the split's (fit, validation) positions) and classes, each class's first rows are one from
    the validation rows of each of two folds, so every fold fits on every class however small the sample: a
    rare class's one row in a 1,000-row sample left a fold without it (ratdat's rodents, 35 species)."""
    order = np.random.default_rng(seed).permutation(n_rows)
    if y is None:
        return order
    classes = np.asarray(y)[order]
    # a row's rank among its class in the shuffled order, as a share of its class: sorting by it interleaves
    # the classes in proportion (a plain shuffle can leave a rare class out of a small sample)
    counts = np.bincount(classes)
    rank = np.empty(n_rows, dtype=np.int64)
    by_class = np.argsort(classes, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank[by_class] = np.arange(n_rows) - np.repeat(starts, counts)
    order = order[np.argsort(rank / counts[classes], kind="stable")]
    if folds is None:
        return order
    fold_of = np.full(n_rows, -1)
    for number, (_, val_rows) in enumerate(folds):
        fold_of[val_rows] = number
    pairs = pd.DataFrame({"cls": np.asarray(y)[order], "fold": fold_of[order]})
    firsts = pairs[pairs["fold"] >= 0].drop_duplicates(["cls", "fold"])  # index: place in ``order``
    front = np.sort(firsts.index[firsts.groupby("cls").cumcount().to_numpy() < 2].to_numpy())
    rest = np.ones(n_rows, dtype=bool)
    rest[front] = False
    return np.concatenate([order[front], order[rest]])
