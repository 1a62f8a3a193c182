"""Threads for fitting and predicting: how many a fit may use (``native_threads``), and one for predictions
(``predict_on_one_thread``), so small fits do not busy-wait and predictions repeat to the last digit. Used by the
zoo's folds, the diagnostics and export's refit.
"""

from __future__ import annotations

__all__ = ["OPENMP_MIN_ROWS", "native_threads", "predict_on_one_thread"]

# Below this many rows OpenMP models (HistGradientBoosting) and BLAS (the linear models' solvers) run on one
# thread: thread start-up costs more than it saves, and busy waiting slows fits 10-50x when other processes
# share the cores (measured: 0.7 s on one thread vs 10-50 s on two for 2,850 rows under load; a logistic
# regression on 3,000 x 150, 0.14 s on one BLAS thread vs 0.7-0.9 s on two).
OPENMP_MIN_ROWS = 50_000


def native_threads(n_rows: int, n_jobs: int):
    """A context limiting OpenMP and BLAS threads: one below ``OPENMP_MIN_ROWS`` rows, else ``n_jobs`` (-1: all
    cores). Used around every fit: the zoo's folds, the diagnostics and export's refit."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1 if n_rows < OPENMP_MIN_ROWS else (n_jobs if n_jobs > 0 else None))


def predict_on_one_thread(estimator):
    """``estimator`` (a fitted model or pipeline) with every ``n_jobs`` set to 1, so it predicts the same
    digits on every call; returned for chaining.

    A random forest predicting on several threads adds its trees' outputs into one sum under a lock, in
    whatever order the threads finish: on diamonds with two threads, 8 predictions of the same rows gave 8
    different results in the last digit, so CV scores and test metrics changed between identical runs. On
    one thread the trees are summed in order. Fits keep their threads: each tree is grown from its own seed,
    identical whichever thread grows it (XGBoost and HistGradientBoosting fits and predictions gave the
    same bytes on one and two threads).
    """
    threaded = {key: 1 for key, value in estimator.get_params().items()
                if key.endswith("n_jobs") and value not in (None, 1)}
    return estimator.set_params(**threaded) if threaded else estimator
