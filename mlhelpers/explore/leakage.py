"""Leakage suspects: columns that may leak the target, each with its evidence, dropped unless vouched for.

Evidence comes from ``mlhelpers.explore.association`` (single-feature scores, missingness against the
classes) and ``mlhelpers.explore.roles`` (identifiers), plus column names that say a value is known only
after the outcome.
"""

from __future__ import annotations

import re
from typing import Iterable

import numpy as np
import pandas as pd

__all__ = ["leakage_suspects"]


LEAK_SCORE = {"roc_auc": 0.98, "roc_auc_ovr": 0.98, "r2": 0.98}  # single-feature score that looks too good


MISSING_LEAK_AUC = 0.95     # missingness alone separating the classes this well looks recorded after the fact


_AFTER_OUTCOME = {"outcome", "result", "results", "final", "refund", "refunded", "chargeback",
                  "defaulted", "closed", "closure", "cancelled", "canceled", "cancellation",
                  "churned", "resolution", "resolved", "settled", "settlement", "recovery",
                  "recovered", "collection", "collections", "discharge", "discharged", "died",
                  "death", "deceased", "actual", "post", "after", "paid", "repaid", "writeoff"}


def _tokens(name: str) -> set[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name))
    return {t for t in re.split(r"[^a-z0-9]+", spaced.lower()) if t}


def leakage_suspects(roles: pd.DataFrame, relevance: pd.DataFrame, target: str,
                     keep_columns: Iterable[str] = (), drop_columns: Iterable[str] = ()) -> pd.DataFrame:
    """Columns that may leak the target, each with its evidence; dropped unless in ``keep_columns``.

    Flags features that alone predict the target almost perfectly (single-feature score at or above
    0.98), identifier-like columns, columns whose missingness alone separates the classes, and
    columns whose names say they are known only after the outcome (or contain the target's name).
    Returns a DataFrame indexed by column with ``kind``, ``evidence`` and ``drop``.
    """
    keep, skip = set(keep_columns), set(drop_columns) | {target}
    target_tokens = _tokens(target)
    found: dict[str, list[tuple[str, str]]] = {}
    for name in roles.index:
        if name in skip:
            continue
        if name in relevance.index:
            row = relevance.loc[name]
            score = row["single_feature_score"]
            if not np.isnan(score) and score >= LEAK_SCORE.get(row["score"], 1.0):
                found.setdefault(name, []).append(
                    ("predicts the target alone", f"alone scores {row['score']} {score:.3f} (3-fold CV, one tree)"))
            if not np.isnan(row["missing_auc"]) and row["missing_auc"] >= MISSING_LEAK_AUC:
                found.setdefault(name, []).append(
                    ("known only after the outcome?", f"whether it is missing alone separates the classes "
                                                      f"(ROC AUC {row['missing_auc']:.3f})"))
        if roles.loc[name, "role"] == "identifier":
            found.setdefault(name, []).append(("identifier", roles.loc[name, "evidence"]))
        tokens = _tokens(name)
        after = sorted(tokens & _AFTER_OUTCOME)
        if after:
            found.setdefault(name, []).append(
                ("known only after the outcome?", f"name contains {', '.join(map(repr, after))}"))
        if target_tokens and target_tokens <= tokens:
            found.setdefault(name, []).append(
                ("known only after the outcome?", f"name contains the target's name {target!r}"))
    rows = [{"column": name, "kind": "; ".join(dict.fromkeys(k for k, _ in items)),
             "evidence": "; ".join(e for _, e in items), "drop": name not in keep}
            for name, items in found.items()]
    return pd.DataFrame(rows, columns=["column", "kind", "evidence", "drop"]).set_index("column")
