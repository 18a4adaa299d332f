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

from dataclasses import dataclass
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from stresslab.market.grid import SECONDS_PER_DAY
from stresslab.market.outputs import Output
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


@dataclass(frozen=True)
class FundingStatic:
    """every: steps between payments (0: no funding)."""

    every: int


class FundingSummary(NamedTuple):
    """min_rate, max_rate: lowest and highest payment rate (N, V).  min_basis: lowest end-of-step traded
    price over spot, minus 1 (N, V)."""

    min_rate: jnp.ndarray
    max_rate: jnp.ndarray
    min_basis: jnp.ndarray


def build(config, grid) -> tuple[FundingParams, FundingStatic]:
    fn, arr = config.funding, grid.arr
    rate_interval = fn.rate_interval or fn.interval
    cap = fn.cap if fn.cap is not None else np.inf
    if fn.cap_maintenance is not None:
        rates = [t.rate for t in config.margin.tiers[:1]]
        rates += [c.maintenance_margin for c in config.cohorts if c.maintenance_margin != "tiered"]
        cap = fn.cap_maintenance * min(rates) if rates and min(rates) > 0 else np.inf
    params = FundingParams(
        interest=arr(fn.interest * rate_interval / (config.simulation.days_per_year * SECONDS_PER_DAY)),
        clamp=arr(fn.clamp), cap=arr(cap), scale=arr(fn.interval / rate_interval),
    )
    return params, FundingStatic(every=grid.steps_for(fn.interval) if fn.enabled else 0)


def init(params, static, n: int) -> FundingState:
    dtype, v = params.price.s0.dtype, static.grid.n_venues
    zeros = jnp.zeros((n, v), dtype)
    return FundingState(zeros, jnp.zeros((n, v, static.positions.n_cohorts), dtype), zeros)


def init_summary(params, static, n: int) -> FundingSummary:
    zeros = jnp.zeros((n, static.grid.n_venues), params.price.s0.dtype)
    return FundingSummary(zeros, zeros, zeros)


def summarise(s: FundingSummary, state: FundingState, y: jnp.ndarray, y_fund: jnp.ndarray) -> FundingSummary:
    return FundingSummary(min_rate=jnp.minimum(s.min_rate, state.rate), max_rate=jnp.maximum(s.max_rate, state.rate),
                          min_basis=jnp.minimum(s.min_basis, premium(y, y_fund[..., None])))


OUTPUTS = (
    Output("min_funding_rate", "1", "lowest funding payment rate, fraction per funding interval",
           lambda p, s, st, su: su.funding.min_rate[..., 0]),
    Output("max_funding_rate", "1", "highest funding payment rate, fraction per funding interval",
           lambda p, s, st, su: su.funding.max_rate[..., 0]),
    Output("min_basis", "1", "lowest traded price over the spot (fundamental) price, minus 1",
           lambda p, s, st, su: su.funding.min_basis[..., 0]),
    Output("venue_min_basis", "1", "lowest traded price on the venue over the spot price, minus 1",
           lambda p, s, st, su: su.funding.min_basis, per_venue=True),
)


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
