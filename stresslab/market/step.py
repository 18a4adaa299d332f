"""One time step of the simulated market, composing the mechanisms in a visible order.

Order within a step (all paths at once, arrays with a leading path axis N):

1. exogenous fundamental move (diffusion, jumps, gaps, volatility spikes);
2. book resilience: transient impact and consumed depth decay; depth after withdrawal;
3. scheduled sell-program flow;
4. margin check at the pre-flow price; auto-deleveraging of bankrupt cohorts the insurance fund cannot cover;
5. intra-step cascade rounds: solve the price that clears sell-program, liquidation
   and dealer-hedge flow through the book (Newton on the impact equation), check
   margins at that price, add newly triggered cohorts, repeat until no new
   liquidation or ``cascade_rounds`` is reached;
6. settle: liquidation fills at the step's average price, penalties, bad debt,
   insurance fund; book the impact and depth consumption; dealers re-hedge.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from stresslab.market import dealers, liquidity, positions, price, sell_program
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


class MarketState(NamedTuple):
    """Scan carry: the state of every path (fixed shapes and dtypes).

    y_fund: fundamental log-price relative to s0 (N,).  y: traded log-price (N,).
    book: order-book state.  remaining: sell-program notional left (N, P).
    units: open units per cohort (N, C).  in_liq: cohort under liquidation (N, C).
    hedge: dealer hedge, dollars (constant gamma) or units (options) (N,).
    ledger: money flows.
    """

    y_fund: jnp.ndarray
    y: jnp.ndarray
    book: liquidity.LiquidityState
    remaining: jnp.ndarray
    units: jnp.ndarray
    in_liq: jnp.ndarray
    hedge: jnp.ndarray
    ledger: positions.Ledger


class Summary(NamedTuple):
    """Online per-path reductions (N,) each.

    min_y: lowest traded log-price.  sum_r2: sum of squared traded log returns.
    min_depth_ratio: lowest available depth over the configured depth.
    unstable_step: first step whose hedging feedback had no stable solution (-1: none).
    rounds_exhausted: steps whose cascade needed more than ``cascade_rounds`` rounds.
    floor_step: first step whose flow moved the log-price by the bound MAX_MOVE (-1: none).
    nonfinite_step: first step with a non-finite price, depth, hedge or fund (-1: none).
    fund_exhausted_step: first step that ended with the insurance fund at zero (-1: none).
    trough_step: step at whose end the traded price was lowest (-1: never below the start).
    recovery_step: first step after the trough whose price regained half of the fall
        from the start, in log terms (-1: not yet).
    """

    min_y: jnp.ndarray
    sum_r2: jnp.ndarray
    min_depth_ratio: jnp.ndarray
    unstable_step: jnp.ndarray
    rounds_exhausted: jnp.ndarray
    floor_step: jnp.ndarray
    nonfinite_step: jnp.ndarray
    fund_exhausted_step: jnp.ndarray
    trough_step: jnp.ndarray
    recovery_step: jnp.ndarray


def initial_state(params: Params, static: Static, n: int) -> tuple[MarketState, Summary]:
    dtype = params.price.s0.dtype
    zeros = jnp.zeros((n,), dtype)
    units = jnp.broadcast_to(params.cohorts.units0, (n, static.n_cohorts)).astype(dtype)
    hedge = zeros
    if static.dealer_book is not None:
        start = jnp.zeros((), dtype)
        hedge = zeros + dealers.target_hedge(params.dealers, static.dealer_book, zeros, params.price.s0, start)
    state = MarketState(
        y_fund=zeros,
        y=zeros,
        book=liquidity.initial_state(params.liquidity, n),
        remaining=jnp.broadcast_to(params.sell.total, (n, static.n_programs)).astype(dtype),
        units=units,
        in_liq=jnp.zeros((n, static.n_cohorts), bool),
        hedge=hedge,
        ledger=positions.initial_ledger(params.liquidation, n),
    )
    never = jnp.full((n,), -1, jnp.int32)
    summary = Summary(zeros, zeros, zeros + 1.0, never, jnp.zeros((n,), jnp.int32), never, never, never, never, never)
    return state, summary


class _Flow(NamedTuple):
    """Everything the clearing equation needs that is fixed within a step."""

    y_base: jnp.ndarray
    exogenous: jnp.ndarray
    depth: jnp.ndarray
    units: jnp.ndarray
    hedge: jnp.ndarray
    t_years: jnp.ndarray


class _Queue(NamedTuple):
    """Liquidation queue summed over cohorts (N,): net signed units (long > 0) and total units."""

    net_units: jnp.ndarray
    total_units: jnp.ndarray


def _queue(params: Params, f: _Flow, in_liq: jnp.ndarray) -> _Queue:
    queue = jnp.where(in_liq, f.units, 0.0)
    return _Queue(fixed_sum(params.cohorts.side * queue, -1), fixed_sum(queue, -1))


def _fill_price(params: Params, f: _Flow, y: jnp.ndarray) -> jnp.ndarray:
    """Average execution price of the step's market orders: the geometric mid of the pre-flow and clearing prices."""
    return params.price.s0 * jnp.exp(0.5 * (f.y_base + y))


