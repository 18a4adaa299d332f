"""The time loop of one chunk of paths: ``lax.scan`` over steps, recording every ``record_every``.

Memory is O(paths): the carry holds per-path state and online reductions; the
only per-time output is the bounded set of recorded points.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from stresslab.engine.keys import path_keys, step_uniforms
from stresslab.market import liquidity, positions
from stresslab.market.params import Params, Static
from stresslab.market.reduce import fixed_sum
from stresslab.market.step import MarketState, Summary, initial_state, market_step


def _record(params: Params, state: MarketState) -> dict[str, jnp.ndarray]:
    """Recorded series at one time point: price, available depth ratio, cumulative liquidations."""
    return {
        "price": params.price.s0 * jnp.exp(state.y),
        "depth_ratio": liquidity.depth_ratio(params.liquidity, state.book),
        "liquidated": state.ledger.liquidated_long + state.ledger.liquidated_short,
    }


def _finish(params: Params, static: Static, state: MarketState, summary: Summary) -> dict[str, jnp.ndarray]:
    """Per-path outputs at the end of the horizon."""
    s0 = params.price.s0
    s_end = s0 * jnp.exp(state.y)
    ledger = state.ledger
    open_equity = fixed_sum(positions.equity(params.cohorts, state.units, s_end), -1)
    open_pnl = fixed_sum(params.cohorts.side * state.units * (s_end[..., None] - params.cohorts.entry), -1)
    years = static.n_steps * static.dt_years
    return {
        "cascade_depth": jnp.maximum(-jnp.expm1(summary.min_y), 0.0),
        "min_price": s0 * jnp.exp(summary.min_y),
        "final_price": s_end,
        "liquidated_long": ledger.liquidated_long,
        "liquidated_short": ledger.liquidated_short,
        "bad_debt": ledger.bad_debt,
        "insurance_fund": ledger.fund,
        "adl_notional": ledger.adl_notional,
        "socialised_loss": ledger.socialised,
        "penalties": ledger.penalties,
        "realized_vol": jnp.sqrt(summary.sum_r2 / years),
        "min_depth_ratio": summary.min_depth_ratio,
        "trader_equity": ledger.cash + open_equity,
        "trader_pnl": ledger.realised_pnl + open_pnl,
        "unstable_step": summary.unstable_step,
        "rounds_exhausted": summary.rounds_exhausted,
        "floor_step": summary.floor_step,
        "nonfinite_step": summary.nonfinite_step,
        "fund_exhausted_step": summary.fund_exhausted_step,
        "time_to_trough": _seconds_after(summary.trough_step, static, -1),
        "recovery_time": _seconds_after(summary.recovery_step, static, summary.trough_step),
    }


def _seconds_after(step: jnp.ndarray, static: Static, since: jnp.ndarray | int) -> jnp.ndarray:
    """Seconds from the end of step ``since`` (-1: the start) to the end of ``step``; NaN if ``step`` is -1."""
    elapsed = (step - since).astype(jnp.dtype(static.dtype)) * static.dt_seconds
    return jnp.where(step >= 0, elapsed, jnp.nan)


@partial(jax.jit, static_argnames=("static", "chunk"))
def simulate_chunk(params: Params, static: Static, seed_key: jax.Array, first_index: jnp.ndarray,
                   chunk: int) -> tuple[dict[str, jnp.ndarray], dict[str, jnp.ndarray]]:
    """Simulate paths ``first_index .. first_index + chunk - 1``.

    Returns:
        per-path outputs {name: (chunk,)} and recorded series {name: (T_rec, chunk)}.
    """
    keys = path_keys(seed_key, first_index, chunk)
    dtype = jnp.dtype(static.dtype)

    def one_step(carry, t):
        state, summary = carry
        draws = step_uniforms(keys, t, static.n_draws, dtype)
        return market_step(params, static, state, summary, t, draws), None

    def block(carry, b):
        steps = b * static.record_every + jnp.arange(static.record_every, dtype=jnp.int32)
        carry, _ = jax.lax.scan(one_step, carry, steps)
        return carry, _record(params, carry[0])

    carry = initial_state(params, static, chunk)
    first = _record(params, carry[0])
    carry, blocks = jax.lax.scan(block, carry, jnp.arange(static.n_blocks, dtype=jnp.int32))
    series = [{k: v[None] for k, v in first.items()}, blocks]
    if static.remainder:
        steps = static.n_blocks * static.record_every + jnp.arange(static.remainder, dtype=jnp.int32)
        carry, _ = jax.lax.scan(one_step, carry, steps)
        series.append({k: v[None] for k, v in _record(params, carry[0]).items()})
    recorded = {k: jnp.concatenate([s[k] for s in series]) for k in first}
    return _finish(params, static, *carry), recorded
