"""The run folder's registry: every artifact's place, atomic writes, checked reads that say which step to run."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import pytest

from mlhelpers.core.artifacts import (AFTER_STEPS, ARTIFACTS, NOTEBOOK_STEPS, STEPS, MissingArtifactError, artifact_file, artifact_path,
                                      atomic_path, read_artifact, relative_to_run, save_figure, step_dir,
                                      write_json)


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


def test_figures_and_paths_shown_relative_to_the_run(tmp_path):
    fig, _ = plt.subplots()
    path = save_figure(fig, tmp_path, "baseline", "diagnostics")
    plt.close(fig)
    assert path == step_dir(tmp_path, "baseline") / "diagnostics.png" and path.stat().st_size > 0
    assert relative_to_run(path, tmp_path) == "baseline/diagnostics.png"
    assert relative_to_run("/elsewhere/x.csv", tmp_path) == "/elsewhere/x.csv"
