"""Drift statistics on real data: a random split of a big table shows no drift, a time split flags the seasonal
columns; the p-value gate keeps small samples quiet; unseen categories and missing rates are reported."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlhelpers.core.reference import column_kind, summarize
from mlhelpers.monitor.drift import Thresholds, column_drift, psi

_ROLES = {"carrier": "categorical", "origin": "categorical", "dest": "categorical", "tailnum": "high_cardinality",
          "time_hour": "datetime"}


def _schema_info(frame: pd.DataFrame) -> dict:
    return {name: {"role": _ROLES.get(name, "numeric"), "dtype": str(frame[name].dtype)}
            for name in frame.columns if name not in ("rownames", "year")}


def _drifted(reference_rows: pd.DataFrame, new_rows: pd.DataFrame, thresholds=Thresholds()) -> dict:
    results = {}
    for name, info in _schema_info(reference_rows).items():
        reference = {"role": info["role"]} | summarize(reference_rows[name], column_kind(info))
        results[name] = column_drift(name, new_rows[name], reference, info, thresholds)
    return results


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift():
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0
    assert 0 < psi([0.5, 0.5], [0.6, 0.4]) < psi([0.5, 0.5], [0.9, 0.1])
    assert np.isfinite(psi([1.0, 0.0], [0.5, 0.5]))  # an empty reference bin stays finite


def test_a_random_split_of_336k_flights_drifts_nowhere(flights):
    order = np.random.default_rng(0).permutation(len(flights))
    half = len(flights) // 2
    results = _drifted(flights.iloc[order[:half]], flights.iloc[order[half:]])
    assert [name for name, r in results.items() if r.drifted] == []
    # not just under the gate: the effect sizes themselves are tiny, although every sample is large
    assert max(r.psi for r in results.values()) < 0.01
    assert max(r.statistic for r in results.values()) < 0.05


def test_a_time_split_flags_the_seasonal_columns(flights):
    results = _drifted(flights[flights["month"] <= 8], flights[flights["month"] > 8])
    drifted = {name for name, r in results.items() if r.drifted}
    assert {"month", "time_hour", "dep_delay", "arr_delay"} <= drifted  # the calendar, and summer's delays
    assert {"day", "minute", "origin", "carrier", "distance"}.isdisjoint(drifted)  # the schedule's shape holds
    assert results["month"].psi > 5 and results["dep_delay"].p_value < 1e-10


def test_a_handful_of_rows_does_not_drift_on_noise_alone(flights):
    reference_rows = flights[flights["month"] <= 8]
    results = _drifted(reference_rows, reference_rows.sample(30, random_state=3))
    noisy = [name for name, r in results.items() if r.psi >= 0.2]
    assert noisy, "20 bins on 30 rows: PSI alone would flag noise"
    assert [name for name, r in results.items() if r.drifted] == []  # the chi-square test says it is noise
    assert all("too few rows" in results[name].reasons[-1] for name in noisy)


def test_unseen_categories_and_missing_rates_are_reported(credit):
    info = {"role": "categorical", "dtype": "object", "categories": sorted(credit["Home"].dropna().unique())}
    reference = {"role": "categorical"} | summarize(credit["Home"], "categorical")
    new = credit["Home"].copy()
    new.iloc[:900] = "boat"
    new.iloc[900:1800] = None
    result = column_drift("Home", new, reference, info)
    assert result.drifted and result.unseen_categories == ["boat"]
    assert result.missing_rate == pytest.approx(new.isna().mean()) and result.reference_missing_rate < 0.01
    same = column_drift("Home", credit["Home"], reference, info)
    assert not same.drifted and same.unseen_categories == [] and same.psi < 1e-9


def test_missing_values_alone_move_a_numeric_column(credit):
    reference = {"role": "numeric"} | summarize(credit["Age"], "numeric")
    new = credit["Age"].astype(float)
    new.iloc[::4] = np.nan  # a quarter missing where training had none
    result = column_drift("Age", new, reference)
    assert result.drifted and result.statistic < 0.1 and result.psi > 0.2  # PSI's missing bin sees it


def test_thresholds_are_parameters(flights):
    early, late = flights[flights["month"] <= 8], flights[flights["month"] > 8]
    info = {"role": "numeric", "dtype": "float64"}
    reference = {"role": "numeric"} | summarize(early["dep_delay"], "numeric")
    assert column_drift("dep_delay", late["dep_delay"], reference, info).drifted
    relaxed = Thresholds(psi=1.0, wasserstein=1.0)
    assert not column_drift("dep_delay", late["dep_delay"], reference, info, relaxed).drifted
