"""``mlh predict``: score a file with an exported model folder into a predictions file and a rejects file.

The scoring itself is ``mlhelpers.formats.scoring.score_file``; this module decides the files from the
command line's arguments.
"""

from __future__ import annotations

from pathlib import Path

from mlhelpers.formats.scoring import ScoreSummary, score_file

__all__ = ["predict_file"]


def predict_file(model_dir: str | Path, input_path: str | Path, output_path: str | Path,
                 rejects_path: str | Path | None = None, chunk_rows: int = 50_000,
                 progress: bool = True, sheet: str | int | None = None) -> ScoreSummary:
    """Score ``input_path`` (any format the pipeline reads; ``sheet`` for an Excel workbook with several)
    with the model in ``model_dir``; return what was written (see ``score_file``)."""
    return score_file(model_dir, input_path, output_path, rejects_path=rejects_path, chunk_rows=chunk_rows,
                      progress=progress, sheet=sheet)
