"""The software a run used: package versions and the git state, for the manifest, the model card and MLflow."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path
from typing import Any

from mlhelpers.core.params import PROJECT_ROOT


VERSIONED_PACKAGES = ("pandas", "numpy", "scikit-learn", "xgboost", "ydata-profiling", "papermill",
                      "skops", "skl2onnx", "onnxruntime", "mlflow", "mlhelpers")


def package_versions() -> dict[str, str]:
    """Python and the key packages' versions, as installed."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def git_state(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """The checked-out commit and whether the work tree has uncommitted changes."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}
