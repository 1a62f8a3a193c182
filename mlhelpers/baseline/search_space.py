"""The tuning stage's search space: a few seeded candidate parameter sets per family (``candidates``), in ranges
around the zoo's defaults, first the ones that most often win (the defaults at a slower rate -- with native splits
on high-cardinality codes too, where the table has them --, shallow slow boosting).
``baseline.tuning`` runs them; ``baseline.ablation`` caps its boosting rounds the same way (``MAX_TREES``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlhelpers.core.models import FAST_BOOSTING_ROWS

__all__ = ["MAX_TREES", "N_CANDIDATES", "TUNABLE", "candidates"]

TUNABLE = ("linear", "random_forest", "hist_gradient_boosting", "xgboost")
N_CANDIDATES = 9           # drawn per family (besides its defaults, already scored by the zoo)
MAX_TREES = 2000           # boosting cap for candidates (early stopping picks the number)
# A HistGradientBoosting draw whose leaves (of at least ``min_samples_leaf`` rows each) would need more than this
# share of the training rows is drawn again: a fold's early-stopped fit sees 72% of them, so such trees cannot grow
# as drawn, and they fit 2-5x slower than smaller ones. On Ames (2,344 rows) every draw of 63 or 127 leaves with
# leaves of 10-40 rows scored worse than the defaults (CV RMSE 25,769-26,607 vs 25,833) and took the short stage's
# seconds, while the three draws of 15 leaves, drawn later, scored best (24,883-25,091; test 22,573-22,951).
LEAF_ROWS_SHARE = 1 / 3


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _draw(family: str, task: str, n_rows: int, rng: np.random.Generator) -> dict[str, Any]:
    """One candidate: the knobs that matter most for the family, in ranges around the zoo's defaults (wide
    ranges waste a short stage: on diamonds, column subsampling of 0.5 cost 10-20% RMSE on 9 features)."""
    # big tables keep the zoo's faster rate: a slow rate would not finish inside a short stage
    rate = 0.05 if n_rows <= FAST_BOOSTING_ROWS else 0.15
    if family == "xgboost":
        params: dict[str, Any] = {"learning_rate": rate, "n_estimators": MAX_TREES,
                                  "min_child_weight": round(_log_uniform(rng, 0.5, 10), 3),
                                  "subsample": round(float(rng.uniform(0.7, 1.0)), 3),
                                  "colsample_bytree": round(float(rng.uniform(0.7, 1.0)), 3),
                                  "reg_lambda": round(_log_uniform(rng, 0.3, 10), 3)}
        if rng.random() < 0.7:  # depth-wise trees, or leaf-wise ones (LightGBM's growth, which FLAML favours)
            return params | {"max_depth": int(rng.choice([2, 3, 4, 5, 6, 7, 8, 10]))}
        leaves = int(rng.choice([4, 7, 15, 31, 63, 127]))
        return params | {"max_depth": 0, "grow_policy": "lossguide", "max_leaves": leaves}
    if family == "hist_gradient_boosting":
        return {"learning_rate": rate, "max_iter": MAX_TREES,
                "max_leaf_nodes": int(rng.choice([4, 7, 15, 31, 63, 127])),
                "min_samples_leaf": int(rng.choice([5, 10, 20, 40])),
                "l2_regularization": round(_log_uniform(rng, 1e-3, 3), 4),
                "max_features": round(float(rng.uniform(0.7, 1.0)), 3)}
    if family == "random_forest":
        shares: list[str | float] = ["sqrt", 0.33, 0.5, 0.8, 1.0]  # a numpy choice would turn 0.8 into "0.8"
        return {"max_features": shares[int(rng.integers(len(shares)))],
                "min_samples_leaf": int(rng.choice([1, 2, 3, 5, 10]))}
    raise ValueError(f"no random space for {family!r}")


def _can_grow(params: dict[str, Any], n_rows: int) -> bool:
    """Whether the training rows could fill the draw's leaves (``LEAF_ROWS_SHARE``); families without a leaf
    count and a minimum leaf size always can."""
    if "max_leaf_nodes" not in params or "min_samples_leaf" not in params:
        return True
    return params["max_leaf_nodes"] * params["min_samples_leaf"] <= LEAF_ROWS_SHARE * n_rows


def _slower(family: str, n_rows: int) -> dict[str, Any] | None:
    """The zoo's defaults at the slower learning rate, with room for more trees: the first candidate
    (alone it closed half the gap to FLAML on diamonds in the prototype's probe)."""
    if n_rows > FAST_BOOSTING_ROWS or family not in ("xgboost", "hist_gradient_boosting"):
        return None
    return {"learning_rate": 0.05, ("n_estimators" if family == "xgboost" else "max_iter"): MAX_TREES}


def _native_codes(family: str, n_rows: int, codes: list[int] | None) -> dict[str, Any] | None:
    """The first candidate with native categorical splits on the high-cardinality codes too (``codes``: every code
    column, ``models.code_columns``): the second candidate, when the table has such columns. Codes of about a
    hundred levels (hotel rates' country, agent and company: 98-167) split better as sets than as numbers:
    HistGradientBoosting at rate 0.05 scored CV RMSE 13.40 vs 13.64 as ordinal codes, test 12.57 vs 12.80 (the
    benchmark's split, every row); on flights' hundreds of airports they overfit (ROC AUC 0.773 vs 0.793): a
    candidate, judged by cross-validation, not a default."""
    if family != "hist_gradient_boosting" or not codes:
        return None
    return (_slower(family, n_rows) or {}) | {"categorical_features": list(codes)}


def _shallow(family: str, n_rows: int) -> dict[str, Any] | None:
    """Shallow, slow boosting (4 leaves / depth 2, large leaves): the next candidate. Near-additive tables
    (churn, credit scoring) want stumps-like trees that the zoo's 31-leaf / depth-6 defaults overfit; FLAML's
    LightGBM often lands there (wa_churn: HistGradientBoosting with 4 leaves 0.8488 CV ROC AUC, defaults 0.8414)."""
    rate = 0.05 if n_rows <= FAST_BOOSTING_ROWS else 0.15
    if family == "hist_gradient_boosting":
        return {"learning_rate": rate, "max_iter": MAX_TREES, "max_leaf_nodes": 4, "min_samples_leaf": 40}
    if family == "xgboost":
        return {"learning_rate": rate, "n_estimators": MAX_TREES, "max_depth": 2, "min_child_weight": 5.0}
    return None


def candidates(family: str, task: str, n_rows: int, seed: int, n: int = N_CANDIDATES,
               native_codes: list[int] | None = None) -> list[dict[str, Any]]:
    """``n`` distinct candidate parameter sets for ``family``, the same for the same seed. The linear model
    gets a grid of its regularization strength instead (one knob: a grid covers it better than draws).
    ``native_codes``: every category-code column when the table has high-cardinality ones (``_native_codes``)."""
    if family == "linear":
        key = "C" if task == "classification" else "alpha"
        grid = [0.01, 0.03, 0.1, 0.3, 3.0, 10.0, 30.0, 100.0]  # around the zoo's 1.0
        return [{key: value} for value in grid[:n]]
    if family not in TUNABLE:
        raise ValueError(f"cannot tune {family!r}; tunable: {', '.join(TUNABLE)}")
    rng = np.random.default_rng(seed)
    fixed = (_slower(family, n_rows), _native_codes(family, n_rows, native_codes), _shallow(family, n_rows))
    drawn: list[dict[str, Any]] = [first for first in fixed if first]
    for _ in range(20 * n):  # a small discrete space (the forest's) may repeat draws
        if len(drawn) >= n:
            break
        params = _draw(family, task, n_rows, rng)
        if params not in drawn and _can_grow(params, n_rows):
            drawn.append(params)
    return drawn[:n]
