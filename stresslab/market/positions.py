"""Leveraged cohorts, maintenance margin, liquidation, insurance fund and auto-deleveraging.

A cohort holds ``units`` of the asset on one side (``side`` = +1 long, -1 short),
entered at ``entry`` with collateral ``margin_per_unit`` per unit. Its equity at
price S is ``units * (margin + side * (S - entry))``, where ``margin`` is the
collateral per unit now: ``margin_per_unit`` revalued (a share may be held in an
asset whose price moves, see collateral.py) plus funding received; margin checks
use it after the haircut, settlement at its value; it is liquidated
when equity falls below maintenance margin (flat, or tiered by per-account
notional). Liquidation fills release equity: the penalty goes to the insurance
fund, the rest back to the trader, and negative equity is bad debt paid by the
fund; what the fund cannot pay is a socialised loss. When the fund cannot cover
the negative equity of the bankrupt cohorts in the queue (at the price before a
step's flow), they are closed at their bankruptcy price against profitable
opposite cohorts, highest rank (PnL over entry value x effective leverage, as BitMEX) first (ADL),
instead of being sold into the book.
Money is in quote currency; ``units`` in the asset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from stresslab.market import collateral, safe
from stresslab.market.liquidity import ONE_PERCENT
from stresslab.market.outputs import Output, Problem, Series
from stresslab.market.ramp import ramp
from stresslab.market.reduce import fixed_sum

if TYPE_CHECKING:
    from stresslab.market.rules import Hard as Rules

TIER_CAP = 1e30
"""Upper bound of the last margin tier (a finite stand-in for infinity keeps gradients finite)."""
RESIDUAL = 1e-6
"""Share of a cohort's initial units below which smooth triggers treat it as closed (tangents of
ratios of vanishing units overflow)."""


class CohortParams(NamedTuple):
    """Attributes ((C,) each, tiers (C, K)):
    side: +1 long, -1 short.  units0: units at the start.  entry: entry price.
    margin_per_unit: collateral per unit (entry / leverage).
    tier_upper: per-account notional bounds of the margin tiers (last is inf).
    tier_rate: maintenance margin rate of each tier.  accounts: accounts sharing the cohort.
    """

    side: jnp.ndarray
    units0: jnp.ndarray
    entry: jnp.ndarray
    margin_per_unit: jnp.ndarray
    tier_upper: jnp.ndarray
    tier_rate: jnp.ndarray
    accounts: jnp.ndarray


class LiquidationParams(NamedTuple):
    """Attributes: penalty (fraction of filled notional), fund0 (initial insurance fund),
    max_order (liquidation notional executed per step; inf: no cap),
    collar (max log-price move per step from liquidation orders; inf: none)."""

    penalty: jnp.ndarray
    fund0: jnp.ndarray
    max_order: jnp.ndarray
    collar: jnp.ndarray


class Ledger(NamedTuple):
    """Per-path money flows since the start, quote currency (each (N,)).

    cash: equity returned to traders by closes.  realised_pnl: traders' PnL on closed units.
    penalties: liquidation fees paid to the fund.  bad_debt: negative equity at liquidation.
    socialised: bad debt the fund could not pay.  adl_notional: notional closed by ADL.
    liquidated_long, liquidated_short: notional liquidated.  fund: insurance fund now.
    funding_long, funding_short: funding received by long / short cohorts (negative: paid).
    collateral_pnl: revaluation of collateral held in an asset, realised on closed units.
    """

    cash: jnp.ndarray
    realised_pnl: jnp.ndarray
    penalties: jnp.ndarray
    bad_debt: jnp.ndarray
    socialised: jnp.ndarray
    adl_notional: jnp.ndarray
    liquidated_long: jnp.ndarray
    liquidated_short: jnp.ndarray
    fund: jnp.ndarray
    funding_long: jnp.ndarray
    funding_short: jnp.ndarray
    collateral_pnl: jnp.ndarray


class PositionParams(NamedTuple):
    """cohorts: the leveraged cohorts (V, C).  liquidation: the liquidation engine and insurance fund."""

    cohorts: CohortParams
    liquidation: LiquidationParams


@dataclass(frozen=True)
class PositionStatic:
    """n_cohorts: cohorts per venue (C).  adl: auto-deleveraging on."""

    n_cohorts: int
    adl: bool


class PositionState(NamedTuple):
    """units: open units per cohort (N, V, C).  in_liq: cohort under liquidation (N, V, C), 1 or 0
    (a weight in [0, 1] with smooth rules).  ledger: money flows (N, V)."""

    units: jnp.ndarray
    in_liq: jnp.ndarray
    ledger: Ledger


def build(config, grid) -> tuple[PositionParams, PositionStatic]:
    """Cohorts per venue (V, C) from ``positions`` and ``position_grids`` (venues with fewer cohorts are
    padded with empty ones), and the liquidation engine of ``config.liquidation``."""
    venues = list(grid.venues)
    by_venue: list[list] = [[] for _ in venues]
    for c in config.cohorts:
        by_venue[venues.index(c.venue) if c.venue is not None else 0].append(c)
    n_cohorts = max(len(v) for v in by_venue)
    tiers = config.margin.tiers
    n_tiers = max(1, len(tiers))
    shape = (len(venues), n_cohorts)
    side, units0, accounts = np.ones(shape), np.zeros(shape), np.ones(shape)
    entry = np.full(shape, config.market.price)
    margin = np.ones(shape)
    upper = np.full((*shape, n_tiers), TIER_CAP)
    rate = np.zeros((*shape, n_tiers))
    for v, cohorts in enumerate(by_venue):
        for i, c in enumerate(cohorts):
            entry[v, i] = c.entry_price or config.market.price
            side[v, i] = 1.0 if c.side == "long" else -1.0
            units0[v, i] = c.notional / entry[v, i]
            margin[v, i] = entry[v, i] / c.leverage
            accounts[v, i] = float(c.accounts)
            if c.maintenance_margin == "tiered":
                upper[v, i, : len(tiers) - 1] = [t.notional for t in tiers[:-1]]
                rate[v, i] = [t.rate for t in tiers]
            else:
                rate[v, i, 0] = c.maintenance_margin
    arr, lq = grid.arr, config.liquidation
    cohorts = CohortParams(side=arr(side), units0=arr(units0), entry=arr(entry), margin_per_unit=arr(margin),
                           tier_upper=arr(upper), tier_rate=arr(rate), accounts=arr(accounts))
    liquidation = LiquidationParams(
        penalty=arr(lq.penalty),
        fund0=arr([v.insurance_fund if v.insurance_fund is not None else lq.insurance_fund
                   for v in config.venues] or [lq.insurance_fund]),
        max_order=arr(lq.max_order if lq.max_order is not None else np.inf),
        collar=arr(lq.price_collar if lq.price_collar is not None else np.inf),
    )
    return PositionParams(cohorts, liquidation), PositionStatic(n_cohorts=n_cohorts, adl=lq.adl and n_cohorts > 0)


def initial_ledger(lp: LiquidationParams, n: int) -> Ledger:
    """Empty ledger per path and venue (N, V); the fund starts at each venue's ``fund0``."""
    zeros = jnp.zeros((n, *lp.fund0.shape), lp.fund0.dtype)
    return Ledger(*([zeros] * 8), fund=zeros + lp.fund0, funding_long=zeros, funding_short=zeros,
                  collateral_pnl=zeros)


