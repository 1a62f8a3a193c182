"""skl2onnx converter fixes: what ``mlhelpers.formats.onnx_io.to_onnx`` needs to convert our pipelines exactly.

``register_converters()`` teaches skl2onnx XGBoost (through onnxmltools, on float32 inputs as
XGBoost splits: ``trees``), scikit-learn forests and trees exactly (``forests`` + ``forest_graph``:
ai.onnx.ml opset 5 ``TreeEnsemble`` in double, per-split NaN direction), HistGradientBoosting with its
native categorical splits (``hgb``: also opset 5 ``TreeEnsemble``), and our own SimpleImputer /
OneHotEncoder / OrdinalEncoder converters (``preprocessing``: indicators, doubles, string missing
values, infrequent categories). ``cast_tree_outputs(model)`` repairs the float32 outputs of tree
ensembles declared double. Registration is global to skl2onnx and idempotent; nothing runs at import.
"""

from __future__ import annotations

from mlhelpers.formats.converters import forest_graph, hgb, preprocessing, trees
from mlhelpers.formats.converters.trees import cast_tree_outputs, import_tree_ensemble_opset

__all__ = ["register_converters", "cast_tree_outputs", "import_tree_ensemble_opset"]


def register_converters() -> None:
    """Register every converter above with skl2onnx; runs on the first conversion, never at import."""
    trees.register()
    forest_graph.register()
    preprocessing.register()
    hgb.register()
