"""Prove parity: does an exported format predict what the in-memory model predicts?

``check_parity(reference, candidate, frame, task, tolerance=None, name="candidate") -> ParityResult``
    ``ParityResult(ok, max_abs_diff, max_rel_diff, label_mismatches, tolerance, n_rows, name)``;
    bounds: regression 1e-6 relative (7.6e-6 for float32 models such as XGBoost), probabilities 1e-5
    absolute, labels exact (rows the reference scores as an exact tie, top two probabilities within
    1e-9, are counted apart in ``tied_mismatches``).
    ``assert_parity(result)`` raises ``ParityError`` naming the format and the difference.
``parity_by_row(...) -> (ParityResult, broken)``
    The same, plus which rows break the bound (the parity probe names them).
``parity_dict(result) -> dict``
    The result as plain JSON-ready values.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd


REGRESSION_RTOL = 1e-6
# A float32 model (XGBoost predicts in float32) cannot be reproduced closer than its own rounding:
# sums of 300 float32 leaves in another order differ by ~10-20 float32 ulps (1.3e-6 relative measured
# on diamonds). Its regression bound is 64 float32 ulps (7.6e-6 relative) instead of 1e-6.
FLOAT32_ULPS = 64
# Rows whose top two reference probabilities differ by less than this are ties: which label wins
# is decided by rounding (in scikit-learn's own double sums too), so a flipped label there is
# reported (ParityResult.tied_mismatches) but does not break parity.
TIE_EPSILON = 1e-9
PROBA_ATOL = 1e-5


class ParityError(AssertionError):
    """An exported format's predictions differ from the in-memory model beyond the bound."""


@dataclass
class ParityResult:
    """How closely a candidate format reproduces the reference model on ``n_rows`` rows."""

    ok: bool
    max_abs_diff: float        # predictions (regression) or probabilities (classification)
    max_rel_diff: float        # |diff| / max(|reference|, 1): relative, absolute below 1
    label_mismatches: int      # classification: rows whose predicted label differs; 0 for regression
    tolerance: float           # the bound applied (relative for regression, absolute for probabilities)
    n_rows: int
    name: str = "candidate"
    tied_mismatches: int = 0   # label flips on rows the reference itself scores as a tie (TIE_EPSILON)
    task: str = "regression"


def check_parity(reference: Any, candidate: Any, frame: pd.DataFrame, task: str,
                 tolerance: float | None = None, name: str = "candidate") -> ParityResult:
    """Compare ``candidate``'s predictions with ``reference``'s on ``frame``; return the differences.

    Regression: max relative difference (|diff| / max(|reference|, 1)) within ``tolerance``
    (default 1e-6; 64 float32 ulps, 7.6e-6, when the reference itself predicts in float32). Classification: labels must match exactly and probabilities within
    ``tolerance`` absolute (default 1e-5); a flipped label on a row the reference scores as a tie
    (top two probabilities within ``TIE_EPSILON``: 0.5/0.5 from an even number of trees) is counted
    in ``tied_mismatches`` instead, since rounding alone decides it.
    """
    return parity_by_row(reference, candidate, frame, task, tolerance, name)[0]


def parity_by_row(reference: Any, candidate: Any, frame: pd.DataFrame, task: str,
                  tolerance: float | None = None, name: str = "candidate") -> tuple[ParityResult, np.ndarray]:
    """``check_parity``'s result and, per row of ``frame``, whether that row breaks the bound."""
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}.")
    if len(frame) == 0:
        raise ValueError("parity needs at least one row; pass a non-empty frame (e.g. the test split).")
    if task == "regression":
        raw = np.asarray(reference.predict(frame))
        bound = REGRESSION_RTOL if tolerance is None else tolerance
        if tolerance is None and raw.dtype == np.float32:
            bound = max(REGRESSION_RTOL, FLOAT32_ULPS * float(np.finfo(np.float32).eps))
        ref = raw.astype(float).ravel()
        cand = np.asarray(candidate.predict(frame), dtype=float).ravel()
        diff = np.abs(ref - cand)
        rel = diff / np.maximum(np.abs(ref), 1.0)
        max_abs, max_rel = float(np.nanmax(diff)), float(np.nanmax(rel))
        broken = ~np.isfinite(diff) | (rel > bound)
        ok = not broken.any()
        return ParityResult(ok, max_abs, max_rel, 0, bound, len(frame), name, 0, task), broken
    bound = PROBA_ATOL if tolerance is None else tolerance
    flipped = np.asarray(reference.predict(frame)).ravel() != np.asarray(candidate.predict(frame)).ravel()
    tied = np.zeros(len(frame), dtype=bool)
    max_abs = max_rel = 0.0
    far = np.zeros(len(frame), dtype=bool)
    if hasattr(reference, "predict_proba") and hasattr(candidate, "predict_proba"):
        ref = np.asarray(reference.predict_proba(frame), dtype=float)
        cand = np.asarray(candidate.predict_proba(frame), dtype=float)
        per_row = np.abs(ref - cand).max(axis=1)
        max_abs = max_rel = float(per_row.max())
        far = ~(per_row <= bound)
        top_two = np.sort(ref, axis=1)[:, -2:] if ref.shape[1] > 1 else np.zeros((len(ref), 2))
        tied = (top_two[:, 1] - top_two[:, 0]) < TIE_EPSILON
    mismatches, tied_mismatches = int((flipped & ~tied).sum()), int((flipped & tied).sum())
    ok = mismatches == 0 and max_abs <= bound
    result = ParityResult(ok, max_abs, max_rel, mismatches, bound, len(frame), name, tied_mismatches, task)
    return result, (flipped & ~tied) | far


def assert_parity(result: ParityResult) -> ParityResult:
    """Raise ``ParityError`` naming the format and the difference if ``result`` broke its bound."""
    if not result.ok:
        if result.task == "classification":
            what = (f"{result.label_mismatches} label mismatches, max probability difference "
                    f"{result.max_abs_diff:.3g}")
        else:
            what = f"max difference {result.max_abs_diff:.6g} (relative {result.max_rel_diff:.3g})"
        raise ParityError(f"{result.name} predictions differ from the in-memory model on "
                          f"{result.n_rows} rows: {what}, above the bound {result.tolerance:g}. "
                          f"Do not ship this format; export without it or fix the conversion.")
    return result


def parity_dict(result: ParityResult) -> dict[str, Any]:
    """``result`` as plain JSON-ready values (for metrics files and model cards)."""
    return asdict(result)
