"""One time step of the simulated market, composing the mechanisms in a visible order.

Arrays carry a leading path axis N and a venue axis V (cohorts (N, V, C)); venues
share the exogenous fundamental and are linked by arbitrage and the index. Order
within a step:

1. exogenous fundamental move (diffusion, jumps, gaps, volatility spikes);
2. book resilience, liquidity withdrawal and kill switches; collateral-asset book;
3. whether each venue is halted (circuit breakers); haircut and mark price;
4. pre-flow flows: sell programs, arbitrage, volatility/VaR-limited traders;
5. margin check at the mark; auto-deleveraging of bankrupt cohorts the fund cannot cover;
6. intra-step cascade rounds (trading venues only): solve the price that clears
   program, arbitrage, liquidation, stop-loss and dealer-hedge flow through the
   book (Newton on the impact equation), check margins and stops at that price,
   add what newly triggered, repeat until nothing new or ``cascade_rounds``;
7. price band: orders beyond it do not execute (the step trades to the band edge), then a pause;
8. settle: liquidation fills at the step's average price, penalties, bad debt,
   insurance fund, seized collateral sold; book impact and depth consumption;
   dealers re-hedge;
9. breakers fire on the step's price; funding premium accrues and is paid at interval ends.
During a halt nothing trades: queued liquidations, hedges and programs wait, the
book recovers and the fundamental moves; on reopening the queue executes at once.

With ``Static.smooth`` (calibration) the hard rules are relaxed with width
``Params.temperature``: margin triggers become sigmoid weights of the margin
shortfall (``in_liq`` holds the weight of each cohort in liquidation), breaker
levels fire with sigmoid weights and halts are real-valued countdowns, so a venue
trades a share ``g`` of each step. As the temperature goes to 0 this is the hard model.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from stresslab.market import (
    arbitrage,
    breakers,
    collateral,
    compact,
    dealers,
    defensive,
    funding,
    haircuts,
    liquidity,
    oracle,
    positions,
    price,
)
from stresslab.market.params import Params, Static
from stresslab.market.reduce import fixed_sum

MAX_NEWTON_ITERATIONS = 64
"""Cap on the iterations for the price that clears a step's flow (Newton converges in a few)."""
NEWTON_TOLERANCE = 8.0
"""Convergence when an iteration moves the log-price by at most this many machine epsilons."""
MIN_SLOPE = 0.05
"""Below this slope of the clearing equation Newton falls back to a fixed-point step."""
MAX_MOVE = 10.0
"""Bound on the log-price move caused by one step's flow (an unstable market hits it)."""
ADL_BATCH = 32
"""Paths per batch of auto-deleveraging: it runs only on the paths with a bankrupt cohort in the queue (compact.py)."""
SMOOTH_ROUND_ULPS = 100.0
"""With smooth triggers, cascade rounds stop when no cohort's liquidation weight rises by more than this
many machine epsilons (an early stop leaves a jump of that size in the relaxed objective)."""


class MarketState(NamedTuple):
    """Scan carry: the state of every path (fixed shapes and dtypes).

    y_fund: fundamental (spot) log-price relative to s0 (N,).  y: traded log-price per venue (N, V).
    book: order-book state (N, V).  remaining: sell-program notional left (N, P).
    units: open units per cohort (N, V, C).  in_liq: cohort under liquidation (N, V, C), 1 or 0
    (a weight in [0, 1] with smooth triggers).
    hedge: dealer hedge, dollars (constant gamma) or units (options) (N, V).
    backlog: sell-program notional due but not executed because its venue was halted (N, P).
    ledger: money flows (N, V).  funding: premium and funding received per unit.
    breakers: halts.  haircut: collateral haircut (N, V).  y_c: collateral-asset log-price (N, V).
    mark: smoothed mark log-price (N, V).  defensive_units (N, V, D), stopped (N, V, D): defensive traders.
    peak, trough: running extremes of the traded log-price (N, V).
    """

    y_fund: jnp.ndarray
    y: jnp.ndarray
    book: liquidity.LiquidityState
    remaining: jnp.ndarray
    backlog: jnp.ndarray
    units: jnp.ndarray
    in_liq: jnp.ndarray
    hedge: jnp.ndarray
    ledger: positions.Ledger
    funding: funding.FundingState
    breakers: breakers.BreakerState
    haircut: jnp.ndarray
    y_c: jnp.ndarray
    mark: jnp.ndarray
    defensive_units: jnp.ndarray
    stopped: jnp.ndarray
    peak: jnp.ndarray
    trough: jnp.ndarray


