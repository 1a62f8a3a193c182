"""skl2onnx converter for scikit-learn forests and trees: ``forests``' TreeEnsemble nodes plus the ops around them.

``register()`` teaches skl2onnx RandomForest, ExtraTrees, DecisionTree and ExtraTree (Classifier and
Regressor), so whole pipelines convert through ``mlhelpers.formats.onnx_io.to_onnx``; global and
idempotent. ``forest_onnx(model)`` is the forest alone as a ``ModelProto`` (one double input ``X``).

Graph: cast the features to float32 and back (as scikit-learn reads them), the TreeEnsemble node(s)
and their ``Sum``, ``Div`` by the number of trees; classifiers then ``[1 - p, p]`` (binary),
``ArgMax`` (first maximum, as ``numpy.argmax``) and ``Gather`` of ``classes_`` for the labels.
"""

from __future__ import annotations

import numpy as np

from mlhelpers.formats.converters.forests import FOREST_TYPES, MAX_SPLITS_PER_NODE, forest_tree_ensembles


def _add_forest_nodes(add_node, add_initializer, unique_name, features: str, ensembles: list,
                      classes: np.ndarray | None, outputs: list[str]) -> None:
    """Write the forest's ops; ``outputs``: [values] or [labels, probabilities] (declared double)."""
    from onnx import TensorProto

    as_float = unique_name("features_float32")
    add_node("Cast", [features], [as_float], to=TensorProto.FLOAT)
    as_double = unique_name("features_as_float32_double")
    add_node("Cast", [as_float], [as_double], to=TensorProto.DOUBLE)
    parts = []
    for ensemble in ensembles:
        parts.append(unique_name("leaf_sum"))
        add_node("TreeEnsemble", [as_double], [parts[-1]], op_domain="ai.onnx.ml", op_version=5,
                 name=unique_name("TreeEnsemble"), attribute_protos=ensemble.attributes())
    sums = parts[0]
    if len(parts) > 1:
        sums = unique_name("forest_sum")
        add_node("Sum", parts, [sums])
    count = unique_name("n_trees")
    add_initializer(count, TensorProto.DOUBLE, [1], [float(sum(e.n_trees for e in ensembles))])
    if classes is None:
        add_node("Div", [sums, count], [outputs[0]])
        return
    labels, probabilities = outputs
    binary = ensembles[0].n_classes == 2
    mean = unique_name("mean") if binary else probabilities
    add_node("Div", [sums, count], [mean])
    if binary:
        one, negative = unique_name("one"), unique_name("negative")
        add_initializer(one, TensorProto.DOUBLE, [1], [1.0])
        add_node("Sub", [one, mean], [negative])
        add_node("Concat", [negative, mean], [probabilities], axis=1)
    index = unique_name("class_index")
    add_node("ArgMax", [probabilities], [index], axis=1, keepdims=0)
    table = unique_name("classes")
    if np.asarray(classes).dtype.kind in "biuf":  # skl2onnx declares numeric labels int64
        add_initializer(table, TensorProto.INT64, [len(classes)], np.asarray(classes, dtype=np.int64).tolist())
    else:
        add_initializer(table, TensorProto.STRING, [len(classes)], [str(c).encode() for c in classes])
    add_node("Gather", [table, index], [labels], axis=0)


def _convert_forest(scope, operator, container) -> None:
    """skl2onnx converter: a forest or tree as opset 5 TreeEnsemble nodes computed in double."""
    from onnx import TensorProto
    from skl2onnx.common.data_types import DoubleTensorType

    model = operator.raw_operator
    ensembles = forest_tree_ensembles(model)
    classes = np.asarray(model.classes_) if hasattr(model, "classes_") else None
    declared = [operator.outputs[0]] if classes is None else [operator.outputs[0], operator.outputs[1]]
    # values/probabilities come out in double; cast when the caller declared float32 (float inputs)
    names, casts = [], []
    for position, output in enumerate(declared):
        is_value = classes is None or position == 1
        if is_value and not isinstance(output.type, DoubleTensorType):
            computed = scope.get_unique_variable_name("computed_double")
            names.append(computed)
            casts.append((computed, output.full_name))
        else:
            names.append(output.full_name)

    def add_node(op_type, inputs, outputs, op_domain="", op_version=None, name=None, attribute_protos=(),
                 **attrs):
        if op_type == "TreeEnsemble":  # skl2onnx 1.20 writes ai.onnx.ml <= 3: declared 3, imported as 5
            op_version = 3            # afterwards (trees.import_tree_ensemble_opset)
        container.add_node(op_type, inputs, outputs, op_domain=op_domain, op_version=op_version,
                           name=name or scope.get_unique_operator_name(op_type), **attrs)
        container.nodes[-1].attribute.extend(attribute_protos)

    _add_forest_nodes(add_node, container.add_initializer, scope.get_unique_variable_name,
                      operator.inputs[0].full_name, ensembles, classes, names)
    for computed, name in casts:
        container.add_node("Cast", [computed], [name], to=TensorProto.FLOAT)


