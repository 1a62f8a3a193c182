"""A run's life: a stop signal ends it as failed/interrupted, a run whose process is gone never shows as running,
an earlier run feeds a new one only with the steps it completed on the same data, corrupt run folders are listed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

from mlhelpers.cli import main
from mlhelpers.core.artifacts import write_json
from mlhelpers.core.params import PROJECT_ROOT, ParamsError
from mlhelpers.core.provenance import check_data
from mlhelpers.lifecycle import (Interrupted, check_based_on, process_record, run_interruptibly, shown_status,
                                 stop_signals)
from mlhelpers.runs import list_runs


def _gone_process() -> dict:
    """The process record of a process that has ended (what a run killed with SIGKILL leaves)."""
    done = subprocess.run([sys.executable, "-c", "import json; from mlhelpers.lifecycle import process_record; "
                                                 "print(json.dumps(process_record()))"],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_a_running_run_whose_process_is_gone_shows_as_interrupted():
    assert shown_status({"status": "running", "process": process_record()}) == "running"
    assert shown_status({"status": "running", "process": _gone_process()}) == "interrupted"
    # the pid was reused by another process: the start time tells them apart
    assert shown_status({"status": "running", "process": process_record() | {"started": 1.0}}) == "interrupted"
    # what cannot be known is not guessed: another machine, or a manifest from before the record
    assert shown_status({"status": "running", "process": _gone_process() | {"host": "elsewhere"}}) == "running"
    assert shown_status({"status": "running"}) == "running"
    assert shown_status({"status": "succeeded", "process": _gone_process()}) == "succeeded"


def test_a_stop_signal_stops_the_step_and_its_children():
    children = []

    def step():
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        children.append(child)
        child.wait()

    # a child from before the step (a Dask cluster's worker in `mlh run`, the test session's shared cluster) is
    # spared: stopping every child killed the session's workers (a restart seen at the session's end)
    earlier = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    before = signal.getsignal(signal.SIGTERM)
    threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM)).start()
    started = time.perf_counter()
    try:
        with pytest.raises(Interrupted) as caught, stop_signals() as received:
            run_interruptibly(step, received)
        assert caught.value.signal_name == "SIGTERM" and caught.value.exit_code == 143
        assert time.perf_counter() - started < 20
        assert children and children[0].poll() is not None  # the kernel's stand-in was stopped
        assert earlier.poll() is None
        assert signal.getsignal(signal.SIGTERM) == before
    finally:
        earlier.kill()


def test_a_step_error_and_result_come_back_unchanged():
    with stop_signals() as received:
        assert run_interruptibly(lambda: 42, received) == 42
        with pytest.raises(ValueError, match="boom"):
            run_interruptibly(lambda: (_ for _ in ()).throw(ValueError("boom")), received)


def test_a_signal_the_process_ignores_stays_ignored():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a background job of a shell script
    try:
        with stop_signals():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    finally:
        signal.signal(signal.SIGINT, previous)


# ------------------------------------------------------------------------------------------ --from

def _earlier_run(folder, steps: dict, data_file=None, process=None):
    for step_folder in ("explore", "baseline"):
        (folder / step_folder).mkdir(parents=True, exist_ok=True)
    manifest = {"status": "failed", "steps": {step: {"status": status} for step, status in steps.items()}}
    if process is not None:
        manifest |= {"status": "running", "process": process}
    write_json(folder / "manifest.json", manifest)
    if data_file is not None:
        check_data(folder, data_file, "explore")  # what its explore step records
    return folder


def test_from_uses_only_steps_that_succeeded(tmp_path):
    failed = _earlier_run(tmp_path / "failed", {"explore": "succeeded", "baseline": "failed"})
    check_based_on(failed, ["baseline", "export"], None)  # its explore step is fine
    with pytest.raises(ParamsError, match=r"--from .*failed: its baseline step did not succeed \(failed\); its "
                                          r"baseline/ folder may be incomplete"):
        check_based_on(failed, ["export"], None)
    killed = _earlier_run(tmp_path / "killed", {"explore": "succeeded", "baseline": "running"}, process=_gone_process())
    with pytest.raises(ParamsError, match=r"its baseline step did not succeed \(interrupted\)"):
        check_based_on(killed, ["export"], None)
    pending = _earlier_run(tmp_path / "pending", {"explore": "pending"})
    with pytest.raises(ParamsError, match=r"its explore step did not succeed \(pending\)"):
        check_based_on(pending, ["baseline"], None)
    corrupt = tmp_path / "corrupt"
    (corrupt / "explore").mkdir(parents=True)
    (corrupt / "manifest.json").write_text('{"status": "runn')
    with pytest.raises(ParamsError, match=r"--from .*manifest.json is unreadable"):
        check_based_on(corrupt, ["baseline"], None)


def test_from_refuses_data_that_changed_since_that_run(tmp_path):
    data_file = tmp_path / "credit.csv"
    shutil.copy(PROJECT_ROOT / "data" / "credit.csv", data_file)
    earlier = _earlier_run(tmp_path / "run", {"explore": "succeeded"}, data_file=data_file)
    check_based_on(earlier, ["baseline"], data_file)
    data_file.write_text(data_file.read_text().replace("good", "bad", 10))
    with pytest.raises(ParamsError, match=r"--from .*run: the data changed since the run started \(sha256 "):
        check_based_on(earlier, ["baseline"], data_file)


def test_from_checks_a_folder_of_files_too(tmp_path, credit_parts):
    """A folder of Parquet files (engine dask's data) is fingerprinted as the run recorded it: once it raised
    IsADirectoryError, so `mlh run --steps export --from` failed for every partitioned table."""
    folder = tmp_path / "parts"
    shutil.copytree(credit_parts, folder)
    earlier = _earlier_run(tmp_path / "run", {"explore": "succeeded"}, data_file=folder)
    check_based_on(earlier, ["baseline"], folder)
    shutil.copy(folder / "part.0.parquet", folder / "part.4.parquet")
    with pytest.raises(ParamsError, match=r"--from .*run: the data changed since the run started \(sha256 "):
        check_based_on(earlier, ["baseline"], folder)


def test_mlh_run_refuses_such_a_from_before_creating_a_run_folder(tmp_path, capsys):
    failed = _earlier_run(tmp_path / "earlier", {"explore": "succeeded", "baseline": "failed"})
    runs_root = tmp_path / "runs"
    code = main(["run", str(PROJECT_ROOT / "params" / "demo.yaml"), "--steps", "export", "--from", str(failed),
                 "--runs-root", str(runs_root)])
    err = capsys.readouterr().err
    assert code == 2 and "its baseline step did not succeed (failed)" in err and "Traceback" not in err
    assert not runs_root.exists()


# ------------------------------------------------------------------------------------------ mlh runs

def test_mlh_runs_lists_every_run_even_corrupt_ones(tmp_path, capsys):
    root = tmp_path / "runs"
    write_json(root / "good" / "20260101-000000" / "manifest.json",
               {"status": "succeeded", "started_at": "2026-01-01T00:00:00+00:00", "seconds": 1.0, "steps": {}})
    (root / "bad" / "20260101-000001").mkdir(parents=True)
    (root / "bad" / "20260101-000001" / "manifest.json").write_text('{"schema_version": 1, "status": "runn')
    (root / "nomanifest" / "20260101-000002").mkdir(parents=True)
    (root / "alist" / "20260101-000003").mkdir(parents=True)
    (root / "alist" / "20260101-000003" / "manifest.json").write_text("[1, 2]")
    write_json(root / "odd" / "20260101-000004" / "manifest.json",
               {"status": 3, "seconds": "long", "started_at": 5, "steps": []})
    write_json(root / "killed" / "20260101-000005" / "manifest.json",
               {"status": "running", "started_at": "2026-01-01T00:00:05+00:00", "steps": {"explore": {}},
                "process": _gone_process()})
    (root / "killed" / "20260101-000005" / "model").mkdir()
    (root / "killed" / "20260101-000005" / "model" / "metrics.json").write_text("{not json")
    (root / "interactive" / "explore").mkdir(parents=True)  # a step folder of the interactive run: not a run

    rows = {row["run"]: row for row in list_runs(root)}
    assert set(rows) == {"good/20260101-000000", "bad/20260101-000001", "nomanifest/20260101-000002",
                         "alist/20260101-000003", "odd/20260101-000004", "killed/20260101-000005"}
    assert rows["good/20260101-000000"]["status"] == "succeeded"
    assert rows["killed/20260101-000005"]["status"] == "interrupted"
    assert rows["killed/20260101-000005"]["headline"] == "- (metrics unreadable)"
    assert rows["odd/20260101-000004"]["status"] == "?" and rows["odd/20260101-000004"]["seconds"] is None
    for run, problem in (("bad/20260101-000001", "is unreadable (JSONDecodeError"),
                         ("nomanifest/20260101-000002", "does not exist"),
                         ("alist/20260101-000003", "is unreadable (a JSON list")):
        assert rows[run]["status"] == "unreadable" and problem in rows[run]["headline"]

    assert main(["runs", "--runs-root", str(root)]) == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) == 7
    line = next(line for line in out.splitlines() if line.startswith("bad/"))
    assert "unreadable" in line and str(root / "bad" / "20260101-000001") in line
    assert "interrupted" in next(line for line in out.splitlines() if line.startswith("killed/"))


# ------------------------------------------------------------------------------------------ the real command

def _start_run(tmp_path) -> tuple[subprocess.Popen, object]:
    """`mlh run` on the demo, in its own process group (as from a terminal); returns once a step's kernel runs."""
    runs_root = tmp_path / "runs"
    process = subprocess.Popen(
        [sys.executable, "-m", "mlhelpers.cli", "run", str(PROJECT_ROOT / "params" / "demo.yaml"), "--runs-root",
         str(runs_root), "--set", f"mlflow_tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        # as from a terminal: a shell's background job (pytest started with &) hands SIGINT down ignored,
        # and a run started ignoring SIGINT rightly keeps ignoring it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        manifests = list(runs_root.glob("demo/*/manifest.json"))
        kernels = psutil.Process(process.pid).children(recursive=True) if process.poll() is None else []
        if manifests and kernels and '"running"' in manifests[0].read_text():
            time.sleep(2)  # the kernel is executing cells
            return process, manifests[0]
        time.sleep(0.5)
    process.kill()
    pytest.fail("the run never reached a running step")


@pytest.mark.slow
@pytest.mark.parametrize("sent, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_marks_the_run_failed_interrupted_in_one_line(tmp_path, sent, code):
    process, manifest_path = _start_run(tmp_path)
    kernels = psutil.Process(process.pid).children(recursive=True)
    process.send_signal(sent)
    _, err = process.communicate(timeout=120)
    assert process.returncode == code
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"interrupted by {sent.name}: the run is marked failed (interrupted); manifest: ")
    manifest = json.loads(manifest_path.read_text())
    assert manifest["status"] == "failed" and manifest["finished_at"]
    assert manifest["error"]["reason"] == "interrupted" and manifest["error"]["signal"] == sent.name
    assert manifest["steps"]["explore"]["status"] == "failed"
    _, alive = psutil.wait_procs(kernels, timeout=15)
    assert alive == []  # no kernel left behind


@pytest.mark.slow
def test_a_killed_run_shows_as_interrupted_never_running(tmp_path, capsys):
    process, manifest_path = _start_run(tmp_path)
    kernels = psutil.Process(process.pid).children(recursive=True)
    process.kill()
    process.communicate(timeout=60)
    for kernel in kernels:  # the orphaned kernel: this test started it, this test ends it
        kernel.kill()
    assert json.loads(manifest_path.read_text())["status"] == "running"  # nobody could write otherwise
    assert [row["status"] for row in list_runs(tmp_path / "runs")] == ["interrupted"]
    assert main(["runs", "--runs-root", str(tmp_path / "runs")]) == 0
    assert "interrupted" in capsys.readouterr().out
