"""HistGradientBoosting with its native categorical splits as one ai.onnx.ml opset 5 ``TreeEnsemble``:
set-membership splits in the input's own values, NaN and unseen categories down the learned missing-value
way, leaves summed in double, then the baseline and the inverse link.
"""

from __future__ import annotations

from itertools import count
from typing import Any

import numpy as np


def register() -> None:
    """Register our HistGradientBoostingClassifier / Regressor converters (replacing skl2onnx's)."""
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (calculate_linear_classifier_output_shapes,
                                                  calculate_linear_regressor_output_shapes)
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    update_registered_converter(
        HistGradientBoostingClassifier, "SklearnHistGradientBoostingClassifier",
        calculate_linear_classifier_output_shapes, _convert_hist_gradient_boosting, overwrite=True,
        options={"nocl": [True, False], "zipmap": [True, False, "columns"]})
    update_registered_converter(
        HistGradientBoostingRegressor, "SklearnHistGradientBoostingRegressor",
        calculate_linear_regressor_output_shapes, _convert_hist_gradient_boosting, overwrite=True)


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
