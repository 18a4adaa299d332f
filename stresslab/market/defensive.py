"""Defensive trading layers: algorithmic traders' risk controls, and market makers' kill switches.

Populations (D of them, each on one venue) hold ``units`` of the asset on a side:
- stop_loss: flatten when the price is ``threshold`` beyond the start against them;
- drawdown: flatten when the price is ``threshold`` below its running peak (longs)
  or above its running trough (shorts);
- vol_target: hold units0 x min(1, threshold / vol), vol the realised volatility per year;
- var_limit: hold at most threshold / (price x z x vol x sqrt(horizon)) units (a VaR limit).
Stop and drawdown triggers are checked at every cascade round's price, and their
sales join the round's flow; volatility and VaR targets are set at the start of a
step from the realised-volatility estimate. Kill switches (K of them) withdraw a
``share`` of each venue's depth while realised volatility exceeds their threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from scipy.stats import norm

from stresslab.market.outputs import Output
from stresslab.market.reduce import fixed_sum

TINY_VOL = 1e-12


class DefensiveParams(NamedTuple):
    """Attributes: side (D,) +1/-1; units0 (V, D) units at the start; threshold (D,);
    stop, drawdown, vol_target, var_limit (D,) bool kind masks; zscale (D,) z x sqrt(horizon in years);
    kill_threshold (K,) vol per year; kill_share (V, K) share of depth withdrawn."""

    side: jnp.ndarray
    units0: jnp.ndarray
    threshold: jnp.ndarray
    stop: jnp.ndarray
    drawdown: jnp.ndarray
    vol_target: jnp.ndarray
    var_limit: jnp.ndarray
    zscale: jnp.ndarray
    kill_threshold: jnp.ndarray
    kill_share: jnp.ndarray


@dataclass(frozen=True)
class DefensiveStatic:
    """n_defensive: trader populations (D).  n_kill: kill switches (K)."""

    n_defensive: int
    n_kill: int


class DefensiveState(NamedTuple):
    """units: units each population holds (N, V, D).  stopped: stop or drawdown limit hit (N, V, D)."""

    units: jnp.ndarray
    stopped: jnp.ndarray


class DefensiveSummary(NamedTuple):
    """sold: notional traded by defensive traders (N, V), quote currency."""

    sold: jnp.ndarray


def build(config, grid) -> tuple[DefensiveParams, DefensiveStatic]:
    traders = [d for d in config.defensive if d.kind != "kill_switch"]
    kills = [d for d in config.defensive if d.kind == "kill_switch"]
    arr, price = grid.arr, config.market.price
    kind = np.asarray([d.kind for d in traders], dtype=object)

    def is_kind(name: str) -> jnp.ndarray:
        return jnp.asarray(kind == name, bool).reshape(-1)

    params = DefensiveParams(
        side=arr([1.0 if d.side == "long" else -1.0 for d in traders]),
        units0=arr(grid.one_hots([d.venue for d in traders]).T * np.asarray([d.notional / price for d in traders])
                   .reshape(1, -1)),
        threshold=arr([d.threshold for d in traders]),
        stop=is_kind("stop_loss"), drawdown=is_kind("drawdown"), vol_target=is_kind("vol_target"),
        var_limit=is_kind("var_limit"),
        zscale=arr([norm.ppf(d.confidence) * math.sqrt(d.horizon / grid.seconds_per_year) for d in traders]),
        kill_threshold=arr([d.threshold for d in kills]),
        kill_share=arr(grid.one_hots([d.venue for d in kills]).T * np.asarray([d.share for d in kills]).reshape(1, -1)),
    )
    return params, DefensiveStatic(n_defensive=len(traders), n_kill=len(kills))


def init(params, static, n: int) -> DefensiveState:
    p = params.defensive
    shape = (n, static.grid.n_venues, static.defensive.n_defensive)
    return DefensiveState(jnp.broadcast_to(p.units0, shape).astype(p.units0.dtype), jnp.zeros(shape, bool))


def init_summary(params, static, n: int) -> DefensiveSummary:
    return DefensiveSummary(jnp.zeros((n, static.grid.n_venues), params.price.s0.dtype))


OUTPUTS = (
    Output("defensive_sold", "quote currency",
           "notional traded by defensive traders (stops, volatility and VaR limits)",
           lambda p, s, st, su: fixed_sum(su.defensive.sold, -1)),
)


def depth_multiplier(p: DefensiveParams, vol: jnp.ndarray) -> jnp.ndarray:
    """Share of depth left after kill switches (N, V), for realised ``vol`` (N, V) per year."""
    pulled = (vol[..., None] > p.kill_threshold) * p.kill_share
    return jnp.prod(1.0 - pulled, axis=-1)


def risk_targets(p: DefensiveParams, units: jnp.ndarray, vol: jnp.ndarray, price: jnp.ndarray) -> jnp.ndarray:
    """Units (N, V, D) after volatility-target and VaR-limit populations cut to their targets."""
    v = jnp.maximum(vol, TINY_VOL)[..., None]
    vol_cap = p.units0 * jnp.minimum(1.0, p.threshold / v)
    var_cap = p.threshold / (price[..., None] * p.zscale * v)
    target = jnp.where(p.vol_target, vol_cap, jnp.where(p.var_limit, jnp.minimum(p.units0, var_cap), units))
    return jnp.where(p.vol_target | p.var_limit, target, units)


def stopped(p: DefensiveParams, units: jnp.ndarray, done: jnp.ndarray, y: jnp.ndarray, peak: jnp.ndarray,
            trough: jnp.ndarray) -> jnp.ndarray:
    """Populations whose stop or drawdown limit is breached at log-price ``y`` (N, V, D) bool."""
    y, peak, trough = y[..., None], peak[..., None], trough[..., None]
    long = p.side > 0
    start_hit = jnp.where(long, y <= jnp.log1p(-p.threshold), y >= jnp.log1p(p.threshold))
    peak_hit = jnp.where(long, y <= peak + jnp.log1p(-p.threshold), y >= trough + jnp.log1p(p.threshold))
    hit = (p.stop & start_hit) | (p.drawdown & peak_hit)
    return ~done & (units > 0) & hit
