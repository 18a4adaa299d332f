"""The mark price margin checks use: the venue's last traded price, an index, or spot; optionally smoothed.

"index" is the median of the venues' pre-flow prices and the exogenous spot price;
"spot" is the exogenous fundamental alone; "last" is the venue's own clearing price
in each cascade round. With smoothing, the mark is an exponential moving average
(per-step weight ``alpha`` on the previous mark) of the chosen source, in log-price.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax.numpy as jnp


class OracleParams(NamedTuple):
    """alpha: per-step weight on the previous mark (0: no smoothing)."""

    alpha: jnp.ndarray


@dataclass(frozen=True)
class OracleStatic:
    """mark: "last", "index" or "spot".  smoothing: the mark is an EMA."""

    mark: str
    smoothing: bool


class OracleState(NamedTuple):
    """mark: the smoothed mark log-price (N, V) (unused without smoothing)."""

    mark: jnp.ndarray


def build(config, grid) -> tuple[OracleParams, OracleStatic]:
    o = config.oracle
    alpha = grid.decay(o.smoothing) if o.smoothing > 0 else 0.0
    return OracleParams(alpha=grid.arr(alpha)), OracleStatic(mark=o.mark, smoothing=o.smoothing > 0)


def init(params, static, n: int) -> OracleState:
    return OracleState(jnp.zeros((n, static.grid.n_venues), params.price.s0.dtype))


def fixed_source(static: OracleStatic, y_fund: jnp.ndarray, y_base: jnp.ndarray) -> jnp.ndarray:
    """The part of the mark fixed within a step (N, V): spot, the index, or (for "last") the pre-flow price."""
    if static.mark == "spot":
        return jnp.broadcast_to(y_fund[..., None], y_base.shape)
    if static.mark == "index":
        return index(y_fund, y_base)
    return y_base


def mark(p: OracleParams, static: OracleStatic, fixed: jnp.ndarray, previous: jnp.ndarray, y: jnp.ndarray
         ) -> jnp.ndarray:
    """Mark log-price (N, V) at the round's clearing log-price ``y``, smoothed from ``previous`` if configured."""
    src = source(static.mark, y, fixed)
    return smooth(p.alpha, previous, src) if static.smoothing else src


def index(y_fund: jnp.ndarray, y_venues: jnp.ndarray) -> jnp.ndarray:
    """Median of the spot log-price (N,) and the venues' log-prices (N, V), broadcast to (N, V)."""
    constituents = jnp.concatenate([y_fund[..., None], y_venues], axis=-1)
    return jnp.broadcast_to(jnp.median(constituents, axis=-1)[..., None], y_venues.shape)


def source(mode: str, y_round: jnp.ndarray, fixed: jnp.ndarray) -> jnp.ndarray:
    """Unsmoothed mark: the round's price for "last", else the step's fixed index or spot."""
    return y_round if mode == "last" else fixed


def smooth(alpha: jnp.ndarray, previous: jnp.ndarray, new: jnp.ndarray) -> jnp.ndarray:
    """Exponential moving average of the mark log-price (alpha = 0: no smoothing)."""
    return alpha * previous + (1.0 - alpha) * new
