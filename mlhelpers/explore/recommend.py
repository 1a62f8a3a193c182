"""The explore step's conclusion: ``recommend`` turns column roles, the target, associations,
leakage suspects and duplicate rows into the ``explore/eda.json`` payload (docs/artifacts.md);
``write_eda`` writes it, ``summarize`` and ``columns_table`` show it.

Each piece comes from its own module (``roles``, ``targets``, ``association``, ``leakage``, ``duplicates``);
``recommend`` computes every piece it is not given and decides, column by column, what the baseline uses and why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from mlhelpers.core.artifacts import artifact_path, write_json
from mlhelpers.core.models import ZOO
from mlhelpers.explore import EdaError
from mlhelpers.explore.association import SAMPLE_ROWS, associations, redundant_pairs
from mlhelpers.explore.duplicates import DuplicateRows, duplicate_rows
from mlhelpers.explore.leakage import leakage_suspects
from mlhelpers.explore.roles import column_roles, text_statistics
from mlhelpers.explore.targets import TargetSummary, prepare_target

__all__ = ["recommend", "write_eda", "columns_table", "summarize"]


# --------------------------------------------------------------------------- recommendation

def _column_decision(name: str, info: pd.Series, relevance: pd.DataFrame, leakage: pd.DataFrame,
                     keep: set[str], drop: set[str]) -> tuple[str, bool, str]:
    role, dropped, reason = _role_decision(name, info, relevance, leakage, keep, drop)
    if not dropped and name not in keep and name in leakage.index and leakage.loc[name, "verdict"] == "review":
        reason += f"; kept, FOR REVIEW: {leakage.loc[name, 'evidence']}"
    return role, dropped, reason


def _role_decision(name: str, info: pd.Series, relevance: pd.DataFrame, leakage: pd.DataFrame,
                   keep: set[str], drop: set[str]) -> tuple[str, bool, str]:
    role, base, evidence = info["role"], info["base_role"], info["evidence"]
    if role == "target":
        return "target", True, "the target"
    if name in drop:
        return role, True, f"listed in drop_columns ({evidence})"
    if name in leakage.index and leakage.loc[name, "drop"]:
        return role, True, f"leakage suspect: {leakage.loc[name, 'evidence']}"
    if role == "constant":
        return role, True, evidence
    if name in keep and role in ("identifier", "mostly_missing", "duplicate", "near_constant"):
        return base, False, f"kept (keep_columns) although {role.replace('_', ' ')}: {evidence}"
    if name in keep and name in leakage.index:
        what = "a leakage suspect" if leakage.loc[name, "verdict"] == "drop" else "its name suggests leakage"
        return role, False, f"kept (keep_columns) although {what}: {leakage.loc[name, 'evidence']}"
    if role in ("identifier", "mostly_missing", "duplicate"):
        return role, True, evidence
    if role == "near_constant":
        score = relevance["single_feature_score"].get(name, np.nan)
        useful = not np.isnan(score) and score >= (0.55 if relevance.loc[name, "score"] != "r2" else 0.01)
        if useful:
            return base, False, f"{evidence}; kept: alone it scores {score:.2f}"
        return role, True, f"{evidence}; alone it scores {score:.2f}, no signal"
    if role == "text":
        return role, False, f"{evidence}; the baseline encodes it as text (character n-grams)"
    if role == "datetime":
        return role, False, f"{evidence}; the baseline can derive calendar features"
    return role, False, evidence


def _models(task: str, n_rows: int) -> tuple[list[str], dict[str, str]]:
    reasons = {"dummy": "the floor any model must beat",
               "linear": "fast, interpretable, strong when effects are additive",
               "random_forest": "robust non-linear baseline with little tuning",
               "hist_gradient_boosting": "usually the strongest on tables, handles missing values natively",
               "xgboost": "gradient boosting with a Dask interface for data beyond one machine"}
    models = list(ZOO)
    if n_rows > 200_000:
        models.remove("random_forest")
        reasons["random_forest"] = f"left out: slow on {n_rows:,} rows, boosting covers it"
    return models, reasons


def recommend(frame: pd.DataFrame, *, target: str, task: str = "auto", primary_metric: str = "auto",
              drop_columns: Iterable[str] = (), keep_columns: Iterable[str] = (), seed: int = 42,
              sample_rows: int = SAMPLE_ROWS, target_info: TargetSummary | None = None,
              roles: pd.DataFrame | None = None, relevance: pd.DataFrame | None = None,
              leakage: pd.DataFrame | None = None, redundancy: pd.DataFrame | None = None,
              conversions: dict[str, dict[str, Any]] | None = None,
              duplicates: DuplicateRows | None = None) -> dict[str, Any]:
    """The ``explore/eda.json`` payload for ``frame``: task, metric, column roles and drops with
    reasons, leakage suspects (dropped) and columns for review (kept), duplicate rows and the model
    families worth trying.

    Computes every piece it is not given. When passing ``target_info``, pass the frame
    ``prepare_target`` returned (rows with a known target). ``conversions`` are the load report's
    (``mlhelpers.core.tables.LoadReport.conversions``): recorded so the later steps read the data the same way.
    """
    drop, keep = set(drop_columns), set(keep_columns)
    for key, names in (("drop_columns", drop), ("keep_columns", keep)):
        missing = sorted(names - set(map(str, frame.columns)))
        if missing:
            raise EdaError(f"{key} names {missing}, not columns of the table; columns: {', '.join(map(str, frame.columns))}.")
    if target_info is None:
        frame, target_info = prepare_target(frame, target, task=task, primary_metric=primary_metric)
    if roles is None:
        roles = column_roles(frame, target=target)
    if relevance is None:
        relevance = associations(frame, target_info, roles, seed=seed, sample_rows=sample_rows)
    if leakage is None:
        leakage = leakage_suspects(roles, relevance, target, keep_columns=keep, drop_columns=drop, frame=frame)
    if redundancy is None:
        redundancy = redundant_pairs(frame, roles, seed=seed, sample_rows=sample_rows)
    if duplicates is None:
        duplicates = duplicate_rows(frame)
    columns = {}
    for name, info in roles.iterrows():
        role, dropped, reason = _column_decision(name, info, relevance, leakage, keep, drop)
        columns[name] = {"role": role, "drop": bool(dropped), "reason": reason, "dtype": info["dtype"],
                         "missing_pct": float(info["missing_pct"]), "n_unique": int(info["n_unique"])}
        if info["base_role"] == "text":  # the numbers that decided it (mlhelpers.explore.roles.is_free_text)
            columns[name]["text"] = text_statistics(frame[name].value_counts(dropna=True, sort=True))
    models, model_reasons = _models(target_info.task, target_info.n_rows)
    ranking = relevance.reset_index()[["column", "mutual_info", "association", "measure", "single_feature_score", "score"]]
    return {
        "target": target, "task": target_info.task, "task_reason": target_info.task_reason,
        "primary_metric": target_info.primary_metric, "metric_reason": target_info.metric_reason,
        "n_rows": target_info.n_rows, "n_rows_missing_target": target_info.n_rows_missing_target,
        "n_cols": int(frame.shape[1]), "classes": target_info.classes,
        "class_counts": ({str(k): int(v) for k, v in target_info.distribution["count"].items()}
                         if target_info.task == "classification" else None),
        "rare_classes": target_info.rare_classes,  # merged or refused before anything else saw the target
        "columns": columns,
        "leakage_suspects": [str(c) for c in leakage.index[leakage["verdict"] == "drop"]],
        "review": [str(c) for c, r in leakage.iterrows() if r["verdict"] == "review" and c not in keep],
        "leakage": {str(c): {"kind": r["kind"], "evidence": r["evidence"], "verdict": r["verdict"],
                             "drop": bool(r["drop"])} for c, r in leakage.iterrows()},
        "duplicates": _duplicates_entry(frame, duplicates, columns, target),
        "redundant_pairs": redundancy.to_dict(orient="records"),
        "feature_ranking": ranking.replace({np.nan: None}).to_dict(orient="records"),
        "recommended_models": models, "model_reasons": model_reasons, "seed": seed,
        "conversions": conversions or {},
    }


def _duplicates_entry(frame: pd.DataFrame, duplicates: DuplicateRows, columns: dict[str, Any],
                      target: str) -> dict[str, Any]:
    """Whole-row duplicates, and duplicates over the kept features and the target: what the baseline
    groups on (copies that differ only in a dropped column, such as a fresh row number, count there)."""
    used = duplicate_rows(frame[[name for name, info in columns.items() if not info["drop"]] + [target]], examples=0)
    return duplicates.to_dict() | {"features_and_target": {
        "duplicate_rows": used.duplicate_rows, "copy_rows": used.copy_rows, "copy_share": round(used.copy_share, 6),
        "grouped_split": used.grouped_split}}


def write_eda(run_dir: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` as ``explore/eda.json`` in ``run_dir`` (atomic, with schema_version); return its path."""
    return write_json(artifact_path(run_dir, "eda"), payload)