def _execution_fraction(params: Params, static: Static, f: _Flow, q: _Queue, fill: jnp.ndarray) -> jnp.ndarray:
    """Share of the queue executed this step at fill price ``fill`` under the engine's caps (N,)."""
    return positions.execution_fraction(params.liquidation, q.total_units * fill, f.depth, static.impact)


def _total_flow(params: Params, static: Static, f: _Flow, q: _Queue, y: jnp.ndarray):
    """Signed notional flow at log-price ``y`` (N,) and its derivative d flow / d y."""
    fill = _fill_price(params, f, y)
    frac = _execution_fraction(params, static, f, q, fill)
    liq = -q.net_units * frac * fill
    flow, slope = f.exogenous + liq, jnp.where(frac < 1.0, 0.0, 0.5 * liq)
    if static.dealer_book is not None:
        hedge, hedge_slope = dealers.hedge_flow(params.dealers, static.dealer_book, f.hedge, y,
                                                params.price.s0, f.t_years)
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


def _cascade(params: Params, static: Static, f: _Flow, in_liq: jnp.ndarray):
    """Intra-step cascade rounds.

    Returns:
        clearing log-price y; cohorts whose flow is in y and their queue; all
        cohorts in liquidation; feedback phi at y; whether rounds ran out.
    """
    cohorts = params.cohorts

    def cond(carry):
        k, *_, active = carry
        return (k < static.cascade_rounds) & jnp.any(active)

    def body(carry):
        k, y, solved, queue, queued, phi, active = carry
        new_queue = _queue(params, f, queued)
        y_new, phi_new = _clear(params, static, f, new_queue, y)
        y = jnp.where(active, y_new, y)
        phi = jnp.where(active, phi_new, phi)
        solved = jnp.where(active[..., None], queued, solved)
        queue = _Queue(*(jnp.where(active, new, old) for new, old in zip(new_queue, queue, strict=True)))
        new = positions.newly_triggered(cohorts, f.units, queued, params.price.s0 * jnp.exp(y)) & active[..., None]
        return k + 1, y, solved, queue, queued | new, phi, active & jnp.any(new, -1)

    zeros = jnp.zeros_like(f.y_base)
    init = (0, f.y_base, in_liq, _Queue(zeros, zeros), in_liq, zeros, jnp.ones(zeros.shape, bool))
    _, y, solved, queue, queued, phi, active = jax.lax.while_loop(cond, body, init)
    return y, solved, queue, queued, phi, active


def _first(step: jnp.ndarray, happened: jnp.ndarray, t: jnp.ndarray) -> jnp.ndarray:
    """Keep the first step at which ``happened`` held (-1 until then)."""
    return jnp.where((step < 0) & happened, t, step)


