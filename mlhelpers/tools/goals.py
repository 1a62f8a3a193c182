"""Which serving goals each `mlh optimize` candidate meets, and the pick: the one meeting the most.

The goals (issue 15, for a fitted forest or any pipeline, against the original pickle measured in the same run):
exact on the sample and the parity probe, >= 10x smaller on disk, >= 20x faster per row, no slower in
batches, and, when the original file is over 100 MB, serving in at most a third of its process's peak
memory. A serving process never goes below its floor (Python, numpy, pandas and the format's runtime
imported, no model: ~125 MB with onnxruntime); when that floor alone is over the third, the goal is judged
on the memory above the floor and the note says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

SIZE_GOAL_X = 10.0          # at least this many times smaller on disk
ROW_GOAL_X = 20.0           # at least this many times faster per single row (p50)
BATCH_GOAL_X = 1.0          # no slower in batches
MEMORY_GOAL_FRACTION = 1 / 3
MEMORY_GOAL_ABOVE_MB = 100  # the memory goal applies to originals over this size on disk (MB = 2**20 bytes)
GOALS = ("exact", "disk", "one row", "batches", "memory")


def memory_goal(row: dict[str, Any] | pd.Series, before: dict[str, Any]) -> tuple[bool | None, str]:
    """(met, how it was judged) for the memory goal; met is None when it does not apply (a small original)."""
    size_mb = before["size_bytes"] / 2**20
    if size_mb <= MEMORY_GOAL_ABOVE_MB:
        return None, f"memory goal n/a: the original is {size_mb:.1f} MB, not over {MEMORY_GOAL_ABOVE_MB} MB"
    bound = before["peak_memory_mb"] * MEMORY_GOAL_FRACTION
    peak = row["peak_memory_mb"]
    floor = row.get("floor_memory_mb")
    if peak <= bound or floor is None or pd.isna(floor) or floor < bound:
        return bool(peak <= bound), f"peak {peak:.0f} MB vs a third of the original's {before['peak_memory_mb']:.0f} MB"
    # the process without any model already holds more than the bound: only the model's share can be judged
    above, original_above = row["model_memory_mb"], before["model_memory_mb"]
    met = bool(above <= original_above * MEMORY_GOAL_FRACTION)
    return met, (f"the floor dominates: a serving process with no model holds {floor:.0f} MB, over a third of the "
                 f"original's {before['peak_memory_mb']:.0f} MB; above the floor {above:.0f} MB vs "
                 f"{original_above:.0f} MB ({'within' if met else 'over'} a third)")


def judge_goals(candidates: pd.DataFrame, before: dict[str, Any]) -> pd.DataFrame:
    """``candidates`` with ``goals_met`` (how many of ``GOALS``), ``goals_missed`` (their names, comma-separated,
    "" when none) and ``memory_goal`` (how the memory goal was judged); needs the ratio columns of
    ``optimize._ratios`` and each row's ``lossless``, ``parity_ok``, ``probe_ok``."""
    judged = candidates.copy()
    met_counts, missed_names, memory_notes = [], [], []
    for _, row in judged.iterrows():
        memory, note = memory_goal(row, before)
        checks = {"exact": bool(row["lossless"] and row["parity_ok"] and row["probe_ok"]),
                  "disk": row["size_smaller_x"] >= SIZE_GOAL_X,
                  "one row": row["single_row_faster_x"] >= ROW_GOAL_X,
                  "batches": row["batch_faster_x"] >= BATCH_GOAL_X,
                  "memory": True if memory is None else memory}  # a goal that does not apply is not missed
        met_counts.append(sum(checks.values()))
        missed_names.append(", ".join(goal for goal in GOALS if not checks[goal]))
        memory_notes.append(note)
    judged["goals_met"] = met_counts
    judged["goals_missed"] = missed_names
    judged["memory_goal"] = memory_notes
    return judged


def choose_best(good: pd.DataFrame, notes: list[str]) -> tuple[str, Path]:
    """The candidate meeting the most goals (``judge_goals``' ``goals_met``, when present), ties broken by the
    best balance of the four gains (geometric mean of the disk, peak-memory, single-row and batch ratios);
    says in ``notes`` which goals each candidate misses and where the compact format wins over ONNX."""
    gain = (good["size_smaller_x"] * good["memory_smaller_x"] * good["single_row_faster_x"]
            * good["batch_faster_x"]) ** (1 / 4)
    order = pd.DataFrame({"goals": good["goals_met"] if "goals_met" in good else 0, "gain": gain})
    pick = good.loc[order.sort_values(["goals", "gain"], ascending=False).index[0]]
    by_name = good.set_index("name")
    if "goals_met" in good:
        for name, row in by_name.iterrows():
            notes.append(f"goals: {name} meets {int(row['goals_met'])} of {len(GOALS)}"
                         f"{' (misses ' + row['goals_missed'] + ')' if row['goals_missed'] else ' (all)'}; "
                         f"{row['memory_goal']}")
    if {"compact", "onnx"} <= set(by_name.index):
        compact, onnx = by_name.loc["compact"], by_name.loc["onnx"]
        wins = [what for what, column in (("disk", "size_bytes"), ("peak memory", "peak_memory_mb"))
                if compact[column] < onnx[column]]
        loses = [what for what, column in (("one row", "single_row_p50_ms"),) if compact[column] > onnx[column]]
        loses += ["batches"] if compact["batch_rows_per_second"] < onnx["batch_rows_per_second"] else []
        how = "most goals met, then " if "goals_met" in good else ""
        notes.append(f"compact vs onnx: compact wins on {', '.join(wins) or 'nothing'}"
                     f"{'; onnx wins on ' + ', '.join(loses) if loses else ''}; chosen: {pick['name']} "
                     f"({how}best geometric mean of the disk, memory, one-row and batch gains)")
    return pick["name"], Path(pick["path"])
