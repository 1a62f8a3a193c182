"""Measure what serving each saved format costs, each in a fresh process, next to a pickle.

``measure_serving(name, path, load_fn, frame, n_single=1000, budget_seconds=None) -> dict``
    Size, load time, peak memory, single-row p50/p99 and batch throughput, measured in a fresh
    subprocess so imports, memory and caches of this process do not flatter anyone. With a time
    budget, the number of calls is what gives way (never the way they are measured), and the figures
    say how many calls each one rests on.
``serving_report(pipeline, frame, out_dir, ..., budget_seconds=6) -> DataFrame``
    Every format (skops, ONNX when it converts) next to a joblib pickle of the same pipeline (the
    reference, measured in the same run, then deleted), with parity on ``frame`` and, when given, on the
    parity probe's edge rows (``mlhelpers.formats.probe``), within one time budget for all formats together;
    writes ``serving_report.json`` into ``out_dir``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from mlhelpers.core.artifacts import artifact_file, atomic_path, write_json
from mlhelpers.core.params import Params
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


# What each format imports to serve, imported before the model so the floor (``floor_memory_mb``) counts it
ONNX_RUNTIME = ("onnxruntime",)
SKLEARN_RUNTIME = ("sklearn.pipeline", "sklearn.compose", "sklearn.ensemble")
# Importing skops scans every scikit-learn estimator (seconds under load): a server pays it once at start, so the
# serving report imports it before the budget's clock runs instead of counting it as the model's load time.
SKOPS_PRELOAD = ("skops.io",)
DEFAULT_BUDGET_SECONDS = float(Params.model_fields["serving_budget_seconds"].default)  # all formats together
MIN_SINGLE_CALLS = 10     # the fewest one-row calls a figure rests on, whatever the budget (0.5 s each for some pipelines)
BATCH_ROWS = 10_000       # rows of the batch the throughput is measured on (serving_report)
MIN_BATCH_SHARE = 0.5     # a recommended format scores batches at least this share of the pickle's rows/s
SINGLE_SHARE = 0.6        # of the time left after loading, the part the one-row calls may take

_WORKER = r"""
import importlib, json, os, resource, sys, time
import numpy as np, pandas as pd, psutil
from threadpoolctl import threadpool_limits
spec = json.loads(sys.argv[1])
frame = pd.read_pickle(spec["frame"])
module, name = spec["loader"].split(":")
load = importlib.import_module(module)
for part in name.split("."):
    load = getattr(load, part)
for runtime in spec["runtime"]:  # the library the format needs, imported before any model: part of the floor
    importlib.import_module(runtime)
baseline_mb = psutil.Process().memory_info().rss / 2**20
for module in spec.get("preload", []):  # the loader's own library (skops): above the floor, but not in the load time
    importlib.import_module(module)
# Started early, alongside the other formats' processes, imports done before the budget's clock runs; measure
# only once the parent says so, when every process is ready and idle, so no measurement shares the CPU with
# another's start-up.
print("ready", flush=True)
deadline = json.loads(sys.stdin.readline())["deadline"]  # wall-clock time to end by; None: no bound
def seconds_left():
    return float("inf") if deadline is None else deadline - time.time()
start = time.perf_counter()
model = load(spec["path"], **spec["load_kwargs"])
load_seconds = time.perf_counter() - start
# One-row requests are served on one thread, as a request-per-worker server does: waking an OpenMP
# pool (HistGradientBoosting, forests) costs more than the row itself, and under load it stalls for
# seconds. Every format, the pickle reference included, is measured the same way.
# Each request's row is a new one-row frame, dropped after the call as a server would: a list of
# 1,000 frames kept alive grows by pandas' per-frame column caches (~20 MB), which is not the model.
# A time budget bounds how many calls are made, never how each is timed; a floor of calls keeps every
# figure meaningful when loading alone used the budget up, and the counts go into the figures.
warm_until = time.time() + 0.1 * seconds_left()
single_until = time.time() + spec["single_share"] * seconds_left()
with threadpool_limits(limits=1):
    calls = 0
    while calls < 20 and (calls < 3 or time.time() < warm_until):  # the first calls warm caches up
        model.predict(frame.iloc[[calls % len(frame)]])
        calls += 1
    times = []
    while len(times) < spec["n_single"] and (len(times) < spec["min_single"] or time.time() < single_until):
        row = frame.iloc[[calls % len(frame)]]
        calls += 1
        t = time.perf_counter()
        model.predict(row)
        times.append(time.perf_counter() - t)
