"""One-pass column statistics: merged partitions give the whole table's answers, which are pandas' answers;
distinct counts above the cap are close HyperLogLog estimates, quantiles close approximations."""

import numpy as np
import pandas as pd
import pytest

from mlhelpers.core import colstats


def _parts(frame, n):
    return [colstats.summarize(frame.iloc[piece]) for piece in np.array_split(np.arange(len(frame)), n)]


@pytest.mark.parametrize("table", ["credit", "diamonds"])
def test_merged_partitions_give_pandas_answers(table, request):
    frame = request.getfixturevalue(table)
    whole = colstats.finalize(colstats.summarize(frame))
    merged = colstats.finalize(colstats.merge_all(_parts(frame, 7)))
    assert whole["rows"] == merged["rows"] == len(frame)
    for name in frame.columns:
        a, b = whole["columns"][name], merged["columns"][name]
        assert a["missing"] == b["missing"] == frame[name].isna().sum()
        assert a["n_unique"] == b["n_unique"] == frame[name].nunique() and a["n_unique_exact"]
        assert a["top"][0] == b["top"][0] and a["top"][0][1] == frame[name].value_counts().iloc[0]
        if pd.api.types.is_numeric_dtype(frame[name]):
            values = frame[name].dropna()
            assert (a["min"], a["max"]) == (b["min"], b["max"]) == (values.min(), values.max())
            for key, expected in (("mean", values.mean()), ("std", values.std()), ("skew", values.skew())):
                assert a[key] == pytest.approx(expected, rel=1e-9, abs=1e-9)
                assert b[key] == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_quantiles_from_partitions_are_close_and_values_seen(diamonds):
    merged = colstats.finalize(colstats.merge_all(_parts(diamonds, 9)))["columns"]["price"]["quantiles_approx"]
    prices = set(diamonds["price"])
    for q, value in merged.items():
        assert value in prices
        assert abs(value - diamonds["price"].quantile(float(q))) <= 0.02 * diamonds["price"].quantile(float(q)) + 10


def test_high_cardinality_falls_back_to_hyperloglog():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"id": rng.integers(0, 10**12, 250_000), "code": rng.integers(0, 50, 250_000)})
    report = colstats.finalize(colstats.merge_all(_parts(frame, 5)))["columns"]
    truth = frame["id"].nunique()
    assert not report["id"]["n_unique_exact"] and abs(report["id"]["n_unique"] / truth - 1) < 0.03
    assert report["code"]["n_unique_exact"] and report["code"]["n_unique"] == 50


def test_long_text_overflows_before_it_fills_memory():
    text = pd.Series([f"{i} " + "word " * 100 for i in range(40_000)])
    column = colstats.summarize(text.to_frame("remark"))["columns"]["remark"]
    assert column.get("overflow") and len(column["top"]) == colstats.PARTITION_TOPK


def test_the_same_values_count_the_same_whatever_the_dtypes(credit):
    plain = credit[["Home", "Marital", "Income"]].copy()
    plain["flag"] = np.where(credit["Status"] == "good", True, None)
    typed = plain.astype({"Home": "category", "Marital": "string[pyarrow]", "flag": "boolean"})
    a = colstats.finalize(colstats.summarize(plain))["columns"]
    b = colstats.finalize(colstats.summarize(typed))["columns"]
    for name in plain.columns:
        assert (a[name]["kind"], a[name]["missing"], a[name]["n_unique"], a[name]["top"]) == \
               (b[name]["kind"], b[name]["missing"], b[name]["n_unique"], b[name]["top"])
    assert a["flag"]["kind"] == "bool" and a["flag"]["top"] == [[True, (credit["Status"] == "good").sum()]]


def test_all_counts_keeps_every_value_of_the_target(diamonds):
    report = colstats.finalize(colstats.summarize(diamonds), all_counts=("clarity",))["columns"]
    assert len(report["clarity"]["top"]) == diamonds["clarity"].nunique() == 8
    assert len(report["price"]["top"]) == 10
