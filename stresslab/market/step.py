"""One time step of the simulated market: named phases, each a short function with one job.

Arrays carry a leading path axis N and a venue axis V (cohorts (N, V, C)); venues
share the exogenous fundamental and are linked by arbitrage and the index. A step:

1. ``open_step``: the fundamental moves (diffusion, jumps, gaps, volatility spikes); books
   recover, market makers withdraw and kill switches pull depth; breakers say which venues
   trade; the haircut and the mark's fixed part are set;
2. ``pre_flow``: sell programs, arbitrage, volatility/VaR-limited traders, trend followers, dip
   buyers and noise traders send their orders (none on halted venues);
3. ``margin_check``: margins at the mark; auto-deleveraging of bankrupt cohorts the fund cannot cover;
4. ``cascade``: intra-step cascade rounds (``clearing.py``) on the venues that trade;
5. the price band (``Rules.band``): orders beyond it do not execute, then a pause;
6. ``settle``: liquidation fills at the step's average price, penalties, bad debt, insurance
   fund, seized collateral sold (only on the paths with a fill, ``compact.py``);
7. ``after_trade``: dealers re-hedge, book impact and depth consumption, breakers fire on the
   step's price, funding accrues and is paid at interval ends, programs and stops book what executed;
8. ``observe``: online per-path summaries and problem flags.

During a halt nothing trades: queued liquidations, hedges and programs wait, the book
recovers and the fundamental moves; on reopening the queue executes at once. Every
discontinuous decision is a method of ``static.rules`` (``rules.py``): the hard exchange
rules for runs, their relaxations for calibration.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from stresslab.market import (
    arbitrage,
    breakers,
    clearing,
    collateral,
    compact,
    dealers,
    defensive,
    dip_buyers,
    funding,
    haircuts,
    liquidity,
    momentum,
    noise_traders,
    oracle,
    positions,
    price,
    sell_program,
)
from stresslab.market.parts import Parts
from stresslab.market.reduce import fixed_sum

MECHANISMS = (
    ("price", price), ("book", liquidity), ("programs", sell_program), ("positions", positions),
    ("dealers", dealers), ("funding", funding), ("arbitrage", arbitrage), ("breakers", breakers),
    ("haircuts", haircuts), ("collateral", collateral), ("oracle", oracle), ("defensive", defensive),
    ("momentum", momentum), ("dip_buyers", dip_buyers),
    ("noise_traders", noise_traders),
)
"""The mechanisms this step composes, by the name of their part in ``Params``, ``Static``, the state
and the summary. A mechanism module has ``build(config, grid) -> (params, static)``; with state,
``init(params, static, n)``; with online reductions, ``init_summary(params, static, n)``; and the
``OUTPUTS``, ``SERIES`` and ``PROBLEMS`` it contributes (``outputs.py``)."""
ADL_BATCH = 32
"""Paths per batch of auto-deleveraging: it runs only on the paths where it acts, a bankrupt cohort in the queue
and the fund short of its deficit (compact.py)."""
FILL_BATCH = 128
"""Paths per batch of liquidation fills: they are booked only on the paths with a fill (compact.py)."""
FLOOR_SLACK = 1e-6
"""A move within this relative distance of ``clearing.MAX_MOVE`` counts as hitting the bound."""


class Opening(NamedTuple):
    """What a step starts from, per venue (N, V) unless said: ``y_fund`` fundamental log-price (N,);
    ``book`` after recovery; ``base`` depth after withdrawal and kill switches; ``depth`` available;
    ``y_base`` pre-flow log-price; ``options`` the options book's terms (or None); ``trading`` the
    rules' trading share and ``open_`` its hard view; ``vol`` realised volatility per year at the step's
    start; ``haircut`` in force; ``mark_fixed`` the mark's fixed source."""

    y_fund: jnp.ndarray
    book: liquidity.LiquidityState
    base: jnp.ndarray
    depth: jnp.ndarray
    y_base: jnp.ndarray
    options: dealers.OptionTerms | None
    trading: jnp.ndarray
    open_: jnp.ndarray
    vol: jnp.ndarray
    haircut: jnp.ndarray
    mark_fixed: jnp.ndarray