def columns_table(payload: dict[str, Any]) -> pd.DataFrame:
    """The payload's column decisions as a table: dropped columns first, then features by role."""
    table = pd.DataFrame(payload["columns"]).T[["role", "drop", "reason", "missing_pct", "n_unique"]]
    table.index.name = "column"
    return table.sort_values(["drop", "role"], ascending=[False, True], kind="stable")


def summarize(payload: dict[str, Any]):
    """A short Markdown report of the recommendation (an ``IPython.display.Markdown``)."""
    from IPython.display import Markdown

    columns = payload["columns"]
    features = [c for c, info in columns.items() if not info["drop"]]
    dropped = {c: info["reason"] for c, info in columns.items() if info["drop"] and info["role"] != "target"}
    leaks = [c for c in payload["leakage_suspects"] if payload["leakage"][c]["drop"]]
    kept = [c for c in payload["leakage_suspects"] if not payload["leakage"][c]["drop"]]
    review = payload.get("review", [])
    top = [r["column"] for r in payload["feature_ranking"][:3] if r["column"] in features]
    duplicates = payload.get("duplicates")
    lines = [
        f"**{payload['n_rows']:,} rows** with a known `{payload['target']}`"
        f" ({payload['n_rows_missing_target']:,} dropped for a missing target), {payload['n_cols']} columns.",
        f"- **Task:** {payload['task']} ({payload['task_reason']}).",
        f"- **Primary metric:** `{payload['primary_metric']}` ({payload['metric_reason']}).",
        f"- **Features used:** {len(features)}" + (f"; most informative: {', '.join(f'`{c}`' for c in top)}." if top else "."),
        f"- **Dropped:** {len(dropped)} column(s)" + ("".join(f"\n  - `{c}`: {r}" for c, r in dropped.items()) or "."),
        "- **Leakage suspects dropped:** " + (", ".join(f"`{c}`" for c in leaks) if leaks else "none")
        + (f"; kept because you vouched for them: {', '.join(f'`{c}`' for c in kept)}" if kept else "") + ".",
        "- **⚠️ For review (kept in the model):** " + (", ".join(f"`{c}`" for c in review) + ": their names suggest "
        "values known only after the outcome, the data does not show it. Drop any that is not known when "
        "predicting with `drop_columns`; `keep_columns` vouches for a dropped one." if review else "none."),
        _duplicates_line(duplicates) if duplicates else "",
        f"- **Next step** (02_baseline) cross-validates: {', '.join(payload['recommended_models'])}.",
    ]
    return Markdown("\n".join(line for line in lines if line))


def _duplicates_line(duplicates: dict[str, Any]) -> str:
    used = duplicates["features_and_target"]
    line = (f"- **Duplicate rows:** {duplicates['duplicate_rows']:,} rows ({duplicates['share']:.2%}) repeat an earlier "
            f"row; over the kept features and the target, {used['copy_rows']:,} ({used['copy_share']:.2%}) are copies "
            "(values too rare to coincide)")
    if used["grouped_split"]:
        return line + (f", above {duplicates['threshold']:.0%}: the baseline keeps each group of copies on one side "
                       "of every split (`group_duplicates: false` turns that off).")
    return line + "."
