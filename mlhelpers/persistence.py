"""Persist a fitted pipeline safely, convert it to ONNX, prove parity and measure serving cost.

Public API (stable; the export step, ``mlh predict`` and ``mlh optimize`` build on it):

``save_skops(pipeline, path, compress=False) -> Path``
    Atomic skops write (``.skops``: a zip of JSON + arrays, no pickle code runs on load).
``load_skops(path, extra_trusted=()) -> pipeline``
    Loads with an explicit allowlist (``TRUSTED_TYPES`` + ``extra_trusted``), never blanket trust.
    A file holding any other type raises ``UntrustedModelError`` naming the types; a file that is not
    a skops zip, or is corrupt, raises ``ModelFileError``.
``to_onnx(pipeline, sample, max_tree_nodes=2_000_000) -> OnnxResult``
    ``OnnxResult(model, reason, double_precision, parity)``: ``model`` is an ``onnx.ModelProto`` or
    None with ``reason`` saying why; never raises for an unconvertible pipeline.
``save_onnx(model, path) -> Path`` and ``OnnxPredictor(path_or_model)``
    ``.predict(frame)`` / ``.predict_proba(frame)`` take the same DataFrame the pipeline takes.
``check_parity(reference, candidate, frame, task, tolerance=None, name="candidate") -> ParityResult``
    ``ParityResult(ok, max_abs_diff, max_rel_diff, label_mismatches, tolerance, n_rows, name)``;
    bounds: regression 1e-6 relative (7.6e-6 for float32 models such as XGBoost), probabilities 1e-5
    absolute, labels exact (rows the reference
    scores as an exact tie, top two probabilities within 1e-9, are counted apart in ``tied_mismatches``).
    ``assert_parity(result)`` raises ``ParityError`` naming the format and the difference.
``measure_serving(name, path, load_fn, frame, n_single=1000) -> dict``
    Size, load time, peak memory, single-row p50/p99 and batch throughput, measured in a fresh
    subprocess so imports, memory and caches of this process do not flatter anyone.
``serving_report(pipeline, frame, out_dir, ...) -> DataFrame``
    Every format (skops, ONNX when it converts) next to a joblib pickle of the same pipeline (the
    reference, measured in the same run, then deleted), with parity on ``frame``; writes
    ``serving_report.json`` into ``out_dir``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd

from mlhelpers.artifacts import atomic_path, write_json

# Types beyond skops' own default-trusted set (scikit-learn estimators, numpy arrays, builtins)
# that our pipelines contain; each was vetted as plain data holders with no code execution on
# load. Found with skops.io.get_untrusted_types over every model of the zoo on both tasks.
TRUSTED_TYPES: tuple[str, ...] = (
    "numpy.dtype",
    "mlhelpers.modeling.DatetimeParts",   # our own stateless transformer (column names only)
    # HistGradientBoosting keeps partial(check_array, ...) in its fitted preprocessor. A partial
    # is only as safe as the function it wraps; skops lists that function as a type of its own,
    # so partial(os.system) would still be refused for "os.system".
    "functools.partial",
    "sklearn.utils.validation.check_array",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn._loss.link.IdentityLink",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.link.MultinomialLogit",
    "sklearn._loss.loss.HalfSquaredError",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn._loss.loss.HalfMultinomialLoss",
    "xgboost.core.Booster",
    "xgboost.sklearn.XGBClassifier",
    "xgboost.sklearn.XGBRegressor",
)

REGRESSION_RTOL = 1e-6
# A float32 model (XGBoost predicts in float32) cannot be reproduced closer than its own rounding:
# sums of 300 float32 leaves in another order differ by ~10-20 float32 ulps (1.3e-6 relative measured
# on diamonds). Its regression bound is 64 float32 ulps (7.6e-6 relative) instead of 1e-6.
FLOAT32_ULPS = 64
# Rows whose top two reference probabilities differ by less than this are ties: which label wins
# is decided by rounding (in scikit-learn's own double sums too), so a flipped label there is
# reported (ParityResult.tied_mismatches) but does not break parity.
TIE_EPSILON = 1e-9
PROBA_ATOL = 1e-5
# Tree ensembles above this many nodes make ONNX graphs of gigabytes that take minutes and many GB
# of RAM to convert (issue 5: 300 deep trees on diamonds, 17.6M nodes, took 169 s and 18 GB);
# `mlh optimize` has a compact lossless format for those.
MAX_ONNX_TREE_NODES = 2_000_000


class ModelFileError(ValueError):
    """The model file is missing, not in the expected format, or corrupt."""


class UntrustedModelError(ModelFileError):
    """A skops file holds types outside the vetted allowlist: refused before anything is built."""


class ParityError(AssertionError):
    """An exported format's predictions differ from the in-memory model beyond the bound."""