def open_step(p: Parts, static: Parts, state: Parts, t: jnp.ndarray, draws: jnp.ndarray) -> Opening:
    """Phase 1: the fundamental's move, the books, who trades, the haircut and the mark's fixed part."""
    dt = static.grid.dt_years
    y_fund = state.price.fund + price.exogenous_return(p.price, t, draws, dt, static.price.max_jumps)
    book = liquidity.recover(p.book, state.book)
    vol = liquidity.vol(state.book)
    base = liquidity.baseline_depth(p.book, book)
    if static.defensive.n_kill:
        base = base * static.rules.kill_switches(p.defensive, vol)
    depth = base * (1.0 - book.consumed)
    y_base = y_fund[..., None] + book.permanent + book.transient
    options = None
    if static.dealers.book == "options":
        options = dealers.option_terms(p.dealers, p.price.s0, (t + 1).astype(y_fund.dtype) * dt)
    rules = static.rules
    trading = (rules.trading(state.breakers) if static.breakers.enabled
               else rules.none_halted(y_base.shape, y_base.dtype))
    haircut = state.haircuts.haircut
    if static.haircuts.enabled:
        haircut = haircuts.update(p.haircuts, haircut, haircuts.target(p.haircuts, vol, depth / p.book.depth))
    mark_fixed = oracle.fixed_source(static.oracle, y_fund, y_base)
    return Opening(y_fund, book, base, depth, y_base, options, trading, rules.open(trading), vol, haircut, mark_fixed)


def pre_flow(p: Parts, static: Parts, state: Parts, o: Opening, t: jnp.ndarray, draws: jnp.ndarray):
    """Phase 2: orders sent before the step's cascade. Returns the step's ``Flow``, what each sell
    program sent (N, P), and the state with the trend followers' and dip buyers' positions updated."""
    program_sent, exogenous = sell_program.due(p.programs, state.programs, t)
    if static.arbitrage.reference is not None:
        exogenous = exogenous + arbitrage.flows(p.arbitrage, static.arbitrage.reference, o.y_fund, o.y_base,
                                                o.depth, static.book.impact)
    held = state.defensive.units
    units = held
    if static.defensive.n_defensive:
        cut = defensive.risk_targets(p.defensive, held, o.vol, p.price.s0 * jnp.exp(o.y_base))
        exogenous = exogenous + fixed_sum(p.defensive.side * (cut - held), -1) * p.price.s0 * jnp.exp(o.y_base)
        units = jnp.where(o.open_[..., None], cut, held)
    exogenous, state = momentum.pre_flow(p, static, state, o, t, exogenous)
    exogenous, state = dip_buyers.pre_flow(p, static, state, o, exogenous)
    exogenous = noise_traders.pre_flow(p, static, t, draws, exogenous)
    exogenous = static.rules.gate(o.trading, exogenous)
    y_c = state.collateral.y_c
    if static.collateral.pricing is not None:
        y_c = collateral.pre_flow(p.collateral, y_c, t)
    f = clearing.Flow(o.y_base, exogenous, o.depth if static.book.enabled else jnp.full_like(o.depth, jnp.inf),
                      state.positions.units, state.dealers.hedge, o.options, o.mark_fixed, state.oracle.mark, y_c,
                      o.haircut, state.funding.adj, units, state.price.peak, state.price.trough)
    return f, program_sent, state


