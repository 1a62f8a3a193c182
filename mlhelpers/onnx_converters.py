"""skl2onnx converter fixes: what ``mlhelpers.persistence.to_onnx`` needs to convert our pipelines exactly.

``register_converters()`` teaches skl2onnx XGBoost (through onnxmltools, on float32 inputs as
XGBoost splits), double-precision tree thresholds (ai.onnx.ml opset 3 ``*_as_tensor``),
HistGradientBoosting with its native categorical splits (ai.onnx.ml opset 5 ``TreeEnsemble``), and
its own SimpleImputer / OneHotEncoder / OrdinalEncoder converters (indicators, doubles, string
missing values, infrequent categories). ``cast_tree_outputs(model)`` repairs the float32 outputs
of tree ensembles declared double. Registration is global to skl2onnx and idempotent; nothing
runs at import.
"""

from __future__ import annotations

from itertools import count
from typing import Any

import numpy as np
import pandas as pd


def register_converters() -> None:
    """Teach skl2onnx XGBoost (onnxmltools) and a SimpleImputer that handles what our pipelines use.

    Registration is global to skl2onnx and idempotent; it runs on the first conversion, never at import.
    """
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes
    from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
    from skl2onnx.common.shape_calculator import calculate_linear_regressor_output_shapes
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
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
    update_registered_converter(
        HistGradientBoostingClassifier, "SklearnHistGradientBoostingClassifier",
        calculate_linear_classifier_output_shapes, _convert_hist_gradient_boosting, overwrite=True,
        options={"nocl": [True, False], "zipmap": [True, False, "columns"]})
    update_registered_converter(
        HistGradientBoostingRegressor, "SklearnHistGradientBoostingRegressor",
        calculate_linear_regressor_output_shapes, _convert_hist_gradient_boosting, overwrite=True)
    _use_double_trees()


def _xgb_regressor_shape(operator) -> None:
    # onnxmltools' XGBoost graph outputs float32 whatever the input type (XGBoost's own precision)
    from skl2onnx.common.data_types import FloatTensorType

    operator.outputs[0].type = FloatTensorType([operator.inputs[0].get_first_dimension(), 1])


