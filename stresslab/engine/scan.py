"""The time loop of one chunk of paths: ``lax.scan`` over steps, recording every ``record_every``.

Memory is O(paths): the carry holds per-path state and online reductions; the
only per-time output is the bounded set of recorded points.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from stresslab.engine.keys import path_keys, step_uniforms
from stresslab.market import model
from stresslab.market.model import Params, Static
from stresslab.market.step import market_step


@partial(jax.jit, static_argnames=("static", "chunk"))
def simulate_chunk(params: Params, static: Static, seed_key: jax.Array, first_index: jnp.ndarray,
                   chunk: int) -> tuple[dict[str, jnp.ndarray], dict[str, jnp.ndarray]]:
    """Simulate paths ``first_index .. first_index + chunk - 1``.

    Returns:
        per-path outputs {name: (chunk,) or (chunk, V)} (``model.OUTPUTS``) and recorded series
        {name: (T_rec, chunk)} (``model.SERIES``).
    """
    keys = path_keys(seed_key, first_index, chunk)
    grid = static.grid
    dtype = jnp.dtype(grid.dtype)

    def one_step(carry, t):
        state, summary = carry
        draws = step_uniforms(keys, t, model.n_draws(static), dtype)
        return market_step(params, static, state, summary, t, draws), None

    def block(carry, b):
        steps = b * grid.record_every + jnp.arange(grid.record_every, dtype=jnp.int32)
        carry, _ = jax.lax.scan(one_step, carry, steps)
        return carry, model.record(params, static, carry[0])

    carry = model.init(params, static, chunk)
    first = model.record(params, static, carry[0])
    carry, blocks = jax.lax.scan(block, carry, jnp.arange(grid.n_blocks, dtype=jnp.int32))
    series = [{k: v[None] for k, v in first.items()}, blocks]
    if grid.remainder:
        steps = grid.n_blocks * grid.record_every + jnp.arange(grid.remainder, dtype=jnp.int32)
        carry, _ = jax.lax.scan(one_step, carry, steps)
        series.append({k: v[None] for k, v in model.record(params, static, carry[0]).items()})
    recorded = {k: jnp.concatenate([s[k] for s in series]) for k in first}
    return model.finish(params, static, *carry), recorded
