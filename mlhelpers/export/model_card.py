"""The model card (``model/model_card.md``): data, intended use, metrics, limits, leakage notes, formats,
serving figures and versions, from the run folder's artifacts.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlhelpers.core.artifacts import MissingArtifactError, artifact_path, atomic_path, read_artifact
from mlhelpers.core.classes import describe_plan
from mlhelpers.core.environment import package_versions
from mlhelpers.core.metrics import SUSPICIOUS
from mlhelpers.export.refit import ExportData, all_features, describe_test_score, metrics_table

__all__ = ["write_model_card"]


def write_model_card(run_dir: str | Path, data: ExportData, formats: pd.DataFrame | None = None,
                     serving: pd.DataFrame | None = None, trained_at: str | None = None) -> Path:
    """Write ``model/model_card.md`` and return its path.

    Sections: data (with the rare-class policy applied), intended use, metrics (CV mean ± std next to the
    test score, from ``metrics.json``, flagged when the test score lies outside CV mean ± 3 std), limits
    (ranges from ``input_schema.json``), leakage notes from the explore
    step's ``eda.json`` (when present), exported formats with parity (``save_formats``; a format
    that could not be exported appears with the reason), serving measurements
    (``serving.serving_report``), training date and versions.
    """
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
    lines += _card_limits(spec, schema, eda, metrics)
    if formats is not None and len(formats):
        lines += ["## Exported formats", "",
                  "Each file was reloaded and compared with the in-memory model on the test split and on "
                  "the parity probe's edge rows (missing values, every category and an unseen one, numeric "
                  "extremes; bounds: probabilities 1e-5 absolute, regression 1e-6 relative, labels exact).", "",
                  _markdown_table(formats.reset_index()), ""]
    if serving is not None and len(serving):
        shown = [c for c in ("name", "size_bytes", "load_seconds", "peak_memory_mb", "floor_memory_mb",
                             "model_memory_mb", "single_row_p50_ms",
                             "single_row_p99_ms", "single_row_calls", "batch_rows_per_second", "batch_calls",
                             "single_row_speedup", "parity_ok", "probe_ok",
                             "recommended") if c in serving.columns]
        lines += ["## Serving", "",
                  "Measured in fresh processes next to a joblib pickle of the same pipeline (the reference). "
                  "`floor_memory_mb` is the serving process before any model is loaded (Python, pandas and the "
                  "format's runtime), `model_memory_mb` the peak above it.", "",
                  _markdown_table(serving[shown]), ""]
    lines += ["## Versions", "", *(f"- {name}: {version}" for name, version in package_versions().items()), ""]
    path = artifact_path(run_dir, "model_card")
    with atomic_path(path) as temp:
        temp.write_text("\n".join(lines), encoding="utf-8")
    return path


def _card_data(spec: dict[str, Any], schema: dict[str, Any], data: ExportData,
               eda: dict[str, Any] | None) -> list[str]:
    lines = ["## Data", "",
             f"- Task: {spec['task']}" + (f", classes {', '.join(map(str, data.classes))}" if data.classes else ""),
             *([f"- Rare classes: {describe_plan(spec.get('rare_classes'))}"] if data.classes else []),
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
    table, check = metrics_table(metrics).reset_index(), describe_test_score(metrics)
    return ["## Metrics", "",
            f"Primary metric: **{metrics['primary_metric']}**. CV: mean ± std over the baseline's folds "
            "(training rows only); test: one evaluation on the held-out split.", "",
            _markdown_table(table), "", *([check, ""] if check else [])]


def _card_limits(spec: dict[str, Any], schema: dict[str, Any], eda: dict[str, Any] | None,
                 metrics: dict[str, Any]) -> list[str]:
    numeric = [f"`{n}` {info['min']}..{info['max']}" for n, info in schema["columns"].items()
               if "min" in info]
    lines = ["## Limits", "",
             "- Trained on one table at one point in time; drift in the population or in how columns are "
             "recorded degrades it silently. Monitor the input ranges and the score distribution.",
             "- Numeric values outside the ranges seen in training are scored, but the model has seen no data there: "
             + ", ".join(numeric) if numeric else "- No numeric features."]
    lines.append("- The test score is one draw; the CV std shows how much it moves between samples.")
    suspects = (eda or {}).get("leakage_suspects") or []
    lines += ["", "## Leakage notes", ""]
    # The baseline's warning, repeated where a reader of the model alone looks: survey22's UCLA target is "any of six
    # flags" and the freedom index the mean of two sub-scores; both scored perfectly and the card said no suspects.
    too_good = [f"{metric} {metrics['cv'][metric]['mean']:.4f} (>= {limit})" for metric, limit in SUSPICIOUS.items()
                if metrics.get("cv", {}).get(metric, {}).get("mean") is not None
                and metrics["cv"][metric]["mean"] >= limit]
    if too_good:
        lines.append(f"- ⚠️ **Possible leakage**: cross-validated {', '.join(too_good)}, a score more often leakage "
                     "than skill (the baseline step warned). A feature may be computed from the target or known only "
                     "after it, or the target computed from features (a total of its parts, a flag set from "
                     "others); check the permutation importances in 02_baseline and drop such columns "
                     "(drop_columns).")
    if eda is None:
        lines.append("- The explore step's `eda.json` was not available: no leakage review recorded.")
    elif suspects:
        used = set(all_features(spec))
        for name in suspects:
            status = "used by the model: check it is known at prediction time" if name in used else "not used"
            lines.append(f"- `{name}`: flagged as a leakage suspect; {status}.")
    else:
        lines.append("- The explore step flagged no leakage suspects.")
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