class Summary(NamedTuple):
    """Online per-path reductions.

    Per venue (N, V): min_y lowest traded log-price; sum_r2 sum of squared traded log
    returns; min_depth_ratio lowest available depth over the configured depth;
    max_haircut, min_haircut; min_rate, max_rate funding payment rates; min_y_c lowest
    collateral-asset log-price as margin values it; defensive_sold notional sold (or bought) by defensive traders;
    haircut_sum haircut summed over steps;
    min_basis lowest end-of-step traded price over spot, minus 1.
    Per path (N,): unstable_step first step whose hedging feedback had no stable
    solution (-1: none); rounds_exhausted steps whose cascade needed more than
    ``cascade_rounds`` rounds; floor_step first step whose flow moved the log-price by
    MAX_MOVE; nonfinite_step first step with a non-finite state; fund_exhausted_step
    first step that ended with an insurance fund at zero; trough_step step at whose
    end the first venue's price was lowest (-1: never below the start); recovery_step
    first step after the trough whose price regained half of the fall, in log terms.
    """

    min_y: jnp.ndarray
    sum_r2: jnp.ndarray
    min_depth_ratio: jnp.ndarray
    max_haircut: jnp.ndarray
    min_haircut: jnp.ndarray
    min_rate: jnp.ndarray
    max_rate: jnp.ndarray
    min_y_c: jnp.ndarray
    defensive_sold: jnp.ndarray
    min_basis: jnp.ndarray
    haircut_sum: jnp.ndarray
    unstable_step: jnp.ndarray
    rounds_exhausted: jnp.ndarray
    floor_step: jnp.ndarray
    nonfinite_step: jnp.ndarray
    fund_exhausted_step: jnp.ndarray
    trough_step: jnp.ndarray
    recovery_step: jnp.ndarray


def initial_state(params: Params, static: Static, n: int) -> tuple[MarketState, Summary]:
    dtype = params.price.s0.dtype
    v = static.n_venues
    zeros = jnp.zeros((n, v), dtype)
    units = jnp.broadcast_to(params.cohorts.units0, (n, v, static.n_cohorts)).astype(dtype)
    hedge = zeros
    if static.dealer_book is not None:
        options = None
        if static.dealer_book == "options":
            options = dealers.option_terms(params.dealers, params.price.s0, jnp.zeros((), dtype))
        hedge = zeros + dealers.target_hedge(params.dealers, static.dealer_book, zeros, options)
    h0 = zeros
    if static.haircuts:
        h0 = zeros + haircuts.target(params.haircuts, params.liquidity.vol_ref, jnp.ones((), dtype))
    state = MarketState(
        y_fund=jnp.zeros((n,), dtype),
        y=zeros,
        book=liquidity.initial_state(params.liquidity, n),
        remaining=jnp.broadcast_to(params.sell.total, (n, static.n_programs)).astype(dtype),
        backlog=jnp.zeros((n, static.n_programs), dtype),
        units=units,
        in_liq=jnp.zeros((n, v, static.n_cohorts), dtype),
        hedge=hedge,
        ledger=positions.initial_ledger(params.liquidation, n),
        funding=funding.initial_state(n, v, static.n_cohorts, dtype),
        breakers=breakers.initial_state(n, v, static.n_levels, dtype, static.smooth),
        haircut=h0,
        y_c=zeros,
        mark=zeros,
        defensive_units=jnp.broadcast_to(params.defensive.units0, (n, v, static.n_defensive)).astype(dtype),
        stopped=jnp.zeros((n, v, static.n_defensive), bool),
        peak=zeros,
        trough=zeros,
    )
    never = jnp.full((n,), -1, jnp.int32)
    summary = Summary(
        min_y=zeros, sum_r2=zeros, min_depth_ratio=zeros + 1.0, max_haircut=h0, min_haircut=h0,
        min_rate=zeros, max_rate=zeros, min_y_c=zeros, defensive_sold=zeros, min_basis=zeros, haircut_sum=zeros,
        unstable_step=never, rounds_exhausted=jnp.zeros((n,), jnp.int32), floor_step=never,
        nonfinite_step=never, fund_exhausted_step=never, trough_step=never, recovery_step=never,
    )
    return state, summary


