"""Registers the ``ds.stress`` accessor, which lives in :mod:`stresslab.accessor` (above metrics and report).

Kept only because ``stresslab/__init__.py`` registers the accessor by importing this module; once it imports
:mod:`stresslab.accessor` directly, this module goes. Nothing in :mod:`stresslab.metrics` uses it.
"""

from stresslab.accessor import ACCESSOR_NAME, StressAccessor

__all__ = ["ACCESSOR_NAME", "StressAccessor"]
