"""Library chatter kept out of the executed notebooks: a step's report shows results, not log lines.

``quiet_libraries()`` is a context: inside it the named libraries log warnings and errors only, MLflow
draws no download progress bars and tqdm's "IProgress not found" warning is dropped. Everything is
restored on exit, so the user's own process keeps its settings.
"""

from __future__ import annotations

import logging
import os
import warnings
from contextlib import contextmanager
from typing import Iterator

# Libraries whose INFO lines land in a step's notebook: MLflow's run/model messages, alembic's database
# migrations (a new SQLite store), Dask's cluster start-up.
CHATTY_LOGGERS = ("mlflow", "alembic", "distributed", "bokeh")
# Environment switches read at call time by the libraries themselves.
QUIET_ENVIRONMENT = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}


@contextmanager
def quiet_libraries(loggers: tuple[str, ...] = CHATTY_LOGGERS) -> Iterator[None]:
    """Silence library logging below WARNING and progress bars inside the block; restore them after."""
    levels = {name: logging.getLogger(name).level for name in loggers}
    saved_environment = {name: os.environ.get(name) for name in QUIET_ENVIRONMENT}
    try:
        for name in loggers:
            logging.getLogger(name).setLevel(logging.WARNING)
        os.environ.update(QUIET_ENVIRONMENT)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="IProgress not found")
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        for name, value in saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