# ---------------------------------------------------------------- skops


def save_skops(pipeline: Any, path: str | Path, compress: bool = False) -> Path:
    """Write ``pipeline`` to ``path`` in skops format atomically; return the path.

    ``compress=True`` deflates the zip (smaller file, slower load).
    """
    import skops.io as sio

    path = Path(path)
    with atomic_path(path) as temp:
        sio.dump(pipeline, temp, compression=zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED)
    return path


def skops_untrusted_types(path: str | Path) -> list[str]:
    """Types in a skops file that skops does not trust by default (see ``TRUSTED_TYPES``)."""
    import skops.io as sio

    path = _existing_file(path)
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path} is not a skops file (expected a zip archive written by "
                             f"save_skops / skops.io.dump); re-export the model with save_skops.")
    try:
        return list(sio.get_untrusted_types(file=path))
    except Exception as error:  # a damaged archive or schema fails in many ways
        raise ModelFileError(f"{path} is a corrupt skops file ({type(error).__name__}: {error}); "
                             f"re-export the model with save_skops.") from error


def load_skops(path: str | Path, extra_trusted: Iterable[str] = ()) -> Any:
    """Load a skops file, trusting only ``TRUSTED_TYPES`` plus ``extra_trusted``; return the object.

    Raises ``UntrustedModelError`` (naming the types) when the file holds anything else, and
    ``ModelFileError`` when it is not a skops file or is corrupt.
    """
    import skops.io as sio

    allowed = set(TRUSTED_TYPES) | set(extra_trusted)
    found = skops_untrusted_types(path)
    refused = sorted(set(found) - allowed)
    if refused:
        raise UntrustedModelError(
            f"{path} contains types outside the trusted allowlist: {', '.join(refused)}. "
            f"Loading them could run arbitrary code. If the file comes from a source you trust, "
            f"inspect it with skops.io.get_untrusted_types(file=...) and vet each type, then pass "
            f"the vetted names as load_skops(path, extra_trusted=[...]).")
    try:
        return sio.load(path, trusted=found)
    except Exception as error:
        raise ModelFileError(f"{path} could not be loaded as a skops file ({type(error).__name__}: "
                             f"{error}); re-export the model with save_skops.") from error


def _existing_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist; check the path or run the export step.")
    return path


# ---------------------------------------------------------------- ONNX


@dataclass
class ParityResult:
    """How closely a candidate format reproduces the reference model on ``n_rows`` rows."""

    ok: bool
    max_abs_diff: float        # predictions (regression) or probabilities (classification)
    max_rel_diff: float        # |diff| / max(|reference|, 1): relative, absolute below 1
    label_mismatches: int      # classification: rows whose predicted label differs; 0 for regression
    tolerance: float           # the bound applied (relative for regression, absolute for probabilities)
    n_rows: int
    name: str = "candidate"
    tied_mismatches: int = 0   # label flips on rows the reference itself scores as a tie (TIE_EPSILON)
    task: str = "regression"


@dataclass
class OnnxResult:
    """Outcome of ``to_onnx``: the model, or None and the reason conversion failed."""

    model: Any | None
    reason: str | None
    double_precision: bool
    parity: ParityResult | None = None   # against the pipeline on the sample it was converted with


def _register_converters() -> None:
    """Teach skl2onnx XGBoost (onnxmltools) and a SimpleImputer that handles what our pipelines use.

    Registration is global to skl2onnx and idempotent; it runs on the first conversion, never at import.
    """
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes
    from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder
    from xgboost import XGBClassifier, XGBRegressor

    def convert_xgboost_on_float32(scope, operator, container):
        convert_xgboost(scope, operator, _Float32TreeInputs(container, scope))

    update_registered_converter(
        XGBClassifier, "XGBoostXGBClassifier", calculate_linear_classifier_output_shapes,
        convert_xgboost_on_float32, options={"nocl": [True, False], "zipmap": [True, False, "columns"]})
    update_registered_converter(
        XGBRegressor, "XGBoostXGBRegressor", _xgb_regressor_shape, convert_xgboost_on_float32)
    update_registered_converter(SimpleImputer, "SklearnSimpleImputer", _imputer_shape,
                                _convert_imputer, overwrite=True)
    for encoder, alias in ((OneHotEncoder, "SklearnOneHotEncoder"), (OrdinalEncoder, "SklearnOrdinalEncoder")):
        update_registered_converter(encoder, alias, _encoder_shape, _convert_encoder, overwrite=True,
                                    parser=_parse_encoder)
    _use_double_trees()


