"""Scheduled sell (or buy) programs: exogenous market flow, as on 6 May 2010.

Each program starts at a step and executes a fixed notional per step (its total
over a duration, or a participation rate of background volume) until done.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from stresslab.market.reduce import fixed_sum


class SellParams(NamedTuple):
    """Attributes (all (P,), one entry per program):
    start: first step index.
    per_step: notional executed per step, quote currency (> 0).
    total: total notional, quote currency (> 0).
    sign: -1 for a sell program, +1 for a buy program.
    """

    start: jnp.ndarray
    per_step: jnp.ndarray
    total: jnp.ndarray
    sign: jnp.ndarray


def program_flow(p: SellParams, remaining: jnp.ndarray, t: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Signed notional sent to the market in step ``t`` (N,), and what remains (N, P)."""
    live = t >= p.start
    executed = jnp.where(live, jnp.minimum(remaining, p.per_step), 0.0)
    return fixed_sum(p.sign * executed, -1), remaining - executed
