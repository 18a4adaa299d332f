"""Circuit breakers (docs/model.md 6; docs/validation.md oracle 7): levels fire on the first step at or beyond
them, once each, for their halt length; nothing trades in a halt while the fundamental moves; the queue
executes at reopening (post-halt gap = queued flow over depth); price bands; volatility-scaled levels.
Statistical oracles (drawdown and fixed-reference breakers): tests/test_breaker_oracles.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import run64
from scipy.optimize import brentq

import stresslab

pytestmark = pytest.mark.slow  # each test compiles and runs a market kernel

DEPTH = 1e7
MINUTE = 60.0


def levels_run(gaps: list[tuple[str, float]], steps: int = 90) -> tuple[np.ndarray, float, int]:
    gaps = gaps + [("85min", 0.0)] * (3 - len(gaps))  # same shapes: one compiled kernel for every call
    ds = run64({"simulation": {"steps": steps, "dt": "1min", "record_points": steps, "keep_paths": 1},
                "market": {"sigma": 0.0, "shocks": [{"type": "gap", "at": at, "size": size} for at, size in gaps]},
                "liquidity": {"enabled": False},
                "breakers": {"enabled": True, "levels": [{"drop": 0.05, "halt": "10min"},
                                                         {"drop": 0.10, "halt": "20min"}]}}).isel(path=0)
    return ds.sample_price.isel(sample=0).values, float(ds.halted_time), int(ds.halt_count)


def test_levels_fire_once_each_and_freeze_the_price_while_the_fundamental_moves():
    # -5 % at 10 min (exactly at level 1), -2 % at 15 min inside the halt, -4 % at 60 min (below level 2).
    price, halted, count = levels_run([("10min", -0.05), ("15min", -0.02), ("60min", -0.04)])
    np.testing.assert_allclose(price[:11], 100.0, rtol=1e-13)
    # Level 1 fires at the end of step 10; steps 11..20 are halted: the traded price stays at 95 ...
    np.testing.assert_allclose(price[11:22], 95.0, rtol=1e-13)
    # ... although the fundamental fell 2 % in step 15: the first step after the halt trades at 93.1.
    np.testing.assert_allclose(price[22:61], 95.0 * 0.98, rtol=1e-13)
    # Still below level 1 after the halt: it does not fire again. Level 2 fires at 60 min for 20 min.
    np.testing.assert_allclose(price[61:], 95.0 * 0.98 * 0.96, rtol=1e-13)
    assert count == 2
    assert halted == pytest.approx(30 * MINUTE)


@pytest.mark.parametrize("size,fires", [(-0.0499, False), (-0.05, True), (-0.07, True)])
def test_a_level_fires_at_or_below_its_threshold_only(size, fires):
    _, halted, count = levels_run([("10min", size)])
    assert count == int(fires)
    assert halted == (10 * MINUTE if fires else 0.0)


def test_two_levels_crossed_in_one_step_make_one_halt_of_the_longer_length():
    _, halted, count = levels_run([("10min", -0.12)])
    assert count == 1 and halted == pytest.approx(20 * MINUTE)


def halt_market(shocks: list[dict], **extra) -> dict:
    """sigma = 0, flat book, permanent impact, no depth consumption; a -6 % gap at 10 min fires the 5 %
    level, which halts steps 11..20; step 21 is the first to trade again."""
    return {"simulation": {"steps": 40, "dt": "1min", "record_points": 40, "keep_paths": 1},
            "market": {"sigma": 0.0, "shocks": [{"type": "gap", "at": "10min", "size": -0.06}, *shocks]},
            "liquidity": {"depth": DEPTH, "permanent_fraction": 1.0, "depletion": 0.0},
            "breakers": {"enabled": True, "levels": [{"drop": 0.05, "halt": "10min"}]}, **extra}


@pytest.mark.parametrize("ratio", [0.5, 2.0])
def test_post_halt_gap_is_the_queued_program_over_depth(ratio):
    """docs/validation.md 7: a program due inside the halt waits and executes at reopening."""
    program = {"type": "sell_program", "start": "15min", "notional": ratio * DEPTH, "duration": "1min"}
    ds = run64(halt_market([program])).isel(path=0)
    price = ds.sample_price.isel(sample=0).values
    np.testing.assert_allclose(price[11:22], 94.0, rtol=1e-13)  # nothing traded in the halt
    assert math.log(price[22] / price[21]) == pytest.approx(-0.01 * ratio, rel=1e-12)
    np.testing.assert_allclose(price[22:], price[22], rtol=1e-13)
    assert int(ds.halt_count) == 1 and float(ds.halted_time) == pytest.approx(10 * MINUTE)


def test_a_program_running_through_a_halt_executes_its_backlog_at_reopening():
    """docs/model.md 6 / schema Breakers: "liquidations, hedges and programs queue ... on reopening the queue
    executes at once". A program selling q per step from 5 min to 25 min: the 10 halted steps' q queue
    and go out with step 21's own q, a post-halt gap of 11 q over depth; the programme is then done
    at its scheduled end (25 min) and the total move is the whole programme over depth."""
    q = 0.1 * DEPTH
    program = {"type": "sell_program", "start": "5min", "notional": 20 * q, "duration": "20min"}
    ds = run64(halt_market([program])).isel(path=0)
    logp = np.log(ds.sample_price.isel(sample=0).values / 100.0)
    moves = np.diff(logp)
    np.testing.assert_allclose(moves[5:10], -0.01 * q / DEPTH, rtol=1e-9)  # steps 5..9
    np.testing.assert_allclose(moves[11:21], 0.0, atol=1e-15)  # halted
    assert moves[21] == pytest.approx(-0.01 * 11 * q / DEPTH, rel=1e-9), moves[21:30]
    assert logp[25] == pytest.approx(math.log(0.94) - 0.01 * 20 * q / DEPTH, rel=1e-9)


def test_post_halt_gap_from_liquidations_queued_in_the_halt():
    """Marked to spot, a long whose liquidation price (about 93) lies between the halted price (94) and
    the fundamental after a -2 % gap inside the halt (92.12) is triggered during the halt; its order
    waits and executes at reopening: the gap is the fundamental's move plus the liquidation's impact."""
    units = 5e4
    raw = halt_market([{"type": "gap", "at": "15min", "size": -0.02}], oracle={"mark": "spot"},
                      positions=[{"side": "long", "leverage": 13.4, "notional": units * 100.0}],
                      liquidation={"adl": False, "insurance_fund": 1e9})
    ds = run64(raw).isel(path=0)
    price = ds.sample_price.isel(sample=0).values
    liquidated = ds.liquidation_quantiles.sel(level=0.5).values  # notional per step
    np.testing.assert_allclose(price[11:22], 94.0, rtol=1e-13)
    np.testing.assert_array_equal(liquidated[:22], 0.0)  # nothing executes before reopening
    # Reopening: y = y_base + x with x = -0.01 units fill / depth, fill = s0 exp(y_base + x / 2).
    y_base = math.log(0.94 * 0.98)
    x = brentq(lambda x: x + 0.01 * units * 100.0 * math.exp(y_base + x / 2) / DEPTH, -1.0, 0.0, xtol=1e-15)
    assert math.log(price[22] / 100.0) == pytest.approx(y_base + x, rel=1e-12)
    fill = 100.0 * math.exp(y_base + x / 2)
    assert liquidated[22] == pytest.approx(units * fill, rel=1e-10)
    assert float(ds.liquidated_long) == pytest.approx(units * fill, rel=1e-10)
    np.testing.assert_array_equal(liquidated[23:], 0.0)
    assert float(ds.min_price) == pytest.approx(price[22], rel=1e-13)


def test_price_band_trades_to_the_edge_then_pauses_then_the_rest_executes():
    # A one-step program worth a 3 % move against a 2 % band with a 5-minute pause.
    raw = {"simulation": {"steps": 30, "dt": "1min", "record_points": 30, "keep_paths": 1},
           "market": {"sigma": 0.0, "shocks": [
               {"type": "sell_program", "start": "10min", "notional": 3 * DEPTH, "duration": "1min"}]},
           "liquidity": {"depth": DEPTH, "permanent_fraction": 1.0, "depletion": 0.0},
           "breakers": {"enabled": True, "band": 0.02, "band_pause": "5min"}}
    ds = run64(raw).isel(path=0)
    price = ds.sample_price.isel(sample=0).values
    np.testing.assert_allclose(price[:11], 100.0, rtol=1e-13)
    np.testing.assert_allclose(price[11:17], 98.0, rtol=1e-12)  # the edge, then steps 11..15 paused
    np.testing.assert_allclose(price[17:], 100.0 * math.exp(-0.03), rtol=1e-12)  # the rest at step 16
    assert int(ds.halt_count) == 1
    assert float(ds.halted_time) == pytest.approx(5 * MINUTE)


def test_volatility_scaled_threshold_widens_after_a_volatile_step():
    """vol_scaling = 1: the drop is multiplied by realised vol / sigma at the step's end. A -3 % gap
    lifts the 1-minute EWMA estimate from 0.5 to about 5.6 per year, so a 2 % level needs about 22 %
    and does not fire; with fixed thresholds it fires on every path."""
    ds = stresslab.simulate({"simulation": {"dtype": "float64", "steps": 30, "dt": "1min", "record_points": 1},
                             "market": {"sigma": 0.5, "shocks": [{"type": "gap", "at": "10min", "size": -0.03}]},
                             "liquidity": {"depth": DEPTH, "vol_half_life": "10min"},
                             "breakers": {"enabled": True, "vol_scaling": [0.0, 1.0],
                                          "levels": [{"drop": 0.02, "halt": "5min"}]}}, paths=50, seed=2)
    fixed, scaled = ds.halt_count.isel(scenario=0), ds.halt_count.isel(scenario=1)
    assert (fixed == 1).all()
    assert (scaled == 0).all()
