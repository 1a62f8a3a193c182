"""The portable, fast model file: ONNX with one input per column, and a predictor that serves it.

``to_onnx(pipeline, sample, max_tree_nodes=2_000_000) -> OnnxResult``
    ``OnnxResult(model, reason, double_precision, parity)``: ``model`` is an ``onnx.ModelProto`` or
    None with ``reason`` saying why; never raises for an unconvertible pipeline. ``parity`` is a
    ``mlhelpers.formats.parity.ParityResult`` on ``sample``.
``save_onnx(model, path, compress=None) -> Path`` and ``OnnxPredictor(path_or_model)``
    A large graph is written gzip-compressed as ``<path>.gz`` (``mlhelpers.formats.onnx_files``, named here
    too: ``save_onnx`` returns the path it wrote, ``onnx_file(folder)`` finds a model folder's graph either
    way). ``OnnxPredictor`` reads both;
    ``.predict(frame)`` / ``.predict_proba(frame)`` take the same DataFrame the pipeline takes.

The skl2onnx converter fixes ``to_onnx`` registers live in ``mlhelpers.formats.converters``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlhelpers.core.heap import return_freed_heap
from mlhelpers.formats.converters import cast_tree_outputs, import_tree_ensemble_opset, register_converters
# where graphs live on disk (plain or gzip-compressed), named here too: callers import them from onnx_io
from mlhelpers.formats.onnx_files import (COMPRESS_ONNX_ABOVE_BYTES, GZIP_SUFFIX, is_onnx_file, onnx_file,  # noqa: F401
                                          plain_onnx, remove_onnx, save_onnx)
from mlhelpers.formats.parity import ParityResult, check_parity
from mlhelpers.formats.skops_io import ModelFileError


# Tree ensembles above this many nodes make ONNX graphs of gigabytes that take minutes and many GB
# of RAM to convert (issue 5: 300 deep trees on diamonds, 17.6M nodes, took 169 s and 18 GB);
# `mlh optimize` has a compact lossless format for those.
MAX_ONNX_TREE_NODES = 2_000_000


@dataclass
class OnnxResult:
    """Outcome of ``to_onnx``: the model, or None and the reason conversion failed."""

    model: Any | None
    reason: str | None
    double_precision: bool
    parity: ParityResult | None = None   # against the pipeline on the sample it was converted with


def tree_node_count(pipeline: Any) -> int:
    """Total decision-tree nodes in the pipeline's final estimator (0 if it has no sklearn trees)."""
    estimator = pipeline[-1] if hasattr(pipeline, "steps") else pipeline
    members = getattr(estimator, "estimators_", None)
    if members is None:
        members = [estimator]
    elif isinstance(members, np.ndarray):  # gradient boosting: (stages, classes) of trees
        members = members.ravel()
    # a Voting/Stacking ensemble's members are whole models: their trees are not counted here
    return int(sum(m.tree_.node_count for m in members if hasattr(m, "tree_")))


def input_columns(pipeline: Any, sample: pd.DataFrame) -> list[str]:
    """The columns the pipeline was fitted on (all of ``sample``'s when it does not say)."""
    names = getattr(pipeline, "feature_names_in_", None)
    columns = list(names) if names is not None else list(sample.columns)
    missing = [c for c in columns if c not in sample.columns]
    if missing:
        raise ValueError(f"sample lacks the columns {missing} the pipeline was fitted on; "
                         f"pass a frame with the training columns.")
    return columns


def is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


def task_of(pipeline: Any) -> str:
    from sklearn.base import is_classifier

    return "classification" if is_classifier(pipeline) else "regression"


def to_onnx(pipeline: Any, sample: pd.DataFrame, max_tree_nodes: int = MAX_ONNX_TREE_NODES,
            target_opset: int = 18) -> OnnxResult:
    """Convert a fitted pipeline to ONNX with one input per column; never raises for unconvertible ones.

    Numeric columns become double inputs and categorical ones string inputs (missing fed as "").
    Double precision comes first: float32 thresholds broke tree parity on real data (up to 201
    price units on diamonds); scikit-learn forests and trees become ai.onnx.ml opset 5
    ``TreeEnsemble`` nodes in double with scikit-learn's float32 input rounding and per-split NaN
    direction (``mlhelpers.formats.converters.forests``), exact. Only when the double graph cannot be built or run (skl2onnx's binary
    LogisticRegression, for one) is float32 tried, and kept only if parity holds. XGBoost trees stay
    float32, XGBoost's own precision; HistGradientBoosting becomes an ai.onnx.ml opset 5 TreeEnsemble
    (native categorical splits as set membership, see ``mlhelpers.formats.converters.hgb``). A graph that
    converts but breaks parity on ``sample`` is rejected (``model`` None, ``reason`` says by how
    much). Returns the model, whether it is double precision throughout, and its parity with the
    pipeline on ``sample``.
    """
    columns = input_columns(pipeline, sample)
    if any(type(step).__name__ == "DatetimeParts" for step in _all_steps(pipeline)):
        return OnnxResult(None, DATETIME_ONNX_REASON, False)
    nodes = tree_node_count(pipeline)
    if nodes > max_tree_nodes:
        return OnnxResult(None, f"the forest has {nodes:,} tree nodes, above max_tree_nodes="
                                f"{max_tree_nodes:,}: its ONNX graph would take minutes and many GB "
                                f"to build; use `mlh optimize` for a compact lossless format.", False)
    result = _convert(pipeline, sample, columns, True, target_opset)
    if result.model is None and result.parity is None:
        fallback = _convert(pipeline, sample, columns, False, target_opset)
        if fallback.model is not None:
            return fallback
        estimator = type(pipeline[-1] if hasattr(pipeline, "steps") else pipeline).__name__
        reasons = result.reason if fallback.reason == result.reason else \
            f"in double: {result.reason}; in float: {fallback.reason}"
        result.reason = f"{estimator} pipeline does not convert to ONNX ({reasons})"
    return result


