"""The export step (``notebooks/03_export.ipynb``): refit, test once, persist safely, prove parity, track and serve.

Modules, in the order the notebook calls them: ``refit`` (the spec to rebuild, the split, the refit, the
one test evaluation, the input schema), ``saving`` (skops and ONNX files with their parity and serving
cost), ``model_card`` and ``tracking`` (MLflow). The file formats themselves live in
``mlhelpers.formats``. Submodules load on demand.
"""


class ExportError(ValueError):
    """The export step cannot proceed: the message names the problem and the fix."""
