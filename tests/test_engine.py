"""Engine contract: identical results for any chunk size, reproducible seeds, Dataset layout."""

from __future__ import annotations

import numpy as np
import pytest

import stresslab

RICH = {
    "simulation": {"horizon": "2h", "dt": "1min", "record_points": 12, "keep_paths": 3},
    "market": {"sigma": 0.9, "jumps": {"intensity": 300, "mean": -0.02, "std": 0.02},
               "shocks": [{"type": "gap", "at": "30min", "size": -0.04},
                          {"type": "vol_spike", "start": "40min", "duration": "20min", "multiplier": 3},
                          {"type": "sell_program", "start": "50min", "notional": 2e7, "duration": "10min"}]},
    "liquidity": {"depth": 8e6, "impact": "sqrt", "withdrawal": 1.0, "depletion": 1.0},
    "position_grids": [{"side": "long", "notional": 2e8, "leverage_min": 2, "leverage_max": 80, "cohorts": 10},
                       {"side": "short", "notional": 1e8, "leverage_min": 2, "leverage_max": 40, "cohorts": 6}],
    "liquidation": {"insurance_fund": 2e5, "max_order": 3e6},
    "dealers": {"enabled": True, "book": "options",
                "options": [{"type": "put", "strike": 95, "expiry": "1d", "quantity": 5e4}]},
}


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_results_are_bit_identical_for_any_chunk_size(dtype):
    overrides = [f'simulation.dtype="{dtype}"']
    whole = stresslab.simulate(RICH, paths=300, seed=7, overrides=overrides, chunk_size=300)
    assert (whole.liquidated_long > 0).any() and (whole.bad_debt > 0).any()
    for chunk in (1, 64, 113):
        part = stresslab.simulate(RICH, paths=300, seed=7, overrides=overrides, chunk_size=chunk)
        for name in whole.data_vars:
            np.testing.assert_array_equal(part[name].values, whole[name].values, err_msg=f"{name}, chunk {chunk}")


@pytest.mark.slow
def test_same_seed_same_numbers_other_seed_other_numbers():
    a = stresslab.simulate(RICH, paths=50, seed=1)
    b = stresslab.simulate(RICH, paths=50, seed=1)
    c = stresslab.simulate(RICH, paths=50, seed=2)
    np.testing.assert_array_equal(a.final_price.values, b.final_price.values)
    assert not np.array_equal(a.final_price.values, c.final_price.values)


@pytest.mark.slow
def test_a_path_does_not_depend_on_how_many_paths_run():
    small = stresslab.simulate(RICH, paths=20, seed=4)
    large = stresslab.simulate(RICH, paths=200, seed=4)
    np.testing.assert_array_equal(small.cascade_depth.values, large.cascade_depth.values[:, :20])


def test_dataset_layout_units_and_provenance():
    ds = stresslab.simulate(RICH, paths=40, seed=9)
    assert set(ds.dims) >= {"scenario", "path", "time", "level", "sample"}
    for name in ("cascade_depth", "min_price", "final_price", "liquidated_long", "liquidated_short", "bad_debt",
                 "insurance_fund", "adl_notional", "realized_vol", "min_depth_ratio"):
        assert ds[name].dims == ("scenario", "path")
        assert ds[name].attrs["units"] and ds[name].attrs["long_name"]
        assert np.isfinite(ds[name]).all()
    for name in ("price_quantiles", "depth_quantiles", "liquidation_quantiles"):
        assert ds[name].dims == ("scenario", "time", "level")
        assert (ds[name].diff("level") >= 0).all()
    assert ds.sample_price.sizes["sample"] == 3
    np.testing.assert_array_equal(ds.sample_price.isel(time=-1).values, ds.final_price.isel(path=slice(0, 3)).values)
    assert ds.time.values[0] == np.timedelta64(0) and ds.time.values[-1] == np.timedelta64(2, "h")
    assert ds.attrs["seed"] == 9 and ds.attrs["backend"] == "cpu" and ds.attrs["stresslab_version"]
    assert stresslab.load_config(_toml(ds.attrs["config"])).scenarios[0].market.sigma == 0.9
    # Cascade depth is the drawdown of the traded price from its start.
    np.testing.assert_allclose(ds.cascade_depth, np.maximum(1 - ds.min_price / 100.0, 0), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_sweep_gives_a_scenario_dimension_with_coordinates():
    ds = stresslab.simulate(RICH, paths=100, seed=3, overrides=["liquidity.depth=[4e6, 8e6, 1.6e7]",
                                                               'dealers.book=["options", "constant_gamma"]'])
    assert ds.sizes["scenario"] == 6
    np.testing.assert_array_equal(ds["liquidity.depth"].values, [4e6, 4e6, 8e6, 8e6, 1.6e7, 1.6e7])
    np.testing.assert_array_equal(ds["dealers.book"].values, ["options", "constant_gamma"] * 3)
    # Deeper books mean shallower cascades on the same random numbers.
    options = ds.where(ds["dealers.book"] == "options", drop=True)
    assert (options.cascade_depth.mean("path").diff("scenario") < 0).all()


def _toml(text):
    import tomllib

    return tomllib.loads(text)
