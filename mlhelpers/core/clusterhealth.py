"""The health of a Dask cluster a step ran on: what the step asserts about its workers (none restarted, replaced
or left paused; no warning in their logs) and the table the notebooks show when the engine closes
(``core.engine.Engine.close``). Every function here talks to a running client or runs on its workers.
"""

from __future__ import annotations

import os
import resource
from typing import Any

import pandas as pd

__all__ = ["cluster_health", "health_table", "sort_log_lines", "worker_identity"]

# Log lines that mean a worker ran out of memory (health check): the nanny's and the worker's own words.
_MEMORY_TROUBLE = ("exceeded", "Restarting", "Killed", "SIGKILL", "memory limit", "Memory use is high")
# Dask's own back-pressure, which a busy machine (a 2-core CI runner) can trigger and which the worker recovers from:
# a pause until memory is handed back, a warning that memory is not yet returned to the OS. Counted apart and
# shown; a worker still paused when the step ends is trouble (``cluster_health``'s ``paused_workers``).
_MEMORY_PRESSURE = ("Pausing worker", "Resuming worker", "Unmanaged memory use is high")


def sort_log_lines(logs: list[dict[str, list[tuple[str, str]]]]) -> tuple[list[str], list[str]]:
    """The lines of ``logs`` (``Client.get_worker_logs()`` results: address -> [(level, message)]) that the health
    check reports, as "address: message": ``(flagged, pressure)``. Pressure: Dask's pause/resume and unmanaged-memory
    warnings (``_MEMORY_PRESSURE``); flagged: every other warning or error, and memory trouble at any level."""
    flagged, pressure = [], []
    for per_worker in logs:
        for address, lines in per_worker.items():
            for level, message in lines:
                line = f"{address}: {message.strip()[:200]}"
                if level == "WARNING" and any(words in message for words in _MEMORY_PRESSURE):
                    pressure.append(line)
                elif level in ("WARNING", "ERROR", "CRITICAL") or any(words in message for words in _MEMORY_TROUBLE):
                    flagged.append(line)
    return flagged, pressure


def _worker_status(dask_worker) -> str:
    return dask_worker.status.name


def cluster_health(client, identity: dict[str, tuple[int, int | None]]) -> dict[str, Any]:
    """What a run asserts about the cluster: ``workers_unchanged`` (no worker restarted or replaced: the same
    ``{address: (pid, nanny pid)}`` in ``workers_now`` as in ``identity``, taken when the engine opened),
    ``memory_restarts`` and ``removed_workers`` (scheduler events), ``flagged_log_lines`` (warnings and
    memory trouble in the workers' and nannies' logs), ``pressure_log_lines`` (Dask pausing and resuming a
    worker, unmanaged memory not yet returned), ``paused_workers`` (still paused now), ``spilled_bytes`` and
    ``worker_peak_mb`` (each worker's peak resident memory, the kernel's high-water mark)."""
    events = client.run_on_scheduler(_scheduler_events)
    flagged, pressure = sort_log_lines([client.get_worker_logs(), client.get_worker_logs(nanny=True)])
    statuses = client.run(_worker_status)
    spilled = client.run(_spilled_bytes)
    peaks = client.run(_peak_mb)
    now = worker_identity(client)
    return {"workers_unchanged": now == identity, "workers_now": now,
            "memory_restarts": events["worker-restart-memory"],
            "removed_workers": events["remove-worker"], "flagged_log_lines": flagged, "pressure_log_lines": pressure,
            "paused_workers": sorted(address for address, status in statuses.items() if status == "paused"),
            "spilled_bytes": int(sum(spilled.values())), "worker_peak_mb": {k: round(v, 1) for k, v in peaks.items()}}


def health_table(health: dict[str, Any], seconds_open: float) -> pd.DataFrame:
    """``cluster_health``'s answer as the table a notebook shows (one ``value`` per check)."""
    events = len(health["memory_restarts"]) + len(health["removed_workers"])
    rows = {"workers restarted or lost": "none" if health["workers_unchanged"] and not events else f"{events} event(s)",
            "workers paused at the end": len(health["paused_workers"]),
            "bytes spilled to disk": health["spilled_bytes"],
            "peak memory per worker (MB)": ", ".join(f"{v:.0f}" for v in health["worker_peak_mb"].values()),
            "warnings in the workers' logs": len(health["flagged_log_lines"]),
            "first warning": health["flagged_log_lines"][0] if health["flagged_log_lines"] else "none",
            "memory pressure notices (recovered)": len(health["pressure_log_lines"]),
            "seconds open": round(seconds_open, 1)}
    return pd.DataFrame({"value": list(rows.values())}, index=list(rows))


def worker_identity(client) -> dict[str, tuple[int, int | None]]:
    """``{worker address: (worker pid, nanny pid)}``: a restarted worker gets a new address and pid."""
    pids = client.run(os.getpid)
    nannies = client.run(os.getpid, nanny=True) if client.scheduler_info()["workers"] else {}
    return {address: (pid, nannies.get(address)) for address, pid in pids.items()}


def _scheduler_events(dask_scheduler) -> dict[str, list]:
    # Filtered on the scheduler: client.get_events() with no topic fails to serialize after a broadcast
    # scatter (its "replicate-add" events hold WorkerState objects).
    restarts = [dict(message) for _, message in dask_scheduler.get_events("worker-restart-memory")]
    removed = [{key: str(value) for key, value in message.items()} for _, message in dask_scheduler.get_events("all")
               if isinstance(message, dict) and message.get("action") == "remove-worker"]
    return {"worker-restart-memory": restarts, "remove-worker": removed}


def _spilled_bytes(dask_worker) -> int:
    metrics = getattr(dask_worker.data, "cumulative_metrics", {})
    return int(metrics.get(("disk-write", "bytes"), 0))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
