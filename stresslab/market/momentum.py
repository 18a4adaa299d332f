"""Trend followers (momentum traders): sell after a fall, buy after a rise — an amplifier of flash crashes.

The population watches the traded log-price return over the last ``window`` steps,
r = y(start of step t) - y(start of step t - window) (before the run: the start price).
When the price fell by more than ``threshold`` (r < log(1 - threshold)) it wants to be
short ``capital`` of notional; after a rise of more than ``threshold``
(r > log(1 + threshold)) long ``capital``; otherwise it holds its position. It trades
toward that target with market orders at most ``max_trade`` notional per step (all at
once without a speed limit), at the step's pre-flow price, as pre-flow orders on its
venue, and only while the venue trades. Money is in quote currency, positions in units.
Whether a signal fires is a rules decision (``Rules.signal``): hard, or a sigmoid of the
log-return's excess over the threshold with the calibration temperature.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from stresslab.market.outputs import Output
from stresslab.market.reduce import fixed_sum


class MomentumParams(NamedTuple):
    """capital: (V,) notional of the position taken on a signal, on the population's venue (0 elsewhere).
    threshold: return over the window that fires a signal, a fraction.  max_trade: notional per step (inf: none)."""

    capital: jnp.ndarray
    threshold: jnp.ndarray
    max_trade: jnp.ndarray


@dataclass(frozen=True)
class MomentumStatic:
    """enabled: trend followers present.  window: look-back, steps."""

    enabled: bool
    window: int


class MomentumState(NamedTuple):
    """past: traded log-price at the start of each of the last ``window`` steps, slot t % window (N, V, W).
    units: position, units (N, V), long > 0.  traded: notional traded so far (N, V)."""

    past: jnp.ndarray
    units: jnp.ndarray
    traded: jnp.ndarray


def build(config, grid) -> tuple[MomentumParams, MomentumStatic]:
    m, arr = config.momentum, grid.arr
    params = MomentumParams(
        capital=arr(np.asarray(grid.one_hot(m.venue)) * (m.capital if m.enabled else 0.0)),
        threshold=arr(m.threshold),
        max_trade=arr(grid.per_step(m.speed)),
    )
    return params, MomentumStatic(enabled=m.enabled, window=grid.steps_for(m.window) if m.enabled else 0)


def init(params, static, n: int) -> MomentumState:
    dtype, v = params.price.s0.dtype, static.grid.n_venues
    zeros = jnp.zeros((n, v), dtype)
    return MomentumState(jnp.zeros((n, v, static.momentum.window), dtype), zeros, zeros)


def signal(params, rules, window_return: jnp.ndarray) -> jnp.ndarray:
    """Signal in [-1, 1] (N, V): +1 after a rise of more than the threshold, -1 after such a fall, else 0."""
    p, temperature = params.momentum, params.rules.temperature
    up = rules.signal(window_return - jnp.log1p(p.threshold), temperature)
    down = rules.signal(jnp.log1p(-p.threshold) - window_return, temperature)
    return up - down


def pre_flow(params, static, state, opening, t: jnp.ndarray, exogenous: jnp.ndarray):
    """Add the trend followers' orders in step ``t`` to the step's pre-flow notional ``exogenous`` (N, V), buy > 0.

    ``opening`` is the step's ``step.Opening`` (pre-flow log-price ``y_base``, ``trading`` share).
    Returns the new pre-flow notional and the state with their position and price history updated.
    """
    if not static.momentum.enabled:
        return exogenous, state
    s, p, rules = state.momentum, params.momentum, static.rules
    slot = jnp.mod(t, static.momentum.window)
    lag = jnp.take(s.past, slot, axis=-1)
    y_prev = state.price.y
    sig = signal(params, rules, y_prev - lag)
    price_now = params.price.s0 * jnp.exp(opening.y_base)
    up, down = jnp.maximum(sig, 0.0), jnp.maximum(-sig, 0.0)
    held = p.capital / price_now
    target = s.units + up * (held - s.units) + down * (-held - s.units)
    limit = p.max_trade / price_now
    trade = jnp.clip(target - s.units, -limit, limit)
    booked = rules.keep(opening.trading, trade, 0.0)  # what executes; the step gates the order once (Rules.gate)
    new = MomentumState(past=s.past.at[..., slot].set(y_prev), units=s.units + booked,
                        traded=s.traded + jnp.abs(booked) * price_now)
    return exogenous + trade * price_now, state.replace(momentum=new)


OUTPUTS = (
    Output("momentum_traded", "quote currency", "notional traded by trend followers",
           lambda p, s, st, su: fixed_sum(st.momentum.traded, -1)),
)
