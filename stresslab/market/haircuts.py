"""Collateral haircuts, static or adaptive, with anti-procyclicality options.

h = clip(max(raw, calm + buffer), floor, cap), raw = base + a x vol + b x shortfall, where
vol is the realised volatility per year, shortfall = 1 - available depth / configured
depth, and calm = base + a x vol_ref (vol at its reference, full book). The buffer is
held in calm and absorbs the first part of a rise. The change per step is limited to
``max_step``. A haircut values collateral at (1 - h) in margin checks. Every term is
non-decreasing in vol and in shortfall, so more volatility or less depth never lowers it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax.numpy as jnp

from stresslab.market.outputs import Output

TINY_HAIRCUT = 1e-12
"""Floor on the trough haircut in the peak/trough ratio."""


class HaircutParams(NamedTuple):
    """Attributes: base, vol_sensitivity (per unit of vol per year), depth_sensitivity,
    floor, cap, buffer (fractions); vol_ref (per year); max_step (max change per step; inf: none)."""

    base: jnp.ndarray
    vol_sensitivity: jnp.ndarray
    depth_sensitivity: jnp.ndarray
    floor: jnp.ndarray
    cap: jnp.ndarray
    buffer: jnp.ndarray
    vol_ref: jnp.ndarray
    max_step: jnp.ndarray


@dataclass(frozen=True)
class HaircutStatic:
    enabled: bool


class HaircutState(NamedTuple):
    """haircut: the haircut in force (N, V)."""

    haircut: jnp.ndarray


class HaircutSummary(NamedTuple):
    """max_haircut, min_haircut: extremes over the run (N, V); haircut_sum: haircut summed over steps (N, V)."""

    max_haircut: jnp.ndarray
    min_haircut: jnp.ndarray
    haircut_sum: jnp.ndarray


def build(config, grid) -> tuple[HaircutParams, HaircutStatic]:
    hc, arr = config.haircuts, grid.arr
    params = HaircutParams(
        base=arr(hc.base), vol_sensitivity=arr(hc.vol_sensitivity), depth_sensitivity=arr(hc.depth_sensitivity),
        floor=arr(hc.floor), cap=arr(hc.cap), buffer=arr(hc.buffer), vol_ref=arr(config.market.sigma),
        max_step=arr(grid.per_step(hc.max_change)),
    )
    return params, HaircutStatic(enabled=hc.enabled)


def init(params, static, n: int) -> HaircutState:
    """The calm haircut (reference volatility, full book), or none when haircuts are off."""
    h0 = jnp.zeros((n, static.grid.n_venues), params.price.s0.dtype)
    if static.haircuts.enabled:
        h0 = h0 + target(params.haircuts, params.book.vol_ref, jnp.ones((), h0.dtype))
    return HaircutState(h0)


def init_summary(params, static, n: int) -> HaircutSummary:
    h0 = init(params, static, n).haircut
    return HaircutSummary(h0, h0, jnp.zeros_like(h0))


def summarise(s: HaircutSummary, h: jnp.ndarray) -> HaircutSummary:
    return HaircutSummary(jnp.maximum(s.max_haircut, h), jnp.minimum(s.min_haircut, h), s.haircut_sum + h)


OUTPUTS = (
    Output("max_haircut", "1", "highest collateral haircut", lambda p, s, st, su: su.haircuts.max_haircut[..., 0]),
    Output("mean_haircut", "1", "collateral haircut averaged over the steps of the run",
           lambda p, s, st, su: su.haircuts.haircut_sum[..., 0] / s.grid.n_steps),
    Output("haircut_ratio", "1", "procyclicality: peak over trough haircut during the run (1 when it stayed at 0)",
           lambda p, s, st, su: _peak_over_trough(su.haircuts)[..., 0]),
)


def _peak_over_trough(su: HaircutSummary) -> jnp.ndarray:
    """Peak over trough haircut; 1 (no procyclicality) for a haircut that never left 0."""
    ratio = su.max_haircut / jnp.maximum(su.min_haircut, TINY_HAIRCUT)
    return jnp.where(su.max_haircut > TINY_HAIRCUT, ratio, 1.0)


def target(p: HaircutParams, vol: jnp.ndarray, depth_ratio: jnp.ndarray) -> jnp.ndarray:
    """Haircut the rule asks for at realised ``vol`` (per year) and available ``depth_ratio``."""
    shortfall = jnp.clip(1.0 - depth_ratio, 0.0, 1.0)
    raw = p.base + p.vol_sensitivity * vol + p.depth_sensitivity * shortfall
    calm = p.base + p.vol_sensitivity * p.vol_ref
    return jnp.clip(jnp.maximum(raw, calm + p.buffer), p.floor, p.cap)


def update(p: HaircutParams, previous: jnp.ndarray, wanted: jnp.ndarray) -> jnp.ndarray:
    """Move from ``previous`` toward ``wanted`` by at most ``max_step``."""
    return jnp.clip(wanted, previous - p.max_step, previous + p.max_step)