class _Flow(NamedTuple):
    """Everything the clearing equation and the margin checks need that is fixed within a step."""

    y_base: jnp.ndarray
    exogenous: jnp.ndarray
    depth: jnp.ndarray
    units: jnp.ndarray
    hedge: jnp.ndarray
    options: dealers.OptionTerms | None
    mark_fixed: jnp.ndarray
    mark_prev: jnp.ndarray
    y_c_base: jnp.ndarray
    haircut: jnp.ndarray
    adj: jnp.ndarray
    defensive_units: jnp.ndarray
    peak: jnp.ndarray
    trough: jnp.ndarray


class _Queue(NamedTuple):
    """Flow waiting to execute, per venue (N, V): liquidations' net signed units (long > 0) and
    total units, the collateral-asset notional (at the peg) they hold, and defensive stops' net units."""

    net_units: jnp.ndarray
    total_units: jnp.ndarray
    collateral: jnp.ndarray
    stop_units: jnp.ndarray


class _Margin(NamedTuple):
    """Collateral per unit (N, V, C): for margin checks (after the haircut), at value, and its
    revaluation (collateral held in an asset). None when plain posted collateral applies."""

    check: jnp.ndarray | None
    value: jnp.ndarray | None
    reval: jnp.ndarray | float


def _queue(params: Params, f: _Flow, in_liq: jnp.ndarray, stopped: jnp.ndarray) -> _Queue:
    cp = params.cohorts
    queue = in_liq * f.units
    stops = jnp.where(stopped, f.defensive_units, 0.0)
    return _Queue(fixed_sum(cp.side * queue, -1), fixed_sum(queue, -1),
                  fixed_sum(queue * cp.margin_per_unit * params.collateral.share, -1),
                  fixed_sum(params.defensive.side * stops, -1))


def _margin(params: Params, static: Static, f: _Flow, y_c: jnp.ndarray) -> _Margin:
    """Collateral per unit at collateral-asset log-price ``y_c``, with the step's haircut and funding."""
    if static.collateral is None and not static.haircuts and not static.funding_every:
        return _Margin(None, None, 0.0)
    mpu = params.cohorts.margin_per_unit
    reval = 0.0
    posted = mpu
    if static.collateral is not None:
        share = params.collateral.share
        reval = mpu * share * (collateral.mark(static.collateral, y_c)[..., None] - 1.0)
        posted = mpu + reval
    check = posted * (1.0 - f.haircut[..., None]) if static.haircuts else posted
    return _Margin(check + f.adj, posted + f.adj, reval)


def _mark(params: Params, static: Static, f: _Flow, y: jnp.ndarray) -> jnp.ndarray:
    """Mark log-price for margin at the round's clearing log-price ``y`` (N, V)."""
    src = oracle.source(static.mark, y, f.mark_fixed)
    return oracle.smooth(params.oracle_alpha, f.mark_prev, src) if static.smoothing else src


