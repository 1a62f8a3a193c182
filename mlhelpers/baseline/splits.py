"""The held-out test rows, set aside once, and the cross-validation folds over the rest.

Time-ordered, grouped, stratified or random, as the params say; every random choice comes from ``seed``.
When exact copies of rows (features and target, values too rare to coincide: ``core.tables.copied_rows``)
exceed ``DUPLICATE_SHARE`` of the rows, each group of copies stays on one side of the test split and of every
fold, so no row is validated against its twin.
For classification the test split holds every class when the strategy allows it (stratified; grouped: the first
of a few seeded group draws that does); a class it still lacks is named in the summary and in ``split.json``.
``write_split`` records the row labels in ``baseline/split.json``, which export evaluates on.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlhelpers.baseline import BaselineError
from mlhelpers.baseline.inputs import BaselineData
from mlhelpers.core.artifacts import artifact_path, write_json
from mlhelpers.core.tables import DUPLICATE_SHARE, TIME_FIX, copied_rows, parse_times, unplaced_times

__all__ = ["Split", "make_split", "write_split"]

GROUP_DRAWS = 20    # seeded group holdouts tried, in order, for one whose test rows hold every class


@dataclass
class Split:
    """The held-out test rows and the cross-validation folds over the training rows."""

    strategy: str                     # stratified | random | group | time
    train_index: list                 # row labels of the loaded table
    test_index: list
    folds: list[tuple[np.ndarray, np.ndarray]]  # positions into train_index: (fit rows, validation rows)
    seed: int
    duplicates: dict[str, Any] = field(default_factory=dict)  # copies of rows and whether they were grouped
    absent_from_test: list = field(default_factory=list)  # classes with no test row (time or group splits only)
    # positions of train_index in the table the split was made from: looking 2.6M labels up again costs 2.5 s a time
    train_positions: np.ndarray | None = field(default=None, repr=False)

    def positions(self, X: pd.DataFrame) -> np.ndarray:
        """The training rows' positions in ``X`` (the table the split was made from, or its columns)."""
        if self.train_positions is not None and len(X) == self.n_rows:
            return self.train_positions
        return X.index.get_indexer(self.train_index)

    @property
    def n_rows(self) -> int:
        return len(self.train_index) + len(self.test_index)

    def summary(self) -> pd.DataFrame:
        """Rows on each side and in each fold."""
        rows = [{"part": "train (cross-validated)", "rows": len(self.train_index)},
                {"part": "test (held out for export)", "rows": len(self.test_index)}]
        rows += [{"part": f"fold {i + 1}: fit / validate", "rows": f"{len(a)} / {len(b)}"}
                 for i, (a, b) in enumerate(self.folds)]
        if self.duplicates.get("duplicate_rows"):
            rows.append({"part": "copies of rows (features and target)",
                         "rows": f"{self.duplicates['copy_rows']} ({self.duplicates['share']:.2%}): "
                                 f"{self.duplicates['policy']}"})
        if self.absent_from_test:
            rows.append({"part": "classes absent from test (left out of its macro averages)",
                         "rows": ", ".join(map(str, self.absent_from_test))})
        return pd.DataFrame(rows).set_index("part")

    def __repr__(self) -> str:
        return (f"Split(strategy={self.strategy!r}, train={len(self.train_index)}, "
                f"test={len(self.test_index)}, folds={len(self.folds)})")


