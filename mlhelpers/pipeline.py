"""Orchestration: run the step notebooks with papermill into a new run folder, with a manifest.

Computation lives in the other modules; this one only sequences notebooks and records what happened.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlhelpers.cache import cached_explore, explore_key, restore_explore, store_explore
from mlhelpers.core.artifacts import AFTER_STEPS, MANIFEST, SCHEMA_VERSION, STEPS, write_json
from mlhelpers.core.engine import start_local_cluster
from mlhelpers.core.environment import git_state, package_versions
from mlhelpers.core.params import PROJECT_ROOT, Params, ParamsError
from mlhelpers.core.sources import data_fingerprint
from mlhelpers.execution import ensure_kernel, execute_notebook
from mlhelpers.lifecycle import Interrupted, check_based_on, process_record, run_interruptibly, stop_signals

NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"


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


def check_step_inputs(steps: list[str], based_on: Path | None, data_file: Path | None = None) -> None:
    """Refuse, before any run folder exists, a step whose inputs no step or earlier run provides: with
    ``--from``, every step before ``steps`` must have succeeded in that run, on the same data
    (``mlhelpers.lifecycle.check_based_on``)."""
    first = list(STEPS).index(steps[0])
    needed = list(STEPS)[:first]
    if not needed:
        return
    if based_on is None:
        raise ParamsError(f"step {steps[0]!r} needs the artifacts of {', '.join(needed)}: add them to --steps "
                          "or pass --from <an earlier run folder> to start from its results.")
    check_based_on(based_on, steps, data_file)


def new_run_dir(runs_root: Path, name: str, prefix: str = "", what: str = "run") -> Path:
    """A fresh ``<runs_root>/<name>/<prefix><time-stamp>`` folder; never one that exists already."""
    parent = runs_root / name
    parent.mkdir(parents=True, exist_ok=True)
    stamp = prefix + datetime.now().strftime("%Y%m%d-%H%M%S")
    for attempt in range(1000):
        candidate = parent / (stamp if attempt == 0 else f"{stamp}-{attempt}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a new {what} folder under {parent}")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def start_manifest(params: Params, run_dir: Path, params_file: Path | None, steps: list[str],
                   based_on: Path | None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The manifest of a run about to start: params as the notebooks get them (and the overrides of the
    params file among them), data fingerprint, versions, git state."""
    return {
        "schema_version": SCHEMA_VERSION,
        "params_file": str(params_file) if params_file else None,
        "params": step_parameters(params, run_dir),
        "overrides": dict(overrides or {}),
        "data": data_fingerprint(params.data_file),  # a folder or glob: every file's name, size and bytes
        "engine": params.engine,
        "versions": package_versions(),
        "git": git_state(),
        "seed": params.seed,
        "based_on": str(based_on) if based_on else None,
        "status": "running",
        "started_at": _now(),
        "finished_at": None,
        "seconds": None,
        "steps": {step: {"status": "pending", "seconds": None, "notebook": STEPS[step].notebook} for step in steps},
        "process": process_record(),  # so a run killed without a word shows as interrupted, not running
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

    if isinstance(exc, Interrupted):
        return {"step": step, "cell": None, "cell_index": None, "reason": "interrupted", "signal": exc.signal_name,
                "message": f"interrupted by {exc.signal_name}", "notebook": str(notebook)}
    if isinstance(exc, KeyboardInterrupt) or (isinstance(exc, PapermillExecutionError)
                                              and exc.ename == "KeyboardInterrupt"):
        return {"step": step, "cell": getattr(exc, "exec_count", None), "cell_index": getattr(exc, "cell_index", None),
                "reason": "interrupted", "message": "interrupted (KeyboardInterrupt)", "notebook": str(notebook)}
    if isinstance(exc, PapermillExecutionError):
        return {"step": step, "cell": exc.exec_count, "cell_index": exc.cell_index, "reason": "error",
                "message": f"{exc.ename}: {exc.evalue}", "notebook": str(notebook)}
    return {"step": step, "cell": None, "cell_index": None, "reason": "error",
            "message": f"{type(exc).__name__}: {exc}", "notebook": str(notebook)}


def _reuse_explore(cache_root: Path | None, values: dict[str, Any], manifest: dict[str, Any], source: Path,
                   run_dir: Path) -> str | None:
    """With a cache, the explore key of this run (recorded in the manifest); restore a hit into ``run_dir`` and
    return the run folder that computed it."""
    if cache_root is None:
        return None
    key = explore_key(values, manifest["data"]["sha256"], source)
    manifest["steps"]["explore"]["cache_key"] = key
    entry = cached_explore(cache_root, key)
    return restore_explore(entry, run_dir) if entry is not None else None


def run_pipeline(params: Params, steps: list[str], run_dir: Path, params_file: Path | None = None,
                 based_on: Path | None = None, progress: bool = True,
                 notebooks_dir: Path = NOTEBOOKS_DIR, overrides: dict[str, Any] | None = None,
                 cache_root: Path | None = None) -> RunResult:
    """Execute ``steps`` in order into the (new, empty) ``run_dir``; stop at the first failure.

    The manifest is rewritten after every step, so a crash still leaves an honest record. SIGTERM, SIGINT
    and SIGHUP stop the running step (its kernel), mark the run failed with reason ``interrupted`` and
    raise ``mlhelpers.lifecycle.Interrupted``; a run killed outright is shown as interrupted by ``mlhelpers.runs.list_runs``.
    With a ``cache_root`` the explore step is reused from an earlier run with the same explore parameters,
    data and code (``mlhelpers.cache``; the manifest says so under ``steps.explore.reused_from``), and a
    computed one is kept for later runs.
    """
    with stop_signals() as received:
        return _run_steps(params, steps, run_dir, params_file, based_on, progress, notebooks_dir, overrides,
                          cache_root, received)


def _run_steps(params: Params, steps: list[str], run_dir: Path, params_file: Path | None, based_on: Path | None,
               progress: bool, notebooks_dir: Path, overrides: dict[str, Any] | None, cache_root: Path | None,
               received: dict[str, str]) -> RunResult:
    manifest = start_manifest(params, run_dir, params_file, steps, based_on, overrides)
    manifest_path = run_dir / MANIFEST
    if based_on is not None:
        _copy_earlier_results(based_on, run_dir, steps)
    write_json(manifest_path, manifest)
    ensure_kernel()
    values = step_parameters(params, run_dir)
    with _dask_cluster(params, values, manifest, progress):
        return _execute_steps(steps, run_dir, manifest, manifest_path, values, progress, notebooks_dir, cache_root,
                              received)


@contextmanager
def _dask_cluster(params: Params, values: dict[str, Any], manifest: dict[str, Any], progress: bool):
    """Engine dask without a scheduler: one local cluster for the whole run, started here so its dashboard link
    is printed before any step; the steps connect to it as to an existing scheduler (``values``). Closed at
    the end of the run, whatever happened."""
    if params.engine != "dask" or params.dask_scheduler:
        yield None
        return
    cluster = start_local_cluster(params)
    values["dask_scheduler"] = cluster.scheduler_address
    manifest["dask"] = {"local_cluster": True, "workers": len(cluster.workers),
                        "worker_memory": params.dask_worker_memory, "dashboard": cluster.dashboard_link}
    if progress:
        print(f"Dask local cluster: {len(cluster.workers)} workers x {params.dask_worker_memory}; "
              f"dashboard {cluster.dashboard_link}", flush=True)
    try:
        yield cluster
    finally:
        cluster.close()


def _execute_steps(steps: list[str], run_dir: Path, manifest: dict[str, Any], manifest_path: Path,
                   values: dict[str, Any], progress: bool, notebooks_dir: Path, cache_root: Path | None,
                   received: dict[str, str]) -> RunResult:
    started = time.perf_counter()
    for position, step in enumerate(steps, start=1):
        notebook = run_dir / STEPS[step].notebook
        source = notebooks_dir / STEPS[step].notebook
        record = manifest["steps"][step]
        record["status"] = "running"
        write_json(manifest_path, manifest)
        step_started = time.perf_counter()
        try:
            reused = _reuse_explore(cache_root, values, manifest, source, run_dir) if step == "explore" else None
            if reused is not None:
                record["reused_from"] = reused
                if progress:
                    print(f"[{position}/{len(steps)}] {step}: reused from {reused} (same parameters and data)", flush=True)
            else:
                if progress:
                    print(f"[{position}/{len(steps)}] {step}: {source} -> {notebook}", flush=True)
                run_interruptibly(lambda: execute_notebook(source, notebook, values, progress=progress), received)
                if step == "explore" and cache_root is not None:
                    store_explore(cache_root, record["cache_key"], run_dir)
            record["status"] = "succeeded"
        except BaseException as exc:  # a failed cell, a dead kernel or a stop signal: record it, then stop
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


def run_after_step(step: str, output_dir: Path, values: dict[str, Any], progress: bool = False,
                   notebooks_dir: Path = NOTEBOOKS_DIR) -> dict[str, Any] | None:
    """Execute an after-pipeline notebook (``AFTER_STEPS``: compare, monitor) headless into ``output_dir``
    with ``values``; return None when it ran, else the failure (step, cell, message, notebook)."""
    notebook = output_dir / AFTER_STEPS[step].notebook
    output_dir.mkdir(parents=True, exist_ok=True)
    try:
        execute_notebook(notebooks_dir / AFTER_STEPS[step].notebook, notebook, values, progress=progress)
    except Exception as exc:  # a failed cell or a dead kernel: the caller reports it
        return _failure(exc, step, notebook)
    return None
