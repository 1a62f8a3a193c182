"""The run folder's registry: every artifact's place, atomic writes, checked reads that say which step to run."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import pytest

from mlhelpers.core.artifacts import (ARTIFACTS, STEPS, ArtifactError, MissingArtifactError, artifact_file, artifact_path,
                                      atomic_path, read_artifact, relative_to_run, save_figure, step_dir,
                                      write_json)


def test_every_artifact_belongs_to_a_step_and_lives_in_a_distinct_place(tmp_path):
    paths = [artifact_path(tmp_path, name) for name in ARTIFACTS]
    assert len(set(paths)) == len(paths)
    assert all(step in STEPS for step, _ in ARTIFACTS.values())
    assert artifact_path(tmp_path, "model_skops") == tmp_path / "model" / "model.skops"
    assert artifact_file("serving_report") == "serving_report.json"
    assert [step.folder for step in STEPS.values()] == ["explore", "baseline", "model"]


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
