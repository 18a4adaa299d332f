"""Order-book depth and price impact (linear or square-root law, Obizhaeva-Wang resilience).

``depth`` is the notional that moves the price by 1 %: a signed flow ``Q`` (buy
> 0) on a flat book moves the log-price by ``0.01 * Q / depth``; on a V-shaped
book by ``0.01 * sign(Q) * sqrt(|Q| / depth)`` (both give 1 % at ``Q = depth``).
A fraction ``permanent`` of each impact stays; the rest is transient and decays
by ``exp(-rho * dt)`` per step, exactly for any ``dt``. Traded notional consumes
depth (``depletion`` of it), and the consumed part recovers with the same factor.
Market makers withdraw as volatility rises: baseline depth scales as
``(sigma / realised_vol) ** withdrawal`` when realised volatility exceeds sigma.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax.numpy as jnp

from stresslab.market.outputs import Output, Series

ONE_PERCENT = 0.01
MAX_CONSUMED = 1.0 - 1e-4
"""Consumption never takes more than 99.99 % of the baseline depth (keeps impact finite)."""
TINY_VAR = 1e-12
"""Floor on the realised variance (per year) before taking its log."""


class LiquidityParams(NamedTuple):
    """Attributes:
    depth: baseline 1 % depth per venue (V,), quote currency.
    permanent: share of impact that is permanent, in [0, 1].
    decay: per-step recovery factor exp(-rho * dt) of transient impact and consumed depth.
    depletion: depth consumed per unit of traded notional.
    withdrawal: elasticity of depth to realised volatility above ``vol_ref``.
    vol_ref: reference volatility per year (market.sigma).
    vol_decay: per-step EWMA factor of the realised-variance estimate.
    """

    depth: jnp.ndarray
    permanent: jnp.ndarray
    decay: jnp.ndarray
    depletion: jnp.ndarray
    withdrawal: jnp.ndarray
    vol_ref: jnp.ndarray
    vol_decay: jnp.ndarray


class LiquidityState(NamedTuple):
    """Attributes (each (N, V)):
    permanent: accumulated permanent impact, log-price.
    transient: transient impact still in the price, log-price.
    consumed: fraction of baseline depth consumed by trading, in [0, MAX_CONSUMED].
    variance: EWMA of realised variance of traded log returns, per year.
    """

    permanent: jnp.ndarray
    transient: jnp.ndarray
    consumed: jnp.ndarray
    variance: jnp.ndarray


@dataclass(frozen=True)
class LiquidityStatic:
    """enabled: False for an infinitely deep book (no impact, no cascade rounds).  impact: "linear" or "sqrt"."""

    enabled: bool
    impact: str


class BookSummary(NamedTuple):
    """min_depth_ratio: lowest available depth over the configured depth (N, V)."""

    min_depth_ratio: jnp.ndarray


def build(config, grid) -> tuple[LiquidityParams, LiquidityStatic]:
    """The order books of ``config.liquidity`` (per-venue depth from ``config.venues``)."""
    liq, arr = config.liquidity, grid.arr
    venue_depth = [v.depth or liq.depth for v in config.venues] or [liq.depth]
    params = LiquidityParams(
        depth=arr(venue_depth), permanent=arr(liq.permanent_fraction), decay=arr(grid.decay(liq.recovery_half_life)),
        depletion=arr(liq.depletion), withdrawal=arr(liq.withdrawal), vol_ref=arr(config.market.sigma),
        vol_decay=arr(grid.decay(liq.vol_half_life)),
    )
    return params, LiquidityStatic(enabled=liq.enabled, impact=liq.impact)


def init(params, static, n: int) -> LiquidityState:
    """Untouched books for ``n`` paths, one per venue (``depth`` is (V,))."""
    p = params.book
    zeros = jnp.zeros((n, *p.depth.shape), p.depth.dtype)
    return LiquidityState(zeros, zeros, zeros, zeros + p.vol_ref**2)


def init_summary(params, static, n: int) -> BookSummary:
    return BookSummary(min_depth_ratio=jnp.ones((n, static.grid.n_venues), params.book.depth.dtype))


def vol(s: LiquidityState) -> jnp.ndarray:
    """Realised volatility estimate per year (N, V)."""
    return jnp.sqrt(s.variance)


def available_ratio(params, static, s: LiquidityState) -> jnp.ndarray:
    """Available depth (withdrawal, kill switches, consumption) over the configured depth (N, V)."""
    ratio = depth_ratio(params.book, s)
    if static.defensive.n_kill:
        ratio = ratio * static.rules.kill_switches(params.defensive, vol(s))
    return ratio


OUTPUTS = (
    Output("min_depth_ratio", "1", "minimum available depth over the configured depth",
           lambda p, s, st, su: su.book.min_depth_ratio[..., 0]),
)
SERIES = (
    Series("depth", "1", "available depth over the configured depth",
           lambda p, s, st: available_ratio(p, s, st.book)[..., 0]),
)


def recover(p: LiquidityParams, s: LiquidityState) -> LiquidityState:
    """One step of resilience: transient impact and consumed depth decay by exp(-rho dt)."""
    return s._replace(transient=s.transient * p.decay, consumed=s.consumed * p.decay)


def baseline_depth(p: LiquidityParams, s: LiquidityState) -> jnp.ndarray:
    """Depth after liquidity withdrawal, before consumption (N,)."""
    excess = jnp.maximum(jnp.log(jnp.maximum(s.variance, TINY_VAR)) - jnp.log(jnp.maximum(p.vol_ref**2, TINY_VAR)), 0.0)
    return p.depth * jnp.exp(-0.5 * p.withdrawal * excess)


def depth_ratio(p: LiquidityParams, s: LiquidityState) -> jnp.ndarray:
    """Available depth (after withdrawal and consumption) over the configured depth (N,)."""
    return baseline_depth(p, s) * (1.0 - s.consumed) / p.depth


def impact(flow: jnp.ndarray, depth: jnp.ndarray, law: str, floor: float = 0.0) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Log-price impact of a signed notional ``flow`` and its derivative d impact / d flow.

    ``floor`` > 0 (smooth rules only) softens the square root at zero flow, where its derivative is
    infinite: ``0.01 * sign(Q) * (sqrt(|Q| / depth + floor) - sqrt(floor))``, within ``0.01 * sqrt(floor)``
    of the root."""
    if law == "linear":
        slope = ONE_PERCENT / depth
        return slope * flow, slope
    if floor:
        ratio = jnp.abs(flow) / depth
        root = jnp.sqrt(ratio + floor)
        return ONE_PERCENT * jnp.sign(flow) * (root - jnp.sqrt(floor)), 0.5 * ONE_PERCENT / (root * depth)
    ratio = jnp.abs(flow) / depth
    safe = jnp.maximum(ratio, 1e-12)
    traded = ratio > 0  # guard the root's input too: its derivative at 0 would turn tangents into NaN
    move = ONE_PERCENT * jnp.sign(flow) * jnp.where(traded, jnp.sqrt(jnp.where(traded, ratio, 1.0)), 0.0)
    return move, 0.5 * ONE_PERCENT / (jnp.sqrt(safe) * depth)


