"""Collateral haircuts (docs/model.md 7), and several venues linked by arbitrage (docs/model.md 8).
The mark/oracle price: tests/test_oracle_mark.py; collateral held in an asset with its own book (depeg):
tests/test_collateral_depeg.py."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest
from helpers import VENUE_DEPTH as DEPTH
from helpers import two_venues
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel import kernel_states

from stresslab.market import haircuts

YEAR = 365 * 86400.0


# ---------------------------------------------------------------------------------------- haircuts


TARGET = jax.jit(haircuts.target)


def hp(base=0.0, a=0.0, b=0.0, floor=0.0, cap=0.9, buffer=0.0, vol_ref=0.5, max_step=np.inf):
    return haircuts.HaircutParams(*(np.float64(x) for x in (base, a, b, floor, cap, buffer, vol_ref, max_step)))


def target(p, vol, depth_ratio) -> np.ndarray:
    """The haircut rule in float64 (scalars or arrays of vol and depth ratio)."""
    with jax.enable_x64(True):
        return np.asarray(TARGET(p, np.asarray(vol, np.float64), np.asarray(depth_ratio, np.float64)))


@pytest.mark.parametrize("vol,depth_ratio,expected", [
    (0.5, 1.0, 0.05 + 0.1 * 0.5 + 0.02),       # calm: the buffer binds (calm + buffer)
    (0.6, 1.0, 0.05 + 0.1 * 0.5 + 0.02),       # a small rise is absorbed by the buffer
    (1.0, 1.0, 0.05 + 0.1 * 1.0),              # past the buffer: the raw rule
    (1.0, 0.4, 0.05 + 0.1 * 1.0 + 0.2 * 0.6),  # depth shortfall 60 %
    (9.0, 0.0, 0.6),                            # capped
    (0.0, 1.5, 0.12),                           # depth above configured: no shortfall credit
])
def test_haircut_target_by_hand(vol, depth_ratio, expected):
    p = hp(base=0.05, a=0.1, b=0.2, floor=0.03, cap=0.6, buffer=0.02, vol_ref=0.5)
    assert target(p, vol, depth_ratio) == pytest.approx(expected, rel=1e-12)
    assert target(hp(base=0.0, floor=0.07), 0.0, 1.0) == pytest.approx(0.07)  # the floor


finite = st.floats(0.0, 5.0, allow_nan=False)
fraction = st.floats(0.0, 1.0, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(base=st.floats(0.0, 0.5), a=st.floats(0.0, 2.0), b=st.floats(0.0, 2.0), floor=st.floats(0.0, 0.5),
       cap=st.floats(0.0, 0.99), buffer=st.floats(0.0, 0.5), vol_ref=st.floats(0.0, 3.0),
       vol=finite, more_vol=finite, depth=st.floats(0.0, 2.0), less_depth=fraction)
def test_more_volatility_or_less_depth_never_lowers_the_haircut(base, a, b, floor, cap, buffer, vol_ref, vol,
                                                                 more_vol, depth, less_depth):
    floor = min(floor, cap)
    h, more, less, both = target(hp(base, a, b, floor, cap, buffer, vol_ref),
                                 [vol, vol + more_vol, vol, vol + more_vol],
                                 [depth, depth, depth * less_depth, depth * less_depth])
    assert floor - 1e-12 <= h <= cap + 1e-12
    assert more >= h - 1e-12 and less >= h - 1e-12 and both >= max(more, less) - 1e-12


def gap_vol(gap: float, dt: float, half_life: float) -> float:
    """Realised-vol estimate (per year) one step after a gap, from a zero variance: EWMA weight 1 - lambda."""
    weight = 1.0 - 2.0 ** (-dt / half_life)
    return math.sqrt(weight * math.log1p(gap) ** 2 / (dt / YEAR))


def haircut_market(gap: float = -0.05, base: float = 0.05, vol_sensitivity: float = 0.01, **haircut) -> dict:
    """sigma = 0 (zero variance before the gap), a gap in step 5; a 10x long (maintenance 0.5 %,
    liquidation price 90.45 without a haircut) on a deep book. One compiled kernel for every call."""
    return {"simulation": {"steps": 40, "dt": "1min", "record_points": 2},
            "market": {"sigma": 0.0, "shocks": [{"type": "gap", "at": "5min", "size": gap}]},
            "liquidity": {"depth": 1e10, "depletion": 0.0, "vol_half_life": "10min"},
            "haircuts": {"enabled": True, "base": base, "vol_sensitivity": vol_sensitivity, **haircut},
            "positions": [{"side": "long", "leverage": 10, "notional": 1e6}],
            "liquidation": {"adl": False, "insurance_fund": 1e6}}


@pytest.mark.slow
def test_max_change_limits_the_haircut_per_step():
    _, _, states = kernel_states(haircut_market(max_change=0.3))
    h = np.asarray([float(s.haircuts.haircut[0, 0]) for s in states])
    step_limit = 0.3 * 60 / 3600
    moves = np.diff(h)
    assert np.abs(moves).max() <= step_limit * (1 + 1e-12)
    np.testing.assert_allclose(moves[6:18], step_limit, rtol=1e-9)  # it binds on the way up ...
    assert h.max() < 0.05 + 0.01 * gap_vol(-0.05, 60.0, 600.0)   # ... and the peak is cut off
    free = np.asarray([float(s.haircuts.haircut[0, 0]) for s in kernel_states(haircut_market())[2]])
    # The haircut of a step comes from the volatility known at its start: the gap in step 5 shows in step 6.
    assert free[6] == pytest.approx(0.05)
    assert free[7] == pytest.approx(0.05 + 0.01 * gap_vol(-0.05, 60.0, 600.0), rel=1e-9)


@pytest.mark.slow
def test_max_haircut_and_haircut_ratio_outputs(run64):
    ds = run64(haircut_market()).isel(path=0)
    assert float(ds.liquidated_long) == 0.0
    peak = 0.05 + 0.01 * gap_vol(-0.05, 60.0, 600.0)
    assert float(ds.max_haircut) == pytest.approx(peak, rel=1e-9)
    assert float(ds.haircut_ratio) == pytest.approx(peak / 0.05, rel=1e-9)
    none = run64(haircut_market(base=0.0, vol_sensitivity=0.0)).isel(path=0)  # enabled, but never above 0
    assert float(none.max_haircut) == 0.0 and float(none.mean_haircut) == 0.0
    assert float(none.haircut_ratio) == 1.0  # a haircut that stayed at 0 is not procyclical (not 0 / 0)


@pytest.mark.slow
def test_a_higher_haircut_liquidates_earlier(run64):
    # A -9 % gap leaves the long at 91, above its liquidation price 90.45. Equity per unit at 91 with a
    # static haircut h: 10 (1 - h) - 9 against maintenance 0.455: it survives h = 0.05, not h = 0.06.
    for base, liquidated in ((0.0, False), (0.05, False), (0.06, True), (0.2, True)):
        ds = run64(haircut_market(gap=-0.09, base=base, vol_sensitivity=0.0)).isel(path=0)
        assert (float(ds.liquidated_long) > 0) == liquidated, base
        assert float(ds.max_haircut) == pytest.approx(base)


# ---------------------------------------------------------------------------------- venues, oracle


@pytest.mark.slow
def test_per_venue_outputs_carry_the_venue_names(run64):
    ds = run64(two_venues(False))
    assert list(ds.venue.values) == ["A", "B"]
    for name in ("venue_min_price", "venue_final_price", "venue_liquidated_long", "venue_insurance_fund",
                 "venue_halted_time", "venue_cascade_depth"):
        assert ds[name].dims == ("path", "venue"), name
    ds = ds.isel(path=0)
    assert float(ds.venue_insurance_fund.sel(venue="B")) == 5e8
    assert float(ds.venue_insurance_fund.sel(venue="A")) >= 1e9
    # Venue-less outputs are the first venue's (prices) and sums over venues (money).
    assert float(ds.min_price) == float(ds.venue_min_price.sel(venue="A"))
    assert float(ds.liquidated_long) == pytest.approx(float(ds.venue_liquidated_long.sum()))


@pytest.mark.slow
def test_contagion_across_venues_needs_arbitrage(run64):
    off = run64(two_venues(False)).isel(path=0)
    on = run64(two_venues(True)).isel(path=0)
    assert float(off.venue_min_price.sel(venue="B")) == 100.0
    assert float(off.venue_liquidated_long.sel(venue="B")) == 0.0
    assert float(off.venue_liquidated_long.sel(venue="A")) > 0
    # Arbitrage carries A's fall to B: B's price falls and its 60-90x longs are liquidated.
    assert float(on.venue_min_price.sel(venue="B")) < 99.0
    assert float(on.venue_liquidated_long.sel(venue="B")) > 0
    assert float(on.venue_final_price.sel(venue="A")) > float(off.venue_final_price.sel(venue="A"))


@pytest.mark.slow
def test_cross_venue_arbitrage_closes_the_gap_with_its_half_life_and_keeps_the_mean(run64):
    """Flat books, permanent impact: each step closes 1 - 2^(-dt / half_life) of every venue's gap to the
    depth-weighted mean, and the flows sum to zero, so the mean stays at -0.01 Q / (depth_A + depth_B)."""
    ds = run64(two_venues(True, positions=False)).isel(path=0)
    assert float(ds.liquidated_long) == 0.0
    mean = -0.01 * 5 * DEPTH / (4 * DEPTH)
    decay = 2.0 ** (-59 / 5)  # 59 steps of arbitrage after the program's step
    y_a = math.log(float(ds.venue_final_price.sel(venue="A")) / 100.0)
    y_b = math.log(float(ds.venue_final_price.sel(venue="B")) / 100.0)
    assert y_a == pytest.approx(mean + (-0.05 - mean) * decay, rel=1e-10)
    assert y_b == pytest.approx(mean + (0.0 - mean) * decay, rel=1e-10)


@pytest.mark.slow
def test_arbitrage_capacity_limits_the_flow_per_step(run64):
    # 1e7 per hour: at most 1e7 / 60 per 1-minute step and venue. The wanted flows (equal and opposite,
    # ~4.8e6 at first) exceed it on every one of the 59 steps, so A climbs back by exactly that much.
    ds = run64(two_venues(True, positions=False, capacity=1e7)).isel(path=0)
    per_step = 0.01 * (1e7 / 60) / DEPTH
    y_a = math.log(float(ds.venue_final_price.sel(venue="A")) / 100.0)
    y_b = math.log(float(ds.venue_final_price.sel(venue="B")) / 100.0)
    assert y_a == pytest.approx(-0.05 + 59 * per_step, rel=1e-9)
    assert y_b == pytest.approx(-59 * per_step * DEPTH / (3 * DEPTH), rel=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("half_life", [120.0, 600.0])
def test_basis_arbitrage_pulls_the_perp_back_to_spot_with_its_half_life(run64, half_life):
    # One venue: a one-step sale puts the perp 5 % under spot; each later step closes 1 - 2^(-dt / half_life)
    # of the log gap (flat book, permanent impact, unlimited capital).
    ds = run64({"simulation": {"steps": 30, "dt": "1min", "record_points": 2},
                "market": {"sigma": 0.0, "shocks": [
                    {"type": "sell_program", "start": "0s", "notional": 5 * DEPTH, "duration": "1min"}]},
                "liquidity": {"depth": DEPTH, "permanent_fraction": 1.0, "depletion": 0.0},
                "arbitrage": {"enabled": True, "reference": "spot", "half_life": half_life}}).isel(path=0)
    expected = -0.05 * 2.0 ** (-29 * 60.0 / half_life)
    assert math.log(float(ds.final_price) / 100.0) == pytest.approx(expected, rel=1e-10)
    assert float(ds.min_basis) == pytest.approx(math.expm1(-0.05), rel=1e-12)
