"""How many training rows the Dask workers' memory holds while ``xgboost.dask`` trains, and which training
partitions (seeded) fit in it: the one step of the Dask engine whose memory grows with the table.

``xgboost.dask`` keeps every training and validation partition's float32 design matrix on the workers for the
whole training (its ``DaskQuantileDMatrix`` is built inside the training task, from the partitions the workers
hold) and adds the quantised matrix and the training state on top. At 30M rows (21M training rows, 2 workers x
2 GB) that killed the workers four times at 1.9 GB. So the full-data model trains on the training partitions that
fit, chosen by a seeded permutation, and the leaderboard and the notebook say how many rows it used out of how
many. XGBoost's external memory (``ExtMemQuantileDMatrix``) would keep every row, but ``xgboost.dask`` does not
build it from Dask collections.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlhelpers.baseline import BaselineError

__all__ = ["TrainingFit", "WorkerMemory", "bytes_per_training_row", "worker_room", "fit_partitions", "SAFE_SHARE", "BALANCE"]

# A worker's resident memory stays under this share of its limit: Dask's target (0.6), below its spill threshold
# (0.7), the pause (0.8) and the nanny's kill (0.95). At 0.7 (30M rows, 2 workers x 2GB) the fuller worker reached
# 1,399 MiB while training and spilled 1.8 GB of the partitions XGBoost was using to disk (6 warnings logged).
SAFE_SHARE = 0.6
# The scheduler spreads the partitions over the workers, not necessarily evenly: plan for the fullest worker
# holding 1 / (BALANCE x workers) of the rows.
BALANCE = 0.8


def bytes_per_training_row(n_features: int, n_outputs: int = 1, weighted: bool = False) -> int:
    """Bytes one training row costs a worker during ``xgboost.dask`` training with ``max_bin`` <= 256.

    The partition the worker holds: float32 features, label and weight (4 bytes each). XGBoost's own (quantised
    matrix, row index, gradients, predictions): 2 bytes a feature and 56 a row, measured by
    ``benchmarks/xgb_row_bytes.py`` (one worker, 0.5M and 2M rows: 120 bytes a row at 10 features,
    211 at 25; this gives 120 and 210), plus 12 a row for each further output of a multi-class model (a gradient
    pair and a prediction). At 30M flights rows (21M training rows, 10.5M a worker on 2 workers x 2 GB) and 25
    features that is 2.2 GB a worker on top of its ~300 MB at rest: the workers were killed at 1.9 GB."""
    held = 4 * (n_features + 1 + int(weighted))
    return held + 2 * n_features + 56 + 12 * (max(int(n_outputs), 1) - 1)


@dataclass
class WorkerMemory:
    limit: int      # bytes (a worker without a limit: what its machine has free)
    resident: int   # bytes the worker holds at rest (workermemory.ReleaseMemory returns what tasks freed)


def _worker_memory(dask_worker) -> dict[str, int]:
    import psutil

    limit = int(getattr(dask_worker.memory_manager, "memory_limit", 0) or 0)
    if not limit:  # a remote worker without a limit: what its machine has free
        limit = int(psutil.virtual_memory().available)
    return {"limit": limit, "resident": int(psutil.Process().memory_info().rss)}


def worker_room(client) -> list[WorkerMemory]:
    """Each worker's memory limit and resident memory now (a cheap ``client.run``)."""
    return [WorkerMemory(**values) for values in client.run(_worker_memory).values()]


@dataclass
class TrainingFit:
    """The partitions XGBoost trains and stops early on, and what the workers' memory allowed."""

    train: list[int]
    valid: list[int]
    train_rows: int
    available_rows: int          # rows of every training partition
    capacity_rows: int           # training + validation rows the workers hold, by the estimate
    bytes_per_row: int

    @property
    def capped(self) -> bool:
        return self.train_rows < self.available_rows

    def note(self) -> str:
        if not self.capped:
            return (f"trained on all {self.available_rows:,} training rows (the workers' memory holds about "
                    f"{self.capacity_rows:,} at {self.bytes_per_row} bytes a row).")
        return (f"trained on {self.train_rows:,} of {self.available_rows:,} training rows ({len(self.train)} partitions, "
                f"seeded): the workers' memory holds no more (about {self.capacity_rows:,} rows at "
                f"{self.bytes_per_row} bytes a row, {SAFE_SHARE:.0%} of each worker's limit); raise dask_worker_memory "
                "or dask_workers to train on more.")


def fit_partitions(lengths: list[int], train: list[int], valid: list[int], bytes_per_row: int,
                   workers: list[WorkerMemory], seed: int) -> TrainingFit:
    """The training and validation partitions whose rows fit the workers' memory while XGBoost trains.

    Room: for each worker, ``SAFE_SHARE`` of its limit minus what it holds now; the smallest room times the
    workers times ``BALANCE``. The transient of reading and preparing one partition (~600 MB for a 375k-row
    flights file) comes on top only while the partitions are prepared, when the workers hold the float32 part
    of a row's cost (about half) and not yet XGBoost's: it fits in the margin above ``SAFE_SHARE``. Validation partitions take at most a fifth of it (but one partition
    always, if it fits), training partitions the rest, each side in a seeded order, skipping a partition that no longer
    fits. ``BaselineError`` when not even one of each fits."""
    if not workers:
        raise BaselineError("the Dask cluster has no workers; start some or set engine: pandas.")
    room = min(SAFE_SHARE * w.limit - w.resident for w in workers) * len(workers) * BALANCE
    capacity = max(int(room // bytes_per_row), 0)
    rng = np.random.default_rng(seed)

    def take(numbers: list[int], budget: int, first_budget: int) -> list[int]:
        chosen, used = [], 0
        for number in rng.permutation(numbers).tolist():
            if used + lengths[number] <= (budget if chosen else first_budget):
                chosen.append(number)
                used += lengths[number]
        return sorted(chosen)

    chosen_valid = take(valid, capacity // 5, capacity)
    left = capacity - sum(lengths[i] for i in chosen_valid)
    chosen_train = take(train, left, left)
    if not chosen_valid or not chosen_train:
        smallest = min(lengths[i] for i in train + valid)
        raise BaselineError(
            f"the Dask workers' memory cannot hold even one training and one validation partition for XGBoost "
            f"({smallest:,} rows at least, {bytes_per_row} bytes a row, against room for about {capacity:,} rows); "
            "raise dask_worker_memory or dask_workers, or split the data into smaller files.")
    return TrainingFit(train=chosen_train, valid=chosen_valid, train_rows=sum(lengths[i] for i in chosen_train),
                       available_rows=sum(lengths[i] for i in train), capacity_rows=capacity,
                       bytes_per_row=bytes_per_row)
