"""The trusted model file: skops (a zip of JSON + arrays, no pickle code runs on load), with a vetted type allowlist.

``save_skops(pipeline, path, compress=False) -> Path``
    Atomic skops write.
``load_skops(path, extra_trusted=()) -> pipeline``
    Loads with an explicit allowlist (``TRUSTED_TYPES`` + ``extra_trusted``), never blanket trust.
    A file holding any other type raises ``UntrustedModelError`` naming the types; a file that is not
    a skops zip, or is corrupt, raises ``ModelFileError``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any, Iterable

from mlhelpers.core.artifacts import atomic_path


# Types beyond skops' own default-trusted set (scikit-learn estimators, numpy arrays, builtins)
# that our pipelines contain; each was vetted as plain data holders with no code execution on
# load. Found with skops.io.get_untrusted_types over every model of the zoo on both tasks.
TRUSTED_TYPES: tuple[str, ...] = (
    "numpy.dtype",
    "mlhelpers.core.models.DatetimeParts",  # our own stateless transformer (column names only)
    "mlhelpers.modeling.DatetimeParts",     # the same, in models saved before the package layout of 2026-11
    # our free-text encoder: holds scikit-learn TfidfVectorizer / TruncatedSVD objects (trusted by skops
    # itself) and its three parameters; its methods are our code, its state plain data
    "mlhelpers.core.text.TextEncoder",
    # HistGradientBoosting keeps partial(check_array, ...) in its fitted preprocessor. A partial
    # is only as safe as the function it wraps; skops lists that function as a type of its own,
    # so partial(os.system) would still be refused for "os.system".
    "functools.partial",
    "sklearn.utils.validation.check_array",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn._loss.link.IdentityLink",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.link.MultinomialLogit",
    "sklearn._loss.loss.HalfSquaredError",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn._loss.loss.HalfMultinomialLoss",
    "xgboost.core.Booster",
    "xgboost.sklearn.XGBClassifier",
    "xgboost.sklearn.XGBRegressor",
)


class ModelFileError(ValueError):
    """The model file is missing, not in the expected format, or corrupt."""


class UntrustedModelError(ModelFileError):
    """A skops file holds types outside the vetted allowlist: refused before anything is built."""


def with_named_columns(pipeline: Any) -> Any:
    """``pipeline`` itself, or a copy whose ColumnTransformers name the columns a ``make_column_selector`` chose when
    fitted: the selector (and the ``object`` dtype it selects on) is outside skops' trusted types, so the file would
    not load back (a user's forest on stevedata's TV16). Transforming uses the fitted ``transformers_``, unchanged."""
    import copy

    if not any(callable(columns) for step in _column_transformers(pipeline) for *_, columns in step.transformers):
        return pipeline
    pipeline = copy.deepcopy(pipeline)
    for step in _column_transformers(pipeline):
        if hasattr(step, "transformers_"):
            fitted = {name: columns for name, _, columns in step.transformers_}
            step.transformers = [(name, transformer, fitted.get(name, columns) if callable(columns) else columns)
                                 for name, transformer, columns in step.transformers]
    return pipeline


def _column_transformers(pipeline: Any) -> list:
    from sklearn.compose import ColumnTransformer

    steps = [step for _, step in pipeline.steps] if hasattr(pipeline, "steps") else [pipeline]
    return [step for step in steps if isinstance(step, ColumnTransformer)]


def save_skops(pipeline: Any, path: str | Path, compress: bool = False) -> Path:
    """Write ``pipeline`` to ``path`` in skops format atomically (``with_named_columns``); return the path.

    ``compress=True`` deflates the zip (smaller file, slower load).
    """
    import skops.io as sio

    path = Path(path)
    with atomic_path(path) as temp:
        sio.dump(with_named_columns(pipeline), temp,
                 compression=zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED)
    return path


def skops_untrusted_types(path: str | Path) -> list[str]:
    """Types in a skops file that skops does not trust by default (see ``TRUSTED_TYPES``)."""
    import skops.io as sio

    path = existing_file(path)
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path} is not a skops file (expected a zip archive written by "
                             f"save_skops / skops.io.dump); re-export the model with save_skops.")
    try:
        return list(sio.get_untrusted_types(file=path))
    except Exception as error:  # a damaged archive or schema fails in many ways
        raise ModelFileError(f"{path} is a corrupt skops file ({type(error).__name__}: {error}); "
                             f"re-export the model with save_skops.") from error


def load_skops(path: str | Path, extra_trusted: Iterable[str] = ()) -> Any:
    """Load a skops file, trusting only ``TRUSTED_TYPES`` plus ``extra_trusted``; return the object.

    Raises ``UntrustedModelError`` (naming the types) when the file holds anything else, and
    ``ModelFileError`` when it is not a skops file or is corrupt.
    """
    import skops.io as sio

    allowed = set(TRUSTED_TYPES) | set(extra_trusted)
    found = skops_untrusted_types(path)
    refused = sorted(set(found) - allowed)
    if refused:
        raise UntrustedModelError(
            f"{path} contains types outside the trusted allowlist: {', '.join(refused)}. "
            f"Loading them could run arbitrary code. If the file comes from a source you trust, "
            f"inspect it with skops.io.get_untrusted_types(file=...) and vet each type, then pass "
            f"the vetted names as load_skops(path, extra_trusted=[...]).")
    try:
        return sio.load(path, trusted=found)
    except Exception as error:
        raise ModelFileError(f"{path} could not be loaded as a skops file ({type(error).__name__}: "
                             f"{error}); re-export the model with save_skops.") from error


def existing_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist; check the path or run the export step.")
    return path
