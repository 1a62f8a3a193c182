"""Give freed memory back to the system on every Dask worker after each task, so a worker's resident memory follows
what it holds rather than the most it ever held.

A worker pauses at 80% of its memory limit and only resumes when its resident memory drops, but two allocators
keep what a task freed: pyarrow's memory pool (mimalloc) and glibc's heap. On a 2 x 750 MB cluster running the three
steps over 20 MB partitions, a worker sat at 604 MB holding 25 MB of data: paused for good, and the run stalled.
Releasing both (``pyarrow``'s ``release_unused``, then ``malloc_trim``) brought it to 400 MB. Dask documents the
glibc call for this (Worker memory management, "Manually trim memory"); it does not call it itself. Imported only
on the Dask engine (it imports ``distributed``).
"""

from __future__ import annotations

import sys

from distributed.diagnostics.plugin import WorkerPlugin

from mlhelpers.core.heap import return_freed_heap

__all__ = ["ReleaseMemory", "release_memory", "PLUGIN_NAME"]

PLUGIN_NAME = "mlhelpers-release-memory"


def release_memory() -> None:
    """Hand pyarrow's unused pool memory and the free heap pages (``core.heap``) back to the system (a few ms)."""
    pyarrow = sys.modules.get("pyarrow")  # a task that never touched pyarrow has nothing in its pool
    if pyarrow is not None:
        pyarrow.default_memory_pool().release_unused()
    return_freed_heap()


class ReleaseMemory(WorkerPlugin):
    """``release_memory`` whenever a task on this worker finishes executing."""

    def transition(self, key, start: str, finish: str, **kwargs) -> None:
        if start == "executing":
            release_memory()
