"""VALIDATION.md oracle 8: money balances on every path.

Traders' returned cash plus open equity plus the insurance fund equals their
initial collateral plus the initial fund plus traders' PnL (realised and open)
plus the socialised loss (bad debt nobody inside the system paid). The fund
itself moves only by penalties in, bad debt out, and socialised loss written off.
"""

from __future__ import annotations

import numpy as np
import pytest

import stresslab
from stresslab.market.params import cohorts_of


def crash_config(fund: float, max_order: float | None, tiered: bool) -> dict:
    mm = "tiered" if tiered else 0.005
    return {
        "simulation": {"horizon": "6h", "dt": "1min", "dtype": "float64", "record_points": 10},
        "market": {"sigma": 1.0, "jumps": {"intensity": 200, "mean": -0.03, "std": 0.03},
                   "shocks": [{"type": "gap", "at": "1h", "size": -0.08}]},
        "liquidity": {"depth": 5e6, "impact": "sqrt", "permanent_fraction": 0.6, "depletion": 2.0,
                      "withdrawal": 0.5},
        "margin": {"tiers": [{"notional": 5e4, "rate": 0.004}, {"notional": 2.5e5, "rate": 0.01},
                             {"notional": 1e9, "rate": 0.025}]},
        "position_grids": [
            {"side": "long", "notional": 3e8, "leverage_min": 3, "leverage_max": 100, "cohorts": 12,
             "maintenance_margin": mm, "accounts": 500},
            {"side": "short", "notional": 2e8, "leverage_min": 3, "leverage_max": 50, "cohorts": 8,
             "maintenance_margin": mm, "accounts": 500},
        ],
        "liquidation": {"penalty": 0.01, "insurance_fund": fund, "max_order": max_order, "adl": True},
        "dealers": {"enabled": True, "book": "options", "options": [
            {"type": "put", "strike": 90.0, "expiry": "2d", "quantity": 2e4, "dealer_position": "short"}]},
    }


@pytest.mark.parametrize("fund,max_order,tiered", [(1e5, None, False), (2e6, 5e6, True), (0.0, 2e7, False)])
def test_every_path_balances(fund, max_order, tiered):
    raw = crash_config(fund, max_order, tiered)
    if max_order is None:
        del raw["liquidation"]["max_order"]
    ds = stresslab.simulate(raw, paths=400, seed=5).isel(scenario=0)
    config = stresslab.load_config(raw).scenarios[0]
    collateral0 = sum(c.notional / c.leverage for c in cohorts_of(config))
    lhs = ds.trader_equity + ds.insurance_fund
    rhs = collateral0 + fund + ds.trader_pnl + ds.socialised_loss
    scale = 3e8
    np.testing.assert_allclose(lhs, rhs, rtol=0, atol=1e-9 * scale)
    fund_flow = fund + ds.penalties - ds.bad_debt + ds.socialised_loss
    np.testing.assert_allclose(ds.insurance_fund, fund_flow, rtol=0, atol=1e-9 * scale)
    assert (ds.insurance_fund >= 0).all()
    # The scenario exercises what it balances: liquidations, bad debt, the fund running dry, ADL.
    assert (ds.liquidated_long + ds.liquidated_short > 0).mean() > 0.5
    assert (ds.bad_debt > 0).any()
    assert (ds.penalties > 0).any()
    assert (ds.adl_notional > 0).any() or (ds.socialised_loss > 0).any()
