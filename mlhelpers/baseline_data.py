"""Baseline step, its inputs: the features and encoded target from ``eda.json``, and the held-out split.

The notebook ``02_baseline.ipynb`` calls ``load_baseline_data`` -> ``make_split`` (+ ``write_split``), then
hands both to ``mlhelpers.crossval.run_zoo``. Every random choice comes from ``seed``; the test rows are never
fitted on.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlhelpers.evaluate import BaselineError, task_metrics

__all__ = ["BaselineData", "Split", "prepare_baseline_data", "load_baseline_data", "make_split", "write_split"]

MIN_CLASS_ROWS = 5        # a class needs one row in the test split and two in every CV training fold


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------

@dataclass
class BaselineData:
    """The features, the encoded target and the choices the explore step made."""

    X: pd.DataFrame                  # feature columns only, index = row labels of the loaded table
    y: np.ndarray                    # class indices (classification) or values (regression)
    target: str
    task: str
    primary_metric: str
    metrics: list[str]
    classes: list | None
    features: dict[str, list[str]]   # role -> columns, as in model_spec.json
    groups: pd.Series | None = None
    times: pd.Series | None = None
    leakage_suspects: list[str] = field(default_factory=list)
    excluded: dict[str, str] = field(default_factory=dict)  # column -> why it is not a feature

    @property
    def n_classes(self) -> int | None:
        return len(self.classes) if self.classes is not None else None

    def summary(self) -> pd.DataFrame:
        """Rows, task, metric, classes and the feature columns by role."""
        rows = [("rows", len(self.X)), ("task", self.task), ("primary metric", self.primary_metric)]
        if self.classes is not None:
            counts = np.bincount(self.y, minlength=len(self.classes))
            rows.append(("classes", ", ".join(f"{c}: {n} ({n / len(self.y):.0%})" for c, n in zip(self.classes, counts))))
        rows += [(f"features: {role}", ", ".join(cols)) for role, cols in self.features.items() if cols]
        rows += [(f"not used: {col}", why) for col, why in self.excluded.items()]
        return pd.DataFrame(rows, columns=["item", "value"]).set_index("item")

    def __repr__(self) -> str:
        used = sum(len(c) for c in self.features.values())
        return (f"BaselineData({len(self.X)} rows, {used} features, task={self.task!r}, "
                f"primary_metric={self.primary_metric!r}, classes={self.classes!r})")


def prepare_baseline_data(frame: pd.DataFrame, eda: dict[str, Any], *, task: str = "auto",
                          primary_metric: str = "auto", drop_columns: list[str] | None = None,
                          group_column: str | None = None, time_column: str | None = None) -> BaselineData:
    """Features by role (from ``eda.json``), the encoded target and the task/metric to use.

    ``frame`` is the loaded table with missing-target rows already dropped. ``task`` and
    ``primary_metric`` override eda.json's unless "auto". ``drop_columns`` and the group column
    are never features. Raises ``BaselineError`` when eda.json and the data disagree.
    """
    from mlhelpers.modeling import encode_target, feature_columns

    target = eda["target"]
    if target not in frame.columns:
        raise BaselineError(f"eda.json's target {target!r} is not a column of the data; rerun 01_explore "
                            "with the same data_path and target.")
    task = eda["task"] if task == "auto" else task
    metric = eda["primary_metric"] if primary_metric == "auto" else primary_metric
    metrics_ = task_metrics(task, metric)
    missing = sorted(set(eda["columns"]) - set(frame.columns))
    if missing:
        raise BaselineError(f"eda.json describes columns {missing} that the data lacks; the data changed "
                            "since the explore step: rerun 01_explore.")
    features = feature_columns(eda)
    excluded = {name: f"{info['role']}: {info.get('reason', 'dropped by the explore step')}"
                for name, info in eda["columns"].items() if info["drop"] and name != target}
    never = {name: "in drop_columns" for name in (drop_columns or [])}
    if group_column:
        never[group_column] = "group_column (groups decide the split, they are not a feature)"
    for name, why in never.items():
        for role in features:
            if name in features[role]:
                features[role].remove(name)
                excluded[name] = why
    used = [name for cols in features.values() for name in cols]
    if not used:
        raise BaselineError("no feature columns left: eda.json drops every column or drop_columns removes "
                            "the rest; keep at least one column (keep_columns in 01_explore, or fewer drop_columns).")
    y_raw = frame[target]
    if task == "classification":
        y, classes = encode_target(y_raw, task, eda.get("classes") or None)
        _check_class_sizes(y, classes)
    else:
        if not pd.api.types.is_numeric_dtype(y_raw):
            raise BaselineError(f"task is regression but target {target!r} is not numeric ({y_raw.dtype}); "
                                "set task: classification or pick a numeric target.")
        y, classes = encode_target(y_raw, task)
    return BaselineData(
        X=frame[used], y=y, target=target, task=task, primary_metric=metric, metrics=metrics_,
        classes=classes, features=features,
        groups=frame[group_column] if group_column else None,
        times=frame[time_column] if time_column else None,
        leakage_suspects=list(eda.get("leakage_suspects") or []), excluded=excluded)


def _check_class_sizes(y: np.ndarray, classes: list) -> None:
    counts = np.bincount(y, minlength=len(classes))
    if len(classes) < 2 or (counts > 0).sum() < 2:
        raise BaselineError(f"the target has a single class ({classes}); classification needs two or more.")
    small = {str(c): int(n) for c, n in zip(classes, counts) if n < MIN_CLASS_ROWS}
    if small:
        raise BaselineError(
            f"classes {small} have fewer than {MIN_CLASS_ROWS} rows: a stratified split needs one in the "
            "test split and two in every cross-validation training fold. Merge rare classes into a "
            "similar one or an 'other' class, or filter their rows out (data_query), then rerun 01_explore.")


def load_baseline_data(params) -> BaselineData:
    """Read ``explore/eda.json`` and the data file named by ``params``, and prepare them.

    Raises ``MissingArtifactError`` ("run the explore step first") when eda.json is absent.
    """
    from mlhelpers.artifacts import read_artifact
    from mlhelpers.data import drop_missing_target, load_table

    eda = read_artifact(params.run_path, "eda")
    if eda["target"] != params.target:
        raise BaselineError(f"eda.json in {params.run_path} is for target {eda['target']!r}, params say "
                            f"{params.target!r}; rerun 01_explore with this target and run_dir.")
    frame, _ = drop_missing_target(load_table(params.data_file, query=params.data_query), params.target)
    return prepare_baseline_data(frame, eda, task=params.task, primary_metric=params.primary_metric,
                                 drop_columns=list(params.drop_columns), group_column=params.group_column,
                                 time_column=params.time_column)



# ---------------------------------------------------------------------------------------------
# Split
# ---------------------------------------------------------------------------------------------

@dataclass
class Split:
    """The held-out test rows and the cross-validation folds over the training rows."""

    strategy: str                     # stratified | random | group | time
    train_index: list                 # row labels of the loaded table
    test_index: list
    folds: list[tuple[np.ndarray, np.ndarray]]  # positions into train_index: (fit rows, validation rows)
    seed: int

    def summary(self) -> pd.DataFrame:
        """Rows on each side and in each fold."""
        rows = [{"part": "train (cross-validated)", "rows": len(self.train_index)},
                {"part": "test (held out for export)", "rows": len(self.test_index)}]
        rows += [{"part": f"fold {i + 1}: fit / validate", "rows": f"{len(a)} / {len(b)}"}
                 for i, (a, b) in enumerate(self.folds)]
        return pd.DataFrame(rows).set_index("part")

    def __repr__(self) -> str:
        return (f"Split(strategy={self.strategy!r}, train={len(self.train_index)}, "
                f"test={len(self.test_index)}, folds={len(self.folds)})")


def make_split(data: BaselineData, *, test_size: float = 0.2, cv_folds: int = 5, seed: int = 42) -> Split:
    """Hold out ``test_size`` of the rows once, and build ``cv_folds`` folds over the rest.

    Time-ordered when ``data.times`` is set (the test rows and each validation fold come after
    the rows fitted on), grouped when ``data.groups`` is set (a group never straddles two sides),
    stratified for classification, random otherwise.
    """
    from sklearn.model_selection import (GroupKFold, GroupShuffleSplit, KFold, StratifiedGroupKFold,
                                         StratifiedKFold, TimeSeriesSplit, train_test_split)

    n = len(data.X)
    positions = np.arange(n)
    n_test = int(np.ceil(test_size * n))
    if n - n_test < 2 * cv_folds:
        raise BaselineError(f"{n} rows leave {n - n_test} for cross-validation, too few for cv_folds={cv_folds}; "
                            "lower cv_folds or test_size, or use more data.")
    classification = data.task == "classification"
    if data.times is not None:
        strategy = "time"
        times = pd.to_datetime(data.times, errors="coerce", format="mixed") if not pd.api.types.is_numeric_dtype(data.times) else data.times
        if pd.isna(times).any():
            raise BaselineError(f"time_column {data.times.name!r} has {int(pd.isna(times).sum())} missing or "
                                "unparseable values; fix them or drop those rows (data_query).")
        order = np.argsort(np.asarray(times), kind="stable")
        train_pos, test_pos = np.sort(order[: n - n_test]), np.sort(order[n - n_test:])
        train_order = np.argsort(np.asarray(times)[train_pos], kind="stable")
        folds = [(train_order[a], train_order[b]) for a, b in TimeSeriesSplit(n_splits=cv_folds).split(train_order)]
    elif data.groups is not None:
        strategy = "group"
        groups = data.groups.to_numpy()
        n_groups = pd.Series(groups).nunique(dropna=False)
        if n_groups < cv_folds + 1:
            raise BaselineError(f"group_column {data.groups.name!r} has {n_groups} groups; grouped splitting needs "
                                f"at least cv_folds + 1 = {cv_folds + 1}. Lower cv_folds or use another group column.")
        train_pos, test_pos = next(GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
                                   .split(positions, groups=groups))
        splitter = (StratifiedGroupKFold(cv_folds, shuffle=True, random_state=seed) if classification
                    else GroupKFold(cv_folds, shuffle=True, random_state=seed))
        folds = list(splitter.split(train_pos, data.y[train_pos], groups=groups[train_pos]))
    else:
        strategy = "stratified" if classification else "random"
        train_pos, test_pos = train_test_split(positions, test_size=n_test, random_state=seed,
                                               stratify=data.y if classification else None)
        train_pos, test_pos = np.sort(train_pos), np.sort(test_pos)
        splitter = (StratifiedKFold(cv_folds, shuffle=True, random_state=seed) if classification
                    else KFold(cv_folds, shuffle=True, random_state=seed))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "least populated class has fewer members than n_splits"
            folds = list(splitter.split(train_pos, data.y[train_pos]))
    split = Split(strategy=strategy, train_index=data.X.index[train_pos].tolist(),
                  test_index=data.X.index[test_pos].tolist(), folds=folds, seed=seed)
    if classification:
        _check_folds_hold_every_class(data, split)
    return split


def _check_folds_hold_every_class(data: BaselineData, split: Split) -> None:
    y_train = data.y[data.X.index.get_indexer(split.train_index)]
    present = np.unique(y_train)
    for i, (fit_rows, _) in enumerate(split.folds):
        counts = np.bincount(y_train[fit_rows], minlength=len(data.classes))[present]
        if counts.min() < 2:
            rare = [str(data.classes[c]) for c, n in zip(present, counts) if n < 2]
            raise BaselineError(f"cross-validation fold {i + 1} would fit on fewer than 2 rows of classes {rare}; "
                                "merge or filter rare classes, or lower cv_folds / test_size.")


def write_split(split: Split, run_dir: str | Path) -> Path:
    """Write ``baseline/split.json`` (row labels of the test and training rows) and return its path."""
    from mlhelpers.artifacts import artifact_path, write_json

    return write_json(artifact_path(run_dir, "split"), {
        "strategy": split.strategy, "seed": split.seed, "n_folds": len(split.folds),
        "test_index": split.test_index, "train_index": split.train_index})

