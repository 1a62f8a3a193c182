"""The compute engine a step runs on: pandas in this process (the default), or Dask on a ``LocalCluster`` started for
the run or on an existing scheduler.

``open_engine(params)`` starts or connects (and prints the dashboard link), ``Engine.close()`` closes what it
started and reports the cluster's health (``core.clusterhealth``: no worker restarted, left paused or spilling).
``check_engine_params`` refuses, before any step starts, an engine that cannot work: Dask not installed, a
scheduler that does not answer or has no workers, an impossible worker count or memory. Library logs stay out of
the notebooks: the cluster logs errors only and every call into it runs inside
``mlhelpers.core.quiet.quiet_libraries``.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pandas as pd

from mlhelpers.core.clusterhealth import cluster_health, health_table, worker_identity
from mlhelpers.core.quiet import quiet_libraries

__all__ = ["EngineError", "Engine", "open_engine", "start_local_cluster", "check_engine_params", "current_client",
           "parse_memory", "worker_count"]

CONNECT_SECONDS = 10         # a scheduler under load took more than 5 s to answer its first client
PROBE_SECONDS = 2            # the plain TCP check before Dask is even imported
WORKERS_SECONDS = 120        # a local cluster's workers registering with its scheduler (seconds under heavy load)
MIN_WORKER_MEMORY = 256e6    # below this a worker cannot hold one partition and the pipeline's objects
_INSTALL = "install the dask extra: pip install -e '.[dask]' (dask, distributed, bokeh)"


class EngineError(ValueError):
    """The engine cannot start or is not open: the message names the parameter and the fix."""


def require_dask() -> None:
    """Raise ``EngineError`` naming the fix when Dask's packages are not installed."""
    try:
        import dask.dataframe  # noqa: F401
        import distributed  # noqa: F401
    except ImportError as exc:
        raise EngineError(f"engine: dask needs Dask, which is not installed ({exc}); {_INSTALL}, "
                          "or use engine: pandas.") from None


def parse_memory(text: str) -> int:
    """Bytes in a memory size such as ``"2GB"``, ``"512 MiB"`` (Dask's notation); ``EngineError`` otherwise."""
    from dask.utils import parse_bytes

    try:
        value = int(parse_bytes(text))
    except (ValueError, TypeError, KeyError):
        raise EngineError(f"dask_worker_memory: {text!r} is not a memory size; write it like \"2GB\" or \"512MiB\".") from None
    if value < MIN_WORKER_MEMORY:
        raise EngineError(f"dask_worker_memory: {text!r} is below {MIN_WORKER_MEMORY / 1e6:.0f} MB, too little for a worker "
                          "to hold a partition; give each worker at least 1GB.")
    return value


def worker_count(dask_workers: int) -> int:
    """Workers of the local cluster: ``dask_workers``, or one per core for -1."""
    return (os.cpu_count() or 1) if dask_workers == -1 else dask_workers


def _scheduler_address(address: str) -> tuple[str, int]:
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("tcp", "tls") or not parts.hostname or not port:
        raise EngineError(f"dask_scheduler: {address!r} is not a scheduler address; write it as tcp://host:port, "
                          "e.g. tcp://10.0.0.5:8786, or leave it empty for a local cluster.")
    return parts.hostname, port


def _check_speaks_dask(address: str) -> None:
    """Refuse ``address`` unless a Dask scheduler answers there.

    Asked with one ``identity`` call, not a ``Client``: a port that accepts connections but speaks another protocol
    (a web server, a proxy) sends bytes Dask reads as a message of exabytes, and a half-built ``Client`` then
    waits out its timeout again when it is collected.
    """
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from distributed.core import rpc

    async def identity() -> dict:
        async with rpc(address, timeout=CONNECT_SECONDS) as scheduler:
            return await asyncio.wait_for(scheduler.identity(), CONNECT_SECONDS)

    try:
        # on a thread of its own: inside a notebook's kernel an event loop already runs on this one
        with quiet_libraries(), ThreadPoolExecutor(max_workers=1) as thread:
            answer = thread.submit(asyncio.run, identity()).result()
    except Exception as exc:  # any failure means the same to the user: not a Dask scheduler at that address
        # Dask reads another protocol's reply as a message of exabytes: its MemoryError says nothing to a user
        why = ("it accepts connections but speaks another protocol: a web server or a proxy?"
               if isinstance(exc, MemoryError) else type(exc).__name__)
        raise EngineError(f"dask_scheduler: {address} does not answer as a Dask scheduler "
                          f"({why}); check the address (the scheduler's port, usually 8786).") from None
    if not isinstance(answer, dict) or answer.get("type") != "Scheduler":
        kind = answer.get("type") if isinstance(answer, dict) else type(answer).__name__
        raise EngineError(f"dask_scheduler: {address} answers as a Dask {kind}, not a scheduler; give the "
                          "scheduler's address (its port, usually 8786).")


