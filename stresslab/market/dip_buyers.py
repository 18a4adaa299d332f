"""Dip buyers (value traders): buy after a large dislocation and hold — what stops and reverses a flash crash.

The population watches the traded price's drawdown from its running peak at the start of the step,
d = y(start of step) - peak (log terms, <= 0). When the price stands more than ``threshold`` below
its peak (d < log(1 - threshold)) it decides to buy, once: from then on it spends what is left of
its budget ``capital`` (notional) with market orders of at most ``max_trade`` notional per step
(all at once without a speed limit), at the step's pre-flow price, as pre-flow orders on its venue
and only while the venue trades, whether or not the price rebounds meanwhile. It holds what it
bought to the end of the run: it buys on a horizon longer than the crash. Money is in quote
currency, positions in units. Whether the signal fires is a rules decision (``Rules.signal``):
hard, or a sigmoid of the drawdown's excess over the threshold with the calibration temperature.

This is the buy-side interest that returned after CME's Stop Logic pause on 6 May 2010 and
absorbed the rest of the sell program while prices rose (CFTC-SEC report, 30 September 2010).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from stresslab.market.outputs import Output
from stresslab.market.reduce import fixed_sum


class DipBuyerParams(NamedTuple):
    """capital: (V,) notional bought on a signal, on the population's venue (0 elsewhere), quote currency.
    threshold: drawdown from the running peak that fires the signal, a fraction.
    max_trade: notional bought per step (inf: no limit)."""

    capital: jnp.ndarray
    threshold: jnp.ndarray
    max_trade: jnp.ndarray


@dataclass(frozen=True)
class DipBuyerStatic:
    """enabled: dip buyers present."""

    enabled: bool


class DipBuyerState(NamedTuple):
    """units: position, units (N, V), >= 0.  bought: notional bought so far, quote currency (N, V).
    fired: whether they decided to buy (N, V), in [0, 1] (the largest signal so far)."""

    units: jnp.ndarray
    bought: jnp.ndarray
    fired: jnp.ndarray


def build(config, grid) -> tuple[DipBuyerParams, DipBuyerStatic]:
    d, arr = config.dip_buyers, grid.arr
    params = DipBuyerParams(
        capital=arr(np.asarray(grid.one_hot(d.venue)) * (d.capital if d.enabled else 0.0)),
        threshold=arr(d.threshold),
        max_trade=arr(grid.per_step(d.speed)),
    )
    return params, DipBuyerStatic(enabled=d.enabled)


def init(params, static, n: int) -> DipBuyerState:
    zeros = jnp.zeros((n, static.grid.n_venues), params.price.s0.dtype)
    return DipBuyerState(zeros, zeros, zeros)


def signal(params, rules, drawdown: jnp.ndarray) -> jnp.ndarray:
    """Signal in [0, 1] (N, V): 1 where the log drawdown from the peak (<= 0) is deeper than the threshold."""
    return rules.signal(jnp.log1p(-params.dip_buyers.threshold) - drawdown, params.rules.temperature)


def pre_flow(params, static, state, opening, exogenous: jnp.ndarray):
    """Add the dip buyers' orders to the step's pre-flow notional ``exogenous`` (N, V), buy > 0.

    ``opening`` is the step's ``step.Opening`` (pre-flow log-price ``y_base``, ``trading`` share). The order is
    added whole: the step gates all pre-flow orders by the trading share (``Rules.gate``); the state books
    the share that executes. Returns the new pre-flow notional and the state with their position updated."""
    if not static.dip_buyers.enabled:
        return exogenous, state
    s, p = state.dip_buyers, params.dip_buyers
    fired = jnp.maximum(s.fired, signal(params, static.rules, state.price.y - state.price.peak))
    price_now = params.price.s0 * jnp.exp(opening.y_base)
    # at most the signal's share of the budget in all, so that a relaxed signal below the threshold spends
    # next to nothing instead of a share of what is left, step after step
    spend = jnp.minimum(jnp.maximum(fired * p.capital - s.bought, 0.0), p.max_trade)
    booked = static.rules.keep(opening.trading, spend, 0.0)  # what executes; the step gates the order once
    new = DipBuyerState(units=s.units + booked / price_now, bought=s.bought + booked, fired=fired)
    return exogenous + spend, state.replace(dip_buyers=new)


OUTPUTS = (
    Output("dip_bought", "quote currency", "notional bought by dip buyers",
           lambda p, s, st, su: fixed_sum(st.dip_buyers.bought, -1)),
)
