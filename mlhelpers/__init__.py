"""Helpers behind the workspace notebooks: explore, baseline and export a tabular dataset.

Importing this package is fast and changes nothing on disk; heavy libraries load inside the
functions that need them.
"""

__version__ = "0.1.0"
