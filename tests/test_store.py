"""Writing results: exact round trips through Zarr and netCDF, atomic replacement, refusal to overwrite."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from stresslab.io import store

FORMATS = ["results.zarr", "results.nc"]


def _results(paths: int = 40, seed: int = 0) -> xr.Dataset:
    """A Dataset laid out like ``simulate``'s: swept string and float coords, timedelta time, text attrs."""
    rng = np.random.default_rng(seed)
    time = (np.arange(5) * 90 * 10**9).astype("timedelta64[ns]")
    return xr.Dataset(
        {
            "cascade_depth": (("scenario", "path"), rng.uniform(size=(2, paths)).astype(np.float32),
                              {"units": "1", "long_name": "maximum drawdown"}),
            "unstable_step": (("scenario", "path"), np.full((2, paths), -1, dtype=np.int32), {"units": "step"}),
            "price_quantiles": (("scenario", "time", "level"), rng.normal(size=(2, 5, 3)),
                                {"units": "quote currency"}),
        },
        coords={
            "scenario": np.arange(2), "path": np.arange(paths), "time": time, "level": [0.05, 0.5, 0.95],
            "liquidity.impact": ("scenario", np.array(["linear", "sqrt"])),
            "market.sigma": ("scenario", [0.5, 2.0]),
        },
        attrs={"seed": seed, "swept": "liquidity.impact, market.sigma", "config": '[market]\nsigma = "é"\n'},
    )


def _open(path: Path) -> xr.Dataset:
    return xr.open_dataset(path, engine="h5netcdf") if path.suffix == ".nc" else xr.open_zarr(path)


@pytest.mark.parametrize("name", FORMATS)
def test_round_trip_is_exact(name: str, tmp_path: Path) -> None:
    ds = _results()
    written = store.write(ds, tmp_path / name)
    assert written == tmp_path / name
    for reread in (_open(written), store.read(written)):
        with reread:
            xr.testing.assert_identical(reread.load(), ds)
            assert reread["time"].dtype == np.dtype("timedelta64[ns]")
            assert reread["liquidity.impact"].values.tolist() == ["linear", "sqrt"]
            assert reread.attrs["config"] == ds.attrs["config"]


def test_netcdf_suffix_writes_a_file_and_anything_else_a_zarr_directory(tmp_path: Path) -> None:
    store.write(_results(), tmp_path / "a.nc")
    store.write(_results(), tmp_path / "b")
    assert (tmp_path / "a.nc").is_file()
    assert (tmp_path / "b" / ".zmetadata").is_file()


def test_creates_missing_parent_directories(tmp_path: Path) -> None:
    target = tmp_path / "runs" / "today" / "results.zarr"
    store.write(_results(), target)
    assert store.read(target).sizes["path"] == 40


@pytest.mark.parametrize("name", FORMATS)
def test_refuses_to_overwrite_unless_asked(name: str, tmp_path: Path) -> None:
    target = tmp_path / name
    store.write(_results(seed=1), target)
    with pytest.raises(FileExistsError, match="already exists; pass overwrite=True"):
        store.write(_results(seed=2), target)
    assert store.read(target).attrs["seed"] == 1
    store.write(_results(paths=10, seed=2), target, overwrite=True)
    replaced = store.read(target)
    assert replaced.attrs["seed"] == 2 and replaced.sizes["path"] == 10
    assert [p.name for p in tmp_path.iterdir()] == [name]


@pytest.mark.parametrize("name", FORMATS)
def test_failed_write_leaves_nothing_behind(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / name
    store.write(_results(seed=1), target)

    def half_a_file(self: xr.Dataset, path: Path, *_: object, **__: object) -> None:
        path.write_bytes(b"CDF")
        raise OSError("disk full")

    def half_a_store(self: xr.Dataset, path: Path, *_: object, **__: object) -> None:
        (path / "cascade_depth").mkdir(parents=True)
        raise OSError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", half_a_file)
    monkeypatch.setattr(xr.Dataset, "to_zarr", half_a_store)
    with pytest.raises(OSError, match="disk full"):
        store.write(_results(seed=2), target, overwrite=True)
    with pytest.raises(OSError, match="disk full"):
        store.write(_results(seed=2), tmp_path / f"new-{name}")
    assert [p.name for p in tmp_path.iterdir()] == [name]
    xr.testing.assert_identical(store.read(target).load(), _results(seed=1))


def test_zarr_chunks_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "ZARR_CHUNK_BYTES", 64)
    ds = _results(paths=100)
    store.write(ds, tmp_path / "chunked.zarr")
    reread = xr.open_zarr(tmp_path / "chunked.zarr")
    assert reread["cascade_depth"].encoding["chunks"] == (1, 13)
    xr.testing.assert_identical(reread.load(), ds)


def test_read_missing_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such results file"):
        store.read(tmp_path / "absent.zarr")
