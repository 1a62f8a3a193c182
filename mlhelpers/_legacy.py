"""Module paths of the flat layout before 2026-11, for models saved then.

A skops file names the classes it holds (``mlhelpers.modeling.DatetimeParts``) and an MLflow model
from code imports ``mlhelpers.tracking.served_model``: both must keep loading. ``install()`` adds a
finder that answers those old names with today's modules; nothing else uses the old names.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

# old module -> the module that holds its saved names today
LEGACY_MODULES = {
    "mlhelpers.modeling": "mlhelpers.core.models",
    "mlhelpers.tracking": "mlhelpers.export.tracking",
}


class _LegacyFinder:
    """A meta path finder and loader for the old names (the protocol needs no importlib.abc base)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in LEGACY_MODULES:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        # A stand-in whose attributes are today's module's: old_name.Class is today's class itself.
        module = types.ModuleType(spec.name, f"Old name of {LEGACY_MODULES[spec.name]} (saved models use it).")
        module.__getattr__ = lambda name: getattr(importlib.import_module(LEGACY_MODULES[spec.name]), name)
        return module

    def exec_module(self, module) -> None:
        pass


def install() -> None:
    """Answer the old module names with today's modules (idempotent; changes nothing on disk)."""
    if not any(isinstance(finder, _LegacyFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _LegacyFinder())