def _fill_price(params: Params, f: _Flow, y: jnp.ndarray) -> jnp.ndarray:
    """Average execution price of the step's market orders: the geometric mid of the pre-flow and clearing prices."""
    return params.price.s0 * jnp.exp(0.5 * (f.y_base + y))


def _execution_fraction(params: Params, static: Static, f: _Flow, q: _Queue, fill: jnp.ndarray) -> jnp.ndarray:
    """Share of the liquidation queue executed this step at fill price ``fill`` under the engine's caps (N, V)."""
    return positions.execution_fraction(params.liquidation, q.total_units * fill, f.depth, static.impact)


def _total_flow(params: Params, static: Static, f: _Flow, q: _Queue, y: jnp.ndarray):
    """Signed notional flow at log-price ``y`` (N, V) and its derivative d flow / d y."""
    fill = _fill_price(params, f, y)
    frac = _execution_fraction(params, static, f, q, fill)
    liq = -q.net_units * frac * fill
    stops = -q.stop_units * fill
    flow, slope = f.exogenous + liq + stops, jnp.where(frac < 1.0, 0.0, 0.5 * liq) + 0.5 * stops
    if static.dealer_book is not None:
        hedge, hedge_slope = dealers.hedge_flow(params.dealers, static.dealer_book, f.hedge, y, params.price.s0,
                                                f.options)
        flow, slope = flow + hedge, slope + hedge_slope
    return flow, slope


def _clear(params: Params, static: Static, f: _Flow, q: _Queue, y: jnp.ndarray):
    """Solve y = y_base + impact(flow(y)) by safeguarded Newton, path by path until converged.

    Where the equation's slope is too small for Newton (strong feedback) a
    fixed-point step is taken instead. Returns (y, feedback phi = d impact / d y).
    """
    tolerance = NEWTON_TOLERANCE * jnp.finfo(y.dtype).eps

    def iterate(y):
        flow, slope = _total_flow(params, static, f, q, y)
        move, dmove = liquidity.impact(flow, f.depth, static.impact)
        fprime = 1.0 - dmove * slope
        newton = fprime > MIN_SLOPE
        y_new = jnp.where(newton, y - (y - f.y_base - move) / jnp.where(newton, fprime, 1.0), f.y_base + move)
        return jnp.clip(y_new, f.y_base - MAX_MOVE, f.y_base + MAX_MOVE), dmove * slope

    def cond(carry):
        k, _, active, _ = carry
        return (k < MAX_NEWTON_ITERATIONS) & jnp.any(active)

    def body(carry):
        k, y, active, phi = carry
        y_new, phi_new = iterate(y)
        converged = jnp.abs(y_new - y) <= tolerance * (1.0 + jnp.abs(y))
        return k + 1, jnp.where(active, y_new, y), active & ~converged, jnp.where(active, phi_new, phi)

    _, y, _, phi = jax.lax.while_loop(cond, body, (0, y, jnp.ones(y.shape, bool), jnp.zeros_like(y)))
    return y, phi


def _collateral_after(params: Params, static: Static, f: _Flow, sold_at_peg: jnp.ndarray) -> jnp.ndarray:
    """Collateral-asset log-price after selling ``sold_at_peg`` (its notional at the peg) of seized collateral."""
    if static.collateral is None:
        return f.y_c_base
    return collateral.after_sale(params.collateral, f.y_c_base, sold_at_peg * jnp.exp(f.y_c_base))


def _triggered(params: Params, static: Static, f: _Flow, queued, stopped, queue: _Queue, y: jnp.ndarray):
    """Liquidation weights of the cohorts (1/0, or smooth) and defensive populations newly stopped at ``y``."""
    margin = _margin(params, static, f, _collateral_after(params, static, f, queue.collateral))
    mark = params.price.s0 * jnp.exp(_mark(params, static, f, y))
    new = _trigger(params, static, f.units, queued, mark, margin.check)
    new_stops = defensive.stopped(params.defensive, f.defensive_units, stopped, y, f.peak, f.trough)
    return new, new_stops


