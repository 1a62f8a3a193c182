"""Hand memory the process freed back to the system: glibc keeps freed heap pages for reuse, so a process's
resident memory otherwise stays at the most it ever held.

Measured: onnxruntime's load of the 500-tree Ames forest kept 227 MB, 105 MB after the trim
(``formats.onnx_io``); a 750 MB Dask worker sat paused at 604 MB holding 25 MB of data, 400 MB after the trim and
pyarrow's pool release (``core.workermemory``). Dask documents this call (Worker memory management, "Manually
trim memory").
"""

from __future__ import annotations

import ctypes
import ctypes.util

__all__ = ["return_freed_heap"]


def return_freed_heap() -> None:
    """``malloc_trim(0)``: a few ms; a no-op where glibc is absent (macOS, musl)."""
    try:
        ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)
    except (OSError, AttributeError, TypeError):
        pass
