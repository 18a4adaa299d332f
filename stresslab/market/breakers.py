"""Circuit breakers: multi-level halts below a reference, price bands, dynamic thresholds.

A level fires at the end of the first traded step whose log-price is at or below
ref + log(1 - drop x scale), at most once per run; trading then halts for its
``halt_steps``. The reference is the start (log-price 0), the running peak
(a drawdown breaker) or an exponential moving average of the log-price. ``scale``
= (realised vol / vol_ref) ** vol_scaling makes thresholds dynamic. A price band
refuses a step whose clearing price moves beyond +-band from the previous price and
pauses trading for ``band_steps``: orders beyond the band do not execute (the step trades only
the share of its flow that reaches the band edge; the rest waits). While halted nothing trades (see step.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from stresslab.market import liquidity
from stresslab.market.outputs import Output

MAX_DROP = 1.0 - 1e-6
"""Largest fall a threshold or band edge may express (keeps its logarithm finite)."""


class BreakerParams(NamedTuple):
    """Attributes: drop (L,) fractions; halt_steps (L,) int; vol_scaling (exponent); vol_ref (per year);
    band (fraction; inf: none); band_steps (int); ref_decay (per-step EMA factor of the rolling reference)."""

    drop: jnp.ndarray
    halt_steps: jnp.ndarray  # real-valued, so that halt lengths can be calibrated
    vol_scaling: jnp.ndarray
    vol_ref: jnp.ndarray
    band: jnp.ndarray
    band_steps: jnp.ndarray
    ref_decay: jnp.ndarray


class BreakerState(NamedTuple):
    """Attributes (per venue): left (N, V) halted steps still to run; fired (N, V, L) levels used;
    ref (N, V) reference log-price; halts (N, V) halts so far; halted_steps (N, V) steps halted so far."""

    left: jnp.ndarray
    fired: jnp.ndarray
    ref: jnp.ndarray
    halts: jnp.ndarray
    halted_steps: jnp.ndarray


@dataclass(frozen=True)
class BreakerStatic:
    """enabled: any level or band.  reference: "start", "peak" or "rolling".  n_levels: L.  band: a price band."""

    enabled: bool
    reference: str
    n_levels: int
    band: bool


def build(config, grid) -> tuple[BreakerParams, BreakerStatic]:
    br, arr = config.breakers, grid.arr
    params = BreakerParams(
        drop=arr([lv.drop for lv in br.levels]),
        halt_steps=arr([grid.steps_for(lv.halt) for lv in br.levels]),
        vol_scaling=arr(br.vol_scaling), vol_ref=arr(max(config.market.sigma, 1e-12)),
        band=arr(br.band if br.band is not None else np.inf),
        band_steps=arr(grid.steps_for(br.band_pause), jnp.int32), ref_decay=arr(grid.decay(br.window)),
    )
    static = BreakerStatic(enabled=br.enabled and (bool(br.levels) or br.band is not None), reference=br.reference,
                           n_levels=len(br.levels), band=br.enabled and br.band is not None)
    return params, static


def init(params, static, n: int) -> BreakerState:
    """No halt yet; counters and level flags in the rules' types (``Rules.breaker_state``)."""
    return static.rules.breaker_state(n, static.grid.n_venues, static.breakers.n_levels, params.price.s0.dtype)


def initial_state(n: int, n_venues: int, n_levels: int, dtype, count_dtype, flag_dtype) -> BreakerState:
    """No halt yet: countdowns of ``count_dtype`` (int, or real for smooth rules), level flags of
    ``flag_dtype`` (bool, or real weights), the reference log-price in ``dtype``."""
    counts = jnp.zeros((n, n_venues), count_dtype)
    fired = jnp.zeros((n, n_venues, n_levels), flag_dtype)
    return BreakerState(counts, fired, jnp.zeros((n, n_venues), dtype), counts, counts)


def band_limit(p: BreakerParams, y_new: jnp.ndarray, y_prev: jnp.ndarray) -> jnp.ndarray:
    """The clearing log-price held inside the band around the previous traded price (N, V)."""
    return jnp.clip(y_new, y_prev + jnp.log1p(-jnp.minimum(p.band, MAX_DROP)), y_prev + jnp.log1p(p.band))


