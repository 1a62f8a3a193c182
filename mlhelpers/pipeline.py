"""Orchestration: run the step notebooks with papermill into a new run folder, with a manifest.

Computation lives in the other modules; this one only sequences notebooks and records what happened.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlhelpers.core.artifacts import MANIFEST, SCHEMA_VERSION, STEPS, artifact_path, write_json
from mlhelpers.core.engine import start_local_cluster
from mlhelpers.core.environment import git_state, package_versions
from mlhelpers.core.params import PROJECT_ROOT, Params, ParamsError
from mlhelpers.core.sources import data_fingerprint

NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
KERNEL_NAME = "mlhelpers"


@dataclass
class RunResult:
    """What a pipeline run left behind."""

    run_dir: Path
    manifest: dict[str, Any]

    @property
    def succeeded(self) -> bool:
        return self.manifest["status"] == "succeeded"


def parse_steps(text: str | None) -> list[str]:
    """``"explore,baseline"`` -> the steps in pipeline order; unknown names raise ``ParamsError``."""
    if not text:
        return list(STEPS)
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in STEPS]
    if unknown or not names:
        raise ParamsError(f"--steps {text!r}: unknown step {', '.join(unknown) or '(none)'}; "
                          f"choose from {', '.join(STEPS)}, comma-separated.")
    return [step for step in STEPS if step in names]


def check_step_inputs(steps: list[str], based_on: Path | None) -> None:
    """Refuse, before any run folder exists, a step whose inputs no step or earlier run provides."""
    first = list(STEPS).index(steps[0])
    needed = list(STEPS)[:first]
    if not needed:
        return
    if based_on is None:
        raise ParamsError(f"step {steps[0]!r} needs the artifacts of {', '.join(needed)}: add them to --steps "
                          "or pass --from <an earlier run folder> to start from its results.")
    for step in needed:
        if not (based_on / STEPS[step].folder).is_dir():
            raise ParamsError(f"--from {based_on}: it has no {STEPS[step].folder}/ folder; "
                              f"pick a run whose {step} step succeeded (see `mlh runs`).")


def new_run_dir(runs_root: Path, name: str) -> Path:
    """A fresh ``<runs_root>/<name>/<run-id>`` folder; never one that exists already."""
    parent = runs_root / name
    parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for attempt in range(1000):
        candidate = parent / (stamp if attempt == 0 else f"{stamp}-{attempt}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a new run folder under {parent}")


def ensure_kernel() -> str:
    """Register this interpreter as the ``mlhelpers`` Jupyter kernel (inside its prefix) if needed."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
        if spec.argv and Path(spec.argv[0]).resolve() == Path(sys.executable).resolve():
            return KERNEL_NAME
    except NoSuchKernel:
        pass
    from ipykernel.kernelspec import install

    install(kernel_name=KERNEL_NAME, display_name="Python (mlhelpers)", prefix=sys.prefix)
    return KERNEL_NAME


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def start_manifest(params: Params, run_dir: Path, params_file: Path | None, steps: list[str],
                   based_on: Path | None) -> dict[str, Any]:
    """The manifest of a run about to start: params as the notebooks get them, data fingerprint,
    versions, git state."""
    return {
        "schema_version": SCHEMA_VERSION,
        "params_file": str(params_file) if params_file else None,
        "params": step_parameters(params, run_dir),
        "data": data_fingerprint(params.data_file),  # a folder or glob: every file's name, size and bytes
        "versions": package_versions(),
        "git": git_state(),
        "seed": params.seed,
        "engine": params.engine,
        "based_on": str(based_on) if based_on else None,
        "status": "running",
        "started_at": _now(),
        "finished_at": None,
        "seconds": None,
        "steps": {step: {"status": "pending", "seconds": None, "notebook": STEPS[step].notebook} for step in steps},
    }


def step_parameters(params: Params, run_dir: Path) -> dict[str, Any]:
    """Every parameter as the step notebooks receive it, pointed at this run's folder."""
    return params.model_dump(mode="json") | {"run_dir": str(run_dir)}


def _copy_earlier_results(based_on: Path, run_dir: Path, steps: list[str]) -> None:
    import shutil

    for step in list(STEPS)[: list(STEPS).index(steps[0])]:
        shutil.copytree(based_on / STEPS[step].folder, run_dir / STEPS[step].folder)


def _failure(exc: BaseException, step: str, notebook: Path) -> dict[str, Any]:
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        return {"step": step, "cell": exc.exec_count, "cell_index": exc.cell_index,
                "message": f"{exc.ename}: {exc.evalue}", "notebook": str(notebook)}
    return {"step": step, "cell": None, "cell_index": None,
            "message": f"{type(exc).__name__}: {exc}", "notebook": str(notebook)}


@contextmanager
def _local_kernel_sockets():
    """Kernel config for a headless step: talk to the kernel over Unix sockets in a private temp folder.

    The default TCP transport carries code and outputs unencrypted on a loopback port (ipykernel warns
    about it in every step); IPC sockets are files only this user can reach, removed afterwards.
    """
    from traitlets.config import Config

    with tempfile.TemporaryDirectory(prefix="mlh-kernel-") as folder:
        yield Config({"KernelManager": {"transport": "ipc", "ip": str(Path(folder) / "kernel")}})


