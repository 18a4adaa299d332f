"""stresslab: GPU-accelerated Monte Carlo stress tests of flash crashes and liquidation cascades.

The public names are imported on first use (PEP 562), so that ``import stresslab`` and the
command line's ``--help`` do not pay for JAX and xarray. Importing stresslab changes nothing
in JAX: call :func:`stresslab.use_cpu_cores` (the command line does) to give JAX one CPU
device per core before it starts.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from stresslab.version import __version__

_PUBLIC = {
    "Config": "stresslab.config.schema",
    "ConfigError": "stresslab.config.loading",
    "RunSettings": "stresslab.api",
    "ScenarioSet": "stresslab.config.loading",
    "StresslabError": "stresslab.errors",
    "calibrate": "stresslab.calibrate",
    "compare": "stresslab.historical",
    "facts": "stresslab.metrics.facts",
    "fit": "stresslab.historical",
    "headline": "stresslab.metrics.headline",
    "initialize": "stresslab.engine.distributed",
    "read": "stresslab.io.store",
    "write_metrics": "stresslab.metrics.headline",
    "load_config": "stresslab.config.loading",
    "objective": "stresslab.calibrate",
    "run_to": "stresslab.api",
    "simulate": "stresslab.api",
    "simulate_distributed": "stresslab.api",
    "use_compile_cache": "stresslab.engine.compile_cache",
    "use_cpu_cores": "stresslab.engine.devices",
}
"""Public name -> the module that defines it."""
ACCESSOR = "stresslab.accessor"
"""Registers ``ds.stress`` on xarray Datasets."""

__all__ = ["Config", "ConfigError", "RunSettings", "ScenarioSet", "StresslabError", "calibrate", "compare", "facts",
           "fit", "headline", "initialize", "load_config", "objective", "read", "run_to", "simulate",
           "simulate_distributed", "use_compile_cache", "use_cpu_cores", "write_metrics", "__version__"]

if TYPE_CHECKING:
    from stresslab.api import RunSettings, run_to, simulate, simulate_distributed
    from stresslab.calibrate import calibrate, objective
    from stresslab.config.loading import ConfigError, ScenarioSet, load_config
    from stresslab.config.schema import Config
    from stresslab.engine.compile_cache import use_compile_cache
    from stresslab.engine.devices import use_cpu_cores
    from stresslab.engine.distributed import initialize
    from stresslab.errors import StresslabError
    from stresslab.historical import compare, fit
    from stresslab.io.store import read
    from stresslab.metrics.facts import facts
    from stresslab.metrics.headline import headline, write_metrics


SUBMODULES = {"api": (), "config": (), "engine": (), "errors": (), "historical": (), "io": ("stresslab.io.store",),
              "market": (), "metrics": (), "progress": (), "report": (), "shipped": (), "status": ()}
"""Subpackages reachable as attributes once ``stresslab`` is imported, with the modules each loads too, so that
``stresslab.io.store.read`` works as it did when everything was imported at once."""


def __getattr__(name: str) -> Any:
    if name in SUBMODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        for inner in SUBMODULES[name]:
            importlib.import_module(inner)
        return module
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'stresslab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    importlib.import_module(ACCESSOR)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*__all__, *SUBMODULES})


class _Package(types.ModuleType):
    """The package, whose ``calibrate`` stays the function when the ``stresslab.calibrate`` subpackage is imported.

    Importing a subpackage sets the parent's attribute of that name to the module; the function
    of the same name is what users call (``stresslab.calibrate(config)``), as it was when the
    names were imported eagerly.
    """

    @property
    def calibrate(self) -> Any:
        return __getattr__("calibrate")

    @calibrate.setter
    def calibrate(self, module: types.ModuleType) -> None:
        """The import system records the subpackage here; it stays reachable as ``sys.modules``'s entry."""


sys.modules[__name__].__class__ = _Package


if "xarray" in sys.modules:  # xarray is loaded already: register ds.stress now, at little cost
    importlib.import_module(ACCESSOR)
