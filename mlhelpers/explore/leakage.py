"""Leakage calls a colleague would sign: a column is dropped on evidence in the data, and sent for review on its name.

Evidence that drops a column (``verdict`` "drop"): it predicts the target alone almost perfectly
(a near-deterministic relation), whether it is missing alone separates the classes, it is an
identifier, its name says it is known only after the outcome *and* the data agrees (its single-feature
score is far above every other feature's, or its missingness is tied to one class), it is a coarser
copy of a column dropped for predicting the target (a letter grade next to a dropped sub-grade), or a copy
of the target itself: every class maps to one of its values (a species' genus next to the species code), or,
for a numeric target, its values cut the target into ranges that do not overlap (a storm's category next to
its wind speed).
With several classes, missingness that separates a group of classes rather than one (weights not
recorded for any bird in a table of rodent captures) is sent for review, not dropped.

A name that says "after the outcome" (``refund``, ``collection``, the target's own name ...) with no
such evidence only sends the column to **review** (``verdict`` "review"): it stays in the model and the
explore notebook lists it prominently. Words that qualify history (``previous``, ``num_``,
``last_12m``, ``ever`` ...) weaken a name match: a credit-history count of past collections is known
when a loan is granted. Evidence comes from ``mlhelpers.explore.association`` (single-feature scores,
missingness against the classes) and ``mlhelpers.explore.roles`` (identifiers).
"""

from __future__ import annotations

import re
from typing import Iterable

import numpy as np
import pandas as pd

__all__ = ["leakage_suspects", "coarser_copies", "target_copies", "target_bins"]


LEAK_SCORE = {"roc_auc": 0.98, "roc_auc_ovr": 0.98, "r2": 0.98}  # single-feature score that looks too good
CHANCE = {"roc_auc": 0.5, "roc_auc_ovr": 0.5, "r2": 0.0}         # a useless feature's single-feature score
MISSING_LEAK_AUC = 0.95     # missingness alone separating the classes this well looks recorded after the fact
MISSING_ONE_CLASS = 0.95    # ... when (with several classes) the missing or the present rows are this much one class
# A name match is corroborated by the data when the column's single-feature score is this many times
# further above chance than any other feature's (and at least FAR_ABOVE_SCORE), or when its
# missingness alone separates the classes with ROC AUC NAMED_MISSING_AUC or more.
FAR_ABOVE = 2.0
FAR_ABOVE_SCORE = {"roc_auc": 0.8, "roc_auc_ovr": 0.8, "r2": 0.5}
NAMED_MISSING_AUC = 0.8
COARSE_PURITY = 0.99        # share of rows whose coarse value is the one its fine value maps to
COARSE_MAX_TOP = 0.9        # a coarse column whose most frequent value covers more rows than this says too
                            # little to be a copy (near-constant columns map from anything)
BINS_MAX_VALUES = 50        # a column with more distinct values than this is not read as bins of a numeric target
BINS_RANGE = (0.005, 0.995) # a value's range of the target: these quantiles, so a few mistyped rows do not widen it
BINS_OUTSIDE = 0.01         # share of rows whose target falls strictly inside another value's range that bins may have


_AFTER_OUTCOME = {"outcome", "result", "results", "final", "refund", "refunded", "chargeback",
                  "defaulted", "closed", "closure", "cancelled", "canceled", "cancellation",
                  "churned", "resolution", "resolved", "settled", "settlement", "recovery",
                  "recovered", "collection", "collections", "discharge", "discharged", "died",
                  "death", "deceased", "actual", "post", "after", "paid", "repaid", "writeoff"}
# Words that say a value sums up the past: a match on _AFTER_OUTCOME next to one of them is weak.
_HISTORY = {"previous", "prev", "prior", "past", "last", "ever", "history", "historical", "before", "pre",
            "num", "n", "nb", "number", "count", "counts", "cnt", "times", "lifetime", "since"}
_PERIOD = re.compile(r"^\d+(d|day|days|w|wk|weeks?|m|mo|mos|months?|y|yr|yrs|years?)$")  # 12m, 24m, 2y


def _tokens(name: str) -> set[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name))
    return {t for t in re.split(r"[^a-z0-9]+", spaced.lower()) if t}


def _history_words(tokens: set[str]) -> list[str]:
    return sorted(t for t in tokens if t in _HISTORY or _PERIOD.match(t))


def _lift(score: float, scoring: str) -> float:
    return score - CHANCE.get(scoring, 0.0) if not np.isnan(score) else 0.0


