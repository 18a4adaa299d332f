"""Dip buyers (market/dip_buyers.py): their rule, step by step, and their effect on a crash."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import GAP_SQUEEZE
from kernel import kernel_states

import stresslab
from stresslab.market.rules import DEFAULT_TEMPERATURE

S0 = 100.0
DEPTH = 1e7
CAPITAL = 4e6
SPEED = 6e7
"""Notional per hour: 1e6 per one-minute step."""


def calm(gap: float, threshold: float = 0.05, speed: float | None = SPEED, rebound: float = 0.0) -> dict:
    """No randomness, no cohorts: a gap of ``gap`` in step 5 (and of ``rebound`` in step 7), dip buyers."""
    dip = {"enabled": True, "capital": CAPITAL, "threshold": threshold}
    if speed is not None:
        dip["speed"] = speed
    shocks = [{"type": "gap", "at": "5min", "size": gap}]
    if rebound:
        shocks.append({"type": "gap", "at": "7min", "size": rebound})
    return {
        "simulation": {"steps": 20, "dt": "1min"},
        "market": {"price": S0, "sigma": 0.0, "shocks": shocks},
        "liquidity": {"depth": DEPTH, "permanent_fraction": 1.0, "depletion": 0.0},
        "dip_buyers": dip,
    }


def series(raw: dict, smooth: bool = False):
    _, _, states = kernel_states(raw, smooth=smooth)
    units = np.asarray([float(s.dip_buyers.units[0, 0]) for s in states])
    bought = np.asarray([float(s.dip_buyers.bought[0, 0]) for s in states])
    y = np.asarray([float(s.price.y[0, 0]) for s in states])
    return units, bought, y


@pytest.mark.parametrize("gap, threshold", [(-0.08, 0.05), (-0.12, 0.10)])
def test_they_buy_at_their_speed_after_the_drawdown_passes_the_threshold(gap, threshold):
    units, bought, y = series(calm(gap, threshold))
    # The gap happens in step 5 (states[6] is after it); they see it at the start of step 6 and buy then.
    assert np.all(units[:7] == 0.0)
    per_step = SPEED / 60.0
    assert bought[7] == pytest.approx(per_step, rel=1e-12)
    assert units[7] == pytest.approx(per_step / (S0 * math.exp(y[6])), rel=1e-12)
    # Their order lifts the price by 0.01 x notional / depth (linear, permanent impact).
    assert y[7] - y[6] == pytest.approx(0.01 * per_step / DEPTH, rel=1e-9)
    # Four steps at the speed limit spend the budget; then they hold.
    np.testing.assert_allclose(np.diff(bought[6:11]), per_step, rtol=1e-12)
    assert bought[-1] == pytest.approx(CAPITAL, rel=1e-12)
    assert np.all(units[10:] == units[10]) and np.all(np.diff(units) >= 0.0)


def test_a_rebound_does_not_stop_them():
    """Once they decided to buy they spend their budget even after the price came back above the threshold."""
    units, bought, y = series(calm(-0.08, rebound=0.08))
    assert y[8] - y[6] > 0.07  # the rebound of step 7
    assert bought[-1] == pytest.approx(CAPITAL, rel=1e-12)


def test_a_fall_short_of_the_threshold_is_ignored():
    units, bought, _ = series(calm(-0.04))
    assert np.all(units == 0.0) and np.all(bought == 0.0)


def test_without_a_speed_limit_they_buy_the_whole_budget_at_once():
    units, bought, y = series(calm(-0.08, speed=None))
    assert bought[7] == pytest.approx(CAPITAL, rel=1e-12)
    assert np.all(bought[7:] == bought[7]) and np.all(units[7:] == units[7])


@pytest.mark.parametrize("threshold", [0.05, 0.10])
def test_the_relaxed_signal_spends_its_share_of_the_budget_once(threshold):
    """Smooth rules: in a calm market (no fall at all) the sigmoid's share s = sigmoid(log(1 - threshold) / T)
    of the budget is spent in the first step and no more, step after step, so the leak stays s x capital; and
    after a fall well beyond the threshold the whole budget is spent, as with the hard rule."""
    share = 1.0 / (1.0 + math.exp(-math.log1p(-threshold) / DEFAULT_TEMPERATURE))
    _, bought, _ = series(calm(0.0, threshold, speed=None), smooth=True)
    np.testing.assert_allclose(bought[1:], share * CAPITAL, rtol=1e-9)
    assert share < 0.01
    _, bought, _ = series(calm(-0.25, threshold, speed=None), smooth=True)
    assert bought[-1] == pytest.approx(CAPITAL, rel=1e-6)


def test_an_unknown_venue_is_refused_by_name():
    raw = calm(-0.08)
    raw["venues"] = [{"name": "a"}, {"name": "b"}]
    raw["dip_buyers"]["venue"] = "c"
    with pytest.raises(stresslab.ConfigError, match=r"dip_buyers.venue: unknown venue 'c'; allowed: \['a', 'b'\]"):
        stresslab.load_config(raw)


@pytest.mark.slow
@pytest.mark.parametrize("threshold, capital", [(0.03, 1e8), (0.05, 5e7)])
def test_dip_buyers_turn_the_crash(threshold, capital):
    """On common random numbers: the gap's cascade completes inside its step, so dip buyers cannot make it
    shallower, but they never make it deeper, they turn the price (half the fall regained far sooner) and
    the day ends higher where they bought. (The 6 May 2010 scenario shows them stopping a gradual fall:
    tests/test_historical.py.)"""
    without = stresslab.simulate(GAP_SQUEEZE, paths=200, seed=4)
    with_them = stresslab.simulate({**GAP_SQUEEZE, "dip_buyers": {"enabled": True, "capital": capital,
                                                             "threshold": threshold, "speed": 12 * capital}},
                                   paths=200, seed=4)
    assert float(without.dip_bought.max()) == 0.0
    fired = with_them.dip_bought > 0
    assert float(fired.mean()) > 0.9
    np.testing.assert_allclose(with_them.dip_bought.where(fired, drop=True), capital, rtol=1e-9)
    assert bool((with_them.cascade_depth <= without.cascade_depth + 1e-12).all())
    assert float(with_them.liquidated_long.mean()) <= float(without.liquidated_long.mean())
    assert float(with_them.recovery_time.median()) < float(without.recovery_time.median()) / 3
    assert bool((with_them.final_price >= without.final_price).where(fired, True).all())
