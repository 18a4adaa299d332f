"""Tail metrics: VaR/ES against distributions with known quantiles, and their structural properties."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from helpers import within

from stresslab.metrics import es, exceedance, summary_table, var

LARGE_N = 200_000
LEVELS = (0.5, 0.9, 0.95, 0.99)


def _paths(values: np.ndarray, **attrs: str) -> xr.DataArray:
    """Samples on the last axis as a ``path`` dim (one ``scenario`` per leading row)."""
    values = np.atleast_2d(values)
    return xr.DataArray(values, dims=("scenario", "path"), coords={"scenario": np.arange(values.shape[0])},
                        name="loss", attrs=attrs)


def _quantile_se(level: float, density_at_quantile: float, n: int) -> float:
    """Asymptotic standard error of the empirical ``level``-quantile."""
    return math.sqrt(level * (1 - level) / n) / density_at_quantile


def _es_se(level: float, tail_variance: float, tail_excess: float, n: int) -> float:
    """Asymptotic standard error of empirical ES: tail variance plus the uncertainty of where the tail starts."""
    return math.sqrt((tail_variance + level * tail_excess**2) / (n * (1 - level)))


@pytest.mark.parametrize("level", LEVELS)
def test_uniform_matches_known_quantile_and_shortfall(level: float) -> None:
    x = np.random.default_rng(1).uniform(size=LARGE_N)
    width = 1 - level
    assert within(var(_paths(x), level).item(), level, _quantile_se(level, 1.0, LARGE_N))
    assert within(es(_paths(x), level).item(), (1 + level) / 2, _es_se(level, width**2 / 12, width / 2, LARGE_N))


@pytest.mark.parametrize("level", LEVELS)
def test_exponential_matches_known_quantile_and_shortfall(level: float) -> None:
    x = np.random.default_rng(2).exponential(size=LARGE_N)
    quantile = -math.log(1 - level)
    assert within(var(_paths(x), level).item(), quantile, _quantile_se(level, 1 - level, LARGE_N))
    # memoryless: the excess over any threshold is again Exp(1), mean 1 and variance 1
    assert within(es(_paths(x), level).item(), quantile + 1, _es_se(level, 1.0, 1.0, LARGE_N))


@pytest.mark.parametrize(("n", "level", "expected_var", "expected_es"), [
    (200, 0.95, 190.0, 195.5),  # 0.95 * 200 is 190.00000000000003 in floating point
    (1000, 0.99, 990.0, 995.5),
    (10, 0.95, 10.0, 10.0),
    (7, 0.5, 4.0, 5.5),
])
def test_exact_order_statistics(n: int, level: float, expected_var: float, expected_es: float) -> None:
    x = np.random.default_rng(3).permutation(np.arange(1.0, n + 1))
    assert var(_paths(x), level).item() == expected_var
    assert es(_paths(x), level).item() == expected_es


@pytest.mark.parametrize("level", [0.01, 0.123, 0.5, 0.9, 0.975, 0.999])
def test_var_is_the_inverted_cdf_quantile(level: float) -> None:
    x = np.random.default_rng(4).normal(size=(3, 1001))
    expected = np.quantile(x, level, axis=-1, method="inverted_cdf")
    np.testing.assert_array_equal(var(_paths(x), level).to_numpy(), expected)


@pytest.mark.parametrize("n", [1, 2, 3, 17, 100, 1000])
def test_es_is_never_below_var(n: int) -> None:
    rng = np.random.default_rng(n)
    samples = [rng.normal(size=(4, n)), rng.integers(0, 3, size=(4, n)).astype(float), rng.pareto(1.5, size=(4, n))]
    for x in samples:
        for level in np.linspace(0.001, 0.999, 41):
            assert (es(_paths(x), level) >= var(_paths(x), level)).all()


def test_monotone_in_level() -> None:
    x = _paths(np.random.default_rng(5).lognormal(size=(2, 5000)))
    levels = np.linspace(0.01, 0.999, 60)
    for metric in (var, es):
        values = np.stack([metric(x, level).to_numpy() for level in levels])
        assert (np.diff(values, axis=0) >= 0).all()


def test_invariant_to_path_order() -> None:
    x = np.random.default_rng(6).standard_t(3, size=(3, 4001))
    shuffled = np.random.default_rng(7).permuted(x, axis=-1)
    for level in LEVELS:
        for metric in (var, es):
            np.testing.assert_array_equal(metric(_paths(x), level), metric(_paths(shuffled), level))
    np.testing.assert_array_equal(exceedance(_paths(x), 1.0), exceedance(_paths(shuffled), 1.0))


def test_exceedance_counts_strictly_greater() -> None:
    x = _paths(np.array([[0.0, 0.0, 1.0, 2.0], [3.0, 3.0, 3.0, 3.0]]))
    np.testing.assert_array_equal(exceedance(x, 0.0), [0.5, 1.0])
    np.testing.assert_array_equal(exceedance(x, 3.0), [0.0, 0.0])


def test_results_keep_scenario_coords_and_units() -> None:
    x = _paths(np.arange(12.0).reshape(2, 6), units="quote currency", long_name="bad debt")
    x = x.assign_coords({"market.sigma": ("scenario", [0.5, 1.0])})
    result = es(x, 0.9)
    assert result.dims == ("scenario",)
    np.testing.assert_array_equal(result["market.sigma"], [0.5, 1.0])
    assert result.attrs["units"] == "quote currency"
    assert "90 % expected shortfall" in result.attrs["long_name"]
    assert exceedance(x, 3.0).attrs["units"] == "1"


def test_dataset_reduces_every_per_path_variable() -> None:
    rng = np.random.default_rng(8)
    ds = xr.Dataset(
        {"a": (("scenario", "path"), rng.normal(size=(2, 50))), "b": (("scenario", "path"), rng.normal(size=(2, 50))),
         "band": (("scenario", "level"), rng.normal(size=(2, 3)))},
        attrs={"seed": 0},
    )
    result = var(ds, 0.9)
    assert set(result.data_vars) == {"a", "b"}
    xr.testing.assert_equal(result["a"], var(ds["a"], 0.9))
    assert result.attrs == {"seed": 0}


def test_nan_path_makes_its_scenario_nan() -> None:
    x = np.random.default_rng(9).normal(size=(2, 100))
    x[1, 17] = np.nan
    for result in (var(_paths(x), 0.95), es(_paths(x), 0.95), exceedance(_paths(x), 0.0)):
        assert np.isfinite(result[0]) and np.isnan(result[1])


@pytest.mark.parametrize("level", [0.0, 1.0, -0.5, 95])
def test_level_outside_unit_interval_is_refused(level: float) -> None:
    with pytest.raises(ValueError, match="level must be strictly between 0 and 1"):
        var(_paths(np.ones(10)), level)


def test_missing_path_dim_is_refused() -> None:
    with pytest.raises(ValueError, match="no 'path' dim"):
        var(xr.DataArray(np.ones(3), dims="scenario"), 0.9)


def test_summary_table() -> None:
    depth = np.stack([np.linspace(0.0, 0.1, 100), np.linspace(0.0, 0.2, 100)])
    long = np.zeros((2, 100))
    long[1, :25] = 1e6
    short = np.zeros((2, 100))
    short[1, 20:30] = 5e5
    bad_debt = np.zeros((2, 100))
    bad_debt[1, :4] = 250.0
    per_path = ("scenario", "path")
    ds = xr.Dataset(
        {"cascade_depth": (per_path, depth), "liquidated_long": (per_path, long),
         "liquidated_short": (per_path, short), "bad_debt": (per_path, bad_debt)},
        coords={"scenario": [0, 1], "market.sigma": ("scenario", [0.5, 2.0])},
    )
    table = summary_table(ds)
    assert list(table.columns) == ["market.sigma", "cascade_depth_var_95", "cascade_depth_es_95",
                                   "cascade_depth_var_99", "cascade_depth_es_99", "p_liquidation", "mean_bad_debt"]
    assert table.index.name == "scenario"
    expected = pd.DataFrame(
        {"market.sigma": [0.5, 2.0],
         "cascade_depth_var_95": [depth[0, 94], depth[1, 94]], "cascade_depth_es_95": depth[:, 95:].mean(axis=1),
         "cascade_depth_var_99": [depth[0, 98], depth[1, 98]], "cascade_depth_es_99": depth[:, 99],
         "p_liquidation": [0.0, 0.3], "mean_bad_debt": [0.0, 10.0]},
        index=pd.Index([0, 1], name="scenario"),
    )
    pd.testing.assert_frame_equal(table, expected)
    assert table.attrs["units"]["cascade_depth_var_95"] == "1"


def test_summary_table_takes_variables_and_levels() -> None:
    depth = np.linspace(0.0, 0.1, 100)[None, :]
    long = np.linspace(0.0, 99.0, 100)[None, :]
    per_path = ("scenario", "path")
    money = {"units": "EUR"}
    ds = xr.Dataset({"cascade_depth": (per_path, depth, {"units": "1"}), "liquidated_long": (per_path, long, money),
                     "liquidated_short": (per_path, long, money), "bad_debt": (per_path, 0 * long, money)},
                    coords={"scenario": [0]})
    table = summary_table(ds, variables=("liquidated", "bad_debt"), levels=(0.9,))
    assert list(table.columns) == ["liquidated_var_90", "liquidated_es_90", "bad_debt_var_90", "bad_debt_es_90",
                                   "p_liquidation", "mean_bad_debt"]
    assert table.loc[0, "liquidated_var_90"] == 2 * 89.0
    assert table.loc[0, "liquidated_es_90"] == pytest.approx(2 * np.mean(np.arange(90.0, 100.0)))
    assert table.attrs["units"] == {name: "EUR" for name in table.columns if name != "p_liquidation"} | {
        "p_liquidation": "1"}
    with pytest.raises(ValueError, match="level must be strictly between 0 and 1"):
        summary_table(ds, levels=(99,))


def test_summary_table_needs_a_scenario_dim() -> None:
    ds = xr.Dataset({"cascade_depth": ("path", np.ones(4))})
    with pytest.raises(ValueError, match="no 'scenario' dim"):
        summary_table(ds)


def test_metrics_modules_import_nothing_from_report() -> None:
    """Layering: report imports metrics, never the other way; the accessor sits above both (stresslab.accessor)."""
    import ast
    from pathlib import Path

    import stresslab.metrics

    package = Path(stresslab.metrics.__file__).parent
    for module in package.glob("*.py"):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        imported = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module]
        imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
        assert not [name for name in imported if name.startswith("stresslab.report")], module.name
    from stresslab.accessor import StressAccessor

    assert isinstance(xr.Dataset().stress, StressAccessor)