def high_water_mb():
    # VmHWM is this process's own peak; ru_maxrss can carry the parent's peak over fork + exec
    try:
        return int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024
    except (OSError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
single_rows_mb = high_water_mb()  # a process that answers one-row requests only never goes above this
batch_frame = frame.iloc[:spec["batch_rows"]]
batch = []
while len(batch) < 3 and sum(batch) < 10 and (not batch or seconds_left() > batch[-1]):
    t = time.perf_counter()
    model.predict(batch_frame)
    batch.append(time.perf_counter() - t)
peak_mb = high_water_mb()
print(json.dumps({
    "load_seconds": load_seconds,
    "peak_memory_mb": peak_mb,
    "single_rows_memory_mb": single_rows_mb,
    "steady_memory_mb": psutil.Process().memory_info().rss / 2**20,
    "floor_memory_mb": baseline_mb,
    "model_memory_mb": peak_mb - baseline_mb,
    "single_row_p50_ms": float(np.percentile(times, 50) * 1e3),
    "single_row_p99_ms": float(np.percentile(times, 99) * 1e3),
    "single_row_calls": len(times),
    "batch_rows_per_second": len(batch_frame) / float(np.median(batch)),
    "batch_rows": len(batch_frame),
    "batch_calls": len(batch),
}), flush=True)
# Skip the interpreter's teardown: its last garbage collection walks every object scikit-learn's imports made
# (about a second under load) while the next format is being measured.
os._exit(0)
"""


class _Measurement:
    """One format's fresh measuring process, started at once: it imports and reads the rows, says it is
    ready, then waits for its turn (``run``), so several can start together and still measure one at a time."""

    def __init__(self, name: str, path: Path, load_fn: Callable | str, frame_file: Path, n_single: int,
                 batch_rows: int, load_kwargs: dict[str, Any] | None, timeout: float, runtime: tuple[str, ...] = (),
                 preload: tuple[str, ...] = ()):
        self.name, self.path, self.timeout = name, path, timeout
        spec = {"frame": str(frame_file), "loader": _loader_reference(load_fn), "path": str(path),
                "runtime": list(runtime), "preload": list(preload),
                "n_single": n_single, "load_kwargs": load_kwargs or {}, "batch_rows": batch_rows,
                "min_single": min(MIN_SINGLE_CALLS, n_single), "single_share": SINGLE_SHARE}
        self.process = subprocess.Popen([sys.executable, "-c", _WORKER, json.dumps(spec)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait_ready(self) -> None:
        for line in self.process.stdout:  # a library may print at import: skip to the worker's word
            if line.strip() == "ready":
                return
        self._fail()

    def run(self, budget_seconds: float | None) -> dict[str, Any]:
        started = time.time()
        go = json.dumps({"deadline": None if budget_seconds is None else started + budget_seconds})
        try:
            out, err = self.process.communicate(go + "\n", timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise
        if self.process.returncode != 0:
            self._fail(err)
        figures = json.loads(out.strip().splitlines()[-1])
        return ({"name": self.name, "path": str(self.path), "size_bytes": self.path.stat().st_size} | figures
                | {"seconds": time.time() - started})

    def stop(self) -> None:
        if self.process.returncode is None and self.process.poll() is None:  # still running: never measured
            self.process.kill()
            self.process.communicate()

    def _fail(self, error: str | None = None):
        if error is None:
            self.stop()
            error = self.process.stderr.read() if not self.process.stderr.closed else ""
        raise RuntimeError(f"measuring {self.name} ({self.path}) failed in its subprocess:\n{error[-2000:]}")


def _write_rows(frame: pd.DataFrame, folder: Path, n_single: int, batch_rows: int | None) -> Path:
    path = folder / "frame.pkl"
    frame.iloc[:max(n_single + 20, batch_rows or len(frame))].to_pickle(path)  # only the rows a worker uses
    return path


def measure_serving(name: str, path: str | Path, load_fn: Callable | str, frame: pd.DataFrame,
                    n_single: int = 1000, timeout: float = 3600,
                    load_kwargs: dict[str, Any] | None = None, budget_seconds: float | None = None,
                    batch_rows: int | None = None, runtime: tuple[str, ...] = ()) -> dict[str, Any]:
    """Measure one saved model in a fresh Python process; return its serving figures.

    ``load_fn`` (an importable function/class, or "module:name") turns ``path`` into an object with
    ``predict(frame)``; ``load_kwargs`` (JSON values) are passed to it. Returns ``name``, ``path``,
    ``size_bytes``, ``load_seconds``,
    ``peak_memory_mb`` (peak RSS of the serving process: imports + model + the one-row calls + scoring the batch),
    ``single_rows_memory_mb`` (its peak RSS before the batch: what a process answering one-row requests holds;
    lower than the peak when the batch loads more, e.g. numba for a compact forest's large batches),
    ``floor_memory_mb`` (the RSS before loading: Python, numpy, pandas and the ``runtime`` modules, e.g.
    ``("onnxruntime",)``, imported first: what serving costs with no model at all), ``model_memory_mb`` (the
    peak above that floor), ``steady_memory_mb`` (RSS after
    every call: what a server keeps holding), ``single_row_p50_ms`` /
    ``single_row_p99_ms`` over ``single_row_calls`` one-row calls (native thread pools limited to one
    thread, as a server answers one request), ``batch_rows_per_second`` over ``batch_calls`` calls on
    the first ``batch_rows`` rows of ``frame`` (all of them by default; all cores) and ``seconds``
    (loading and calls, once the process has started).

    Without ``budget_seconds`` it makes ``n_single`` one-row calls and up to 3 batch calls (10 s at
    most). With it, the measurement ends near that many seconds after the process is ready: up to
    ``n_single`` one-row calls while ``SINGLE_SHARE`` of the time left after loading lasts, then batch
    calls while time is left, but never fewer than ``MIN_SINGLE_CALLS`` one-row calls and one batch call.
    """
    path = existing_file(path)
    if n_single < 1 or len(frame) == 0:
        raise ValueError("measure_serving needs n_single >= 1 and a non-empty frame.")
    if budget_seconds is not None and not budget_seconds >= 0:
        raise ValueError(f"budget_seconds must be >= 0 seconds or None, got {budget_seconds!r}.")
    _loader_reference(load_fn)  # refuse a lambda before starting anything
    with tempfile.TemporaryDirectory(prefix="mlh-serving-") as tmp:
        frame_file = _write_rows(frame, Path(tmp), n_single, batch_rows)
        worker = _Measurement(name, path, load_fn, frame_file, n_single, batch_rows or len(frame), load_kwargs,
                              timeout, runtime)
        try:
            worker.wait_ready()
            return worker.run(budget_seconds)
        finally:
            worker.stop()


def serving_report(pipeline: Any, frame: pd.DataFrame, out_dir: str | Path,
                   skops_path: str | Path | None = None, onnx_path: str | Path | None = None,
                   n_single: int = 1000, budget_seconds: float | None = DEFAULT_BUDGET_SECONDS,
                   write: bool = True, probe: Probe | None = None,
                   checked: dict[str, tuple[Any, Any]] | None = None) -> pd.DataFrame:
    """Measure every format next to a joblib pickle of the same pipeline; return one row per format.

    Uses ``skops_path`` / ``onnx_path`` when given, else writes ``model.skops`` (and ``model.onnx``
    when the pipeline converts) into ``out_dir``. The pickle (the reference) is written to a temp
    folder and deleted afterwards. Each row has the ``measure_serving`` figures (with the number of
    calls each rests on), parity on ``frame`` (``parity_ok``, ``max_abs_diff``), and ratios against the
    pickle (``size_ratio``: pickle size / this; ``single_row_speedup``: pickle p50 / this). With a
    ``probe`` (``formats.probe.edge_rows``), each format is also compared on its edge rows (``probe_ok``,
    ``probe_max_abs_diff``, ``probe_note`` naming the rows and columns that break it). ``recommended``
    marks the fastest single-row format that holds parity (and the probe), is not the pickle and scores batches at
    least ``MIN_BATCH_SHARE`` as fast as the pickle (``batch_ok``).

    Parity and every measurement, once the files exist, share ``budget_seconds`` (None: no bound, each
    format gets ``n_single`` one-row calls): each format in turn gets an equal share of what is left,
    so time a fast format leaves over goes to the next; the batch is the first ``BATCH_ROWS`` rows.
    With ``write``, saves ``serving_report.json`` (with the probe's size). ``checked`` maps a format's name to
    its ``(ParityResult, ProbeResult or None)`` already computed for these files on ``frame`` and ``probe``
    (``export.saving.save_formats``): those are used as they are instead of being computed again.
    """
    import joblib

    if budget_seconds is not None and not budget_seconds > 0:
        raise ValueError(f"serving_budget_seconds must be a positive number of seconds, got {budget_seconds!r}; "
                         f"the default is {DEFAULT_BUDGET_SECONDS:g}.")
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
    deadline = None if budget_seconds is None else time.time() + budget_seconds
    formats = [("skops", skops_path, load_skops, lambda p: load_skops(p), SKLEARN_RUNTIME, SKOPS_PRELOAD)]
    if onnx_path is not None:
        formats.append(("onnx", Path(onnx_path), OnnxPredictor, OnnxPredictor, ONNX_RUNTIME, ()))

    def share(formats_left: int) -> float | None:
        return None if deadline is None else max(deadline - time.time(), 0.0) / formats_left

    with tempfile.TemporaryDirectory(prefix="mlh-serving-") as tmp:
        pickle_path = Path(tmp) / "model.joblib"  # the yardstick, deleted with the folder
        with atomic_path(pickle_path) as temp:
            joblib.dump(pipeline, temp)
        frame_file = _write_rows(frame, Path(tmp), n_single, BATCH_ROWS)
        # every process starts now (imports, rows) while parity is checked here; each measures in turn
        workers = [_Measurement(name, path, loader, frame_file, n_single, BATCH_ROWS, None, 3600, runtime, preload)
                   for name, path, loader, runtime, preload in [("pickle", pickle_path, joblib.load, SKLEARN_RUNTIME, ())]
                   + [(name, path, loader, runtime, preload) for name, path, loader, _, runtime, preload in formats]]
        try:
            parities, probes = {}, {}
            for name, path, _, load_here, _, _ in formats:
                # the same deterministic comparison on the same file and rows: measured (movies, 59k rows)
                # it was a tenth of the export step's CPU time the second time round
                known = (checked or {}).get(name)
                if known is not None and (probe is None or known[1] is not None):
                    parities[name] = known[0]
                    if probe is not None:
                        probes[name] = known[1]
                    continue
                loaded = load_here(path)
                parities[name] = check_parity(pipeline, loaded, frame, task, name=name)
                if probe is not None:
                    probes[name] = probe_parity(pipeline, loaded, probe, task, name=name)
            for worker in workers:
                worker.wait_ready()
            rows = [worker.run(share(len(workers) - position)) for position, worker in enumerate(workers)]
        finally:
            for worker in workers:
                worker.stop()
    rows[0] |= {"path": None, "parity_ok": True, "max_abs_diff": 0.0, "reference": True}
    for row in rows[1:]:
        row |= {"parity_ok": parities[row["name"]].ok, "max_abs_diff": parities[row["name"]].max_abs_diff,
                "reference": False}
        if probe is not None:
            probed = probes[row["name"]]
            row |= {"probe_ok": probed.ok, "probe_max_abs_diff": probed.max_abs_diff, "probe_note": probed.describe()}
    if probe is not None:
        rows[0] |= {"probe_ok": True, "probe_max_abs_diff": 0.0, "probe_note": "reference"}
    report = pd.DataFrame(rows)
    reference = report.iloc[0]
    report["size_ratio"] = reference["size_bytes"] / report["size_bytes"]
    report["single_row_speedup"] = reference["single_row_p50_ms"] / report["single_row_p50_ms"]
    holds = report["parity_ok"] & (report["probe_ok"].astype(bool) if probe is not None else True)
    # `mlh predict` scores files with the recommended format: one much slower than the pickle in batches would make
    # it pay for single-row speed (ONNX on ratdat's 36-class forest: one row 5.8x faster, batches 38x slower)
    share = report["batch_rows_per_second"] / reference["batch_rows_per_second"]
    report["batch_ok"] = share.isna() | (share >= MIN_BATCH_SHARE)
    candidates = report[~report["reference"] & holds & report["batch_ok"]]
    report["recommended"] = False
    if len(candidates):
        report.loc[candidates["single_row_p50_ms"].idxmin(), "recommended"] = True
    if write:
        write_json(out_dir / artifact_file("serving_report"), {
            "reference": "pickle", "task": task, "n_rows": len(frame), "n_single": n_single,
            "budget_seconds": budget_seconds, "onnx_reason": onnx_reason,
            "probe": None if probe is None else {"n_rows": probe.n_rows, "parts": len(probe.parts)},
            "recommended": next(iter(report.loc[report["recommended"], "name"]), None),
            "formats": json.loads(report.to_json(orient="records")),
        })
    return report
