"""ONNX converter fixes: double tree thresholds, XGBoost split on float32 inputs (through ``to_onnx``)."""

from __future__ import annotations

import numpy as np
import pytest
from fitted import DIAMOND_FEATURES, fit

from mlhelpers.persistence import to_onnx


def test_onnx_forest_regressor_keeps_double_thresholds(diamonds):
    pipeline = fit("random_forest", "regression", diamonds, DIAMOND_FEATURES,
                   diamonds["price"].to_numpy(float), n_estimators=10)
    result = to_onnx(pipeline, diamonds)
    assert result.double_precision and result.parity.ok
    trees = [node for node in result.model.graph.node if node.op_type == "TreeEnsembleRegressor"]
    assert {a.name for a in trees[0].attribute} >= {"nodes_values_as_tensor", "target_weights_as_tensor"}
    assert result.parity.max_rel_diff <= 1e-6


def test_onnx_xgboost_regressor_splits_like_xgboost(diamonds):
    # XGBoost splits float32 inputs at float32 values; fed doubles, ONNX flipped branches (1,730 off)
    pipeline = fit("xgboost", "regression", diamonds, DIAMOND_FEATURES, diamonds["price"].to_numpy(float),
                   n_estimators=50)
    result = to_onnx(pipeline, diamonds)
    assert result.reason is None and result.parity.ok
    assert result.parity.tolerance == pytest.approx(64 * np.finfo(np.float32).eps)  # a float32 model
    assert result.parity.max_abs_diff < 0.1
