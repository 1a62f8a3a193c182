"""Figures: plot helpers take ``ax=None`` and return the axes; ``save_figure`` writes into the run folder."""

from __future__ import annotations

from pathlib import Path

from mlhelpers.artifacts import atomic_path, step_dir


def save_figure(fig, run_dir: str | Path, step: str, name: str, dpi: int = 110) -> Path:
    """Write ``fig`` as ``<run_dir>/<step folder>/<name>.png`` atomically and return the path."""
    path = step_dir(run_dir, step) / f"{name}.png"
    with atomic_path(path) as temp:
        fig.savefig(temp, format="png", dpi=dpi, bbox_inches="tight")
    return path