def _cascade(params: Params, static: Static, f: _Flow, in_liq: jnp.ndarray, stopped: jnp.ndarray,
             trading: jnp.ndarray):
    """Intra-step cascade rounds on the venues that trade.

    Returns:
        clearing log-price y; cohorts whose flow is in y, their queue; all cohorts
        in liquidation; defensive populations stopped; feedback phi at y; whether rounds ran out.
    """

    def cond(carry):
        k, *_, active = carry
        return (k < static.cascade_rounds) & jnp.any(active)

    tolerance = SMOOTH_ROUND_ULPS * jnp.finfo(f.y_base.dtype).eps if static.smooth else 0.0

    def body(carry):
        k, y, solved, queue, queued, stops, phi, active = carry
        new_queue = _queue(params, f, queued, stops)
        y_new, phi_new = _clear(params, static, f, new_queue, y)
        y = jnp.where(active, y_new, y)
        phi = jnp.where(active, phi_new, phi)
        solved = jnp.where(active[..., None], queued, solved)
        queue = _Queue(*(jnp.where(active, new, old) for new, old in zip(new_queue, queue, strict=True)))
        weight, new_stops = _triggered(params, static, f, queued, stops, queue, y)
        raised = jnp.where(active[..., None], jnp.maximum(queued, weight), queued)
        new_stops = new_stops & active[..., None]
        grew = jnp.any(raised > queued + tolerance, -1)
        return k + 1, y, solved, queue, raised, stops | new_stops, phi, active & (grew | jnp.any(new_stops, -1))

    zeros = jnp.zeros_like(f.y_base)
    init = (0, f.y_base, in_liq, _Queue(zeros, zeros, zeros, zeros), in_liq, stopped, zeros, trading)
    _, y, solved, queue, queued, stops, phi, active = jax.lax.while_loop(cond, body, init)
    return y, solved, queue, queued, stops, phi, active


def _trigger(params: Params, static: Static, units: jnp.ndarray, in_liq: jnp.ndarray, mark: jnp.ndarray,
             check: jnp.ndarray | None) -> jnp.ndarray:
    """Liquidation weight of each cohort at ``mark`` price: hard (1 for cohorts already in
    liquidation or below maintenance, else 0) or, with ``Static.smooth``, a sigmoid weight."""
    if static.smooth:
        return jnp.maximum(in_liq, positions.trigger_weight(params.cohorts, units, mark, check, params.temperature))
    new = positions.newly_triggered(params.cohorts, units, in_liq >= 0.5, mark, check)
    return jnp.maximum(in_liq, new.astype(in_liq.dtype))


def _keep(static: Static, g: jnp.ndarray, new: jnp.ndarray, old: jnp.ndarray) -> jnp.ndarray:
    """``new`` where the venue traded, ``old`` where it was halted (a blend by the traded share when smooth)."""
    return old + g * (new - old) if static.smooth else jnp.where(g, new, old)


def _first(step: jnp.ndarray, happened: jnp.ndarray, t: jnp.ndarray) -> jnp.ndarray:
    """Keep the first step at which ``happened`` held (-1 until then)."""
    return jnp.where((step < 0) & happened, t, step)


def _vol(book: liquidity.LiquidityState) -> jnp.ndarray:
    """Realised volatility estimate per year (N, V)."""
    return jnp.sqrt(book.variance)


