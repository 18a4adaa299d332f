"""docs/validation.md oracle 3: liquidation cascade sizes follow the Borel distribution.

Liquidation thresholds form a Poisson process with intensity ``nu`` per unit of
log-price drop below the first one; every liquidation moves the log-price down by
``a`` (linear impact); a gap triggers the first. The number of liquidations in
the cascade is Borel(m), m = nu * a, and it must complete inside one step through
the intra-step cascade rounds.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import within
from oracles import borel_pmf

from stresslab.config import load_config
from stresslab.engine.keys import path_keys, step_uniforms
from stresslab.market import clearing, step
from stresslab.market.model import build, init
from stresslab.market.step import market_step

pytestmark = pytest.mark.slow  # Monte Carlo oracle: 20,000 paths through the kernel

PATHS = 20_000
COHORTS = 64
STEP = 1e-4
"""Log-price drop per liquidation (a); small, so notional moving with price biases m by < 0.5 %."""
DEPTH = 1e8
S0 = 100.0
FIRST = 1e-6
"""First threshold, just below S0; the gap overshoots it by as much (nu * FIRST << 1)."""


def cascade_sizes(m: float, seed: int) -> np.ndarray:
    nu = m / STEP
    config = load_config({
        "simulation": {"steps": 1, "dt": "1s", "dtype": "float64", "cascade_rounds": COHORTS},
        "market": {"price": S0, "sigma": 0.0,
                   "shocks": [{"type": "gap", "at": "0s", "size": float(np.expm1(-2 * FIRST))}]},
        "liquidity": {"depth": DEPTH, "permanent_fraction": 1.0, "depletion": 0.0},
        "position_grids": [{"side": "long", "notional": 1e6, "leverage_min": 2, "leverage_max": 3,
                            "cohorts": COHORTS, "maintenance_margin": 0.0}],
        "liquidation": {"adl": False, "insurance_fund": 1e12},
    }).scenarios[0]
    with jax.enable_x64(True):
        params, static = build(config)
        rng = np.random.default_rng(seed)
        spacing = rng.exponential(1 / nu, (PATHS, COHORTS - 1))
        drops = FIRST + np.concatenate([np.zeros((PATHS, 1)), np.cumsum(spacing, 1)], 1)
        # Liquidation (= bankruptcy, mm = 0) at S0 * exp(-drop): margin per unit S0 * (1 - exp(-drop)).
        margins = jnp.asarray(S0 * -np.expm1(-drops))[:, None, :]  # (paths, venue, cohort)
        units0 = jnp.full((1, COHORTS), STEP * DEPTH / (0.01 * S0))

        def path(margin, draws):
            """One path with its own thresholds: the kernel's parameters have no path axis, so each path is
            a market of its own (vmap), stepped once from the start."""
            cohorts = params.positions.cohorts._replace(margin_per_unit=margin, units0=units0)
            p = params.replace(positions=params.positions._replace(cohorts=cohorts))
            state, summary = init(p, static, 1)
            state, _ = market_step(p, static, state, summary, jnp.int32(0), draws[None])
            return jnp.sum(state.positions.units[0, 0] == 0)

        @jax.jit
        def one_step(margins):
            keys = path_keys(jax.random.key(seed), jnp.uint32(0), PATHS)
            return jax.vmap(path)(margins, step_uniforms(keys, jnp.int32(0), static.price.n_draws, jnp.float64))

        return np.asarray(one_step(margins))


@pytest.mark.parametrize("m", [0.3, 0.6])
def test_cascade_size_is_borel(m, monkeypatch):
    # one path per vmapped market: batches of one path for the compacted rounds and fills (their size
    # changes no number, tests/test_compact.py) keep each market's work at one path
    monkeypatch.setattr(clearing, "ROUND_BATCH", 1)
    monkeypatch.setattr(step, "FILL_BATCH", 1)
    sizes = cascade_sizes(m, seed=int(m * 10))
    assert sizes.min() >= 1 and sizes.max() < COHORTS
    mean_expected = 1 / (1 - m)
    var_expected = m / (1 - m) ** 3
    assert within(sizes.mean(), mean_expected, np.sqrt(var_expected / PATHS), bias=0.005 * mean_expected)
    for k in range(1, 6):
        p = borel_pmf(k, m)
        assert within(np.mean(sizes == k), p, np.sqrt(p * (1 - p) / PATHS), bias=0.003), (k, np.mean(sizes == k), p)
