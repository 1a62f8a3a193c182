"""Small fitted pipelines on the bundled data, shared by the model-file tests (persistence, ONNX
converters, parity, serving); their data fixtures live in conftest.py."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mlhelpers.modeling import build_pipeline

ROOT = Path(__file__).resolve().parents[1]
CREDIT_FEATURES = {"numeric": ["Seniority", "Time", "Age", "Expenses", "Income", "Assets", "Debt",
                               "Amount", "Price"],
                   "categorical": ["Home", "Marital", "Records", "Job"]}
DIAMOND_FEATURES = {"numeric": ["carat", "depth", "table", "x", "y", "z"],
                    "categorical": ["cut", "color", "clarity"]}


def fit(model: str, task: str, frame: pd.DataFrame, features: dict, target, **params):
    """The zoo's pipeline for ``model``, single-threaded, fitted on ``frame``."""
    spec = {"model": model, "task": task, "features": features, "seed": 0, "n_jobs": 1,
            "estimator_params": params}
    return build_pipeline(spec).fit(frame, target)
