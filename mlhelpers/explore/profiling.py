"""The ydata-profiling report of the table, ``explore/profile.html``: full detail on small data,
minimal mode on a seeded sample of big data, "small" and "big" counted in cells (rows x columns), histograms
for the target and the columns most related to it.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mlhelpers.core.artifacts import artifact_path, atomic_path, relative_to_run
from mlhelpers.core.tables import seeded_sample
from mlhelpers.explore import EdaError

__all__ = ["ProfileFile", "ProfileJob", "histogram_columns", "profile_columns", "profile_plan", "start_profile",
           "write_profile"]

# ydata's correlations and missing-value diagrams grow with the columns as well as the rows, and its
# per-column plots with the columns alone: a 2,930 x 74 table spent 22 s of a 30 s explore step in full
# detail. So the budget counts cells: full detail up to FULL_DETAIL_CELLS, else minimal mode on at most
# PROFILE_CELLS cells (a seeded sample of rows; minimal mode's statistics barely depend on the rows beyond).
FULL_DETAIL_CELLS = 100_000
PROFILE_CELLS = 500_000
# Even minimal mode cost ~0.7 s a column whatever the rows (752 columns of 252 rows: 527 s). Wider
# tables are profiled on the target and the columns most related to it; the notebook's own tables cover all.
PROFILE_COLUMNS = 100
# Measured (py-spy, AmesHousing 2,930 x 75 in minimal mode: 20 CPU s): nearly all of ydata's time is matplotlib
# drawing per-column figures, two histograms per numeric column (0.38 s a column whatever the rows: 13 s) and a
# category bar (5 s); its statistics for all 75 columns took 0.9 s. So every column keeps its statistics and
# frequency tables, and histograms are drawn for ``histograms`` columns only (the target first, then the
# strongest); -1 draws them all.
DEFAULT_HISTOGRAMS = 6
# ydata's word cloud cannot draw a word wider than its canvas (about 120 characters) and raises; its
# character statistics take minutes on 20,000-character values. The report's copy of the data is cut to
# these lengths (the data the other steps use is untouched).
MAX_TEXT_CHARS = 1_000
MAX_WORD_CHARS = 60


@dataclass(frozen=True)
class ProfileFile:
    """The written report: where it is (also relative to the run folder) and what it covers."""

    path: Path
    relative_path: str
    covers: str

    def _repr_markdown_(self) -> str:
        return f"Profile report ({self.covers}): `{self.relative_path}` in the run folder; open it in a browser."


def histogram_columns(columns: list, priority: list | None, target: str | None, histograms: int) -> list:
    """The columns whose histograms the report draws: ``histograms`` of ``columns`` (all when -1), the target
    first, then ``priority`` (strongest first), then the table's order."""
    ordered = [target] if target in columns else []
    for name in list(priority or []) + list(columns):
        if name in columns and name not in ordered:
            ordered.append(name)
    return ordered if histograms < 0 else ordered[:histograms]


