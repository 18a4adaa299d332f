"""Collateral held in an asset with its own order book (e.g. a stablecoin pegged at 1).

A share of every cohort's collateral is the asset. Its log-price on each venue's
book, ``y_c``, starts at 0 (the peg); exogenous sales and the sale of seized
collateral by liquidations push it down through linear impact on the asset's 1 %
depth, and it decays back toward the peg with the book's resilience. Margin values
the asset at its price on the venue's own book ("internal") or at the external
index, which holds the peg ("external").
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from stresslab.market.liquidity import ONE_PERCENT


class CollateralParams(NamedTuple):
    """Attributes: share (fraction of collateral in the asset); depth (1 % depth of its book, quote
    currency); decay (per-step recovery factor); sell_per_step (V,) exogenous sale on each venue's book,
    quote currency per step;
    sell_start, sell_end (step range [start, end) of the sale)."""

    share: jnp.ndarray
    depth: jnp.ndarray
    decay: jnp.ndarray
    sell_per_step: jnp.ndarray
    sell_start: jnp.ndarray
    sell_end: jnp.ndarray


def pre_flow(p: CollateralParams, y_c: jnp.ndarray, t: jnp.ndarray) -> jnp.ndarray:
    """The asset's log-price after recovery and this step's exogenous sale (N, V)."""
    selling = (t >= p.sell_start) & (t < p.sell_end)
    return y_c * p.decay - jnp.where(selling, ONE_PERCENT * p.sell_per_step / p.depth, 0.0)


def after_sale(p: CollateralParams, y_c_base: jnp.ndarray, sold: jnp.ndarray) -> jnp.ndarray:
    """Log-price after liquidations sell ``sold`` (quote currency, (N, V)) of seized collateral."""
    return y_c_base - ONE_PERCENT * sold / p.depth


def mark(pricing: str, y_c: jnp.ndarray) -> jnp.ndarray:
    """Price at which margin values the asset: its own book, or the external index (the peg)."""
    return jnp.exp(y_c) if pricing == "internal" else jnp.ones_like(y_c)
