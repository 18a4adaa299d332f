"""market/compact.py: rare per-path work runs on the paths that need it, in batches, and nowhere else."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from stresslab.market.compact import on_paths


def _work(state, scale):
    """A per-path update of a two-array state with a per-path argument (no multiply-add, so that compiled
    and op-by-op evaluation round alike)."""
    units, cash = state
    return units * scale[:, None], cash - scale + units[:, 0]


@pytest.mark.parametrize(("n", "share", "batch"), [(100, 0.4, 16), (100, 0.03, 16), (7, 1.0, 32), (64, 1.0, 64)])
def test_on_paths_equals_the_work_where_needed_and_nothing_elsewhere(n: int, share: float, batch: int) -> None:
    rng = np.random.default_rng(n + batch)
    need = rng.random(n) < share
    units = jnp.asarray(rng.random((n, 3)))
    cash = jnp.asarray(rng.random(n))
    scale = jnp.asarray(rng.random(n) + 0.5)
    got_units, got_cash = on_paths(jnp.asarray(need), _work, (units, cash), scale, batch=batch)
    all_units, all_cash = _work((units, cash), scale)
    np.testing.assert_array_equal(got_units, np.where(need[:, None], all_units, units))
    np.testing.assert_array_equal(got_cash, np.where(need, all_cash, cash))


def test_on_paths_with_no_path_in_need_returns_the_state_unchanged() -> None:
    units, cash = jnp.ones((10, 2)), jnp.zeros(10)
    got = on_paths(jnp.zeros(10, bool), _work, (units, cash), jnp.ones(10), batch=4)
    np.testing.assert_array_equal(got[0], units)
    np.testing.assert_array_equal(got[1], cash)
