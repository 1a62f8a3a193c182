"""A sweep's parent run in MLflow: opened before its variants (each logs under it as ``mlflow_parent_run_id``) and
closed with their outcome. The store is opened as the export step opens it (``tracking.open_store``)."""

from __future__ import annotations

from typing import Any

from mlhelpers.core.quiet import quiet_libraries
from mlhelpers.export.tracking import open_store

__all__ = ["start_parent_run", "end_parent_run"]


def start_parent_run(tracking_uri: str, experiment: str, name: str, params: dict[str, Any]) -> str:
    """Open the MLflow run a sweep's variants log under (their ``mlflow_parent_run_id``), named ``name``, with
    ``params`` (the grid) logged; return its id. It stays open until ``end_parent_run``."""
    with quiet_libraries():
        import mlflow
        from mlflow import MlflowClient

        previous_uri = mlflow.get_tracking_uri()
        try:
            experiment_id = open_store(tracking_uri, experiment)
            client = MlflowClient(tracking_uri)
            run = client.create_run(experiment_id, run_name=name, tags={"mlhelpers.sweep": name})
            for key, value in params.items():
                client.log_param(run.info.run_id, key, str(value)[:6000])
            return run.info.run_id
        finally:
            mlflow.set_tracking_uri(previous_uri)


def end_parent_run(tracking_uri: str, run_id: str, failed: int, total: int, interrupted: bool = False) -> None:
    """Close a sweep's parent run: FINISHED when every variant succeeded, FAILED when one failed, KILLED when the
    sweep was interrupted; with the counts as metrics."""
    with quiet_libraries():
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri)
        client.log_metric(run_id, "variants_failed", failed)
        client.log_metric(run_id, "variants", total)
        client.set_terminated(run_id, "KILLED" if interrupted else "FINISHED" if failed == 0 else "FAILED")
