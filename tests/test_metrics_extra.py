"""Confidence intervals of VaR/ES, and the liquidation, bad-debt, insurance-fund and recovery metrics."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import stresslab
from stresslab.io import store
from stresslab.metrics import (
    bad_debt_at_risk,
    es,
    es_ci,
    liquidations_at_risk,
    p_fund_exhausted,
    recovery_stats,
    var,
    var_ci,
)

REPETITIONS = 400
SAMPLE = 2000
COVERAGE_BOUNDS = (0.90, 0.99)
"""Accepted share of repetitions whose 95 % interval holds the true value (binomial se ~0.011 at 400)."""
SMALL_RUN_PATHS = 300
CONFIG = "configs/crypto_long_squeeze.toml"


def _paths(values: np.ndarray) -> xr.DataArray:
    """Samples on the last axis as a ``path`` dim (one ``scenario`` per leading row)."""
    values = np.atleast_2d(values)
    return xr.DataArray(values, dims=("scenario", "path"), coords={"scenario": np.arange(values.shape[0])},
                        name="loss", attrs={"units": "USD", "long_name": "loss"})


def _coverage(interval: xr.DataArray, truth: float) -> float:
    lower, upper = interval.sel(bound="lower"), interval.sel(bound="upper")
    return float(((lower <= truth) & (truth <= upper)).mean())


@pytest.fixture(scope="module")
def exponential_repetitions() -> xr.DataArray:
    """REPETITIONS independent Exp(1) samples of SAMPLE paths, one per ``scenario``."""
    return _paths(np.random.default_rng(11).exponential(size=(REPETITIONS, SAMPLE)))


@pytest.fixture(scope="module")
def run() -> xr.Dataset:
    """A small run of a shipped scenario in which the fund is exhausted and some paths recover."""
    with pytest.warns(RuntimeWarning, match="insurance fund"):
        return stresslab.simulate(CONFIG, paths=SMALL_RUN_PATHS, seed=3)


@pytest.mark.parametrize("level", [0.95, 0.99])
def test_var_ci_covers_the_true_quantile(exponential_repetitions: xr.DataArray, level: float) -> None:
    coverage = _coverage(var_ci(exponential_repetitions, level), -math.log(1 - level))
    assert COVERAGE_BOUNDS[0] <= coverage <= COVERAGE_BOUNDS[1]


def test_es_ci_covers_the_true_shortfall(exponential_repetitions: xr.DataArray) -> None:
    level = 0.95
    # memoryless: ES = VaR + 1
    coverage = _coverage(es_ci(exponential_repetitions, level), -math.log(1 - level) + 1)
    assert COVERAGE_BOUNDS[0] <= coverage <= COVERAGE_BOUNDS[1]


def test_es_ci_covers_the_true_shortfall_of_a_uniform() -> None:
    level = 0.95
    x = _paths(np.random.default_rng(12).uniform(size=(REPETITIONS, SAMPLE)))
    coverage = _coverage(es_ci(x, level), (1 + level) / 2)
    assert COVERAGE_BOUNDS[0] <= coverage <= COVERAGE_BOUNDS[1]


def test_intervals_bracket_the_estimate_and_carry_bound_labels(exponential_repetitions: xr.DataArray) -> None:
    for interval, estimate in ((var_ci(exponential_repetitions, 0.95), var(exponential_repetitions, 0.95)),
                               (es_ci(exponential_repetitions, 0.95), es(exponential_repetitions, 0.95))):
        assert interval.dims == ("scenario", "bound")
        assert list(interval["bound"].values) == ["lower", "upper"]
        assert (interval.sel(bound="lower") <= estimate).all()
        assert (estimate <= interval.sel(bound="upper")).all()
        assert interval.attrs["units"] == "USD"
        assert "confidence interval" in interval.attrs["long_name"]


def test_intervals_narrow_with_more_paths() -> None:
    rng = np.random.default_rng(13)
    widths = {}
    for n in (1_000, 16_000):
        x = _paths(rng.exponential(size=(50, n)))
        widths[n] = [float(ci.diff("bound").mean()) for ci in (var_ci(x, 0.95), es_ci(x, 0.95))]
    for small, large in zip(widths[1_000], widths[16_000], strict=True):
        assert large < small / 3  # width ~ 1/sqrt(n): a factor of 4 expected


def test_higher_confidence_gives_wider_intervals() -> None:
    x = _paths(np.random.default_rng(14).exponential(size=5_000))
    for ci in (var_ci, es_ci):
        assert ci(x, 0.99, 0.99).diff("bound").item() > ci(x, 0.99, 0.8).diff("bound").item()


def test_var_ci_is_order_statistics_of_the_binomial_ranks() -> None:
    # n = 1000, level 0.5: the 95 % interval for the median is X_(469) .. X_(532) (binomial ranks)
    x = _paths(np.random.default_rng(15).permutation(np.arange(1.0, 1001.0)))
    assert var_ci(x, 0.5).values.tolist() == [[469.0, 532.0]]


def test_intervals_are_nan_with_a_nan_path_and_work_on_datasets() -> None:
    values = np.random.default_rng(16).exponential(size=(2, 500))
    values[1, 7] = np.nan
    x = _paths(values)
    assert np.isnan(var_ci(x, 0.9).values[1]).all() and np.isnan(es_ci(x, 0.9).values[1]).all()
    assert np.isfinite(var_ci(x, 0.9).values[0]).all()
    both = es_ci(xr.Dataset({"a": x, "b": x * 2}), 0.9)
    xr.testing.assert_allclose(both["b"], 2 * both["a"], check_dim_order=True)


def test_confidence_must_be_a_probability() -> None:
    with pytest.raises(ValueError, match="confidence"):
        var_ci(_paths(np.arange(10.0)), 0.9, confidence=1.0)


@pytest.mark.slow
def test_liquidations_and_bad_debt_at_risk_equal_var_es_of_the_variables(run: xr.Dataset) -> None:
    total = run["liquidated_long"] + run["liquidated_short"]
    for level in (0.9, 0.99):
        liquidations = run.stress.liquidations_at_risk(level)
        np.testing.assert_array_equal(liquidations["var"], var(total, level))
        np.testing.assert_array_equal(liquidations["es"], es(total, level))
        xr.testing.assert_identical(liquidations, liquidations_at_risk(run, level))
        bad_debt = run.stress.bad_debt_at_risk(level)
        np.testing.assert_array_equal(bad_debt["var"], var(run["bad_debt"], level))
        np.testing.assert_array_equal(bad_debt["es"], es(run["bad_debt"], level))
        xr.testing.assert_identical(bad_debt, bad_debt_at_risk(run, level))
    assert run.stress.liquidations_at_risk(0.99)["var"].item() > 0
    assert run.stress.liquidations_at_risk(0.99)["es"].attrs["units"] == run["liquidated_long"].attrs["units"]


@pytest.mark.slow
def test_p_fund_exhausted_is_the_share_of_paths_with_an_exhaustion_step(run: xr.Dataset) -> None:
    steps = run["fund_exhausted_step"].values
    expected = (steps >= 0).sum(axis=-1) / steps.shape[-1]
    p = run.stress.p_fund_exhausted()
    np.testing.assert_allclose(p.values, expected)
    assert 0 < p.item() < 1  # the scenario exhausts the fund on some paths, not all
    assert p.attrs["units"] == "1"
    xr.testing.assert_identical(p, p_fund_exhausted(run))


@pytest.mark.slow
def test_recovery_statistics_on_a_small_run(run: xr.Dataset) -> None:
    stats = run.stress.recovery()
    trough, recovery = run["time_to_trough"].values[0], run["recovery_time"].values[0]
    assert stats["median_time_to_trough"].item() == pytest.approx(np.median(trough[~np.isnan(trough)]))
    assert stats["median_recovery_time"].item() == pytest.approx(np.median(recovery[~np.isnan(recovery)]))
    assert stats["p_recovered"].item() == pytest.approx(np.mean(~np.isnan(recovery)))
    assert 0 < stats["p_recovered"].item() < 1
    assert stats["median_time_to_trough"].attrs["units"] == "s"
    assert stats["p_recovered"].attrs["units"] == "1"
    xr.testing.assert_identical(stats, recovery_stats(run))


def test_recovery_medians_are_nan_when_no_path_fell_or_recovered() -> None:
    nan = np.full((1, 5), np.nan)
    ds = xr.Dataset({"time_to_trough": (("scenario", "path"), nan, {"units": "s"}),
                     "recovery_time": (("scenario", "path"), nan, {"units": "s"})})
    stats = recovery_stats(ds)
    assert np.isnan(stats["median_time_to_trough"]).all() and np.isnan(stats["median_recovery_time"]).all()
    assert stats["p_recovered"].item() == 0.0


@pytest.mark.slow
def test_accessor_answers_on_a_lazy_zarr_store(run: xr.Dataset, tmp_path: Path) -> None:
    lazy = store.read(store.write(run, tmp_path / "run.zarr"))
    for name in ("cascade_depth", "bad_debt"):
        xr.testing.assert_allclose(lazy.stress.var_ci(name, 0.95).load(), run.stress.var_ci(name, 0.95))
        xr.testing.assert_allclose(lazy.stress.es_ci(name, 0.95).load(), run.stress.es_ci(name, 0.95))
    xr.testing.assert_allclose(lazy.stress.liquidations_at_risk(0.95).load(), run.stress.liquidations_at_risk(0.95))
    xr.testing.assert_allclose(lazy.stress.p_fund_exhausted().load(), run.stress.p_fund_exhausted())
    xr.testing.assert_allclose(lazy.stress.recovery().load(), run.stress.recovery())


def test_accessor_names_the_missing_variable() -> None:
    ds = xr.Dataset({"cascade_depth": (("scenario", "path"), np.zeros((1, 3)))})
    with pytest.raises(KeyError, match="bad_debt"):
        ds.stress.bad_debt_at_risk(0.9)
    with pytest.raises(KeyError, match="fund_exhausted_step"):
        ds.stress.p_fund_exhausted()
