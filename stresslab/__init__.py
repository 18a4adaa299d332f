"""stresslab: GPU-accelerated Monte Carlo stress tests of flash crashes and liquidation cascades."""

__version__ = "0.1.0"

from stresslab.engine.devices import use_cpu_cores  # noqa: E402

use_cpu_cores()  # one CPU device per core (paths are sharded over devices); see engine/devices.py

from stresslab.api import simulate, simulate_distributed  # noqa: E402
from stresslab.calibrate import calibrate, objective  # noqa: E402
from stresslab.config import Config, ConfigError, ScenarioSet, load_config  # noqa: E402
from stresslab.errors import StresslabError  # noqa: E402

# registers the ds.stress accessor on xarray Datasets
from stresslab.metrics import accessor as _accessor  # noqa: E402, F401

__all__ = ["Config", "ConfigError", "ScenarioSet", "StresslabError", "calibrate", "load_config", "objective",
           "simulate", "simulate_distributed", "__version__"]
