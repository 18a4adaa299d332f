"""market/reduce.py: the order-fixed sum over a small axis."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from stresslab.engine.runner import precision
from stresslab.market.reduce import fixed_sum


def _padded_tree(x: np.ndarray) -> np.ndarray:
    """The defining order: zero-pad the last axis to a power of two, then add halves until one is left."""
    n = x.shape[-1]
    size = 1 << (n - 1).bit_length()
    x = np.concatenate([x, np.zeros((*x.shape[:-1], size - n), x.dtype)], -1)
    while x.shape[-1] > 1:
        half = x.shape[-1] // 2
        x = x[..., :half] + x[..., half:]
    return x[..., 0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fixed_sum_adds_in_the_padded_tree_order_bit_for_bit(dtype) -> None:
    """Every length from 1 to 69 (powers of two and not), magnitudes over 10 decades so that the order shows in
    the rounding: the same bits as the zero-padded tree, and a different order would not give them."""
    rng = np.random.default_rng(5)
    differs = 0
    for n in range(1, 70):
        x = (rng.normal(size=(6, n)) * 10.0 ** rng.uniform(-5, 5, size=(6, n))).astype(dtype)
        with precision(np.dtype(dtype).name):
            got = np.asarray(fixed_sum(jnp.asarray(x), -1))
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, _padded_tree(x), err_msg=f"length {n}")
        differs += int(np.any(got != np.cumsum(x, -1)[..., -1]))
    assert differs > 30  # left-to-right summation rounds differently: the test sees the order


def test_fixed_sum_over_an_inner_axis_and_an_empty_one() -> None:
    x = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(np.asarray(fixed_sum(jnp.asarray(x), 1)), x.sum(1))
    assert fixed_sum(jnp.zeros((3, 0)), -1).shape == (3,)
