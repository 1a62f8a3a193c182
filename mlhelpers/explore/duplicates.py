"""Exact duplicate rows: how many, how many are copies rather than coincidences, a few examples, and
whether the baseline will group them.

Rows that are exact copies of each other (every column, the target included) inflate cross-validation:
a copy in the validation fold is predicted from its twin in the training folds. Identical rows of common
values (a table of a few categorical columns) are coincidences instead, expected in i.i.d. data
(``mlhelpers.core.tables.copied_rows`` tells them apart). The baseline keeps each group of copies on one
side of every split when copies exceed ``mlhelpers.core.tables.DUPLICATE_SHARE`` of the rows; this module
reports them before that happens. Exact, on every row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlhelpers.core.tables import DUPLICATE_SHARE, copied_rows

__all__ = ["DuplicateRows", "duplicate_rows"]


@dataclass
class DuplicateRows:
    """Exact duplicate rows of a table: counts, the largest groups' examples, the baseline's policy."""

    n_rows: int
    duplicate_rows: int          # rows that repeat an earlier row
    copy_rows: int               # of those, rows whose values are too rare to coincide: copies
    groups: int                  # groups of identical rows with two rows or more
    largest_group: int           # rows in the biggest group (1 when there are no duplicates)
    examples: pd.DataFrame       # one row per largest group (up to ``examples``), with its number of ``copies``

    @property
    def share(self) -> float:
        return self.duplicate_rows / self.n_rows if self.n_rows else 0.0

    @property
    def copy_share(self) -> float:
        return self.copy_rows / self.n_rows if self.n_rows else 0.0

    @property
    def grouped_split(self) -> bool:
        """Whether the baseline keeps copies on one side of every split (by default)."""
        return self.copy_share > DUPLICATE_SHARE

    def summary(self) -> pd.DataFrame:
        """The counts and what the baseline does about them, as a one-column table."""
        policy = (f"copies above {DUPLICATE_SHARE:.0%}: the baseline keeps each group of copies on one side of "
                  "the test split and of every fold" if self.grouped_split
                  else f"copies at most {DUPLICATE_SHARE:.0%}: the baseline splits rows as usual")
        rows = {"rows": f"{self.n_rows:,}",
                "rows repeating an earlier row": f"{self.duplicate_rows:,} ({self.share:.2%})",
                "of which copies (values too rare to coincide)": f"{self.copy_rows:,} ({self.copy_share:.2%})",
                "groups of identical rows": f"{self.groups:,}",
                "largest group": f"{self.largest_group:,} rows",
                "baseline split": policy}
        return pd.DataFrame({"value": list(rows.values())}, index=list(rows))

    def to_dict(self) -> dict[str, Any]:
        """The ``duplicates`` entry of ``eda.json``."""
        examples = self.examples.astype(object).where(self.examples.notna(), None)
        return {"n_rows": self.n_rows, "duplicate_rows": self.duplicate_rows, "share": round(self.share, 6),
                "copy_rows": self.copy_rows, "copy_share": round(self.copy_share, 6), "groups": self.groups,
                "largest_group": self.largest_group, "threshold": DUPLICATE_SHARE,
                "grouped_split": self.grouped_split,
                "examples": [{str(k): _plain(v) for k, v in row.items()} for row in examples.to_dict(orient="records")]}

    def __repr__(self) -> str:
        return (f"DuplicateRows({self.duplicate_rows} of {self.n_rows} rows repeat an earlier one, "
                f"{self.copy_rows} of them copies, {self.groups} groups, largest {self.largest_group})")


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def duplicate_rows(frame: pd.DataFrame, examples: int = 5) -> DuplicateRows:
    """Exact duplicate rows of ``frame`` (every column compared, missing values equal to each other).

    ``examples`` rows are shown, one per largest group, with the number of ``copies`` of each.
    """
    groups, copied = copied_rows(frame)
    sizes = np.bincount(groups) if len(groups) else np.zeros(0, dtype=int)
    repeated = np.flatnonzero(sizes > 1)
    biggest = repeated[np.argsort(-sizes[repeated], kind="stable")][:examples]
    first_rows = pd.Series(np.arange(len(groups))).groupby(groups).first()
    shown = frame.iloc[first_rows.loc[biggest].to_numpy()].copy() if len(biggest) else frame.iloc[:0].copy()
    shown.insert(0, "copies", sizes[biggest])
    copy_rows = int(copied.sum() - len(np.unique(groups[copied])))
    return DuplicateRows(n_rows=len(frame), duplicate_rows=int(len(groups) - len(sizes)), copy_rows=copy_rows,
                         groups=len(repeated),
                         largest_group=int(sizes.max()) if len(sizes) else 0, examples=shown)