def init(params, static, n: int) -> PositionState:
    cp, dtype = params.positions.cohorts, params.positions.cohorts.units0.dtype
    shape = (n, static.grid.n_venues, static.positions.n_cohorts)
    return PositionState(units=jnp.broadcast_to(cp.units0, shape).astype(dtype), in_liq=jnp.zeros(shape, dtype),
                         ledger=initial_ledger(params.positions.liquidation, n))


def equity(cp: CohortParams, units: jnp.ndarray, price: jnp.ndarray, margin: jnp.ndarray | None = None
           ) -> jnp.ndarray:
    """Cohort equity at ``price`` (..., C): collateral per unit ``margin`` (default: as posted) plus unrealised PnL."""
    margin = cp.margin_per_unit if margin is None else margin
    return units * (margin + cp.side * (price[..., None] - cp.entry))


def maintenance(cp: CohortParams, units: jnp.ndarray, price: jnp.ndarray) -> jnp.ndarray:
    """Maintenance margin (N, C): marginal tier rates applied to per-account notional."""
    per_account = units * price[..., None] / cp.accounts
    total = jnp.zeros_like(per_account)
    lower = 0.0
    for k in range(cp.tier_upper.shape[-1]):  # tier by tier, in order: no (N, V, C, tiers) temporaries
        upper = cp.tier_upper[..., k]
        total = total + cp.tier_rate[..., k] * jnp.clip(per_account - lower, 0.0, upper - lower)
        lower = upper
    return cp.accounts * total


