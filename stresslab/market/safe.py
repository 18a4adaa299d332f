"""Division whose forward-mode derivative stays finite for zero and tiny denominators.

JAX differentiates x / d as ``t_x / d - x t_d / d²``. In float32, d² overflows once d is
below about 1e-19 (a floor such as ``jnp.maximum(d, 1e-30)``, or a cohort's last units),
and the tangent becomes 0 x inf = NaN, which a ``where`` or a ``minimum`` further on
multiplies into results that do not depend on it. :func:`ratio` divides by 1 where d = 0
and differentiates as ``(t_x - q t_d) / d`` with q = x / d: no d² anywhere.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


@jax.custom_jvp
def _quotient(numerator: jnp.ndarray, denominator: jnp.ndarray) -> jnp.ndarray:
    return numerator / denominator


@_quotient.defjvp
def _quotient_jvp(primals, tangents):
    (x, d), (t_x, t_d) = primals, tangents
    q = x / d
    return q, (t_x - q * t_d) / d


def ratio(numerator: jnp.ndarray, denominator: jnp.ndarray, otherwise: float | jnp.ndarray = 0.0) -> jnp.ndarray:
    """``numerator / denominator`` where the denominator is positive, else ``otherwise`` (same units as the
    quotient); the tangent is finite wherever the quotient and its derivative are."""
    positive = denominator > 0
    return jnp.where(positive, _quotient(numerator, jnp.where(positive, denominator, 1.0)), otherwise)