def margin_check(p: Parts, static: Parts, state: Parts, o: Opening, f: clearing.Flow):
    """Phase 3: margins at the step's opening mark, then auto-deleveraging where the fund falls short.

    Returns the flow with the cohorts' units after ADL, the ledger, the liquidation weights (N, V, C) and the
    step's triggers (``Rules.triggers``, for those units)."""
    margin0 = clearing.margin(p, static, f, f.y_c_base)
    mark0 = p.price.s0 * jnp.exp(clearing.mark(p, static, f, static.rules.keep(o.trading, o.y_base, state.price.y)))
    triggers = clearing.triggers(p, static, f.units, margin0.check)
    in_liq = clearing.liquidation_weights(p, static, triggers, state.positions.in_liq, mark0)
    ledger = state.positions.ledger
    if not static.positions.adl:
        return f, ledger, in_liq, triggers
    cp = p.positions.cohorts
    can_adl = static.rules.adl_queue(in_liq, o.open_)
    # ADL acts where a bankrupt cohort is in the queue and the fund falls short of its deficit. The fund test
    # sums over cohorts, so it runs only on the paths with a bankrupt cohort in the queue (positions.adl_candidates),
    # and the ranking (cohorts squared per path) only on those where it acts.
    temperature = p.rules.temperature

    def acts_on(_, units, queued, fund, mark, value):
        bankrupt, short = positions.adl_weights(static.rules, cp, units, queued, fund, mark, value, temperature)
        return jnp.any((bankrupt > 0) & (short[..., None] > 0), (-2, -1))

    def adl(held, queued, mark, value, reval):
        units, ledger = positions.auto_deleverage(static.rules, cp, held[0], queued, held[1], mark, value, reval,
                                                  temperature)
        return units, ledger, clearing.triggers(p, static, units, held[2].check)

    candidates = positions.adl_candidates(cp, f.units, can_adl, mark0, margin0.value)
    acts = compact.on_paths(candidates, acts_on, jnp.zeros_like(candidates), f.units, can_adl, ledger.fund, mark0,
                            margin0.value, batch=ADL_BATCH)
    units, ledger, triggers = compact.on_paths(acts, adl, (f.units, ledger, triggers), can_adl, mark0, margin0.value,
                                               margin0.reval, batch=ADL_BATCH)
    return f._replace(units=units), ledger, in_liq, triggers


def cascade(p: Parts, static: Parts, state: Parts, o: Opening, f: clearing.Flow, in_liq: jnp.ndarray,
            triggers: positions.Triggers) -> clearing.Cleared:
    """Phase 4: cascade rounds on the venues that trade (no book: the queue trades at the pre-flow price).

    The liquidation weights carried to the next step blend by the traded share (``Rules.keep``): a venue
    that traded part of the step keeps that part of what its rounds triggered."""
    if not static.book.enabled:
        return clearing.no_book(p, f, in_liq, state.defensive.stopped)
    c = clearing.cascade(p, static, f, in_liq, state.defensive.stopped, static.rules.rounds_on(o.trading),
                         triggers)
    return c._replace(in_liq=static.rules.keep(o.trading[..., None], c.in_liq, in_liq))


class Settled(NamedTuple):
    """After the band and the fills: traded log-price ``y`` (N, V), ``scale`` the share of the flow the band
    let through, ``breached`` the band, ``fill`` price, cohort ``units``, ``ledger``, collateral ``y_c``."""

    y: jnp.ndarray
    scale: jnp.ndarray | float
    breached: jnp.ndarray
    fill: jnp.ndarray
    units: jnp.ndarray
    ledger: positions.Ledger
    y_c: jnp.ndarray


def settle(p: Parts, static: Parts, state: Parts, o: Opening, f: clearing.Flow, c: clearing.Cleared,
           ledger: positions.Ledger) -> Settled:
    """Phases 5 and 6: the price band, then liquidation fills at the step's average price."""
    rules = static.rules
    y, scale, breached = rules.band(p.breakers, static.breakers, o.trading, c.y, state.price.y, o.y_base, f.depth,
                                    static.book.impact)
    fill = clearing.fill_price(p, f, y)
    frac = rules.keep(o.trading, clearing.execution_fraction(p, static, f, c.queue, fill), 0.0) * scale

    def fills(held, solved, frac, fill, f):
        units, ledger, _ = held
        filled = solved * units * frac[..., None]
        cp = p.positions.cohorts
        y_c = clearing.collateral_after(p, static, f, fixed_sum(filled * cp.margin_per_unit * p.collateral.share, -1))
        m = clearing.margin(p, static, f, y_c)
        ledger = positions.settle_fills(cp, p.positions.liquidation, ledger, filled, fill, m.value, m.reval)
        return units - filled, ledger, y_c

    # booked only on the paths with a fill (compact.py): in most steps only a few paths liquidate. The options
    # book's terms have no path axis (and fills do not use them): they are left out of the gathered flow.
    units, ledger, y_c = compact.on_paths(jnp.any(c.queue.total_units * frac > 0, -1), fills,
                                          (f.units, ledger, f.y_c_base), c.solved, frac, fill,
                                          f._replace(options=None), batch=FILL_BATCH)
    return Settled(y, scale, breached, fill, units, ledger, y_c)