def _xgb_regressor_shape(operator) -> None:
    # onnxmltools' XGBoost graph outputs float32 whatever the input type (XGBoost's own precision)
    from skl2onnx.common.data_types import FloatTensorType

    operator.outputs[0].type = FloatTensorType([operator.inputs[0].get_first_dimension(), 1])


_SKLEARN_TREE_ALIASES = tuple(f"Sklearn{kind}{task}" for kind in ("RandomForest", "ExtraTrees", "DecisionTree",
                                                                   "HistGradientBoosting")
                              for task in ("Regressor", "Classifier"))
_DOUBLE_TENSOR_ATTRIBUTES = ("nodes_values", "nodes_hitrates", "target_weights", "class_weights", "base_values")


class _DoubleTreeContainer:
    """Wraps skl2onnx's container so tree-ensemble nodes keep float64 thresholds and leaf values.

    skl2onnx 1.20 writes them as float32 attributes (``nodes_values``) even for double inputs, which is
    what broke parity on diamonds; ai.onnx.ml opset 3 has ``*_as_tensor`` twins that hold doubles.
    """

    def __init__(self, container):
        self._container = container

    def __getattr__(self, name):
        return getattr(self._container, name)

    def add_node(self, op_type, inputs, outputs, op_domain="", op_version=None, name=None, **attrs):
        from onnx import numpy_helper

        if op_type in ("TreeEnsembleRegressor", "TreeEnsembleClassifier"):
            if "nodes_missing_value_tracks_true" in attrs:
                # skl2onnx 1.20 passes HistGradientBoosting's numpy booleans, which onnx refuses
                attrs["nodes_missing_value_tracks_true"] = [int(v) for v in attrs["nodes_missing_value_tracks_true"]]
            for key in _DOUBLE_TENSOR_ATTRIBUTES:
                if key in attrs:
                    values = np.asarray(attrs.pop(key), dtype=np.float64).ravel()
                    attrs[f"{key}_as_tensor"] = numpy_helper.from_array(values, name=f"{key}_as_tensor")
            op_version = 3
        return self._container.add_node(op_type, inputs, outputs, op_domain=op_domain,
                                        op_version=op_version, name=name, **attrs)


class _Float32TreeInputs:
    """Wraps the container so XGBoost's tree ops read float32 inputs, as XGBoost itself does.

    XGBoost splits at observed values stored as float32 (``x < 0.3f``); a double input 0.3 is below
    0.3f while XGBoost's float32 0.3 is not, which flipped branches on diamonds (1,730 price units).
    """

    def __init__(self, container, scope):
        self._container, self._scope = container, scope

    def __getattr__(self, name):
        return getattr(self._container, name)

    def add_node(self, op_type, inputs, outputs, *args, **kwargs):
        from onnx import TensorProto

        if op_type.startswith("TreeEnsemble"):
            inputs = [inputs] if isinstance(inputs, str) else list(inputs)
            cast = self._scope.get_unique_variable_name("float32_input")
            self._container.add_node("Cast", inputs[:1], [cast], to=TensorProto.FLOAT)
            inputs = [cast] + inputs[1:]
        return self._container.add_node(op_type, inputs, outputs, *args, **kwargs)


def _use_double_trees() -> None:
    from skl2onnx.common._registration import RegisteredConverter, _converter_pool
    from skl2onnx.common.data_types import DoubleTensorType

    for alias in _SKLEARN_TREE_ALIASES:
        registered = _converter_pool.get(alias)
        if registered is None or getattr(registered._fct, "_mlh_double", False):
            continue
        original = registered._fct

        def convert(scope, operator, container, _original=original):
            if isinstance(operator.inputs[0].type, DoubleTensorType):
                return _original(scope, operator, _DoubleTreeContainer(container), op_version=3)
            return _original(scope, operator, container)

        convert._mlh_double = True
        _converter_pool[alias] = RegisteredConverter(convert, registered.get_allowed_options())


def _imputer_shape(operator) -> None:
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType

    imputer = operator.raw_operator
    input_type = type(operator.inputs[0].type)
    n_features = len(imputer.statistics_)
    n_indicators = len(imputer.indicator_.features_) if imputer.add_indicator else 0
    output_type = input_type if input_type in (StringTensorType, DoubleTensorType, FloatTensorType) \
        else DoubleTensorType
    operator.outputs[0].type = output_type([operator.inputs[0].get_first_dimension(),
                                            n_features + n_indicators])