def newly_triggered(cp: CohortParams, units: jnp.ndarray, in_liq: jnp.ndarray, price: jnp.ndarray,
                    check: jnp.ndarray | None = None) -> jnp.ndarray:
    """Open cohorts not yet in liquidation whose equity (collateral per unit ``check``, after the
    haircut) is below maintenance at ``price`` (N, V, C) bool."""
    return ~in_liq & (units > 0) & (equity(cp, units, price, check) < maintenance(cp, units, price))


class Triggers(NamedTuple):
    """What the liquidation rule compares a mark with, fixed while ``units`` and collateral per unit
    ``check`` (after the haircut) are (N, V, C): the hard rules' ``prices`` (``trigger_prices``; None with
    smooth rules, which weigh the shortfall itself)."""

    units: jnp.ndarray
    check: jnp.ndarray | None
    prices: jnp.ndarray | None


def trigger_prices(cp: CohortParams, units: jnp.ndarray, check: jnp.ndarray | None = None) -> jnp.ndarray:
    """Mark price at which each cohort's equity meets maintenance, for the step's ``units`` and collateral
    per unit ``check`` (N, V, C), quote currency.

    Equity ``units (m + side (S - entry))`` is affine in the mark S and maintenance is piecewise affine
    (one piece per tier), so their difference g(S) is monotone (slope ``units (side - rate)``, rates < 1):
    a long cohort triggers exactly where S < its trigger price, a short one where S > it
    (``newly_triggered``, the same rule evaluated at S). The root lies beyond a tier bound exactly where g
    there is on the triggering side (its sign needs no division); those bounds are a prefix of the tiers,
    so the root's piece is chosen bound by bound and then solved. A closed cohort (no units) never
    triggers: -inf for longs, +inf for shorts.
    """
    m = cp.margin_per_unit if check is None else check
    rate, upper = cp.tier_rate, cp.tier_upper
    lower = jnp.concatenate([jnp.zeros_like(upper[..., :1]), upper[..., :-1]], -1)
    below = jnp.cumsum(jnp.concatenate([jnp.zeros_like(rate[..., :1]), rate[..., :-1] * (upper - lower)[..., :-1]],
                                       -1), -1)  # maintenance per account at each tier's lower bound
    offset = below - rate * lower  # maintenance per account on tier k: rate_k x notional + offset_k
    per_account = units / cp.accounts
    cushion = per_account * (m - cp.side * cp.entry)  # g / accounts at S = 0
    r, off = rate[..., 0], offset[..., 0]
    for k in range(rate.shape[-1] - 1):  # the sign of side x g / accounts at the bound between tiers k and k + 1
        beyond = cp.side * (cushion + (cp.side * upper[..., k] - below[..., k + 1])) < 0
        r, off = jnp.where(beyond, rate[..., k + 1], r), jnp.where(beyond, offset[..., k + 1], off)
    held = units > 0
    root = (off / jnp.where(held, per_account, 1.0) - (m - cp.side * cp.entry)) / (cp.side - r)
    return jnp.where(held, root, -cp.side * jnp.inf)


