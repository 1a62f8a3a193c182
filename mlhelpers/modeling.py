"""Preprocessing built from column roles, and the baseline model zoo, as scikit-learn Pipelines."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

FEATURE_ROLES = ("numeric", "boolean", "categorical", "high_cardinality")


def feature_columns(eda: dict[str, Any]) -> dict[str, list[str]]:
    """Columns the pipeline uses, grouped by role, from ``eda.json`` (dropped columns left out)."""
    groups: dict[str, list[str]] = {role: [] for role in FEATURE_ROLES}
    for name, info in eda["columns"].items():
        if not info["drop"] and info["role"] in groups:
            groups[info["role"]].append(name)
    return groups


def build_preprocessor(features: dict[str, list[str]], model: str):
    """A ColumnTransformer for ``model``: imputation, encoding by cardinality, scaling for linear models."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    numeric = features.get("numeric", []) + features.get("boolean", [])
    categorical = features.get("categorical", []) + features.get("high_cardinality", [])
    numeric_steps = [SimpleImputer(strategy="median", add_indicator=True)]
    if model == "linear":
        numeric_steps.append(StandardScaler())
    if model in ("linear", "dummy"):
        encoder = OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=5,
                                max_categories=30, sparse_output=False)
    else:
        encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                 encoded_missing_value=-1, max_categories=255, min_frequency=5)
    categorical_steps = [SimpleImputer(strategy="constant", fill_value="__missing__"), encoder]
    return ColumnTransformer(
        [("numeric", make_pipeline(*numeric_steps), numeric),
         ("categorical", make_pipeline(*categorical_steps), categorical)],
        remainder="drop", verbose_feature_names_out=False,
    )


def make_estimator(model: str, task: str, seed: int, n_jobs: int = -1, **params: Any):
    """The estimator named ``model`` for ``task``, with the zoo's defaults overridden by ``params``."""
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.ensemble import (HistGradientBoostingClassifier, HistGradientBoostingRegressor,
                                  RandomForestClassifier, RandomForestRegressor)
    from sklearn.linear_model import LogisticRegression, Ridge
    from xgboost import XGBClassifier, XGBRegressor

    classification = task == "classification"
    zoo = {
        "dummy": (DummyClassifier, {"strategy": "prior"}) if classification
        else (DummyRegressor, {"strategy": "mean"}),
        "linear": (LogisticRegression, {"max_iter": 2000, "random_state": seed}) if classification
        else (Ridge, {"random_state": seed}),
        "random_forest": (RandomForestClassifier if classification else RandomForestRegressor,
                          {"n_estimators": 200, "min_samples_leaf": 2, "max_samples": 0.5,
                           "n_jobs": n_jobs, "random_state": seed}),
        "hist_gradient_boosting": (HistGradientBoostingClassifier if classification
                                   else HistGradientBoostingRegressor, {"random_state": seed}),
        "xgboost": (XGBClassifier if classification else XGBRegressor,
                    {"n_estimators": 300, "learning_rate": 0.1, "tree_method": "hist",
                     "n_jobs": n_jobs, "random_state": seed}),
    }
    if model not in zoo:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(zoo)}.")
    estimator_class, defaults = zoo[model]
    return estimator_class(**(defaults | params))


def build_pipeline(spec: dict[str, Any]):
    """Rebuild the exact unfitted Pipeline a ``model_spec.json`` describes."""
    from sklearn.pipeline import Pipeline

    return Pipeline([
        ("preprocess", build_preprocessor(spec["features"], spec["model"])),
        ("model", make_estimator(spec["model"], spec["task"], spec["seed"],
                                 spec.get("n_jobs", -1), **spec.get("estimator_params", {}))),
    ])


def encode_target(y: pd.Series, task: str, classes: list | None = None) -> tuple[np.ndarray, list | None]:
    """Targets as numbers: class indices (0..k-1, sorted classes) for classification."""
    if task != "classification":
        return y.to_numpy(dtype=float), None
    classes = classes if classes is not None else sorted(y.unique().tolist(), key=str)
    index = {label: i for i, label in enumerate(classes)}
    unknown = set(y.unique()) - set(index)
    if unknown:
        raise ValueError(f"target has classes {sorted(map(str, unknown))} not seen in training: {classes}.")
    return y.map(index).to_numpy(dtype=int), classes