def after_trade(p: Parts, static: Parts, state: Parts, o: Opening, f: clearing.Flow, c: clearing.Cleared,
                s: Settled, program_sent: jnp.ndarray, t: jnp.ndarray) -> tuple[Parts, jnp.ndarray]:
    """Phase 7: dealers, book, breakers, funding, programs and defensive traders after the step's trade.

    Returns the new state and the notional defensive traders traded this step (N, V)."""
    rules, dt = static.rules, static.grid.dt_years
    y = rules.keep(o.trading, s.y, state.price.y)
    hedge = state.dealers.hedge
    local = None if c.local is None else clearing.book_at(p, static, f, c, y, o.trading)
    if static.dealers.book is not None:
        hedge = rules.keep(o.trading, dealers.target_hedge(p.dealers, static.dealers.book, y, o.options, local),
                           hedge)
    step_return = y - state.price.y
    book = o.book
    if static.book.enabled:
        flow, _ = clearing.total_flow(p, static, f, c.queue, y, local)
        move = rules.keep(o.trading, y - o.y_base, 0.0)
        book = liquidity.after_trade(p.book, book, move, rules.keep(o.trading, flow * s.scale, 0.0), o.base,
                                     step_return, dt)
    breaker_state = state.breakers
    if static.breakers.enabled:
        breaker_state = rules.breakers(p.breakers, static.breakers, state.breakers, o.trading, s.breached, y,
                                       liquidity.vol(book), p.rules.temperature)
    fund_state, ledger = pay_funding(p, static, state, f, y, o.y_fund, s, t)
    mark = clearing.mark(p, static, f, y) if static.oracle.smoothing else state.oracle.mark
    defensive_state, sold = defensive_after(p, state, o, f, c, s)
    return state.replace(
        price=price.PriceState(o.y_fund, y, jnp.maximum(state.price.peak, y), jnp.minimum(state.price.trough, y)),
        book=book,
        programs=sell_program.after_trade(p.programs, state.programs, program_sent, o.trading * s.scale),
        positions=positions.PositionState(s.units, c.in_liq, ledger),
        dealers=dealers.DealerState(hedge),
        funding=fund_state,
        breakers=breaker_state,
        haircuts=haircuts.HaircutState(o.haircut),
        collateral=collateral.CollateralState(s.y_c),
        oracle=state.oracle._replace(mark=mark),
        defensive=defensive_state,
    ), sold


def defensive_after(p: Parts, state: Parts, o: Opening, f: clearing.Flow, c: clearing.Cleared, s: Settled
                    ) -> tuple[defensive.DefensiveState, jnp.ndarray]:
    """Stopped populations sell what the band let through; stops hold only where the venue traded.

    Returns their state and the notional they traded this step (N, V): risk-target cuts and stop fills,
    at the fill price."""
    stop_fill = jnp.where(c.stopped & o.open_[..., None], f.defensive_units, 0.0) * jnp.asarray(s.scale)[..., None]
    sold = jnp.abs(fixed_sum(p.defensive.side * (state.defensive.units - f.defensive_units + stop_fill), -1)) * s.fill
    stopped = jnp.where(o.open_[..., None], c.stopped, state.defensive.stopped)
    return defensive.DefensiveState(f.defensive_units - stop_fill, stopped), sold


