"""Export step: refit the chosen pipeline on every training row, test it once, describe it.

Reads the baseline step's ``model_spec.json`` and ``split.json`` (and ``cv_results.json`` when a
different model is selected); writes ``model/metrics.json``, ``model/input_schema.json`` and
``model/model_card.md``. Persistence lives in ``mlhelpers.persistence``, parity checks in
``mlhelpers.parity``, serving measurements in ``mlhelpers.serving``; MLflow logging in
``mlhelpers.tracking``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlhelpers.artifacts import atomic_path, read_artifact, step_dir, write_json

__all__ = [
    "ExportData", "ExportError", "resolve_spec", "load_export_data", "prepare_export_data", "refit",
    "evaluate_on_test", "write_metrics", "metrics_table", "infer_input_schema", "write_input_schema",
    "save_formats", "measure_formats", "serving_summary", "write_model_card",
]

# Roles whose values are checked against the categories seen in training; high-cardinality
# columns accept unseen values (the encoder maps them to "unknown").
CLOSED_ROLES = ("boolean", "categorical")


class ExportError(ValueError):
    """The export step cannot proceed: the message names the problem and the fix."""


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
        rows = {"model": spec["model"], "task": spec["task"], "target": spec["target"],
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
    from mlhelpers.config import MODEL_NAMES

    spec = read_artifact(run_dir, "model_spec")
    if selected_model in ("auto", spec["model"]):
        return spec
    if selected_model not in MODEL_NAMES:
        raise ExportError(f"selected_model {selected_model!r} is not a supported model; "
                          f"use 'auto' or one of {', '.join(MODEL_NAMES)}.")
    models = read_artifact(run_dir, "cv_results").get("models", {})
    if selected_model not in models:
        raise ExportError(f"selected_model {selected_model!r} is not on the baseline leaderboard "
                          f"({', '.join(models)}); pick one of those or 'auto', "
                          "or rerun the baseline step with it in `models`.")
    result = models[selected_model]
    cv = {metric: {"mean": float(np.mean(folds)), "std": float(np.std(folds))}
          for metric, folds in result["fold_scores"].items()}
    rebuilt = {key: value for key, value in spec.items() if key not in ("decision_threshold", "selection_reason")}
    return rebuilt | {"model": selected_model, "estimator_params": result.get("estimator_params", {}), "cv": cv,
                      "selection_reason": f"selected_model={selected_model!r} in the export parameters"}


def load_export_data(params) -> ExportData:
    """Read the baseline's spec (or rebuild ``params.selected_model``) and split, load the data
    named by ``params`` exactly as the baseline did, and split it. Raises ``ExportError`` when
    the params and the baseline disagree (another target) and ``MissingArtifactError`` when the
    baseline step has not run in ``params.run_dir``."""
    from mlhelpers.data import drop_missing_target, load_table

    spec = resolve_spec(params.run_path, params.selected_model)
    split = read_artifact(params.run_path, "split")
    if spec["target"] != params.target:
        raise ExportError(f"model_spec.json in {params.run_path} predicts {spec['target']!r}, params say "
                          f"{params.target!r}; export with the baseline's target or rerun 01 and 02 with this one.")
    frame, _ = drop_missing_target(load_table(params.data_file, query=params.data_query), params.target)
    return prepare_export_data(frame, spec, split)


def prepare_export_data(frame: pd.DataFrame, spec: dict[str, Any], split: dict[str, Any]) -> ExportData:
    """Split the loaded table (rows with a missing target already dropped) as the baseline did.

    Raises ``ExportError`` when the table no longer matches the split or the spec (changed data,
    another target): rerun the baseline step on this data.
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
    from mlhelpers.modeling import encode_target

    y_train, classes = encode_target(frame.loc[train_index, target], spec["task"], spec.get("classes"))
    y_test, _ = encode_target(frame.loc[test_index, target], spec["task"], classes)
    return ExportData(spec=spec, X_train=frame.loc[train_index, features], y_train=y_train,
                      X_test=frame.loc[test_index, features], y_test=y_test,
                      task=spec["task"], classes=classes, strategy=split.get("strategy", "unknown"))


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
    from mlhelpers.modeling import build_pipeline

    pipeline = build_pipeline(data.spec).fit(data.X_train, data.y_train)
    threaded = {key: 1 for key, value in pipeline.get_params().items()
                if key.endswith("n_jobs") and value not in (None, 1)}
    return pipeline.set_params(**threaded) if threaded else pipeline


