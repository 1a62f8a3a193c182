"""Measure what serving each saved format costs, each in a fresh process, next to a pickle.

``measure_serving(name, path, load_fn, frame, n_single=1000) -> dict``
    Size, load time, peak memory, single-row p50/p99 and batch throughput, measured in a fresh
    subprocess so imports, memory and caches of this process do not flatter anyone.
``serving_report(pipeline, frame, out_dir, ...) -> DataFrame``
    Every format (skops, ONNX when it converts) next to a joblib pickle of the same pipeline (the
    reference, measured in the same run, then deleted), with parity on ``frame`` and, when given, on the
    parity probe's edge rows (``mlhelpers.formats.probe``); writes ``serving_report.json`` into ``out_dir``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from mlhelpers.core.artifacts import artifact_file, atomic_path, write_json
from mlhelpers.formats.onnx_io import OnnxPredictor, input_columns, save_onnx, task_of, to_onnx
from mlhelpers.formats.parity import check_parity
from mlhelpers.formats.probe import Probe, probe_parity
from mlhelpers.formats.skops_io import existing_file, load_skops, save_skops


def _loader_reference(load_fn: Callable | str) -> str:
    if isinstance(load_fn, str):
        return load_fn
    module, qualname = getattr(load_fn, "__module__", None), getattr(load_fn, "__qualname__", "")
    if not module or "<" in qualname:
        raise ValueError(f"load_fn {load_fn!r} must be an importable function or class (module:name) "
                         f"so a fresh process can call it; lambdas and local functions cannot.")
    return f"{module}:{qualname}"


_WORKER = r"""
import json, resource, sys, time, importlib
import numpy as np, pandas as pd, psutil
spec = json.loads(sys.argv[1])
frame = pd.read_pickle(spec["frame"])
module, name = spec["loader"].split(":")
load = importlib.import_module(module)
for part in name.split("."):
    load = getattr(load, part)
baseline_mb = psutil.Process().memory_info().rss / 2**20
start = time.perf_counter()
model = load(spec["path"], **spec["load_kwargs"])
load_seconds = time.perf_counter() - start
# One-row requests are served on one thread, as a request-per-worker server does: waking an OpenMP
# pool (HistGradientBoosting, forests) costs more than the row itself, and under load it stalls for
# seconds. Every format, the pickle reference included, is measured the same way.
from threadpoolctl import threadpool_limits
# Each request's row is a new one-row frame, dropped after the call as a server would: a list of
# 1,000 frames kept alive grows by pandas' per-frame column caches (~20 MB), which is not the model.
with threadpool_limits(limits=1):
    times = []
    for i in range(20 + spec["n_single"]):
        row = frame.iloc[[i % len(frame)]]
        t = time.perf_counter()
        model.predict(row)
        times.append(time.perf_counter() - t)
    times = times[20:]  # the first calls warm caches up
batch = []
while len(batch) < 3 and sum(batch) < 10:
    t = time.perf_counter()
    model.predict(frame)
    batch.append(time.perf_counter() - t)
# VmHWM is this process's own peak; ru_maxrss can carry the parent's peak over fork + exec
try:
    status = open("/proc/self/status").read()
    peak_mb = int(status.split("VmHWM:")[1].split()[0]) / 1024
