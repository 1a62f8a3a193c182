"""Rare classes: which target classes have too few rows for the test split and every CV fold, and the policy for them.

A class with fewer rows than ``min_class_rows(cv_folds, test_size)`` cannot have a row in the held-out test
split *and* in every cross-validation fold: its score is a guess, and a split that lacks it silently scores
the model on fewer classes (issue 11: CV balanced accuracy 0.745, one test score 0.995). ``plan_rare_classes``
states what happens to such classes (``merge`` them into one class, or ``refuse`` naming them) and is applied
by ``merge_rare_classes`` the same way in explore, baseline and export (the plan is recorded in ``eda.json`` and
``model_spec.json``), so the served model's classes are the ones it was trained and tested on.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

__all__ = ["RARE_CLASS_POLICIES", "MAX_CLASSES", "RareClassError", "auto_task", "min_class_rows", "plan_rare_classes",
           "merge_rare_classes", "describe_plan"]

RARE_CLASS_POLICIES = ("merge", "refuse")
MERGED_NAME = "other"
MIN_FIT_ROWS = 2        # rows of a class every CV training fold needs (the baseline checks its folds for it)
SHOWN_CLASSES = 10      # a message names this many rare classes, then counts the rest
MANY_CLASSES = 50       # beyond this many classes a target with rare ones is more likely a number than a label
MAX_CLASSES = 20        # a numeric target with at most this many integer values is a class label


def auto_task(y: pd.Series) -> tuple[str, str]:
    """The task ``task: auto`` infers from the known target values ``y``, and why. One rule for ``mlh validate``
    and the explore step: validate said ok to Bundesliga's home goals (0-12, read as 13 classes) and explore
    then refused their rare classes."""
    import numpy as np

    n_unique = y.nunique()
    if not _is_number(y):
        kind = "true/false" if pd.api.types.is_bool_dtype(y.dtype) else "string"
        return "classification", f"target has {n_unique} distinct {kind} values"
    if n_unique == 2:
        return "classification", "target has 2 distinct numeric values"
    if n_unique <= MAX_CLASSES and bool(np.all(np.mod(y.dropna().to_numpy(dtype=float), 1) == 0)):
        return "classification", f"target has {n_unique} distinct integer values (at most {MAX_CLASSES})"
    return "regression", f"numeric target with {n_unique:,} distinct values"


def _is_number(y: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(y.dtype) and not pd.api.types.is_bool_dtype(y.dtype)


def _named(rare: dict[str, int]) -> str:
    shown = ", ".join(f"{label!r}: {n}" for label, n in list(rare.items())[:SHOWN_CLASSES])
    return shown + (f" and {len(rare) - SHOWN_CLASSES:,} more" if len(rare) > SHOWN_CLASSES else "")


class RareClassError(ValueError):
    """Classes too small for the split: the message names them, their counts and the fix."""


def min_class_rows(cv_folds: int, test_size: float) -> int:
    """The fewest rows a class needs for one row in the stratified test split and one in every CV
    validation fold (so at least ``MIN_FIT_ROWS`` in every CV training fold).

    Counted conservatively: a stratified split gives a class ``floor(n * test_size)`` or one more test rows.
    """
    n = 2
    while True:
        n_test = math.floor(n * test_size)
        n_train = n - math.ceil(n * test_size)
        if n_test >= 1 and n_train >= cv_folds and n_train - math.ceil(n_train / cv_folds) >= MIN_FIT_ROWS:
            return n
        n += 1


def _merged_name(labels: list) -> str:
    taken = {str(label).strip().lower() for label in labels}
    name, i = MERGED_NAME, 1
    while name in taken:  # a class already called "other" (credit's Home has one) keeps its meaning
        name = f"{MERGED_NAME}_rare" + (f"_{i}" if i > 1 else "")
        i += 1
    return name


def _fits(sizes: list[int], need: int, merge: bool) -> bool:
    small = [n for n in sizes if n < need]
    if not merge:
        return not small
    return not small or (sum(small) >= need and len(small) < len(sizes))


def _fewer_folds(sizes: list[int], cv_folds: int, test_size: float, merge: bool) -> str:
    for folds in range(cv_folds - 1, 1, -1):
        if _fits(sizes, min_class_rows(folds, test_size), merge):
            return f"set cv_folds: {folds} (fewer rows per class needed), "
    return ""


def plan_rare_classes(y: pd.Series, *, policy: str = "merge", cv_folds: int = 5, test_size: float = 0.2) -> dict[str, Any]:
    """What happens to ``y``'s classes that are too small for the split (``min_class_rows``).

    Returns the plan as a JSON-ready dict: ``policy``, ``min_rows``, ``rare`` (label -> rows, smallest first),
    ``merged_into`` (the merged class's name, or None when nothing is merged) and ``merged_rows``. Raises
    ``RareClassError`` naming the classes, their counts and the fix when ``policy`` is ``refuse`` and a class
    is rare, or when merging leaves a class that is still too small or fewer than two classes.
    """
    if policy not in RARE_CLASS_POLICIES:
        raise RareClassError(f"rare_classes {policy!r} is unknown; use one of {', '.join(RARE_CLASS_POLICIES)}.")
    counts = y.value_counts(dropna=True)
    counts = counts[counts > 0]
    need = min_class_rows(cv_folds, test_size)
    rare = {label: int(n) for label, n in sorted(counts.items(), key=lambda item: (item[1], str(item[0]))) if n < need}
    plan = {"policy": policy, "min_rows": need, "cv_folds": cv_folds, "test_size": test_size,
            "rare": {str(label): n for label, n in rare.items()}, "merged_into": None, "merged_rows": 0}
    if not rare:
        return plan
    named = _named(plan["rare"])
    if len(counts) > MANY_CLASSES:
        named += f"; with {len(counts):,} classes the target looks continuous: set task: regression"
    why = (f"a class needs at least {need} rows for one in the held-out test split (test_size={test_size}) "
           f"and one in every one of the {cv_folds} cross-validation folds")
    sizes = [int(n) for n in counts]
    # a number read as classes (task auto: few whole numbers) may be an amount: goals, children, rooms
    as_amount = "set task: regression (if the numbers are amounts, not labels), " if _is_number(y) else ""
    if policy == "refuse":
        raise RareClassError(
            f"classes with too few rows ({named}); {why}. Fix: set rare_classes: merge (they become one "
            f"class {_merged_name(list(counts.index))!r}), {as_amount}{_fewer_folds(sizes, cv_folds, test_size, merge=False)}"
            "remove those rows from the data, or collect more rows of them.")
    merged_rows = sum(rare.values())
    kept = len(counts) - len(rare)
    if len(counts) > MANY_CLASSES and merged_rows > int(counts.max()):
        # Merging would make the catch-all class the largest one: the "classes" are values, not labels.
        raise RareClassError(
            f"classes with too few rows ({named}); merged they would make {merged_rows:,} of {int(counts.sum()):,} "
            "rows one class. Fix: set task: regression, or group the values into fewer labels in the data.")
    if not _fits(sizes, need, merge=True):
        merged = (f"Merged they make {merged_rows:,} rows" if len(rare) > 1 else
                  f"It has {merged_rows:,} row{'s' if merged_rows != 1 else ''}")
        # removing the rows of a binary target's only rare class leaves one class: nothing left to predict
        last = ("remove those rows from the data, or collect more rows of them." if kept >= 2 else
                f"collect more rows of them, or point target at another column (without them only "
                f"{_named_kept(counts, rare)} is left).")
        raise RareClassError(
            f"classes with too few rows ({named}); {why}. {merged}, still "
            f"fewer than {need}" + ("" if kept >= 1 else " and no other class is left") + ". Fix: "
            f"{as_amount}{_fewer_folds(sizes, cv_folds, test_size, merge=True)}{last}")
    return plan | {"merged_into": _merged_name(list(counts.index)), "merged_rows": merged_rows}


def _named_kept(counts: pd.Series, rare: dict) -> str:
    kept = [label for label in counts.index if label not in rare]
    return repr(kept[0]) if kept else "no class"


def merge_rare_classes(y: pd.Series, plan: dict[str, Any] | None) -> pd.Series:
    """``y`` with the plan's rare classes replaced by its merged class (unchanged when nothing is merged)."""
    if not plan or not plan.get("merged_into"):
        return y
    # matched on text: the plan went through JSON, where the label 3 and the key "3" are one
    rare = y.astype(str).isin(set(plan["rare"])) & y.notna()
    return y.astype(object).mask(rare, plan["merged_into"])


def describe_plan(plan: dict[str, Any] | None) -> str:
    """One sentence on what the plan does, for notebooks and the model card."""
    if not plan or not plan["rare"]:
        need = plan["min_rows"] if plan else "enough"
        return f"every class has at least {need} rows: no class is merged."
    named = ", ".join(f"{label} ({n} row{'s' if n != 1 else ''})" for label, n in list(plan["rare"].items())[:SHOWN_CLASSES])
    if len(plan["rare"]) > SHOWN_CLASSES:
        named += f" and {len(plan['rare']) - SHOWN_CLASSES:,} more"
    if plan.get("merged_into"):
        return (f"classes with fewer than {plan['min_rows']} rows ({named}) are merged into one class "
                f"{plan['merged_into']!r} ({plan['merged_rows']} rows), which the model predicts and serves "
                f"(rare_classes={plan['policy']!r}).")
    return f"classes with fewer than {plan['min_rows']} rows: {named} (rare_classes={plan['policy']!r})."
