"""The recommendation on real data: the eda.json payload, drop and keep columns, reproducibility, summaries."""

import json

import numpy as np
import pandas as pd
import pytest

from mlhelpers.core.artifacts import read_artifact
from mlhelpers.core.io import load_table
from mlhelpers.core.models import ZOO, feature_columns
from mlhelpers.core.params import PROJECT_ROOT
from mlhelpers.explore import EdaError
from mlhelpers.explore import recommend as eda

CREDIT = PROJECT_ROOT / "data" / "credit.csv"


@pytest.fixture(scope="module")
def credit_payload(credit_compact):
    return eda.recommend(credit_compact, target="Status", seed=0)


# ---------------------------------------------------------------------------- the demo data

def test_credit_recommendation_matches_the_contract(credit_payload):
    p = credit_payload
    assert (p["task"], p["primary_metric"], p["target"]) == ("classification", "roc_auc", "Status")
    assert p["metric_reason"] == "binary target, 28% minority class"
    assert (p["n_rows"], p["n_rows_missing_target"], p["n_cols"]) == (4454, 0, 15)
    assert p["classes"] == ["bad", "good"]
    assert set(p["columns"]) == set(pd.read_csv(CREDIT, nrows=1).columns)
    assert p["columns"]["Status"] == p["columns"]["Status"] | {"role": "target", "drop": True}
    assert p["columns"]["rownames"]["role"] == "identifier" and p["columns"]["rownames"]["drop"]
    assert "unique for 100% of rows" in p["columns"]["rownames"]["reason"]
    assert p["leakage_suspects"] == ["rownames"]
    assert p["recommended_models"] == list(ZOO)
    roles = {c: info["role"] for c, info in p["columns"].items()}
    # Records holds yes/no: the explore step loads it as a boolean (credit_compact is load_compact's frame)
    assert roles["Income"] == "numeric" and roles["Home"] == "categorical" and roles["Records"] == "boolean"


def test_credit_features_feed_the_baseline(credit_payload):
    groups = feature_columns(credit_payload)
    used = sum(groups.values(), [])
    assert "rownames" not in used and "Status" not in used
    assert len(used) == 13 and set(groups["categorical"]) == {"Home", "Marital", "Job"}
    assert groups["boolean"] == ["Records"]


def test_recommendation_is_reproducible_and_written_with_schema_version(credit_compact, credit_payload, tmp_path):
    again = eda.recommend(credit_compact, target="Status", seed=0)
    assert json.dumps(again, default=str) == json.dumps(credit_payload, default=str)
    path = eda.write_eda(tmp_path, credit_payload)
    assert path == tmp_path / "explore" / "eda.json"
    stored = read_artifact(tmp_path, "eda")
    assert stored["schema_version"] == 1 and stored["columns"]["rownames"]["drop"] is True


def test_summary_and_columns_table(credit_payload):
    text = eda.summarize(credit_payload).data
    assert "4,454 rows" in text and "`rownames`" in text and "roc_auc" in text
    table = eda.columns_table(credit_payload)
    assert table.index[0] in ("rownames", "Status") and bool(table.loc["Income", "drop"]) is False


# ---------------------------------------------------------------------------- columns to drop or keep

def test_single_row_is_refused(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("x,y\n1,a\n", encoding="utf-8")
    with pytest.raises(EdaError, match=r"only 1 row\(s\) have a known target 'y'"):
        eda.recommend(load_table(path), target="y")


def test_unknown_drop_or_keep_columns(credit_compact):
    with pytest.raises(EdaError, match=r"keep_columns names \['Incom'\], not columns of the table"):
        eda.recommend(credit_compact, target="Status", keep_columns=["Incom"])


def test_drop_columns_are_dropped(credit_compact):
    payload = eda.recommend(credit_compact, target="Status", drop_columns=["Price"], seed=0)
    assert payload["columns"]["Price"]["drop"] is True
    assert payload["columns"]["Price"]["reason"].startswith("listed in drop_columns")


def test_shuffling_an_irrelevant_column_changes_nothing_much(penguins):
    frame = penguins.assign(noise=np.random.default_rng(0).normal(size=len(penguins)))
    shuffled = frame.assign(noise=frame["noise"].sample(frac=1, random_state=1).to_numpy())
    first = eda.recommend(frame, target="species", seed=0)
    second = eda.recommend(shuffled, target="species", seed=0)
    assert first["columns"]["noise"]["drop"] == second["columns"]["noise"]["drop"] is False
    assert [c for c, i in first["columns"].items() if i["drop"]] == [c for c, i in second["columns"].items() if i["drop"]]
