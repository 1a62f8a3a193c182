"""``mlh predict``: score a file with an exported model folder into a predictions file and a rejects file.

The scoring itself is ``mlhelpers.formats.scoring.score_file``; this module decides the files from the
command line's arguments.
"""

from __future__ import annotations

from pathlib import Path

from mlhelpers.core.engine import check_engine_params, open_engine
from mlhelpers.core.params import validate_params
from mlhelpers.formats.partitioned import score_partitions
from mlhelpers.formats.scoring import ScoreSummary, score_file
from mlhelpers.formats.served import load_model_dir

__all__ = ["predict_file", "predict_partitions"]


def predict_file(model_dir: str | Path, input_path: str | Path, output_path: str | Path,
                 rejects_path: str | Path | None = None, chunk_rows: int = 50_000,
                 progress: bool = True) -> ScoreSummary:
    """Score ``input_path`` with the model in ``model_dir``; return what was written (see ``score_file``)."""
    return score_file(model_dir, input_path, output_path, rejects_path=rejects_path, chunk_rows=chunk_rows,
                      progress=progress)


def predict_partitions(model_dir: str | Path, input_path: str | Path, output_dir: str | Path,
                       rejects_dir: str | Path | None = None, scheduler: str = "", workers: int = -1,
                       worker_memory: str = "2GB") -> ScoreSummary:
    """``mlh predict --engine dask``: score ``input_path`` partition by partition on ``scheduler`` or on a local
    cluster started (its dashboard link printed) and closed here; see ``score_partitions``. Unusable engine
    settings raise ``EngineError`` before anything starts."""
    check_engine_params("dask", scheduler, workers, worker_memory)
    load_model_dir(model_dir)  # a wrong folder is refused before a cluster starts
    params = validate_params({"engine": "dask", "dask_scheduler": scheduler, "dask_workers": workers,
                              "dask_worker_memory": worker_memory}, check_data=False)
    with open_engine(params) as engine:
        if engine.cluster is not None:
            print(f"Dask local cluster: {len(engine.cluster.workers)} workers x {worker_memory}; "
                  f"dashboard {engine.dashboard_link}", flush=True)
        return score_partitions(model_dir, input_path, output_dir, rejects_dir)
