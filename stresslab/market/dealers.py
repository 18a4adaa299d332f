"""Option dealers who delta-hedge: a constant-gamma book, or a Black-Scholes options book.

Constant gamma: dealers' target dollar delta is ``gamma * y / 0.01`` (``y`` the
log-price move from the start), so a 1 % move changes it by ``gamma`` (quote
currency); ``gamma > 0`` means dealers are short gamma and trade with the move.
Options book: dealers hold options (signed quantities in units of the asset) and
target a hedge of minus the book's Black-Scholes delta, in units.
The hedge flow of a step is target minus current hedge, in notional (buy > 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from jax import lax

from stresslab.market.liquidity import ONE_PERCENT

MIN_TAU = 1e-9
"""Years to expiry below which an option is treated as expired."""
SQRT_HALF = float(np.sqrt(0.5))
"""N(d) = erfc(-d * SQRT_HALF) / 2."""


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


class OptionTerms(NamedTuple):
    """What the options book's greeks need that is fixed within a step ((V, O) each).

    With ``tau`` the years to expiry and ``vol_t = implied_vol * sqrt(tau)``, an option's
    ``d1`` at log-price ``y`` (relative to ``s0``) is ``intercept + inv_vol * y``, so a
    Newton iteration of the clearing price evaluates no logarithm or square root.
    intercept: (log(s0 / strike) + vol_t**2 / 2) / vol_t.  inv_vol: 1 / vol_t.
    quantity: dealers' signed units (0 once expired).  put: 1 for puts, 0 for calls (delta = N(d1) - put).
    gamma_scale: quantity / (sqrt(2 pi) vol_t): the book's gamma times the price is
    ``sum(gamma_scale * exp(-d1**2 / 2))``, in units.
    """

    intercept: jnp.ndarray
    inv_vol: jnp.ndarray
    quantity: jnp.ndarray
    put: jnp.ndarray
    gamma_scale: jnp.ndarray


@dataclass(frozen=True)
class DealerStatic:
    """book: "constant_gamma" or "options", or None when no dealers hedge."""

    book: str | None


class DealerState(NamedTuple):
    """hedge: dealers' hedge (N, V), dollars (constant gamma) or units (options)."""

    hedge: jnp.ndarray


def build(config, grid) -> tuple[DealerParams, DealerStatic]:
    d, arr = config.dealers, grid.arr
    venue = np.asarray(grid.one_hot(d.venue))
    params = DealerParams(
        gamma=arr(d.gamma * venue),
        strike=arr([o.strike for o in d.options]),
        expiry=arr([o.expiry / grid.seconds_per_year for o in d.options]),
        quantity=arr(venue[:, None] * np.asarray(
            [o.quantity * (-1.0 if o.dealer_position == "short" else 1.0) for o in d.options]).reshape(1, -1)),
        is_call=jnp.asarray([o.type == "call" for o in d.options], bool),
        implied_vol=arr(d.implied_vol if d.implied_vol is not None else config.market.sigma),
    )
    return params, DealerStatic(book=d.book if d.enabled else None)


def init(params, static, n: int) -> DealerState:
    """Dealers start hedged at the initial price."""
    zeros = jnp.zeros((n, static.grid.n_venues), params.price.s0.dtype)
    book = static.dealers.book
    if book is None:
        return DealerState(zeros)
    terms = option_terms(params.dealers, params.price.s0, jnp.zeros((), zeros.dtype)) if book == "options" else None
    return DealerState(zeros + target_hedge(params.dealers, book, zeros, terms))


def option_terms(p: DealerParams, s0: jnp.ndarray, t_years: jnp.ndarray) -> OptionTerms:
    """The options book's per-step constants at ``t_years`` years from the start."""
    tau = p.expiry - t_years
    alive = tau > MIN_TAU
    vol_t = jnp.maximum(p.implied_vol * jnp.sqrt(jnp.where(alive, tau, 1.0)), 1e-12)
    quantity = jnp.where(alive, p.quantity, 0.0)
    return OptionTerms(intercept=(jnp.log(s0 / p.strike) + 0.5 * vol_t**2) / vol_t, inv_vol=1.0 / vol_t,
                       quantity=quantity, put=jnp.where(p.is_call, 0.0, 1.0).astype(quantity.dtype),
                       gamma_scale=quantity / (jnp.sqrt(2 * jnp.pi) * vol_t))


def _delta_gamma(terms: OptionTerms, y: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Book delta (units) and gamma times price (units) at log-price ``y`` (N, V)."""
    delta = gamma_price = jnp.zeros_like(y)
    for o in range(terms.quantity.shape[-1]):  # option by option, in order: no (N, V, O) temporaries
        d1 = terms.intercept[..., o] + terms.inv_vol[..., o] * y
        call_delta = 0.5 * lax.erfc(-SQRT_HALF * d1)  # the normal cdf N(d1), accurate in both tails
        delta = delta + terms.quantity[..., o] * (call_delta - terms.put[..., o])
        gamma_price = gamma_price + terms.gamma_scale[..., o] * jnp.exp(-0.5 * d1 * d1)
    return delta, gamma_price


def target_hedge(p: DealerParams, book: str, y: jnp.ndarray, terms: OptionTerms | None) -> jnp.ndarray:
    """Hedge target: dollars (constant gamma) or units (options, ``terms`` of the step), (N, V)."""
    if book == "constant_gamma":
        return p.gamma * y / ONE_PERCENT
    delta, _ = _delta_gamma(terms, y)
    return -delta


def hedge_flow(p: DealerParams, book: str, hedge: jnp.ndarray, y: jnp.ndarray, s0: jnp.ndarray,
               terms: OptionTerms | None) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Dealer notional flow (buy > 0) to reach the target at log-price ``y``, and d flow / d y."""
    if book == "constant_gamma":
        return p.gamma * y / ONE_PERCENT - hedge, jnp.broadcast_to(p.gamma / ONE_PERCENT, y.shape)
    price = s0 * jnp.exp(y)
    delta, gamma_price = _delta_gamma(terms, y)
    units = -delta - hedge
    return units * price, (units - gamma_price) * price
