"""Every step checks that the data file is still the one its run started from: against mlh run's manifest, and
against what the explore step read (explore/data.json) in an interactive run, which has no manifest."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from mlhelpers.baseline.inputs import load_baseline_data
from mlhelpers.core.artifacts import artifact_path, write_json
from mlhelpers.core.params import PROJECT_ROOT, validate_params
from mlhelpers.core.provenance import DataChangedError, check_data, data_fingerprint, recorded_fingerprint
from mlhelpers.export.refit import load_export_data

def changed(source: str) -> str:
    return (r"the data changed since the run started \(sha256 [0-9a-f]{12}\.\.\. recorded by " + source
            + r", [0-9a-f]{12}\.\.\. now\)")


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "credit.csv"
    shutil.copy(PROJECT_ROOT / "data" / "credit.csv", path)
    return path


def _change(path) -> None:
    """Other rows of the same table: what a colleague's overnight export would do."""
    frame = pd.read_csv(path)
    frame.tail(300).to_csv(path, index=False)


def test_an_interactive_run_checks_against_what_explore_read(tmp_path, data_file):
    run_dir = tmp_path / "interactive"
    recorded = check_data(run_dir, data_file, "explore")
    assert json.loads(artifact_path(run_dir, "data_fingerprint").read_text())["sha256"] == recorded["sha256"]
    assert check_data(run_dir, data_file, "baseline") == recorded  # unchanged: fine
    _change(data_file)
    for step in ("baseline", "export"):
        with pytest.raises(DataChangedError, match=changed("the explore step")):
            check_data(run_dir, data_file, step)
    # rerunning explore starts the run over on the new data
    check_data(run_dir, data_file, "explore")
    check_data(run_dir, data_file, "baseline")


def test_a_run_of_mlh_run_checks_every_step_against_its_manifest(tmp_path, data_file):
    run_dir = tmp_path / "run"
    write_json(run_dir / "manifest.json", {"status": "running", "data": data_fingerprint(data_file)})
    _change(data_file)  # between `mlh run` starting and the explore step reading
    with pytest.raises(DataChangedError, match=changed("the run's manifest")):
        check_data(run_dir, data_file, "explore")
    assert not artifact_path(run_dir, "data_fingerprint").exists()


def test_a_run_without_any_record_is_not_refused(tmp_path, data_file):
    # run folders written before these records existed still run
    assert check_data(tmp_path / "old", data_file, "baseline")["sha256"] == data_fingerprint(data_file)["sha256"]
    assert recorded_fingerprint(tmp_path / "old") is None


def test_the_baseline_and_export_steps_refuse_changed_data(tmp_path, baseline_run):
    data_file = tmp_path / "credit.csv"
    shutil.copy(PROJECT_ROOT / "data" / "credit.csv", data_file)
    run_dir = baseline_run(tmp_path / "run")
    check_data(run_dir, data_file, "explore")
    params = validate_params({"data_path": str(data_file), "run_dir": str(run_dir)}, check_data=False)
    assert len(load_baseline_data(params).X) == 4454
    assert len(load_export_data(params).X_test) == 891
    _change(data_file)
    with pytest.raises(DataChangedError, match=changed("the explore step")):
        load_baseline_data(params)
    with pytest.raises(DataChangedError, match=r"Restore the file the run started from, or start a new run"):
        load_export_data(params)
