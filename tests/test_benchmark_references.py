"""The benchmarks' NumPy and Numba references compute stresslab's model (issue 6, item 1).

From the same random draws (stresslab's own uniforms, ``engine/keys.py``), in float64,
every per-path output of ``benchmarks/numpy_ref.py`` and ``benchmarks/numba_ref.py``
equals stresslab's to float tolerance on the reference scenario
(``benchmarks/reference.toml``, shortened to 4 h with 30-minute funding so that every
mechanism acts), and the run exercises every mechanism the references port. Their own
generators (PCG64 for NumPy, SplitMix64 for Numba, used by the timed benchmark) give the
same distributions. The Numba tests skip, saying why, when numba is not installed
(``pip install numba``).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import ks_2samp

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import numpy_ref  # noqa: E402
import scenario  # noqa: E402

from stresslab.engine.runner import precision  # noqa: E402
from stresslab.engine.scan import simulate_chunk  # noqa: E402
from stresslab.market.model import build  # noqa: E402

HAVE_NUMBA = importlib.util.find_spec("numba") is not None
needs_numba = pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed (pip install numba): "
                                                        "the Numba reference cannot be checked")

PATHS = 64
STEPS = 240
"""4 h at 1-minute steps: the calm first 2 h, the gap, the sell program and the cascade that follows."""
SEED = 0
OVERRIDES = ["simulation.dtype=float64", "funding.interval=30min"]
RTOL = 1e-9
"""Relative tolerance of float outputs; the absolute floor is RTOL x the largest |value| of the output."""


@pytest.fixture(scope="module")
def case():
    """The float64 test scenario, stresslab's draws and stresslab's per-path outputs."""
    cfg = scenario.config(steps=STEPS, overrides=OVERRIDES)
    sc = scenario.from_config(cfg)
    draws = scenario.stresslab_draws(sc, SEED, PATHS)
    with precision("float64"):
        params, static = build(cfg)
        out, _ = simulate_chunk(params, static, jax.random.key(SEED), jnp.uint32(0), PATHS)
        expected = {name: np.asarray(value) for name, value in out.items()}
    return sc, draws, expected


def _assert_same(expected: dict[str, np.ndarray], got: dict[str, np.ndarray]) -> None:
    assert set(scenario.OUTPUTS) <= set(expected)
    for name in scenario.OUTPUTS:
        want, have = expected[name], got[name]
        assert have.shape == want.shape, name
        if np.issubdtype(want.dtype, np.integer):
            np.testing.assert_array_equal(have, want, err_msg=name)
            continue
        scale = np.nanmax(np.abs(want), initial=0.0)
        np.testing.assert_allclose(have, want, rtol=RTOL, atol=RTOL * scale, equal_nan=True, err_msg=name)


@pytest.mark.slow
def test_numpy_reference_matches_stresslab(case):
    sc, draws, expected = case
    _assert_same(expected, numpy_ref.simulate(sc, PATHS, draws=draws, chunk=40))


@pytest.mark.slow
@needs_numba
def test_numba_reference_matches_stresslab(case):
    import numba_ref

    sc, draws, expected = case
    _assert_same(expected, numba_ref.simulate(sc, PATHS, draws=draws))


@pytest.mark.slow
def test_the_test_run_exercises_every_mechanism(case):
    """Agreement means something only if ADL, the band, halts, funding, haircuts and multi-round cascades happen."""
    sc, draws, expected = case
    stats: dict[str, int] = {}
    numpy_ref.simulate(sc, PATHS, draws=draws, stats=stats)
    trading_steps = PATHS * STEPS - stats["halted"]
    assert stats["rounds"] > trading_steps, "no cascade needed a second round"
    assert stats["adl"] > 0 and stats["band"] > 0 and stats["halted"] > 0 and stats["settle"] > 0
    assert (expected["adl_notional"] > 0).any() and (expected["socialised_loss"] > 0).any()
    assert (expected["bad_debt"] > 0).any() and (expected["liquidated_short"] > 0).any()
    assert (expected["halt_count"] >= 2).any()
    assert (expected["funding_long"] != 0).all() and (expected["max_funding_rate"] > expected["min_funding_rate"]).all()
    assert (expected["haircut_ratio"] > 1.5).any()
    assert (expected["min_depth_ratio"] < 0.5).any() and (expected["min_basis"] < -0.01).any()


def test_reference_config_switches_on_every_mechanism():
    sc = scenario.load()
    assert sc.n_steps == 1440 and sc.dtype == np.float32
    assert sc.n_cohorts >= 32 and set(np.unique(sc.side)) == {-1.0, 1.0}
    assert sc.tier_rate.shape[1] > 1 and sc.impact_sqrt and sc.depletion > 0 and sc.withdrawal > 0
    assert sc.dealer_book == "options" and sc.quantity.size >= 2
    assert sc.adl and sc.fund0 > 0 and np.isfinite(sc.max_order)
    assert sc.funding_every and sc.arbitrage and sc.breakers and sc.drop.size >= 2 and sc.band and sc.haircuts
    assert sc.max_jumps and sc.gap_t.min() < 0 and sc.sigma_t.max() > sc.sigma_t.min() and sc.sell_total.size


def test_unported_mechanisms_are_refused():
    with pytest.raises(scenario.Unsupported, match="several venues"):
        scenario.load(overrides=["venues=[{name = 'a'}, {name = 'b'}]"])
    with pytest.raises(scenario.Unsupported, match="mark"):
        scenario.load(overrides=["oracle.mark=spot"])


@pytest.mark.slow
@needs_numba
def test_own_generators_give_the_same_distributions():
    """NumPy (PCG64) and Numba (SplitMix64, Box-Muller) draws, as timed by benchmarks/run.py: same laws."""
    import numba_ref

    sc = scenario.load(steps=180, overrides=["simulation.dtype=float64"])
    n = 800
    a = numpy_ref.simulate(sc, n, seed=1)
    b = numba_ref.simulate(sc, n, seed=2)
    for name in ("cascade_depth", "final_price", "liquidated_long", "realized_vol"):
        assert ks_2samp(a[name], b[name]).pvalue > 1e-3, name