def evaluate_on_test(pipeline, data: ExportData) -> dict[str, float]:
    """Every metric of the task on the held-out test split, computed once, primary metric first
    (the same metric code as the baseline's cross-validation: ``mlhelpers.evaluate.scores``)."""
    from mlhelpers.evaluate import scores, task_metrics

    metrics = task_metrics(data.task, data.spec["primary_metric"])
    if data.task == "classification":
        return scores(metrics, data.y_test, pipeline.predict_proba(data.X_test), len(data.classes))
    return scores(metrics, data.y_test, pipeline.predict(data.X_test))


def write_metrics(run_dir: str | Path, data: ExportData, pipeline) -> pd.DataFrame:
    """Evaluate ``pipeline`` once on the test split (``evaluate_on_test``) and write
    ``model/metrics.json`` (primary metric, test scores, CV mean and std); return ``metrics_table``."""
    spec = data.spec
    write_json(step_dir(run_dir, "export") / "metrics.json", {
        "primary_metric": spec["primary_metric"], "model": spec["model"], "test": evaluate_on_test(pipeline, data),
        "cv": spec.get("cv", {}), "n_train": len(data.X_train), "n_test": len(data.X_test)})
    return metrics_table(read_artifact(run_dir, "metrics"))


def metrics_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """CV mean ± std next to the test score, one row per metric (primary first)."""
    names = list(dict.fromkeys([metrics["primary_metric"], *metrics["test"], *metrics["cv"]]))
    rows = [{"metric": name,
             "cv_mean": metrics["cv"].get(name, {}).get("mean"),
             "cv_std": metrics["cv"].get(name, {}).get("std"),
             "test": metrics["test"].get(name)} for name in names]
    return pd.DataFrame(rows).set_index("metric")


def infer_input_schema(data: ExportData) -> dict[str, Any]:
    """What a scoring row must look like: columns, dtypes, allowed categories, ranges seen in training.

    Numeric columns record ``min``/``max`` (informational: values outside are scored);
    ``boolean``/``categorical`` columns list every value seen (others are refused);
    ``high_cardinality`` columns accept any value; ``datetime`` columns record the range and
    refuse values that do not parse as a date/time. Missing values are accepted everywhere
    (the pipeline imputes them); a row with every feature missing is refused.
    """
    spec = data.spec
    roles = {name: role for role, names in spec["features"].items() for name in names}
    columns: dict[str, Any] = {}
    for name in data.X_train.columns:
        series = data.X_train[name]
        info: dict[str, Any] = {"role": roles[name], "dtype": str(series.dtype),
                                "missing_seen": bool(series.isna().any())}
        if roles[name] == "numeric" and pd.api.types.is_numeric_dtype(series):
            info |= {"min": _builtin(series.min()), "max": _builtin(series.max())}
        elif roles[name] == "datetime":
            parsed = pd.to_datetime(series.astype("object"), errors="coerce", format="mixed")
            info |= {"min": _iso(parsed.min()), "max": _iso(parsed.max())}
        elif roles[name] in CLOSED_ROLES:
            info["categories"] = sorted((_builtin(v) for v in series.dropna().unique()), key=str)
        else:
            info["n_categories"] = int(series.nunique())
        columns[name] = info
    return {"target": spec["target"], "task": spec["task"], "classes": data.classes,
            "model": spec["model"], "columns": columns}


def _iso(value: Any) -> str | None:
    return None if pd.isna(value) else value.isoformat()


