"""The compare notebook (``notebooks/04_compare.ipynb``, ``mlh compare``): which run of several is best, and by how much?

Modules, in the order the notebook calls them: ``params`` (its typed parameters), ``runs`` (read each run
folder's artifacts, expand a sweep folder, refuse runs of different targets or data), ``table`` (the
parameters that differ, one row per run, ``comparison.csv``, the verdict) and ``plots`` (CV scores with their
spread, fit times, out-of-fold curves). Imports only ``mlhelpers.core`` and ``mlhelpers.formats``.
"""


class CompareError(ValueError):
    """Runs cannot be compared: the message names the runs, the problem and the fix."""
