"""Exogenous (fundamental) log-price: GBM drift and diffusion, Merton jumps, gaps, volatility spikes.

All functions act on a batch of paths; ``y`` is the log-price relative to the
initial price, ``log(S / S0)``. Rates are per year, ``dt`` in years.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import jax.numpy as jnp
from jax.scipy.special import ndtri
from scipy.stats import poisson

from stresslab.market.outputs import Output, Series

JUMP_TAIL = 1e-12
"""Probability of more jumps in one step than the kernel draws (chooses ``max_jumps``)."""


class PriceParams(NamedTuple):
    """Exogenous price parameters (array leaves; sweepable).

    Attributes:
        s0: initial price, quote currency.
        drift: drift per year (of the price; the log drift is drift - sigma**2/2).
        sigma: volatility per year.
        jump_intensity: expected jumps per year (0 disables).
        jump_mean, jump_std: normal log-jump size.
        gap_step (G,): step index of each scheduled gap.
        gap_log (G,): log(1 + size) of each gap.
        spike_start, spike_end (V,): step range [start, end) of each volatility spike.
        spike_mult (V,): volatility multiplier during the spike.
    """

    s0: jnp.ndarray
    drift: jnp.ndarray
    sigma: jnp.ndarray
    jump_intensity: jnp.ndarray
    jump_mean: jnp.ndarray
    jump_std: jnp.ndarray
    gap_step: jnp.ndarray
    gap_log: jnp.ndarray
    spike_start: jnp.ndarray
    spike_end: jnp.ndarray
    spike_mult: jnp.ndarray


@dataclass(frozen=True)
class PriceStatic:
    """max_jumps: jumps drawn per step at most (0: no jumps)."""

    max_jumps: int

    @property
    def n_draws(self) -> int:
        """Uniforms drawn per path and step: the diffusion, and with jumps their count and size."""
        return 3 if self.max_jumps else 1


class PriceState(NamedTuple):
    """fund: fundamental (spot) log-price relative to s0 (N,).  y: traded log-price per venue (N, V).
    peak, trough: running extremes of the traded log-price (N, V)."""

    fund: jnp.ndarray
    y: jnp.ndarray
    peak: jnp.ndarray
    trough: jnp.ndarray


class PriceSummary(NamedTuple):
    """min_y: lowest traded log-price (N, V).  sum_r2: sum of squared traded log returns (N, V).
    trough_step: step at whose end the first venue's price was lowest (N,), -1: never below the start.
    recovery_step: first step after the trough whose price regained half of the fall, in log terms (N,)."""

    min_y: jnp.ndarray
    sum_r2: jnp.ndarray
    trough_step: jnp.ndarray
    recovery_step: jnp.ndarray


def build(config, grid) -> tuple[PriceParams, PriceStatic]:
    """The exogenous price of ``config.market`` on ``grid``."""
    mkt = config.market
    gaps = [s for s in mkt.shocks if s.type == "gap"]
    spikes = [s for s in mkt.shocks if s.type == "vol_spike"]
    jumps_on = mkt.jumps.enabled and mkt.jumps.intensity > 0
    max_jumps = int(poisson.isf(JUMP_TAIL, mkt.jumps.intensity * grid.dt_years)) + 2 if jumps_on else 0
    arr = grid.arr
    params = PriceParams(
        s0=arr(mkt.price), drift=arr(mkt.drift), sigma=arr(mkt.sigma),
        jump_intensity=arr(mkt.jumps.intensity if jumps_on else 0.0),
        jump_mean=arr(mkt.jumps.mean), jump_std=arr(mkt.jumps.std),
        gap_step=arr([grid.step_of(g.at) for g in gaps], jnp.int32),
        gap_log=arr([math.log1p(g.size) for g in gaps]),
        spike_start=arr([grid.step_of(v.start) for v in spikes], jnp.int32),
        spike_end=arr([grid.step_of(v.start) + grid.steps_for(v.duration) for v in spikes], jnp.int32),
        spike_mult=arr([v.multiplier for v in spikes]),
    )
    return params, PriceStatic(max_jumps=max_jumps)


def init(params, static, n: int) -> PriceState:
    zeros = jnp.zeros((n, static.grid.n_venues), params.price.s0.dtype)
    return PriceState(fund=jnp.zeros((n,), zeros.dtype), y=zeros, peak=zeros, trough=zeros)


def init_summary(params, static, n: int) -> PriceSummary:
    zeros = jnp.zeros((n, static.grid.n_venues), params.price.s0.dtype)
    never = jnp.full((n,), -1, jnp.int32)
    return PriceSummary(min_y=zeros, sum_r2=zeros, trough_step=never, recovery_step=never)


def summarise(s: PriceSummary, y: jnp.ndarray, step_return: jnp.ndarray, t: jnp.ndarray) -> PriceSummary:
    """Fold the step's traded log-price ``y`` and return (N, V) into the running extremes."""
    new_low = y < s.min_y
    min_y = jnp.where(new_low, y, s.min_y)
    lead_low, lead_y, lead_min = new_low[..., 0], y[..., 0], min_y[..., 0]
    recovered = (s.recovery_step < 0) & (s.trough_step >= 0) & ~lead_low & (lead_y >= 0.5 * lead_min)
    return PriceSummary(
        min_y=min_y, sum_r2=s.sum_r2 + step_return**2,
        trough_step=jnp.where(lead_low, t, s.trough_step),
        recovery_step=jnp.where(lead_low, -1, jnp.where(recovered, t, s.recovery_step)),
    )