def _builtin(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def write_input_schema(run_dir: str | Path, data: ExportData) -> pd.DataFrame:
    """Write ``model/input_schema.json`` (``infer_input_schema``); return it as a table, one row per column."""
    schema = infer_input_schema(data)
    write_json(step_dir(run_dir, "export") / "input_schema.json", schema)
    rows = []
    for name, info in schema["columns"].items():
        allowed = info.get("categories")
        rows.append({"column": name, "role": info["role"], "dtype": info["dtype"],
                     "missing_seen": info["missing_seen"], "min": info.get("min"), "max": info.get("max"),
                     "allowed": None if allowed is None else ", ".join(map(str, allowed[:12]))
                     + (" ..." if len(allowed) > 12 else "")})
    return pd.DataFrame(rows).set_index("column")


def save_formats(pipeline, data: ExportData, model_dir: str | Path) -> pd.DataFrame:
    """Save the model in every format that works and prove each file's parity on the test split.

    ``model.skops`` always (the trusted format, reloaded with the explicit type allowlist);
    ``model.onnx`` when the pipeline converts (``mlhelpers.persistence.to_onnx``), else the row
    says why and any ``model.onnx`` left by an earlier run is removed. Every saved file is
    reloaded and compared with the in-memory pipeline; a broken bound raises ``ParityError``
    (after the table is built, naming the format), so nothing ships silently. Returns one row per
    format: file, size, status, precision, parity figures and a note.
    """
    from mlhelpers import persistence
    from mlhelpers.parity import assert_parity, check_parity

    model_dir = Path(model_dir)
    skops_path = persistence.save_skops(pipeline, model_dir / "model.skops")
    parities = [check_parity(pipeline, persistence.load_skops(skops_path), data.X_test,
                             data.task, name="skops")]
    rows = [_format_row("skops", skops_path, parities[0], "exact copy of the fitted pipeline",
                        "trusted format: loaded with an explicit allowlist of types")]
    onnx_path = model_dir / "model.onnx"
    converted = persistence.to_onnx(pipeline, data.X_test)
    if converted.model is None:
        onnx_path.unlink(missing_ok=True)  # never ship a stale graph from an earlier run
        rows.append({"format": "onnx", "file": None, "status": "not exported", "note": converted.reason})
    else:
        persistence.save_onnx(converted.model, onnx_path)
        parities.append(check_parity(pipeline, persistence.OnnxPredictor(onnx_path), data.X_test,
                                     data.task, name="onnx"))
        precision = "double" if converted.double_precision else "float32 where double is unavailable (XGBoost trees)"
        rows.append(_format_row("onnx", onnx_path, parities[-1], precision, "portable, fast single-row serving"))
    table = pd.DataFrame(rows).set_index("format")
    for parity in parities:
        assert_parity(parity)
    return table


def measure_formats(pipeline, data: ExportData, formats: pd.DataFrame, model_dir: str | Path) -> pd.DataFrame:
    """Serving cost of every saved format next to a joblib pickle of the same pipeline, measured in
    the same run (``mlhelpers.serving.serving_report`` on the test split; writes
    ``model/serving_report.json``). Raises ``ParityError`` if a measured format breaks parity."""
    from mlhelpers.parity import ParityError
    from mlhelpers.serving import serving_report

    model_dir = Path(model_dir)
    onnx_ok = "onnx" in formats.index and formats.loc["onnx", "status"] == "ok"
    report = serving_report(pipeline, data.X_test, model_dir, skops_path=model_dir / "model.skops",
                            onnx_path=model_dir / "model.onnx" if onnx_ok else None)
    broken = report.loc[~report["parity_ok"].astype(bool), "name"].tolist()
    if broken:
        raise ParityError(f"formats {broken} break parity with the in-memory model on the test split "
                          "(see serving_report.json); they must not ship.")
    return report


def serving_summary(serving: pd.DataFrame) -> pd.DataFrame:
    """The recommended serving format against the pickle reference, and whether it meets the goal
    (at least 10x faster per single row, not larger, parity holding)."""
    reference = serving[serving["reference"].astype(bool)].iloc[0]
    picked = serving[serving["recommended"].astype(bool)]
    if picked.empty:
        return pd.DataFrame({"value": ["none: no format holds parity"]}, index=["recommended"])
    best = picked.iloc[0]
    speedup = reference["single_row_p50_ms"] / best["single_row_p50_ms"]
    rows = {"recommended": best["name"],
            "single-row p50 (ms)": f"{best['single_row_p50_ms']:.3f} vs pickle {reference['single_row_p50_ms']:.3f}",
            "single-row speedup vs pickle": f"{speedup:.1f}x",
            "size (bytes)": f"{int(best['size_bytes'])} vs pickle {int(reference['size_bytes'])}",
            "batch rows/s": f"{best['batch_rows_per_second']:.0f} vs pickle {reference['batch_rows_per_second']:.0f}",
            "goal (>= 10x faster, not larger, parity)": "met" if speedup >= 10 and best["size_bytes"] <= reference["size_bytes"]
            and bool(best["parity_ok"]) else "not met"}
    return pd.DataFrame({"value": list(rows.values())}, index=list(rows))


def _format_row(name: str, path: Path, parity, precision: str, note: str) -> dict[str, Any]:
    return {"format": name, "file": path.name, "size_bytes": path.stat().st_size,
            "status": "ok" if parity.ok else "PARITY BROKEN", "precision": precision,
            "max_abs_diff": parity.max_abs_diff, "max_rel_diff": parity.max_rel_diff,
            "label_mismatches": parity.label_mismatches, "tolerance": parity.tolerance,
            "parity_rows": parity.n_rows, "note": note}


def write_model_card(run_dir: str | Path, data: ExportData, formats: pd.DataFrame | None = None,
                     serving: pd.DataFrame | None = None, trained_at: str | None = None) -> Path:
    """Write ``model/model_card.md`` and return its path.

    Sections: data, intended use, metrics (CV mean ± std next to the test score, from
    ``metrics.json``), limits (ranges from ``input_schema.json``), leakage notes from the explore
    step's ``eda.json`` (when present), exported formats with parity (``save_formats``; a format
    that could not be exported appears with the reason), serving measurements
    (``serving.serving_report``), training date and versions.
    """
    from datetime import datetime, timezone

    from mlhelpers.artifacts import MissingArtifactError

    spec = data.spec
    metrics, schema = read_artifact(run_dir, "metrics"), read_artifact(run_dir, "input_schema")
    try:
        eda = read_artifact(run_dir, "eda")
    except MissingArtifactError:
        eda = None
    trained_at = trained_at or datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# Model card: {spec['model']} predicting `{spec['target']}`", "",
             f"Trained {trained_at} by the export step (`notebooks/03_export.ipynb`), seed {spec['seed']}. "
             f"Why this model: {spec.get('selection_reason', 'chosen by the baseline step')}.", ""]
    lines += _card_data(spec, schema, data, eda)
    lines += _card_use(spec, schema)
    lines += _card_metrics(metrics)
    lines += _card_limits(spec, schema, eda)
    if formats is not None and len(formats):
        lines += ["## Exported formats", "",
                  "Each file was reloaded and compared with the in-memory model on the test split "
                  "(bounds: probabilities 1e-5 absolute, regression 1e-6 relative, labels exact).", "",
                  _markdown_table(formats.reset_index()), ""]
    if serving is not None and len(serving):
        shown = [c for c in ("name", "size_bytes", "load_seconds", "peak_memory_mb", "single_row_p50_ms",
                             "single_row_p99_ms", "batch_rows_per_second", "single_row_speedup", "parity_ok",
                             "recommended") if c in serving.columns]
        lines += ["## Serving", "",
                  "Measured in fresh processes next to a joblib pickle of the same pipeline (the reference).", "",
                  _markdown_table(serving[shown]), ""]
    from mlhelpers.pipeline import package_versions

    lines += ["## Versions", "", *(f"- {name}: {version}" for name, version in package_versions().items()), ""]
    path = step_dir(run_dir, "export") / "model_card.md"
    with atomic_path(path) as temp:
        temp.write_text("\n".join(lines), encoding="utf-8")
    return path