def pay_funding(p: Parts, static: Parts, state: Parts, f: clearing.Flow, y, y_fund, s: Settled, t):
    """Funding premium accrues every step and is paid at the end of each interval (``funding.pay``)."""
    fund_state, ledger = state.funding, s.ledger
    if not static.funding.every:
        return fund_state, ledger
    fund_state = fund_state._replace(premium_sum=fund_state.premium_sum + funding.premium(y, y_fund[..., None]))
    mark_now = p.price.s0 * jnp.exp(clearing.mark(p, static, f, y))

    def pay(fs, led, units, mark_now):
        fs, long_in, short_in = funding.pay(p.funding, fs, p.positions.cohorts.side, units, mark_now,
                                            static.funding.every)
        return fs, led._replace(funding_long=led.funding_long + long_in, funding_short=led.funding_short + short_in)

    return jax.lax.cond((t + 1) % static.funding.every == 0, pay, lambda fs, led, *_: (fs, led), fund_state, ledger,
                        s.units, mark_now)


def _first(step: jnp.ndarray, happened: jnp.ndarray, t: jnp.ndarray) -> jnp.ndarray:
    """Keep the first step at which ``happened`` held (-1 until then)."""
    return jnp.where((step < 0) & happened, t, step)


def observe(p: Parts, static: Parts, state: Parts, new: Parts, summary: Parts, o: Opening, c: clearing.Cleared,
            sold: jnp.ndarray, t: jnp.ndarray) -> Parts:
    """Phase 8: fold the step into the online per-path summaries and problem flags."""
    y, ledger, book = new.price.y, new.positions.ledger, new.book
    unstable = (jnp.any((c.phi >= 1.0) & o.open_, -1) if static.book.impact == "linear"
                else jnp.zeros_like(o.y_fund, bool))
    floored = jnp.any((jnp.abs(y - o.y_base) >= clearing.MAX_MOVE * (1.0 - FLOOR_SLACK)) & o.open_, -1)
    finite = (jnp.all(jnp.isfinite(y), -1) & jnp.all(jnp.isfinite(o.depth), -1)
              & jnp.all(jnp.isfinite(new.dealers.hedge), -1) & jnp.all(jnp.isfinite(ledger.fund), -1))
    fund_out = jnp.any((ledger.fund <= 0.0) & (p.positions.liquidation.fund0 > 0), -1)
    problems = summary.problems
    return summary.replace(
        price=price.summarise(summary.price, y, y - state.price.y, t),
        book=liquidity.BookSummary(jnp.minimum(summary.book.min_depth_ratio,
                                               liquidity.available_ratio(p, static, book))),
        haircuts=haircuts.summarise(summary.haircuts, o.haircut),
        funding=funding.summarise(summary.funding, new.funding, y, o.y_fund),
        collateral=collateral.summarise(summary.collateral, static, new.collateral.y_c),
        defensive=defensive.DefensiveSummary(summary.defensive.sold + sold),
        problems=clearing.ProblemSummary(
            unstable_step=_first(problems.unstable_step, unstable, t),
            rounds_exhausted=problems.rounds_exhausted + jnp.any(c.exhausted, -1).astype(jnp.int32),
            floor_step=_first(problems.floor_step, floored, t),
            nonfinite_step=_first(problems.nonfinite_step, ~finite, t),
            fund_exhausted_step=_first(problems.fund_exhausted_step, fund_out, t),
        ),
    )


def market_step(params: Parts, static: Parts, state: Parts, summary: Parts, t: jnp.ndarray, draws: jnp.ndarray
                ) -> tuple[Parts, Parts]:
    """Advance every path by one step ``t`` (phases in the module docstring); ``draws`` (N, n_draws) uniforms."""
    o = open_step(params, static, state, t, draws)
    f, program_sent, state = pre_flow(params, static, state, o, t, draws)
    f, ledger, in_liq, triggers = margin_check(params, static, state, o, f)
    c = cascade(params, static, state, o, f, in_liq, triggers)
    s = settle(params, static, state, o, f, c, ledger)
    new, sold = after_trade(params, static, state, o, f, c, s, program_sent, t)
    return new, observe(params, static, state, new, summary, o, c, sold, t)