def triggered_at(cp: CohortParams, prices: jnp.ndarray, mark: jnp.ndarray) -> jnp.ndarray:
    """Cohorts whose equity is below maintenance at ``mark`` (N, V): (N, V, C) bool, from their
    ``trigger_prices`` (N, V, C). It decides as ``newly_triggered`` does for open cohorts not yet in
    liquidation (tests/test_positions.py compares the two on a fine grid of marks)."""
    return jnp.where(cp.side > 0, mark[..., None] < prices, mark[..., None] > prices)


def trigger_weight(cp: CohortParams, units: jnp.ndarray, price: jnp.ndarray, check: jnp.ndarray | None,
                   temperature: jnp.ndarray, shape: str = "sigmoid") -> jnp.ndarray:
    """Smooth liquidation trigger (N, V, C) in [0, 1] of the margin shortfall (maintenance - equity) per unit
    of notional over ``temperature`` (a fraction of notional): ``shape`` "sigmoid", sigmoid(shortfall / T),
    or "ramp", the one-sided :func:`ramp.ramp` (0 at or above maintenance, as the hard rule, 1 from a
    shortfall of T on). Both tend to the hard rule as T goes to 0."""
    held = units > RESIDUAL * cp.units0  # a cohort with a residue of its units left counts as closed
    u = jnp.where(held, units, 1.0)  # the double where: no 0/0 (or overflowing tangents) in the other branch
    z = (maintenance(cp, u, price) - equity(cp, u, price, check)) / (u * price[..., None]) / temperature
    return jnp.where(held, ramp(z) if shape == "ramp" else jax.nn.sigmoid(z), 0.0)


def open_notional(cp: CohortParams, units: jnp.ndarray, price: jnp.ndarray) -> jnp.ndarray:
    """Units x ``price`` (quote currency) of each cohort (N, V, C); 0 for a cohort with only a residue of its
    units left, which counts as closed."""
    return jnp.where(units > RESIDUAL * cp.units0, units * price[..., None], 0.0)


def bankruptcy_price(cp: CohortParams, value: jnp.ndarray | None = None) -> jnp.ndarray:
    """Price at which a cohort's equity is zero, for collateral ``value`` per unit (default: as posted)."""
    return cp.entry - cp.side * (cp.margin_per_unit if value is None else value)


def execution_fraction(lp: LiquidationParams, queue_notional: jnp.ndarray, depth: jnp.ndarray,
                       law: str) -> jnp.ndarray:
    """Share of the liquidation queue executed this step under the order-size cap and collar (N,)."""
    has_collar = jnp.isfinite(lp.collar)
    ratio = jnp.where(has_collar, lp.collar, 0.0) / ONE_PERCENT  # no inf in the product: its tangent would be NaN
    collar_cap = jnp.where(has_collar, depth * (ratio if law == "linear" else ratio**2), jnp.inf)
    cap = jnp.minimum(lp.max_order, collar_cap)
    return jnp.where(queue_notional > cap, safe.ratio(cap, queue_notional, 1.0), 1.0)


