"""The clearing solver's stopping rule (a Newton iteration stops once two steps show quadratic convergence), and
the step's first queue taken on the queued paths only (``clearing.first_queue``)."""

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


def test_the_first_queue_is_the_queue_bit_for_bit():
    """``clearing.first_queue`` takes the sums over cohorts only on paths with something queued and fills the
    others from the cohorts' sides alone: every field equals ``clearing.queue``'s bit for bit, the sign of a
    zero included (venue 1 holds only short cohorts, whose empty queue sums to -0.0). 300 paths (three
    batches), 2 venues, 5 cohorts, 3 defensive populations; a third of the paths queue nothing, some queue
    cohorts without units or stop populations without a position, a quarter hold only small positions."""
    from types import SimpleNamespace

    rng = np.random.default_rng(11)
    n, v, c, d = 300, 2, 5, 3
    side = jnp.asarray([[1.0, 1.0, -1.0, 1.0, -1.0], [-1.0] * c])
    params = SimpleNamespace(
        positions=SimpleNamespace(cohorts=SimpleNamespace(side=side, margin_per_unit=jnp.asarray(
            rng.uniform(1.0, 50.0, (v, c))))),
        collateral=SimpleNamespace(share=jnp.asarray(0.3)),
        defensive=SimpleNamespace(side=jnp.asarray([[1.0, -1.0, -1.0], [-1.0, -1.0, -1.0]])))
    units = rng.uniform(0.0, 5.0, (n, v, c)) * (rng.uniform(size=(n, v, c)) > 0.3)
    in_liq = (rng.uniform(size=(n, v, c)) > 0.6) * rng.choice([1.0, 0.37], (n, v, c))
    defensive_units = rng.uniform(0.0, 3.0, (n, v, d)) * (rng.uniform(size=(n, v, d)) > 0.3)
    stopped = rng.uniform(size=(n, v, d)) > 0.7
    units[rng.uniform(size=n) < 1 / 4] *= 1e-3  # small positions: a path needs the sums for any unit queued
    idle = rng.uniform(size=n) < 1 / 3
    in_liq[idle], stopped[idle] = 0.0, False
    fields = dict.fromkeys(clearing.Flow._fields)
    fields.update(y_base=jnp.zeros((n, v)), units=jnp.asarray(units), defensive_units=jnp.asarray(defensive_units))
    f = clearing.Flow(**fields)
    want, got = (jax.jit(lambda f, liq, stop, fn=fn: fn(params, f, liq, stop))(f, jnp.asarray(in_liq),
                                                                             jnp.asarray(stopped))
                 for fn in (clearing.queue, clearing.first_queue))  # compiled, as in the kernel
    for name, w, g in zip(clearing.Queue._fields, want, got, strict=True):
        w, g = np.asarray(w), np.asarray(g)
        assert np.array_equal(w, g) and np.array_equal(np.signbit(w), np.signbit(g)), name
    assert np.signbit(np.asarray(want.net_units)[idle, 1]).all()  # the case that a plain 0.0 would get wrong
