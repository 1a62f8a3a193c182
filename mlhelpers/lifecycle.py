"""A run's life outside its notebooks: the process that runs it, a clean stop on SIGTERM/SIGINT, the status
``mlh runs`` shows for a run whose process is gone, and which earlier run a new one may start from.

A run killed with SIGKILL (or by a crash of the interpreter) cannot write anything: its manifest keeps
``"status": "running"``. The manifest records the pid, the host and the process's start time, so any
later reader on the same machine can tell that nobody runs it any more and show it as ``interrupted``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from mlhelpers.core.artifacts import MANIFEST, STEPS
from mlhelpers.core.params import ParamsError
from mlhelpers.core.provenance import changed_message, data_fingerprint, recorded_fingerprint

__all__ = ["Interrupted", "process_record", "shown_status", "read_manifest", "stop_signals", "run_interruptibly",
           "check_based_on"]

# SIGHUP too: closing the terminal is the commonest way a long run is stopped.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
POLL_SECONDS = 0.2
CHILD_GRACE_SECONDS = 5.0


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal; ``signal_name`` says which (``"SIGTERM"``)."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + its number."""
        return 128 + int(signal.Signals[self.signal_name])


def process_record() -> dict[str, Any]:
    """Who runs this run: pid, host and the process's start time (pids are reused; start times are not)."""
    import psutil

    return {"pid": os.getpid(), "host": socket.gethostname(), "started": psutil.Process().create_time()}


def _process_alive(record: dict[str, Any]) -> bool | None:
    """Whether the recorded process still runs; None when that cannot be known (another host, no record)."""
    import psutil

    if not isinstance(record, dict) or record.get("host") != socket.gethostname():
        return None
    try:
        process = psutil.Process(int(record["pid"]))
        return abs(process.create_time() - float(record["started"])) < 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied, KeyError, TypeError, ValueError):
        return False


def shown_status(manifest: dict[str, Any]) -> str:
    """The manifest's status, except that a ``running`` run whose process is gone is ``interrupted``."""
    status = manifest.get("status")
    status = status if isinstance(status, str) else "?"
    if status == "running" and _process_alive(manifest.get("process")) is False:
        return "interrupted"
    return status


def read_manifest(run_dir: str | Path) -> dict[str, Any]:
    """A run folder's manifest; ``ValueError`` naming the file when it is missing, unreadable or not an object."""
    path = Path(run_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is unreadable ({type(exc).__name__}: {str(exc)[:120]})") from None
    if not isinstance(manifest, dict):
        raise ValueError(f"{path} is unreadable (a JSON {type(manifest).__name__}, not an object)")
    return manifest


@contextmanager
def stop_signals() -> Iterator[dict[str, str]]:
    """While inside, SIGTERM, SIGINT and SIGHUP are noted (in the yielded dict, key ``"signal"``) instead of
    killing the process, so the run can record that it was interrupted; the old handlers come back after.

    A signal the process was started ignoring (SIGINT in a background job, SIGHUP under nohup) stays ignored.
    Must be entered in the main thread (Python delivers signals there).
    """
    received: dict[str, str] = {}

    def note(signum: int, _frame) -> None:
        received.setdefault("signal", signal.Signals(signum).name)

    previous = {}
    for number in STOP_SIGNALS:
        if signal.getsignal(number) is not signal.SIG_IGN:
            previous[number] = signal.signal(number, note)
    try:
        yield received
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def run_interruptibly(work: Callable[[], Any], received: dict[str, str]) -> Any:
    """Run ``work()`` in a worker thread and return its result; raise ``Interrupted`` as soon as a stop signal
    is noted in ``received`` (see ``stop_signals``), after stopping the child processes ``work`` started (the
    kernel). Children that were there before are spared (a Dask cluster the caller runs, which it closes itself).

    A worker thread, because the main thread must stay free to notice signals, and because nbclient installs
    its own SIGINT/SIGTERM handlers when it runs in the main thread (they only shut the kernel down, and
    leave SIGTERM at its default afterwards, so a later SIGTERM killed the run without a word).
    """
    import psutil

    outcome: dict[str, Any] = {}
    earlier = {child.pid for child in psutil.Process().children(recursive=True)}

    def target() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # handed to the main thread below
            outcome["error"] = exc

    worker = threading.Thread(target=target, name="mlh-step", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(POLL_SECONDS)
        if "signal" in received:
            stop_children(spare=earlier)
            worker.join(CHILD_GRACE_SECONDS * 2)
            raise Interrupted(received["signal"])
    if "signal" in received:
        raise Interrupted(received["signal"])
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def stop_children(spare: set[int] | frozenset[int] = frozenset()) -> None:
    """Terminate this process's child processes (the notebook kernel) but those in ``spare``, killing those that
    linger."""
    import psutil

    children = [child for child in psutil.Process().children(recursive=True) if child.pid not in spare]
    for child in children:
        try:
            child.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(children, timeout=CHILD_GRACE_SECONDS)
    for child in alive:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass


def check_based_on(based_on: Path, steps: list[str], data_file: Path | None) -> None:
    """Refuse (``ParamsError``) an earlier run that cannot feed ``steps``: one of the steps before them did not
    succeed there (failed, interrupted, still running), or the data file changed since that run read it."""
    needed = list(STEPS)[: list(STEPS).index(steps[0])]
    manifest = None
    if (based_on / MANIFEST).exists():
        try:
            manifest = read_manifest(based_on)
        except ValueError as exc:
            raise ParamsError(f"--from {based_on}: {exc}; pick another run (see `mlh runs`).") from None
    recorded = manifest.get("steps") if manifest else None
    for step in needed:
        if not (based_on / STEPS[step].folder).is_dir():
            raise ParamsError(f"--from {based_on}: it has no {STEPS[step].folder}/ folder; "
                              f"pick a run whose {step} step succeeded (see `mlh runs`).")
        status = recorded.get(step, {}).get("status") if isinstance(recorded, dict) else None
        if isinstance(recorded, dict) and step in recorded and status != "succeeded":
            shown = "interrupted" if status == "running" and shown_status(manifest) == "interrupted" else status
            raise ParamsError(f"--from {based_on}: its {step} step did not succeed ({shown}); its {STEPS[step].folder}/ "
                              f"folder may be incomplete. Pick a run whose {step} step succeeded (see `mlh runs`) "
                              f"or add {step} to --steps.")
    reference = recorded_fingerprint(based_on)
    if data_file is not None and reference is not None:
        then, source = reference
        now = data_fingerprint(data_file)["sha256"]  # a folder or glob of files too, as the run recorded it
        if now != then["sha256"]:
            raise ParamsError(f"--from {based_on}: " + changed_message(data_file, then["sha256"], now, source))
