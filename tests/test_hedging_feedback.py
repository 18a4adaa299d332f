"""docs/validation.md oracle 2: constant-gamma dealer feedback (Frey 1998; Frey-Stremme 1997).

Linear impact, all impact permanent, no depletion or withdrawal, no positions:
per-step return variance is multiplied by 1/(1 - phi)^2 with phi = gamma / depth
for short-gamma dealers and by 1/(1 + phi)^2 for long gamma, because hedging is
solved within the step.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import within

import stresslab

PATHS = 4000
SIGMA = 0.6
DEPTH = 1e7
DT_YEARS = 300 / (365 * 86400)


def config(gamma: float, **liquidity) -> dict:
    return {
        "simulation": {"horizon": "1d", "dt": "5min", "dtype": "float64", "record_points": 2},
        "market": {"sigma": SIGMA},
        "liquidity": {"depth": DEPTH, "permanent_fraction": 1.0, "depletion": 0.0, "withdrawal": 0.0, **liquidity},
        "dealers": {"enabled": True, "book": "constant_gamma", "gamma": gamma},
    }


@pytest.mark.slow
@pytest.mark.parametrize("phi", [-0.7, -0.3, 0.0, 0.3, 0.6, 0.85])
def test_return_variance_scales_by_frey_factor(phi):
    ds = stresslab.simulate(config(phi * DEPTH), paths=PATHS, seed=3)
    rv2 = ds.realized_vol.isel(scenario=0).values ** 2
    # E[r^2] per step = (sigma^2 dt + sigma^4 dt^2 / 4) / (1 - phi)^2, annualised.
    expected = (SIGMA**2 + SIGMA**4 * DT_YEARS / 4) / (1 - phi) ** 2
    stderr = rv2.std(ddof=1) / np.sqrt(rv2.size)
    assert within(rv2.mean(), expected, stderr), (rv2.mean(), expected, stderr)


def test_phi_at_or_above_one_is_refused_with_a_clear_message():
    for phi in (1.0, 1.5):
        with pytest.raises(stresslab.ConfigError, match=r"dealers\.gamma / liquidity\.depth .* >= 1"):
            stresslab.simulate(config(phi * DEPTH), paths=10)


@pytest.mark.slow
def test_feedback_that_turns_unstable_in_the_run_is_reported_not_silent():
    """Depth withdrawn in a volatility spike pushes gamma/depth past 1 mid-run."""
    cfg = config(0.15 * DEPTH, withdrawal=1.0, vol_half_life="30min")
    cfg["market"]["shocks"] = [{"type": "vol_spike", "start": "2h", "duration": "2h", "multiplier": 8.0}]
    with pytest.raises(stresslab.StresslabError, match="unstable"):
        stresslab.simulate(cfg, paths=200)
    with pytest.warns(RuntimeWarning, match="unstable"):
        ds = stresslab.simulate(cfg, paths=200, on_error="warn")
    flagged = ds.unstable_step.values[ds.unstable_step.values >= 0]
    assert flagged.size > 0 and (flagged >= 24).all()  # stable before the spike at step 24
    for name in ("min_price", "final_price", "cascade_depth", "realized_vol"):
        assert np.isfinite(ds[name]).all()
    assert (ds.min_price > 0).all()
