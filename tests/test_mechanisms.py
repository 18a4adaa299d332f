"""Each mechanism alone, against what it must do: jumps, spikes, gaps, sell programs, depth,
withdrawal, and the liquidation engine's order-size cap and price collar."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import run64, within

pytestmark = pytest.mark.slow  # each test compiles and runs a market kernel

PATHS = 8
"""Paths of the deterministic runs (sigma 0: every path is the same)."""


@pytest.mark.parametrize("intensity,mean,std", [(2000.0, -0.01, 0.01), (500.0, 0.0, 0.03)])
def test_merton_jumps_add_their_variance(intensity, mean, std):
    sigma = 0.5
    ds = run64({"simulation": {"horizon": "2d", "dt": "5min", "record_points": 2},
                "market": {"sigma": sigma, "jumps": {"intensity": intensity, "mean": mean, "std": std}},
                "liquidity": {"enabled": False}}, paths=4000, seed=1)
    rv2 = ds.realized_vol.values**2
    expected = sigma**2 + intensity * (mean**2 + std**2)
    assert within(rv2.mean(), expected, rv2.std(ddof=1) / math.sqrt(rv2.size), bias=0.01 * expected)


@pytest.mark.parametrize("multiplier,share", [(3.0, 0.25), (0.5, 0.5)])
def test_volatility_spike_scales_variance_in_its_window(multiplier, share):
    sigma = 0.6
    ds = run64({"simulation": {"horizon": "1d", "dt": "1min", "record_points": 2},
                "market": {"sigma": sigma, "shocks": [{"type": "vol_spike", "start": "2h",
                                                       "duration": 86400 * share, "multiplier": multiplier}]},
                "liquidity": {"enabled": False}}, paths=2000, seed=2)
    rv2 = ds.realized_vol.values**2
    expected = sigma**2 * (1 + (multiplier**2 - 1) * share)
    assert within(rv2.mean(), expected, rv2.std(ddof=1) / math.sqrt(rv2.size), bias=0.005 * expected)


def test_gap_moves_price_by_its_size_in_its_step():
    ds = run64({"simulation": {"horizon": "2h", "dt": "1min", "record_points": 120, "keep_paths": 1},
                "market": {"sigma": 0.0, "price": 40.0, "shocks": [{"type": "gap", "at": "30min", "size": -0.07}]},
                "liquidity": {"enabled": False}}, paths=PATHS)
    price = ds.sample_price.isel(sample=0)
    minutes = ds.time.values / np.timedelta64(1, "m")
    np.testing.assert_allclose(price.values[minutes <= 30], 40.0, rtol=1e-12)
    np.testing.assert_allclose(price.values[minutes >= 31], 40.0 * 0.93, rtol=1e-12)


def participation_run(enabled: bool):
    return run64({"simulation": {"horizon": "1h", "dt": "10s", "record_points": 360, "keep_paths": 1},
                  "market": {"sigma": 0.0, "daily_volume": 2.88e11, "shocks": [
                      {"type": "sell_program", "start": "5min", "notional": 6e8, "participation": 0.09}]},
                  "liquidity": {"enabled": enabled, "depth": 5e8, "permanent_fraction": 1.0, "depletion": 0.0}},
                 paths=PATHS)


def test_sell_program_at_participation_rate_executes_its_notional_at_that_pace():
    ds = participation_run(True)
    per_step = 0.09 * 2.88e11 * 10 / 86400  # 3 million per 10 s step
    steps = math.ceil(6e8 / per_step)
    logp = np.log(ds.sample_price.isel(sample=0).values / 100.0)
    start = 30  # 5 min / 10 s
    np.testing.assert_allclose(logp[start + 1], -0.01 * per_step / 5e8, rtol=1e-9)
    np.testing.assert_allclose(logp[start + steps:], -0.01 * 6e8 / 5e8, rtol=1e-9)
    assert logp[start + steps - 1] > -0.01 * 6e8 / 5e8


def test_no_liquidity_means_no_impact():
    ds = participation_run(False)
    np.testing.assert_array_equal(ds.sample_price.values, 100.0)


@pytest.mark.parametrize("withdrawal", [0.0, 0.5, 2.0])
def test_makers_withdraw_depth_as_volatility_rises(withdrawal):
    ds = run64({"simulation": {"horizon": "4h", "dt": "1min", "record_points": 4},
                "market": {"sigma": 0.5, "shocks": [{"type": "vol_spike", "start": "1h", "duration": "2h",
                                                     "multiplier": 4.0}]},
                "liquidity": {"depth": 1e9, "depletion": 0.0, "withdrawal": withdrawal, "vol_half_life": "10min"}},
               paths=200)
    ratio = float(ds.min_depth_ratio.median())
    if withdrawal == 0:
        assert ratio == 1.0
    else:
        # Realised vol about 4 sigma: depth about (1/4)**withdrawal at the bottom.
        assert 0.5 * 0.25**withdrawal < ratio < 2.0 * 0.25**withdrawal


def cascade(max_order=None, collar=None):
    liquidation = {"insurance_fund": 1e9, "adl": False}
    if max_order:
        liquidation["max_order"] = max_order
    if collar:
        liquidation["price_collar"] = collar
    return run64({"simulation": {"horizon": "1h", "dt": "10s", "record_points": 360, "keep_paths": 1},
                  "market": {"sigma": 0.0, "shocks": [{"type": "gap", "at": "1min", "size": -0.03}]},
                  "liquidity": {"depth": 2e7, "permanent_fraction": 1.0, "depletion": 0.0},
                  "position_grids": [{"side": "long", "notional": 4e8, "leverage_min": 10, "leverage_max": 40,
                                      "cohorts": 12}],
                  "liquidation": liquidation}, paths=PATHS)


def test_unchunked_cascade_completes_within_one_step():
    ds = cascade()
    volume = ds.liquidation_quantiles.sel(level=0.5).values
    assert np.count_nonzero(volume) == 1 and volume.sum() > 1e8


@pytest.mark.parametrize("max_order", [5e6, 2e7])
def test_liquidation_engine_caps_order_size_per_step(max_order):
    free, capped = cascade(), cascade(max_order=max_order)
    volume = capped.liquidation_quantiles.sel(level=0.5).values
    assert volume.max() <= max_order * (1 + 1e-9)
    assert np.count_nonzero(volume) > 3
    assert capped.cascade_depth.values[0] < free.cascade_depth.values[0]


@pytest.mark.parametrize("collar", [0.002, 0.01])
def test_price_collar_bounds_the_move_liquidations_cause_per_step(collar):
    ds = cascade(collar=collar)
    logp = np.log(ds.sample_price.isel(sample=0).values)
    moves = -np.diff(logp)
    gap_step = 6
    after = np.delete(moves, gap_step)
    assert after.max() <= collar * (1 + 1e-9)
    assert after.max() >= 0.5 * collar  # the collar binds


@pytest.mark.parametrize("half_life", [60.0, 300.0])
def test_time_to_trough_and_recovery_of_a_transient_block(half_life):
    """A block sell at 10 min on a fully transient book: the trough is the block's step, and half
    of the fall is regained one recovery half-life later (to the step)."""
    ds = run64({"simulation": {"horizon": "1h", "dt": "10s", "record_points": 2},
                "market": {"sigma": 0.0, "shocks": [{"type": "sell_program", "start": "10min", "notional": 4e7,
                                                     "duration": "10s"}]},
                "liquidity": {"depth": 2e7, "permanent_fraction": 0.0, "recovery_half_life": half_life,
                              "depletion": 0.0}}, paths=PATHS)
    assert ds.time_to_trough.values[0] == 610.0  # end of the step that starts at 600 s
    assert ds.recovery_time.values[0] == pytest.approx(half_life, abs=1e-6)
    flat = run64({"simulation": {"horizon": "1h", "dt": "10s", "record_points": 2}, "market": {"sigma": 0.0}},
                 paths=PATHS)
    assert np.isnan(flat.time_to_trough.values[0]) and np.isnan(flat.recovery_time.values[0])
