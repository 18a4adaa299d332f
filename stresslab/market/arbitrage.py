"""Arbitrage with finite speed and capital: flows that pull each venue's price toward a reference.

Each step a venue receives the notional that would, through its own book, close the
share ``pull`` = 1 - exp(-ln 2 dt / half_life) of its log-price gap to the
reference, at most ``cap`` per step. Reference "spot": the exogenous spot price
(basis arbitrage of a perpetual). Reference "venues": the depth-weighted mean of
the venues' prices; flows are then scaled together so that they still sum to zero
over venues under linear impact (buying on one venue is selling on another).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import jax.numpy as jnp

from stresslab.market import safe
from stresslab.market.liquidity import flow_for_move
from stresslab.market.reduce import fixed_sum


class ArbitrageParams(NamedTuple):
    """Attributes: pull (share of the gap closed per step), cap (max notional per step and venue)."""

    pull: jnp.ndarray
    cap: jnp.ndarray


@dataclass(frozen=True)
class ArbitrageStatic:
    """reference: "spot" or "venues", or None when arbitrage is off."""

    reference: str | None


def build(config, grid) -> tuple[ArbitrageParams, ArbitrageStatic]:
    ab, arr = config.arbitrage, grid.arr
    params = ArbitrageParams(pull=arr(-math.expm1(-math.log(2.0) * grid.dt_seconds / ab.half_life)),
                             cap=arr(grid.per_step(ab.capacity)))
    return params, ArbitrageStatic(reference=ab.reference if ab.enabled else None)


def flows(p: ArbitrageParams, reference: str, y_fund: jnp.ndarray, y_base: jnp.ndarray, depth: jnp.ndarray,
          law: str) -> jnp.ndarray:
    """Arbitrage notional into each venue this step (N, V), buy > 0."""
    if reference == "spot":
        target = y_fund[..., None]
        wanted = flow_for_move(p.pull * (target - y_base), depth, law)
        return jnp.clip(wanted, -p.cap, p.cap)
    target = (fixed_sum(depth * y_base, -1) / fixed_sum(depth, -1))[..., None]
    wanted = flow_for_move(p.pull * (target - y_base), depth, law)
    largest = jnp.max(jnp.abs(wanted), axis=-1, keepdims=True)
    return wanted * jnp.minimum(1.0, safe.ratio(p.cap, largest, 1.0))
