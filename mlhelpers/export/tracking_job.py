"""MLflow logging in a second process, off the export notebook's critical path (``TrackingJob``).

Measured (issue 12, the demo's export step): MLflow cost the kernel 5.6 CPU seconds, its import (2.2), opening
the SQLite store (2.1: its schema check, more on a new store: the migrations) and ``log_model``, all in a row at
the end of the step. The job's process imports MLflow and opens the store at the start of the step, while the
notebook refits and saves; it logs (``tracking.log_run``) and loads the logged model back while the notebook
scores the data file, and ``wait`` returns what ``tracking.log_export_run`` and ``compare_logged_model`` would.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from mlhelpers.export import ExportError
from mlhelpers.export.tracking import (TrackingResult, compare_predictions, log_run, logged_input, open_store,
                                       served_predictions)

__all__ = ["TrackingJob"]

COMPARE_ROWS = 200  # test rows the logged model is loaded back and checked on (compare_logged_model's default)


class TrackingJob:
    """The export's MLflow run, logged by a second process. Created early (after the parameters are validated),
    the process imports MLflow and opens ``tracking_uri``'s store (creating ``experiment`` when missing) at
    once, then waits idle; ``log`` hands it the run, ``wait`` returns the ``TrackingResult`` and the comparison
    of the logged model with the in-memory pipeline. A failure anywhere in it is raised by ``wait_ready`` or
    ``wait`` as ``ExportError`` with the process's last lines. A process never given a run ends when this
    object (or the kernel) goes: it reads end-of-file."""

    def __init__(self, tracking_uri: str, experiment: str) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="mlh-mlflow-"))
        self.sent = False
        self.ready = False
        self.pipeline = self.frame = None
        with open(self.folder / "stderr.txt", "w") as stderr:
            # its own session: a kernel stopped with SIGINT to its group would interrupt it mid-write of the store
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mlhelpers.export.tracking_job", str(self.folder), tracking_uri, experiment],
                text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, start_new_session=True)

    def wait_ready(self) -> "TrackingJob":
        """Wait until the process has imported MLflow and opened the store (so it stays idle while serving is
        measured); raise ``ExportError`` if it failed."""
        if not self.ready:
            for line in self.process.stdout:  # a library may print at import: skip to the job's word
                if line.strip() == "ready":
                    self.ready = True
                    return self
            self._fail()
        return self

    def log(self, params, data, pipeline) -> "TrackingJob":
        """Hand the run to the process (``tracking.log_export_run(params, data)``, then the logged model loaded
        back on ``COMPARE_ROWS`` test rows) and return at once; ``pipeline`` is compared with it in ``wait``."""
        self.wait_ready()
        rows = data.X_test.head(COMPARE_ROWS)
        self.pipeline, self.frame = pipeline, logged_input(params.run_path, rows, COMPARE_ROWS)
        # private temp files this process writes and its own child reads back: pickle keeps every dtype as is
        rows.to_pickle(self.folder / "rows.pkl")
        (self.folder / "job.json").write_text(json.dumps({"params": params.model_dump(mode="json"),
                                                          "spec": data.spec}), encoding="utf-8")
        try:
            self.process.stdin.write("go\n")
            self.process.stdin.close()
        except (BrokenPipeError, OSError):
            pass  # the process already failed: wait() says why
        self.sent = True
        return self

    def wait(self) -> tuple[TrackingResult, pd.DataFrame]:
        """Wait for the run to be logged; return the ``TrackingResult`` and ``compare_logged_model``'s table."""
        if not self.sent:
            raise ExportError("The MLflow run was never handed over: call log(params, data, pipeline) before wait().")
        code = self.process.wait()
        if code:
            self._fail()
        done = json.loads((self.folder / "result.json").read_text(encoding="utf-8"))
        served = pd.read_pickle(self.folder / "served.pkl")
        shutil.rmtree(self.folder, ignore_errors=True)
        result = TrackingResult(**(done | {"run_dir": Path(done["run_dir"])}))
        return result, compare_predictions(result, served, self.pipeline, self.frame)

    def _fail(self) -> None:
        code = self.process.wait()
        errors = (self.folder / "stderr.txt").read_text(errors="replace")
        shutil.rmtree(self.folder, ignore_errors=True)
        raise ExportError(f"MLflow logging failed in its process (exit code {code}); its last lines:\n{errors[-2000:]}")

    def _repr_markdown_(self) -> str:
        if self.sent:
            return "MLflow: a second process is logging the run and the model while this notebook goes on."
        return "MLflow: a second process is importing MLflow and opening the tracking store."


def _main(folder: Path, tracking_uri: str, experiment: str) -> None:
    from mlhelpers.core.params import Params, parse_params
    from mlhelpers.core.quiet import quiet_libraries

    with quiet_libraries():
        import mlflow.pyfunc  # noqa: F401  (the slow import, done while the notebook refits)
        from mlflow.utils.requirements_utils import warn_dependency_requirement_mismatches

        open_store(tracking_uri, experiment)
        # log_model checks the pinned requirements against the installed packages; its first check maps every
        # installed package's files to modules (2.5 s here), so it is done now rather than at the step's end
        warn_dependency_requirement_mismatches(["mlflow"])
        _import_what_logging_imports()
    print("ready", flush=True)
    os.dup2(2, 1)  # nothing more on the pipe nobody reads after "ready": a library's prints go to the error file
    if sys.stdin.readline().strip() != "go":  # end-of-file: the job was never handed a run, nobody will wait
        shutil.rmtree(folder, ignore_errors=True)
        return
    job: dict[str, Any] = json.loads((folder / "job.json").read_text(encoding="utf-8"))
    params = parse_params(Params, job["params"])
    rows = pd.read_pickle(folder / "rows.pkl")
    result = log_run(params, job["spec"], rows)
    served_predictions(result, logged_input(result.run_dir, rows, COMPARE_ROWS)).to_pickle(folder / "served.pkl")
    (folder / "result.json").write_text(json.dumps(result.__dict__ | {"run_dir": str(result.run_dir)}),
                                        encoding="utf-8")
    # the export notebook waits for this process to end: its teardown's last garbage collection over every object
    # MLflow's imports made took 1 s; frozen objects are left to the exit (MLflow's exit handlers still run)
    gc.freeze()


def _import_what_logging_imports() -> None:
    """Import now, before "ready", the modules MLflow imports when the run starts and the logged model is loaded
    back: they were 0.7 s of the step's last wait (its Databricks check imports IPython, its source-commit tag
    GitPython; the served ONNX graph needs onnxruntime). A missing one is MLflow's concern, not this job's."""
    for module in ("IPython", "git", "onnxruntime"):
        try:
            importlib.import_module(module)
        except ImportError:
            pass


if __name__ == "__main__":  # TrackingJob's second process: python -m mlhelpers.export.tracking_job FOLDER URI EXPERIMENT
    _main(Path(sys.argv[1]), sys.argv[2], sys.argv[3])