def _concat_inputs(scope, operator, container) -> str:
    # skl2onnx's concatenate_variables uses FeatureVectorizer, which takes no strings and outputs
    # float32; Concat keeps the inputs' own type (double stays double).
    names = [variable.full_name for variable in operator.inputs]
    if len(names) == 1:
        return names[0]
    joined = scope.get_unique_variable_name("joined")
    container.add_node("Concat", names, [joined], axis=1)
    return joined


def _convert_imputer(scope, operator, container) -> None:
    # skl2onnx's own SimpleImputer converter ignores add_indicator (the output then silently lacks
    # the indicator columns), rounds numeric fill values to float32 and refuses NaN as the missing
    # marker of string columns. This one keeps doubles, appends the indicators and treats "" as
    # missing in string inputs (OnnxPredictor feeds NaN as "").
    from onnx import TensorProto
    from skl2onnx.common.data_types import StringTensorType

    imputer = operator.raw_operator
    is_string = isinstance(operator.inputs[0].type, StringTensorType)
    stats = imputer.statistics_
    if not is_string and np.isnan(np.asarray(stats, dtype=float)).any():
        raise NotImplementedError("SimpleImputer with an all-missing numeric column is not convertible")
    if is_string and imputer.add_indicator:
        raise NotImplementedError("SimpleImputer(add_indicator=True) on string columns is not convertible")
    features = _concat_inputs(scope, operator, container)
    missing = scope.get_unique_variable_name("missing")
    fill = scope.get_unique_variable_name("fill")
    out_name = operator.outputs[0].full_name
    if is_string:
        marker = imputer.missing_values if isinstance(imputer.missing_values, str) else ""
        marker_name = scope.get_unique_variable_name("marker")
        container.add_initializer(marker_name, TensorProto.STRING, [1], [marker.encode()])
        container.add_node("Equal", [features, marker_name], [missing], op_version=19)
        container.add_initializer(fill, TensorProto.STRING, [1, len(stats)],
                                  [str(v).encode() for v in stats])
    else:
        proto = (TensorProto.DOUBLE if operator.inputs[0].type.__class__.__name__ == "DoubleTensorType"
                 else TensorProto.FLOAT)
        if isinstance(imputer.missing_values, float) and np.isnan(imputer.missing_values):
            container.add_node("IsNaN", [features], [missing])
        else:
            marker_name = scope.get_unique_variable_name("marker")
            container.add_initializer(marker_name, proto, [1], [float(imputer.missing_values)])
            container.add_node("Equal", [features, marker_name], [missing])
        container.add_initializer(fill, proto, [1, len(stats)], np.asarray(stats, dtype=float).tolist())
    if not imputer.add_indicator or not len(imputer.indicator_.features_):
        container.add_node("Where", [missing, fill, features], [out_name])
        return
    imputed = scope.get_unique_variable_name("imputed")
    container.add_node("Where", [missing, fill, features], [imputed])
    columns = scope.get_unique_variable_name("indicator_columns")
    container.add_initializer(columns, TensorProto.INT64, [len(imputer.indicator_.features_)],
                              [int(i) for i in imputer.indicator_.features_])
    picked = scope.get_unique_variable_name("indicator_bool")
    container.add_node("Gather", [missing, columns], [picked], axis=1)
    indicator = scope.get_unique_variable_name("indicator")
    container.add_node("Cast", [picked], [indicator], to=proto)
    container.add_node("Concat", [imputed, indicator], [out_name], axis=1)


def _encoder_tables(encoder) -> list[np.ndarray]:
    """Per input column, the encoder's output block for each known category, then for an unseen one.

    Built by asking the fitted encoder itself (``transform`` on probe rows), so infrequent-category
    grouping, ``drop``, ``unknown_value`` and ``max_categories`` come out exactly as scikit-learn does
    them; skl2onnx's converters ignore infrequent categories (its graphs fail or differ).
    """
    categories = encoder.categories_
    widths = getattr(encoder, "_n_features_outs", None) or [1] * len(categories)
    unseen = "\x00mlh-unseen-category"
    tables, start = [], 0
    for i, (known, width) in enumerate(zip(categories, widths)):
        probe = pd.DataFrame({j: [c[0]] * (len(known) + 1) for j, c in enumerate(categories)}, dtype=object)
        probe[i] = list(known) + [unseen]
        probe.columns = list(getattr(encoder, "feature_names_in_", range(len(categories))))
        try:
            out = encoder.transform(probe)
        except ValueError:  # handle_unknown="error": unseen categories never reach a served model
            out = np.vstack([encoder.transform(probe.iloc[:-1]), np.zeros((1, sum(widths)))])
        out = out.toarray() if hasattr(out, "toarray") else np.asarray(out, dtype=float)
        tables.append(out[:, start:start + width].astype(float))
        start += width
    return tables


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA


def _parse_encoder(scope, model, inputs, custom_parsers=None):
    # Declare the double output at parse time: skl2onnx types a ColumnTransformer's output (and so
    # the classifier's probabilities) from its first branch's declared type, before shapes are known.
    from skl2onnx._supported_operators import _get_sklearn_operator_name
    from skl2onnx.common.data_types import DoubleTensorType

    operator = scope.declare_local_operator(_get_sklearn_operator_name(type(model)), model)
    operator.inputs = inputs
    operator.outputs.append(scope.declare_local_variable("encoded", DoubleTensorType()))
    return operator.outputs


def _encoder_shape(operator) -> None:
    from skl2onnx.common.data_types import DoubleTensorType

    widths = getattr(operator.raw_operator, "_n_features_outs", None) or [1] * len(
        operator.raw_operator.categories_)
    operator.outputs[0].type = DoubleTensorType([operator.inputs[0].get_first_dimension(), sum(widths)])


def _convert_encoder(scope, operator, container) -> None:
    # One lookup table per column: LabelEncoder maps the category to a row, Gather picks the block.
    from onnx import TensorProto
    from skl2onnx.common.data_types import StringTensorType

    encoder = operator.raw_operator
    features = _concat_inputs(scope, operator, container)
    is_string = isinstance(operator.inputs[0].type, StringTensorType)
    blocks = []
    for i, (known, table) in enumerate(zip(encoder.categories_, _encoder_tables(encoder))):
        column_index = scope.get_unique_variable_name("column_index")
        container.add_initializer(column_index, TensorProto.INT64, [1], [i])
        column = scope.get_unique_variable_name("column")
        container.add_node("ArrayFeatureExtractor", [features, column_index], [column], op_domain="ai.onnx.ml")
        row = scope.get_unique_variable_name("row")
        # missing values are a category of their own; OnnxPredictor feeds them as ""
        keys = ({"keys_strings": ["" if _is_missing(k) else str(k) for k in known]} if is_string
                else {"keys_floats": [float(k) for k in known]})
        container.add_node("LabelEncoder", [column], [row], op_domain="ai.onnx.ml", op_version=2,
                           values_int64s=list(range(len(known))), default_int64=len(known), **keys)
        flat = scope.get_unique_variable_name("flat_row")
        shape = scope.get_unique_variable_name("shape")
        container.add_initializer(shape, TensorProto.INT64, [1], [-1])
        container.add_node("Reshape", [row, shape], [flat])
        lookup = scope.get_unique_variable_name("lookup")
        container.add_initializer(lookup, TensorProto.DOUBLE, list(table.shape), table.ravel().tolist())
        block = scope.get_unique_variable_name("block")
        container.add_node("Gather", [lookup, flat], [block], axis=0)
        blocks.append(block)
    if len(blocks) == 1:
        container.add_node("Identity", blocks, [operator.outputs[0].full_name])
    else:
        container.add_node("Concat", blocks, [operator.outputs[0].full_name], axis=1)


def tree_node_count(pipeline: Any) -> int:
    """Total decision-tree nodes in the pipeline's final estimator (0 if it has no sklearn trees)."""
    estimator = pipeline[-1] if hasattr(pipeline, "steps") else pipeline
    trees = getattr(estimator, "estimators_", None)
    if trees is None and hasattr(estimator, "tree_"):
        trees = [estimator]
    if trees is None:
        return 0
    return int(sum(t.tree_.node_count for t in np.ravel(trees) if hasattr(t, "tree_")))


def input_columns(pipeline: Any, sample: pd.DataFrame) -> list[str]:
    """The columns the pipeline was fitted on (all of ``sample``'s when it does not say)."""
    names = getattr(pipeline, "feature_names_in_", None)
    columns = list(names) if names is not None else list(sample.columns)
    missing = [c for c in columns if c not in sample.columns]
    if missing:
        raise ValueError(f"sample lacks the columns {missing} the pipeline was fitted on; "
                         f"pass a frame with the training columns.")
    return columns


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