def run_pipeline(params: Params, steps: list[str], run_dir: Path, params_file: Path | None = None,
                 based_on: Path | None = None, progress: bool = True,
                 notebooks_dir: Path = NOTEBOOKS_DIR) -> RunResult:
    """Execute ``steps`` in order into the (new, empty) ``run_dir``; stop at the first failure.

    The manifest is rewritten after every step, so a crash still leaves an honest record.
    """
    manifest = start_manifest(params, run_dir, params_file, steps, based_on)
    manifest_path = run_dir / MANIFEST
    if based_on is not None:
        _copy_earlier_results(based_on, run_dir, steps)
    write_json(manifest_path, manifest)
    kernel = ensure_kernel()
    values = step_parameters(params, run_dir)
    cluster = None
    if params.engine == "dask" and not params.dask_scheduler:
        # One local cluster for the whole run, started here so its dashboard link is printed before any step;
        # the steps connect to it as to an existing scheduler.
        cluster = start_local_cluster(params)
        values["dask_scheduler"] = cluster.scheduler_address
        manifest["dask"] = {"local_cluster": True, "workers": len(cluster.workers),
                            "worker_memory": params.dask_worker_memory, "dashboard": cluster.dashboard_link}
        if progress:
            print(f"Dask local cluster: {len(cluster.workers)} workers x {params.dask_worker_memory}; "
                  f"dashboard {cluster.dashboard_link}", flush=True)
    try:
        return _run_steps(steps, run_dir, manifest, manifest_path, kernel, values, progress, notebooks_dir)
    finally:
        if cluster is not None:
            cluster.close()


def _run_steps(steps: list[str], run_dir: Path, manifest: dict[str, Any], manifest_path: Path, kernel: str,
               values: dict[str, Any], progress: bool, notebooks_dir: Path) -> RunResult:
    import papermill

    started = time.perf_counter()
    for position, step in enumerate(steps, start=1):
        notebook = run_dir / STEPS[step].notebook
        record = manifest["steps"][step]
        record["status"] = "running"
        write_json(manifest_path, manifest)
        if progress:
            print(f"[{position}/{len(steps)}] {step}: {notebooks_dir / STEPS[step].notebook} -> {notebook}", flush=True)
        step_started = time.perf_counter()
        source = notebooks_dir / STEPS[step].notebook
        try:
            # Pass only what the notebook declares: the others keep their defaults, and papermill
            # warns about every undeclared name it is given.
            declared = papermill.inspect_notebook(str(source))
            parameters = {key: value for key, value in values.items() if key in declared}
            with _local_kernel_sockets() as config:
                papermill.execute_notebook(
                    str(source), str(notebook), parameters=parameters, kernel_name=kernel,
                    cwd=str(PROJECT_ROOT), progress_bar=progress, log_output=False, config=config,
                )
            record["status"] = "succeeded"
        except BaseException as exc:  # a failed cell, a dead kernel or Ctrl-C: record it, then stop
            record["status"] = "failed"
            manifest["error"] = _failure(exc, step, notebook)
            if not isinstance(exc, Exception):
                raise
        finally:
            record["seconds"] = round(time.perf_counter() - step_started, 2)
            failed = record["status"] != "succeeded"
            if failed or position == len(steps):
                manifest["status"] = "failed" if failed else "succeeded"
                manifest["finished_at"] = _now()
                manifest["seconds"] = round(time.perf_counter() - started, 2)
            write_json(manifest_path, manifest)
        if record["status"] == "failed":
            break
    return RunResult(run_dir=run_dir, manifest=manifest)


def headline_metric(run_dir: Path) -> str:
    """The run's key figure: the test score if exported, else the best cross-validated score."""
    metrics_path = artifact_path(run_dir, "metrics")
    if metrics_path.exists():
        metrics = json.loads(metrics_path.read_text())
        name = metrics.get("primary_metric")
        value = metrics.get("test", {}).get(name)
        if value is not None:
            return f"test {name} {value:.4f}"
    spec_path = artifact_path(run_dir, "model_spec")
    if spec_path.exists():
        spec = json.loads(spec_path.read_text())
        name = spec.get("primary_metric")
        score = spec.get("cv", {}).get(name, {})
        if "mean" in score:
            return f"cv {name} {score['mean']:.4f} ± {score.get('std', 0):.4f} ({spec.get('model')})"
    return "-"


def list_runs(runs_root: Path) -> list[dict[str, Any]]:
    """Every run under ``runs_root`` (newest first): name, id, status, duration, headline metric."""
    rows = []
    for manifest_path in runs_root.glob(f"*/*/{MANIFEST}"):
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        run_dir = manifest_path.parent
        rows.append({
            "run": f"{run_dir.parent.name}/{run_dir.name}",
            "status": manifest.get("status", "?"),
            "steps": ",".join(manifest.get("steps", {})),
            "started": manifest.get("started_at") or "",
            "seconds": manifest.get("seconds"),
            "headline": headline_metric(run_dir),
        })
    return sorted(rows, key=lambda row: row["started"], reverse=True)
