"""The one-sided ramp with which the smooth rules relax a threshold decision.

A hard rule fires where some excess ``x`` (a shortfall, a deficit) is positive. Its relaxation
``ramp(x / T)`` is 0 for x <= 0, exactly as the hard rule, rises over 0 < x < T and is 1 from x >= T:
the quintic smoothstep t^3 (10 - 15 t + 6 t^2) of t = clip(x / T, 0, 1), twice continuously
differentiable. Unlike a sigmoid it leaves everything that is on the safe side of the threshold
untouched (a sigmoid's tail liquidates a little of every healthy cohort, and the many small
contributions make the relaxed objective curve at the scale a finite difference sees), and it tends
to the hard rule as T goes to 0 (docs/calibration.md gives the measurements behind the choice).
"""

from __future__ import annotations

import jax.numpy as jnp


def ramp(z: jnp.ndarray) -> jnp.ndarray:
    """Quintic smoothstep of ``z`` (dimensionless: excess over the relaxation width): 0 for z <= 0,
    1 for z >= 1, C² in between."""
    t = jnp.clip(z, 0.0, 1.0)
    return t * t * t * (10.0 - 15.0 * t + 6.0 * t * t)
