"""The export step's model: the spec to rebuild, the baseline's split of the data, the refit on every
training row, the one evaluation on the test rows and the input schema.

Reads the baseline step's ``model_spec.json`` and ``split.json`` (and ``cv_results.json`` when a
different model is selected); writes ``model/metrics.json`` and ``model/input_schema.json``. The
files come next (``mlhelpers.export.saving``), then the card (``model_card``) and MLflow (``tracking``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlhelpers.core import engine, lazy
from mlhelpers.core import schema as input_schema
from mlhelpers.core.artifacts import artifact_path, finite_or_none, read_artifact, write_json
from mlhelpers.core.classes import describe_plan, merge_rare_classes
from mlhelpers.core.metrics import absent_classes, cv_spread_check, scores, task_metrics
from mlhelpers.core.models import LEADERBOARD_MODELS, build_pipeline, encode_target, fit_params, model_family
from mlhelpers.core.provenance import check_data
from mlhelpers.core.tables import drop_missing_target, load_as_explored
from mlhelpers.core.threads import native_threads, predict_on_one_thread
from mlhelpers.core.values import apply_conversions
from mlhelpers.export import ExportError
from mlhelpers.formats.skops_io import load_skops

__all__ = ["ExportData", "resolve_spec", "load_export_data", "prepare_export_data", "all_features", "refit",
           "evaluate_on_test", "write_metrics", "metrics_table", "describe_test_score", "write_input_schema"]



@dataclass
class ExportData:
    """The baseline step's split of the table (features and encoded targets) and the spec to refit."""

    spec: dict[str, Any]
    X_train: pd.DataFrame
    y_train: np.ndarray
    X_test: pd.DataFrame
    y_test: np.ndarray
    task: str
    classes: list | None
    strategy: str
    prefit: Path | None = None       # engine dask: the full-data XGBoost the baseline trained (used as is)
    conversions: dict[str, dict[str, Any]] = field(default_factory=dict)  # eda.json's value conversions

    def summary(self) -> pd.DataFrame:
        """One row per side of the split: rows, features and target balance or spread."""
        rows = []
        for side, X, y in (("train", self.X_train, self.y_train), ("test", self.X_test, self.y_test)):
            row: dict[str, Any] = {"split": side, "rows": len(X), "features": X.shape[1]}
            if self.task == "classification":
                counts = np.bincount(y, minlength=len(self.classes))
                row |= {f"share_{label}": round(count / len(y), 4) for label, count in zip(self.classes, counts)}
            else:
                row |= {"target_mean": float(np.mean(y)), "target_std": float(np.std(y))}
            rows.append(row)
        return pd.DataFrame(rows).set_index("split")

    def spec_table(self) -> pd.DataFrame:
        """What gets refit and why: model, parameters, features, CV score of the primary metric."""
        spec, metric = self.spec, self.spec["primary_metric"]
        cv = spec.get("cv", {}).get(metric)
        threshold = spec.get("decision_threshold")
        rows = {"model": spec.get("leaderboard_row", spec["model"]), "task": spec["task"], "target": spec["target"],
                **({"rare classes": describe_plan(spec.get("rare_classes"))} if spec["task"] == "classification" else {}),
                "estimator parameters": ", ".join(f"{k}={v}" for k, v in spec.get("estimator_params", {}).items()) or "zoo defaults",
                "features": ", ".join(f"{role}: {len(names)}" for role, names in spec["features"].items() if names),
                f"CV {metric}": f"{cv['mean']:.4f} ± {cv['std']:.4f}" if cv else "not recorded",
                "why this model": spec.get("selection_reason", "chosen by the baseline step"),
                "decision threshold": (f"{threshold['threshold']:.4f} on P({threshold['positive_class']}) "
                                       f"({threshold['rule']}); labels use 0.5") if threshold else "none",
                "seed": spec["seed"]}
        return pd.DataFrame({"value": list(rows.values())}, index=list(rows))