except (OSError, IndexError):
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({
    "load_seconds": load_seconds,
    "peak_memory_mb": peak_mb,
    "steady_memory_mb": psutil.Process().memory_info().rss / 2**20,
    "model_memory_mb": peak_mb - baseline_mb,
    "single_row_p50_ms": float(np.percentile(times, 50) * 1e3),
    "single_row_p99_ms": float(np.percentile(times, 99) * 1e3),
    "batch_rows_per_second": len(frame) / float(np.median(batch)),
}))
"""


def measure_serving(name: str, path: str | Path, load_fn: Callable | str, frame: pd.DataFrame,
                    n_single: int = 1000, timeout: float = 3600,
                    load_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Measure one saved model in a fresh Python process; return its serving figures.

    ``load_fn`` (an importable function/class, or "module:name") turns ``path`` into an object with
    ``predict(frame)``; ``load_kwargs`` (JSON values) are passed to it. Returns ``name``, ``path``,
    ``size_bytes``, ``load_seconds``,
    ``peak_memory_mb`` (peak RSS of the serving process: imports + model + scoring ``frame``),
    ``model_memory_mb`` (that peak minus the RSS before loading), ``steady_memory_mb`` (RSS after
    every call: what a server keeps holding), ``single_row_p50_ms`` /
    ``single_row_p99_ms`` over ``n_single`` one-row calls (native thread pools limited to one
    thread, as a server answers one request), and ``batch_rows_per_second`` on ``frame`` (all cores).
    """
    path = existing_file(path)
    if n_single < 1 or len(frame) == 0:
        raise ValueError("measure_serving needs n_single >= 1 and a non-empty frame.")
    loader = _loader_reference(load_fn)
    with tempfile.TemporaryDirectory(prefix="mlh-serving-") as tmp:
        frame_file = Path(tmp) / "frame.pkl"
        frame.to_pickle(frame_file)
        spec = {"frame": str(frame_file), "loader": loader, "path": str(path), "n_single": n_single,
                "load_kwargs": load_kwargs or {}}
        done = subprocess.run([sys.executable, "-c", _WORKER, json.dumps(spec)],
                              capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"measuring {name} ({path}) failed in its subprocess:\n{done.stderr[-2000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return {"name": name, "path": str(path), "size_bytes": path.stat().st_size} | figures


def serving_report(pipeline: Any, frame: pd.DataFrame, out_dir: str | Path,
                   skops_path: str | Path | None = None, onnx_path: str | Path | None = None,
                   n_single: int = 1000, write: bool = True, probe: Probe | None = None) -> pd.DataFrame:
    """Measure every format next to a joblib pickle of the same pipeline; return one row per format.

    Uses ``skops_path`` / ``onnx_path`` when given, else writes ``model.skops`` (and ``model.onnx``
    when the pipeline converts) into ``out_dir``. The pickle (the reference) is written to a temp
    folder and deleted afterwards. Each row has the ``measure_serving`` figures, parity on ``frame``
    (``parity_ok``, ``max_abs_diff``), and ratios against the pickle (``size_ratio``: pickle size /
    this; ``single_row_speedup``: pickle p50 / this). With a ``probe`` (``formats.probe.edge_rows``),
    each format is also compared on its edge rows (``probe_ok``, ``probe_max_abs_diff``,
    ``probe_note`` naming the rows and columns that break it). ``recommended`` marks the fastest
    single-row format that holds parity (and the probe) and is not the pickle. With ``write``, saves
    ``serving_report.json`` (with the probe's size).
    """
    import joblib

    out_dir = Path(out_dir)
    task = task_of(pipeline)
    columns = input_columns(pipeline, frame)
    frame = frame[columns]
    skops_path = Path(skops_path) if skops_path else save_skops(pipeline, out_dir / artifact_file("model_skops"))
    onnx_reason = None
    if onnx_path is None:
        converted = to_onnx(pipeline, frame)
        onnx_reason = converted.reason
        if converted.model is not None:
            onnx_path = save_onnx(converted.model, out_dir / artifact_file("model_onnx"))
    rows = []
    with tempfile.TemporaryDirectory(prefix="mlh-pickle-") as tmp:
        pickle_path = Path(tmp) / "model.joblib"
        with atomic_path(pickle_path) as temp:
            joblib.dump(pipeline, temp)
        rows.append(measure_serving("pickle", pickle_path, joblib.load, frame, n_single)
                    | {"parity_ok": True, "max_abs_diff": 0.0, "reference": True})
    rows[0]["path"] = None  # deleted: it was only the yardstick
    formats = [("skops", skops_path, load_skops, lambda p: load_skops(p))]
    if onnx_path is not None:
        formats.append(("onnx", Path(onnx_path), OnnxPredictor, OnnxPredictor))
    if probe is not None:
        rows[0] |= {"probe_ok": True, "probe_max_abs_diff": 0.0, "probe_note": "reference"}
    for name, path, loader, load_here in formats:
        loaded = load_here(path)
        parity = check_parity(pipeline, loaded, frame, task, name=name)
        row = {"parity_ok": parity.ok, "max_abs_diff": parity.max_abs_diff, "reference": False}
        if probe is not None:
            probed = probe_parity(pipeline, loaded, probe, task, name=name)
            row |= {"probe_ok": probed.ok, "probe_max_abs_diff": probed.max_abs_diff,
                    "probe_note": probed.describe()}
        rows.append(measure_serving(name, path, loader, frame, n_single) | row)
    report = pd.DataFrame(rows)
    reference = report.iloc[0]
    report["size_ratio"] = reference["size_bytes"] / report["size_bytes"]
    report["single_row_speedup"] = reference["single_row_p50_ms"] / report["single_row_p50_ms"]
    holds = report["parity_ok"] & (report["probe_ok"].astype(bool) if probe is not None else True)
    candidates = report[~report["reference"] & holds]
    report["recommended"] = False
    if len(candidates):
        report.loc[candidates["single_row_p50_ms"].idxmin(), "recommended"] = True
    if write:
        write_json(out_dir / artifact_file("serving_report"), {
            "reference": "pickle", "task": task, "n_rows": len(frame), "n_single": n_single,
            "onnx_reason": onnx_reason,
            "probe": None if probe is None else {"n_rows": probe.n_rows, "parts": len(probe.parts)},
            "recommended": next(iter(report.loc[report["recommended"], "name"]), None),
            "formats": json.loads(report.to_json(orient="records")),
        })
    return report
