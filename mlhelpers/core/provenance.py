"""The data a run started from: every step checks that the data file is still the one the run began with.

A run's data is fixed by its content hash (sha256). ``mlh run`` records it in ``manifest.json`` before the
first step; the explore step records what it read in ``explore/data.json`` (an interactive run has no
manifest, and ``--from`` copies ``explore/`` into the new run). Every step calls ``check_data`` before it
reads the data: a file that changed since the run started is refused instead of silently training on
other rows than the ones the earlier steps described.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlhelpers.core.artifacts import MANIFEST, STEPS, artifact_path, write_json
from mlhelpers.core import sources

__all__ = ["DataChangedError", "data_fingerprint", "check_data", "recorded_fingerprint"]


class DataChangedError(ValueError):
    """The data file differs from the one the run started from: the message says what to do."""


def data_fingerprint(data_file: str | Path) -> dict[str, Any]:
    """``{"path", "sha256", "bytes", "files"}`` of the data as it is now: a file, or a folder or glob of files
    (``mlhelpers.core.sources.data_fingerprint``; a single file's sha256 is its bytes', as ``file_sha256``)."""
    return sources.data_fingerprint(data_file)


def recorded_fingerprint(run_dir: str | Path) -> tuple[dict[str, Any], str] | None:
    """What a run folder says its data was, and who said so: the explore step's record, else the manifest's.

    None when neither is there (a run folder from before these records, or one no step has written yet).
    """
    run_dir = Path(run_dir)
    for source, path in (("the explore step", artifact_path(run_dir, "data_fingerprint")),
                         ("the run's manifest", run_dir / MANIFEST)):
        payload = _read(path)
        data = payload.get("data") if path.name == MANIFEST else payload
        if isinstance(data, dict) and isinstance(data.get("sha256"), str):
            return data, source
    return None


def check_data(run_dir: str | Path, data_file: str | Path, step: str) -> dict[str, Any]:
    """Refuse (``DataChangedError``) a data file that changed since the run in ``run_dir`` started.

    Compares the file's sha256 with the manifest's (a run ``mlh run`` started) and, for the steps after
    explore, with the one the explore step recorded. The explore step (re)starts the record: it writes
    ``explore/data.json``. Returns the file's fingerprint.
    """
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}; expected one of {', '.join(STEPS)}.")
    run_dir = Path(run_dir)
    now = data_fingerprint(data_file)
    references = [("the run's manifest", (_read(run_dir / MANIFEST).get("data") or {}))]
    if step != "explore":
        references.append(("the explore step", _read(artifact_path(run_dir, "data_fingerprint"))))
    for source, then in references:
        if isinstance(then, dict) and then.get("sha256") not in (None, now["sha256"]):
            raise DataChangedError(changed_message(data_file, then["sha256"], now["sha256"], source))
    if step == "explore":
        write_json(artifact_path(run_dir, "data_fingerprint"), now)
    return now


def changed_message(data_file: str | Path, then: str, now: str, source: str) -> str:
    """The one message for a data file that changed since the run started."""
    return (f"the data changed since the run started (sha256 {then[:12]}... recorded by {source}, "
            f"{now[:12]}... now): {data_file}. Restore the file the run started from, or start a new run from "
            "the explore step on this data (without --from).")


def _read(path: Path) -> dict[str, Any]:
    # A missing or unreadable record is no evidence either way: the step's own reading reports a corrupt file.
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return payload if isinstance(payload, dict) else {}
