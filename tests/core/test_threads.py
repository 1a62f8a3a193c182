"""Threads for fits and predictions: one below OPENMP_MIN_ROWS rows, n_jobs above."""

from mlhelpers.core import threads as threadctl


def test_small_fits_run_blas_and_openmp_on_one_thread():
    from threadpoolctl import threadpool_info

    def threads():
        return {pool["user_api"]: pool["num_threads"] for pool in threadpool_info()}

    import sklearn.linear_model  # noqa: F401  (loads BLAS and OpenMP, as a fold does)

    with threadctl.native_threads(threadctl.OPENMP_MIN_ROWS - 1, n_jobs=-1):
        assert set(threads()) >= {"blas", "openmp"} and set(threads().values()) == {1}
    with threadctl.native_threads(threadctl.OPENMP_MIN_ROWS, n_jobs=2):
        assert threads()["blas"] == threads()["openmp"] == 2