def _seconds_after(step: jnp.ndarray, grid, since: jnp.ndarray | int) -> jnp.ndarray:
    """Seconds from the end of step ``since`` (-1: the start) to the end of ``step``; NaN if ``step`` is -1."""
    elapsed = (step - since).astype(jnp.dtype(grid.dtype)) * grid.dt_seconds
    return jnp.where(step >= 0, elapsed, jnp.nan)


def _depth(params, static, state, summary):
    return jnp.maximum(-jnp.expm1(summary.price.min_y), 0.0)


def _realized_vol(params, static, state, summary):
    return jnp.sqrt(summary.price.sum_r2[..., 0] / (static.grid.n_steps * static.grid.dt_years))


OUTPUTS = (
    Output("cascade_depth", "1", "maximum drawdown of the traded price from its start (fraction)",
           lambda p, s, st, su: _depth(p, s, st, su)[..., 0]),
    Output("min_price", "quote currency", "minimum traded price",
           lambda p, s, st, su: p.price.s0 * jnp.exp(su.price.min_y[..., 0])),
    Output("final_price", "quote currency", "traded price at the horizon",
           lambda p, s, st, su: p.price.s0 * jnp.exp(st.price.y[..., 0])),
    Output("realized_vol", "annualised volatility", "realised volatility of traded log returns, annualised",
           _realized_vol),
    Output("time_to_trough", "s", "time from the start to the lowest traded price (NaN: never below the start)",
           lambda p, s, st, su: _seconds_after(su.price.trough_step, s.grid, -1)),
    Output("recovery_time", "s", "time from the trough until the price regained half of the fall, in log terms "
           "(NaN: not within the horizon)",
           lambda p, s, st, su: _seconds_after(su.price.recovery_step, s.grid, su.price.trough_step)),
    Output("venue_cascade_depth", "1", "maximum drawdown of the venue's traded price from its start (fraction)",
           _depth, per_venue=True),
    Output("venue_min_price", "quote currency", "minimum traded price on the venue",
           lambda p, s, st, su: p.price.s0 * jnp.exp(su.price.min_y), per_venue=True),
    Output("venue_final_price", "quote currency", "traded price on the venue at the horizon",
           lambda p, s, st, su: p.price.s0 * jnp.exp(st.price.y), per_venue=True),
)
SERIES = (
    Series("price", "quote currency", "traded price", lambda p, s, st: p.price.s0 * jnp.exp(st.price.y[..., 0])),
)


def spike_multiplier(p: PriceParams, t: jnp.ndarray) -> jnp.ndarray:
    """Product of the volatility spikes' multipliers live in step ``t`` (scalar, 1 when none is)."""
    live = (t >= p.spike_start) & (t < p.spike_end)
    return jnp.prod(jnp.where(live, p.spike_mult, 1.0))


def sigma_at(p: PriceParams, t: jnp.ndarray) -> jnp.ndarray:
    """Volatility per year in step ``t``, spikes applied (scalar)."""
    return p.sigma * spike_multiplier(p, t)


def gap_at(p: PriceParams, t: jnp.ndarray) -> jnp.ndarray:
    """Log-price gap applied in step ``t`` (scalar)."""
    return jnp.sum(jnp.where(p.gap_step == t, p.gap_log, 0.0))


def poisson_cdf(rate: jnp.ndarray, max_jumps: int) -> jnp.ndarray:
    """P(N <= k) for k = 0..max_jumps-1, N ~ Poisson(rate)."""
    k = jnp.arange(1, max_jumps, dtype=rate.dtype)
    pmf0 = jnp.exp(-rate)
    ratios = jnp.concatenate([jnp.ones((1,), rate.dtype), rate / k])
    return jnp.cumsum(pmf0 * jnp.cumprod(ratios))


def exogenous_return(p: PriceParams, t: jnp.ndarray, draws: jnp.ndarray, dt: float,
                     max_jumps: int) -> jnp.ndarray:
    """Fundamental log return over step ``t`` for each path.

    Args:
        draws (N, 1) or (N, 3): uniforms in (0, 1): diffusion, and with jumps the
            jump count (inverse Poisson CDF, exact up to ``max_jumps - 1`` jumps per
            step) and the jump-size normal.
        dt: step in years.
        max_jumps: 0 disables jumps (static).

    Returns:
        (N,) log return.
    """
    sig = sigma_at(p, t)
    dy = (p.drift - 0.5 * sig**2) * dt + sig * jnp.sqrt(dt) * ndtri(draws[:, 0]) + gap_at(p, t)
    if max_jumps:
        cdf = poisson_cdf(p.jump_intensity * dt, max_jumps)
        n = jnp.sum(draws[:, 1:2] > cdf[None, :], axis=1).astype(dy.dtype)
        dy = dy + n * p.jump_mean + jnp.sqrt(n) * p.jump_std * ndtri(draws[:, 2])
    return dy