def check_engine_params(engine: str, dask_scheduler: str = "", dask_workers: int = -1,
                        dask_worker_memory: str = "2GB", machine_bytes: int | None = None) -> None:
    """Refuse (``EngineError``) Dask settings that cannot work, before any step starts.

    Nothing to check for the pandas engine. For Dask: the packages are installed; with ``dask_scheduler``
    the scheduler answers at that address within seconds, has at least one worker and runs the same
    package versions; without it, the local cluster's memory per worker is a size, at least 256 MB and
    not more than the machine has.
    """
    if engine != "dask":
        return
    require_dask()
    if not dask_scheduler:
        memory = parse_memory(dask_worker_memory)
        total = machine_bytes or _machine_memory()
        if total and memory > total:
            raise EngineError(f"dask_worker_memory: {dask_worker_memory!r} per worker is more than this machine's "
                              f"{total / 1e9:.1f} GB; lower it (workers x memory should fit the machine).")
        return
    host, port = _scheduler_address(dask_scheduler)
    try:  # a closed port answers at once; Dask's own connect would wait for its whole timeout
        with socket.create_connection((host, port), timeout=PROBE_SECONDS):
            pass
    except OSError as exc:
        raise EngineError(f"dask_scheduler: cannot reach {dask_scheduler} ({exc}); start the scheduler "
                          "(`dask scheduler`) or fix the address.") from None
    _check_speaks_dask(dask_scheduler)
    from distributed import Client

    try:
        with quiet_libraries(), Client(dask_scheduler, timeout=f"{CONNECT_SECONDS}s", set_as_default=False) as client:
            workers = len(client.scheduler_info()["workers"])
            if workers:
                client.get_versions(check=True)
    except (OSError, TimeoutError) as exc:
        raise EngineError(f"dask_scheduler: {dask_scheduler} does not answer as a Dask scheduler ({exc}); "
                          "check the address (the scheduler's port, usually 8786).") from None
    except ValueError as exc:
        raise EngineError(f"dask_scheduler: the cluster at {dask_scheduler} runs other package versions than this "
                          f"client ({str(exc).splitlines()[0]}); install the same versions everywhere.") from None
    if not workers:
        raise EngineError(f"dask_scheduler: the scheduler at {dask_scheduler} has no workers; start some "
                          f"(`dask worker {dask_scheduler}`) and try again.")


def _machine_memory() -> int | None:
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except Exception:  # noqa: BLE001 - informational bound only
        return None