def impact_bound(flow: jnp.ndarray, error: jnp.ndarray, depth: jnp.ndarray, law: str) -> jnp.ndarray:
    """Bound on |impact(flow + e) - impact(flow)| over |e| <= ``error`` (notional), log-price.

    Linear law: the slope times ``error``. Square-root law (with or without the smooth rules' floor, whose
    root is flatter): the derivative at the smallest |flow| in reach times ``error`` where the interval does
    not reach zero flow, and at most 0.01 sqrt(2 error / depth) in any case (a square root is subadditive;
    across zero the two roots add)."""
    if law == "linear":
        return ONE_PERCENT * error / depth
    near = jnp.abs(flow) - error
    slope = 0.5 * ONE_PERCENT / (jnp.sqrt(jnp.maximum(near, 1e-30) / depth) * depth)
    across = ONE_PERCENT * jnp.sqrt(2.0 * error / depth)
    return jnp.where(near > 0, jnp.minimum(slope * error, across), across)


def flow_for_move(move: jnp.ndarray, depth: jnp.ndarray, law: str) -> jnp.ndarray:
    """Signed notional that moves the log-price by ``move`` on a book of 1 % ``depth`` (inverse of impact)."""
    ratio = move / ONE_PERCENT
    return depth * (ratio if law == "linear" else jnp.sign(ratio) * ratio**2)


def after_trade(p: LiquidityParams, s: LiquidityState, move: jnp.ndarray, flow: jnp.ndarray,
                base: jnp.ndarray, step_return: jnp.ndarray, dt: float) -> LiquidityState:
    """Book the step's impact ``move`` (log), consume depth for ``flow``, update realised variance."""
    consumed = jnp.minimum(s.consumed + p.depletion * jnp.abs(flow) / base, MAX_CONSUMED)
    variance = p.vol_decay * s.variance + (1.0 - p.vol_decay) * step_return**2 / dt
    return LiquidityState(
        permanent=s.permanent + p.permanent * move,
        transient=s.transient + (1.0 - p.permanent) * move,
        consumed=consumed,
        variance=variance,
    )
