"""Result files follow the CF conventions (checked with cf-xarray), are compressed, and keep the band dim out
of xarray's way: ``ds.quantile(q, dim="path")`` works on every result."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import cf_xarray  # noqa: F401  (the test extra installs it: a missing one must fail, not skip)
import numpy as np
import pytest
import xarray as xr

import stresslab
from stresslab.io import dataset, store
from stresslab.market.model import OUTPUTS
from stresslab.market.outputs import MONEY, STEP_INDEX

CONFIG = {
    "simulation": {"paths": 2000, "horizon": "1h", "dt": "1min", "record_points": 7, "keep_paths": 2},
    "market": {"sigma": [0.8, 1.6], "currency": "EUR", "jumps": {"intensity": 300, "mean": -0.02, "std": 0.02}},
    "positions": [{"side": "long", "leverage": 30, "notional": 5e7}, {"side": "short", "leverage": 10,
                                                                       "notional": 2e7}],
    "liquidation": {"insurance_fund": 1e4},
}
"""A two-scenario sweep in EUR with liquidations, sample paths and a small insurance fund."""
FORMATS = ("result.nc", "result.zarr")
OLD_UNITS = {"quote currency", "step", "steps", "1/sqrt(year)"}


@pytest.fixture(scope="module")
def run() -> xr.Dataset:
    with pytest.warns(RuntimeWarning, match="insurance fund"):
        return stresslab.simulate(CONFIG, seed=5, progress=False)


@pytest.fixture(scope="module")
def written(run: xr.Dataset, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("cf")
    return {name: store.write(run, directory / name) for name in FORMATS}


def _parse_units(text: str) -> None:
    """Raise unless udunits (cf-units, when installed) or cf-xarray's CF unit registry (pint) parses ``text``."""
    try:
        from cf_units import Unit
    except ImportError:
        from cf_xarray.units import units as registry

        registry.Unit(text)
        return
    Unit(text)


def test_global_attributes(run: xr.Dataset) -> None:
    attrs = run.attrs
    assert attrs["Conventions"] == "CF-1.10"
    assert attrs["title"].startswith("stresslab stress test")
    created = attrs["date_created"]
    assert len(created) == len("2026-01-01T00:00:00Z") and created.endswith("Z")
    assert attrs["history"] == f"{created} stresslab.simulate"
    assert attrs["source"].startswith(f"stresslab {stresslab.__version__}")
    assert attrs["currency"] == "EUR"


@pytest.mark.parametrize("name", FORMATS)
def test_written_file_follows_cf(written: dict[str, Path], name: str) -> None:
    path = written[name]
    decoded = store.read(path)
    assert decoded.cf.axes["T"] == ["time"]
    raw = (xr.open_dataset(path, engine="h5netcdf", decode_timedelta=False) if path.suffix == ".nc"
           else xr.open_zarr(path, decode_timedelta=False))
    assert raw["time"].attrs["units"] in ("seconds", "minutes", "hours", "days")
    currency = raw.attrs["currency"]
    swept = set(raw.attrs["swept"].split(", "))
    for key, variable in raw.variables.items():
        assert variable.attrs.get("long_name"), f"{key} has no long_name"
        if variable.dtype.kind in "biuf" and key not in swept:  # a swept field keeps the config's units
            units = variable.attrs.get("units")
            assert units, f"{key} has no units"
            assert units not in OLD_UNITS, (key, units)
            if units != currency:
                _parse_units(units)
    for output in OUTPUTS:
        if output.name in raw and output.units == MONEY:
            assert raw[output.name].attrs["units"] == "EUR", output.name
    assert raw["realized_vol"].attrs["units"] == "1" and "square root of a year" in raw["realized_vol"].attrs["comment"]
    assert raw["rounds_exhausted"].attrs["units"] == "1"
    assert set(raw.coords) >= {"scenario", "path", "time", "level", "sample", "market.sigma"}
    assert raw["market.sigma"].attrs["long_name"] == "config field market.sigma (swept)"
    assert "config field" in raw["market.sigma"].attrs["comment"]


@pytest.mark.parametrize("name", FORMATS)
def test_step_sentinels_are_flags_and_stay_integers(run: xr.Dataset, written: dict[str, Path], name: str) -> None:
    back = store.read(written[name]).load()
    xr.testing.assert_identical(back, run)
    steps = [output.name for output in OUTPUTS if output.units == STEP_INDEX and output.name in run]
    assert {"unstable_step", "floor_step", "nonfinite_step", "fund_exhausted_step"} <= set(steps)
    for key in steps:
        variable = back[key]
        assert variable.dtype.kind == "i", key
        assert int(variable.attrs["flag_values"]) == dataset.NEVER and variable.attrs["flag_meanings"] == "never"
        assert "_FillValue" not in variable.encoding and "missing_value" not in variable.attrs
    exhausted = back["fund_exhausted_step"]
    assert (exhausted == -1).any() and (exhausted >= 0).any()  # both outcomes survive the round trip
    assert back.stress.p_fund_exhausted().dtype == np.float64


def test_netcdf_and_zarr_are_compressed(run: xr.Dataset, written: dict[str, Path], tmp_path: Path) -> None:
    plain = tmp_path / "plain.nc"
    run.to_netcdf(plain, engine="h5netcdf")
    compressed = written["result.nc"].stat().st_size
    assert compressed < 0.8 * plain.stat().st_size, (compressed, plain.stat().st_size)
    with xr.open_dataset(written["result.nc"], engine="h5netcdf") as back:
        assert back["cascade_depth"].encoding["zlib"] and back["cascade_depth"].encoding["shuffle"]
    meta = json.loads((written["result.zarr"] / "cascade_depth" / ".zarray").read_text())
    assert meta["compressor"]["id"] == "blosc" and meta["compressor"]["cname"] == "zstd"


@pytest.mark.parametrize("sweep", [True, False])
def test_xarray_quantile_over_paths_works_on_a_result(run: xr.Dataset, sweep: bool) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the insurance fund may run out: an outcome
        ds = run if sweep else stresslab.simulate({**CONFIG, "market": {**CONFIG["market"], "sigma": 0.8}},
                                                  seed=5, progress=False)
    assert "level" in ds.dims and "quantile" not in ds.dims
    q = ds.quantile(0.99, dim="path")
    assert q["quantile"].item() == 0.99 and q["cascade_depth"].sizes == {"scenario": ds.sizes["scenario"]}
    np.testing.assert_allclose(q["cascade_depth"], np.quantile(ds["cascade_depth"], 0.99, axis=1))
    bands = ds.cascade_depth.quantile([0.5, 0.99], dim="path")
    assert bands.dims == ("quantile", "scenario")


def test_currency_is_validated() -> None:
    with pytest.raises(stresslab.ConfigError, match='market.currency: must be a 3-letter uppercase currency code'):
        stresslab.load_config({"market": {"currency": "usd"}})
    assert stresslab.load_config({}).scenarios[0].market.currency == "USD"
