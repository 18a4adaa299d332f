"""Collateral held in an asset with its own order book (docs/model.md 7-8, the October 2025 depeg): margin
priced off the venue's own book ("internal") sees a dump, liquidates, and sells the seized collateral
into that book (a loop); priced off an external index ("external") it holds the peg."""

from __future__ import annotations

import math

import pytest

import stresslab

pytestmark = pytest.mark.slow  # each test compiles and runs a market kernel


def depeg(pricing: str, depth: float) -> dict:
    """All collateral in a pegged asset. A -5 % gap at 10 min leaves 10-18x longs solvent at the peg
    (18x: liquidation price 94.92); a 2 % dump of the asset at 20 min follows."""
    return {"simulation": {"steps": 40, "dt": "1min", "record_points": 2},
            "market": {"sigma": 0.0, "shocks": [{"type": "gap", "at": "10min", "size": -0.05}]},
            "liquidity": {"depth": 1e10, "permanent_fraction": 1.0, "depletion": 0.0},
            "collateral": {"enabled": True, "share": 1.0, "pricing": pricing, "depth": depth,
                           "sell": 2.0 * depth, "sell_start": "20min", "sell_duration": "1min",
                           "recovery_half_life": "1h"},
            "position_grids": [{"side": "long", "notional": 1e8, "leverage_min": 10, "leverage_max": 18,
                                "cohorts": 8}],
            "liquidation": {"adl": False, "insurance_fund": 1e9}}


def seized_at_peg(raw: dict, leverages) -> float:
    """Collateral (at the peg) of the cohorts with the given leverages."""
    config = stresslab.load_config(raw).scenarios[0]
    return sum(c.notional / c.leverage for c in config.cohorts if any(abs(c.leverage - x) < 1e-9
                                                                         for x in leverages))


def test_depeg_with_internal_pricing_liquidates_and_sells_the_seized_collateral(run64):
    raw = depeg("internal", 1e6)
    ds = run64(raw).isel(path=0)
    # Equity per unit at 95 for leverage l: (100 / l) c - 5 against 0.475: liquidated iff c < 0.05475 l.
    # The dump alone (c = e^-0.02 = 0.980) liquidates the 18x cohort only; its seized collateral sold into
    # the asset's book moves it further by 0.01 x seized x c / depth.
    seized = seized_at_peg(raw, [18.0])
    assert seized == pytest.approx(1.25e7 / 18)
    y_c = -0.02 - 0.01 * seized * math.exp(-0.02) / 1e6
    assert float(ds.min_collateral_price) == pytest.approx(math.exp(y_c), rel=1e-9)
    assert float(ds.liquidated_long) == pytest.approx(1.25e7 * 0.95, rel=1e-3)
    assert float(ds.collateral_pnl) < 0


def test_depeg_loop_liquidates_everything_on_a_thin_collateral_book_but_not_with_external_pricing(run64):
    internal = run64(depeg("internal", 5e4)).isel(path=0)
    external = run64(depeg("external", 5e4)).isel(path=0)
    # Thin book: each cohort's seized collateral pushes the asset below the next cohort's threshold.
    assert float(internal.liquidated_long) == pytest.approx(1e8 * 0.95, rel=1e-3)
    assert float(internal.min_collateral_price) < 0.6
    # External pricing holds the peg for margin: the same dump liquidates nobody.
    assert float(external.min_collateral_price) == 1.0
    assert float(external.liquidated_long) == 0.0
    assert float(external.collateral_pnl) == 0.0
