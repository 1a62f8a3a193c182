"""Does the free text help? The selected model cross-validated again without its text columns, as a leaderboard row.

A text column costs fit time and can add noise (30 numbers per column from its character n-grams for the linear
model, 5 for the trees);
``with_text_ablation`` puts "<model> without text" on the leaderboard, on the same split and folds,
and ``text_verdict`` says whether the text earns its place. The variant is never selected: a model
without the text is one line away (``drop_columns: [...]`` in the baseline's parameters).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pandas as pd

from mlhelpers.baseline.crossval import ZooResult, cross_validate_model
from mlhelpers.baseline.search_space import MAX_TREES
from mlhelpers.core.metrics import LOWER_IS_BETTER
from mlhelpers.core.models import TUNED_SUFFIX

__all__ = ["WITHOUT_TEXT", "with_text_ablation", "text_verdict"]

WITHOUT_TEXT = " without text"  # suffix of the variant's model name on the leaderboard


def with_text_ablation(zoo: ZooResult, *, seconds: float | None = None) -> ZooResult:
    """``zoo`` with a leaderboard row for the selected model cross-validated without the text columns.

    The variant uses the selected model's rows (all, or the same seeded sample when the time budget capped it),
    so the two rows compare like with like. Returns ``zoo`` unchanged when the features hold no text column or
    text is all there is; with a note in ``zoo.notes["text_ablation"]`` and no row when ``seconds`` (what the
    time budget leaves it; None: no limit) cannot cover the selected model's own cross-validation time. The
    row's ``model`` is the selected model's name plus " without text"; its ``selected`` is False.
    """
    data = zoo.data
    text = list(data.features.get("text", []))
    others = [name for role, names in data.features.items() if role != "text" for name in names]
    if not text or not others:
        return zoo
    best = zoo.best
    expected = float(np.sum(best.fit_seconds) + np.sum(best.predict_seconds))  # less without the text: an upper bound
    if seconds is not None and expected > seconds:
        note = (f"skipped: cross-validating {zoo.selected} again takes about {expected:.0f} s and the time budget "
                f"leaves {seconds:.0f} s")
        return dataclasses.replace(zoo, notes=zoo.notes | {"text_ablation": note})
    started = time.perf_counter()
    reduced = dataclasses.replace(data, X=data.X.drop(columns=text),
                                  features={role: [] if role == "text" else list(names)
                                            for role, names in data.features.items()})
    params = None
    if zoo.selected.endswith(TUNED_SUFFIX):  # the tuned parameters, with the trees counted again by early stopping
        counts = {"xgboost": "n_estimators", "hist_gradient_boosting": "max_iter"}
        params = {k: v for k, v in best.estimator_params.items() if k not in ("n_estimators", "max_iter", "early_stopping")}
        if best.model in counts:
            params[counts[best.model]] = MAX_TREES
    result = cross_validate_model(best.model, reduced, zoo.split, seed=zoo.seed, n_jobs=zoo.n_jobs,
                                  estimator_params=params, rows=best.rows)
    row = {"model": zoo.selected + WITHOUT_TEXT}
    for metric in data.metrics:
        row[f"{metric}_mean"], row[f"{metric}_std"] = result.mean(metric), result.std(metric)
    row |= {"train_rows": result.train_rows, "folds": result.folds, "fit_seconds": float(np.mean(result.fit_seconds)),
            "predict_seconds": float(np.mean(result.predict_seconds)), "selected": False}
    primary = f"{data.primary_metric}_mean"
    board = pd.concat([zoo.leaderboard, pd.DataFrame([row])], ignore_index=True)
    board = board.sort_values(primary, ascending=data.primary_metric in LOWER_IS_BETTER, kind="stable",
                              na_position="last").sort_values("folds", ascending=False, kind="stable")
    board = board.reset_index(drop=True)
    return dataclasses.replace(zoo, leaderboard=board, seconds=zoo.seconds + time.perf_counter() - started)


def text_verdict(zoo: ZooResult) -> pd.DataFrame:
    """Whether the text columns help the selected model: its CV score with and without them, and
    what to do. A one-row table; it says why when there is no comparison."""
    text = list(zoo.data.features.get("text", []))
    metric = zoo.data.primary_metric
    board = zoo.leaderboard.set_index("model")
    variant = zoo.selected + WITHOUT_TEXT
    if not text:
        return pd.DataFrame({"verdict": ["no free-text column among the features"]})
    if variant not in board.index:
        why = zoo.notes.get("text_ablation", "text is the only feature")
        return pd.DataFrame({"verdict": [f"no comparison ({why}); to try without the text set drop_columns: {text}"]})
    with_mean, with_std = board.loc[zoo.selected, [f"{metric}_mean", f"{metric}_std"]]
    without_mean, without_std = board.loc[variant, [f"{metric}_mean", f"{metric}_std"]]
    gain = (without_mean - with_mean) if metric in LOWER_IS_BETTER else (with_mean - without_mean)
    spread = max(with_std, without_std)
    if gain > spread:
        verdict = f"the text helps: {gain:+.4f} {metric}, more than one standard deviation ({spread:.4f})"
    elif gain >= -spread:
        verdict = (f"the text changes {metric} by {gain:+.4f}, within one standard deviation ({spread:.4f}): "
                   f"for a simpler, faster model set drop_columns: {text}")
    else:
        verdict = (f"the text HURTS: {gain:+.4f} {metric}, beyond one standard deviation ({spread:.4f}); "
                   f"set drop_columns: {text} and rerun this step")
    return pd.DataFrame({"text columns": [", ".join(text)], f"{metric} with": [f"{with_mean:.4f} ± {with_std:.4f}"],
                         f"{metric} without": [f"{without_mean:.4f} ± {without_std:.4f}"], "verdict": [verdict]},
                        index=pd.Index([zoo.selected], name="model"))