def leakage_suspects(roles: pd.DataFrame, relevance: pd.DataFrame, target: str,
                     keep_columns: Iterable[str] = (), drop_columns: Iterable[str] = (),
                     frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """Columns that may leak the target, each with its evidence and a verdict: "drop" or "review".

    Returns a DataFrame indexed by column with ``kind``, ``evidence``, ``verdict`` and ``drop``
    (True for a "drop" verdict unless the column is in ``keep_columns``; a column for review is never
    dropped). With ``frame`` (the table with a known target), a many-to-one coarsening of a column
    dropped for predicting the target is flagged too (``coarser_copies``).
    """
    keep, skip = set(keep_columns), set(drop_columns) | {target}
    target_tokens = _tokens(target)
    drops: dict[str, list[tuple[str, str]]] = {}
    reviews: dict[str, list[tuple[str, str]]] = {}
    predictive: list[str] = []          # dropped for predicting the target: their coarser copies leak too
    lifts = {}
    for name in relevance.index:
        if name not in skip and roles.loc[name, "role"] != "identifier":
            row = relevance.loc[name]
            lifts[name] = _lift(row["single_feature_score"], row["score"])
    near_deterministic = {name for name in lifts
                          if relevance.loc[name, "single_feature_score"] >= LEAK_SCORE.get(relevance.loc[name, "score"], 1.0)}
    for name in roles.index:
        if name in skip:
            continue
        named, named_evidence = _name_match(name, target, target_tokens)
        if name in relevance.index:
            row = relevance.loc[name]
            score, scoring = row["single_feature_score"], row["score"]
            if name in near_deterministic:
                drops.setdefault(name, []).append(
                    ("predicts the target alone", f"alone scores {scoring} {score:.3f} (3-fold CV, one tree)"))
                predictive.append(name)
            if not np.isnan(row["missing_auc"]) and row["missing_auc"] >= MISSING_LEAK_AUC:
                evidence = f"whether it is missing alone separates the classes (ROC AUC {row['missing_auc']:.3f})"
                spread = _missing_spread(frame, name, target) if frame is not None else ""
                if spread:
                    reviews.setdefault(name, []).append(("missing for a group of classes", f"{evidence}, but {spread}: "
                                                         "check it is recorded before the outcome"))
                else:
                    drops.setdefault(name, []).append(("known only after the outcome?", evidence))
            far = _far_above(name, lifts, near_deterministic, scoring, score)
            if named == "strong" and name not in drops:
                missing_auc = row["missing_auc"]
                if far:
                    drops.setdefault(name, []).append(("known only after the outcome", f"{named_evidence}, and {far}"))
                    predictive.append(name)
                elif not np.isnan(missing_auc) and missing_auc >= NAMED_MISSING_AUC:
                    drops.setdefault(name, []).append(
                        ("known only after the outcome", f"{named_evidence}, and whether it is missing separates "
                                                         f"the classes (ROC AUC {missing_auc:.3f})"))
            elif far and name not in drops:
                reviews.setdefault(name, []).append(
                    ("far ahead of every other feature", f"{far}: check it is known when predicting"))
        if roles.loc[name, "role"] == "identifier":
            drops.setdefault(name, []).append(("identifier", roles.loc[name, "evidence"]))
        if named and name not in drops:
            reviews.setdefault(name, []).append(("name suggests after the outcome", named_evidence))

    def undropped() -> list[str]:  # the columns a copy check may still flag
        return [c for c in roles.index if c not in skip and c not in drops and c in frame.columns
                and roles.loc[c, "role"] not in ("target", "constant")]

    if frame is not None and relevance["score"].isin(["roc_auc", "roc_auc_ovr"]).any():  # classification
        for name, evidence in target_copies(frame, target, undropped()).items():
            drops.setdefault(name, []).append(("copy of the target", evidence))
            reviews.pop(name, None)
    if frame is not None and predictive:
        for name, evidence in coarser_copies(frame, predictive, undropped(), relevance).items():
            drops.setdefault(name, []).append(("coarser copy of a leak", evidence))
            reviews.pop(name, None)
    # a numeric target's bins after the coarser copies, whose evidence names the leak they copy
    if frame is not None and relevance["score"].eq("r2").any():
        for name, evidence in target_bins(frame, target, undropped()).items():
            drops.setdefault(name, []).append(("copy of the target", evidence))
            reviews.pop(name, None)
    rows = [_row(name, items, "drop", keep) for name, items in drops.items()]
    rows += [_row(name, items, "review", keep) for name, items in reviews.items() if name not in drops]
    table = pd.DataFrame(rows, columns=["column", "kind", "evidence", "verdict", "drop"]).set_index("column")
    order = {"drop": 0, "review": 1}
    return table.sort_values("verdict", key=lambda v: v.map(order), kind="stable")


def _row(name: str, items: list[tuple[str, str]], verdict: str, keep: set[str]) -> dict:
    return {"column": name, "kind": "; ".join(dict.fromkeys(k for k, _ in items)),
            "evidence": "; ".join(e for _, e in items), "verdict": verdict,
            "drop": verdict == "drop" and name not in keep}


def _name_match(name: str, target: str, target_tokens: set[str]) -> tuple[str, str]:
    """("strong" | "weak" | "", evidence): whether the name says the value is known only after the outcome."""
    tokens = _tokens(name)
    found = []
    after = sorted(tokens & _AFTER_OUTCOME)
    if after:
        found.append(f"name contains {', '.join(map(repr, after))}")
    if target_tokens and target_tokens <= tokens:
        found.append(f"name contains the target's name {target!r}")
    if not found:
        return "", ""
    history = _history_words(tokens)
    if history:
        return "weak", "; ".join(found) + f", weakened by history words ({', '.join(map(repr, history))}): " \
                                          "likely known before the outcome"
    return "strong", "; ".join(found) + ", with no evidence in the data"


def _far_above(name: str, lifts: dict[str, float], near_deterministic: set[str], scoring: str, score: float) -> str:
    """Evidence that ``name``'s single-feature score is far above every other feature's ('' if not)."""
    if name not in lifts or name in near_deterministic or np.isnan(score) or score < FAR_ABOVE_SCORE.get(scoring, np.inf):
        return ""
    others = {other: lift for other, lift in lifts.items() if other != name and other not in near_deterministic}
    runner_up = max(others, key=others.get) if others else None
    best_other = max(others[runner_up], 0.0) if runner_up else 0.0
    if lifts[name] < FAR_ABOVE * best_other:
        return ""
    next_text = f"the next best, {runner_up!r}, scores {best_other + CHANCE.get(scoring, 0.0):.3f}" if runner_up else "no other feature"
    return f"alone it scores {scoring} {score:.3f}, far above the rest ({next_text})"


def _missing_spread(frame: pd.DataFrame, name: str, target: str) -> str:
    """With more than two classes: how the rows where ``name`` is missing spread over the classes, when neither
    they nor the rows where it is present are ``MISSING_ONE_CLASS`` one class ('' otherwise: tied to one class)."""
    y = frame[target].astype(object)
    if y.nunique() <= 2:
        return ""
    missing = frame[name].isna().to_numpy()
    shares = [y[side].value_counts(normalize=True) for side in (missing, ~missing) if side.any()]
    if any(share.iloc[0] >= MISSING_ONE_CLASS for share in shares):
        return ""
    top = shares[0]
    return (f"its {int(missing.sum()):,} missing rows spread over {len(top)} classes (the largest, "
            f"{top.index[0]!r}, holds {top.iloc[0]:.0%})")


def _purity(fine: np.ndarray, coarse: np.ndarray) -> float:
    """Share of rows whose ``coarse`` code is the most frequent one among the rows with their ``fine`` code: 1.0
    when ``coarse`` is a function of ``fine``."""
    pairs = pd.Series(1, index=pd.MultiIndex.from_arrays([fine, coarse])).groupby(level=[0, 1]).size()
    return float(pairs.groupby(level=0).max().sum() / len(fine))


def target_copies(frame: pd.DataFrame, target: str, candidates: Iterable[str]) -> dict[str, str]:
    """Columns among ``candidates`` that the class determines (each class maps to one of the column's values for
    at least ``COARSE_PURITY`` of the rows): the target written another way or coarsened (a genus next to the
    species code), recorded with the label. The column must vary (its most frequent value in at most
    ``COARSE_MAX_TOP`` of the rows) and the classes repeat, as for ``coarser_copies``. Exact, on every row."""
    found: dict[str, str] = {}
    n = len(frame)
    classes = pd.factorize(frame[target].astype(object))[0]
    n_classes = int(classes.max()) + 1 if n else 0
    if n == 0 or n_classes < 2 or n_classes > n / 2:
        return found
    for name in candidates:
        values = pd.factorize(frame[name].astype(object), use_na_sentinel=False)[0]
        n_values = int(values.max()) + 1
        if n_values < 2 or np.bincount(values).max() > COARSE_MAX_TOP * n:
            continue
        consistent = _purity(classes, values)
        if consistent >= COARSE_PURITY:
            found[name] = (f"each of the target's {n_classes} classes maps to one of {n_values} values of {name!r} "
                           f"({consistent:.1%} of rows): a copy or coarsening of the target, recorded with the label")
    return found


def coarser_copies(frame: pd.DataFrame, leaks: Iterable[str], candidates: Iterable[str],
                   relevance: pd.DataFrame | None = None) -> dict[str, str]:
    """Columns among ``candidates`` that are many-to-one coarsenings of a column in ``leaks``, with evidence.

    A candidate is a coarsening of a leak when each of the leak's values maps to one candidate value
    (for at least ``COARSE_PURITY`` of the rows, missing values as a value of their own) and the
    candidate has fewer distinct values; the leak's values must repeat (at most one distinct value
    per two rows), or any column would be a function of a near-unique one, and the candidate must
    vary (its most frequent value in at most ``COARSE_MAX_TOP`` of the rows), or any near-constant
    column would be a function of anything. Exact, on every row.
    """
    found: dict[str, str] = {}
    n = len(frame)
    for leak in leaks:
        fine = pd.factorize(frame[leak].astype(object), use_na_sentinel=False)[0]
        n_fine = int(fine.max()) + 1 if n else 0
        if n == 0 or n_fine > n / 2:
            continue
        for name in candidates:
            if name == leak or name in found:
                continue
            coarse = pd.factorize(frame[name].astype(object), use_na_sentinel=False)[0]
            n_coarse = int(coarse.max()) + 1
            if not 2 <= n_coarse < n_fine or np.bincount(coarse).max() > COARSE_MAX_TOP * n:
                continue
            consistent = _purity(fine, coarse)
            if consistent >= COARSE_PURITY:
                evidence = (f"a coarser copy of {leak!r}, dropped for predicting the target: each of its {n_fine} values "
                            f"maps to one of {n_coarse} values of {name!r} ({consistent:.1%} of rows)")
                if relevance is not None and name in relevance.index:
                    evidence += f"; alone it scores {relevance.loc[name, 'score']} {relevance.loc[name, 'single_feature_score']:.3f}"
                found[name] = evidence
    return found


def target_bins(frame: pd.DataFrame, target: str, candidates: Iterable[str]) -> dict[str, str]:
    """Columns among ``candidates`` whose values (missing as a value of its own) cut a numeric target into ranges
    that do not overlap: the target binned, recorded with it (a hurricane category next to the wind speed). A
    value's range spans the ``BINS_RANGE`` quantiles of the target on its rows; at most ``BINS_OUTSIDE`` of the rows
    may fall strictly inside another value's range (bins of a rounded target share their boundary values). The column has 2 to ``BINS_MAX_VALUES`` values, none of them on more than
    ``COARSE_MAX_TOP`` of the rows. Exact, on every row with a known target."""
    found: dict[str, str] = {}
    y = pd.to_numeric(frame[target], errors="coerce")
    known = y.notna().to_numpy()
    if known.sum() < 20:
        return found
    y = y[known].astype(float)
    for name in candidates:
        column = frame.loc[known, name]
        if column.nunique(dropna=False) > BINS_MAX_VALUES:
            continue
        codes, labels = pd.factorize(column.astype(object), use_na_sentinel=False)
        if len(labels) < 2 or np.bincount(codes).max() > COARSE_MAX_TOP * len(codes):
            continue
        ranges = y.groupby(codes).quantile(list(BINS_RANGE)).unstack()
        low, high = ranges[BINS_RANGE[0]].to_numpy(), ranges[BINS_RANGE[1]].to_numpy()
        values = y.to_numpy()
        inside_other = np.zeros(len(values), dtype=bool)
        for code in range(len(labels)):
            other = codes != code
            inside_other |= other & (values > low[code]) & (values < high[code])  # ranges may touch at a tie
        outside = inside_other.mean()
        if outside <= BINS_OUTSIDE:
            order = np.argsort(low)
            shown = ", ".join(f"{_label(labels[c])}: {low[c]:g} to {high[c]:g}" for c in order[:6])
            more = f", ... ({len(labels)} values)" if len(labels) > 6 else ""
            found[name] = (f"its values cut {target!r} into ranges that do not overlap ({shown}{more}; {outside:.1%} of "
                           f"rows in another value's range): the target binned, recorded with it")
    return found


def _label(value) -> str:
    return "missing" if pd.isna(value) else repr(value.item() if hasattr(value, "item") else value)
