"""The mlh command: bad input exits 2 with one clear message, no traceback, no run folder."""

import subprocess
import sys

import pytest

from mlhelpers.cli import main
from mlhelpers.core.params import PROJECT_ROOT

DEMO = str(PROJECT_ROOT / "params" / "demo.yaml")


def run_cli(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_validate_accepts_the_demo(capsys):
    code, out, _ = run_cli(capsys, "validate", DEMO)
    assert code == 0 and "ok" in out


@pytest.mark.parametrize("content, message", [
    ("target: Status\ncv_fold: 3\n", "did you mean 'cv_folds'"),
    ("target: Status\ncv_folds: many\n", "key 'cv_folds'"),
    ("target: Status\ncv_folds: [3\n", "malformed YAML"),
    ("", "the file is empty"),
    ("data_path: data/missing.csv\n", "does not exist"),
    ("target: nope\n", "key 'target': 'nope' is not a column"),
    ("target: Status\ncv_folds: 1\n", "key 'cv_folds'"),
    ("target: Status\ntest_size: 1\n", "key 'test_size'"),
    ("target: Status\ntask: ranking\n", "key 'task'"),
])
def test_run_refuses_bad_params_before_anything_starts(tmp_path, capsys, content, message):
    params_file = tmp_path / "bad.yaml"
    params_file.write_text(content)
    runs_root = tmp_path / "runs"
    code, out, err = run_cli(capsys, "run", str(params_file), "--runs-root", str(runs_root))
    assert code == 2
    assert message in err and err.startswith("error: ") and "Traceback" not in err
    assert not runs_root.exists()


def test_overrides_are_validated_too(tmp_path, capsys):
    code, _, err = run_cli(capsys, "run", DEMO, "--set", "cv_folds=0", "--runs-root", str(tmp_path / "r"))
    assert code == 2 and "key 'cv_folds'" in err and not (tmp_path / "r").exists()


def test_unknown_step_and_missing_inputs_are_refused(tmp_path, capsys):
    code, _, err = run_cli(capsys, "run", DEMO, "--steps", "explor", "--runs-root", str(tmp_path / "r"))
    assert code == 2 and "unknown step explor" in err
    code, _, err = run_cli(capsys, "run", DEMO, "--steps", "export", "--runs-root", str(tmp_path / "r"))
    assert code == 2 and "pass --from" in err and not (tmp_path / "r").exists()


def test_runs_lists_nothing_helpfully(tmp_path, capsys):
    code, out, _ = run_cli(capsys, "runs", "--runs-root", str(tmp_path))
    assert code == 0 and "no runs under" in out


def test_console_script_exit_code_is_2_without_traceback(tmp_path):
    params_file = tmp_path / "bad.yaml"
    params_file.write_text("target: Status\nseed: -1\n")
    done = subprocess.run([sys.executable, "-m", "mlhelpers.cli", "validate", str(params_file)],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert "key 'seed'" in done.stderr and "Traceback" not in done.stderr


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_run_refuses_an_unreachable_scheduler_by_address_before_any_notebook(tmp_path, capsys, credit_parts):
    address = f"tcp://127.0.0.1:{_closed_port()}"
    params_file = tmp_path / "dask.yaml"
    params_file.write_text(f"data_path: {credit_parts}\ntarget: Status\nengine: dask\ndask_scheduler: {address}\n")
    code, out, err = run_cli(capsys, "run", str(params_file), "--runs-root", str(tmp_path / "runs"))
    assert code == 2 and f"key 'dask_scheduler': cannot reach {address}" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_predict_on_dask_refuses_bad_settings_and_a_missing_model_folder(tmp_path, capsys, credit_parts):
    code, _, err = run_cli(capsys, "predict", str(tmp_path / "model"), str(credit_parts), "-o", str(tmp_path / "out"),
                           "--engine", "dask", "--dask-worker-memory", "lots")
    assert code == 2 and "dask_worker_memory: 'lots' is not a memory size" in err
    code, _, err = run_cli(capsys, "predict", str(tmp_path / "model"), str(credit_parts), "-o", str(tmp_path / "out"),
                           "--engine", "dask", "--dask-workers", "1", "--dask-worker-memory", "1GB")
    assert code == 2 and "is not an exported model folder" in err and not (tmp_path / "out").exists()
