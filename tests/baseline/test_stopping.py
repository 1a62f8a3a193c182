"""Early stopping inside the folds and the refit's number of trees, on real tables (credit scoring, diamonds)."""

import numpy as np
import pytest

from mlhelpers.baseline import crossval, selection, splits, stopping
from mlhelpers.core.models import build_pipeline


def test_patience_waits_longer_at_a_slower_rate():
    assert stopping.patience(0.1) == stopping.XGB_EARLY_STOPPING == 20
    assert stopping.patience(0.05) == 40 and stopping.patience(0.025) == 80
    assert stopping.patience(0.3) == stopping.patience(None) == 20  # never fewer rounds than at the zoo's rate


@pytest.mark.parametrize("rate", [0.1, 0.05])
def test_hist_gradient_boosting_folds_stop_by_the_same_rule(diamonds, prepared, rate):
    data = prepared(diamonds, target="price", task="regression", metric="rmse")
    split = splits.make_split(data, test_size=0.2, cv_folds=3, seed=0)
    result = crossval.cross_validate_model("hist_gradient_boosting", data, split, seed=0, n_jobs=1, keep_models=True,
                                           estimator_params={"learning_rate": rate, "max_iter": 2000})
    for pipeline, trees in zip(result.fold_models, result.trees):
        model = pipeline.named_steps["model"]
        # scikit-learn's own default is 10 rounds; its n_iter_ counts the rounds waited
        assert model.n_iter_no_change == stopping.patience(rate)
        assert model.validation_fraction == stopping.EARLY_STOPPING_SHARE
        assert stopping.patience(rate) < model.n_iter_ == trees < 2000


@pytest.mark.parametrize("model, key", [("xgboost", "n_estimators"), ("hist_gradient_boosting", "max_iter")])
def test_the_refit_takes_the_folds_median_trees_scaled_to_every_training_row(diamonds, prepared, model, key):
    data = prepared(diamonds, target="price", task="regression", metric="rmse")
    split = splits.make_split(data, test_size=0.2, cv_folds=4, seed=0)
    result = crossval.cross_validate_model(model, data, split, seed=0, n_jobs=1)
    n_train = len(split.train_index)
    fold_fit_rows = [len(fit) * (1 - stopping.EARLY_STOPPING_SHARE) for fit, _ in split.folds]
    assert result.trees_scale == pytest.approx(n_train / np.median(fold_fit_rows), rel=1e-3)  # 1 / (0.75 x 0.9)
    assert 1.45 < result.trees_scale < 1.5
    assert result.estimator_params[key] == round(np.median(result.trees) * result.trees_scale)
    spec = selection.pipeline_spec(data, model, 0, 1, result.estimator_params)
    assert getattr(build_pipeline(spec).named_steps["model"], key) == result.estimator_params[key]


def test_a_capped_sample_scales_its_trees_by_at_most_the_bound(diamonds, prepared):
    data = prepared(diamonds, target="price", task="regression", metric="rmse")
    split = splits.make_split(data, test_size=0.2, cv_folds=3, seed=0)
    rows = np.arange(600)  # a budget's seeded sample: a quarter of the 2,400 training rows
    result = crossval.cross_validate_model("xgboost", data, split, seed=0, n_jobs=1, rows=rows)
    assert result.trees_scale == selection.MAX_TREES_SCALE == 2.0
    assert result.estimator_params["n_estimators"] == round(np.median(result.trees) * 2.0)
    assert selection.trees_scale(500, [700, 720]) == 1.0  # never fewer trees than the folds stopped at
    assert selection.trees_scale(1000, []) == 1.0
    forest = crossval.cross_validate_model("random_forest", data, split, seed=0, n_jobs=1, rows=rows)
    assert forest.trees is None and forest.trees_scale == 1.0  # no early stopping, nothing to scale


def test_the_race_joins_its_parts_with_the_same_scale(diamonds, prepared):
    data = prepared(diamonds, target="price", task="regression", metric="rmse")
    split = splits.make_split(data, test_size=0.2, cv_folds=3, seed=0)
    whole = crossval.cross_validate_model("xgboost", data, split, seed=0, n_jobs=1)
    first = crossval.cross_validate_model("xgboost", data, split, seed=0, n_jobs=1, fold_numbers=[0])
    rest = crossval.cross_validate_model("xgboost", data, split, seed=0, n_jobs=1, fold_numbers=[1, 2])
    joined = selection.joined(first, rest)
    assert joined.trees == whole.trees
    assert joined.estimator_params["n_estimators"] == whole.estimator_params["n_estimators"]
