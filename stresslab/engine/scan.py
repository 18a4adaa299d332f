"""The time loop of one chunk of paths: ``lax.scan`` over steps, recording every ``record_every``.

Memory is O(paths): the carry holds per-path state and online reductions; the
only per-time output is the bounded set of recorded points.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from stresslab.engine.keys import path_keys, step_uniforms
from stresslab.market import collateral, positions
from stresslab.market.params import Params, Static
from stresslab.market.reduce import fixed_sum
from stresslab.market.step import MarketState, Summary, depth_ratio_after, initial_state, market_step


def _record(params: Params, static: Static, state: MarketState) -> dict[str, jnp.ndarray]:
    """Recorded series at one time point (first venue): price, available depth ratio, cumulative liquidations."""
    ledger = state.ledger
    depth = depth_ratio_after(params, static, state.book, jnp.sqrt(state.book.variance))
    return {
        "price": params.price.s0 * jnp.exp(state.y[..., 0]),
        "depth_ratio": depth[..., 0],
        "liquidated": fixed_sum(ledger.liquidated_long + ledger.liquidated_short, -1),
    }


def _finish(params: Params, static: Static, state: MarketState, summary: Summary) -> dict[str, jnp.ndarray]:
    """Per-path outputs at the end of the horizon: prices from the first venue, money summed over venues,
    and per-venue outputs (``venue_*``, (N, V)) when there are several venues."""
    s0 = params.price.s0
    cp = params.cohorts
    s_end = s0 * jnp.exp(state.y)
    ledger = state.ledger
    value = cp.margin_per_unit + state.funding.adj
    reval = 0.0
    if static.collateral is not None:
        c_end = collateral.mark(static.collateral, state.y_c)[..., None]
        reval = cp.margin_per_unit * params.collateral.share * (c_end - 1.0)
        value = value + reval
    open_equity = fixed_sum(positions.equity(cp, state.units, s_end, value), -1)
    open_pnl = fixed_sum(cp.side * state.units * (s_end[..., None] - cp.entry), -1)
    open_reval = fixed_sum(state.units * reval, -1) if static.collateral is not None else 0.0
    years = static.n_steps * static.dt_years
    halted = state.breakers.halted_steps.astype(s_end.dtype) * static.dt_seconds
    depth = jnp.maximum(-jnp.expm1(summary.min_y), 0.0)
    trough_h = jnp.maximum(summary.min_haircut, 1e-12)

    def total(x):
        return fixed_sum(x, -1)

    out = {
        "cascade_depth": depth[..., 0],
        "min_price": s0 * jnp.exp(summary.min_y[..., 0]),
        "final_price": s_end[..., 0],
        "liquidated_long": total(ledger.liquidated_long),
        "liquidated_short": total(ledger.liquidated_short),
        "bad_debt": total(ledger.bad_debt),
        "insurance_fund": total(ledger.fund),
        "adl_notional": total(ledger.adl_notional),
        "socialised_loss": total(ledger.socialised),
        "penalties": total(ledger.penalties),
        "realized_vol": jnp.sqrt(summary.sum_r2[..., 0] / years),
        "min_depth_ratio": summary.min_depth_ratio[..., 0],
        "trader_equity": total(ledger.cash + open_equity),
        "trader_pnl": total(ledger.realised_pnl + open_pnl),
        "funding_long": total(ledger.funding_long),
        "funding_short": total(ledger.funding_short),
        "collateral_pnl": total(ledger.collateral_pnl + open_reval),
        "min_funding_rate": summary.min_rate[..., 0],
        "max_funding_rate": summary.max_rate[..., 0],
        "halted_time": halted[..., 0],
        "halt_count": state.breakers.halts[..., 0],
        "max_haircut": summary.max_haircut[..., 0],
        "mean_haircut": summary.haircut_sum[..., 0] / static.n_steps,
        "haircut_ratio": (summary.max_haircut / trough_h)[..., 0],
        "min_collateral_price": jnp.exp(summary.min_y_c[..., 0]),
        "defensive_sold": total(summary.defensive_sold),
        "min_basis": summary.min_basis[..., 0],
        "unstable_step": summary.unstable_step,
        "rounds_exhausted": summary.rounds_exhausted,
        "floor_step": summary.floor_step,
        "nonfinite_step": summary.nonfinite_step,
        "fund_exhausted_step": summary.fund_exhausted_step,
        "time_to_trough": _seconds_after(summary.trough_step, static, -1),
        "recovery_time": _seconds_after(summary.recovery_step, static, summary.trough_step),
    }
    if static.n_venues > 1:
        out.update({
            "venue_cascade_depth": depth,
            "venue_min_price": s0 * jnp.exp(summary.min_y),
            "venue_final_price": s_end,
            "venue_liquidated_long": ledger.liquidated_long,
            "venue_liquidated_short": ledger.liquidated_short,
            "venue_bad_debt": ledger.bad_debt,
            "venue_insurance_fund": ledger.fund,
            "venue_halted_time": halted,
            "venue_min_collateral_price": jnp.exp(summary.min_y_c),
            "venue_min_basis": summary.min_basis,
        })
    return out


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
        return carry, _record(params, static, carry[0])

    carry = initial_state(params, static, chunk)
    first = _record(params, static, carry[0])
    carry, blocks = jax.lax.scan(block, carry, jnp.arange(static.n_blocks, dtype=jnp.int32))
    series = [{k: v[None] for k, v in first.items()}, blocks]
    if static.remainder:
        steps = static.n_blocks * static.record_every + jnp.arange(static.remainder, dtype=jnp.int32)
        carry, _ = jax.lax.scan(one_step, carry, steps)
        series.append({k: v[None] for k, v in _record(params, static, carry[0]).items()})
    recorded = {k: jnp.concatenate([s[k] for s in series]) for k in first}
    return _finish(params, static, *carry), recorded
