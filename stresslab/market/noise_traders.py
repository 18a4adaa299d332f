"""Noise traders: two-way market orders of random size every step — the churn of a busy market.

In step t, on every venue, they send one market order of notional ``size * sqrt(dt / 1 min) * m(t) * Z``
(quote currency, buy > 0): ``size`` is the standard deviation of one minute's order, Z a standard normal
drawn independently per path, venue and step (its own columns of the step's uniforms, so the other
draws do not change when noise traders are switched on), and m(t) the product of the volatility spikes
live in step t (``price.spike_multiplier``; 1 when ``follow_spikes`` is off), so the churn is busiest when
the day is. The orders go through the book like any other pre-flow order (only while the venue trades):
their impact is mostly transient (``liquidity.permanent_fraction``) and decays with
``liquidity.recovery_half_life``, so they add minute-scale moves in both directions that largely revert —
the large up and down minutes of a crash day — without a drift; they consume depth like any flow and can
trigger liquidations. Their position is not kept: many traders who come and go, no inventory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import jax.numpy as jnp
from jax.scipy.special import ndtri

from stresslab.market import price

SECONDS_PER_MINUTE = 60.0


class NoiseTraderParams(NamedTuple):
    """scale: standard deviation of one step's order on each venue, quote currency (scalar)."""

    scale: jnp.ndarray


@dataclass(frozen=True)
class NoiseTraderStatic:
    """enabled: noise traders present.  follow_spikes: their size follows the volatility spikes.
    n_draws: uniforms per path and step (one per venue when enabled)."""

    enabled: bool
    follow_spikes: bool
    n_draws: int


def build(config, grid) -> tuple[NoiseTraderParams, NoiseTraderStatic]:
    n = config.noise_traders
    scale = n.size * math.sqrt(grid.dt_seconds / SECONDS_PER_MINUTE) if n.enabled else 0.0
    return (NoiseTraderParams(scale=grid.arr(scale)),
            NoiseTraderStatic(enabled=n.enabled, follow_spikes=n.follow_spikes,
                              n_draws=grid.n_venues if n.enabled else 0))


def orders(params, static, t: jnp.ndarray, draws: jnp.ndarray) -> jnp.ndarray:
    """The step's orders (N, V), buy > 0, from ``draws`` (N, V) uniforms in (0, 1)."""
    size = params.noise_traders.scale
    if static.noise_traders.follow_spikes:
        size = size * price.spike_multiplier(params.price, t)
    return size * ndtri(draws)


def pre_flow(params, static, t: jnp.ndarray, draws: jnp.ndarray, exogenous: jnp.ndarray) -> jnp.ndarray:
    """Add the noise traders' orders to the step's pre-flow notional ``exogenous`` (N, V); ``draws`` are the
    step's uniforms (N, n_draws of the model), of which this mechanism reads the columns after the price's."""
    if not static.noise_traders.enabled:
        return exogenous
    first = static.price.n_draws
    return exogenous + orders(params, static, t, draws[:, first:first + static.noise_traders.n_draws])
