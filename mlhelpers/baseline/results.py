"""What the baseline step concludes from the zoo: its files (leaderboard, CV results, the spec export
rebuilds), the decision threshold of a binary target, and the check for suspiciously perfect scores.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlhelpers.baseline import BaselineError
from mlhelpers.baseline.crossval import ZooResult
from mlhelpers.core.artifacts import artifact_path, atomic_path, finite_or_none, relative_to_run, write_json
from mlhelpers.core.metrics import SUSPICIOUS
from mlhelpers.formats.skops_io import save_skops

__all__ = ["LeakageWarning", "choose_threshold", "write_baseline_artifacts", "out_of_fold_table", "check_leakage"]


class LeakageWarning(UserWarning):
    """A cross-validated score is suspiciously perfect: a feature probably leaks the target."""


def choose_threshold(zoo: ZooResult) -> dict[str, Any]:
    """For a binary target: the probability threshold on class 1 maximizing balanced accuracy
    (Youden's J) on out-of-fold predictions, with its scores next to those at 0.5."""
    return choose_threshold_for(zoo, None)


def choose_threshold_for(zoo: ZooResult, model: str | None) -> dict[str, Any]:
    """``choose_threshold`` from ``model``'s out-of-fold predictions (the selected model's for None)."""
    from sklearn.metrics import roc_curve

    if zoo.data.n_classes != 2:
        raise BaselineError("a decision threshold applies to binary classification only.")
    y, proba = zoo.out_of_fold(model)
    fpr, tpr, thresholds = roc_curve(y, proba[:, 1])
    finite = np.isfinite(thresholds)
    best = np.argmax((tpr - fpr)[finite])
    threshold = float(np.clip(thresholds[finite][best], 0.0, 1.0))
    return {"threshold": threshold, "positive_class": zoo.data.classes[1],
            "rule": "maximizes balanced accuracy (Youden's J) on out-of-fold predictions"}


def write_baseline_artifacts(zoo: ZooResult, run_dir: str | Path, holdout=None) -> pd.DataFrame:
    """Write ``leaderboard.csv``, ``cv_results.json`` and ``model_spec.json``; return a table of the files
    (paths relative to the run folder) and what each holds.

    ``holdout`` (engine dask, ``mlhelpers.baseline.fulldata.HoldoutResult``): the leaderboard gets a
    ``trained_on`` column and the held-out scores, with the full-data XGBoost as its own line (no CV: it was
    trained once); when it wins, ``model_spec.json`` says ``trained_on: full`` and the fitted pipeline is
    saved as ``baseline/xgboost_full.skops`` for export."""
    data = zoo.data
    if zoo.budget is not None:
        zoo.budget.release("writing")  # writing now: what it held is spent, or goes to the diagnostics after it
    board_path = artifact_path(run_dir, "leaderboard")
    board = zoo.leaderboard if holdout is None else _with_holdout(zoo, holdout)
    with atomic_path(board_path) as temp:
        board.to_csv(temp, index=False)
    # a fold holding one class has no ROC AUC: NaN, written as null (finite_or_none)
    cv_results = write_json(artifact_path(run_dir, "cv_results"), finite_or_none({
        "primary_metric": data.primary_metric, "strategy": zoo.split.strategy, "n_folds": len(zoo.split.folds),
        "selected": zoo.selected, "selection_reason": zoo.reason, "training_rows": len(zoo.split.train_index),
        "time_budget_seconds": zoo.budget.seconds if zoo.budget else None, "budget_notes": zoo.notes,
        "models": {model: {"fold_scores": r.fold_scores, "train_rows": r.train_rows, "fit_seconds": r.fit_seconds,
                           "predict_seconds": r.predict_seconds, "estimator_params": r.estimator_params}
                   for model, r in zoo.results.items()}}))
    best = zoo.best
    spec = zoo.spec() | {
        "leaderboard_row": zoo.selected,  # "xgboost (tuned)" for the tuning stage's row; spec["model"] is its family
        "target": data.target, "primary_metric": data.primary_metric, "classes": data.classes,
        "rare_classes": data.rare_classes,  # export merges the same classes before it splits
        "cv": {metric: {"mean": best.mean(metric), "std": best.std(metric)} for metric in data.metrics},
        "selection_reason": zoo.reason,
        # rows its cross-validation used: fewer than the training rows when the time budget capped it (seeded)
        "cv_train_rows": best.train_rows, "training_rows": len(zoo.split.train_index),
    }
    if data.task == "classification" and data.n_classes == 2:
        spec["decision_threshold"] = choose_threshold(zoo)
    extra = {}
    if holdout is not None:
        spec |= {"engine": "dask", "trained_on": "sample", "sample_rows": len(data.X),
                 "holdout": {"partitions": holdout.details["partitions"], "rows": holdout.details["test_rows"],
                             "scores": holdout.table.replace({np.nan: None}).to_dict(orient="records"),
                             "winner": holdout.winner, "reason": holdout.reason,
                             "full_train_rows": holdout.details["train_rows"],
                             "full_train_rows_available": holdout.details.get("available_train_rows"),
                             "full_memory_note": holdout.details.get("memory_note")}}
        if holdout.winner == "full":
            full_path = artifact_path(run_dir, "full_model")
            save_skops(holdout.full_pipeline, full_path)
            spec = zoo.spec("xgboost") | {key: value for key, value in spec.items() if key not in zoo.spec("xgboost")}
            spec |= {"trained_on": "full", "full_model": relative_to_run(full_path, run_dir),
                     "train_rows": holdout.details["train_rows"], "best_iteration": holdout.details["best_iteration"],
                     "booster_params": holdout.details["booster_params"],
                     "selection_reason": holdout.reason,
                     "cv": {metric: {"mean": zoo.results["xgboost"].mean(metric), "std": zoo.results["xgboost"].std(metric)}
                            for metric in data.metrics} | {"note": "the sample-trained twin's CV; see holdout"}}
            spec.pop("decision_threshold", None)
            if data.task == "classification" and data.n_classes == 2:
                spec["decision_threshold"] = choose_threshold_for(zoo, "xgboost")
            extra[full_path] = "the full-data XGBoost pipeline export uses (skops)"
        extra |= _write_samples(holdout, run_dir, spec)
    spec_path = write_json(artifact_path(run_dir, "model_spec"), finite_or_none(spec))
    oof_path = artifact_path(run_dir, "oof_predictions")
    with atomic_path(oof_path) as temp:
        out_of_fold_table(zoo).to_parquet(temp, index=False)
    holds = {board_path: "the leaderboard above", cv_results: "every model's fold scores, timings and parameters",
             spec_path: f"what export rebuilds: {spec['model']} ({spec.get('trained_on', 'all training rows')}) "
                        "with its parameters and features",
             oof_path: f"{zoo.selected}'s out-of-fold predictions per training row (runs are compared on them)"} | extra
    return pd.DataFrame({"file": [relative_to_run(path, run_dir) for path in holds], "holds": list(holds.values())})


def _write_samples(holdout, run_dir: str | Path, spec: dict[str, Any]) -> dict[Path, str]:
    """Engine dask: the zoo's sample and the held-out sample as Parquet, so export reads its rows instead of drawing
    them again (a pass over every partition); ``spec["samples"]`` names them with the seed and size they were drawn
    with. A sample Parquet cannot hold (a column of mixed types) is left out: export draws it again."""
    import pyarrow as pa

    written, files = {}, {}
    for side, name, holds in (("train", "dask_sample", "the zoo's seeded sample (export's training rows)"),
                              ("test", "holdout_sample", "a seeded sample of the held-out rows (export's test rows)")):
        frame = holdout.samples.get(side)
        if frame is None:
            continue
        path = artifact_path(run_dir, name)
        try:
            with atomic_path(path) as temp:
                frame.to_parquet(temp)
        except (pa.ArrowException, ValueError, TypeError):
            continue
        written[path], files[side] = holds, relative_to_run(path, run_dir)
    spec["samples"] = files | {"seed": holdout.details["sample_seed"], "rows": {side: len(frame) for side, frame in holdout.samples.items()
                                                             if frame is not None},
                               "test_rows_requested": holdout.details.get("test_sample_requested")}
    return written


def _with_holdout(zoo: ZooResult, holdout) -> pd.DataFrame:
    """The zoo's leaderboard (trained on the sample) with the held-out scores where a model was scored there,
    and the full-data XGBoost as its own line next to its sample twin; ``selected`` marks what export takes."""
    board = zoo.leaderboard.copy()
    board.insert(1, "trained_on", f"sample ({len(zoo.split.train_index):,} rows, cross-validated)")
    scored = holdout.table[~holdout.table["trained_on"].str.startswith("full")].set_index("model")
    for column in [c for c in holdout.table.columns if c.startswith("holdout_")]:
        board[column] = board["model"].map(scored[column])
    full = holdout.table[holdout.table["trained_on"].str.startswith("full")].iloc[0].to_dict()
    full["trained_on"] = full["trained_on"].replace("full data", "full data, trained once")
    full["fit_seconds"] = holdout.details["train_seconds"]
    full["train_rows"] = holdout.details["train_rows"]  # fewer than the training partitions' when memory capped it
    if holdout.winner == "full":
        board["selected"] = False
    full["selected"] = holdout.winner == "full"
    position = int(np.flatnonzero(board["model"] == "xgboost")[0]) if (board["model"] == "xgboost").any() else len(board)
    return pd.concat([board.iloc[:position], pd.DataFrame([full]), board.iloc[position:]], ignore_index=True)


def out_of_fold_table(zoo: ZooResult, model: str | None = None) -> pd.DataFrame:
    """``model``'s (the selected one's) out-of-fold predictions, one row per training row some fold validated
    (rows of its sample only, when the time budget capped it):
    ``row`` (its label in the loaded table), ``fold`` (1-based), ``actual`` (the target), ``prediction`` (the
    class label, or the value) and ``proba_<class>`` per class."""
    result = zoo.results[model or zoo.selected]
    data = zoo.data
    y = data.y[zoo.split.positions(data.X)]
    fold = np.zeros(len(y), dtype=int)
    for number, (_, validated) in enumerate(zoo.split.folds, start=1):
        fold[validated] = number
    # a row some fold validated; when the time budget capped the model, only its sample's rows were validated
    seen = (fold > 0) & ~np.isnan(result.oof.reshape(len(y), -1)).any(axis=1)
    table = pd.DataFrame({"row": np.asarray(zoo.split.train_index, dtype=object)[seen], "fold": fold[seen]})
    if data.classes is None:
        table["actual"] = y[seen]
        table["prediction"] = result.oof[seen]
        return table
    classes = np.asarray(data.classes, dtype=object)
    proba = result.oof[seen]
    table["actual"] = classes[y[seen]]
    table["prediction"] = classes[proba.argmax(axis=1)]
    for i, label in enumerate(classes):
        table[f"proba_{label}"] = proba[:, i]
    return table


def check_leakage(zoo: ZooResult) -> pd.DataFrame:
    """Warn (``LeakageWarning``) about every suspiciously perfect cross-validated score.

    Returns one row per finding, or a one-row note naming the limits when nothing looks too good.
    """
    findings = []
    for model, result in zoo.results.items():
        for metric, limit in SUSPICIOUS.items():
            if metric in result.fold_scores and result.mean(metric) >= limit:
                findings.append({"model": model, "metric": metric, "mean": result.mean(metric), "limit": limit})
    if not findings:
        limits = ", ".join(f"{metric} >= {limit}" for metric, limit in SUSPICIOUS.items())
        return pd.DataFrame({"note": [f"no suspiciously perfect cross-validated score ({limits})"]})
    table = pd.DataFrame(findings, columns=["model", "metric", "mean", "limit"])
    if findings:
        suspects = zoo.data.leakage_suspects
        hint = f" The explore step flagged: {', '.join(suspects)}." if suspects else ""
        warnings.warn(
            "POSSIBLE LEAKAGE: " + "; ".join(f"{f['model']} {f['metric']} = {f['mean']:.4f}" for f in findings)
            + ". Scores this good usually mean a feature is computed from the target or known only after it "
            "(check the permutation importances below), or rows are duplicated across folds. Drop the column "
            f"(drop_columns) and rerun.{hint}", LeakageWarning, stacklevel=2)
    return table
