"""docs/validation.md oracle 8: money balances on every path.

Traders' returned cash plus open equity plus the insurance fund equals their
initial collateral plus the initial fund plus traders' PnL (realised and open)
plus the socialised loss (bad debt nobody inside the system paid). The fund
itself moves only by penalties in, bad debt out, and socialised loss written off.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import crash_config

import stresslab

pytestmark = pytest.mark.slow  # 400 paths of a 6-hour crash with 20 cohorts, per parameter set


@pytest.mark.parametrize("fund,max_order,tiered", [(1e5, None, False), (2e6, 5e6, True), (0.0, 2e7, False)])
def test_every_path_balances(fund, max_order, tiered):
    raw = crash_config(fund, max_order, tiered)
    if max_order is None:
        del raw["liquidation"]["max_order"]
    ds = stresslab.simulate(raw, paths=400, seed=5).isel(scenario=0)
    config = stresslab.load_config(raw).scenarios[0]
    collateral0 = sum(c.notional / c.leverage for c in config.cohorts)
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