def settle_fills(cp: CohortParams, lp: LiquidationParams, ledger: Ledger, filled: jnp.ndarray,
                 fill_price: jnp.ndarray, value: jnp.ndarray | None = None, reval: jnp.ndarray | float = 0.0
                 ) -> Ledger:
    """Book market fills of ``filled`` units (N, V, C) at ``fill_price`` (N, V); collateral ``value``
    per unit, of which ``reval`` is the revaluation of collateral held in an asset."""
    released = equity(cp, filled, fill_price, value)
    notional = filled * fill_price[..., None]
    fee = jnp.minimum(lp.penalty * notional, jnp.maximum(released, 0.0))
    bad = jnp.maximum(-released, 0.0)
    fund = ledger.fund + fixed_sum(fee, -1) - fixed_sum(bad, -1)
    long = cp.side > 0
    return ledger._replace(
        cash=ledger.cash + fixed_sum(jnp.maximum(released, 0.0) - fee, -1),
        realised_pnl=ledger.realised_pnl + fixed_sum(cp.side * filled * (fill_price[..., None] - cp.entry), -1),
        penalties=ledger.penalties + fixed_sum(fee, -1),
        bad_debt=ledger.bad_debt + fixed_sum(bad, -1),
        socialised=ledger.socialised + jnp.maximum(-fund, 0.0),
        liquidated_long=ledger.liquidated_long + fixed_sum(jnp.where(long, notional, 0.0), -1),
        liquidated_short=ledger.liquidated_short + fixed_sum(jnp.where(long, 0.0, notional), -1),
        fund=jnp.maximum(fund, 0.0),
        collateral_pnl=ledger.collateral_pnl + fixed_sum(filled * reval, -1),
    )


def _capacity_ahead(capacity: jnp.ndarray, score: jnp.ndarray, side: jnp.ndarray) -> jnp.ndarray:
    """Units of same-side cohorts ranked ahead of each cohort (N, C): higher score, ties by index."""
    index = jnp.arange(score.shape[-1])
    higher = score[..., :, None] > score[..., None, :]
    tie_first = (score[..., :, None] == score[..., None, :]) & (index[:, None] < index[None, :])
    ahead = (higher | tie_first) & (side[..., :, None] == side[..., None, :])
    return fixed_sum(jnp.where(ahead, capacity[..., :, None], 0.0), -2)


