"""Sums over a small per-path axis (cohorts, options, programs) in a fixed pairwise order.

XLA's reduction emitters choose their summation order by array shape, so a
plain ``jnp.sum`` over cohorts can round differently when the number of paths in
a chunk changes. Writing the sum as a fixed tree of elementwise adds makes every
path's result independent of the chunk size and the device count.
"""

from __future__ import annotations

import jax.numpy as jnp


def fixed_sum(x: jnp.ndarray, axis: int = -1) -> jnp.ndarray:
    """Sum over ``axis`` as a balanced tree of adds: the tree of a zero-padding to a power of two, without the
    padding (an element whose partner would be a padded zero passes to the next level as it is)."""
    x = jnp.moveaxis(x, axis, -1)
    n = x.shape[-1]
    if n == 0:
        return jnp.zeros(x.shape[:-1], x.dtype)
    half = (1 << (n - 1).bit_length()) // 2
    while n > 1:
        paired = n - half  # elements [half, n) are added to [0, paired); [paired, half) pass
        pairs = x[..., :paired] + x[..., half:n]
        x = pairs if paired == half else jnp.concatenate([pairs, x[..., paired:half]], -1)
        n, half = half, half // 2
    return x[..., 0]
