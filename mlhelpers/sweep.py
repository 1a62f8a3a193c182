"""Parameter sweeps: every combination of a grid as its own run in one sweep folder, listed in ``sweep.json``.

Orchestration only: each variant is a ``mlhelpers.pipeline.run_pipeline`` call into
``<runs root>/<params name>/sweep-<id>/v01/``, ``v02/`` ...; a failed variant is recorded and the next one
starts. With the export step, the variants' MLflow runs are children of one parent run named after the
sweep (``mlhelpers.export.tracking``). The explore cache (``mlhelpers.cache``) lets variants that differ only
in later steps' parameters share one explore run.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlhelpers.core.artifacts import SWEEP, write_json
from mlhelpers.core.paramfile import parse_overrides, read_params_file
from mlhelpers.core.params import Params, ParamsError, validate_params
from mlhelpers.export.parent_runs import end_parent_run, start_parent_run
from mlhelpers.pipeline import NOTEBOOKS_DIR, new_run_dir, run_pipeline
from mlhelpers.runs import headline_metric

__all__ = ["MAX_VARIANTS", "parse_grid", "SweepPlan", "plan_sweep", "new_sweep_dir", "run_sweep"]

MAX_VARIANTS = 100
# Keys a grid may not vary, and why.
_FIXED = {"run_dir": "every variant gets its own run folder in the sweep folder",
          "mlflow_parent_run_id": "the sweep sets it to its parent run",
          "mlflow_tracking_uri": "the variants log under one parent run, in one store",
          "mlflow_experiment": "the variants log under one parent run, in one experiment"}


def _split_values(text: str) -> list[str]:
    """``"a,[b,c],'d,e'"`` -> ``["a", "[b,c]", "'d,e'"]``: commas inside brackets or quotes do not split."""
    parts, depth, quote, current = [], 0, None, ""
    for char in text:
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += char
    return parts + [current]


def parse_grid(pairs: list[str]) -> dict[str, list[Any]]:
    """``["cv_folds=3,5", "models=[dummy,linear],[xgboost]"]`` -> ``{"cv_folds": [3, 5], "models": [[...], [...]]}``;
    values are YAML scalars or lists, like ``--set``. Malformed or repeated keys raise ``ParamsError``."""
    grid: dict[str, list[Any]] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        values = [value.strip() for value in _split_values(raw)] if sep else []
        if not key or not values or any(not value for value in values):
            raise ParamsError(f"--grid {pair!r}: expected key=value1,value2 (e.g. --grid cv_folds=3,5 or "
                              "--grid models=[dummy,linear],[xgboost]), with no empty value.")
        if key in grid:
            raise ParamsError(f"--grid {key!r} is given twice; list all its values in one --grid {key}=v1,v2.")
        if key in _FIXED:
            raise ParamsError(f"--grid {key!r} cannot vary in a sweep: {_FIXED[key]}.")
        grid[key] = [parse_overrides([f"{key}={value}"])[key] for value in values]
    if not grid:
        raise ParamsError("a sweep needs at least one --grid key=value1,value2.")
    return grid


@dataclass
class SweepPlan:
    """The validated variants of a sweep: each one's overrides and parameters, in grid order."""

    name: str
    params_file: Path
    grid: dict[str, list[Any]]
    base_overrides: dict[str, Any]
    variants: list[tuple[dict[str, Any], Params]]


def plan_sweep(params_file: Path, grid_pairs: list[str], set_pairs: list[str] | None = None) -> SweepPlan:
    """Expand the grid over the params file (with ``--set`` overrides) and validate every variant before
    anything runs: a bad value in any combination raises ``ParamsError`` naming the variant and the key."""
    grid = parse_grid(grid_pairs)
    base_overrides = parse_overrides(set_pairs or [])
    both = sorted(set(grid) & set(base_overrides))
    if both:
        raise ParamsError(f"{', '.join(both)} both in --set and --grid: give each key in one of them.")
    combinations = list(itertools.product(*grid.values()))
    if len(combinations) > MAX_VARIANTS:
        raise ParamsError(f"the grid makes {len(combinations)} variants, more than {MAX_VARIANTS}: use fewer values.")
    base = read_params_file(params_file) | base_overrides
    variants = []
    for values in combinations:
        overrides = dict(zip(grid, values))
        shown = ", ".join(f"{key}={value}" for key, value in overrides.items())
        variants.append((overrides, validate_params(base | overrides, source=f"{params_file} with {shown}")))
    return SweepPlan(name=Path(params_file).stem, params_file=Path(params_file), grid=grid,
                     base_overrides=base_overrides, variants=variants)


