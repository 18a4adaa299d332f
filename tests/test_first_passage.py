"""docs/validation.md oracle 1: liquidation probability is the first-passage probability of GBM.

Impact, dealers and every other mechanism are off; the margin check runs once per
step, so the closed form is taken with the Broadie-Glasserman-Kou barrier shift.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import proportion_stderr, within
from oracles import first_passage, first_passage_discrete, liquidation_price

import stresslab

pytestmark = pytest.mark.slow  # Monte Carlo oracle: 20,000-path runs

PATHS = 20_000
BGK_RESIDUAL = 0.006
"""Allowance for the O(dt) error left after the BGK correction at these step counts."""

CASES = [
    # side, sigma/yr, drift/yr, leverage, maintenance, horizon, steps
    ("long", 0.8, 0.0, 20, 0.005, "1d", 24),
    ("long", 0.5, 0.3, 10, 0.01, "7d", 168),
    ("long", 1.2, -0.5, 50, 0.004, "1d", 96),
    ("short", 0.8, 0.0, 20, 0.005, "1d", 24),
    ("short", 0.6, 0.4, 15, 0.01, "3d", 72),
]


def run(side, sigma, drift, leverage, mm, horizon, steps):
    seconds = {"1d": 86400, "3d": 3 * 86400, "7d": 7 * 86400}[horizon]
    config = {
        "simulation": {"horizon": horizon, "dt": seconds / steps, "dtype": "float64", "record_points": 2},
        "market": {"price": 100.0, "sigma": sigma, "drift": drift},
        "liquidity": {"enabled": False},
        "positions": [{"side": side, "leverage": leverage, "notional": 1e6, "maintenance_margin": mm}],
        "liquidation": {"adl": False},
    }
    ds = stresslab.simulate(config, paths=PATHS, seed=11)
    liquidated = (ds.liquidated_long + ds.liquidated_short).isel(scenario=0) > 0
    return float(liquidated.mean())


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-s{c[1]}-mu{c[2]}-x{c[3]}-{c[6]}steps" for c in CASES])
def test_liquidation_probability_matches_bgk_first_passage(case):
    side, sigma, drift, leverage, mm, horizon, steps = case
    years = {"1d": 1, "3d": 3, "7d": 7}[horizon] / 365
    barrier = liquidation_price(side, 100.0, leverage, mm)
    expected = first_passage_discrete(100.0, barrier, drift, sigma, years, steps)
    estimate = run(*case)
    stderr = proportion_stderr(expected, PATHS)
    assert within(estimate, expected, stderr, BGK_RESIDUAL), (estimate, expected, stderr)


def test_documented_example_and_discretisation_bias():
    """docs/validation.md: sigma 80 %/yr, 20x, m 0.5 %, 1 day: continuous 0.2753, 24 steps about 0.230."""
    barrier = liquidation_price("long", 100.0, 20, 0.005)
    assert first_passage(100.0, barrier, 0.0, 0.8, 1 / 365) == pytest.approx(0.2753, abs=5e-4)
    estimate = run("long", 0.8, 0.0, 20, 0.005, "1d", 24)
    assert abs(estimate - 0.230) < 4 * proportion_stderr(0.23, PATHS) + 0.004
    # Monitoring once per step misses crossings between steps: well below the continuous value.
    assert estimate < 0.2753 - 0.03
    assert np.isfinite(estimate)