_SKLEARN_TREE_ALIASES = tuple(f"Sklearn{kind}{task}" for kind in ("RandomForest", "ExtraTrees", "DecisionTree")
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


def hist_gradient_boosting_trees(model, feature_inputs: list[int],
                                 category_values: dict[int, np.ndarray]) -> dict[str, Any]:
    """A fitted HistGradientBoosting model's trees as ai.onnx.ml opset 5 ``TreeEnsemble`` attributes.

    skl2onnx's own converter reads categorical bitset splits as numeric thresholds and sums leaves in
    float32; opset 5 has set-membership splits and computes in the input's type.
    Each split decides exactly as scikit-learn's predictor does: numeric ``x <= threshold`` (float64)
    goes left; a categorical value goes left if it is in the split's left set, right if it is another
    category seen in training, and the missing-value way (NaN, unseen values) otherwise. A membership
    node tests the set whose complement takes the missing-value way, in the input's own values (the
    model's built-in encoder, which puts categorical columns first, is folded into the trees).
    ``feature_inputs`` and ``category_values`` are ``_hist_gradient_boosting_inputs(model)``.
    """
    from onnx import numpy_helper

    known_bitsets, bitset_of_feature = model._bin_mapper.make_known_categories_bitsets()

    def members(bitset: np.ndarray, feature: int) -> set[float]:
        codes = np.flatnonzero(np.unpackbits(bitset.view(np.uint8), bitorder="little"))
        values = category_values.get(feature)
        values = codes.astype(float) if values is None else values[codes[codes < len(values)]]
        return set(values[~np.isnan(values)].tolist())

    nodes_out: dict[str, list] = {key: [] for key in ("feature", "split", "mode", "missing", "true", "true_leaf",
                                                      "false", "false_leaf")}
    membership: list[float] = []
    leaf_weights: list[float] = []
    leaf_targets: list[int] = []
    roots: list[int] = []

    def add_node(feature, split, mode, missing, true, false, true_leaf, false_leaf):
        for key, value in zip(nodes_out, (feature, split, mode, missing, true, true_leaf, false, false_leaf)):
            nodes_out[key].append(value)

    for predictors in model._predictors:
        for target, predictor in enumerate(predictors):
            nodes = predictor.nodes
            is_leaf = nodes["is_leaf"].astype(bool)
            internal, leaves = np.flatnonzero(~is_leaf), np.flatnonzero(is_leaf)
            node_id = dict(zip(internal.tolist(), count(len(nodes_out["feature"]))))
            leaf_id = dict(zip(leaves.tolist(), count(len(leaf_weights))))
            leaf_weights.extend(nodes["value"][leaves].astype(float).tolist())
            leaf_targets.extend([target] * len(leaves))
            roots.append(len(nodes_out["feature"]))
            if not len(internal):  # a lone leaf: one split whose both ways reach it
                add_node(0, 0.0, 0, 0, leaf_id[0], leaf_id[0], 1, 1)
                continue

            def child(index: int) -> tuple[int, int]:
                return (leaf_id[index], 1) if is_leaf[index] else (node_id[index], 0)

            for index in internal:
                node = nodes[index]
                left, right = child(int(node["left"])), child(int(node["right"]))
                feature, missing_left = int(node["feature_idx"]), bool(node["missing_go_to_left"])
                column = feature_inputs[feature]
                if node["is_categorical"]:
                    left_set = members(predictor.raw_left_cat_bitsets[node["bitset_idx"]], feature)
                    if missing_left:  # right iff a known category outside the left set
                        tested = members(known_bitsets[bitset_of_feature[feature]], feature) - left_set
                        true, false = right, left
                    else:
                        tested, true, false = left_set, left, right
                    membership.extend(sorted(tested) + [np.nan])  # NaN ends each set
                    add_node(column, 0.0, 6, 0, true[0], false[0], true[1], false[1])  # 6: BRANCH_MEMBER
                else:  # 0: BRANCH_LEQ
                    add_node(column, float(node["num_threshold"]), 0, int(missing_left),
                             left[0], right[0], left[1], right[1])
    attributes = {
        "n_targets": int(model.n_trees_per_iteration_), "aggregate_function": 1, "post_transform": 0,
        "tree_roots": roots, "nodes_featureids": nodes_out["feature"],
        "nodes_splits": numpy_helper.from_array(np.asarray(nodes_out["split"], dtype=np.float64)),
        "nodes_modes": numpy_helper.from_array(np.asarray(nodes_out["mode"], dtype=np.uint8)),
        "nodes_missing_value_tracks_true": nodes_out["missing"],
        "nodes_truenodeids": nodes_out["true"], "nodes_trueleafs": nodes_out["true_leaf"],
        "nodes_falsenodeids": nodes_out["false"], "nodes_falseleafs": nodes_out["false_leaf"],
        "leaf_targetids": leaf_targets,
        "leaf_weights": numpy_helper.from_array(np.asarray(leaf_weights, dtype=np.float64)),
    }
    if membership:
        attributes["membership_values"] = numpy_helper.from_array(np.asarray(membership, dtype=np.float64))
    return attributes


def _hist_gradient_boosting_inputs(model) -> tuple[list[int], dict[int, np.ndarray]]:
    """Per feature the trees read: the input column it comes from, and for a categorical one the
    input value of each category code (scikit-learn >= 1.4 encodes categorical columns itself and
    puts them first; without that encoder the codes are the input values)."""
    n_inputs = int(model.n_features_in_)
    encoder = getattr(model, "_preprocessor", None)
    if encoder is None:
        return list(range(n_inputs)), {}
    feature_inputs, category_values = [], {}
    for _, transformer, selection in encoder.transformers_:
        if isinstance(transformer, str):  # the "drop" remainder: no columns
            continue
        for position, column in enumerate(np.arange(n_inputs)[selection]):
            if hasattr(transformer, "categories_"):
                category_values[len(feature_inputs)] = np.asarray(transformer.categories_[position], dtype=float)
            feature_inputs.append(int(column))
    return feature_inputs, category_values


def _convert_hist_gradient_boosting(scope, operator, container) -> None:
    # The sum of leaves + the baseline, then the loss's inverse link, all in double precision.
    from onnx import TensorProto
    from skl2onnx.common.data_types import DoubleTensorType

    model = operator.raw_operator
    features = operator.inputs[0].full_name
    if not isinstance(operator.inputs[0].type, DoubleTensorType):
        as_double = scope.get_unique_variable_name("features_double")
        container.add_node("Cast", [features], [as_double], to=TensorProto.DOUBLE)
        features = as_double
    feature_inputs, category_values = _hist_gradient_boosting_inputs(model)
    if category_values:
        features = _non_integer_codes_as_missing(scope, container, features, int(model.n_features_in_),
                                                 sorted(feature_inputs[f] for f in category_values))
    leaves = scope.get_unique_variable_name("leaf_sum")
    # declared as version 3, the highest ai.onnx.ml skl2onnx 1.20 writes; import_tree_ensemble_opset
    # then imports opset 5, where TreeEnsemble lives
    container.add_node("TreeEnsemble", [features], [leaves], op_domain="ai.onnx.ml", op_version=3,
                       name=scope.get_unique_operator_name("TreeEnsemble"), **hist_gradient_boosting_trees(model, feature_inputs, category_values))
    baseline = scope.get_unique_variable_name("baseline")
    container.add_initializer(baseline, TensorProto.DOUBLE, [1, model.n_trees_per_iteration_],
                              np.asarray(model._baseline_prediction, dtype=float).ravel().tolist())
    raw = scope.get_unique_variable_name("raw_prediction")
    container.add_node("Add", [leaves, baseline], [raw])
    link = type(model._loss.link).__name__
    if not hasattr(model, "classes_"):
        if link not in ("IdentityLink", "LogLink"):
            raise NotImplementedError(f"{type(model).__name__} with loss {model.loss!r} ({link}) is not convertible")
        _declared_output(container, "Exp" if link == "LogLink" else "Identity", raw, operator.outputs[0],
                         scope)
        return
    probabilities = scope.get_unique_variable_name("probabilities_double")
    if model.n_trees_per_iteration_ == 1:  # binary: [1 - expit(raw), expit(raw)]
        positive, negative, one = (scope.get_unique_variable_name(n) for n in ("positive", "negative", "one"))
        container.add_node("Sigmoid", [raw], [positive])
        container.add_initializer(one, TensorProto.DOUBLE, [1], [1.0])
        container.add_node("Sub", [one, positive], [negative])
        container.add_node("Concat", [negative, positive], [probabilities], axis=1)
    else:
        container.add_node("Softmax", [raw], [probabilities], axis=1)
    _declared_output(container, "Identity", probabilities, operator.outputs[1], scope)
    index = scope.get_unique_variable_name("class_index")
    container.add_node("ArgMax", [probabilities], [index], axis=1, keepdims=0)
    classes = scope.get_unique_variable_name("classes")
    if np.asarray(model.classes_).dtype.kind in "biuf":  # skl2onnx declares numeric labels int64
        container.add_initializer(classes, TensorProto.INT64, [len(model.classes_)],
                                  np.asarray(model.classes_, dtype=np.int64).tolist())
    else:
        container.add_initializer(classes, TensorProto.STRING, [len(model.classes_)],
                                  [str(c).encode() for c in model.classes_])
    container.add_node("Gather", [classes, index], [operator.outputs[0].full_name], axis=0)


def _non_integer_codes_as_missing(scope, container, features: str, width: int, columns: list[int]) -> str:
    # A category code that is not a whole number was never seen in training: scikit-learn sends it
    # the missing-value way. onnxruntime's membership test truncates it to an integer once a set is
    # large (0.25 would read as category 0), so such values become NaN before the trees.
    from onnx import TensorProto

    names = {key: scope.get_unique_variable_name(key) for key in
             ("floor", "whole", "magnitude", "limit", "in_range", "code", "numeric", "keep", "nan", "coded")}
    container.add_node("Floor", [features], [names["floor"]])
    container.add_node("Equal", [names["floor"], features], [names["whole"]])
    container.add_node("Abs", [features], [names["magnitude"]])
    container.add_initializer(names["limit"], TensorProto.DOUBLE, [1], [2.0**31])
    container.add_node("Less", [names["magnitude"], names["limit"]], [names["in_range"]])
    container.add_node("And", [names["whole"], names["in_range"]], [names["code"]])
    numeric = np.ones(width, dtype=bool)
    numeric[columns] = False
    container.add_initializer(names["numeric"], TensorProto.BOOL, [1, width], numeric.tolist())
    container.add_node("Or", [names["code"], names["numeric"]], [names["keep"]])
    container.add_initializer(names["nan"], TensorProto.DOUBLE, [1], [float("nan")])
    container.add_node("Where", [names["keep"], features, names["nan"]], [names["coded"]])
    return names["coded"]


def _declared_output(container, op_type: str, value: str, output, scope) -> None:
    # the last op writes the declared output, cast to float32 when float inputs declared it so
    from onnx import TensorProto
    from skl2onnx.common.data_types import DoubleTensorType

    if isinstance(output.type, DoubleTensorType):
        container.add_node(op_type, [value], [output.full_name])
        return
    computed = scope.get_unique_variable_name("computed")
    container.add_node(op_type, [value], [computed])
    container.add_node("Cast", [computed], [output.full_name], to=TensorProto.FLOAT)


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


def cast_tree_outputs(model) -> None:
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


def import_tree_ensemble_opset(model) -> None:
    """Import ai.onnx.ml opset 5 when the graph holds the HistGradientBoosting ``TreeEnsemble`` op.

    skl2onnx 1.20 refuses to write ai.onnx.ml above 3. At 5 the encoders' ops keep their meaning
    (LabelEncoder 4 still reads the attributes of 2), but TreeEnsembleRegressor/Classifier resolve to
    their deprecated version 5, which onnxruntime lacks: a graph holding both (a voting ensemble of
    HistGradientBoosting and a forest) fails to load, and ``to_onnx`` reports that instead of a model.
    """
    if not any(node.op_type == "TreeEnsemble" and node.domain == "ai.onnx.ml" for node in model.graph.node):
        return
    for opset in model.opset_import:
        if opset.domain == "ai.onnx.ml":
            opset.version = max(opset.version, 5)
