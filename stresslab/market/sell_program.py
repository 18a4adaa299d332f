"""Scheduled sell (or buy) programs: exogenous market flow, as on 6 May 2010.

Each program starts at a step and executes a fixed notional per step (its total
over a duration, or a participation rate of background volume) until done, on one
venue. What is due while its venue is halted (or beyond a price band) waits in a
backlog and executes at once when the venue trades again.
Money is in quote currency.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax.numpy as jnp

from stresslab.market.grid import SECONDS_PER_DAY
from stresslab.market.reduce import fixed_sum


class SellParams(NamedTuple):
    """Attributes ((P,) each, one entry per program):
    start: first step index.
    per_step: notional executed per step, quote currency (> 0).
    total: total notional, quote currency (> 0).
    sign: -1 for a sell program, +1 for a buy program.
    venue: (P, V) one-hot venue of each program.
    """

    start: jnp.ndarray
    per_step: jnp.ndarray
    total: jnp.ndarray
    sign: jnp.ndarray
    venue: jnp.ndarray


@dataclass(frozen=True)
class ProgramStatic:
    n_programs: int


class ProgramState(NamedTuple):
    """remaining: notional left to execute (N, P).  backlog: notional due but not executed because
    its venue did not trade (N, P)."""

    remaining: jnp.ndarray
    backlog: jnp.ndarray


def _per_step(program, dt: float, daily_volume: float) -> float:
    if program.duration is not None:
        return abs(program.notional) * dt / max(program.duration, dt)
    return program.participation * daily_volume * dt / SECONDS_PER_DAY


def build(config, grid) -> tuple[SellParams, ProgramStatic]:
    """The ``sell_program`` shocks of ``config.market``."""
    programs = [s for s in config.market.shocks if s.type == "sell_program"]
    arr = grid.arr
    params = SellParams(
        start=arr([grid.step_of(s.start) for s in programs], jnp.int32),
        per_step=arr([_per_step(s, grid.dt_seconds, config.market.daily_volume) for s in programs]),
        total=arr([abs(s.notional) for s in programs]),
        sign=arr([-1.0 if s.notional >= 0 else 1.0 for s in programs]),
        venue=arr(grid.one_hots([s.venue for s in programs])),
    )
    return params, ProgramStatic(n_programs=len(programs))


def init(params, static, n: int) -> ProgramState:
    p = params.programs
    shape = (n, static.programs.n_programs)
    return ProgramState(jnp.broadcast_to(p.total, shape).astype(p.total.dtype), jnp.zeros(shape, p.total.dtype))


def due(p: SellParams, s: ProgramState, t: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Notional each program sends in step ``t`` (N, P), backlog included, and its signed flow into
    each venue (N, V)."""
    executed = jnp.where(t >= p.start, jnp.minimum(s.remaining, p.per_step + s.backlog), 0.0)
    return executed, fixed_sum((p.sign * executed)[..., None] * p.venue, -2)


def after_trade(p: SellParams, s: ProgramState, executed: jnp.ndarray, traded: jnp.ndarray) -> ProgramState:
    """Book what executed: ``traded`` (N, V) is the share of each venue's flow that traded this step."""
    done = fixed_sum(p.venue * traded[..., None, :], -1)
    return ProgramState(remaining=s.remaining - executed * done, backlog=executed * (1.0 - done))
