"""Helpers behind the workspace notebooks: explore, baseline and export a tabular dataset.

Layout: ``core`` (what every step shares), ``formats`` (the model files), one package per notebook
(``explore``, ``baseline``, ``export``), ``tools`` (command-line only), and ``pipeline`` / ``cli``,
which orchestrate. Importing this package is fast and changes nothing on disk; heavy libraries load
inside the functions that need them.
"""

from mlhelpers import _legacy

__version__ = "0.1.0"

_legacy.install()