def resolve_spec(run_dir: str | Path, selected_model: str = "auto") -> dict[str, Any]:
    """The model spec to export: the baseline's choice (``"auto"``) or another model it cross-validated.

    Another model is rebuilt from the spec's features with the estimator parameters and the
    fold scores the baseline recorded for it in ``cv_results.json``. Raises ``ExportError`` for
    a model the baseline did not cross-validate.
    """
    spec = read_artifact(run_dir, "model_spec")
    # a spec written before the tuning stage has no leaderboard_row: its model is the row's name
    if selected_model in ("auto", spec.get("leaderboard_row", spec["model"])):
        return spec
    if selected_model not in LEADERBOARD_MODELS:
        raise ExportError(f"selected_model {selected_model!r} is not a supported model; "
                          f"use 'auto' or one of {', '.join(LEADERBOARD_MODELS)}.")
    models = read_artifact(run_dir, "cv_results").get("models", {})
    if selected_model not in models:
        raise ExportError(f"selected_model {selected_model!r} is not on the baseline leaderboard "
                          f"({', '.join(models)}); pick one of those or 'auto', "
                          "or rerun the baseline step with it in `models`.")
    result = models[selected_model]
    cv = {metric: {"mean": float(np.mean(np.asarray(folds, dtype=float))), "std": float(np.std(np.asarray(folds, dtype=float)))}
          for metric, folds in result["fold_scores"].items()}
    rebuilt = {key: value for key, value in spec.items() if key not in ("decision_threshold", "selection_reason")}
    return rebuilt | {"model": model_family(selected_model), "leaderboard_row": selected_model,
                      "estimator_params": result.get("estimator_params", {}), "cv": cv,
                      "selection_reason": f"selected_model={selected_model!r} in the export parameters"}


def load_export_data(params) -> ExportData:
    """Read the baseline's spec (or rebuild ``params.selected_model``) and split, load the data
    named by ``params`` exactly as the baseline did (eda.json's value conversions), and split it. Raises ``ExportError`` when
    the params and the baseline disagree (another target) and ``MissingArtifactError`` when the
    baseline step has not run in ``params.run_dir``; ``DataChangedError`` when the data file is not the
    one the run started from."""
    check_data(params.run_path, params.data_file, "export")
    spec = resolve_spec(params.run_path, params.selected_model)
    split = read_artifact(params.run_path, "split")
    if spec["target"] != params.target:
        raise ExportError(f"model_spec.json in {params.run_path} predicts {spec['target']!r}, params say "
                          f"{params.target!r}; export with the baseline's target or rerun 01 and 02 with this one.")
    conversions = read_artifact(params.run_path, "eda").get("conversions") or {}
    if spec.get("engine") == "dask":
        return _load_partitioned(params, spec, split, conversions)
    table = load_as_explored(params.data_file, conversions, query=params.data_query, sheet=params.data_sheet)
    frame, _ = drop_missing_target(table, params.target)
    return prepare_export_data(frame, spec, split, conversions)


def _load_partitioned(params, spec: dict[str, Any], split: dict[str, Any],
                      conversions: dict[str, dict[str, Any]]) -> ExportData:
    """Engine dask: the training rows are the baseline's sample, the test rows a seeded sample of up to
    ``dask_sample_rows`` rows of the held-out partitions (every row of them was scored by the baseline: ``holdout``
    in model_spec.json); both as the baseline saved them (``spec["samples"]``), or drawn again when it did not (the
    same rows by content and seed). A full-data winner is used as saved."""
    engine.current_client()
    table = lazy.read_lazy(params.data_file)
    parts = spec["holdout"]["partitions"]
    if max(max(numbers) for numbers in parts.values() if numbers) >= table.npartitions:
        raise ExportError(f"{params.data_file} has {table.npartitions} partitions, fewer than the baseline held out; "
                          "the data changed since the baseline step: rerun it.")
    train = _saved_sample(params.run_path, spec, "train", split["seed"], spec["sample_rows"])
    if train is None:
        train = lazy.lazy_sample(table, spec["sample_rows"], split["seed"], known=spec["target"],
                                 partitions=sorted(parts["train"] + parts["valid"]))
    test = _saved_sample(params.run_path, spec, "test", split["seed"], params.dask_sample_rows)
    if test is None:
        test = lazy.lazy_sample(table, params.dask_sample_rows, split["seed"], known=spec["target"],
                                partitions=parts["test"])
    # NaN for every missing text value, then eda.json's conversions: the dtypes the pandas engine's export has
    # (a yes/no column as boolean, not objects), so the input schema accepts the rows check_rows converts; then
    # as the baseline fed its pipelines (conversions, then sklearn_frame): a true/false column with gaps became
    # pandas' nullable boolean here, and the full-data XGBoost's encoder, fitted on objects, failed on it
    # (TypeError: ufunc 'isnan' not supported)
    frame = lazy.sklearn_frame(apply_conversions(lazy.sklearn_frame(pd.concat([train, test])), conversions))
    data = prepare_export_data(frame, spec, {"train_index": split["train_index"], "test_index": test.index.tolist()},
                               conversions)
    data.strategy = f"dask: {len(parts['test'])} held-out partitions (a seeded sample of {len(test):,} rows of them here)"
    if spec.get("trained_on") == "full":
        data.prefit = params.run_path / spec["full_model"]
    return data


