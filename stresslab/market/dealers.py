"""Option dealers who delta-hedge: a constant-gamma book, or a Black-Scholes options book.

Constant gamma: dealers' target dollar delta is ``gamma * y / 0.01`` (``y`` the
log-price move from the start), so a 1 % move changes it by ``gamma`` (quote
currency); ``gamma > 0`` means dealers are short gamma and trade with the move.
Options book: dealers hold options (signed quantities in units of the asset) and
target a hedge of minus the book's Black-Scholes delta, in units.
The hedge flow of a step is target minus current hedge, in notional (buy > 0).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
from jax.scipy.special import ndtr

from stresslab.market.liquidity import ONE_PERCENT
from stresslab.market.reduce import fixed_sum

MIN_TAU = 1e-9
"""Years to expiry below which an option is treated as expired."""


class DealerParams(NamedTuple):
    """Attributes:
    gamma: dollar-delta change per 1 % move (constant-gamma book), quote currency.
    strike, expiry (years), quantity (signed units held by dealers), is_call: (O,) options book.
    implied_vol: volatility per year used for the book's greeks.
    """

    gamma: jnp.ndarray
    strike: jnp.ndarray
    expiry: jnp.ndarray
    quantity: jnp.ndarray
    is_call: jnp.ndarray
    implied_vol: jnp.ndarray


def _delta_gamma(p: DealerParams, price: jnp.ndarray, tau: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Book delta (units) and gamma (units per unit price) at ``price`` (N,), ``tau`` (O,) years."""
    alive = tau > MIN_TAU
    safe_tau = jnp.where(alive, tau, 1.0)
    vol_t = jnp.maximum(p.implied_vol * jnp.sqrt(safe_tau), 1e-12)
    s = price[..., None]
    d1 = (jnp.log(s / p.strike) + 0.5 * vol_t**2) / vol_t
    call_delta = ndtr(d1)
    delta = jnp.where(p.is_call, call_delta, call_delta - 1.0)
    gamma = jnp.exp(-0.5 * d1**2) / (jnp.sqrt(2 * jnp.pi) * s * vol_t)
    book_delta = fixed_sum(jnp.where(alive, p.quantity * delta, 0.0), -1)
    book_gamma = fixed_sum(jnp.where(alive, p.quantity * gamma, 0.0), -1)
    return book_delta, book_gamma


def target_hedge(p: DealerParams, book: str, y: jnp.ndarray, s0: jnp.ndarray, t_years: jnp.ndarray) -> jnp.ndarray:
    """Hedge target: dollars (constant gamma) or units (options), (N,)."""
    if book == "constant_gamma":
        return p.gamma * y / ONE_PERCENT
    delta, _ = _delta_gamma(p, s0 * jnp.exp(y), p.expiry - t_years)
    return -delta


def hedge_flow(p: DealerParams, book: str, hedge: jnp.ndarray, y: jnp.ndarray, s0: jnp.ndarray,
               t_years: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Dealer notional flow (buy > 0) to reach the target at log-price ``y``, and d flow / d y."""
    if book == "constant_gamma":
        return p.gamma * y / ONE_PERCENT - hedge, jnp.broadcast_to(p.gamma / ONE_PERCENT, y.shape)
    price = s0 * jnp.exp(y)
    delta, gamma = _delta_gamma(p, price, p.expiry - t_years)
    units = -delta - hedge
    return units * price, (-gamma * price + units) * price