def _card_data(spec: dict[str, Any], schema: dict[str, Any], data: ExportData,
               eda: dict[str, Any] | None) -> list[str]:
    lines = ["## Data", "",
             f"- Task: {spec['task']}" + (f", classes {', '.join(map(str, data.classes))}" if data.classes else ""),
             f"- Training rows: {len(data.X_train)}; held-out test rows: {len(data.X_test)} "
             f"(split strategy: {data.strategy}); the final model is refit on the training rows only.",
             f"- Features ({len(schema['columns'])}): "
             + "; ".join(f"{role}: {', '.join(names)}" for role, names in spec["features"].items() if names)]
    if eda is not None:
        dropped = {name: info["reason"] for name, info in eda.get("columns", {}).items()
                   if info.get("drop") and name != spec["target"]}
        lines.append(f"- Source table: {eda.get('n_rows', '?')} rows with a known target, "
                     f"{eda.get('n_rows_missing_target', 0)} rows without one dropped.")
        if dropped:
            lines.append("- Columns not used: " + "; ".join(f"`{n}` ({r})" for n, r in dropped.items()))
    return lines + [""]


def _card_use(spec: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    output = ("the predicted class label (the most probable class) and one probability per class"
              if spec["task"] == "classification" else f"a predicted value of `{spec['target']}`")
    threshold = spec.get("decision_threshold")
    if threshold:
        output += (f"; the baseline suggests predicting `{threshold['positive_class']}` when its probability is at "
                   f"least {threshold['threshold']:.4f} ({threshold['rule']}): apply it to "
                   f"`proba_{threshold['positive_class']}` when both errors cost alike")
    return ["## Intended use", "",
            f"Scoring tabular rows shaped like the training data (see `input_schema.json`); it returns {output}. "
            "Batch scoring (`mlh predict`) and the MLflow model refuse rows that break the schema "
            "(missing columns, wrong types, unseen categories, empty rows) instead of guessing. "
            "It is a baseline for decision support, not for automated decisions about people "
            "without review.", ""]


def _card_metrics(metrics: dict[str, Any]) -> list[str]:
    table = metrics_table(metrics).reset_index()
    return ["## Metrics", "",
            f"Primary metric: **{metrics['primary_metric']}**. CV: mean ± std over the baseline's folds "
            "(training rows only); test: one evaluation on the held-out split.", "",
            _markdown_table(table), ""]


def _card_limits(spec: dict[str, Any], schema: dict[str, Any], eda: dict[str, Any] | None) -> list[str]:
    numeric = [f"`{n}` {info['min']}..{info['max']}" for n, info in schema["columns"].items()
               if "min" in info]
    lines = ["## Limits", "",
             "- Trained on one table at one point in time; drift in the population or in how columns are "
             "recorded degrades it silently. Monitor the input ranges and the score distribution.",
             "- Numeric values outside the ranges seen in training are scored, but the model has seen no data there: "
             + ", ".join(numeric) if numeric else "- No numeric features."]
    lines.append("- The test score is one draw; the CV std shows how much it moves between samples.")
    suspects = (eda or {}).get("leakage_suspects") or []
    lines += ["", "## Leakage notes (from explore)", ""]
    if eda is None:
        lines.append("- The explore step's `eda.json` was not available: no leakage review recorded.")
    elif suspects:
        used = set(all_features(spec))
        for name in suspects:
            status = "used by the model: check it is known at prediction time" if name in used else "not used"
            lines.append(f"- `{name}`: flagged as a leakage suspect; {status}.")
    else:
        lines.append("- No leakage suspects were flagged.")
    return lines + [""]


def _markdown_table(frame: pd.DataFrame) -> str:
    def cell(value: Any) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return ""
        if isinstance(value, float):
            return f"{value:.6g}"
        return str(value).replace("|", "\\|").replace("\n", " ")

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])