def _saved_sample(run_dir: Path, spec: dict[str, Any], side: str, seed: int, rows: int) -> pd.DataFrame | None:
    """The baseline's saved sample (``spec["samples"]``: "train", the zoo's; "test", the held-out one) when it is the
    one ``lazy.lazy_sample`` would draw here (the same seed; ``rows`` rows, or asked for, for the test side); else
    None (an older baseline, another seed or size): the caller draws it, a pass over the partitions."""
    saved = spec.get("samples") or {}
    if side not in saved or saved.get("seed") != seed or not (run_dir / saved[side]).is_file():
        return None
    if (saved["rows"].get(side) if side == "train" else saved.get("test_rows_requested")) != rows:
        return None
    return pd.read_parquet(run_dir / saved[side])


def prepare_export_data(frame: pd.DataFrame, spec: dict[str, Any], split: dict[str, Any],
                        conversions: dict[str, dict[str, Any]] | None = None) -> ExportData:
    """Split the loaded table (rows with a missing target already dropped) as the baseline did;
    ``conversions`` (eda.json's) go into the input schema, so scoring reads new rows the same way.

    The target's rare classes are merged exactly as the baseline merged them (``rare_classes`` in the spec),
    so the refit model has the baseline's classes. Raises ``ExportError`` when the table no longer matches the
    split or the spec (changed data, another target): rerun the baseline step on this data.
    """
    target = spec["target"]
    if target not in frame.columns:
        raise ExportError(f"the data has no target column {target!r} (model_spec.json's target); "
                          "export with the same data and target as the baseline step.")
    features = [c for c in frame.columns if c in set(all_features(spec))]
    missing = sorted(set(all_features(spec)) - set(features))
    if missing:
        raise ExportError(f"the data lacks feature columns {missing} that model_spec.json uses; "
                          "rerun the baseline step on this data.")
    train_index, test_index = split["train_index"], split["test_index"]
    unknown = pd.Index(train_index + test_index).difference(frame.index)
    if len(unknown):
        raise ExportError(f"split.json names {len(unknown)} rows the data does not have (e.g. {list(unknown[:3])}); "
                          "the data changed since the baseline step: rerun it.")
    y = merge_rare_classes(frame[target], spec.get("rare_classes")) if spec["task"] == "classification" else frame[target]
    try:
        y_train, classes = encode_target(y.loc[train_index], spec["task"], spec.get("classes"))
        y_test, _ = encode_target(y.loc[test_index], spec["task"], classes)
    except ValueError as exc:
        raise ExportError(f"{exc} The data changed since the baseline step: rerun it on this data.") from None
    return ExportData(spec=spec, X_train=frame.loc[train_index, features], y_train=y_train,
                      X_test=frame.loc[test_index, features], y_test=y_test,
                      task=spec["task"], classes=classes, strategy=split.get("strategy", "unknown"),
                      conversions=dict(conversions or {}))


def all_features(spec: dict[str, Any]) -> list[str]:
    """Every column the spec's pipeline reads, in role order."""
    return [name for names in spec["features"].values() for name in names]


def refit(data: ExportData):
    """The spec's pipeline, fitted on every training row (the test rows stay unseen).

    Fitting uses the spec's ``n_jobs``; afterwards every ``n_jobs`` is set to 1, so the exported
    model predicts single-threaded: the same answers (threads only change the order a forest sums
    its trees in, ~1e-16, and make that order vary between calls), single rows come back faster (a
    random forest on the demo: p50 33 ms with two threads, 14 ms with one) and a server scales by
    adding workers instead.
    """
    if data.prefit is not None:  # trained on the cluster over every training row: nothing to refit here
        pipeline = load_skops(data.prefit)
    else:
        # on one thread below OPENMP_MIN_ROWS rows, as the zoo fitted it: the same model (the boosting fits give the
        # same bytes on one and two threads), without busy-waiting threads when other processes share the cores
        with native_threads(len(data.X_train), data.spec.get("n_jobs", -1)):
            pipeline = build_pipeline(data.spec).fit(data.X_train, data.y_train,
                                                     **fit_params(data.spec, data.y_train))
    return predict_on_one_thread(pipeline)


