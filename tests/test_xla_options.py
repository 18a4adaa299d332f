"""The engine's XLA options (``engine.xla_options``): a user's XLA_FLAGS wins, and the wider CPU vectors change
no output."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from helpers import CONFIGS, stresslab_process

from stresslab.engine import xla_options

NARROW = "--xla_cpu_prefer_vector_width=256"


@pytest.mark.parametrize("flags", ["", "--xla_cpu_enable_fast_math=false"])
def test_the_engine_asks_for_512_bit_vectors_unless_xla_flags_chooses(monkeypatch, flags):
    monkeypatch.setenv("XLA_FLAGS", flags)
    assert xla_options.kernel_options() == {"xla_cpu_prefer_vector_width": 512}
    monkeypatch.setenv("XLA_FLAGS", f"{flags} {NARROW}")
    assert xla_options.kernel_options() == {}


@pytest.mark.slow
@pytest.mark.parametrize("config", ["dealer_short_gamma.toml", "crypto_long_squeeze.toml"])
def test_outputs_are_bit_identical_with_256_and_512_bit_vectors(tmp_path, config):
    """The options book's erfc and exp, the tiered margins and the cascade: the same numbers lane by lane."""
    datasets = {}
    for name, flags in (("wide", ""), ("narrow", NARROW)):
        out = tmp_path / f"{name}.nc"
        done = stresslab_process("run", CONFIGS / config, "--paths", "300", "--seed", "5", "--out", out, "--quiet",
                                 "--set", "simulation.horizon=2h", env={"XLA_FLAGS": flags,
                                                                       "STRESSLAB_COMPILE_CACHE": "off"})
        assert done.returncode == 0, done.stderr
        datasets[name] = xr.open_dataset(out).load()
    wide, narrow = datasets["wide"], datasets["narrow"]
    assert set(wide.data_vars) == set(narrow.data_vars) and len(wide.data_vars) > 10
    for var in wide.data_vars:
        np.testing.assert_array_equal(wide[var].values, narrow[var].values, err_msg=var)
