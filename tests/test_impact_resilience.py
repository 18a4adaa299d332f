"""docs/validation.md oracle 5: impact and resilience (Obizhaeva-Wang 2013).

A block sell of notional x displaces the log-price by 0.01 x / depth on a flat
book and by 0.01 sqrt(x / depth) on a V-shaped one; the transient part decays as
exp(-rho t) exactly at any step size, the permanent part stays. Depth consumed by
the block recovers with the same half-life.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import stresslab

pytestmark = pytest.mark.slow  # each test compiles and runs a market kernel

DEPTH = 2e7
HALF_LIFE = 120.0
RHO = math.log(2) / HALF_LIFE


def block_run(dt: float, block: float, law: str, permanent: float, depletion: float = 0.0):
    steps = int(900 / dt)
    config = {
        "simulation": {"steps": steps, "dt": dt, "dtype": "float64", "record_points": steps, "keep_paths": 1},
        "market": {"sigma": 0.0, "price": 50.0,
                   "shocks": [{"type": "sell_program", "start": 60.0, "notional": block, "duration": dt}]},
        "liquidity": {"depth": DEPTH, "impact": law, "permanent_fraction": permanent,
                      "recovery_half_life": HALF_LIFE, "depletion": depletion},
    }
    ds = stresslab.simulate(config, paths=2).isel(scenario=0, sample=0)
    seconds = ds.time.values / np.timedelta64(1, "s")
    return seconds, np.log(ds.sample_price.values / 50.0), ds.sample_depth.values


@pytest.mark.parametrize("law", ["linear", "sqrt"])
@pytest.mark.parametrize("permanent", [0.0, 0.3])
@pytest.mark.parametrize("dt", [1.0, 10.0, 30.0])
def test_block_impact_and_exact_exponential_decay(law, permanent, dt):
    block = 5e6
    seconds, logp, _ = block_run(dt, block, law, permanent)
    size = 0.01 * block / DEPTH if law == "linear" else 0.01 * math.sqrt(block / DEPTH)
    after = seconds >= 60.0 + dt  # the block executes in the step starting at 60 s
    elapsed = seconds[after] - (60.0 + dt)
    expected = -size * (permanent + (1 - permanent) * np.exp(-RHO * elapsed))
    np.testing.assert_allclose(logp[after], expected, rtol=1e-9, atol=1e-15)
    np.testing.assert_array_equal(logp[seconds <= 60.0], 0.0)


def test_depth_consumed_by_a_block_recovers_exponentially():
    block, depletion = 4e6, 1.5
    seconds, _, depth = block_run(5.0, block, "linear", 0.5, depletion)
    after = seconds >= 65.0
    consumed = depletion * block / DEPTH
    expected = 1 - consumed * np.exp(-RHO * (seconds[after] - 65.0))
    np.testing.assert_allclose(depth[after], expected, rtol=1e-9)


def test_square_root_law_scales_with_root_of_size():
    moves = [-block_run(10.0, x, "sqrt", 1.0)[1][-1] for x in (1e6, 4e6, 16e6)]
    np.testing.assert_allclose(np.diff(np.log(moves)), math.log(2), rtol=1e-9)
