"""The ydata-profiling report: full detail on small data, a seeded sample in minimal mode on big data."""

import pytest

from mlhelpers import profiling
from mlhelpers.columns import EdaError
from mlhelpers.config import PROJECT_ROOT
from mlhelpers.data import load_compact

CREDIT = PROJECT_ROOT / "data" / "credit.csv"


@pytest.fixture(scope="module")
def credit():
    return load_compact(CREDIT)[0]


def test_profile_full_on_small_data(credit, tmp_path):
    path = profiling.write_profile(credit.head(500), tmp_path)
    assert path == tmp_path / "explore" / "profile.html"
    assert "all 500 rows, full detail" in path.read_text(encoding="utf-8")


def test_profile_sampled_on_big_data(credit, tmp_path):
    path = profiling.write_profile(credit, tmp_path, sample_rows=300, seed=0)
    assert "minimal mode on a 300-row sample of 4,454 rows (seed 0)" in path.read_text(encoding="utf-8")


def test_profile_sample_rows_must_be_positive(credit, tmp_path):
    with pytest.raises(EdaError, match=r"profile_sample_rows must be positive, got 0"):
        profiling.write_profile(credit, tmp_path, sample_rows=0)