def evaluate_on_test(pipeline, data: ExportData) -> dict[str, float]:
    """Every metric of the task on the held-out test split, computed once, primary metric first
    (the same metric code as the baseline's cross-validation: ``mlhelpers.core.metrics.scores``)."""
    metrics = task_metrics(data.task, data.spec["primary_metric"])
    if data.task == "classification":
        return scores(metrics, data.y_test, pipeline.predict_proba(data.X_test), len(data.classes))
    return scores(metrics, data.y_test, pipeline.predict(data.X_test))


def write_metrics(run_dir: str | Path, data: ExportData, pipeline) -> pd.DataFrame:
    """Evaluate ``pipeline`` once on the test split (``evaluate_on_test``) and write ``model/metrics.json``
    (primary metric, test scores, CV mean and std, whether the primary test score lies outside CV mean +- 3 std,
    the classes with no test row; engine dask: the held-out scores and what the model was trained on);
    return ``metrics_table``."""
    spec, metric = data.spec, data.spec["primary_metric"]
    test = evaluate_on_test(pipeline, data)
    absent = absent_classes(data.y_test, len(data.classes)) if data.task == "classification" else []
    cv = {k: v for k, v in spec.get("cv", {}).items() if isinstance(v, dict)}  # a full-data winner's cv adds a note
    write_json(artifact_path(run_dir, "metrics"), finite_or_none({
        "primary_metric": metric, "model": spec["model"], "test": test,
        "cv": cv, "n_train": spec.get("train_rows", len(data.X_train)), "n_test": len(data.X_test),
        "test_vs_cv": cv_spread_check(metric, test.get(metric), cv.get(metric)),
        "classes_absent_from_test": [data.classes[c] for c in absent]}
        | ({"holdout": spec["holdout"], "trained_on": spec.get("trained_on")} if "holdout" in spec else {})))
    return metrics_table(read_artifact(run_dir, "metrics"))


def metrics_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """CV mean ± std next to the test score, one row per metric (primary first)."""
    names = list(dict.fromkeys([metrics["primary_metric"], *metrics["test"], *metrics["cv"]]))
    rows = [{"metric": name,
             "cv_mean": metrics["cv"].get(name, {}).get("mean"),
             "cv_std": metrics["cv"].get(name, {}).get("std"),
             "test": metrics["test"].get(name)} for name in names]
    return pd.DataFrame(rows).set_index("metric")


def describe_test_score(metrics: dict[str, Any]) -> str:
    """One Markdown sentence: is the primary test score inside CV mean +- 3 std (``metrics.json``'s ``test_vs_cv``),
    and which classes had no test row. Older metrics.json files without the check get an empty string."""
    check, absent = metrics.get("test_vs_cv"), metrics.get("classes_absent_from_test") or []
    lines = []
    if check and check.get("outside") is not None:
        figures = (f"test {check['metric']} {check['test']:.4f} against CV {check['cv_mean']:.4f} ± {check['cv_std']:.4f} "
                   f"(± {check['n_std']:g} std: {check['low']:.4f} to {check['high']:.4f})")
        if check["outside"]:
            lines.append(f"⚠️ **The test score is outside the CV spread, {check['direction']} than CV**: {figures}. "
                         "One test score this far from every fold usually means the test rows differ from the "
                         "training rows (a class missing from them, another period or population, a lucky or "
                         "unlucky draw): trust the CV figure more, and check the split and the data.")
        else:
            lines.append(f"The test score is within the CV spread: {figures}.")
    elif check:
        lines.append(f"No CV spread to compare the test {check['metric']} with (a figure is missing).")
    if absent:
        lines.append(f"⚠️ Classes with no row in the test split, left out of its macro averages: "
                     f"{', '.join(map(str, absent))}.")
    return "\n\n".join(lines)


def write_input_schema(run_dir: str | Path, data: ExportData) -> pd.DataFrame:
    """Write ``model/input_schema.json`` (``mlhelpers.core.schema.infer_input_schema``); return it as a table, one row per column."""
    schema = input_schema.infer_input_schema(data.X_train, data.spec, data.classes, data.conversions)
    write_json(artifact_path(run_dir, "input_schema"), finite_or_none(schema))  # a column with no value has no range
    rows = []
    for name, info in schema["columns"].items():
        allowed = info.get("categories")
        rows.append({"column": name, "role": info["role"], "dtype": info["dtype"],
                     "missing_seen": info["missing_seen"], "min": info.get("min"), "max": info.get("max"),
                     "allowed": None if allowed is None else ", ".join(map(str, allowed[:12]))
                     + (" ..." if len(allowed) > 12 else "")})
    return pd.DataFrame(rows).set_index("column")


