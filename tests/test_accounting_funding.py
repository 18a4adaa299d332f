"""docs/validation.md oracle 8 with funding and collateral held in an asset: tests/test_accounting.py's identity
extended by funding received (funding_long + funding_short) and the collateral revaluation (collateral_pnl)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import crash_config

import stresslab

pytestmark = pytest.mark.slow  # 300 paths of a 6-hour crash with funding, per parameter set


@pytest.mark.parametrize("fund,max_order,collateral", [(1e5, None, False), (0.0, 2e7, False), (1e5, None, True),
                                                       (0.0, 2e7, True)])
def test_every_path_balances_with_funding(fund, max_order, collateral):
    """tests/test_accounting.py identity, extended by funding received and collateral revaluation."""
    raw = crash_config(fund, max_order, tiered=False)
    if max_order is None:
        del raw["liquidation"]["max_order"]
    raw["dealers"] = {"enabled": False}  # hedging is balanced in test_accounting.py; keeps compilation short
    raw["funding"] = {"enabled": True, "preset": "hourly"}
    raw["arbitrage"] = {"enabled": True, "half_life": "10min", "capacity": 5e7}
    if collateral:
        raw["collateral"] = {"enabled": True, "share": 0.4, "depth": 2e6, "sell": 5e7, "sell_start": "2h",
                             "sell_duration": "10min"}
    ds = stresslab.simulate(raw, paths=300, seed=5).isel(scenario=0)
    config = stresslab.load_config(raw).scenarios[0]
    collateral0 = sum(c.notional / c.leverage for c in config.cohorts)
    lhs = ds.trader_equity + ds.insurance_fund
    rhs = (collateral0 + fund + ds.trader_pnl + ds.funding_long + ds.funding_short + ds.collateral_pnl
           + ds.socialised_loss)
    np.testing.assert_allclose(lhs, rhs, rtol=0, atol=1e-9 * 3e8)
    np.testing.assert_allclose(ds.insurance_fund, fund + ds.penalties - ds.bad_debt + ds.socialised_loss,
                               rtol=0, atol=1e-9 * 3e8)
    # Exercised: funding flows both ways across paths, liquidations, ADL or socialised loss, a depeg.
    assert (ds.funding_long != 0).mean() > 0.9 and (ds.funding_short != 0).mean() > 0.9
    assert (ds.funding_long > 0).any() and (ds.funding_long < 0).any()
    assert (ds.liquidated_long > 0).mean() > 0.5
    assert (ds.adl_notional > 0).any() or (ds.socialised_loss > 0).any()
    if collateral:
        assert (ds.collateral_pnl < 0).all() and (ds.min_collateral_price < 0.9).all()
    else:
        assert (ds.collateral_pnl == 0).all()
