"""Sums over a small per-path axis (cohorts, options, programs) in a fixed pairwise order.

XLA's reduction emitters choose their summation order by array shape, so a
plain ``jnp.sum`` over cohorts can round differently when the number of paths in
a chunk changes. Writing the sum as a fixed tree of elementwise adds makes every
path's result independent of the chunk size and the device count.
"""

from __future__ import annotations

import jax.numpy as jnp


def fixed_sum(x: jnp.ndarray, axis: int = -1) -> jnp.ndarray:
    """Sum over ``axis`` as a balanced tree of adds (zero-padded to a power of two)."""
    x = jnp.moveaxis(x, axis, -1)
    n = x.shape[-1]
    if n == 0:
        return jnp.zeros(x.shape[:-1], x.dtype)
    size = 1 << (n - 1).bit_length()
    if size != n:
        x = jnp.concatenate([x, jnp.zeros((*x.shape[:-1], size - n), x.dtype)], axis=-1)
    while x.shape[-1] > 1:
        half = x.shape[-1] // 2
        x = x[..., :half] + x[..., half:]
    return x[..., 0]
