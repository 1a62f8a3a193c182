"""XGBoost through onnxmltools' converter on float32 inputs (its own precision), and the repairs tree
graphs need afterwards (``cast_tree_outputs``, ``import_tree_ensemble_opset``). scikit-learn forests
have their own converter (``forests`` + ``forest_graph``).
"""

from __future__ import annotations


def register() -> None:
    """Register the XGBoost converters (onnxmltools, float32 inputs)."""
    from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes
    from xgboost import XGBClassifier, XGBRegressor

    def convert_xgboost_on_float32(scope, operator, container):
        convert_xgboost(scope, operator, _Float32TreeInputs(container, scope))

    update_registered_converter(
        XGBClassifier, "XGBoostXGBClassifier", calculate_linear_classifier_output_shapes,
        convert_xgboost_on_float32, options={"nocl": [True, False], "zipmap": [True, False, "columns"]})
    update_registered_converter(
        XGBRegressor, "XGBoostXGBRegressor", _xgb_regressor_shape, convert_xgboost_on_float32)


def _xgb_regressor_shape(operator) -> None:
    # onnxmltools' XGBoost graph outputs float32 whatever the input type (XGBoost's own precision)
    from skl2onnx.common.data_types import FloatTensorType

    operator.outputs[0].type = FloatTensorType([operator.inputs[0].get_first_dimension(), 1])


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


def cast_tree_outputs(model) -> None:
    """Insert a Cast where a TreeEnsemble op's float32 output is declared double.

    ai.onnx.ml opset 3 tree ensembles (XGBoost's) always output float32; skl2onnx declares the
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
    a forest and XGBoost) fails to load, and ``to_onnx`` reports that instead of a model.
    """
    if not any(node.op_type == "TreeEnsemble" and node.domain == "ai.onnx.ml" for node in model.graph.node):
        return
    for opset in model.opset_import:
        if opset.domain == "ai.onnx.ml":
            opset.version = max(opset.version, 5)
