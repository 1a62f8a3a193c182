"""Metrics: scores of known predictions, and errors that name the fix."""

import numpy as np
import pytest

from mlhelpers.core import metrics as evaluate
from mlhelpers.core.metrics import MetricError


# --- metrics --------------------------------------------------------------------------------------

def test_scores_of_perfect_and_uninformative_predictions():
    y = np.array([0, 1, 1, 0])
    perfect = np.eye(2)[y]
    assert evaluate.score("roc_auc", y, perfect) == 1.0
    assert evaluate.score("roc_auc", y, np.full((4, 2), 0.5)) == 0.5
    assert evaluate.score("roc_auc", y, perfect[:, 1]) == 1.0  # class 1's probability alone
    assert evaluate.score("log_loss", y, perfect) < 1e-6
    assert evaluate.score("rmse", np.array([1.0, 3.0]), np.array([2.0, 2.0])) == 1.0
    three = np.array([0, 1, 2, 2])
    assert evaluate.score("roc_auc", three, np.eye(3)[three]) == 1.0
    assert evaluate.score("f1", three, np.eye(3)[[0, 1, 2, 1]]) == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)


def test_metric_errors_name_the_fix():
    with pytest.raises(MetricError, match="unknown metric 'auc'"):
        evaluate.score("auc", np.array([0, 1]), np.eye(2))
    with pytest.raises(MetricError, match="primary_metric 'rmse' does not fit a classification task"):
        evaluate.task_metrics("classification", "rmse")
