"""docs/validation.md oracle 6: the expected time to a drawdown breaker (Taylor 1975; Lehoczky 1977), and a
fixed-reference breaker firing with the first-passage probability of GBM (oracle 1)."""

from __future__ import annotations

import math

import pytest
from helpers import proportion_stderr, within
from oracles import BGK_BETA, first_passage_discrete

YEAR = 365 * 86400.0


def taylor_drawdown_time(d: float, nu: float, sigma: float) -> float:
    """Expected time for a Brownian motion with drift nu, volatility sigma to fall d below its running
    maximum (Taylor 1975; Lehoczky 1977): sigma^2 / (2 nu^2) (exp(2 nu d / sigma^2) - 1 - 2 nu d / sigma^2)."""
    if nu == 0:
        return d * d / sigma**2
    x = 2 * nu * d / sigma**2
    return sigma**2 / (2 * nu**2) * (math.expm1(x) - x)


def test_taylor_formula_limits():
    assert taylor_drawdown_time(0.05, 1e-6, 0.8) == pytest.approx(0.05**2 / 0.64, rel=1e-4)
    # Upward drift makes a drawdown take longer, downward shorter (about d / |nu| for a strong one).
    assert taylor_drawdown_time(0.05, 2.0, 0.8) > 0.05**2 / 0.64 > taylor_drawdown_time(0.05, -2.0, 0.8)
    assert taylor_drawdown_time(0.05, -200.0, 0.8) == pytest.approx(0.05 / 200 - 0.64 / (2 * 200**2), rel=1e-9)


DRAWDOWN_STEPS = 4000
DRAWDOWN_DT = 600.0
DRAWDOWN_PATHS = 3000
DRAWDOWN_RESIDUAL = 0.01
"""Relative allowance for the error left after the discrete-monitoring correction at ~200-350 steps per
expected halt time (a Gaussian random walk check of the correction gives < 0.5 %)."""


@pytest.mark.slow
@pytest.mark.parametrize("sigma,drop,nu", [(0.8, 0.05, 0.0), (0.5, 0.03, 4.0), (0.6, 0.04, -4.0)])
def test_drawdown_breaker_expected_halt_time_matches_taylor(run64, sigma, drop, nu):
    """docs/validation.md 6. A "peak" breaker with a halt longer than the run fires once, and halted_time =
    horizon - trigger time. ``market.drift`` is the price drift: log drift nu = drift - sigma^2 / 2.

    Monitoring once per step both lowers the running peak and overshoots the level, each by about
    beta sigma sqrt(dt) (beta = 0.5826, Broadie-Glasserman-Kou / Siegmund), so the discrete breaker
    matches the continuous formula at d + 2 beta sigma sqrt(dt); d itself would be 10-15 % short here.
    """
    horizon = DRAWDOWN_STEPS * DRAWDOWN_DT
    ds = run64({"simulation": {"steps": DRAWDOWN_STEPS, "dt": DRAWDOWN_DT, "record_points": 1},
                "market": {"sigma": sigma, "drift": nu + sigma**2 / 2},
                "liquidity": {"enabled": False},
                "breakers": {"enabled": True, "reference": "peak", "levels": [{"drop": drop, "halt": 2 * horizon}]}},
               paths=DRAWDOWN_PATHS, seed=17)
    assert (ds.halt_count == 1).all(), "every path must fire within the horizon (no censoring)"
    tau = (horizon - ds.halted_time.values) / YEAR
    d = -math.log1p(-drop)
    expected = taylor_drawdown_time(d + 2 * BGK_BETA * sigma * math.sqrt(DRAWDOWN_DT / YEAR), nu, sigma)
    stderr = tau.std(ddof=1) / math.sqrt(tau.size)
    assert within(tau.mean(), expected, stderr, DRAWDOWN_RESIDUAL * expected), (tau.mean(), expected, stderr)
    assert horizon / YEAR > 10 * expected


@pytest.mark.slow
@pytest.mark.parametrize("sigma,drop", [(0.8, 0.05), (1.2, 0.1)])
def test_fixed_reference_breaker_fires_with_first_passage_probability(run64, sigma, drop):
    """docs/validation.md 6: a "start" breaker fires when the price first reaches S0 (1 - drop): oracle 1."""
    paths, steps = 20_000, 96
    ds = run64({"simulation": {"horizon": "1d", "dt": 86400 / steps, "record_points": 1},
                "market": {"sigma": sigma},
                "liquidity": {"enabled": False},
                "breakers": {"enabled": True, "levels": [{"drop": drop, "halt": "1min"}]}}, paths=paths, seed=4)
    estimate = float((ds.halt_count > 0).mean())
    expected = first_passage_discrete(100.0, 100.0 * (1 - drop), 0.0, sigma, 1 / 365, steps)
    assert within(estimate, expected, proportion_stderr(expected, paths), 0.006), (estimate, expected)