def market_step(params: Params, static: Static, state: MarketState, summary: Summary,
                t: jnp.ndarray, draws: jnp.ndarray) -> tuple[MarketState, Summary]:
    """Advance every path by one step ``t`` (see the module docstring for the order)."""
    p, dt = params, static.dt_years
    s0 = p.price.s0
    y_fund = state.y_fund + price.exogenous_return(p.price, t, draws, dt, static.max_jumps)
    book = liquidity.recover(p.liquidity, state.book)
    base = liquidity.baseline_depth(p.liquidity, book)
    depth = base * (1.0 - book.consumed)
    y_base = y_fund + book.permanent + book.transient if static.liquidity else y_fund
    exogenous, remaining = sell_program.program_flow(p.sell, state.remaining, t)
    t_years = (t + 1).astype(y_fund.dtype) * dt

    units, ledger = state.units, state.ledger
    s_base = s0 * jnp.exp(y_base)
    newly, bankrupt = positions.margin_status(p.cohorts, units, state.in_liq, s_base)
    in_liq = state.in_liq | newly
    if static.adl:
        units, ledger = jax.lax.cond(
            jnp.any(positions.fund_short(p.cohorts, units, bankrupt, ledger.fund, s_base)),
            lambda u, led: positions.auto_deleverage(p.cohorts, u, in_liq, led, s_base),
            lambda u, led: (u, led),
            units, ledger,
        )

    flow_in = _Flow(y_base, exogenous, depth if static.liquidity else jnp.full_like(depth, jnp.inf),
                    units, state.hedge, t_years)
    if static.liquidity:
        y, solved, queue, in_liq, phi, exhausted = _cascade(p, static, flow_in, in_liq)
    else:
        y, solved, phi, exhausted = y_base, in_liq, jnp.zeros_like(y_base), jnp.zeros_like(y_base, bool)
        queue = _queue(p, flow_in, solved)

    fill_price = _fill_price(p, flow_in, y)
    frac = _execution_fraction(p, static, flow_in, queue, fill_price)

    def settle(units, ledger):
        filled = jnp.where(solved, units, 0.0) * frac[..., None]
        return units - filled, positions.settle_fills(p.cohorts, p.liquidation, ledger, filled, fill_price)

    units, ledger = jax.lax.cond(jnp.any(queue.total_units > 0), settle, lambda u, led: (u, led), units, ledger)

    hedge = state.hedge
    if static.dealer_book is not None:
        hedge = dealers.target_hedge(p.dealers, static.dealer_book, y, s0, t_years)
    step_return = y - state.y
    if static.liquidity:
        flow, _ = _total_flow(p, static, flow_in, queue, y)
        book = liquidity.after_trade(p.liquidity, book, y - y_base, flow, base, step_return, dt)
    unstable = (phi >= 1.0) if static.impact == "linear" else jnp.zeros_like(exhausted)
    new_state = MarketState(y_fund, y, book, remaining, units, in_liq, hedge, ledger)
    floored = jnp.abs(y - y_base) >= MAX_MOVE * (1.0 - 1e-6)
    finite = jnp.isfinite(y) & jnp.isfinite(depth) & jnp.isfinite(hedge) & jnp.isfinite(ledger.fund)
    new_low = y < summary.min_y
    min_y = jnp.where(new_low, y, summary.min_y)
    recovered = (summary.recovery_step < 0) & (summary.trough_step >= 0) & ~new_low & (y >= 0.5 * min_y)
    new_summary = Summary(
        min_y=min_y,
        sum_r2=summary.sum_r2 + step_return**2,
        min_depth_ratio=jnp.minimum(summary.min_depth_ratio, liquidity.depth_ratio(p.liquidity, book)),
        unstable_step=_first(summary.unstable_step, unstable, t),
        rounds_exhausted=summary.rounds_exhausted + exhausted.astype(jnp.int32),
        floor_step=_first(summary.floor_step, floored, t),
        nonfinite_step=_first(summary.nonfinite_step, ~finite, t),
        fund_exhausted_step=_first(summary.fund_exhausted_step, (ledger.fund <= 0.0) & (p.liquidation.fund0 > 0), t),
        trough_step=jnp.where(new_low, t, summary.trough_step),
        recovery_step=jnp.where(new_low, -1, jnp.where(recovered, t, summary.recovery_step)),
    )
    return new_state, new_summary