# Checked before conversion: skl2onnx's parser failed on it with "'DatetimeParts' object has no attribute
# '__sklearn_tags__'", a reason that told the user nothing.
DATETIME_ONNX_REASON = ("date-time columns (DatetimeParts: year, month, day, weekday, hour, minute, days since "
                        "1970) have no ONNX converter: ONNX cannot parse dates; model.skops serves the model")


def _all_steps(estimator: Any):
    """``estimator`` and every step nested in it (pipelines, fitted column transformers, unions)."""
    yield estimator
    for attribute in ("steps", "transformers_", "transformer_list"):
        for item in getattr(estimator, attribute, None) or []:
            yield from _all_steps(item[1])


def _one_input_per_column(pipeline: Any, sample: pd.DataFrame, columns: list[str]) -> Any:
    """A bare model (alone, or the only step) behind a passthrough ColumnTransformer; else as is.

    The graph takes one input per column and skl2onnx hands all of them to the first step: a model
    fitted on a DataFrame takes one matrix, so the columns are joined first. Pipelines that start
    with a transformer (a ColumnTransformer, a nested pipeline, a union) route the columns themselves.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    steps = list(pipeline.steps) if hasattr(pipeline, "steps") else [("model", pipeline)]
    if len(columns) == 1 or hasattr(steps[0][1], "transform"):
        return pipeline
    as_is = ColumnTransformer([("as_is", "passthrough", columns)]).fit(sample[columns])
    return Pipeline([("columns", as_is)] + steps)


def _convert(pipeline: Any, sample: pd.DataFrame, columns: list[str], double: bool,
             target_opset: int) -> OnnxResult:
    task = task_of(pipeline)
    try:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType

        register_converters()
        number = DoubleTensorType if double else FloatTensorType
        initial_types = [(c, number([None, 1]) if is_numeric(sample[c]) else StringTensorType([None, 1]))
                         for c in columns]
        options = {id(pipeline[-1] if hasattr(pipeline, "steps") else pipeline): {"zipmap": False}} \
            if task == "classification" else None
        # Normalizer and LinearClassifier compute in float32 only: plain ops keep doubles.
        model = convert_sklearn(_one_input_per_column(pipeline, sample, columns),
                                initial_types=initial_types, options=options,
                                target_opset={"": target_opset, "ai.onnx.ml": 3},
                                black_op={"Normalizer", "LinearClassifier", "LinearRegressor"} if double else None)
        cast_tree_outputs(model)
        import_tree_ensemble_opset(model)
        restore_input_names(model, columns)
        predictor = OnnxPredictor(model)
    except Exception as error:  # skl2onnx raises many kinds for unsupported models
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return OnnxResult(None, f"{type(error).__name__}: {message[:300]}", False)
    try:
        parity = check_parity(pipeline, predictor, sample, task, name="onnx")
    except Exception as error:
        return OnnxResult(None, f"the converted graph fails to run ({type(error).__name__}: "
                                f"{str(error)[:300]})", False)
    if not parity.ok:
        return OnnxResult(None, f"the converted graph breaks parity on the sample (max abs difference "
                                f"{parity.max_abs_diff:.3g}, {parity.label_mismatches} label mismatches)",
                          False, parity)
    # opset 5 TreeEnsemble computes in its input's type; the opset 3 ops keep doubles in *_as_tensor
    float_trees = any(node.op_type.startswith("TreeEnsemble") and node.op_type != "TreeEnsemble" and
                      not any(a.name.endswith("_as_tensor") for a in node.attribute)
                      for node in model.graph.node)
    return OnnxResult(model, None, double and not float_trees, parity)


def restore_input_names(model: Any, columns: list[str]) -> None:
    """Name the graph's inputs after the frame's columns again.

    skl2onnx turns every character outside [A-Za-z0-9_] into "_" (R's ``Nat.Am`` becomes ``Nat_Am``), and
    the predictor looks inputs up by name in the frame. ONNX itself takes any string, so the graph gets the
    real names back: its inputs come in the order of ``initial_types``, one per column.
    """
    inputs = list(model.graph.input)
    if len(inputs) != len(columns):
        raise ValueError(f"the graph has {len(inputs)} inputs for {len(columns)} columns")
    renamed = {graph_input.name: str(column) for graph_input, column in zip(inputs, columns)
               if graph_input.name != str(column)}
    if not renamed:
        return
    for graph_input in inputs:
        graph_input.name = renamed.get(graph_input.name, graph_input.name)
    for node in model.graph.node:
        for position, name in enumerate(node.input):
            if name in renamed:
                node.input[position] = renamed[name]


NONE_CATEGORY = "\x00None"  # how a None category reaches the graph: a string no training data holds
_FEW_ROWS = 64  # up to this many rows, OnnxPredictor reads the frame as one object block


class OnnxPredictor:
    """An ONNX model (a path, a ModelProto or its bytes) behind the pipeline's interface.

    ``predict`` / ``predict_proba`` take the DataFrame the pipeline takes; ``transform`` returns the
    first output as is (for graphs of a preprocessor alone).
    """

    def __init__(self, path_or_model: Any):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        if isinstance(path_or_model, (str, Path)):
            with plain_onnx(path_or_model) as plain:
                self.session = self._session(ort, str(plain), options, path_or_model)
        else:
            source = path_or_model if isinstance(path_or_model, bytes) else path_or_model.SerializeToString()
            self.session = self._session(ort, source, options, "model")
        self._inputs = [(i.name, i.type) for i in self.session.get_inputs()]
        self._outputs = [o.name for o in self.session.get_outputs()]
        # loading builds temporary copies of every tree node; no session option (arena, memory patterns,
        # device allocator for initializers, graph optimization) changed what the process kept
        return_freed_heap()

    @staticmethod
    def _session(ort, source: Any, options: Any, named: Any):
        try:
            return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        except Exception as error:
            raise ModelFileError(f"{named} is not a loadable ONNX model ({type(error).__name__}: {error}).") from error

    def _feed(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        # Plain numpy per column: pandas' own where/astype cost ~0.1 ms each, which would dominate a
        # single-row call (onnxruntime itself answers in ~0.1 ms).
        missing = [name for name, _ in self._inputs if name not in frame.columns]
        if missing:
            raise ValueError(f"the frame lacks columns {missing} the ONNX model takes.")
        feed = {}
        for (name, kind), values in zip(self._inputs, self._columns(frame)):
            if kind == "tensor(string)":
                absent = pd.isna(values)
                text = values.astype(str).astype(object)
                if absent.any():
                    text[absent] = ""
                    # scikit-learn's encoders take only NaN for missing: None is an unseen category to
                    # them (one-hot: the infrequent column), so it is fed as one (the parity probe checks)
                    text[absent & np.array([value is None for value in values], dtype=bool)] = NONE_CATEGORY
                feed[name] = text.reshape(-1, 1)
            else:
                dtype = np.float64 if kind == "tensor(double)" else np.float32
                try:
                    numbers = values.astype(dtype)
                except (TypeError, ValueError):  # None, pd.NA or text among the numbers
                    numbers = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy().astype(dtype)
                feed[name] = numbers.reshape(-1, 1)
        return feed

    def _columns(self, frame: pd.DataFrame) -> list[np.ndarray]:
        names = [name for name, _ in self._inputs]
        if len(frame) > _FEW_ROWS or frame.columns.has_duplicates:
            return [frame[name].to_numpy() for name in names]
        # A request of a few rows: one object block is ~10x faster than pulling each column as a
        # Series (0.15 ms for 11 columns, more than onnxruntime's whole answer). Values keep their
        # Python types; the graphs take numbers and text only (datetimes never convert).
        position = {name: i for i, name in enumerate(frame.columns)}
        block = frame.to_numpy(dtype=object)
        return [block[:, position[name]] for name in names]

    def _run(self, frame: pd.DataFrame) -> list[np.ndarray]:
        return self.session.run(None, self._feed(frame))

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """The graph's first output for ``frame`` (a preprocessor's feature matrix)."""
        return np.asarray(self._run(frame)[0])

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Predicted labels (classification) or values (regression), one per row."""
        return np.asarray(self._run(frame)[0]).ravel()

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Class probabilities (rows x classes); only for classifiers."""
        if len(self._outputs) < 2:
            raise AttributeError("this ONNX model is a regressor: it has no probabilities.")
        return np.asarray(self._run(frame)[1])
