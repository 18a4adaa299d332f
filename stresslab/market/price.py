"""Exogenous (fundamental) log-price: GBM drift and diffusion, Merton jumps, gaps, volatility spikes.

All functions act on a batch of paths; ``y`` is the log-price relative to the
initial price, ``log(S / S0)``. Rates are per year, ``dt`` in years.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
from jax.scipy.special import ndtri


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


def sigma_at(p: PriceParams, t: jnp.ndarray) -> jnp.ndarray:
    """Volatility per year in step ``t``, spikes applied (scalar)."""
    live = (t >= p.spike_start) & (t < p.spike_end)
    return p.sigma * jnp.prod(jnp.where(live, p.spike_mult, 1.0))


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