def _task_of(pipeline: Any) -> str:
    from sklearn.base import is_classifier

    return "classification" if is_classifier(pipeline) else "regression"


def to_onnx(pipeline: Any, sample: pd.DataFrame, max_tree_nodes: int = MAX_ONNX_TREE_NODES,
            target_opset: int = 18) -> OnnxResult:
    """Convert a fitted pipeline to ONNX with one input per column; never raises for unconvertible ones.

    Numeric columns become double inputs and categorical ones string inputs (missing fed as "").
    Double precision comes first: float32 thresholds broke tree parity on real data (up to 201
    price units on diamonds), while double thresholds (ai.onnx.ml opset 3 ``*_as_tensor``)
    reproduce scikit-learn. Only when the double graph cannot be built or run (skl2onnx's binary
    LogisticRegression, for one) is float32 tried, and kept only if parity holds. XGBoost trees stay
    float32, XGBoost's own precision. A graph that converts but breaks parity on ``sample`` is
    rejected (``model`` None, ``reason`` says by how much). Returns the model, whether it is double
    precision throughout, and its parity with the pipeline on ``sample``.
    """
    columns = input_columns(pipeline, sample)
    nodes = tree_node_count(pipeline)
    if nodes > max_tree_nodes:
        return OnnxResult(None, f"the forest has {nodes:,} tree nodes, above max_tree_nodes="
                                f"{max_tree_nodes:,}: its ONNX graph would take minutes and many GB "
                                f"to build; use `mlh optimize` for a compact lossless format.", False)
    estimator = pipeline[-1] if hasattr(pipeline, "steps") else pipeline
    if np.any(getattr(estimator, "is_categorical_", None) is not None and estimator.is_categorical_):
        # skl2onnx reads HistGradientBoosting's categorical bitset splits as numeric thresholds
        return OnnxResult(None, f"{type(estimator).__name__} uses native categorical splits, which "
                                "skl2onnx cannot express; the skops file serves it", False)
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


def _convert(pipeline: Any, sample: pd.DataFrame, columns: list[str], double: bool,
             target_opset: int) -> OnnxResult:
    task = _task_of(pipeline)
    try:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType

        _register_converters()
        number = DoubleTensorType if double else FloatTensorType
        initial_types = [(c, number([None, 1]) if _is_numeric(sample[c]) else StringTensorType([None, 1]))
                         for c in columns]
        options = {id(pipeline[-1] if hasattr(pipeline, "steps") else pipeline): {"zipmap": False}} \
            if task == "classification" else None
        # Normalizer and LinearClassifier compute in float32 only: plain ops keep doubles.
        model = convert_sklearn(pipeline, initial_types=initial_types, options=options,
                                target_opset={"": target_opset, "ai.onnx.ml": 3},
                                black_op={"Normalizer", "LinearClassifier", "LinearRegressor"} if double else None)
        _cast_tree_outputs(model)
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
    float_trees = any(node.op_type.startswith("TreeEnsemble") and
                      not any(a.name.endswith("_as_tensor") for a in node.attribute)
                      for node in model.graph.node)
    return OnnxResult(model, None, double and not float_trees, parity)


def _cast_tree_outputs(model) -> None:
    """Insert a Cast where a TreeEnsemble op's float32 output is declared double.

    ai.onnx.ml tree ensembles always output float32 (thresholds stay double); skl2onnx declares the
    output with the input's type once inputs are double, which onnxruntime rejects.
    """
    from onnx import TensorProto, helper

    declared = {v.name: v.type.tensor_type.elem_type for v in list(model.graph.output) + list(model.graph.value_info)}
    position = 0
    while position < len(model.graph.node):
        node = model.graph.node[position]
        position += 1
        if not node.op_type.startswith("TreeEnsemble"):
            continue
        score_index = 1 if node.op_type == "TreeEnsembleClassifier" else 0
        name = node.output[score_index]
        if declared.get(name) != TensorProto.DOUBLE:
            continue
        node.output[score_index] = f"{name}_float32"
        model.graph.node.insert(position, helper.make_node("Cast", [f"{name}_float32"], [name],
                                                           to=TensorProto.DOUBLE, name=f"{name}_to_double"))
        position += 1


def save_onnx(model: Any, path: str | Path) -> Path:
    """Write an ONNX ModelProto to ``path`` atomically; return the path."""
    path = Path(path)
    with atomic_path(path) as temp:
        temp.write_bytes(model.SerializeToString())
    return path


