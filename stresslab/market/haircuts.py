"""Collateral haircuts, static or adaptive, with anti-procyclicality options.

h = clip(max(raw, calm + buffer), floor, cap), raw = base + a x vol + b x shortfall, where
vol is the realised volatility per year, shortfall = 1 - available depth / configured
depth, and calm = base + a x vol_ref (vol at its reference, full book). The buffer is
held in calm and absorbs the first part of a rise. The change per step is limited to
``max_step``. A haircut values collateral at (1 - h) in margin checks. Every term is
non-decreasing in vol and in shortfall, so more volatility or less depth never lowers it.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp


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


def target(p: HaircutParams, vol: jnp.ndarray, depth_ratio: jnp.ndarray) -> jnp.ndarray:
    """Haircut the rule asks for at realised ``vol`` (per year) and available ``depth_ratio``."""
    shortfall = jnp.clip(1.0 - depth_ratio, 0.0, 1.0)
    raw = p.base + p.vol_sensitivity * vol + p.depth_sensitivity * shortfall
    calm = p.base + p.vol_sensitivity * p.vol_ref
    return jnp.clip(jnp.maximum(raw, calm + p.buffer), p.floor, p.cap)


def update(p: HaircutParams, previous: jnp.ndarray, wanted: jnp.ndarray) -> jnp.ndarray:
    """Move from ``previous`` toward ``wanted`` by at most ``max_step``."""
    return jnp.clip(wanted, previous - p.max_step, previous + p.max_step)
