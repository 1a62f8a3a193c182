"""The explore step (``notebooks/01_explore.ipynb``): what is in the table, and what should the baseline use.

Modules, in the order the notebook calls them: ``roles`` (each column's role with its evidence),
``targets`` (task and primary metric), ``association`` (relevance to the target, redundancy),
``leakage`` (suspects with their evidence), ``plots``, ``profiling`` (the ydata-profiling report) and
``recommend`` (the ``explore/eda.json`` conclusion). Submodules load on demand, so importing this
package stays fast.
"""


class EdaError(ValueError):
    """The data cannot be explored as asked: the message names the column or key and the fix."""