class OnnxPredictor:
    """An ONNX model (a path, a ModelProto or its bytes) behind the pipeline's interface.

    ``predict`` / ``predict_proba`` take the DataFrame the pipeline takes; ``transform`` returns the
    first output as is (for graphs of a preprocessor alone).
    """

    def __init__(self, path_or_model: Any):
        import onnxruntime as ort

        if isinstance(path_or_model, (str, Path)):
            source = str(_existing_file(path_or_model))
        elif isinstance(path_or_model, bytes):
            source = path_or_model
        else:
            source = path_or_model.SerializeToString()
        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        except Exception as error:
            raise ModelFileError(f"{path_or_model if isinstance(path_or_model, (str, Path)) else 'model'}"
                                 f" is not a loadable ONNX model ({type(error).__name__}: {error}).") from error
        self._inputs = [(i.name, i.type) for i in self.session.get_inputs()]
        self._outputs = [o.name for o in self.session.get_outputs()]

    def _feed(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        # Plain numpy per column: pandas' own where/astype cost ~0.1 ms each, which would dominate a
        # single-row call (onnxruntime itself answers in ~0.05 ms).
        missing = [name for name, _ in self._inputs if name not in frame.columns]
        if missing:
            raise ValueError(f"the frame lacks columns {missing} the ONNX model takes.")
        feed = {}
        for name, kind in self._inputs:
            values = frame[name].to_numpy()
            if kind == "tensor(string)":
                absent = pd.isna(values)
                values = values.astype(str).astype(object)
                if absent.any():
                    values[absent] = ""
                feed[name] = values.reshape(-1, 1)
            else:
                dtype = np.float64 if kind == "tensor(double)" else np.float32
                if values.dtype.kind not in "fiub":
                    values = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy()
                feed[name] = values.astype(dtype).reshape(-1, 1)
        return feed

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


# ---------------------------------------------------------------- parity


def check_parity(reference: Any, candidate: Any, frame: pd.DataFrame, task: str,
                 tolerance: float | None = None, name: str = "candidate") -> ParityResult:
    """Compare ``candidate``'s predictions with ``reference``'s on ``frame``; return the differences.

    Regression: max relative difference (|diff| / max(|reference|, 1)) within ``tolerance``
    (default 1e-6; 64 float32 ulps, 7.6e-6, when the reference itself predicts in float32). Classification: labels must match exactly and probabilities within
    ``tolerance`` absolute (default 1e-5); a flipped label on a row the reference scores as a tie
    (top two probabilities within ``TIE_EPSILON``: 0.5/0.5 from an even number of trees) is counted
    in ``tied_mismatches`` instead, since rounding alone decides it.
    """
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}.")
    if len(frame) == 0:
        raise ValueError("parity needs at least one row; pass a non-empty frame (e.g. the test split).")
    if task == "regression":
        raw = np.asarray(reference.predict(frame))
        bound = REGRESSION_RTOL if tolerance is None else tolerance
        if tolerance is None and raw.dtype == np.float32:
            bound = max(REGRESSION_RTOL, FLOAT32_ULPS * float(np.finfo(np.float32).eps))
        ref = raw.astype(float).ravel()
        cand = np.asarray(candidate.predict(frame), dtype=float).ravel()
        diff = np.abs(ref - cand)
        rel = diff / np.maximum(np.abs(ref), 1.0)
        max_abs, max_rel = float(np.nanmax(diff)), float(np.nanmax(rel))
        ok = bool(np.isfinite(diff).all() and max_rel <= bound)
        return ParityResult(ok, max_abs, max_rel, 0, bound, len(frame), name, 0, task)
    bound = PROBA_ATOL if tolerance is None else tolerance
    flipped = np.asarray(reference.predict(frame)).ravel() != np.asarray(candidate.predict(frame)).ravel()
    tied = np.zeros(len(frame), dtype=bool)
    max_abs = max_rel = 0.0
    if hasattr(reference, "predict_proba") and hasattr(candidate, "predict_proba"):
        ref = np.asarray(reference.predict_proba(frame), dtype=float)
        cand = np.asarray(candidate.predict_proba(frame), dtype=float)
        max_abs = max_rel = float(np.abs(ref - cand).max())
        top_two = np.sort(ref, axis=1)[:, -2:] if ref.shape[1] > 1 else np.zeros((len(ref), 2))
        tied = (top_two[:, 1] - top_two[:, 0]) < TIE_EPSILON
    mismatches, tied_mismatches = int((flipped & ~tied).sum()), int((flipped & tied).sum())
    ok = mismatches == 0 and max_abs <= bound
    return ParityResult(ok, max_abs, max_rel, mismatches, bound, len(frame), name, tied_mismatches, task)


