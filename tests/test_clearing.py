"""The clearing solver's stopping rule: a Newton iteration stops once two steps show quadratic convergence."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stresslab.market import clearing, rules


@pytest.fixture(autouse=True)
def float64():
    with jax.enable_x64(True):
        yield


def newton(f, df, y, limit, quadratic):
    """Newton on a scalar ``f`` from ``y``: (root, iterations) under the plain or the quadratic stopping rule."""
    last = np.inf
    for k in range(1, 60):
        step = -f(y) / df(y)
        y, move = y + step, abs(step)
        if move <= limit or (quadratic and bool(rules.quadratic_done(jnp.asarray(move), jnp.asarray(last),
                                                                        jnp.asarray(limit)))):
            return y, k
        last = move
    raise AssertionError("no convergence")


@pytest.mark.parametrize("f, df, y0, root", [
    (lambda y: y * y - 2.0, lambda y: 2.0 * y, 3.0, np.sqrt(2.0)),
    (lambda y: np.exp(y) - 5.0, lambda y: np.exp(y), 0.0, np.log(5.0)),
    (lambda y: y - 0.01 * np.sqrt(1.0 + 50.0 * y * y) + 0.02, lambda y: 1.0 - 0.5 * y / np.sqrt(1.0 + 50.0 * y * y),
     0.0, None),
])
def test_the_quadratic_rule_saves_an_iteration_and_stays_within_the_tolerance(f, df, y0, root):
    limit = clearing.NEWTON_TOLERANCE * np.finfo(float).eps
    plain, n_plain = newton(f, df, y0, limit, quadratic=False)
    quick, n_quick = newton(f, df, y0, limit, quadratic=True)
    root = plain if root is None else root
    assert n_quick == n_plain - 1
    assert abs(quick - root) <= limit * (1.0 + abs(root))


def test_a_linearly_converging_sequence_does_not_stop_early():
    # fixed-point steps that halve each time: move^3 / last^2 = move / 4 is far above the limit until the end
    limit = 1e-12
    moves = 0.5 ** np.arange(1, 30)
    done = rules.quadratic_done(jnp.asarray(moves[1:]), jnp.asarray(moves[:-1]), jnp.asarray(limit))
    assert not np.any(np.asarray(done))
