"""Fixtures shared across test modules (a module's own fixture of the same name takes precedence)."""

from __future__ import annotations

import pandas as pd
import pytest
from fitted import CREDIT_FEATURES, ROOT, fit

from mlhelpers.modeling import encode_target


@pytest.fixture(scope="module")
def credit() -> pd.DataFrame:
    # real missing values in Income, Assets, Debt, Home, Marital, Job
    return pd.read_csv(ROOT / "data" / "credit.csv")


@pytest.fixture(scope="module")
def diamonds() -> pd.DataFrame:
    return pd.read_csv(ROOT / "data" / "diamonds.csv.gz").sample(3000, random_state=0)


@pytest.fixture(scope="module")
def credit_forest(credit):
    y, _ = encode_target(credit["Status"], "classification")
    return fit("random_forest", "classification", credit, CREDIT_FEATURES, y, n_estimators=10)
