"""Config schema, loading, overrides and sweeps."""

from stresslab.config.loading import ConfigError, ScenarioSet, load_config
from stresslab.config.schema import Config

__all__ = ["Config", "ConfigError", "ScenarioSet", "load_config"]
