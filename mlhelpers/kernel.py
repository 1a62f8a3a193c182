"""The Jupyter kernel the notebooks run in (``mlhelpers.execution.ensure_kernel`` registers it): ipykernel's,
with a faster exit.

Papermill waits for the kernel to exit after a step's last cell. The interpreter's last garbage collection then
walks every object the step's imports made: with scikit-learn and skops loaded, 0.6 s on an idle machine and
1.5 s under load, for every step. Freezing the objects at exit (``gc.freeze``, run after every other exit
handler) leaves them to the process's end instead. Nothing of a step lives only in memory by then: its
artifacts are written and closed by the cells.
"""

import atexit
import gc
import sys
from pathlib import Path


def main() -> None:
    # as ipykernel_launcher does: the working folder off sys.path while ipykernel loads (the kernel adds it back)
    if sys.path and (sys.path[0] == "" or Path(sys.path[0]) == Path.cwd()):
        del sys.path[0]
    atexit.register(gc.freeze)  # registered first, so it runs last
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


if __name__ == "__main__":
    main()
