"""Running one notebook headless, as every step and `mlh drift` do: papermill (imported without its slowest
optional dependency) on the project's kernel (``mlhelpers.kernel``), over private sockets, saving the executed
notebook at most once a second.
"""

from __future__ import annotations

import functools
import json
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlhelpers.core.artifacts import atomic_path
from mlhelpers.core.params import PROJECT_ROOT

KERNEL_NAME = "mlhelpers"
KERNEL_MODULE = "mlhelpers.kernel"  # the kernel's entry point (python -m)


def ensure_kernel() -> str:
    """Register this interpreter as the ``mlhelpers`` Jupyter kernel (inside its prefix) if needed: ipykernel's
    kernel started through ``mlhelpers.kernel`` (a faster exit)."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
        if (spec.argv and Path(spec.argv[0]).resolve() == Path(sys.executable).resolve()
                and KERNEL_MODULE in spec.argv):
            return KERNEL_NAME
    except NoSuchKernel:
        pass
    from ipykernel.kernelspec import install

    folder = Path(install(kernel_name=KERNEL_NAME, display_name="Python (mlhelpers)", prefix=sys.prefix))
    spec_file = folder / "kernel.json"
    spec = json.loads(spec_file.read_text(encoding="utf-8"))
    spec["argv"] = [KERNEL_MODULE if part == "ipykernel_launcher" else part for part in spec["argv"]]
    with atomic_path(spec_file) as temp:  # a kernel starting meanwhile reads the old spec or the new, never half
        temp.write_text(json.dumps(spec, indent=1), encoding="utf-8")
    return KERNEL_NAME


@contextmanager
def _local_kernel_sockets():
    """Kernel config for a headless step: talk to the kernel over Unix sockets in a private temp folder.

    The default TCP transport carries code and outputs unencrypted on a loopback port (ipykernel warns
    about it in every step); IPC sockets are files only this user can reach, removed afterwards.
    """
    from traitlets.config import Config

    with tempfile.TemporaryDirectory(prefix="mlh-kernel-") as folder:
        yield Config({"KernelManager": {"transport": "ipc", "ip": str(Path(folder) / "kernel")}})


def import_papermill():
    """papermill, imported in a third of the time: without ``rfc3987_syntax``.

    papermill imports nbformat, which imports jsonschema, whose format checker imports ``rfc3987_syntax``
    when it is installed (jupyterlab brings it), and that module compiles a Lark grammar at import: 1-2 s of
    CPU (measured: ``import papermill`` 14.8 s against 3.3 s on the loaded 2-core machine), for URI format
    checks that notebook validation never makes. It is hidden only while jsonschema decides, then visible again.
    """
    hidden = "rfc3987_syntax" not in sys.modules and "jsonschema" not in sys.modules
    if hidden:
        sys.modules["rfc3987_syntax"] = None  # makes `import rfc3987_syntax` raise ImportError, which jsonschema expects
    try:
        import papermill
    finally:
        if hidden:
            del sys.modules["rfc3987_syntax"]
    return papermill


def execute_notebook(source: Path, output: Path, values: dict[str, Any], progress: bool = False) -> None:
    """Run the notebook ``source`` headless into ``output`` with the project's kernel, passing only the
    ``values`` it declares (the others keep their defaults; papermill warns about every undeclared name).
    Raises papermill's ``PapermillExecutionError`` when a cell fails."""
    papermill = import_papermill()
    declared = papermill.inspect_notebook(str(source))
    parameters = {key: value for key, value in values.items() if key in declared}
    with _local_kernel_sockets() as config:
        papermill.execute_notebook(
            str(source), str(output), parameters=parameters, kernel_name=ensure_kernel(),
            cwd=str(PROJECT_ROOT), progress_bar=progress, log_output=False, config=config,
            engine_name=_throttled_engine(),
        )


SAVE_EVERY_SECONDS = 1.0  # the executed notebook on disk lags the kernel by at most this much (and one cell)
THROTTLED_ENGINE = "mlhelpers-throttled"


@functools.cache
def _throttled_engine() -> str:
    """Register (once) and name papermill's nbclient engine saving the executed notebook at most once a second.

    Papermill writes the whole notebook before and after every cell (nbformat copies, validates and encodes
    it: 13 ms for the export step's, far more with the baseline's figures), while the kernel waits: 75 writes,
    1 s of the demo's export step. Skipped writes only delay what is on disk: papermill still writes the
    notebook when a cell fails and when the run ends, and during a long cell as before (``autosave_cell``).
    """
    from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines

    class ThrottledManager(NotebookExecutionManager):
        saved = False

        def save(self, **kwargs):
            if self.saved and (self.now() - self.last_save_time).total_seconds() < SAVE_EVERY_SECONDS:
                return
            super().save(**kwargs)  # the first save always: the notebook is on disk from the start
            self.saved = True

    class ThrottledEngine(NBClientEngine):
        manager = ThrottledManager

        # papermill's Engine.execute_notebook with the manager above: papermill offers no other way to pass one
        @classmethod
        def execute_notebook(cls, nb, kernel_name, output_path=None, progress_bar=True, log_output=False,
                             autosave_cell_every=30, **kwargs):
            manager = cls.manager(nb, output_path=output_path, progress_bar=progress_bar, log_output=log_output,
                                       autosave_cell_every=autosave_cell_every)
            manager.notebook_start()
            try:
                cls.execute_managed_notebook(manager, kernel_name, log_output=log_output, **kwargs)
            finally:
                manager.cleanup_pbar()
                manager.notebook_complete()
            return manager.nb

    papermill_engines.register(THROTTLED_ENGINE, ThrottledEngine)
    return THROTTLED_ENGINE
