"""Auto-deleveraging against the exchanges' documented examples (docs/validation.md 7).

Sources (stored public pages):
- BitMEX, "Auto-Deleveraging" (bitmex.com/app/autoDeleveraging) and its examples page
  (testnet.bitmex.com/app/autoDeleveragingExamples): ranking = PNL percentage x effective leverage for
  profitable positions, with PNL percentage = (mark value - average entry value) / |average entry value|
  and effective leverage = |mark value| / (mark value - bankrupt value); positions are closed at the
  bankruptcy price of the liquidated order. Example: six longs with quantities 10, 10, 20, 30, 20, 10
  (accounts 1-6) and PnL ranking scores 3, 6, 1, 4, 5, 2; a short of size 20 with bankruptcy price 650
  is liquidated: accounts 2 and 5 are deleveraged at 650, account 2 entirely (10) and account 5 for the
  remaining 10 of its 20.
- dYdX, "Contract Loss Mechanisms": A deposits $100 and goes long 500 at $1; B deposits $100 and goes
  short 500 at $1; the price jumps to $2: B's equity is -$400, B's bankruptcy price is $1.2, A's position
  is closed at $1.2: A makes $100, B loses $100 and ends at $0.

The BitMEX page gives the ranking scores, not the positions behind them; the cohorts below are built
(same entry, leverage increasing with the documented score) so that the documented formula reproduces
the documented order, which the test checks before running the example.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stresslab.market import positions
from stresslab.market.rules import Hard

HARD = Hard()


@pytest.fixture(autouse=True)
def float64():
    with jax.enable_x64(True):
        yield


def cohorts(side, margin, entry, units, mm=0.005):
    side, margin, entry = (np.asarray(x, float) for x in (side, margin, entry))
    n = side.size
    return positions.CohortParams(
        side=jnp.asarray(side), units0=jnp.asarray(units, float), entry=jnp.asarray(entry),
        margin_per_unit=jnp.asarray(margin), tier_upper=jnp.full((n, 1), 1e30), tier_rate=jnp.full((n, 1), mm),
        accounts=jnp.ones((n,)),
    )


def empty_ledger():
    return positions.initial_ledger(
        positions.LiquidationParams(*(jnp.asarray(x) for x in (0.01, 0.0, np.inf, np.inf))), 1)


def bitmex_score(side: float, entry: float, margin: float, mark: float) -> float:
    """The documented BitMEX ranking of one position (per unit; quantities cancel)."""
    mark_value, entry_value = side * mark, side * entry
    bankrupt_value = side * (entry - side * margin)
    pnl_percentage = (mark_value - entry_value) / abs(entry_value)
    effective_leverage = abs(mark_value) / (mark_value - bankrupt_value)
    return pnl_percentage * effective_leverage if pnl_percentage > 0 else pnl_percentage / effective_leverage


# Accounts 1..6 of the BitMEX example: quantity and documented PnL ranking.
QUANTITY = [10.0, 10.0, 20.0, 30.0, 20.0, 10.0]
RANKING = [3, 6, 1, 4, 5, 2]
LEVERAGE_FOR_RANK = {1: 2.0, 2: 3.0, 3: 5.0, 4: 10.0, 5: 25.0, 6: 50.0}
ENTRY, MARK, BANKRUPTCY = 600.0, 700.0, 650.0


def bitmex_example():
    long_margin = [ENTRY / LEVERAGE_FOR_RANK[r] for r in RANKING]
    short_margin = BANKRUPTCY - ENTRY  # the liquidated short's bankruptcy price is 650
    cp = cohorts([1.0] * 6 + [-1.0], long_margin + [short_margin], [ENTRY] * 7, QUANTITY + [20.0])
    units = jnp.asarray([QUANTITY + [20.0]])
    in_liq = jnp.asarray([[False] * 6 + [True]])
    return cp, units, in_liq, long_margin


def test_bitmex_example_cohorts_rank_as_documented():
    _, _, _, long_margin = bitmex_example()
    scores = [bitmex_score(1.0, ENTRY, m, MARK) for m in long_margin]
    # Ordered from highest to lowest score: accounts 2, 5, 4, 1, 6, 3 (the documented table).
    assert [int(i) + 1 for i in np.argsort(scores)[::-1]] == [2, 5, 4, 1, 6, 3]


def test_bitmex_example_deleverages_accounts_2_and_5_at_the_bankruptcy_price():
    cp, units, in_liq, long_margin = bitmex_example()
    assert float(positions.bankruptcy_price(cp)[6]) == pytest.approx(BANKRUPTCY)
    new_units, out = positions.auto_deleverage(HARD, cp, units, in_liq, empty_ledger(), jnp.asarray([MARK]))
    # Account 2 closed entirely (10), account 5 for the remaining 10 of its 20; the short is closed.
    np.testing.assert_allclose(new_units, [[10.0, 0.0, 20.0, 30.0, 10.0, 10.0, 0.0]])
    # Closed at 650: each deleveraged long gets its margin plus (650 - 600) per unit.
    m2, m5 = long_margin[1], long_margin[4]
    assert float(out.cash[0]) == pytest.approx(10 * (m2 + 50.0) + 10 * (m5 + 50.0), rel=1e-12)
    assert float(out.realised_pnl[0]) == pytest.approx(20 * 50.0 - 20 * 50.0, abs=1e-9)
    assert float(out.adl_notional[0]) == pytest.approx(20 * BANKRUPTCY, rel=1e-12)
    assert float(out.liquidated_short[0]) == pytest.approx(20 * BANKRUPTCY, rel=1e-12)
    assert float(out.bad_debt[0]) == 0.0 and float(out.socialised[0]) == 0.0


def test_ranking_uses_the_documented_pnl_percentage_of_entry_value():
    """BitMEX's PNL percentage is relative to the entry value, not to the margin. Two profitable longs at
    mark 110: X entered at 50 with 2x (PNL 120 %, effective leverage 1.29, score 1.55) and Y entered at
    105 with 20x (PNL 4.8 %, effective leverage 10.7, score 0.51). X ranks first and absorbs the one unit
    of a bankrupt short. (PnL over margin would give X 3.1 and Y 10.2 and take Y instead.)"""
    cp = cohorts([1.0, 1.0, -1.0], [25.0, 5.25, 5.0], [50.0, 105.0, 100.0], [1.0, 1.0, 1.0])
    mark = 110.0
    assert bitmex_score(1.0, 50.0, 25.0, mark) == pytest.approx(1.2 * 110 / 85)
    assert bitmex_score(1.0, 50.0, 25.0, mark) > bitmex_score(1.0, 105.0, 5.25, mark)
    units = jnp.ones((1, 3))
    in_liq = jnp.asarray([[False, False, True]])
    new_units, out = positions.auto_deleverage(HARD, cp, units, in_liq, empty_ledger(), jnp.asarray([mark]))
    np.testing.assert_allclose(new_units, [[0.0, 1.0, 0.0]])
    assert float(out.adl_notional[0]) == pytest.approx(105.0)  # closed at the short's bankruptcy price


def test_dydx_example_closes_the_offsetting_long_at_the_bankruptcy_price():
    # A: $100 deposit, long 500 at $1 (margin 0.2 per unit). B: $100 deposit, short 500 at $1.
    cp = cohorts([1.0, -1.0], [0.2, 0.2], [1.0, 1.0], [500.0, 500.0])
    units = jnp.asarray([[500.0, 500.0]])
    price = jnp.asarray([2.0])
    equity = positions.equity(cp, units, price)
    assert float(equity[0, 1]) == pytest.approx(-400.0)  # "B's equity becomes negative: -$400"
    assert float(equity[0, 0]) == pytest.approx(600.0)   # A's $100 plus the $500 it expects
    assert float(positions.bankruptcy_price(cp)[1]) == pytest.approx(1.2)
    new_units, out = positions.auto_deleverage(HARD, cp, units, jnp.asarray([[False, True]]), empty_ledger(), price)
    np.testing.assert_allclose(new_units, [[0.0, 0.0]])
    # A is closed at $1.2: its $100 back plus a $100 profit; B loses $100 and is left with $0.
    assert float(out.cash[0]) == pytest.approx(200.0)
    assert float(out.realised_pnl[0]) == pytest.approx(100.0 - 100.0, abs=1e-12)
    assert float(out.adl_notional[0]) == pytest.approx(500 * 1.2)
    assert float(out.bad_debt[0]) == 0.0 and float(out.fund[0]) == 0.0


def test_bankruptcy_price_moves_with_funding_received():
    # Bankruptcy price = entry - (margin + funding received) for a long, entry + (...) for a short.
    cp = cohorts([1.0, -1.0], [10.0, 10.0], [100.0, 100.0], [1.0, 1.0])
    value = jnp.asarray([10.0 - 0.5, 10.0 + 0.5])  # the long paid 0.5 per unit, the short received it
    np.testing.assert_allclose(positions.bankruptcy_price(cp, value), [90.5, 110.5])
