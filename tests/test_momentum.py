"""Trend followers (market/momentum.py): their rule, step by step, and their effect on a cascade."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import GAP_SQUEEZE
from kernel import kernel_states

import stresslab

S0 = 100.0
DEPTH = 1e7
CAPITAL = 4e6
SPEED = 6e7
"""Notional per hour: 1e6 per one-minute step."""


def calm(gap: float, threshold: float = 0.03, speed: float | None = SPEED, window: str = "10min") -> dict:
    """No randomness, no cohorts: a gap of ``gap`` in step 5, trend followers with a ``window`` look-back."""
    momentum = {"enabled": True, "capital": CAPITAL, "threshold": threshold, "window": window}
    if speed is not None:
        momentum["speed"] = speed
    return {
        "simulation": {"steps": 20, "dt": "1min"},
        "market": {"price": S0, "sigma": 0.0, "shocks": [{"type": "gap", "at": "5min", "size": gap}]},
        "liquidity": {"depth": DEPTH, "permanent_fraction": 1.0, "depletion": 0.0},
        "momentum": momentum,
    }


def series(raw: dict):
    _, _, states = kernel_states(raw)
    units = np.asarray([float(s.momentum.units[0, 0]) for s in states])
    y = np.asarray([float(s.price.y[0, 0]) for s in states])
    return units, y


@pytest.mark.parametrize("gap, side", [(-0.05, -1.0), (0.05, 1.0)])
def test_they_trade_with_the_move_after_it_passes_the_threshold(gap, side):
    units, y = series(calm(gap))
    # The gap happens in step 5 (states[6] is after it); they see it at the start of step 6 and trade then.
    assert np.all(units[:7] == 0.0)
    per_step = SPEED / 60.0
    price6 = S0 * math.exp(y[6])
    assert units[7] == pytest.approx(side * per_step / price6, rel=1e-12)
    # Their order moves the price by 0.01 x notional / depth (linear, permanent impact) in the same direction.
    assert y[7] - y[6] == pytest.approx(side * 0.01 * per_step / DEPTH, rel=1e-9)
    # They keep trading at the speed limit until they hold the capital (at the price they last traded at).
    steps = np.diff(units[6:]) * side
    assert np.all(steps <= per_step / (S0 * np.exp(y[6:-1])) * (1 + 1e-12))
    assert abs(units[-1]) * S0 * math.exp(y[-1]) == pytest.approx(CAPITAL, rel=5e-3)


def test_once_the_move_leaves_the_window_they_hold():
    """With a 3-minute window they see the gap in steps 6, 7 and 8 only: three trades, then no signal."""
    units, y = series(calm(-0.05, window="3min"))
    per_step = SPEED / 60.0
    assert np.count_nonzero(np.diff(units)) == 3
    assert -units[-1] == pytest.approx(sum(per_step / (S0 * math.exp(y[k])) for k in (6, 7, 8)), rel=1e-12)


def test_a_move_below_the_threshold_is_ignored():
    units, _ = series(calm(-0.02))
    assert np.all(units == 0.0)


def test_without_a_speed_limit_they_take_the_whole_position_at_once():
    units, y = series(calm(-0.05, speed=None, window="3min"))
    assert units[7] * S0 * math.exp(y[6]) == pytest.approx(-CAPITAL, rel=1e-12)
    # Later steps of the signal only re-size the position to the capital at the new (lower) price.
    np.testing.assert_allclose(units[8:10] * S0 * np.exp(y[7:9]), -CAPITAL, rtol=1e-12)
    assert np.all(units[10:] == units[9])  # the gap has left the 3-minute window: they hold


@pytest.mark.slow
@pytest.mark.parametrize("threshold", [0.02, 0.03])
def test_trend_followers_deepen_the_crash(threshold):
    """On common random numbers, adding trend followers makes the cascade deeper and liquidates more."""
    without = stresslab.simulate(GAP_SQUEEZE, paths=200, seed=4)
    with_them = stresslab.simulate({**GAP_SQUEEZE, "momentum": {"enabled": True, "capital": 1e8, "threshold": threshold,
                                                           "window": "10min", "speed": 6e8}}, paths=200, seed=4)
    assert float(with_them.momentum_traded.mean()) > 0 and float(without.momentum_traded.max()) == 0.0
    assert float(with_them.cascade_depth.mean()) > float(without.cascade_depth.mean()) * 1.05
    liquidated = (with_them.liquidated_long.mean() - without.liquidated_long.mean()) / without.liquidated_long.mean()
    assert float(liquidated) > 0.05
    # Path by path the crash is never shallower with them than without, up to rounding.
    assert bool((with_them.cascade_depth >= without.cascade_depth - 1e-12).all())
