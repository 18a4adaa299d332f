"""The mark price margin checks use: the venue's last traded price, an index, or spot; optionally smoothed.

"index" is the median of the venues' pre-flow prices and the exogenous spot price;
"spot" is the exogenous fundamental alone; "last" is the venue's own clearing price
in each cascade round. With smoothing, the mark is an exponential moving average
(per-step weight ``alpha`` on the previous mark) of the chosen source, in log-price.
"""

from __future__ import annotations

import jax.numpy as jnp


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