def band(p: BreakerParams, trading: jnp.ndarray, y: jnp.ndarray, y_prev: jnp.ndarray, y_base: jnp.ndarray,
         depth: jnp.ndarray, impact: str):
    """Hold the step's clearing log-price ``y`` inside the band around ``y_prev``.

    Returns:
        the log-price traded to, the share of the step's flow that executed (the flow that reaches
        the band edge over the flow that was sent, on a book of 1 % ``depth``) and whether the band was breached.
    """
    y_edge = band_limit(p, y, y_prev)
    breached = trading & (y_edge != y)
    wanted = liquidity.flow_for_move(y - y_base, depth, impact)
    allowed = liquidity.flow_for_move(y_edge - y_base, depth, impact)
    scale = jnp.where(breached, jnp.clip(allowed / jnp.where(wanted == 0, 1.0, wanted), 0.0, 1.0), 1.0)
    return jnp.where(breached, y_edge, y), scale, breached


def advance(p: BreakerParams, reference: str, s: BreakerState, halted: jnp.ndarray, traded: jnp.ndarray,
            breached: jnp.ndarray, y: jnp.ndarray, vol: jnp.ndarray) -> BreakerState:
    """End-of-step update: count the halted step, fire levels and band pauses, move the reference.

    halted: the step was halted from its start.  traded: the step traded.  breached: the band stopped it.
    """
    left = jnp.where(halted, s.left - 1, s.left)
    scale = (vol / p.vol_ref) ** p.vol_scaling
    threshold = s.ref[..., None] + jnp.log1p(-jnp.minimum(p.drop * scale[..., None], MAX_DROP))
    hit = traded[..., None] & ~s.fired & (y[..., None] <= threshold)
    level_halt = jnp.max(jnp.where(hit, jnp.round(p.halt_steps).astype(jnp.int32), 0), axis=-1, initial=0)
    new_halt = jnp.where(breached, jnp.maximum(level_halt, p.band_steps), level_halt)
    started = new_halt > 0
    if reference == "peak":
        ref = jnp.where(traded, jnp.maximum(s.ref, y), s.ref)
    elif reference == "rolling":
        ref = jnp.where(traded, p.ref_decay * s.ref + (1.0 - p.ref_decay) * y, s.ref)
    else:
        ref = s.ref
    return BreakerState(
        left=jnp.maximum(left, new_halt),
        fired=s.fired | hit,
        ref=ref,
        halts=s.halts + started.astype(jnp.int32),
        halted_steps=s.halted_steps + halted.astype(jnp.int32),
    )


def _reference(reference: str, p: BreakerParams, ref: jnp.ndarray, y: jnp.ndarray, g) -> jnp.ndarray:
    if reference == "peak":
        return ref + g * (jnp.maximum(ref, y) - ref)
    if reference == "rolling":
        return ref + g * (1.0 - p.ref_decay) * (y - ref)
    return ref


def advance_smooth(p: BreakerParams, reference: str, s: BreakerState, g: jnp.ndarray, y: jnp.ndarray,
                   vol: jnp.ndarray, temperature: jnp.ndarray) -> BreakerState:
    """Relaxed :func:`advance` for calibration: a level fires with weight sigmoid((threshold - y) / temperature)
    times the share of the step that traded and what is left of the level; the halt left is a real
    countdown (steps), so halt lengths and drops get gradients. No price band."""
    scale = (vol / p.vol_ref) ** p.vol_scaling
    threshold = s.ref[..., None] + jnp.log1p(-jnp.minimum(p.drop * scale[..., None], MAX_DROP))
    weight = g[..., None] * (1.0 - s.fired) * jax.nn.sigmoid((threshold - y[..., None]) / temperature)
    level_halt = jnp.max(weight * p.halt_steps, axis=-1, initial=0.0)
    return BreakerState(
        left=jnp.maximum(jnp.maximum(s.left - 1.0, 0.0), level_halt),
        fired=s.fired + weight,
        ref=_reference(reference, p, s.ref, y, g),
        halts=s.halts + jnp.sum(weight, axis=-1),
        halted_steps=s.halted_steps + (1.0 - g),
    )


def _halted_time(p, s, st, su):
    return st.breakers.halted_steps.astype(p.price.s0.dtype) * s.grid.dt_seconds


OUTPUTS = (
    Output("halted_time", "s", "time trading was halted (circuit breakers and band pauses)",
           lambda p, s, st, su: _halted_time(p, s, st, su)[..., 0]),
    Output("halt_count", "1", "number of halts (breaker levels fired and band pauses)",
           lambda p, s, st, su: st.breakers.halts[..., 0]),
    Output("venue_halted_time", "s", "time trading was halted on the venue", _halted_time, per_venue=True),
)
