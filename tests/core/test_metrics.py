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


# --- classes absent from a split, and a test score against the CV spread ----------------------------

def test_a_class_absent_from_the_rows_is_left_out_of_recall_and_auc_but_counted_and_its_false_alarms_cost_f1():
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    proba = LogisticRegression(max_iter=1000).fit(X[::2], y[::2]).predict_proba(X[1::2])
    y_test, proba = y[1::2], proba
    without_setosa = y_test != 0   # the test rows hold versicolor and virginica only; the model knows 3 classes
    y_two, p_two = y_test[without_setosa], proba[without_setosa]
    assert evaluate.absent_classes(y_two, 3) == [0] and evaluate.absent_classes(y_test, 3) == []
    predicted = p_two.argmax(axis=1)
    recalls = [(predicted[y_two == c] == c).mean() for c in (1, 2)]
    assert evaluate.score("balanced_accuracy", y_two, p_two, 3) == pytest.approx(np.mean(recalls))  # not /3
    assert evaluate.score("roc_auc", y_two, p_two, 3) == pytest.approx(
        np.mean([evaluate.score("roc_auc", (y_two == c).astype(int), p_two[:, c]) for c in (1, 2)]))
    assert np.isfinite(evaluate.score("log_loss", y_two, p_two, 3))
    # a model that calls one of those rows setosa: the absent class's F1 is 0 (a real error) and stays averaged
    wrong = p_two.copy()
    wrong[0] = [1.0, 0.0, 0.0]
    f1_known = evaluate.score("f1", y_two, wrong, 3)
    from sklearn.metrics import f1_score
    f1_present_only = f1_score(y_two, wrong.argmax(axis=1), labels=[1, 2], average="macro")
    assert f1_known == pytest.approx(f1_present_only * 2 / 3)  # (F1_1 + F1_2 + 0) / 3
    assert evaluate.score("f1", y_two, p_two, 3) == pytest.approx(  # never predicted either: nothing to judge
        f1_score(y_two, predicted, labels=[1, 2], average="macro"))


def test_a_test_score_outside_cv_mean_plus_minus_3_std_is_flagged_with_its_direction():
    check = evaluate.cv_spread_check("balanced_accuracy", 0.995, {"mean": 0.745, "std": 0.03})  # issue 11's figures
    assert check["outside"] is True and check["direction"] == "better"
    assert check["low"] == pytest.approx(0.655) and check["high"] == pytest.approx(0.835)
    assert evaluate.cv_spread_check("log_loss", 0.6, {"mean": 0.5, "std": 0.01})["direction"] == "worse"  # lower is better
    inside = evaluate.cv_spread_check("roc_auc", 0.84, {"mean": 0.83, "std": 0.01})
    assert inside["outside"] is False and inside["direction"] is None
    assert evaluate.cv_spread_check("roc_auc", 0.84, None)["outside"] is None  # no CV figure: no verdict, not "inside"
    assert evaluate.cv_spread_check("roc_auc", float("nan"), {"mean": 0.8, "std": 0.1})["outside"] is None
