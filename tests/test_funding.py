"""Perpetual funding (docs/model.md 5, docs/validation.md 7 and 8): the exchange rate formula, caps, presets,
zero-sum payments, exact payments in a deterministic market, and funding moving liquidation. The
accounting identity with funding on: tests/test_accounting_funding.py."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import stresslab
from stresslab.market import funding
from stresslab.market.model import build

INTEREST_8H = 0.0001
"""0.01 % per 8 hours: the documented BitMEX/Binance interest component."""
DEPTH = 1e7


def funding_params(section: dict, **extra) -> funding.FundingParams:
    config = stresslab.load_config({"simulation": {"dtype": "float64", "horizon": "8h", "dt": "1h"},
                                    "funding": section, **extra}).scenarios[0]
    with jax.enable_x64(True):
        params, _ = build(config)
    return params.funding


def rate(p: funding.FundingParams, premium: float) -> float:
    with jax.enable_x64(True):
        return float(funding.rate(p, jnp.asarray(premium, jnp.float64)))


def test_preset_8h_is_the_documented_convention():
    p = funding_params({"enabled": True, "preset": "8h"})
    # Interest is configured per year (0.01 % x 3 x 365) and applied per 8-hour rate interval.
    assert float(p.interest) == pytest.approx(INTEREST_8H, rel=1e-12)
    assert float(p.clamp) == pytest.approx(0.0005, rel=1e-12)
    assert float(p.scale) == 1.0
    assert math.isinf(float(p.cap))


@pytest.mark.parametrize("premium,expected", [
    (0.0003, 0.0001),    # 0.0003 + clamp(0.0001 - 0.0003) = 0.0003 - 0.0002
    (0.001, 0.0005),     # I - P = -0.0009 clamped to -0.0005
    (-0.001, -0.0005),   # I - P = +0.0011 clamped to +0.0005
    (0.00005, 0.0001),   # |I - P| inside the clamp: the interest rate dominates
    (0.0, 0.0001),
    (-0.0003, 0.0001),   # perp below spot, yet longs still pay: I - P = 0.0004 < clamp
    (0.01, 0.0095),
])
def test_rate_formula_exchange_examples(premium, expected):
    p = funding_params({"enabled": True, "preset": "8h"})
    assert rate(p, premium) == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_interest_per_year_converts_to_the_rate_interval():
    # 10.95 %/yr over a 1 h rate interval: 0.1095 / (365 x 24).
    p = funding_params({"enabled": True, "interval": "1h", "interest": 0.1095, "clamp": 0.01})
    assert float(p.interest) == pytest.approx(0.1095 / (365 * 24), rel=1e-12)
    assert rate(p, 0.0) == pytest.approx(0.1095 / (365 * 24), rel=1e-12)


def test_absolute_cap_clips_both_signs():
    p = funding_params({"enabled": True, "preset": "8h", "cap": 0.0003})
    assert rate(p, 0.001) == pytest.approx(0.0003, rel=1e-12)
    assert rate(p, -0.001) == pytest.approx(-0.0003, rel=1e-12)
    assert rate(p, 0.0003) == pytest.approx(0.0001, rel=1e-9)  # inside the cap: untouched


def test_cap_as_a_multiple_of_the_lowest_maintenance_rate():
    positions = {"positions": [
        {"side": "long", "leverage": 10, "notional": 1e6, "maintenance_margin": 0.005},
        {"side": "short", "leverage": 10, "notional": 1e6, "maintenance_margin": 0.004}]}
    p = funding_params({"enabled": True, "preset": "8h", "cap_maintenance": 0.75}, **positions)
    assert float(p.cap) == pytest.approx(0.75 * 0.004, rel=1e-12)
    assert rate(p, 0.01) == pytest.approx(0.003, rel=1e-12)
    assert rate(p, -0.01) == pytest.approx(-0.003, rel=1e-12)
    tiered = {"margin": {"tiers": [{"notional": 5e4, "rate": 0.002}, {"notional": 1e9, "rate": 0.01}]},
              "positions": [{"side": "long", "leverage": 10, "notional": 1e6, "maintenance_margin": "tiered"},
                            {"side": "short", "leverage": 10, "notional": 1e6, "maintenance_margin": 0.004}]}
    p = funding_params({"enabled": True, "preset": "8h", "cap_maintenance": 0.75}, **tiered)
    assert float(p.cap) == pytest.approx(0.75 * 0.002, rel=1e-12)


def test_hourly_preset_pays_an_eighth_of_the_8h_rate_capped_at_4_percent():
    p = funding_params({"enabled": True, "preset": "hourly"})
    eight = funding_params({"enabled": True, "preset": "8h"})
    assert float(p.scale) == pytest.approx(1 / 8, rel=1e-12)
    assert float(p.cap) == pytest.approx(0.04, rel=1e-12)
    for premium in (-0.01, -0.001, -0.0003, 0.0, 0.0003, 0.001, 0.05):
        assert rate(p, premium) == pytest.approx(rate(eight, premium) / 8, rel=1e-12, abs=1e-18)
    # A 50 % premium: 8-hour rate 0.4995, an eighth is 6.24 % per hour, capped at 4 %.
    assert rate(p, 0.5) == pytest.approx(0.04, rel=1e-12)
    assert rate(p, -0.5) == pytest.approx(-0.04, rel=1e-12)


def basis_market(premium: float, preset: str = "8h", horizon: str = "20h", start: str = "0s") -> dict:
    """sigma = 0; a one-step program on the perp with permanent impact and no arbitrage leaves the perp
    at exactly (1 + premium) x spot for the rest of the run; equal long and short open interest."""
    notional = -math.log1p(premium) / 0.01 * DEPTH  # sell (> 0) for a negative premium
    return {"simulation": {"horizon": horizon, "dt": "1h", "record_points": 2},
            "market": {"sigma": 0.0, "price": 100.0, "shocks": [
                {"type": "sell_program", "start": start, "notional": notional, "duration": "1h"}]},
            "liquidity": {"depth": DEPTH, "permanent_fraction": 1.0, "depletion": 0.0},
            "funding": {"enabled": True, "preset": preset},
            "positions": [{"side": "long", "leverage": 5, "notional": 1e6},
                          {"side": "short", "leverage": 5, "notional": 1e6}],
            "liquidation": {"adl": False}}


@pytest.mark.slow
@pytest.mark.parametrize("premium,expected_rate", [(-0.001, -0.0005), (0.001, 0.0005), (-0.0003, 0.0001)])
def test_payment_by_hand_in_a_deterministic_market(run64, premium, expected_rate):
    ds = run64(basis_market(premium)).isel(path=0)
    mark = 100.0 * (1 + premium)
    assert float(ds.final_price) == pytest.approx(mark, rel=1e-12)
    assert float(ds.min_basis) == pytest.approx(min(premium, 0.0), rel=1e-9, abs=1e-15)
    units = 1e6 / 100.0
    payments = 2  # a 20 h run pays at the end of hours 8 and 16 only
    # Positive rate: longs pay; each unit pays rate x mark price per payment.
    expected_long = -payments * units * expected_rate * mark
    assert float(ds.funding_long) == pytest.approx(expected_long, rel=1e-9)
    assert float(ds.funding_short) == pytest.approx(-expected_long, rel=1e-9)
    assert float(ds.min_funding_rate) == pytest.approx(min(expected_rate, 0.0), rel=1e-9, abs=1e-18)
    assert float(ds.max_funding_rate) == pytest.approx(max(expected_rate, 0.0), rel=1e-9, abs=1e-18)


@pytest.mark.slow
def test_premium_is_averaged_over_the_steps_of_the_interval(run64):
    # The perp falls to -0.2 % at hour 4: the first interval averages 4 steps at 0 and 4 at -0.2 %
    # (P = -0.1 %, F = -0.05 %); the second is at -0.2 % throughout (F = -0.15 %).
    ds = run64(basis_market(-0.002, start="4h")).isel(path=0)
    mark = 100.0 * (1 - 0.002)
    assert float(ds.funding_long) == pytest.approx(1e4 * (0.0005 + 0.0015) * mark, rel=1e-9)
    assert float(ds.min_funding_rate) == pytest.approx(-0.0015, rel=1e-9)


@pytest.mark.slow
def test_perp_below_spot_pays_longs_and_hourly_pays_an_eighth_every_hour(run64):
    eight = run64(basis_market(-0.002, "8h")).isel(path=0)
    hourly = run64(basis_market(-0.002, "hourly")).isel(path=0)
    rate_8h = -0.002 + 0.0005
    assert float(eight.funding_long) > 0 > float(eight.funding_short)
    assert float(eight.min_funding_rate) == pytest.approx(rate_8h, rel=1e-9)
    assert float(hourly.min_funding_rate) == pytest.approx(rate_8h / 8, rel=1e-9)
    # 20 hourly payments of an eighth of the 8-hour rate against 2 payments of the 8-hour rate.
    per_payment = 1e4 * -rate_8h * 100.0 * (1 - 0.002)
    assert float(eight.funding_long) == pytest.approx(2 * per_payment, rel=1e-9)
    assert float(hourly.funding_long) == pytest.approx(20 * per_payment / 8, rel=1e-9)


@pytest.mark.slow
def test_funding_is_zero_sum_between_equal_long_and_short_interest(run64):
    raw = {"simulation": {"horizon": "2d", "dt": "5min", "record_points": 2},
           "market": {"sigma": 1.0, "jumps": {"intensity": 100, "mean": -0.01, "std": 0.02}, "shocks": [
               {"type": "sell_program", "start": "6h", "notional": 2e6, "duration": "1h"},
               {"type": "sell_program", "start": "30h", "notional": -4e6, "duration": "1h"}]},
           "liquidity": {"depth": 2e6, "permanent_fraction": 0.5},
           "arbitrage": {"enabled": True, "half_life": "2h", "capacity": 1e6},
           "funding": {"enabled": True, "preset": "hourly"},
           "positions": [{"side": "long", "leverage": 1.5, "notional": 1e6, "maintenance_margin": 0.0},
                         {"side": "short", "leverage": 1.5, "notional": 1e6, "maintenance_margin": 0.0}],
           "liquidation": {"adl": False}}
    ds = run64(raw, paths=200, seed=3)
    assert (ds.liquidated_long + ds.liquidated_short == 0).all()
    scale = np.abs(ds.funding_long).max()
    assert scale > 0
    np.testing.assert_allclose(ds.funding_long, -ds.funding_short, rtol=0, atol=1e-9 * float(scale))
    assert (ds.min_funding_rate < 0).any() and (ds.max_funding_rate > 0).any()


def knife_edge(funding_on: bool) -> dict:
    """No impact (price exactly 100): a 10x long with maintenance 9.7 % has equity 10 vs 9.7 per unit;
    funding at I = 0.5 % per 8 h takes 0.5 per unit at the 8 h payment and liquidates it."""
    return {"simulation": {"horizon": "12h", "dt": "1h", "record_points": 12},
            "market": {"sigma": 0.0, "price": 100.0},
            "liquidity": {"enabled": False},
            "funding": {"enabled": funding_on, "interval": "8h", "interest": 0.005 * 3 * 365, "clamp": 0.01},
            "positions": [{"side": "long", "leverage": 10, "notional": 1e6, "maintenance_margin": 0.097},
                          {"side": "short", "leverage": 10, "notional": 1e6, "maintenance_margin": 0.097}],
            "liquidation": {"adl": False, "penalty": 0.0}}


@pytest.mark.slow
def test_funding_moves_liquidation(run64):
    off = run64(knife_edge(False)).isel(path=0)
    assert float(off.liquidated_long) == 0.0 and float(off.liquidated_short) == 0.0
    on = run64(knife_edge(True)).isel(path=0)
    assert float(on.funding_long) == pytest.approx(-0.005 * 100 * 1e4, rel=1e-9)
    assert float(on.funding_short) == pytest.approx(0.005 * 100 * 1e4, rel=1e-9)
    # The long pays at the end of hour 8 and is liquidated at the next margin check (in hour 9),
    # not before; the short received and stays.
    assert float(on.liquidated_long) == pytest.approx(1e6, rel=1e-12)
    assert float(on.liquidated_short) == 0.0
    per_hour = on.liquidation_quantiles.sel(level=0.5).values  # time points: hours 0..12
    np.testing.assert_allclose(per_hour, np.where(np.arange(13) == 9, 1e6, 0.0), rtol=1e-12)
    # Its equity at liquidation is 10 - 0.5 = 9.5 per unit, all of it returned (no penalty).
    assert float(on.trader_equity) == pytest.approx(1e4 * 9.5 + 1e4 * 10.5, rel=1e-12)