@dataclass(repr=False)
class Engine:
    """An open engine: ``name`` (pandas | dask) and, for Dask, the client, the local cluster it started (None on an
    existing scheduler) and the workers' identity at the start (for the health check)."""

    name: str
    client: Any = None
    cluster: Any = None
    started: float = field(default_factory=time.perf_counter)
    identity: dict = field(default_factory=dict)
    _config: Any = None

    @property
    def is_dask(self) -> bool:
        return self.name == "dask"

    @property
    def dashboard_link(self) -> str | None:
        return self.client.dashboard_link if self.client is not None else None

    @property
    def address(self) -> str | None:
        return self.client.scheduler.address if self.client is not None else None

    def summary(self) -> pd.DataFrame:
        """Engine, scheduler, workers with their threads and memory limit, the dashboard link."""
        if not self.is_dask:
            return pd.DataFrame({"value": ["pandas: every step in this process", os.cpu_count()]},
                                index=["engine", "cores"])
        workers = self.client.scheduler_info()["workers"].values()
        rows = {"engine": "dask: " + ("a local cluster started for this run" if self.cluster is not None
                                      else f"the existing scheduler {self.address}"),
                "workers": len(workers), "threads per worker": ", ".join(sorted({str(w["nthreads"]) for w in workers})),
                "memory per worker": ", ".join(sorted({f"{w['memory_limit'] / 1e9:.1f} GB" for w in workers})),
                "dashboard": self.dashboard_link}
        return pd.DataFrame({"value": list(rows.values())}, index=list(rows))

    def _repr_html_(self) -> str:
        return self.summary().to_html()

    def __repr__(self) -> str:
        return self.summary().to_string()

    def health(self) -> dict[str, Any]:
        """What a run asserts about the cluster (``clusterhealth.cluster_health``); {} for pandas."""
        if not self.is_dask:
            return {}
        with quiet_libraries():
            return cluster_health(self.client, self.identity)

    def close(self) -> pd.DataFrame | None:
        """Close the client and the local cluster this engine started (an existing scheduler keeps running);
        returns the health table (None for pandas)."""
        if not self.is_dask or self.client is None:
            return None
        health = self.health()
        with quiet_libraries():
            logging.getLogger("distributed").setLevel(logging.CRITICAL)  # "worker still alive ... killing" at close
            self.client.close()
            if self.cluster is not None:
                self.cluster.close()
        if self._config is not None:
            self._config.__exit__(None, None, None)
        self.client = self.cluster = None
        return health_table(health, time.perf_counter() - self.started)

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_engine(params) -> Engine:
    """The engine ``params`` asks for: pandas (nothing to start), or a Dask client on ``dask_scheduler`` or on a
    new ``LocalCluster`` of ``dask_workers`` single-threaded workers with ``dask_worker_memory`` each and a
    dashboard on a free port. The client becomes Dask's default, so later helpers compute on it."""
    if params.engine != "dask":
        return Engine("pandas")
    require_dask()
    import dask
    from distributed import Client

    # One partition per file or row group, whatever columns a step selects: the held-out partitions are
    # named by number, and Dask would otherwise fuse the partitions of a narrow selection.
    config = dask.config.set({"dataframe.parquet.minimum-partition-size": 1})
    config.__enter__()
    with quiet_libraries():
        if params.dask_scheduler:
            cluster = None
            client = Client(params.dask_scheduler, timeout=f"{CONNECT_SECONDS}s")
        else:
            cluster = start_local_cluster(params)
            client = Client(cluster)
            # every worker registered before the health check's first look: on a loaded machine one worker
            # joined later, and the check read the newcomer as a restarted worker
            client.wait_for_workers(worker_count(params.dask_workers), timeout=WORKERS_SECONDS)
        logging.getLogger("distributed").setLevel(logging.ERROR)
        from mlhelpers.core.workermemory import PLUGIN_NAME, ReleaseMemory  # imports distributed: Dask only

        client.register_plugin(ReleaseMemory(), name=PLUGIN_NAME)  # freed memory back to the system after each task
        engine = Engine("dask", client=client, cluster=cluster, _config=config)
        engine.identity = worker_identity(client)
    return engine


def start_local_cluster(params):
    """A ``LocalCluster`` of ``dask_workers`` single-threaded worker processes with ``dask_worker_memory`` each,
    logging errors only, its dashboard on a free port (8787 is often taken by another cluster)."""
    require_dask()
    from distributed import LocalCluster

    with quiet_libraries():
        return LocalCluster(n_workers=worker_count(params.dask_workers), threads_per_worker=1,
                            memory_limit=params.dask_worker_memory, processes=True,
                            dashboard_address=":0", silence_logs=logging.ERROR)


def current_client():
    """The Dask client ``open_engine`` made the default; ``EngineError`` when none is open."""
    try:
        from distributed import get_client

        return get_client()
    except (ImportError, ValueError):
        raise EngineError("no Dask engine is open: run the engine cell (engine.open_engine(params)) first, "
                          "or set engine: pandas.") from None


