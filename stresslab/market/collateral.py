"""Collateral held in an asset with its own order book (e.g. a stablecoin pegged at 1).

A share of every cohort's collateral is the asset. Its log-price on each venue's
book, ``y_c``, starts at 0 (the peg); exogenous sales and the sale of seized
collateral by liquidations push it down through linear impact on the asset's 1 %
depth, and it decays back toward the peg with the book's resilience. Margin values
the asset at its price on the venue's own book ("internal") or at the external
index, which holds the peg ("external").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from stresslab.market.liquidity import ONE_PERCENT
from stresslab.market.outputs import Output


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


@dataclass(frozen=True)
class CollateralStatic:
    """pricing: "internal" or "external", or None when no collateral is held in an asset."""

    pricing: str | None


class CollateralState(NamedTuple):
    """y_c: the asset's log-price on each venue's book, relative to the peg (N, V)."""

    y_c: jnp.ndarray


class CollateralSummary(NamedTuple):
    """min_y_c: lowest log-price of the asset as margin valued it (N, V)."""

    min_y_c: jnp.ndarray


def build(config, grid) -> tuple[CollateralParams, CollateralStatic]:
    co, arr = config.collateral, grid.arr
    params = CollateralParams(
        share=arr(co.share if co.enabled else 0.0), depth=arr(co.depth), decay=arr(grid.decay(co.recovery_half_life)),
        sell_per_step=arr(co.sell * grid.dt_seconds / max(co.sell_duration, grid.dt_seconds)
                          * np.asarray(grid.one_hot(co.venue))),
        sell_start=arr(grid.step_of(co.sell_start), jnp.int32),
        sell_end=arr(grid.step_of(co.sell_start) + grid.steps_for(co.sell_duration), jnp.int32),
    )
    return params, CollateralStatic(pricing=co.pricing if co.enabled and co.share > 0 else None)


def init(params, static, n: int) -> CollateralState:
    return CollateralState(jnp.zeros((n, static.grid.n_venues), params.collateral.depth.dtype))


def init_summary(params, static, n: int) -> CollateralSummary:
    return CollateralSummary(jnp.zeros((n, static.grid.n_venues), params.collateral.depth.dtype))


def summarise(s: CollateralSummary, static, y_c: jnp.ndarray) -> CollateralSummary:
    return CollateralSummary(jnp.minimum(s.min_y_c, y_c if static.collateral.pricing == "internal" else 0.0))


def revaluation(params, static, y_c: jnp.ndarray) -> jnp.ndarray:
    """Change of each cohort's collateral per unit (N, V, C) from the asset's price as margin values it."""
    cp = params.positions.cohorts
    return cp.margin_per_unit * params.collateral.share * (mark(static.collateral.pricing, y_c)[..., None] - 1.0)


OUTPUTS = (
    Output("min_collateral_price", "1", "lowest price of the collateral asset relative to its peg, as margin saw it",
           lambda p, s, st, su: jnp.exp(su.collateral.min_y_c[..., 0])),
    Output("venue_min_collateral_price", "1", "lowest price of the collateral asset as the venue's margin saw it",
           lambda p, s, st, su: jnp.exp(su.collateral.min_y_c), per_venue=True),
)


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