def _side_sum(x: jnp.ndarray, side: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Sums over long and over short cohorts (N,) each."""
    return fixed_sum(jnp.where(side > 0, x, 0.0), -1), fixed_sum(jnp.where(side > 0, 0.0, x), -1)


def adl_weights(rules: Rules, cp: CohortParams, units: jnp.ndarray, queued: jnp.ndarray, fund: jnp.ndarray,
                price: jnp.ndarray, value: jnp.ndarray | None = None, temperature: jnp.ndarray | float = 0.0
                ) -> tuple[jnp.ndarray, jnp.ndarray]:
    """The two tests of auto-deleveraging at ``price``: which cohorts of the ADL queue ``queued`` are
    bankrupt (N, V, C; ``rules.bankrupt``: equity at ``price`` with collateral ``value`` per unit at or below
    zero) and where the insurance ``fund`` (N, V) falls short of their deficit (N, V; ``rules.fund_short``).
    Weights in [0, 1], 0 or 1 with the hard rules; ADL acts only where both are above 0."""
    value = cp.margin_per_unit if value is None else value
    at_mark = equity(cp, units, price, value)
    notional = open_notional(cp, units, price)
    bankrupt = rules.bankrupt(queued, units, at_mark, notional, temperature)
    deficit = fixed_sum(jnp.where(bankrupt > 0, bankrupt * -at_mark, 0.0), -1)
    return bankrupt, rules.fund_short(bankrupt, deficit, fund, fixed_sum(bankrupt * notional, -1), temperature)


def adl_candidates(cp: CohortParams, units: jnp.ndarray, queued: jnp.ndarray, price: jnp.ndarray,
                   value: jnp.ndarray | None = None) -> jnp.ndarray:
    """Paths where auto-deleveraging may act (N,) bool: a cohort of the ADL queue ``queued`` holding units at
    or below zero equity at ``price`` (collateral ``value`` per unit; default: as posted). Both rule sets'
    ``bankrupt`` are 0 elsewhere, so ADL acts only on these paths. The test needs no sum over cohorts;
    ``adl_weights``'s fund test does, and run on every path those sums cost about 9 % of the reference day
    on a 2-core CPU."""
    return jnp.any((queued > 0) & (units > 0) & (equity(cp, units, price, value) <= 0.0), (-2, -1))


def auto_deleverage(rules: Rules, cp: CohortParams, units: jnp.ndarray, queued: jnp.ndarray, ledger: Ledger,
                    price: jnp.ndarray, value: jnp.ndarray | None = None, reval: jnp.ndarray | float = 0.0,
                    temperature: jnp.ndarray | float = 0.0) -> tuple[jnp.ndarray, Ledger]:
    """Close bankrupt cohorts at their bankruptcy price against profitable opposite cohorts.

    Applies only on paths whose insurance fund cannot cover the bankrupt cohorts'
    negative equity at ``price`` (the two tests are ``rules.bankrupt`` and
    ``rules.fund_short``; both are weights in [0, 1], 0 or 1 with the hard rules, as is
    ``queued``, the ADL queue ``rules.adl_queue``). Counterparties are
    taken highest rank first and closed at the unit-weighted bankruptcy price of
    the side they absorb; a bankrupt side is closed pro rata to what they absorb.
    With the smooth rules a cohort's weight scales what ADL closes of it, and the rest
    stays in the liquidation queue (``temperature``: the width of the relaxations).

    Returns:
        units after ADL (N, C) and the updated ledger.
    """
    value = cp.margin_per_unit if value is None else value
    bankrupt, exhausted = adl_weights(rules, cp, units, queued, ledger.fund, price, value, temperature)
    exhausted = exhausted[..., None]
    long = cp.side > 0
    bankrupt = exhausted * bankrupt
    pnl = cp.side * (price[..., None] - cp.entry)
    eligible = jnp.where((units > 0) & (pnl > 0), exhausted * (1.0 - queued), 0.0)
    # BitMEX ranking: PnL percentage of the entry value x effective leverage (notional / equity).
    score = jnp.where(eligible > 0, pnl / cp.entry * (price[..., None] / (value + pnl)), -jnp.inf)
    capacity = eligible * units
    need_long, need_short = _side_sum(bankrupt * units, cp.side)
    need = jnp.where(long, need_short[..., None], need_long[..., None])  # what each counterparty side absorbs
    taken = jnp.clip(need - _capacity_ahead(capacity, score, cp.side), 0.0, capacity)
    by_longs, by_shorts = _side_sum(taken, cp.side)
    share_long = safe.ratio(by_shorts, need_long)
    share_short = safe.ratio(by_longs, need_short)
    closed = bankrupt * units * jnp.where(long, share_long[..., None], share_short[..., None])
    bankrupt_at = bankruptcy_price(cp, value)
    b_units = closed * bankrupt_at
    value_long, value_short = _side_sum(b_units, cp.side)
    avg_long = safe.ratio(value_long, by_shorts)
    avg_short = safe.ratio(value_short, by_longs)
    absorbed_price = jnp.where(long, avg_short[..., None], avg_long[..., None])
    realised = cp.side * closed * (bankrupt_at - cp.entry) + cp.side * taken * (absorbed_price - cp.entry)
    adl_long, adl_short = value_long, value_short
    ledger = ledger._replace(
        cash=ledger.cash + fixed_sum(taken * (value + cp.side * (absorbed_price - cp.entry)), -1),
        collateral_pnl=ledger.collateral_pnl + fixed_sum((closed + taken) * reval, -1),
        realised_pnl=ledger.realised_pnl + fixed_sum(realised, -1),
        adl_notional=ledger.adl_notional + adl_long + adl_short,
        liquidated_long=ledger.liquidated_long + adl_long,
        liquidated_short=ledger.liquidated_short + adl_short,
    )
    return units - closed - taken, ledger


def _end_value(params, static, state) -> tuple[jnp.ndarray, jnp.ndarray | float]:
    """Collateral per unit at the horizon (N, V, C), funding included, and its revaluation part."""
    cp = params.positions.cohorts
    value = cp.margin_per_unit + state.funding.adj
    if static.collateral.pricing is None:
        return value, 0.0
    reval = collateral.revaluation(params, static, state.collateral.y_c)
    return value + reval, reval


def _trader_equity(params, static, state, summary):
    cp, ledger = params.positions.cohorts, state.positions.ledger
    value, _ = _end_value(params, static, state)
    open_equity = fixed_sum(equity(cp, state.positions.units, params.price.s0 * jnp.exp(state.price.y), value), -1)
    return fixed_sum(ledger.cash + open_equity, -1)


def _trader_pnl(params, static, state, summary):
    cp, ledger = params.positions.cohorts, state.positions.ledger
    s_end = params.price.s0 * jnp.exp(state.price.y)
    open_pnl = fixed_sum(cp.side * state.positions.units * (s_end[..., None] - cp.entry), -1)
    return fixed_sum(ledger.realised_pnl + open_pnl, -1)


def _collateral_pnl(params, static, state, summary):
    ledger = state.positions.ledger
    if static.collateral.pricing is None:
        return fixed_sum(ledger.collateral_pnl + 0.0, -1)
    _, reval = _end_value(params, static, state)
    return fixed_sum(ledger.collateral_pnl + fixed_sum(state.positions.units * reval, -1), -1)


def _ledger(field: str, venue: bool = False):
    """Compute function of a ledger field: summed over venues, or per venue."""
    if venue:
        return lambda p, s, st, su: getattr(st.positions.ledger, field)
    return lambda p, s, st, su: fixed_sum(getattr(st.positions.ledger, field), -1)


OUTPUTS = (
    Output("liquidated_long", "quote currency", "notional of long positions liquidated", _ledger("liquidated_long")),
    Output("liquidated_short", "quote currency", "notional of short positions liquidated",
           _ledger("liquidated_short")),
    Output("bad_debt", "quote currency", "negative equity left by liquidations", _ledger("bad_debt")),
    Output("insurance_fund", "quote currency", "insurance fund at the horizon", _ledger("fund")),
    Output("adl_notional", "quote currency", "notional closed by auto-deleveraging", _ledger("adl_notional")),
    Output("socialised_loss", "quote currency", "bad debt neither the fund nor ADL covered", _ledger("socialised")),
    Output("penalties", "quote currency", "liquidation penalties paid to the insurance fund", _ledger("penalties")),
    Output("trader_equity", "quote currency", "traders' returned cash plus open equity at the horizon",
           _trader_equity),
    Output("trader_pnl", "quote currency", "traders' realised plus unrealised PnL", _trader_pnl),
    Output("funding_long", "quote currency", "funding received by long cohorts (negative: paid)",
           _ledger("funding_long")),
    Output("funding_short", "quote currency", "funding received by short cohorts (negative: paid)",
           _ledger("funding_short")),
    Output("collateral_pnl", "quote currency",
           "revaluation of collateral held in an asset (negative: depeg loss)", _collateral_pnl),
    Output("fund_exhausted_step", "step index", "first step ending with the insurance fund at zero (-1: none)",
           lambda p, s, st, su: su.problems.fund_exhausted_step),
    Output("venue_liquidated_long", "quote currency", "notional of long positions liquidated on the venue",
           _ledger("liquidated_long", True), per_venue=True),
    Output("venue_liquidated_short", "quote currency", "notional of short positions liquidated on the venue",
           _ledger("liquidated_short", True), per_venue=True),
    Output("venue_bad_debt", "quote currency", "negative equity left by liquidations on the venue",
           _ledger("bad_debt", True), per_venue=True),
    Output("venue_insurance_fund", "quote currency", "the venue's insurance fund at the horizon",
           _ledger("fund", True), per_venue=True),
)
SERIES = (
    Series("liquidation", "quote currency", "notional liquidated since the previous time point",
           lambda p, s, st: fixed_sum(st.positions.ledger.liquidated_long + st.positions.ledger.liquidated_short, -1),
           cumulative=True),
)
PROBLEMS = (
    Problem("fund_exhausted_step", "insurance fund", "the insurance fund was exhausted",
            "this is an outcome, not an error: later bad debt went to ADL or socialised loss", fatal=False),
)
