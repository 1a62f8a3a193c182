"""``mlh optimize``: make a fitted scikit-learn pipeline smaller and faster to serve, with proof.

``optimize_model(model_path, sample, out_dir, target=None, tolerance=None) -> OptimizeResult``
measures the model as handed over (size, load time, memory, single-row latency, batch throughput, in
a fresh process), builds every lossless candidate that applies, proves each one's parity on the
sample and on the parity probe's edge rows built from it (``mlhelpers.formats.probe``, as the export
step does), measures them the same way and recommends the one that meets the most serving goals
(``mlhelpers.tools.goals``: exact, >= 10x smaller, >= 20x faster per row, no slower in batches, a third of
the memory when the original is over 100 MB), ties broken by the best balance of the four gains (geometric
mean of the disk, peak-memory, single-row-latency and batch-throughput ratios against the original); the
report says which goals each candidate misses. Only with a ``tolerance`` (and the sample's ``target`` column)
does it also build a lossy, smaller model and state its accuracy cost. Forests and HistGradientBoosting
pipelines get an exact ``onnx`` candidate (our TreeEnsemble converters, see ``mlhelpers.formats.converters``).

Lossless candidates:

* ``compact`` (random forests, extra trees, decision trees): the preprocessing in numpy (one-hot, scaler, imputer,
  passthrough; else a small ONNX graph) plus the trees as flat numpy arrays, exact (``mlhelpers.tools.compact``),
  walked by the C extension built at install (``mlhelpers.tools.forest_walk``). It wins on disk (~6 bytes a split
  against ~8 in gzip-compressed ONNX) and in memory (onnxruntime holds ~150-180 bytes a split once loaded; a compact
  process imports neither onnxruntime nor numba). The report says which won where.
* ``compact-compiled``: only where the C walk is not built: the same file asking for numba's compiled walk on every
  call (numba loaded with the model, ~133 MB), faster than the numpy walk where the memory goal leaves room for it.
  Where the C walk is built it walks as fast as numba with no extra memory, so this candidate would only add numba.
* ``onnx``: the whole pipeline through ``mlhelpers.formats.onnx_io.to_onnx`` (double precision), saved
  gzip-compressed when large (``<stem>.onnx.gz``).
* ``skops``: the same pipeline in the trusted format, deflate-compressed (smaller on disk only).

Lossy (``tolerance``): the fewest leading trees of a forest whose error on one half of the sample
is within ``tolerance`` (relative) of the full model's; the cost is reported on the other half.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlhelpers.core.artifacts import write_json
from mlhelpers.core.models import encode_target
from mlhelpers.formats import onnx_io, skops_io
from mlhelpers.formats.parity import check_parity
from mlhelpers.formats.probe import edge_rows, probe_parity
from mlhelpers.formats.serving import ONNX_RUNTIME, SKLEARN_RUNTIME, measure_serving
from mlhelpers.tools.compact import (CompactModel, OptimizeError, compact_applies, compact_forest, load_compact,
                                     save_compact)
from mlhelpers.tools.forest_walk import c_walk, compact_runtime, compiled_walk, describe_walk
from mlhelpers.tools.goals import choose_best, judge_goals


@dataclass
class OptimizeResult:
    """What ``optimize_model`` measured and wrote."""

    before: dict[str, Any]
    candidates: pd.DataFrame          # one row per lossless candidate (and the lossy one, if asked)
    best: str | None                  # name of the best lossless candidate that held parity
    best_path: Path | None
    lossy: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        """Before/after: the original and every candidate with ratios against the original."""
        rows = pd.concat([pd.DataFrame([self.before]), self.candidates], ignore_index=True)
        columns = ["name", "lossless", "parity_ok", "max_abs_diff", "probe_ok", "probe_max_abs_diff",
                   "size_bytes", "load_seconds", "peak_memory_mb", "single_rows_memory_mb", "model_memory_mb",
                   "steady_memory_mb", "single_row_p50_ms", "single_row_p99_ms", "batch_rows_per_second",
                   "floor_memory_mb", "size_smaller_x",
                   "memory_smaller_x", "single_row_faster_x", "batch_faster_x", "goals_met", "goals_missed",
                   "memory_goal"]
        return rows[[c for c in columns if c in rows.columns]]


def load_any(path: str | Path, extra_trusted: list[str] | tuple[str, ...] = ()) -> Any:
    """Load a fitted pipeline from ``.skops`` (allowlist) or ``.joblib``/``.pkl`` (a pickle: trusted files only)."""
    path = Path(path)
    if not path.is_file():
        raise OptimizeError(f"model file {path} does not exist; pass a fitted pipeline (.joblib, .pkl or .skops).")
    if path.suffix == ".skops":
        return skops_io.load_skops(path, extra_trusted)
    if path.suffix in (".joblib", ".pkl", ".pickle"):
        import joblib

        try:
            return joblib.load(path)
        except Exception as exc:  # noqa: BLE001 - a pickle fails in as many ways as it has contents
            missing = isinstance(exc, (ImportError, AttributeError))
            why = ("it needs a module, class or version that is not installed here" if missing else
                   "it is damaged or not a pickle at all (another kind of file?)")
            raise OptimizeError(
                f"{path}: cannot load this pickle: {why} ({type(exc).__name__}: {str(exc)[:200]}). Save the "
                "fitted pipeline again in this environment (joblib.dump, or skops: "
                "mlhelpers.formats.skops_io.save_skops) and pass that file.") from None
    raise OptimizeError(f"{path}: unknown model format {path.suffix!r}; expected .joblib, .pkl or .skops.")


def _ratios(row: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    return row | {"size_smaller_x": before["size_bytes"] / row["size_bytes"],
                  "memory_smaller_x": before["peak_memory_mb"] / row["peak_memory_mb"],
                  "single_row_faster_x": before["single_row_p50_ms"] / row["single_row_p50_ms"],
                  "batch_faster_x": row["batch_rows_per_second"] / before["batch_rows_per_second"]}


def _error(task: str, y: np.ndarray, predicted: np.ndarray) -> float:
    # regression: RMSE; classification: Brier score (mean squared error of the probabilities)
    if task == "regression":
        return float(np.sqrt(np.mean((predicted - y) ** 2)))
    onehot = np.eye(predicted.shape[1])[y]
    return float(np.mean(np.sum((predicted - onehot) ** 2, axis=1)))


def _encoded_target(pipeline, values: pd.Series, task: str) -> np.ndarray:
    if task == "regression":
        return values.to_numpy(dtype=float)
    classes = list(np.asarray(pipeline.classes_))
    if set(values.unique()) <= set(classes):
        return values.map({c: i for i, c in enumerate(classes)}).to_numpy(dtype=int)
    return encode_target(values, task)[0]


def _lossy_forest(pipeline, sample: pd.DataFrame, y: np.ndarray, task: str, tolerance: float,
                  seed: int) -> tuple[int, dict[str, Any]]:
    """Fewest leading trees whose error on a selection half (and every longer prefix's) is within
    ``tolerance`` of the full forest's; returns that count and the cost measured on the other half."""
    full = compact_forest(pipeline[-1])
    model = CompactModel(full, pipeline[:-1])
    X = model.features(sample)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(sample))
    select, holdout = order[: len(order) // 2], order[len(order) // 2:]
    per_tree = full.leaf_values(X)  # (rows, trees[, classes]): every prefix is a cumulative mean
    cumulative = np.cumsum(per_tree, axis=1) / np.arange(1, full.n_trees + 1).reshape(
        (1, -1) + (1,) * (per_tree.ndim - 2))
    full_select = _error(task, y[select], cumulative[select, -1])
    # the fewest trees after which every longer prefix also stays within the tolerance: the first
    # prefix that dips under it is often luck, and misses the tolerance on held-out rows
    errors = np.array([_error(task, y[select], cumulative[select, k]) for k in range(full.n_trees)])
    over = np.flatnonzero(errors > full_select * (1 + tolerance))
    chosen = int(over[-1]) + 2 if len(over) else 1
    metric = "rmse" if task == "regression" else "brier"
    full_holdout = _error(task, y[holdout], cumulative[holdout, -1])
    lossy_holdout = _error(task, y[holdout], cumulative[holdout, chosen - 1])
    return chosen, {"n_trees": chosen, "of_trees": full.n_trees, "metric": metric, "tolerance": tolerance,
                    "selection_rows": len(select), "holdout_rows": len(holdout),
                    f"{metric}_full_holdout": full_holdout, f"{metric}_lossy_holdout": lossy_holdout,
                    "relative_cost_holdout": lossy_holdout / full_holdout - 1 if full_holdout else 0.0}


def optimize_model(model_path: str | Path, sample: pd.DataFrame, out_dir: str | Path,
                   target: str | None = None, tolerance: float | None = None, n_single: int = 1000,
                   extra_trusted: list[str] | tuple[str, ...] = (), seed: int = 0,
                   formats: tuple[str, ...] = ("compact", "compact-compiled", "onnx", "skops")) -> OptimizeResult:
    """Measure ``model_path``, build and measure lossless candidates (and a lossy one if asked).

    Every candidate's parity with the original is checked on ``sample`` and on the parity probe's edge
    rows built from it (regression 1e-6 relative, probabilities 1e-5, exact labels); one that breaks
    either is reported (the notes name the probe's rows and columns), never chosen. ``tolerance``
    (e.g. 0.01 = error at most 1% higher, RMSE for regression, Brier score for classification)
    needs ``target``, the sample's label column. Writes the files and ``optimize_report.json`` into
    ``out_dir``; returns the measurements (``OptimizeResult.table()`` for before/after). A model file that
    does not load, or a model fitted on a bare array (no column names), raises ``OptimizeError`` before
    anything is written; a failure later removes the ``out_dir`` this call created.
    """
    from sklearn.base import is_classifier


    if tolerance is not None and (target is None or tolerance < 0):
        raise OptimizeError("a lossy model needs --target (the sample's label column) and a tolerance >= 0, "
                            "e.g. --tolerance 0.01 for at most 1% more error.")
    if target is not None and target not in sample.columns:
        raise OptimizeError(f"target column {target!r} is not in the sample; its columns: {list(sample.columns)}.")
    model_path = Path(model_path)
    pipeline = load_any(model_path, extra_trusted)
    if not hasattr(pipeline, "predict"):
        raise OptimizeError(f"{model_path} holds a {type(pipeline).__name__}, not a fitted pipeline or model.")
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(pipeline)
    except NotFittedError:
        raise OptimizeError(f"{model_path} holds an unfitted {type(pipeline).__name__}; fit it, save it and "
                            "pass that file.") from None
    if getattr(pipeline, "feature_names_in_", None) is None:
        raise OptimizeError(
            f"{model_path} holds a {type(pipeline).__name__} fitted on a bare array: it records no column names "
            "(no feature_names_in_), so the sample's columns cannot be matched to its inputs. Fit it (or a "
            "Pipeline around it) on a pandas DataFrame with named columns, save it, and pass that file.")
    task = "classification" if is_classifier(pipeline) else "regression"
    if not hasattr(pipeline, "steps"):
        from sklearn.pipeline import Pipeline
        pipeline = Pipeline([("model", pipeline)])
    try:
        columns = onnx_io.input_columns(pipeline, sample)
    except ValueError as exc:
        raise OptimizeError(f"--sample: {exc}") from None
    frame = sample[columns]
    try:  # every check that can fail runs before anything is written
        pipeline.predict(frame)
        y = _encoded_target(pipeline, sample[target], task) if tolerance is not None else None
    except Exception as exc:  # noqa: BLE001 - the model's own error, named
        raise OptimizeError(f"the model cannot score --sample, or read its --target ({type(exc).__name__}: "
                            f"{str(exc)[:300]}); pass rows with the columns and types it was fitted on.") from None
    out_dir = Path(out_dir)
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        return _optimize(pipeline, model_path, frame, y, out_dir, task, tolerance, n_single, extra_trusted, seed,
                         formats)
    except BaseException:
        if created:  # nothing half-done is left behind: a folder this call made goes with it
            import shutil

            shutil.rmtree(out_dir, ignore_errors=True)
        raise


def _optimize(pipeline, model_path: Path, frame: pd.DataFrame, y: np.ndarray | None, out_dir: Path, task: str,
              tolerance: float | None, n_single: int, extra_trusted, seed: int,
              formats: tuple[str, ...]) -> OptimizeResult:
    notes: list[str] = []

    loader = "mlhelpers.formats.skops_io:load_skops" if model_path.suffix == ".skops" else "joblib:load"
    load_kwargs = {"extra_trusted": list(extra_trusted)} if model_path.suffix == ".skops" else {}
    before = measure = measure_serving("original", model_path, loader, frame, n_single,
                                       load_kwargs=load_kwargs, runtime=SKLEARN_RUNTIME)
    before = measure | {"lossless": True, "parity_ok": True, "max_abs_diff": 0.0, "probe_ok": True}
    stem = model_path.name.split(".")[0]
    built: list[tuple[str, Path, str, dict, Any, bool]] = []  # name, path, loader, kwargs, predictor, lossless
    forest = compact_applies(pipeline[-1])
    if "compact" in formats:
        if forest:
            path = save_compact(pipeline, frame, out_dir / f"{stem}.compact.npz")
            notes.append(f"compact walk here: {describe_walk()}; a process without the C module (sources copied "
                         "without building) walks the fallback, same predictions")
            built.append(("compact", path, "mlhelpers.tools.compact:load_compact",
                          {"extra_trusted": list(extra_trusted)}, load_compact(path, extra_trusted), True))
            if "compact-compiled" in formats and c_walk() is not None:
                notes.append("compact-compiled: not built, the C walk serves every call of `compact` as fast as "
                             "numba would, without numba's ~133 MB")
            elif "compact-compiled" in formats and compiled_walk() is not None:
                # without the C walk: numba's ~133 MB against the numpy walk's one-row and small-batch times (nass,
                # 2,000 rows x 300 trees, stayed in numpy at 0.69x the pickle); measured, so the goals decide
                path = save_compact(pipeline, frame, out_dir / f"{stem}.compiled.compact.npz", walk="compiled")
                built.append(("compact-compiled", path, "mlhelpers.tools.compact:load_compact",
                              {"extra_trusted": list(extra_trusted)}, load_compact(path, extra_trusted), True))
        else:
            notes.append(f"compact: covers scikit-learn forests and decision trees, not {type(pipeline[-1]).__name__}")
    if "onnx" in formats:
        converted = onnx_io.to_onnx(pipeline, frame)
        if converted.model is not None:
            path = onnx_io.save_onnx(converted.model, out_dir / f"{stem}.onnx")
            built.append(("onnx", path, "mlhelpers.formats.onnx_io:OnnxPredictor", {},
                          onnx_io.OnnxPredictor(path), True))
        else:
            notes.append(f"onnx: {converted.reason}")
    if "skops" in formats:
        path = skops_io.save_skops(pipeline, out_dir / f"{stem}.skops", compress=True)
        built.append(("skops", path, "mlhelpers.formats.skops_io:load_skops", {"extra_trusted": list(extra_trusted)},
                      pipeline, True))
    lossy = None
    if tolerance is not None:
        if forest and hasattr(pipeline[-1], "estimators_"):
            n_trees, lossy = _lossy_forest(pipeline, frame, y, task, tolerance, seed)
            path = save_compact(pipeline, frame, out_dir / f"{stem}.lossy-{n_trees}trees.compact.npz", n_trees)
            built.append((f"lossy ({n_trees} of {lossy['of_trees']} trees)", path,
                          "mlhelpers.tools.compact:load_compact", {"extra_trusted": list(extra_trusted)},
                          load_compact(path, extra_trusted), False))
        else:
            notes.append(f"lossy: only forests can drop trees; {type(pipeline[-1]).__name__} kept lossless")

    probe = edge_rows(frame, seed=seed)  # the export step's parity probe, built from the sample
    rows = []
    for name, path, load, kwargs, predictor, lossless in built:
        parity = check_parity(pipeline, predictor, frame, task, name=name)
        probed = probe_parity(pipeline, predictor, probe, task, name=name)
        if lossless and not probed.ok:
            notes.append(f"not recommended: {probed.describe()}")
        runtime = SKLEARN_RUNTIME if load.endswith("load_skops") else \
            compact_runtime() if load.endswith("load_compact") else ONNX_RUNTIME
        row = measure_serving(name, path, load, frame, n_single, load_kwargs=kwargs, runtime=runtime)
        rows.append(_ratios(row | {"lossless": lossless, "parity_ok": parity.ok,
                                   "max_abs_diff": parity.max_abs_diff, "max_rel_diff": parity.max_rel_diff,
                                   "label_mismatches": parity.label_mismatches, "probe_ok": probed.ok,
                                   "probe_max_abs_diff": probed.max_abs_diff}, before))
    before = _ratios(before, before)
    candidates = judge_goals(pd.DataFrame(rows), before) if rows else pd.DataFrame(rows)
    best = best_path = None
    if len(candidates):
        good = candidates[candidates["lossless"] & candidates["parity_ok"] & candidates["probe_ok"]]
        if len(good):
            best, best_path = choose_best(good, notes)
    result = OptimizeResult(before, candidates, best, best_path, lossy, notes)
    write_json(out_dir / "optimize_report.json", {
        "model": str(model_path), "task": task, "sample_rows": len(frame), "n_single": n_single,
        "probe_rows": probe.n_rows, "compact_walk": describe_walk() if forest else None,
        "best_lossless": best, "best_path": best_path, "lossy": lossy, "notes": notes,
        "before": before, "candidates": json.loads(candidates.to_json(orient="records")),
    })
    return result


def format_report(result: OptimizeResult) -> str:
    """The before/after table and the verdict as text for the terminal."""
    table = result.table().copy()
    table["size_mb"] = table.pop("size_bytes") / 2**20
    shown = ["name", "lossless", "parity_ok", "max_abs_diff", "probe_ok", "size_mb", "load_seconds",
             "peak_memory_mb", "steady_memory_mb", "single_row_p50_ms", "single_row_p99_ms", "batch_rows_per_second", "size_smaller_x",
             "memory_smaller_x", "single_row_faster_x", "batch_faster_x", "goals_met", "goals_missed"]
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.float_format", "{:.4g}".format):
        lines = [table[[c for c in shown if c in table.columns]].to_string(index=False)]
    if result.best:
        lines.append(f"best lossless: {result.best} -> {result.best_path}")
    else:
        lines.append("no lossless candidate held parity: keep the original.")
    if result.lossy:
        lossy = result.lossy
        lines.append(f"lossy: {lossy['n_trees']} of {lossy['of_trees']} trees (chosen on {lossy['selection_rows']} "
                     f"sample rows within tolerance {lossy['tolerance']:.2%}); cost on the other "
                     f"{lossy['holdout_rows']} rows: {lossy['metric']} {lossy[lossy['metric'] + '_full_holdout']:.5g}"
                     f" -> {lossy[lossy['metric'] + '_lossy_holdout']:.5g} ({lossy['relative_cost_holdout']:+.2%})")
    lines.extend(result.notes)
    return "\n".join(lines)
