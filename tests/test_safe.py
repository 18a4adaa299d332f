"""safe.ratio: the value of a plain division, a finite derivative for zero and tiny denominators."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stresslab.market.safe import ratio


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_ratio_is_the_quotient_where_the_denominator_is_positive_and_otherwise_elsewhere(dtype):
    with jax.enable_x64(dtype == jnp.float64):
        x = jnp.asarray([3.0, -2.0, 5.0, 0.0], dtype)
        d = jnp.asarray([2.0, 1e-20, 0.0, 0.0], dtype)
        got = np.asarray(ratio(x, d, 7.0))
        assert got[0] == 1.5 and got[1] == np.asarray(x[1] / d[1]) and got[2] == got[3] == 7.0


@pytest.mark.parametrize("d", [0.0, 1e-20, 1e-30])
def test_ratio_has_finite_tangents_where_a_floored_division_gives_nan_in_float32(d):
    """The kernel's old pattern x / maximum(d, 1e-30) has tangent -x t_d / d^2 with d^2 overflowing in
    float32: 0 x inf = NaN, which the product with a zero share (ADL with nothing absorbed) keeps."""
    def floored(x, d):
        return 0.0 * (x / jnp.maximum(d, 1e-30))

    def safe(x, d):
        return 0.0 * ratio(x, d)

    x, d = jnp.float32(0.0), jnp.float32(d)
    tangents = (jnp.float32(1.0), jnp.float32(0.0))
    assert np.isnan(jax.jvp(floored, (x, d), tangents)[1])
    assert jax.jvp(safe, (x, d), tangents)[1] == 0.0


def test_ratio_tangent_is_the_quotient_rule():
    x, d = 3.0, 4.0
    with jax.enable_x64(True):
        for tx, td in [(1.0, 0.0), (0.0, 1.0), (0.5, -2.0)]:
            _, t = jax.jvp(ratio, (jnp.float64(x), jnp.float64(d)), (jnp.float64(tx), jnp.float64(td)))
            assert float(t) == pytest.approx(tx / d - x * td / d**2, rel=1e-15)
