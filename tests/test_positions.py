"""Exact rule examples for margin, liquidation fills, the insurance fund and ADL."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stresslab.market import positions
from stresslab.market.ramp import ramp
from stresslab.market.rules import Hard, Smooth

HARD = Hard()


@pytest.fixture(autouse=True)
def float64():
    with jax.enable_x64(True):
        yield


def cohorts(side, leverage, entry, units, mm=0.005, tiers=None, accounts=1.0):
    side = np.asarray(side, float)
    entry = np.asarray(entry, float)
    n = side.size
    if tiers is None:
        upper = np.full((n, 1), 1e30)
        rate = np.full((n, 1), mm)
    else:
        bounds, rates = tiers
        upper = np.tile(np.append(bounds, 1e30), (n, 1))
        rate = np.tile(rates, (n, 1))
    return positions.CohortParams(
        side=jnp.asarray(side), units0=jnp.asarray(units, float), entry=jnp.asarray(entry),
        margin_per_unit=jnp.asarray(entry / np.asarray(leverage, float)),
        tier_upper=jnp.asarray(upper), tier_rate=jnp.asarray(rate), accounts=jnp.full((n,), accounts),
    )


def test_flat_margin_liquidates_at_the_textbook_price():
    cp = cohorts([1, -1], [20, 20], [100, 100], [1.0, 1.0])
    units = jnp.ones((1, 2))
    long_liq = 100 * (1 - 1 / 20) / (1 - 0.005)
    short_liq = 100 * (1 + 1 / 20) / (1 + 0.005)
    not_in = jnp.zeros((1, 2), bool)
    above = positions.newly_triggered(cp, units, not_in, jnp.asarray([long_liq * (1 + 1e-9)]))
    below = positions.newly_triggered(cp, units, not_in, jnp.asarray([long_liq * (1 - 1e-9)]))
    assert not above[0, 0] and below[0, 0]
    assert not positions.newly_triggered(cp, units, not_in, jnp.asarray([short_liq * (1 - 1e-9)]))[0, 1]
    assert positions.newly_triggered(cp, units, not_in, jnp.asarray([short_liq * (1 + 1e-9)]))[0, 1]


def test_trigger_prices_are_the_textbook_prices_with_flat_margin():
    cp = cohorts([1, -1], [20, 10], [100, 120], [1.0, 2.0], mm=0.01)
    prices = positions.trigger_prices(cp, jnp.asarray([[1.0, 2.0]]))
    assert float(prices[0, 0]) == pytest.approx(100 * (1 - 1 / 20) / (1 - 0.01), rel=1e-14)
    assert float(prices[0, 1]) == pytest.approx(120 * (1 + 1 / 10) / (1 + 0.01), rel=1e-14)


def test_a_tiered_trigger_price_puts_equity_exactly_at_maintenance():
    # the root falls in the second tier: per-account notional 200 units x ~900 = 180k
    cp = cohorts([1], [10], [1000.0], [400.0], tiers=([5e4, 2.5e5], [0.004, 0.01, 0.025]), accounts=2.0)
    units = jnp.asarray([[400.0]])
    price = positions.trigger_prices(cp, units)
    equity = positions.equity(cp, units, price[:, 0])
    assert 5e4 < float(price[0, 0]) * 200 < 2.5e5
    assert float(equity[0, 0]) == pytest.approx(float(positions.maintenance(cp, units, price[:, 0])[0, 0]),
                                                rel=1e-12)


@pytest.mark.parametrize("seed, rates", [(0, "increasing"), (1, "any"), (2, "any")])
def test_trigger_prices_decide_exactly_as_equity_against_maintenance(seed, rates):
    """On random cohorts (both sides, leverage 2-100x, 1-20,000 accounts, five tiers, rates increasing or not,
    a haircut on the collateral, a closed cohort), comparing the mark with the trigger price decides as the
    rule itself at every mark of a fine grid."""
    rng = np.random.default_rng(seed)
    c, k = 12, 5
    upper = np.sort(rng.uniform(1e3, 1e7, (c, k)), -1)
    upper[:, -1] = positions.TIER_CAP
    rate = rng.uniform(0.0, 0.3, (c, k))
    if rates == "increasing":
        rate = np.sort(rate, -1)
    entry = rng.uniform(8e4, 1.2e5, c)
    cp = positions.CohortParams(
        side=jnp.asarray(rng.choice([-1.0, 1.0], c)), units0=jnp.ones(c), entry=jnp.asarray(entry),
        margin_per_unit=jnp.asarray(entry / rng.uniform(2, 100, c)), tier_upper=jnp.asarray(upper),
        tier_rate=jnp.asarray(rate), accounts=jnp.asarray(rng.integers(1, 20000, c).astype(float)))
    units = jnp.asarray(rng.uniform(0, 1e5, (2, c))).at[0, 3].set(0.0)
    check = cp.margin_per_unit * (1.0 - jnp.asarray(rng.uniform(0, 0.2, (2, c))))
    prices = positions.trigger_prices(cp, units, check)
    marks = jnp.asarray(np.linspace(2e4, 2.5e5, 4001))[:, None] * jnp.ones((1, 2))
    rule = jax.vmap(lambda m: positions.newly_triggered(cp, units, jnp.zeros((2, c), bool), m, check))(marks)
    compared = jax.vmap(lambda m: positions.triggered_at(cp, prices, m))(marks)
    assert np.array_equal(np.asarray(rule), np.asarray(compared))
    assert 0.05 < float(jnp.mean(rule)) < 0.95  # the grid holds marks on both sides of the triggers
    assert not np.any(np.asarray(rule)[:, 0, 3])  # the closed cohort never triggers


def test_tiered_margin_is_marginal_by_per_account_notional():
    # Binance-style: 0.4 % up to 50k, 1 % to 250k, 2.5 % above; 2 accounts of 200 units at 1,000.
    cp = cohorts([1], [10], [1000.0], [400.0], tiers=([5e4, 2.5e5], [0.004, 0.01, 0.025]), accounts=2.0)
    mm = positions.maintenance(cp, jnp.asarray([[400.0]]), jnp.asarray([1000.0]))
    per_account = 0.004 * 5e4 + 0.01 * 1.5e5  # 200k each: first tier full, 150k in the second
    assert float(mm[0, 0]) == pytest.approx(2 * per_account, rel=1e-12)
    mm_big = positions.maintenance(cp, jnp.asarray([[400.0]]), jnp.asarray([2000.0]))
    per_account_big = 0.004 * 5e4 + 0.01 * 2e5 + 0.025 * 1.5e5  # 400k each
    assert float(mm_big[0, 0]) == pytest.approx(2 * per_account_big, rel=1e-12)


def ledger(fund):
    return positions.initial_ledger(
        positions.LiquidationParams(*(jnp.asarray(x) for x in (0.01, fund, np.inf, np.inf))), 1)


def test_fill_above_bankruptcy_pays_penalty_and_returns_rest():
    cp = cohorts([1], [10], [100.0], [1.0])
    lp = positions.LiquidationParams(*(jnp.asarray(x) for x in (0.01, 50.0, np.inf, np.inf)))
    out = positions.settle_fills(cp, lp, ledger(50.0), jnp.asarray([[1.0]]), jnp.asarray([95.0]))
    # Equity at 95: 10 + (95 - 100) = 5; penalty 1 % of 95 = 0.95 to the fund, 4.05 back.
    assert float(out.penalties[0]) == pytest.approx(0.95)
    assert float(out.cash[0]) == pytest.approx(4.05)
    assert float(out.fund[0]) == pytest.approx(50.95)
    assert float(out.bad_debt[0]) == 0.0
    assert float(out.liquidated_long[0]) == pytest.approx(95.0)


def test_fill_beyond_bankruptcy_is_bad_debt_then_socialised():
    cp = cohorts([1], [10], [100.0], [1.0])
    lp = positions.LiquidationParams(*(jnp.asarray(x) for x in (0.01, 3.0, np.inf, np.inf)))
    out = positions.settle_fills(cp, lp, ledger(3.0), jnp.asarray([[1.0]]), jnp.asarray([85.0]))
    # Equity at 85: 10 - 15 = -5: bad debt 5, the fund pays 3, 2 is socialised.
    assert float(out.bad_debt[0]) == pytest.approx(5.0)
    assert float(out.fund[0]) == 0.0
    assert float(out.socialised[0]) == pytest.approx(2.0)
    assert float(out.penalties[0]) == 0.0


def test_adl_closes_by_rank_at_the_bankruptcy_price():
    # One bankrupt long (bankruptcy price 90) against three shorts; the fund is empty.
    # Ranking = PnL fraction x effective leverage: the 50x short ranks above the 5x one;
    # the short entered below the price is losing and is never deleveraged.
    cp = cohorts([1, -1, -1, -1], [10, 50, 5, 20], [100.0, 100.0, 100.0, 80.0], [3.0, 2.0, 5.0, 4.0])
    units = jnp.asarray([[3.0, 2.0, 5.0, 4.0]])
    in_liq = jnp.asarray([[True, False, False, False]])
    price = jnp.asarray([85.0])
    new_units, out = positions.auto_deleverage(HARD, cp, units, in_liq, ledger(0.0), price)
    np.testing.assert_allclose(new_units, [[0.0, 0.0, 4.0, 4.0]])
    bankruptcy = 90.0
    # Long closes at its bankruptcy price: its equity is exactly zero, nothing returned.
    # Shorts close at 90: equity per unit 100/lev + (100 - 90).
    expected_cash = 2 * (2 + 10) + 1 * (20 + 10)
    assert float(out.cash[0]) == pytest.approx(expected_cash)
    assert float(out.adl_notional[0]) == pytest.approx(3 * bankruptcy)
    assert float(out.realised_pnl[0]) == pytest.approx(3 * (90 - 100) + 3 * (100 - 90))
    assert float(out.bad_debt[0]) == 0.0


def test_adl_waits_while_the_fund_can_pay():
    cp = cohorts([1, -1], [10, 50], [100.0, 100.0], [3.0, 2.0])
    units = jnp.asarray([[3.0, 2.0]])
    in_liq = jnp.asarray([[True, False]])
    same, out = positions.auto_deleverage(HARD, cp, units, in_liq, ledger(1e6), jnp.asarray([85.0]))
    np.testing.assert_array_equal(same, units)
    assert float(out.adl_notional[0]) == 0.0


def test_adl_when_the_fund_cannot_cover_the_deficit():
    # Bankruptcy at 90, price 85: deficit 3 x 5 = 15. A fund of 14 cannot pay it, one of 16 can.
    cp = cohorts([1, -1], [10, 50], [100.0, 100.0], [3.0, 5.0])
    units = jnp.asarray([[3.0, 5.0]])
    in_liq = jnp.asarray([[True, False]])
    short, out = positions.auto_deleverage(HARD, cp, units, in_liq, ledger(14.0), jnp.asarray([85.0]))
    np.testing.assert_allclose(short, [[0.0, 2.0]])
    assert float(out.adl_notional[0]) == pytest.approx(3 * 90.0)
    assert float(out.fund[0]) == 14.0  # ADL costs the fund nothing
    enough, _ = positions.auto_deleverage(HARD, cp, units, in_liq, ledger(16.0), jnp.asarray([85.0]))
    np.testing.assert_array_equal(enough, units)


@pytest.mark.parametrize("fund,closed", [(0.0, [0.0, 2.0]), (14.0, [0.0, 2.0]), (16.0, [3.0, 5.0])])
def test_smooth_adl_tends_to_the_hard_rule(fund, closed):
    """With the smooth rules at a tiny temperature and a liquidation weight of 1, ADL does what the exchange
    rule does (the examples above: a deficit of 15 at price 85; a fund of 14 cannot pay it, one of 16 can)."""
    cp = cohorts([1, -1], [10, 50], [100.0, 100.0], [3.0, 5.0])
    units = jnp.asarray([[3.0, 5.0]])
    queued = Smooth().adl_queue(jnp.asarray([[[1.0, 0.0]]]), jnp.asarray([[True]]))[:, 0]
    after, out = positions.auto_deleverage(Smooth(), cp, units, queued, ledger(fund), jnp.asarray([85.0]),
                                           temperature=1e-9)
    hard, hard_out = positions.auto_deleverage(HARD, cp, units, queued > 0.5, ledger(fund), jnp.asarray([85.0]))
    np.testing.assert_allclose(after, [closed], atol=1e-12)
    np.testing.assert_allclose(after, hard, atol=1e-12)
    assert float(out.adl_notional[0]) == pytest.approx(float(hard_out.adl_notional[0]))


@pytest.mark.parametrize("temperature", [0.01, 0.002])
def test_smooth_adl_takes_over_from_the_fund_continuously(temperature):
    """The relaxed fund-exhaustion decision: what ADL closes grows continuously from nothing at a fund equal
    to the deficit (15) to the hard rule's at a fund T x the bankrupt notional (3 units x 85) below it, and a
    cohort barely bankrupt (equity just below 0) is closed only in proportion to the ramp of its deficit."""
    cp = cohorts([1, -1], [10, 50], [100.0, 100.0], [3.0, 5.0])
    units = jnp.asarray([[3.0, 5.0]])
    queued = jnp.asarray([[1.0, 0.0]])
    width = temperature * 3 * 85.0
    funds = np.linspace(15.0 - 1.5 * width, 15.5, 401)
    left = np.array([float(positions.auto_deleverage(Smooth(), cp, units, queued, ledger(f), jnp.asarray([85.0]),
                                                     temperature=temperature)[0][0, 0]) for f in funds])
    assert left[funds >= 15.0].tolist() == [3.0] * int((funds >= 15.0).sum())  # the fund pays: no ADL
    assert np.all(left[funds <= 15.0 - width] <= 1e-12)  # the fund is short by the width: all of it
    assert np.all(np.diff(left) >= -1e-12)  # more fund, less ADL
    step = funds[1] - funds[0]
    assert np.max(np.abs(np.diff(left))) <= 3.0 * 1.875 * step / width + 1e-12  # the ramp's steepest slope
    # at price 90 - d the long's equity is just negative (-3 d): its bankrupt weight b is the ramp of
    # d / price / T, the fund's shortfall weight e the ramp of b x 3 d / (T x b x 3 x price) = b; ADL closes e x b
    barely = 90.0 - 0.05
    after, _ = positions.auto_deleverage(Smooth(), cp, units, queued, ledger(0.0), jnp.asarray([barely]),
                                         temperature=temperature)
    b = float(ramp(jnp.asarray(0.05 / barely / temperature)))
    e = float(ramp(jnp.asarray(b * 3 * 0.05 / (temperature * b * 3 * barely))))
    assert 0 < e * b < 1
    assert float(after[0, 0]) == pytest.approx(3.0 * (1.0 - e * b), rel=1e-9)


@pytest.mark.parametrize("z", [np.linspace(-1, 2, 301)])
def test_the_ramp_is_one_sided_monotone_and_twice_smooth(z):
    r = np.asarray(ramp(jnp.asarray(z)))
    assert np.all(r[z <= 0] == 0.0) and np.all(r[z >= 1] == 1.0)
    assert np.all(np.diff(r) >= 0) and r[np.argmin(abs(z - 0.5))] == pytest.approx(0.5)
    slope = np.asarray(jax.vmap(jax.grad(ramp))(jnp.asarray(z)))
    curvature = np.asarray(jax.vmap(jax.grad(jax.grad(ramp)))(jnp.asarray(z)))
    assert slope.max() == pytest.approx(1.875) and abs(slope[z == 0]).max() == 0 and abs(curvature[z == 1]).max() < 1e-9


@pytest.mark.parametrize("rules,temperature", [(HARD, 0.0), (Smooth(), 0.01), (Smooth(), 0.001)])
def test_adl_candidates_hold_every_path_where_adl_acts(rules, temperature):
    """``positions.adl_candidates`` (no sum over cohorts) is what the step runs ADL's fund test on: every
    path where ``adl_weights`` says ADL acts must be a candidate, for the hard and the smooth rules. Random
    books (400 paths x 2 venues x 6 cohorts): the candidates must also include paths where the fund covers
    the deficit (so the test is not vacuous) and leave out paths with no bankrupt queued cohort."""
    rng = np.random.default_rng(5)
    n, v, c = 400, 2, 6
    cp = cohorts([1, 1, 1, -1, -1, -1], [2, 10, 50, 3, 20, 100], [100.0] * 6, [4.0, 3.0, 2.0, 3.0, 2.0, 1.0])
    units = jnp.asarray(rng.uniform(0.0, 4.0, (n, v, c)) * (rng.uniform(size=(n, v, c)) > 0.2))
    queued = jnp.asarray((rng.uniform(size=(n, v, c)) > 0.5).astype(float) * rng.uniform(0.5, 1.0, (n, v, c)))
    queued = queued > 0.5 if rules is HARD else queued
    mark = jnp.asarray(rng.uniform(95.0, 105.0, (n, v)))
    fund = jnp.asarray(rng.uniform(0.0, 3.0, (n, v)))
    value = cp.margin_per_unit * jnp.asarray(rng.uniform(0.5, 1.0, (n, v, c)))
    bankrupt, short = positions.adl_weights(rules, cp, units, queued, fund, mark, value, temperature)
    acts = np.asarray(jnp.any((bankrupt > 0) & (short[..., None] > 0), (-2, -1)))
    candidates = np.asarray(positions.adl_candidates(cp, units, queued, mark, value))
    assert acts.any() and not np.any(acts & ~candidates)
    assert np.any(candidates & ~acts) and not candidates.all()