def make_split(data: BaselineData, *, test_size: float = 0.2, cv_folds: int = 5, seed: int = 42,
               group_duplicates: bool = True) -> Split:
    """Hold out ``test_size`` of the rows once, and build ``cv_folds`` folds over the rest.

    Time-ordered when ``data.times`` is set (the test rows and each validation fold come after
    the rows fitted on), grouped when ``data.groups`` is set (a group never straddles two sides),
    stratified for classification, random otherwise. With ``group_duplicates`` (the default), when
    rows that repeat an earlier one (same features and target) exceed ``DUPLICATE_SHARE`` of the
    rows, every group of identical rows also stays on one side (not for a time-ordered split, where
    the order decides); ``Split.duplicates`` says what was found and done.
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
    copies, duplicates = _duplicates(data, group_duplicates)
    if data.times is not None:
        strategy = "time"
        problem = unplaced_times(data.times)
        if problem:
            raise BaselineError(f"time_column {problem}; {TIME_FIX}.")
        times = parse_times(data.times)
        order = np.argsort(np.asarray(times), kind="stable")
        train_pos, test_pos = np.sort(order[: n - n_test]), np.sort(order[n - n_test:])
        train_order = np.argsort(np.asarray(times)[train_pos], kind="stable")
        folds = [(train_order[a], train_order[b]) for a, b in TimeSeriesSplit(n_splits=cv_folds).split(train_order)]
    elif data.groups is not None:
        strategy = "group"
        groups = data.groups.to_numpy()
        if duplicates["grouped"]:
            groups = _merge_groups(pd.factorize(groups)[0], copies)
        n_groups = pd.Series(groups).nunique(dropna=False)
        if n_groups < cv_folds + 1:
            joined = " once groups sharing copies of a row are joined" if duplicates["grouped"] else ""
            raise BaselineError(f"group_column {data.groups.name!r} has {n_groups} groups{joined}; grouped splitting needs "
                                f"at least cv_folds + 1 = {cv_folds + 1}. Lower cv_folds or use another group column"
                                + (", or set group_duplicates: false." if joined else "."))
        draws = GroupShuffleSplit(n_splits=GROUP_DRAWS if classification else 1, test_size=test_size,
                                  random_state=seed).split(positions, groups=groups)
        # The first draw is the one a plain group split makes; later draws are tried only when a class has no
        # test row (scikit-learn has no stratified group holdout), so the test score averages over every class.
        for train_pos, test_pos in draws:
            if not classification or len(np.unique(data.y[test_pos])) == data.n_classes:
                break
        else:
            train_pos, test_pos = next(GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
                                       .split(positions, groups=groups))
        splitter = (StratifiedGroupKFold(cv_folds, shuffle=True, random_state=seed) if classification
                    else GroupKFold(cv_folds, shuffle=True, random_state=seed))
        folds = list(splitter.split(train_pos, data.y[train_pos], groups=groups[train_pos]))
    elif duplicates["grouped"]:
        strategy = "stratified" if classification else "random"
        train_pos, test_pos, folds = _split_copies(copies, data.y, classification, test_size, cv_folds, seed)
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
    absent = ([data.classes[c] for c in range(data.n_classes) if not (data.y[test_pos] == c).any()]
              if classification else [])
    split = Split(strategy=strategy, train_index=data.X.index[train_pos].tolist(),
                  test_index=data.X.index[test_pos].tolist(), folds=folds, seed=seed, duplicates=duplicates,
                  absent_from_test=absent, train_positions=np.asarray(train_pos))
    if classification:
        _check_folds_hold_every_class(data, split)
    return split


def _duplicates(data: BaselineData, group_duplicates: bool) -> tuple[np.ndarray, dict[str, Any]]:
    """A group number per row that joins copies of a row (features and target; every other row is a
    group of its own), and what the split does about them."""
    rows = data.X.assign(**{"\x00target": data.y})  # a name no column has: the target is part of the copy
    groups, copied = copied_rows(rows)
    n = len(groups)
    repeats = int(n - (groups.max() + 1)) if n else 0
    copies = int(copied.sum() - len(np.unique(groups[copied])))
    share = copies / n if n else 0.0
    grouped = False
    if share <= DUPLICATE_SHARE:
        policy = f"copies at most {DUPLICATE_SHARE:.0%} of rows: split as usual"
    elif not group_duplicates:
        policy = "group_duplicates is false: copies may sit on both sides of a split (CV scores can be inflated)"
    elif data.times is not None:
        policy = "time-ordered split: the order decides, copies are not grouped"
    else:
        grouped = True
        policy = "each group of copies stays on one side of the test split and of every fold"
    if repeats > copies:
        policy += f" ({repeats - copies} identical rows of common values are coincidences, split freely)"
    split_groups = pd.factorize(np.where(copied, groups, groups.max(initial=0) + 1 + np.arange(n)))[0]
    return split_groups, {"duplicate_rows": repeats, "copy_rows": copies, "share": round(share, 6),
                          "threshold": DUPLICATE_SHARE, "grouped": grouped, "policy": policy}


def _split_copies(copies: np.ndarray, y: np.ndarray, classification: bool, test_size: float, cv_folds: int,
                  seed: int) -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """Test split and folds over groups of copies: every group on one side.

    A group holds copies of one row, target included, so it has a single class: stratifying the groups
    by that class is a stratified group split (what ``StratifiedGroupKFold`` searches for, without its
    per-group loop, which takes minutes on a million groups).
    """
    from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

    n_groups = int(copies.max()) + 1
    if n_groups * (1 - test_size) < 2 * cv_folds:
        raise BaselineError(f"the {len(copies)} rows hold only {n_groups} distinct rows (features and target): too few "
                            f"to keep copies together over a test split and cv_folds={cv_folds}; lower cv_folds, "
                            "or set group_duplicates: false (CV scores may then be inflated by copies).")
    first = np.unique(copies, return_index=True)[1]          # one row per group, in group order
    group_y = y[first] if classification else None
    if group_y is not None and np.bincount(group_y).max(initial=0) and np.bincount(group_y)[np.bincount(group_y) > 0].min() < 2:
        group_y = None  # a class with one distinct row cannot be stratified; the fold check below names it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "least populated class has fewer members than n_splits"
        train_groups, test_groups = train_test_split(np.arange(n_groups), test_size=test_size, random_state=seed,
                                                     stratify=group_y)
        in_test = np.zeros(n_groups, dtype=bool)
        in_test[test_groups] = True
        train_pos, test_pos = np.flatnonzero(~in_test[copies]), np.flatnonzero(in_test[copies])
        train_copies = pd.factorize(copies[train_pos])[0]
        train_first = np.unique(train_copies, return_index=True)[1]
        splitter = (StratifiedKFold if classification else KFold)(cv_folds, shuffle=True, random_state=seed)
        group_folds = splitter.split(train_first, y[train_pos][train_first] if classification else None)
        folds = []
        for fit_groups, val_groups in group_folds:
            is_val = np.zeros(len(train_first), dtype=bool)
            is_val[val_groups] = True
            folds.append((np.flatnonzero(~is_val[train_copies]), np.flatnonzero(is_val[train_copies])))
    return train_pos, test_pos, folds


def _merge_groups(groups: np.ndarray, copies: np.ndarray) -> np.ndarray:
    """Groups joined wherever copies of a row sit in two of them (connected components)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n_groups, n_copies = int(groups.max()) + 1, int(copies.max()) + 1
    links = coo_matrix((np.ones(len(groups)), (groups, n_groups + copies)),
                       shape=(n_groups + n_copies, n_groups + n_copies))
    return connected_components(links, directed=False)[1][groups]


def _check_folds_hold_every_class(data: BaselineData, split: Split) -> None:
    y_train = data.y[split.positions(data.X)]
    present = np.unique(y_train)
    for i, (fit_rows, _) in enumerate(split.folds):
        counts = np.bincount(y_train[fit_rows], minlength=len(data.classes))[present]
        if counts.min() < 2:
            rare = [str(data.classes[c]) for c, n in zip(present, counts) if n < 2]
            raise BaselineError(f"cross-validation fold {i + 1} would fit on fewer than 2 rows of classes {rare}; "
                                "merge or filter rare classes, or lower cv_folds / test_size.")


def write_split(split: Split, run_dir: str | Path) -> Path:
    """Write ``baseline/split.json`` (row labels of the test and training rows) and return its path."""
    return write_json(artifact_path(run_dir, "split"), {
        "strategy": split.strategy, "seed": split.seed, "n_folds": len(split.folds),
        "duplicates": split.duplicates, "classes_absent_from_test": split.absent_from_test,
        "test_index": split.test_index, "train_index": split.train_index})
