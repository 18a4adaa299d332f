"""Perpetual funding: premium accrual, the clamped funding rate, and zero-sum payments.

Per ``rate_interval`` the rate is F = P + clamp(I - P, -clamp, +clamp), with P the
premium (perp price over index, minus 1) averaged over the steps of the payment
interval and I the interest over one rate interval. Each payment is
F x interval / rate_interval of the mark price per unit, clipped to +-cap.
Positive F: longs pay shorts. What the modelled cohorts pay or receive in net is
the counterparty's (the rest of the open interest), so payments are zero-sum.
Money is in quote currency per unit of the asset.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from stresslab.market.reduce import fixed_sum


class FundingParams(NamedTuple):
    """Attributes: interest (I, fraction per rate interval), clamp (fraction), cap (max |payment rate|
    per interval; inf: none), scale (interval / rate_interval)."""

    interest: jnp.ndarray
    clamp: jnp.ndarray
    cap: jnp.ndarray
    scale: jnp.ndarray


class FundingState(NamedTuple):
    """Attributes: premium_sum (N, V) premium summed over the current interval's steps;
    adj (N, V, C) funding received per unit so far (quote currency, negative when paid);
    rate (N, V) the last payment rate (fraction per interval)."""

    premium_sum: jnp.ndarray
    adj: jnp.ndarray
    rate: jnp.ndarray


def initial_state(n: int, n_venues: int, n_cohorts: int, dtype) -> FundingState:
    zeros = jnp.zeros((n, n_venues), dtype)
    return FundingState(zeros, jnp.zeros((n, n_venues, n_cohorts), dtype), zeros)


def rate(p: FundingParams, premium: jnp.ndarray) -> jnp.ndarray:
    """Payment rate per interval for an average ``premium``: scale x (P + clamp(I - P)), clipped to +-cap."""
    per_rate_interval = premium + jnp.clip(p.interest - premium, -p.clamp, p.clamp)
    return jnp.clip(p.scale * per_rate_interval, -p.cap, p.cap)


def premium(y: jnp.ndarray, y_index: jnp.ndarray) -> jnp.ndarray:
    """Premium of the perp over the index: S_perp / S_index - 1, from log-prices."""
    return jnp.expm1(y - y_index)


def pay(p: FundingParams, s: FundingState, side: jnp.ndarray, units: jnp.ndarray, mark: jnp.ndarray,
        steps: int) -> tuple[FundingState, jnp.ndarray, jnp.ndarray]:
    """Settle one payment at ``mark`` price (N, V) from the premium averaged over ``steps`` steps.

    Returns:
        the new state (premium sum reset) and the funding received by long and by
        short cohorts (N, V) each, quote currency (negative when paid).
    """
    f = rate(p, s.premium_sum / steps)
    per_unit = -side * (f * mark)[..., None]
    received = units * per_unit
    long_in = fixed_sum(jnp.where(side > 0, received, 0.0), -1)
    short_in = fixed_sum(jnp.where(side > 0, 0.0, received), -1)
    return FundingState(jnp.zeros_like(s.premium_sum), s.adj + per_unit, f), long_in, short_in
