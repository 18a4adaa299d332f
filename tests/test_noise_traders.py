"""Noise traders (``[noise_traders]``, ``market/noise_traders.py``): two-way random market orders every step.

On a book with linear impact, no depletion and no withdrawal, and a fundamental that does not move, the
traded log-price is the book's impact alone: each step the transient part decays by phi = exp(-ln 2 dt /
half-life) and a normal order of standard deviation s adds k Z, k = 0.01 s / depth. With
permanent_fraction 0 the deviation is an AR(1), so 1-step log returns have variance 2 k^2 / (1 + phi) and
lag-1 autocorrelation -(1 - phi) / 2; with permanent_fraction 1 the price is a random walk, variance k^2
and no autocorrelation. A fundamental with volatility sigma adds sigma^2 dt to the variance and nothing to the
covariance, as the orders are drawn independently of it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from stresslab.config import load_config
from stresslab.errors import ConfigError
from tests.helpers import GAP_SQUEEZE, run64

DEPTH = 1e8
SIZE = 2e6
STEPS = 400
BURN_IN = 100
PATHS = 300


MINUTE_YEARS = 1 / (365 * 24 * 60)


def _quiet_book(permanent: float, half_life_min: float, shocks: list | None = None, sigma: float = 0.0) -> dict:
    return {
        "simulation": {"steps": STEPS, "dt": "1min", "record_points": STEPS, "keep_paths": PATHS,
                       "days_per_year": 365},
        "market": {"price": 100.0, "sigma": sigma, "shocks": shocks or []},
        "liquidity": {"depth": DEPTH, "impact": "linear", "permanent_fraction": permanent, "depletion": 0.0,
                      "withdrawal": 0.0, "recovery_half_life": f"{half_life_min}min"},
        "position_grids": [{"side": "long", "notional": 1.0, "leverage_min": 2, "leverage_max": 2, "cohorts": 1}],
        "noise_traders": {"enabled": True, "size": SIZE},
    }


def _returns(ds) -> np.ndarray:
    return np.diff(np.log(ds.sample_price.values), axis=1)


def _lag1(r: np.ndarray) -> float:
    r = r - r.mean()
    return float((r[:, 1:] * r[:, :-1]).mean() / (r * r).mean())


@pytest.mark.parametrize(("half_life_min", "sigma"), [(2.0, 0.0), (10.0, 0.0), (5.0, 0.15)])
def test_transient_noise_is_an_ar1_in_the_price(half_life_min: float, sigma: float) -> None:
    phi = math.exp(-math.log(2.0) / half_life_min)
    k = 0.01 * SIZE / DEPTH
    r = _returns(run64(_quiet_book(0.0, half_life_min, sigma=sigma), paths=PATHS))[:, BURN_IN:]
    n = r.size
    noise = 2 * k**2 / (1 + phi)
    fundamental = sigma**2 * MINUTE_YEARS
    # relative standard error of a variance estimate from n correlated returns: well under 2 % here
    assert r.var() == pytest.approx(noise + fundamental, rel=0.04)
    assert _lag1(r) == pytest.approx(-(1 - phi) / 2 * noise / (noise + fundamental), abs=4 / math.sqrt(n))
    assert abs(r.mean()) < 4 * r.std() / math.sqrt(n)


def test_permanent_noise_is_a_random_walk() -> None:
    k = 0.01 * SIZE / DEPTH
    r = _returns(run64(_quiet_book(1.0, 5.0), paths=PATHS))
    assert r.var() == pytest.approx(k**2, rel=0.03)
    assert abs(_lag1(r)) < 4 / math.sqrt(r.size)


@pytest.mark.parametrize("follow", [True, False])
def test_noise_follows_the_volatility_spikes_when_asked(follow: bool) -> None:
    raw = _quiet_book(1.0, 5.0, shocks=[{"type": "vol_spike", "start": "200min", "duration": "100min",
                                         "multiplier": 2.0}])
    raw["noise_traders"]["follow_spikes"] = follow
    r = _returns(run64(raw, paths=PATHS))
    # sample_price[t] is the price after step t - 1's trade (t = 0: the start), so return j is step j's
    ratio = r[:, 200:300].var() / r[:, 50:150].var()
    assert ratio == pytest.approx(4.0 if follow else 1.0, rel=0.08)


def test_switching_them_on_at_size_zero_changes_no_other_draw() -> None:
    """The noise traders read their own columns of the step's uniforms, after the price's (with jumps: 3)."""
    raw = {**GAP_SQUEEZE, "market": {**GAP_SQUEEZE["market"], "jumps": {"intensity": 500, "mean": -0.01,
                                                                          "std": 0.02}}}
    off = run64(raw, paths=64)
    zero = run64({**raw, "noise_traders": {"enabled": True, "size": 0.0}}, paths=64)
    on = run64({**raw, "noise_traders": {"enabled": True, "size": 5e6}}, paths=64)
    for name in ("final_price", "min_price", "liquidated_long", "cascade_depth"):
        np.testing.assert_array_equal(zero[name].values, off[name].values, err_msg=name)
    assert not np.array_equal(on.final_price.values, off.final_price.values)


def test_the_same_paths_for_any_chunk_size() -> None:
    raw = {**GAP_SQUEEZE, "noise_traders": {"enabled": True, "size": 5e6}}
    whole = run64(raw, paths=96)
    chunked = run64({**raw, "simulation": {**raw["simulation"], "chunk_size": 32}}, paths=96)
    np.testing.assert_array_equal(whole.final_price.values, chunked.final_price.values)
    np.testing.assert_array_equal(whole.liquidated_long.values, chunked.liquidated_long.values)


def test_a_negative_size_is_refused_naming_the_field() -> None:
    with pytest.raises(ConfigError, match=r"noise_traders\.size"):
        load_config({**GAP_SQUEEZE, "noise_traders": {"enabled": True, "size": -1.0}})