def _parse_forest_classifier(scope, model, inputs, custom_parsers=None):
    # skl2onnx's classifier parser declares forest probabilities float32 whatever the input; declare
    # them double when the input is double (ZipMap takes float32 only: then the converter's Cast feeds it)
    from skl2onnx._parse import _parse_sklearn_classifier
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    outputs = _parse_sklearn_classifier(scope, model, inputs, custom_parsers=custom_parsers)
    if isinstance(inputs[0].type, DoubleTensorType):
        operator = next(op for op in scope.operators.values() if op.raw_operator is model)
        probabilities = operator.outputs[1]
        if isinstance(probabilities.type, FloatTensorType) and probabilities in outputs:
            probabilities.type = DoubleTensorType(probabilities.type.shape)
    return outputs


def register() -> None:
    """Register this converter in skl2onnx for every scikit-learn forest and tree (global, idempotent)."""
    import sklearn.ensemble as ensemble
    import sklearn.tree as tree
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (calculate_linear_classifier_output_shapes,
                                                  calculate_linear_regressor_output_shapes)

    for name in FOREST_TYPES:
        estimator = getattr(ensemble, name, None) or getattr(tree, name)
        if name.endswith("Classifier"):
            update_registered_converter(estimator, f"Sklearn{name}", calculate_linear_classifier_output_shapes,
                                        _convert_forest, overwrite=True, parser=_parse_forest_classifier,
                                        options={"nocl": [True, False], "zipmap": [True, False, "columns"]})
        else:
            update_registered_converter(estimator, f"Sklearn{name}", calculate_linear_regressor_output_shapes,
                                        _convert_forest, overwrite=True)


def forest_onnx(model, n_features: int | None = None, max_splits: int = MAX_SPLITS_PER_NODE):
    """The forest alone as an ONNX ``ModelProto``: input ``X`` (double, [N, n_features]), outputs
    ``variable`` (regression, [N, 1]) or ``label`` and ``probabilities`` (classification)."""
    from onnx import TensorProto, helper

    n_features = int(n_features or model.n_features_in_)
    nodes, initializers, counter = [], [], iter(range(10**9))

    def add_node(op_type, inputs, outputs, op_domain="", op_version=None, name=None, attribute_protos=(),
                 **attrs):
        nodes.append(helper.make_node(op_type, inputs, outputs, name=name, domain=op_domain or None, **attrs))
        nodes[-1].attribute.extend(attribute_protos)

    def add_initializer(name, dtype, dims, values):
        initializers.append(helper.make_tensor(name, dtype, dims, values))

    classes = np.asarray(model.classes_) if hasattr(model, "classes_") else None
    if classes is None:
        outputs = [helper.make_tensor_value_info("variable", TensorProto.DOUBLE, [None, 1])]
    else:
        label_type = TensorProto.INT64 if classes.dtype.kind in "biuf" else TensorProto.STRING
        outputs = [helper.make_tensor_value_info("label", label_type, [None]),
                   helper.make_tensor_value_info("probabilities", TensorProto.DOUBLE, [None, len(classes)])]
    _add_forest_nodes(add_node, add_initializer, lambda base: f"{base}_{next(counter)}", "X",
                      forest_tree_ensembles(model, max_splits), classes, [o.name for o in outputs])
    graph = helper.make_graph(nodes, "forest", [helper.make_tensor_value_info("X", TensorProto.DOUBLE,
                                                                               [None, n_features])],
                              outputs, initializer=initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18),
                                                   helper.make_opsetid("ai.onnx.ml", 5)])