def market_step(params: Params, static: Static, state: MarketState, summary: Summary,
                t: jnp.ndarray, draws: jnp.ndarray) -> tuple[MarketState, Summary]:
    """Advance every path by one step ``t`` (see the module docstring for the order)."""
    p, dt = params, static.dt_years
    s0 = p.price.s0
    y_fund = state.y_fund + price.exogenous_return(p.price, t, draws, dt, static.max_jumps)
    book = liquidity.recover(p.liquidity, state.book)
    vol = _vol(state.book)
    base = liquidity.baseline_depth(p.liquidity, book)
    if static.n_kill:
        base = base * defensive.depth_multiplier(p.defensive, vol)
    depth = base * (1.0 - book.consumed)
    y_base = y_fund[..., None] + book.permanent + book.transient
    options = None
    if static.dealer_book == "options":
        options = dealers.option_terms(p.dealers, s0, (t + 1).astype(y_fund.dtype) * dt)

    trading = breakers.trading_share(state.breakers, static.smooth) if static.breakers else None
    if trading is None:
        trading = jnp.ones(y_base.shape, y_base.dtype) if static.smooth else jnp.ones(y_base.shape, bool)
    open_ = trading > 0.5 if static.smooth else trading  # hard view: the venue trades this step
    halted = ~open_
    haircut = state.haircut
    if static.haircuts:
        wanted = haircuts.target(p.haircuts, vol, depth / p.liquidity.depth)
        haircut = haircuts.update(p.haircuts, state.haircut, wanted)
    mark_fixed = y_base
    if static.mark == "spot":
        mark_fixed = jnp.broadcast_to(y_fund[..., None], y_base.shape)
    elif static.mark == "index":
        mark_fixed = oracle.index(y_fund, y_base)

    # Pre-flow flows: programs, arbitrage, volatility- and VaR-limited traders (none on halted venues).
    live = t >= p.sell.start
    program_exec = jnp.where(live, jnp.minimum(state.remaining, p.sell.per_step + state.backlog), 0.0)
    exogenous = fixed_sum((p.sell.sign * program_exec)[..., None] * p.program_venue, -2)
    if static.arbitrage is not None:
        exogenous = exogenous + arbitrage.flows(p.arbitrage, static.arbitrage, y_fund, y_base, depth, static.impact)
    defensive_units = state.defensive_units
    if static.n_defensive:
        cut = defensive.risk_targets(p.defensive, state.defensive_units, vol, s0 * jnp.exp(y_base))
        exogenous = exogenous + fixed_sum(p.defensive.side * (cut - state.defensive_units), -1) * s0 * jnp.exp(y_base)
        defensive_units = jnp.where(open_[..., None], cut, state.defensive_units)
    exogenous = exogenous * trading if static.smooth else jnp.where(trading, exogenous, 0.0)

    f = _Flow(y_base, exogenous, depth if static.liquidity else jnp.full_like(depth, jnp.inf), state.units,
              state.hedge, options, mark_fixed, state.mark, collateral.pre_flow(p.collateral, state.y_c, t)
              if static.collateral is not None else state.y_c, haircut, state.funding.adj, defensive_units,
              state.peak, state.trough)

    units, ledger = state.units, state.ledger
    margin0 = _margin(p, static, f, f.y_c_base)
    mark0 = s0 * jnp.exp(_mark(p, static, f, jnp.where(halted, state.y, y_base)))
    in_liq = _trigger(p, static, units, state.in_liq, mark0, margin0.check)
    if static.adl:
        can_adl = (in_liq >= 0.5) & open_[..., None]
        # ADL looks at the paths with a bankrupt cohort in the queue; it acts where the fund falls short of them
        bankrupt = can_adl & (units > 0) & (positions.equity(p.cohorts, units, mark0, margin0.value) <= 0.0)

        def adl(held, queued, mark, value, reval):
            return positions.auto_deleverage(p.cohorts, held[0], queued, held[1], mark, value, reval)

        units, ledger = compact.on_paths(jnp.any(bankrupt, (-2, -1)), adl, (units, ledger), can_adl, mark0,
                                         margin0.value, margin0.reval, batch=ADL_BATCH)
        f = f._replace(units=units)

    if static.liquidity:
        y, solved, queue, in_liq, stopped, phi, exhausted = _cascade(p, static, f, in_liq, state.stopped,
                                                                     trading > 0 if static.smooth else trading)
    else:
        y, solved, stopped = y_base, in_liq, state.stopped
        phi, exhausted = jnp.zeros_like(y_base), jnp.zeros_like(y_base, bool)
        queue = _queue(p, f, solved, stopped)

    scale: jnp.ndarray | float = 1.0
    breached = jnp.zeros_like(open_)
    if static.band and not static.smooth:
        y_edge = breakers.band_limit(p.breakers, y, state.y)
        breached = trading & (y_edge != y)
        wanted = liquidity.flow_for_move(y - y_base, f.depth, static.impact)
        allowed = liquidity.flow_for_move(y_edge - y_base, f.depth, static.impact)
        scale = jnp.where(breached, jnp.clip(allowed / jnp.where(wanted == 0, 1.0, wanted), 0.0, 1.0), 1.0)
        y = jnp.where(breached, y_edge, y)
    fill_price = _fill_price(p, f, y)
    frac = _keep(static, trading, _execution_fraction(p, static, f, queue, fill_price), 0.0) * scale
    y_c = f.y_c_base

    def settle(units, ledger, y_c, solved, frac, fill_price, f):
        filled = solved * units * frac[..., None]
        y_c = _collateral_after(p, static, f, fixed_sum(filled * p.cohorts.margin_per_unit * p.collateral.share, -1))
        margin = _margin(p, static, f, y_c)
        ledger = positions.settle_fills(p.cohorts, p.liquidation, ledger, filled, fill_price, margin.value,
                                        margin.reval)
        return units - filled, ledger, y_c

    # Operands are passed explicitly, not closed over: a cond inside scan with closed-over
    # operands has given wrong values (and NaN tangents) on XLA CPU.
    units, ledger, y_c = jax.lax.cond(jnp.any(queue.total_units * frac > 0), settle,
                                      lambda u, led, c, *_: (u, led, c), units, ledger, y_c, solved, frac,
                                      fill_price, f)
    y = _keep(static, trading, y, state.y)
    stop_fill = jnp.where(stopped & open_[..., None], defensive_units, 0.0) * jnp.asarray(scale)[..., None]
    defensive_sold = summary.defensive_sold + jnp.abs(fixed_sum(p.defensive.side * (
        state.defensive_units - defensive_units + stop_fill), -1)) * fill_price
    defensive_units = defensive_units - stop_fill
    stopped = jnp.where(open_[..., None], stopped, state.stopped)
    program_done = fixed_sum(p.program_venue * (trading * scale)[..., None, :], -1)
    remaining = state.remaining - program_exec * program_done
    backlog = program_exec * (1.0 - program_done)  # waits for the venue to reopen, then executes at once

    hedge = state.hedge
    if static.dealer_book is not None:
        hedge = _keep(static, trading, dealers.target_hedge(p.dealers, static.dealer_book, y, options),
                      state.hedge)
    step_return = y - state.y
    if static.liquidity:
        flow, _ = _total_flow(p, static, f, queue, y)
        move = _keep(static, trading, y - y_base, 0.0)
        book = liquidity.after_trade(p.liquidity, book, move, _keep(static, trading, flow * scale, 0.0), base,
                                     step_return, dt)
    breaker_state = state.breakers
    if static.breakers and static.smooth:
        breaker_state = breakers.advance_smooth(p.breakers, static.breaker_reference, state.breakers, trading, y,
                                                _vol(book), p.temperature)
    elif static.breakers:
        breaker_state = breakers.advance(p.breakers, static.breaker_reference, state.breakers, halted, trading,
                                         breached, y, _vol(book))
    fund_state = state.funding
    if static.funding_every:
        fund_state = fund_state._replace(premium_sum=fund_state.premium_sum + funding.premium(y, y_fund[..., None]))
        mark_now = s0 * jnp.exp(_mark(p, static, f, y))

        def pay(fs, led, units, mark_now):
            fs, long_in, short_in = funding.pay(p.funding, fs, p.cohorts.side, units, mark_now, static.funding_every)
            return fs, led._replace(funding_long=led.funding_long + long_in, funding_short=led.funding_short + short_in)

        fund_state, ledger = jax.lax.cond((t + 1) % static.funding_every == 0, pay, lambda fs, led, *_: (fs, led),
                                          fund_state, ledger, units, mark_now)
    mark = _mark(p, static, f, y) if static.smoothing else state.mark
    unstable = jnp.any((phi >= 1.0) & open_, -1) if static.impact == "linear" else jnp.zeros_like(y_fund, bool)
    new_state = MarketState(y_fund, y, book, remaining, backlog, units, in_liq, hedge, ledger, fund_state,
                            breaker_state, haircut, y_c, mark, defensive_units, stopped, jnp.maximum(state.peak, y),
                            jnp.minimum(state.trough, y))
    floored = jnp.any((jnp.abs(y - y_base) >= MAX_MOVE * (1.0 - 1e-6)) & open_, -1)
    finite = (jnp.all(jnp.isfinite(y), -1) & jnp.all(jnp.isfinite(depth), -1) & jnp.all(jnp.isfinite(hedge), -1)
              & jnp.all(jnp.isfinite(ledger.fund), -1))
    new_low = y < summary.min_y
    min_y = jnp.where(new_low, y, summary.min_y)
    lead_low, lead_y, lead_min = new_low[..., 0], y[..., 0], min_y[..., 0]
    recovered = (summary.recovery_step < 0) & (summary.trough_step >= 0) & ~lead_low & (lead_y >= 0.5 * lead_min)
    fund_out = jnp.any((ledger.fund <= 0.0) & (p.liquidation.fund0 > 0), -1)
    new_summary = Summary(
        min_y=min_y,
        sum_r2=summary.sum_r2 + step_return**2,
        min_depth_ratio=jnp.minimum(summary.min_depth_ratio, depth_ratio_after(p, static, book, _vol(book))),
        max_haircut=jnp.maximum(summary.max_haircut, haircut),
        min_haircut=jnp.minimum(summary.min_haircut, haircut),
        min_rate=jnp.minimum(summary.min_rate, fund_state.rate),
        max_rate=jnp.maximum(summary.max_rate, fund_state.rate),
        min_y_c=jnp.minimum(summary.min_y_c, y_c if static.collateral == "internal" else 0.0),
        defensive_sold=defensive_sold,
        min_basis=jnp.minimum(summary.min_basis, funding.premium(y, y_fund[..., None])),
        haircut_sum=summary.haircut_sum + haircut,
        unstable_step=_first(summary.unstable_step, unstable, t),
        rounds_exhausted=summary.rounds_exhausted + jnp.any(exhausted, -1).astype(jnp.int32),
        floor_step=_first(summary.floor_step, floored, t),
        nonfinite_step=_first(summary.nonfinite_step, ~finite, t),
        fund_exhausted_step=_first(summary.fund_exhausted_step, fund_out, t),
        trough_step=jnp.where(lead_low, t, summary.trough_step),
        recovery_step=jnp.where(lead_low, -1, jnp.where(recovered, t, summary.recovery_step)),
    )
    return new_state, new_summary


def depth_ratio_after(params: Params, static: Static, book: liquidity.LiquidityState, vol: jnp.ndarray
                      ) -> jnp.ndarray:
    """Available depth (withdrawal, kill switches, consumption) over the configured depth (N, V)."""
    ratio = liquidity.depth_ratio(params.liquidity, book)
    if static.n_kill:
        ratio = ratio * defensive.depth_multiplier(params.defensive, vol)
    return ratio
