"""The baseline step's inputs: the features by role and the encoded target, from ``eda.json`` and the data file.

The notebook calls ``load_baseline_data``, then ``mlhelpers.baseline.splits.make_split`` and
``mlhelpers.baseline.crossval.run_zoo``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlhelpers.baseline import BaselineError
from mlhelpers.core.artifacts import read_artifact
from mlhelpers.core.classes import RareClassError, describe_plan, merge_rare_classes, plan_rare_classes
from mlhelpers.core.metrics import task_metrics
from mlhelpers.core.models import encode_target, feature_columns
from mlhelpers.core.provenance import check_data
from mlhelpers.core.tables import drop_missing_target, load_as_explored

__all__ = ["BaselineData", "prepare_baseline_data", "load_baseline_data"]


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
    rare_classes: dict | None = None  # core.classes' plan for classes too small for the split (model_spec.json keeps it)

    @property
    def n_classes(self) -> int | None:
        return len(self.classes) if self.classes is not None else None

    def summary(self) -> pd.DataFrame:
        """Rows, task, metric, classes and the feature columns by role."""
        rows = [("rows", len(self.X)), ("task", self.task), ("primary metric", self.primary_metric)]
        if self.classes is not None:
            counts = np.bincount(self.y, minlength=len(self.classes))
            rows.append(("classes", ", ".join(f"{c}: {n} ({n / len(self.y):.0%})" for c, n in zip(self.classes, counts))))
            rows.append(("rare classes", describe_plan(self.rare_classes)))
        rows += [(f"features: {role}", ", ".join(cols)) for role, cols in self.features.items() if cols]
        rows += [(f"not used: {col}", why) for col, why in self.excluded.items()]
        return pd.DataFrame(rows, columns=["item", "value"]).set_index("item")

    def __repr__(self) -> str:
        used = sum(len(c) for c in self.features.values())
        return (f"BaselineData({len(self.X)} rows, {used} features, task={self.task!r}, "
                f"primary_metric={self.primary_metric!r}, classes={self.classes!r})")


def prepare_baseline_data(frame: pd.DataFrame, eda: dict[str, Any], *, task: str = "auto",
                          primary_metric: str = "auto", drop_columns: list[str] | None = None,
                          group_column: str | None = None, time_column: str | None = None,
                          rare_classes: str = "merge", cv_folds: int = 5, test_size: float = 0.2) -> BaselineData:
    """Features by role (from ``eda.json``), the encoded target and the task/metric to use.

    ``frame`` is the loaded table with missing-target rows already dropped. ``task`` and
    ``primary_metric`` override eda.json's unless "auto". ``drop_columns`` and the group column
    are never features. Target classes too small for a test row and a row in each of ``cv_folds``
    folds are merged or refused as ``rare_classes`` says (``mlhelpers.core.classes``), before the split,
    exactly as the explore step did. Raises ``BaselineError`` when eda.json and the data disagree.
    """
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
    y_raw, plan = frame[target], None
    if task == "classification":
        if y_raw.nunique() < 2:
            raise BaselineError(f"the target has a single class ({y_raw.unique().tolist()}); classification needs two or more.")
        try:
            plan = plan_rare_classes(y_raw, policy=rare_classes, cv_folds=cv_folds, test_size=test_size)
        except RareClassError as exc:
            raise BaselineError(f"target {target!r}: {exc}") from None
        y_raw = merge_rare_classes(y_raw, plan)
        known = eda.get("classes") or None
        if known is not None and sorted(map(str, known)) != sorted(map(str, y_raw.unique())):
            known = None  # explore merged with other cv_folds / test_size / rare_classes: this step's plan decides
        y, classes = encode_target(y_raw, task, known)
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
        leakage_suspects=list(eda.get("leakage_suspects") or []), excluded=excluded, rare_classes=plan)


def load_baseline_data(params) -> BaselineData:
    """Read ``explore/eda.json`` and the data file named by ``params`` (with the value conversions eda.json
    records, as the explore step read it), and prepare them.

    Raises ``MissingArtifactError`` ("run the explore step first") when eda.json is absent and
    ``DataChangedError`` when the data file is not the one the run started from.
    """
    check_data(params.run_path, params.data_file, "baseline")
    eda = read_artifact(params.run_path, "eda")
    if eda["target"] != params.target:
        raise BaselineError(f"eda.json in {params.run_path} is for target {eda['target']!r}, params say "
                            f"{params.target!r}; rerun 01_explore with this target and run_dir.")
    table = load_as_explored(params.data_file, eda.get("conversions") or {}, query=params.data_query,
                             sheet=params.data_sheet)
    frame, _ = drop_missing_target(table, params.target)
    return prepare_baseline_data(frame, eda, task=params.task, primary_metric=params.primary_metric,
                                 drop_columns=list(params.drop_columns), group_column=params.group_column,
                                 time_column=params.time_column, rare_classes=params.rare_classes,
                                 cv_folds=params.cv_folds, test_size=params.test_size)