def profile_plan(n_rows: int, n_columns: int, sample_rows: int = 50_000) -> tuple[bool, int]:
    """(full detail?, rows to profile) for a table of that shape: the cell budgets of the module doc."""
    if n_rows <= sample_rows and n_rows * n_columns <= FULL_DETAIL_CELLS:
        return True, n_rows
    return False, min(n_rows, sample_rows, max(PROFILE_CELLS // max(n_columns, 1), 100))


def _shorten_long_strings(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The frame with over-long values and words of its text columns cut (a copy if anything changes),
    and the names of the columns cut."""
    cut, out = [], frame
    for name in frame.columns:
        column = frame[name]
        if not (column.dtype == object or isinstance(column.dtype, (pd.CategoricalDtype, pd.StringDtype))):
            continue
        text = column.astype("object")
        lengths = text.map(lambda value: len(value) if isinstance(value, str) else 0)
        if lengths.max() <= MAX_WORD_CHARS:
            continue
        short = text.where(~text.map(lambda value: isinstance(value, str)),
                           text.astype(str).str.slice(0, MAX_TEXT_CHARS)
                           .str.replace(rf"(\S{{{MAX_WORD_CHARS}}})\S+", "\\1…", regex=True))
        if not short.equals(text):
            out = out.copy() if out is frame else out
            out[name] = short
            cut.append(str(name))
    return out, cut


def profile_columns(frame: pd.DataFrame, priority: list | None = None, target: str | None = None) -> list:
    """The columns the report covers: all of them up to ``PROFILE_COLUMNS``, else the target first, then
    ``priority`` (e.g. the relevance ranking, strongest first), then the table's order."""
    if len(frame.columns) <= PROFILE_COLUMNS:
        return list(frame.columns)
    ordered = [target] if target in frame.columns else []
    for name in list(priority or []) + list(frame.columns):
        if name in frame.columns and name not in ordered:
            ordered.append(name)
    return ordered[:PROFILE_COLUMNS]


def write_profile(frame: pd.DataFrame, run_dir: str | Path, *, sample_rows: int = 50_000, seed: int = 42,
                  title: str = "Data profile", priority: list | None = None,
                  target: str | None = None, histograms: int = DEFAULT_HISTOGRAMS) -> ProfileFile:
    """Write a ydata-profiling report to ``explore/profile.html``; return where it is and what it covers.

    Small data (at most ``FULL_DETAIL_CELLS`` rows x columns, and at most ``sample_rows`` rows): full
    detail (correlations, missing values, duplicates), without the pairwise scatter plots that dominate
    ydata's run time. Larger data: ydata's minimal mode on a seeded sample of at most ``sample_rows``
    rows and ``PROFILE_CELLS`` cells (never fewer than 100 rows), so the report never dominates the step.
    Text longer than ``MAX_TEXT_CHARS`` (or words longer than ``MAX_WORD_CHARS``) is cut in the report's
    copy of the data: ydata's word cloud fails on a word wider than its canvas. Tables wider than
    ``PROFILE_COLUMNS`` are profiled on the columns ``profile_columns`` picks (``target``, ``priority``).
    Histograms are drawn for ``histograms`` columns (``histogram_columns``; -1: every column), the rest keep
    their statistics and frequency tables. ``start_profile`` writes the same report in a second process.
    """
    data, job = _plan(frame, run_dir, sample_rows=sample_rows, seed=seed, title=title, priority=priority,
                      target=target, histograms=histograms)
    _render(data, job)
    return _profile_file(job, run_dir)


class ProfileJob:
    """The report written by a second process. Created early (the notebook's imports cell), the process imports
    ydata-profiling (2.4 s) at once and waits; ``start`` hands it the rows, ``wait`` returns the ``ProfileFile``.
    A process never started ends when this object (or the kernel) goes: it reads end-of-file."""

    def __init__(self) -> None:
        import subprocess
        import sys
        import tempfile

        self.folder = Path(tempfile.mkdtemp(prefix="mlh-profile-"))
        self.job: dict[str, Any] | None = None
        self.run_dir: Path | None = None
        with open(self.folder / "stderr.txt", "w") as stderr:
            # its own session: a kernel stopped with SIGINT to its group left it interrupted with its temp folder;
            # alone it reads end-of-file when the kernel goes and cleans up
            self.process = subprocess.Popen([sys.executable, "-m", "mlhelpers.explore.profiling", str(self.folder)], text=True,
                                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr,
                                            start_new_session=True)

    def start(self, frame: pd.DataFrame, run_dir: str | Path, **options: Any) -> "ProfileJob":
        """Hand ``write_profile(frame, run_dir, **options)``'s work to the process (options checked and the
        sample taken here) and return at once."""
        data, self.job = _plan(frame, run_dir, **options)
        self.run_dir = Path(run_dir)
        # a private temp file this process writes and its own child reads back: pickle keeps every dtype as is
        data.to_pickle(self.folder / "data.pkl")
        (self.folder / "job.json").write_text(json.dumps(self.job), encoding="utf-8")
        try:
            self.process.stdin.write("go\n")
            self.process.stdin.close()
        except (BrokenPipeError, OSError):
            pass  # the process already failed: wait() says why
        return self

    def wait(self) -> ProfileFile:
        """Wait for the report; raise ``EdaError`` with the process's last error lines if it failed."""
        import shutil

        if self.job is None:
            raise EdaError("The profile report was never started: call start(frame, run_dir) before wait().")
        code = self.process.wait()
        errors = (self.folder / "stderr.txt").read_text(errors="replace")
        shutil.rmtree(self.folder, ignore_errors=True)
        if code:
            raise EdaError(f"The profile report failed (exit code {code}); its last lines:\n{errors[-2000:]}")
        return _profile_file(self.job, self.run_dir)

    def _repr_markdown_(self) -> str:
        if self.job is None:
            return "Profile report: a second process is importing ydata-profiling."
        return f"Profile report ({self.job['covers']}): being written by a second process while this notebook goes on."


def start_profile(frame: pd.DataFrame, run_dir: str | Path, **options: Any) -> ProfileJob:
    """``write_profile(frame, run_dir, **options)`` in a second process: the notebook goes on while ydata
    draws (its import and drawing overlap the notebook's own work on a multi-core machine); ``wait()``
    returns what ``write_profile`` would."""
    return ProfileJob().start(frame, run_dir, **options)


def _plan(frame: pd.DataFrame, run_dir: str | Path, *, sample_rows: int = 50_000, seed: int = 42,
          title: str = "Data profile", priority: list | None = None, target: str | None = None,
          histograms: int = DEFAULT_HISTOGRAMS) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The rows and columns to profile, and the job: ydata settings, title, columns with histograms, path."""
    if sample_rows < 1:
        raise EdaError(f"profile_sample_rows must be positive, got {sample_rows}.")
    if histograms < -1:
        raise EdaError(f"profile_histograms must be -1 (every column) or at least 0, got {histograms}.")
    columns = profile_columns(frame, priority, target)
    small, rows = profile_plan(len(frame), len(columns), sample_rows=sample_rows)
    data = seeded_sample(frame[columns], rows, seed)
    if small:
        # PNG histograms and no string-length plots: the same detail in about half the time.
        settings: dict[str, Any] = {"explorative": False, "interactions": None, "vars": {"cat": {"length": False}},
                                    "plot": {"image_format": "png", "dpi": 80, "cat_freq": {"show": False}}}
        subtitle = f"all {len(frame):,} rows, full detail"
    else:
        # Histograms dominate ydata's minimal mode: fewer bins and small PNGs halve its time.
        # Minimal mode's own file names the category bars' switch "cat_frequency" where ydata reads "cat_freq",
        # so they stayed on; word clouds and character tables of free text are not minimal either.
        settings = {"minimal": True, "vars": {"cat": {"length": False},
                                              "text": {"length": False, "words": False, "characters": False}},
                    "plot": {"image_format": "png", "dpi": 60, "histogram": {"bins": 20, "max_bins": 20},
                             "cat_freq": {"show": False}}}
        subtitle = (f"minimal mode on a {len(data):,}-row sample of {len(frame):,} rows (seed {seed})"
                    if len(data) < len(frame) else f"all {len(frame):,} rows, minimal mode")
    if len(columns) < len(frame.columns):
        subtitle += (f"; {len(columns)} of {len(frame.columns):,} columns: "
                     f"{'the target and ' if target in columns else ''}those most related to it")
    drawn = histogram_columns(columns, priority, target, histograms)
    if len(drawn) < len(columns):
        subtitle += (f"; histograms for {len(drawn)} of {len(columns)} columns"
                     + (f" ({'the target and ' if target in drawn else ''}the most related)" if drawn else "")
                     + ": set profile_histograms to -1 for every column")
    data, cut = _shorten_long_strings(data)
    if cut:
        subtitle += (f"; text cut to {MAX_TEXT_CHARS:,} characters and words to {MAX_WORD_CHARS} "
                     f"for this report ({', '.join(cut)})")
    return data, {"settings": settings, "title": f"{title}: {subtitle}", "covers": subtitle,
                  "histograms": [str(name) for name in drawn], "path": str(artifact_path(run_dir, "profile"))}


def _render(data: pd.DataFrame, job: dict[str, Any]) -> None:
    import contextlib
    import io

    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        from ydata_profiling import ProfileReport

        report = ProfileReport(data, title=job["title"], progress_bar=False, **job["settings"])
        # the statistics are computed once; a column without a histogram in them is drawn without one
        keep = set(job["histograms"])
        for name, summary in report.description_set.variables.items():
            if str(name) not in keep and "histogram" in summary:
                summary["histogram"] = []
        html = report.to_html()
    with atomic_path(Path(job["path"])) as temp:
        temp.write_text(html, encoding="utf-8")


def _profile_file(job: dict[str, Any], run_dir: str | Path) -> ProfileFile:
    path = Path(job["path"])
    return ProfileFile(path=path, relative_path=relative_to_run(path, run_dir), covers=job["covers"])


if __name__ == "__main__":  # ProfileJob's second process: python -m mlhelpers.explore.profiling FOLDER
    import shutil
    import sys

    _folder = Path(sys.argv[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import ydata_profiling  # noqa: F401  (the slow import, done while the notebook works)
    if sys.stdin.readline().strip() == "go":
        _render(pd.read_pickle(_folder / "data.pkl"), json.loads((_folder / "job.json").read_text(encoding="utf-8")))
    else:  # end-of-file: the job was never started, nobody will wait for it
        shutil.rmtree(_folder, ignore_errors=True)
