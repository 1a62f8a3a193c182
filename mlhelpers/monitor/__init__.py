"""The monitor notebook (``notebooks/05_monitor.ipynb``, ``mlh drift``): does new data still look like the training data?

Modules, in the order the notebook calls them: ``params`` (its typed parameters), ``report`` (read the model
folder's ``reference.json`` and the new file, check it against the input schema, run the column checks, write
``drift_report.json`` and its summary), ``drift`` (the statistics per column and for the predictions) and
``plots`` (reference vs new, per drifted column). Imports only ``mlhelpers.core`` and ``mlhelpers.formats``.
"""


class MonitorError(ValueError):
    """The drift check cannot proceed: the message names the problem and the fix."""
