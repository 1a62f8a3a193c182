"""The run folder's registry: every artifact's place, atomic writes, checked reads that say which step to run."""

from __future__ import annotations

import json
import os
import stat

import matplotlib.pyplot as plt
import numpy as np
import pytest

from mlhelpers.core.artifacts import (AFTER_STEPS, ARTIFACTS, NOTEBOOK_STEPS, STEPS, ArtifactError,
                                      MissingArtifactError, artifact_file, artifact_path, atomic_path, finite_or_none,
                                      read_artifact, relative_to_run, save_figure, step_dir, write_json)


def test_every_artifact_belongs_to_a_step_and_lives_in_a_distinct_place(tmp_path):
    paths = [artifact_path(tmp_path, name) for name in ARTIFACTS]
    assert len(set(paths)) == len(paths)
    assert all(step in NOTEBOOK_STEPS for step, _ in ARTIFACTS.values())
    assert artifact_path(tmp_path, "model_skops") == tmp_path / "model" / "model.skops"
    assert artifact_file("serving_report") == "serving_report.json"
    assert [step.folder for step in STEPS.values()] == ["explore", "baseline", "model"]


def test_after_pipeline_notebooks_are_registered_but_not_pipeline_steps(tmp_path):
    assert list(STEPS) == ["explore", "baseline", "export"]  # what `mlh run` sequences, unchanged
    assert list(NOTEBOOK_STEPS) == ["explore", "baseline", "export", "compare", "monitor"]
    assert [NOTEBOOK_STEPS[s].notebook for s in AFTER_STEPS] == ["04_compare.ipynb", "05_monitor.ipynb"]
    # their folder is their output folder itself
    assert artifact_path(tmp_path, "drift_report") == tmp_path / "drift_report.json" == step_dir(tmp_path, "monitor") / "drift_report.json"
    assert artifact_path(tmp_path, "reference") == tmp_path / "model" / "reference.json"
    with pytest.raises(MissingArtifactError, match=r"notebooks/04_compare.ipynb, or its `mlh` command\) into this folder"):
        read_artifact(tmp_path, "comparison")


def test_write_json_is_atomic_and_versioned(tmp_path):
    path = write_json(tmp_path / "model" / "metrics.json", {"test": {"rmse": 1.5}, "schema_version": 99})
    assert json.loads(path.read_text()) == {"schema_version": 1, "test": {"rmse": 1.5}}
    assert read_artifact(tmp_path, "metrics")["test"] == {"rmse": 1.5}
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]  # no temp file left behind


def test_a_failed_write_leaves_the_old_file(tmp_path):
    target = tmp_path / "eda.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as temp:
        temp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]


def test_missing_and_stale_artifacts_say_which_step_to_rerun(tmp_path):
    with pytest.raises(MissingArtifactError, match=r"run the baseline step first \(notebooks/02_baseline.ipynb"):
        read_artifact(tmp_path, "model_spec")
    (tmp_path / "explore").mkdir()
    (tmp_path / "explore" / "eda.json").write_text(json.dumps({"schema_version": 0}))
    with pytest.raises(ValueError, match="schema_version 0, this code reads 1; rerun the explore step"):
        read_artifact(tmp_path, "eda")


@pytest.mark.parametrize("content, problem", [
    ('{"schema_version": 1, "target": "Status", "columns": {"Age": {"role": "num', r"not valid JSON \(it ends early"),
    ('{"schema_version": 1, "target": Status}', r"not valid JSON \(Expecting value at line 1, column 33\)"),
    ('[1, 2]', r"it holds a JSON list, not an object"),
    (b"\xff\xfe{}", r"is not a readable JSON file \(byte 0 is not UTF-8\)"),
])
def test_a_corrupt_artifact_names_the_file_and_the_step_to_rerun(tmp_path, content, problem):
    (tmp_path / "explore").mkdir()
    path = tmp_path / "explore" / "eda.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ArtifactError, match=rf"explore/eda\.json (is corrupt: )?{problem}.*; rerun the explore step "
                                            r"\(notebooks/01_explore\.ipynb"):
        read_artifact(tmp_path, "eda")


def test_figures_and_paths_shown_relative_to_the_run(tmp_path):
    fig, _ = plt.subplots()
    path = save_figure(fig, tmp_path, "baseline", "diagnostics")
    plt.close(fig)
    assert path == step_dir(tmp_path, "baseline") / "diagnostics.png" and path.stat().st_size > 0
    assert relative_to_run(path, tmp_path) == "baseline/diagnostics.png"
    assert relative_to_run("/elsewhere/x.csv", tmp_path) == "/elsewhere/x.csv"


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask, expected", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_written_files_get_the_users_usual_permissions(tmp_path, umask, expected):
    # mkstemp made every artifact 0600: unreadable by the group the user shares runs with
    old = os.umask(umask)
    try:
        json_path = write_json(tmp_path / "a.json", {"x": 1})
        figure = plt.subplots()[0]
        png = save_figure(figure, tmp_path, "explore", "fig")
        plt.close(figure)
        with atomic_path(tmp_path / "t.csv") as temp:
            temp.write_text("a\n1\n")
    finally:
        os.umask(old)
    assert [_mode(p) for p in (json_path, png, tmp_path / "t.csv")] == [expected] * 3
    assert _mode(tmp_path / "explore") == 0o777 & ~umask


def test_a_replaced_file_keeps_its_permissions(tmp_path):
    target = tmp_path / "scores.csv"
    target.write_text("old")
    target.chmod(0o600)  # the user made it private: a rewrite keeps it so
    with atomic_path(target) as temp:
        temp.write_text("new")
    assert target.read_text() == "new" and _mode(target) == 0o600


def test_json_artifacts_are_strict_json(tmp_path):
    with pytest.raises(ValueError, match=r"m.json: cv.roc_auc.1 is not a finite number; JSON has no NaN"):
        write_json(tmp_path / "m.json", {"cv": {"roc_auc": [0.8, float("nan")]}})
    with pytest.raises(ValueError, match=r"x.json: seconds is not a finite number"):
        write_json(tmp_path / "x.json", {"seconds": np.float32("inf")})
    assert not (tmp_path / "m.json").exists() and list(tmp_path.iterdir()) == []
    path = write_json(tmp_path / "m.json", finite_or_none({"cv": {"roc_auc": np.array([0.8, np.nan])},
                                                           "t": (1.0, float("-inf")), "name": "x"}))
    assert json.loads(path.read_text()) == {"schema_version": 1, "cv": {"roc_auc": [0.8, None]},
                                            "t": [1.0, None], "name": "x"}
    assert "NaN" not in path.read_text()
