"""The baseline step (``notebooks/02_baseline.ipynb``): how well do standard models do, and which one goes to export.

Modules, in the order the notebook calls them: ``inputs`` (features and encoded target from
``eda.json``), ``splits`` (the held-out test rows and the CV folds), ``crossval`` (cross-validation of each
model and the selection), ``results`` (leaderboard files, decision threshold, leakage check) and
``diagnostics`` (plots, permutation importance, learning curve). Submodules load on demand.
"""


class BaselineError(ValueError):
    """The baseline step cannot proceed: the message names the problem and the fix."""
