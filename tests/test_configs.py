"""The shipped scenario configs (configs/**/*.toml) load, validate and run as they are.

Each config is run with a handful of paths and otherwise unchanged (same horizon,
step, cohorts and shocks), so a schema change that breaks a shipped file, or a
kernel change that makes one of them unstable or non-finite, fails here.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import stresslab

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
CONFIGS = sorted(CONFIG_DIR.rglob("*.toml"))
PATHS = 64
RECORD = ["simulation.record_points=10"]
"""Fewer recorded time points: a smaller output, the same simulated market."""
FATAL_WORDS = ("unstable", "cascade rounds", "exhausted the book", "non-finite")
"""Warnings that mean the numbers cannot be trusted (an exhausted insurance fund is an outcome, not one of these)."""


def _id(path: Path) -> str:
    return str(path.relative_to(CONFIG_DIR))


def test_configs_are_shipped():
    names = {p.name for p in CONFIGS}
    assert {"crypto_long_squeeze.toml", "equity_sell_program.toml", "dealer_short_gamma.toml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=_id)
def test_config_loads(path):
    scenarios = stresslab.load_config(path)
    assert len(scenarios.scenarios) >= 1
    for config in scenarios.scenarios:
        assert config.simulation.n_steps >= 1
    # The resolved config round-trips through TOML to the same scenarios.
    again = stresslab.load_config(stresslab.load_config(path).resolved)
    assert again.scenarios == scenarios.scenarios


@pytest.mark.slow
@pytest.mark.parametrize("path", CONFIGS, ids=_id)
def test_config_runs_finite(path):
    n_scenarios = len(stresslab.load_config(path).scenarios)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = stresslab.simulate(path, paths=PATHS, overrides=RECORD)
    fatal = [str(w.message) for w in caught if any(word in str(w.message) for word in FATAL_WORDS)]
    assert not fatal, fatal
    assert ds.sizes["scenario"] == n_scenarios
    assert ds.sizes["path"] == PATHS
    for name, var in ds.data_vars.items():
        if var.dtype.kind == "f" and name != "recovery_time":  # NaN there means "not recovered in time"
            assert np.isfinite(var.values).all(), f"{name} has non-finite values"
    assert (ds.unstable_step.values == -1).all()
    assert (ds.rounds_exhausted.values == 0).all()
    depth = ds.cascade_depth.values
    assert ((depth >= 0) & (depth < 1)).all()
    assert (ds.min_price.values > 0).all()
    assert (ds.bad_debt.values >= 0).all()
