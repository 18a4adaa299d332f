"""Counter-based randomness: every draw is a function of (seed, global path index, step).

The same seed therefore gives the same numbers for any chunk size and any number
of devices or processes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def path_keys(seed_key: jax.Array, first_index: jnp.ndarray, n: int) -> jax.Array:
    """Keys of the paths ``first_index .. first_index + n - 1`` (global indices)."""
    index = first_index + jnp.arange(n, dtype=jnp.uint32)
    return jax.vmap(jax.random.fold_in, (None, 0))(seed_key, index)


def step_uniforms(keys: jax.Array, t: jnp.ndarray, n_draws: int, dtype) -> jnp.ndarray:
    """Uniforms strictly inside (0, 1), symmetric about 1/2, shape (N, n_draws), for step ``t``."""
    half_ulp = jnp.finfo(dtype).eps / 2

    def draw(key):
        return jax.random.uniform(jax.random.fold_in(key, t), (n_draws,), dtype) + half_ulp

    return jax.vmap(draw)(keys)