def new_sweep_dir(runs_root: Path, name: str) -> Path:
    """A fresh ``<runs_root>/<name>/sweep-<id>`` folder; never one that exists already."""
    return new_run_dir(runs_root, name, prefix="sweep-", what="sweep")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _parent_run(plan: SweepPlan, sweep_dir: Path, steps: list[str], record: dict[str, Any]) -> str | None:
    if "export" not in steps:
        return None
    base = plan.variants[0][1]
    try:
        return start_parent_run(base.tracking_uri, base.mlflow_experiment, f"{plan.name}/{sweep_dir.name}",
                                {f"grid.{key}": values for key, values in plan.grid.items()}
                                | {f"set.{key}": value for key, value in plan.base_overrides.items()})
    except Exception as error:  # tracking is a convenience here: the variants still run, as top-level runs
        record["mlflow_error"] = f"no parent run ({type(error).__name__}: {error}); the variants log as top-level runs"
        return None


def run_sweep(plan: SweepPlan, steps: list[str], sweep_dir: Path, based_on: Path | None = None,
              progress: bool = True, cache_root: Path | None = None,
              notebooks_dir: Path = NOTEBOOKS_DIR) -> dict[str, Any]:
    """Run every variant of ``plan`` into ``sweep_dir`` (one after another; a failure does not stop the others)
    and keep ``sweep.json`` current after each; return its content."""
    record: dict[str, Any] = {
        "name": f"{plan.name}/{sweep_dir.name}", "params_file": str(plan.params_file), "grid": plan.grid,
        "overrides": plan.base_overrides, "steps": steps, "status": "running", "started_at": _now(),
        "finished_at": None, "n_failed": 0, "mlflow_parent_run_id": None,
        "runs": [{"run": f"v{i:02d}", "overrides": overrides, "status": "pending", "seconds": None,
                  "explore_reused_from": None, "headline": None}
                 for i, (overrides, _) in enumerate(plan.variants, start=1)]}
    path = sweep_dir / SWEEP
    parent = _parent_run(plan, sweep_dir, steps, record)
    record["mlflow_parent_run_id"] = parent
    write_json(path, record)
    try:
        for position, (entry, (overrides, params)) in enumerate(zip(record["runs"], plan.variants), start=1):
            run_dir = sweep_dir / entry["run"]
            run_dir.mkdir()
            if progress:
                shown = ", ".join(f"{key}={value}" for key, value in overrides.items())
                print(f"== variant {position}/{len(plan.variants)} ({entry['run']}): {shown}", flush=True)
            entry["status"] = "running"
            write_json(path, record)
            if parent:
                params = params.model_copy(update={"mlflow_parent_run_id": parent})
            result = run_pipeline(params, steps, run_dir, params_file=plan.params_file, based_on=based_on,
                                  progress=progress, notebooks_dir=notebooks_dir,
                                  overrides=plan.base_overrides | overrides, cache_root=cache_root)
            entry |= {"status": result.manifest["status"], "seconds": result.manifest["seconds"],
                      "explore_reused_from": (result.manifest["steps"].get("explore") or {}).get("reused_from"),
                      "headline": headline_metric(run_dir)}
            if not result.succeeded:
                entry["error"] = result.manifest.get("error")
            record["n_failed"] = sum(run["status"] == "failed" for run in record["runs"])
            write_json(path, record)
    except BaseException:  # Ctrl-C: say so, leave the rest pending
        record["status"] = "interrupted"
        raise
    else:
        record["status"] = "failed" if record["n_failed"] else "succeeded"
    finally:
        record["finished_at"] = _now()
        write_json(path, record)
        if parent:
            end_parent_run(plan.variants[0][1].tracking_uri, parent, record["n_failed"], len(plan.variants),
                           interrupted=record["status"] == "interrupted")
    return record
