"""Reuse of the explore step's output across runs: the same explore parameters on the same data, with the same
code and libraries, give the same ``explore/`` folder, so a rerun or a sweep variant copies it instead of
recomputing it. Orchestration bookkeeping for ``mlhelpers.pipeline``; it computes nothing about the data.

The key is a hash of the parameters the explore notebook declares (``run_dir`` and ``data_path`` aside: the
data counts by its content), the data file's sha256, the explore notebook and every ``mlhelpers`` source
file, and the versions of the key libraries. Entries live in ``<runs root>/.cache/explore/<key>/``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from mlhelpers.core.artifacts import STEPS
from mlhelpers.core.environment import package_versions

__all__ = ["explore_key", "cached_explore", "store_explore", "restore_explore"]

_PACKAGE = Path(__file__).resolve().parent
_ORIGIN = "origin.json"
# Where a step runs, not what it computes: a local cluster's address is new in every run (the data is keyed by
# its sha256, not its path).
_NOT_KEYED = {"run_dir", "data_path", "dask_scheduler", "dask_workers", "dask_worker_memory"}


def _code_digest(notebook: Path) -> str:
    digest = hashlib.sha256(notebook.read_bytes())
    for source in sorted(_PACKAGE.rglob("*.py")):
        digest.update(source.relative_to(_PACKAGE).as_posix().encode())
        digest.update(source.read_bytes())
    return digest.hexdigest()


def explore_key(step_values: dict[str, Any], data_sha256: str, notebook: Path) -> str:
    """The cache key of an explore step given the parameters the notebook receives (``step_values``, as
    ``mlhelpers.pipeline.step_parameters`` makes them), the data's sha256 and the notebook file."""
    import papermill

    declared = set(papermill.inspect_notebook(str(notebook))) - _NOT_KEYED
    payload = {"params": {key: value for key, value in step_values.items() if key in declared},
               "data_sha256": data_sha256, "code": _code_digest(notebook), "versions": package_versions()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:32]


def cached_explore(cache_root: Path, key: str) -> Path | None:
    """The cache entry for ``key`` when a complete one exists."""
    entry = cache_root / "explore" / key
    complete = (entry / _ORIGIN).is_file() and (entry / STEPS["explore"].folder).is_dir()  # renamed in whole
    return entry if complete else None


def store_explore(cache_root: Path, key: str, run_dir: Path) -> None:
    """Keep ``run_dir``'s explore folder and executed notebook under ``key`` (written aside, then renamed into
    place, so a half-copied entry is never used)."""
    entry = cache_root / "explore" / key
    if cached_explore(cache_root, key) is not None:
        return
    entry.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=entry.parent, prefix=f".{key}."))
    try:
        step = STEPS["explore"]
        shutil.copytree(run_dir / step.folder, staging / step.folder)
        if (run_dir / step.notebook).is_file():
            shutil.copy2(run_dir / step.notebook, staging / step.notebook)
        (staging / _ORIGIN).write_text(json.dumps({"run_dir": str(run_dir)}) + "\n", encoding="utf-8")
        staging.rename(entry)
    except OSError:
        pass  # another run stored the same key first, or the disk is full: the cache is an optimization
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def restore_explore(entry: Path, run_dir: Path) -> str:
    """Copy a cache entry's explore folder and notebook into ``run_dir``; return the run folder that computed it."""
    step = STEPS["explore"]
    shutil.copytree(entry / step.folder, run_dir / step.folder)
    if (entry / step.notebook).is_file():
        shutil.copy2(entry / step.notebook, run_dir / step.notebook)
    return json.loads((entry / _ORIGIN).read_text(encoding="utf-8"))["run_dir"]
