"""Real against simulated (stresslab.historical.compare) and the method-of-simulated-moments fit
(stresslab.historical.fit): the same window and clock for both, a fit that recovers a known shock, clear errors."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from stresslab import historical
from stresslab.errors import ConfigError, DataError
from stresslab.io import market_data
from stresslab.metrics import facts

pytestmark = pytest.mark.slow  # each test compiles and runs a small market


def _config(start="2021-05-19T09:00:00Z", steps=120, gap=-0.10, at="30min", sigma=0.8, drift=0.0, **extra):
    cfg = {
        "simulation": {"steps": steps, "dt": "1min", "start": start, "paths": 16, "dtype": "float64"},
        "market": {"price": 40000.0, "sigma": sigma, "drift": drift,
                   "shocks": [{"type": "gap", "at": at, "size": gap}]},
        "liquidity": {"enabled": False},
    }
    cfg.update(extra)
    return cfg


def test_compare_puts_real_and_simulated_on_one_window_and_clock():
    comparison = historical.compare(_config(), "2021-05-19", paths=40)
    assert comparison.minutes == 120 and comparison.start == pd.Timestamp("2021-05-19 09:00")
    np.testing.assert_array_equal(comparison.simulated["time"].values, comparison.real["time"].values)
    assert comparison.simulated.sizes == {"sample": 40, "time": 121}
    assert np.allclose(comparison.simulated.isel(time=0), 40000.0)
    real = facts.facts(market_data.prices("2021-05-19", "2021-05-19 09:00", 120))
    table = comparison.table
    assert list(table.index) == [fact.name for fact in facts.FACTS]
    np.testing.assert_allclose(table.real, [float(real[f.name]) for f in facts.FACTS])
    assert (table.low <= table["median"]).all() and (table["median"] <= table.high).all()
    assert table.loc["largest_fall_1min", "median"] == pytest.approx(-0.10, abs=0.02)  # the gap, in one minute
    text = historical.format_table(comparison)
    assert "2021-05-19 09:00 UTC + 120 min" in text and "facts inside the simulated 5-95 % band" in text


def test_the_window_is_cut_to_the_minutes_the_data_cover():
    """The shipped 2025 file covers 308 minutes from 20:00 UTC; a day-long scenario is compared on those."""
    comparison = historical.compare(_config(start="2025-10-10T20:00:00Z", steps=600), "2025-10-10", paths=16)
    assert comparison.minutes == 308
    assert comparison.simulated.sizes["time"] == 309


@pytest.mark.parametrize(("config", "kwargs", "error", "message"), [
    (_config(start=None), {}, ConfigError, "simulation.start: compare needs the UTC time"),
    ({**_config(), "simulation": {**_config()["simulation"], "dt": "5min"}}, {}, ConfigError,
     "needs 1-minute steps"),
    (_config(), {"paths": 20_000}, ConfigError, "1 to 10000"),
    (_config(start="2021-05-21T00:00:00Z"), {}, DataError, "does not cover"),
    (_config(), {"overrides": ["market.sigma=[0.5, 0.8]"]}, ConfigError, "sweeps market.sigma"),
])
def test_compare_refuses_what_it_cannot_compare(config, kwargs, error, message):
    if config["simulation"]["start"] is None:
        del config["simulation"]["start"]
    with pytest.raises(error, match=message):
        historical.compare(config, "2021-05-19", **kwargs)


def _write_bars(path, prices: np.ndarray, start: str) -> None:
    """Prices p_0..p_n as 1-minute bars: bar k opens at p_k and closes at p_(k+1)."""
    times = pd.date_range(start, periods=len(prices) - 1, freq="1min")
    pd.DataFrame({"open_time_utc": times.strftime("%Y-%m-%dT%H:%M:%SZ"), "open": prices[:-1],
                  "high": np.maximum(prices[:-1], prices[1:]), "low": np.minimum(prices[:-1], prices[1:]),
                  "close": prices[1:]}).to_csv(path, index=False)


@pytest.mark.parametrize(("size", "at_min"), [(-0.10, 30), (-0.22, 75)])
def test_fit_recovers_the_shock_that_made_the_data(tmp_path, size, at_min):
    """'Real' data made by the model itself with a known gap (near-zero volatility and a rising drift, so every
    path is the same and the low comes right after the gap): the fit, started elsewhere, finds its size and time."""
    truth = _config(gap=size, at=f"{at_min}min", sigma=1e-4, drift=20.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        made = historical.compare(truth, "2021-05-19", paths=1).simulated.isel(sample=0).values
    data = tmp_path / "made.csv"
    _write_bars(data, made, "2021-05-19 09:00")
    start = _config(gap=-0.05, at="60min", sigma=1e-4, drift=20.0)
    start["fit"] = {"data": str(data), "paths": 16, "generations": 14, "population": 8, "sigma": 0.3,
                    "facts": ["drawdown_from_start", "largest_fall_1min", "trough_time", "end_return"],
                    "parameters": [{"name": "market.shocks.0.size", "lower": -0.3, "upper": -0.01},
                                   {"name": "market.shocks.0.at", "lower": "10min", "upper": "110min"}]}
    result = historical.fit(start)
    assert result.distance_after < result.distance_before
    assert result.values["market.shocks.0.size"] == pytest.approx(size, abs=0.01)
    assert result.values["market.shocks.0.at"] == pytest.approx(at_min * 60, abs=600)  # trough_time tolerance
    assert result.distance_after < 0.5
    assert int(result.after.table.inside.sum()) >= int(result.before.table.inside.sum())
    assert len(result.trace) == 14 and result.trace.distance.min() == pytest.approx(result.distance_after, rel=1e-6)
    fitted = result.to_toml("stresslab fit made.toml")
    assert fitted.startswith("# fitted by: stresslab fit made.toml")
    assert "market.shocks.0.size" in fitted


@pytest.mark.parametrize(("fit", "message"), [
    (None, r"the config has no \[fit\] section"),
    ({"data": "2021-05-19", "parameters": [{"name": "market.shocks.3.size", "lower": -1, "upper": 0}]},
     "market.shocks.3.size is not in the config"),
    ({"data": "2021-05-19", "parameters": [{"name": "market.shocks.0.size", "lower": -0.5, "upper": -0.2}]},
     r"outside the box: market.shocks.0.size = -0.1 \(box -0.5 to -0.2\)"),
])
def test_fit_refuses_a_problem_it_cannot_fit(fit, message):
    config = _config()
    if fit is not None:
        config["fit"] = fit
    with pytest.raises(ConfigError, match=message):
        historical.fit(config)


def _write_config(path, config) -> None:
    import tomli_w

    path.write_text(tomli_w.dumps(config))


def test_the_compare_command_prints_the_table_and_writes_the_plot_and_the_table(tmp_path, cli):
    config = tmp_path / "day.toml"
    _write_config(config, _config())
    plot, table = tmp_path / "day.png", tmp_path / "day.json"
    done = cli("compare", config, "--data", "2021-05-19", "-n", "32", "--plot", plot, "--table", table, "-q")
    assert done.exit_code == 0, done.stderr
    assert "2021-05-19 09:00 UTC + 120 min" in done.stdout and "largest 1-minute fall" in done.stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import json

    rows = json.loads(table.read_text())
    assert set(rows) == {fact.name for fact in facts.FACTS} and set(rows["end_return"]) >= {"real", "median", "inside"}


@pytest.mark.parametrize(("extra", "message"), [
    (["--plot", "day.jpg"], "unknown output format '.jpg'; allowed: '.png'"),
    (["--data", "1999-01-01"], "--data 1999-01-01: no such file, and not a shipped day"),
])
def test_the_compare_command_refuses_bad_arguments_with_exit_2(tmp_path, cli, monkeypatch, extra, message):
    config = tmp_path / "day.toml"
    _write_config(config, _config())
    monkeypatch.chdir(tmp_path)
    args = ["compare", config, "--data", "2021-05-19", "-n", "8", *extra]
    done = cli(*args)
    assert done.exit_code == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_the_fit_command_writes_a_fitted_config_that_runs(tmp_path, cli, monkeypatch):
    config = _config(gap=-0.05)
    config["fit"] = {"data": "2021-05-19", "paths": 16, "generations": 2, "population": 4,
                     "parameters": [{"name": "market.shocks.0.size", "lower": -0.3, "upper": -0.01}]}
    source = tmp_path / "day.toml"
    _write_config(source, config)
    out = tmp_path / "day.fit"
    monkeypatch.setattr("sys.argv", ["stresslab", "fit", str(source), "-o", str(out), "-q"])  # as the user typed it
    done = cli("fit", source, "-o", out, "-q")
    assert done.exit_code == 0, done.stderr
    assert "distance" in done.stdout and "market.shocks.0.size" in done.stdout
    fitted = (out / "fitted.toml").read_text()
    assert fitted.startswith(f"# fitted by: stresslab fit {source} -o {out} -q\n")
    assert len(pd.read_csv(out / "trace.csv")) == 2
    assert (out / "before.png").exists() and (out / "after.png").exists()
    assert cli("check", out / "fitted.toml").exit_code == 0
    again = cli("fit", source, "-o", out, "-q")
    assert again.exit_code == 2 and "already exists; pass --overwrite" in again.stderr


def test_a_scenario_on_the_real_clock_carries_utc_time_through_netcdf_and_zarr(tmp_path):
    import stresslab

    ds = stresslab.simulate(_config(steps=30, at="10min"), paths=8)
    assert ds.clock.dims == ("time",) and ds.clock.attrs["long_name"].startswith("UTC time")
    assert ds.clock.values[0] == np.datetime64("2021-05-19T09:00") and ds.clock.values[-1] == np.datetime64(
        "2021-05-19T09:30")
    by_clock = ds.swap_dims(time="clock").price_quantiles.sel(clock="2021-05-19T09:10")
    np.testing.assert_array_equal(by_clock, ds.price_quantiles.isel(time=10))
    for name in ("day.nc", "day.zarr"):
        stresslab.io.store.write(ds, tmp_path / name)
        np.testing.assert_array_equal(stresslab.io.store.read(tmp_path / name).clock.values, ds.clock.values)
    plain = _config(steps=30, at="10min")
    del plain["simulation"]["start"]
    assert "clock" not in stresslab.simulate(plain, paths=8).coords


def _minute_result(tmp_path, cli, *, on_the_clock: bool, paths: int):
    """A result of an hour with every path kept at every minute, written by ``stresslab run``."""
    config = _config(steps=60, at="20min")
    if not on_the_clock:
        del config["simulation"]["start"]
    config["simulation"].update(keep_paths=paths, record_points=60)
    source = tmp_path / "day.toml"
    _write_config(source, config)
    result = tmp_path / "day.nc"
    assert cli("run", source, "-n", str(paths), "-o", result, "-q").exit_code == 0
    return result


def test_a_report_with_data_shows_the_real_day_against_the_result(tmp_path, cli):
    result = _minute_result(tmp_path, cli, on_the_clock=True, paths=32)
    done = cli("report", result, "--data", "2021-05-19", "-o", tmp_path / "day.report")
    assert done.exit_code == 0, done.stderr
    page = (tmp_path / "day.report" / "report.html").read_text()
    assert "Against the real day" in page and "2021-05-19 09:00 UTC + 60 min" in page
    assert "largest 1-minute fall" in page
    assert (tmp_path / "day.report" / "real_day.png").read_bytes()[:4] == b"\x89PNG"
    summary = (tmp_path / "day.report" / "summary.md").read_text()
    assert "## Against the real day" in summary and "real_day.png" in summary


def test_a_report_with_data_of_a_result_off_the_real_clock_is_refused(tmp_path, cli):
    result = _minute_result(tmp_path, cli, on_the_clock=False, paths=8)
    done = cli("report", result, "--data", "2021-05-19", "-o", tmp_path / "day.report")
    assert done.exit_code == 2 and "not on the real clock" in done.stderr
    assert not (tmp_path / "day.report").exists()