def assert_parity(result: ParityResult) -> ParityResult:
    """Raise ``ParityError`` naming the format and the difference if ``result`` broke its bound."""
    if not result.ok:
        if result.task == "classification":
            what = (f"{result.label_mismatches} label mismatches, max probability difference "
                    f"{result.max_abs_diff:.3g}")
        else:
            what = f"max difference {result.max_abs_diff:.6g} (relative {result.max_rel_diff:.3g})"
        raise ParityError(f"{result.name} predictions differ from the in-memory model on "
                          f"{result.n_rows} rows: {what}, above the bound {result.tolerance:g}. "
                          f"Do not ship this format; export without it or fix the conversion.")
    return result


# ---------------------------------------------------------------- serving measurements


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
rows = [frame.iloc[[i % len(frame)]] for i in range(spec["n_single"])]
baseline_mb = psutil.Process().memory_info().rss / 2**20
start = time.perf_counter()
model = load(spec["path"], **spec["load_kwargs"])
load_seconds = time.perf_counter() - start
# One-row requests are served on one thread, as a request-per-worker server does: waking an OpenMP
# pool (HistGradientBoosting, forests) costs more than the row itself, and under load it stalls for
# seconds. Every format, the pickle reference included, is measured the same way.
from threadpoolctl import threadpool_limits
with threadpool_limits(limits=1):
    for row in rows[:20]:
        model.predict(row)
    times = []
    for row in rows:
        t = time.perf_counter()
        model.predict(row)
        times.append(time.perf_counter() - t)
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
    ``model_memory_mb`` (that peak minus the RSS before loading), ``single_row_p50_ms`` /
    ``single_row_p99_ms`` over ``n_single`` one-row calls (native thread pools limited to one
    thread, as a server answers one request), and ``batch_rows_per_second`` on ``frame`` (all cores).
    """
    path = _existing_file(path)
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
                   n_single: int = 1000, write: bool = True) -> pd.DataFrame:
    """Measure every format next to a joblib pickle of the same pipeline; return one row per format.

    Uses ``skops_path`` / ``onnx_path`` when given, else writes ``model.skops`` (and ``model.onnx``
    when the pipeline converts) into ``out_dir``. The pickle (the reference) is written to a temp
    folder and deleted afterwards. Each row has the ``measure_serving`` figures, parity on ``frame``
    (``parity_ok``, ``max_abs_diff``), and ratios against the pickle (``size_ratio``: pickle size /
    this; ``single_row_speedup``: pickle p50 / this). ``recommended`` marks the fastest single-row
    format that holds parity and is not the pickle. With ``write``, saves ``serving_report.json``.
    """
    import joblib

    out_dir = Path(out_dir)
    task = _task_of(pipeline)
    columns = input_columns(pipeline, frame)
    frame = frame[columns]
    skops_path = Path(skops_path) if skops_path else save_skops(pipeline, out_dir / "model.skops")
    onnx_reason = None
    if onnx_path is None:
        converted = to_onnx(pipeline, frame)
        onnx_reason = converted.reason
        if converted.model is not None:
            onnx_path = save_onnx(converted.model, out_dir / "model.onnx")
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
    for name, path, loader, load_here in formats:
        parity = check_parity(pipeline, load_here(path), frame, task, name=name)
        rows.append(measure_serving(name, path, loader, frame, n_single)
                    | {"parity_ok": parity.ok, "max_abs_diff": parity.max_abs_diff, "reference": False})
    report = pd.DataFrame(rows)
    reference = report.iloc[0]
    report["size_ratio"] = reference["size_bytes"] / report["size_bytes"]
    report["single_row_speedup"] = reference["single_row_p50_ms"] / report["single_row_p50_ms"]
    candidates = report[~report["reference"] & report["parity_ok"]]
    report["recommended"] = False
    if len(candidates):
        report.loc[candidates["single_row_p50_ms"].idxmin(), "recommended"] = True
    if write:
        write_json(out_dir / "serving_report.json", {
            "reference": "pickle", "task": task, "n_rows": len(frame), "n_single": n_single,
            "onnx_reason": onnx_reason,
            "recommended": next(iter(report.loc[report["recommended"], "name"]), None),
            "formats": json.loads(report.to_json(orient="records")),
        })
    return report


def parity_dict(result: ParityResult) -> dict[str, Any]:
    """``result`` as plain JSON-ready values (for metrics files and model cards)."""
    return asdict(result)
