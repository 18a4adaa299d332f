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
HE3_MAX = 1.3801
"""Bound on |(x^3 - 3 x) exp(-x^2 / 2)| (at x = 0.742): the normal cdf's fourth derivative, over the density's peak."""


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
    remainder (V,): bound on the book delta's fourth derivative in log-price over 24, units:
    ``sum(|gamma_scale| inv_vol**3) HE3_MAX / 24`` (the cubic model's error, ``Local``).
    """

    intercept: jnp.ndarray
    inv_vol: jnp.ndarray
    quantity: jnp.ndarray
    put: jnp.ndarray
    gamma_scale: jnp.ndarray
    remainder: jnp.ndarray


class Local(NamedTuple):
    """The options book near log-price ``y0`` (N, V): its delta (units) and the delta's first three
    derivatives in log-price there (``gamma_price`` = gamma times price, then its two derivatives).

    The cubic Taylor model ``delta(y0 + dy) = delta + gamma_price dy + d_gamma dy^2 / 2 + d2_gamma dy^3 / 6``
    is off by at most ``remainder * dy**4`` units (``OptionTerms.remainder``; Lagrange's remainder with
    the cdf's fourth derivative bounded by HE3_MAX). At ``y0`` itself it is the exact delta and gamma.
    """

    y0: jnp.ndarray
    delta: jnp.ndarray
    gamma_price: jnp.ndarray
    d_gamma: jnp.ndarray
    d2_gamma: jnp.ndarray


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
    gamma_scale = quantity / (jnp.sqrt(2 * jnp.pi) * vol_t)
    return OptionTerms(intercept=(jnp.log(s0 / p.strike) + 0.5 * vol_t**2) / vol_t, inv_vol=1.0 / vol_t,
                       quantity=quantity, put=jnp.where(p.is_call, 0.0, 1.0).astype(quantity.dtype),
                       gamma_scale=gamma_scale,
                       remainder=jnp.sum(jnp.abs(gamma_scale) / vol_t**3, -1) * (HE3_MAX / 24.0))


def greeks(terms: OptionTerms, y: jnp.ndarray) -> Local:
    """The options book at log-price ``y`` (N, V): delta and its derivatives, the cubic model about ``y``."""
    delta = gamma_price = d_gamma = d2_gamma = jnp.zeros_like(y)
    for o in range(terms.quantity.shape[-1]):  # option by option, in order: no (N, V, O) temporaries
        inv_vol = terms.inv_vol[..., o]
        d1 = terms.intercept[..., o] + inv_vol * y
        call_delta = 0.5 * lax.erfc(-SQRT_HALF * d1)  # the normal cdf N(d1), accurate in both tails
        delta = delta + terms.quantity[..., o] * (call_delta - terms.put[..., o])
        gamma = terms.gamma_scale[..., o] * jnp.exp(-0.5 * d1 * d1)
        gamma_price = gamma_price + gamma
        d_gamma = d_gamma - gamma * d1 * inv_vol
        d2_gamma = d2_gamma + gamma * (d1 * d1 - 1.0) * inv_vol * inv_vol
    return Local(y, delta, gamma_price, d_gamma, d2_gamma)


def _delta_gamma(terms: OptionTerms, y: jnp.ndarray, local: Local | None = None) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Book delta (units) and gamma times price (units) at log-price ``y`` (N, V): exact, or from the cubic
    model ``local`` (``Local``)."""
    if local is None:
        exact = greeks(terms, y)  # the derivatives it does not return are not computed (dead code to XLA)
        return exact.delta, exact.gamma_price
    dy = y - local.y0
    return (local.delta + dy * (local.gamma_price + dy * (0.5 * local.d_gamma + dy * local.d2_gamma / 6.0)),
            local.gamma_price + dy * (local.d_gamma + 0.5 * dy * local.d2_gamma))


def model_error(terms: OptionTerms, local: Local, y: jnp.ndarray) -> jnp.ndarray:
    """Bound on the cubic model's delta error at ``y`` (N, V), units (``Local``)."""
    dy = y - local.y0
    return terms.remainder * (dy * dy) * (dy * dy)


def target_hedge(p: DealerParams, book: str, y: jnp.ndarray, terms: OptionTerms | None,
                 local: Local | None = None) -> jnp.ndarray:
    """Hedge target: dollars (constant gamma) or units (options, ``terms`` of the step; ``local``: from the
    cubic model instead of the exact greeks), (N, V)."""
    if book == "constant_gamma":
        return p.gamma * y / ONE_PERCENT
    delta, _ = _delta_gamma(terms, y, local)
    return -delta


def hedge_flow(p: DealerParams, book: str, hedge: jnp.ndarray, y: jnp.ndarray, s0: jnp.ndarray,
               terms: OptionTerms | None, local: Local | None = None) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Dealer notional flow (buy > 0) to reach the target at log-price ``y``, and d flow / d y (``local``:
    the options book from its cubic model)."""
    if book == "constant_gamma":
        return p.gamma * y / ONE_PERCENT - hedge, jnp.broadcast_to(p.gamma / ONE_PERCENT, y.shape)
    price = s0 * jnp.exp(y)
    delta, gamma_price = _delta_gamma(terms, y, local)
    units = -delta - hedge
    return units * price, (units - gamma_price) * price
