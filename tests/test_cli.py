"""The command line: runs, outputs, sweeps, and one-line errors with exit code 2 (never a traceback)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import warnings
from pathlib import Path

import pytest
import xarray as xr
from click.testing import Result
from helpers import Cli, CliProcess

import stresslab
import stresslab.cli

PATHS = 200
TINY = """\
[simulation]
paths = 200
horizon = "1h"
dt = "1min"
record_points = 6

[market]
sigma = 0.8

[[positions]]
side = "long"
leverage = 20
notional = 5e6

[[positions]]
side = "short"
leverage = 20
notional = 5e6
"""
METRIC_HEADERS = ("depth VaR/ES 99%", "liq VaR/ES 99% (USD", "bad debt VaR/ES 99% (USD", "P(liq)",
                  "P(fund out)")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def _assert_usage_error(result: Result, *fragments: str) -> None:
    """Exit code 2 and one line on stderr, ``error: ...``, containing ``fragments``; no traceback."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.output


def test_run_prints_tail_metrics_and_writes_zarr(cli: Cli, config: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.zarr"
    result = cli("run", config, "--out", out, "--seed", "3")
    assert result.exit_code == 0, result.output
    assert all(header in result.stdout for header in METRIC_HEADERS)
    assert f"results: {out}" in result.stdout
    ds = xr.open_zarr(out).load()
    expected = stresslab.simulate(config, seed=3)
    when = {key: ds.attrs[key] for key in ("config", "history", "date_created")}
    xr.testing.assert_identical(ds, expected.assign_attrs(**when))
    assert "seed = 3" in ds.attrs["config"]


def test_run_writes_netcdf(cli: Cli, config: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.nc"
    result = cli("run", config, "--out", out, "--chunk-size", str(PATHS))
    assert result.exit_code == 0, result.output
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert ds.sizes["path"] == PATHS
        assert f"chunk_size = {PATHS}" in ds.attrs["config"]
        assert {"cascade_depth", "liquidated_long", "liquidated_short", "bad_debt", "price_quantiles"} <= set(ds)
        assert ds["time"].dtype.kind == "m"


def test_set_sweep_adds_scenarios_and_table_rows(cli: Cli, config: Path, tmp_path: Path) -> None:
    out = tmp_path / "sweep.zarr"
    result = cli("run", config, "--set", "market.sigma=[0.2, 3.0]", "--set", "liquidation.penalty=0.02",
                 "--out", out)
    assert result.exit_code == 0, result.output
    ds = xr.open_zarr(out)
    assert ds.sizes["scenario"] == 2
    assert ds["market.sigma"].values.tolist() == [0.2, 3.0]
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == ["scenario"])  # after the caption
    header, first, second = lines[start:start + 3]
    assert header.split()[:2] == ["scenario", "market.sigma"]
    assert max(map(len, lines)) <= 120
    assert first.split()[:2] == ["0", "0.2"] and second.split()[:2] == ["1", "3.0"]


def test_refuses_to_overwrite(cli: Cli, config: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.zarr"
    assert cli("run", config, "--out", out, "--seed", "1").exit_code == 0
    _assert_usage_error(cli("run", config, "--out", out, "--seed", "2"), str(out), "already exists", "--overwrite")
    assert xr.open_zarr(out).attrs["seed"] == 1
    assert cli("run", config, "--out", out, "--seed", "2", "--overwrite").exit_code == 0
    assert xr.open_zarr(out).attrs["seed"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.zarr", "tiny.toml"]


@pytest.mark.parametrize("command", ["run", "check"])
@pytest.mark.parametrize(("text", "fragments"), [
    (TINY + "\n[liquidity]\ndepht = 1e6\n", ("liquidity.depht", "unknown key", "allowed keys")),
    (TINY.replace("sigma = 0.8", "sigma = -1"), ("market.sigma", "greater than or equal to 0", "(got -1)")),
    (TINY.replace('dt = "1min"', 'dt = "1min'), ("not valid TOML",)),
])
def test_bad_config_file(cli: Cli, command: str, text: str, fragments: tuple[str, ...], tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    _assert_usage_error(cli(command, path), *fragments)


@pytest.mark.parametrize("command", ["run", "check"])
def test_missing_config_file(cli: Cli, command: str, tmp_path: Path) -> None:
    _assert_usage_error(cli(command, tmp_path / "nowhere.toml"), "nowhere.toml", "no such config file")


@pytest.mark.parametrize("command", ["run", "check"])
@pytest.mark.parametrize(("setting", "fragments"), [
    ("market.sigma", ("--set 'market.sigma'", "key=value")),
    ("market.volatility=0.5", ("market.volatility", "unknown key")),
    ("simulation.dt=[1, 2]", ("simulation.dt", "cannot be swept")),
    ("positions.7.leverage=3", ("positions.7", "no such field")),
])
def test_bad_set(cli: Cli, command: str, setting: str, fragments: tuple[str, ...], config: Path) -> None:
    _assert_usage_error(cli(command, config, "--set", setting), *fragments)


def test_bad_paths_is_a_config_error(cli: Cli, config: Path) -> None:
    _assert_usage_error(cli("run", config, "--paths", "0"), "simulation.paths", "(got 0)")


def test_runtime_problem_exits_1_with_one_line(cli: Cli, config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def unstable(*_: object, **__: object) -> None:
        raise stresslab.StresslabError("scenario 0: hedging feedback became unstable")

    monkeypatch.setattr(stresslab.cli, "simulate", unstable)
    result = cli("run", config)
    assert result.exit_code == 1
    assert result.stderr == "error: scenario 0: hedging feedback became unstable\n"


@pytest.mark.filterwarnings("default")
def test_warnings_are_one_line_after_the_run(cli: Cli, config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = stresslab.cli.simulate

    def warn_then_simulate(*args: object, **kwargs: object) -> xr.Dataset:
        warnings.warn("scenario 0: cascade rounds exhausted", RuntimeWarning, stacklevel=2)
        return real(*args, **kwargs)

    monkeypatch.setattr(stresslab.cli, "simulate", warn_then_simulate)
    result = cli("run", config)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[-1] == "warning: scenario 0: cascade rounds exhausted"


def test_check_prints_resolved_toml_and_scenario_count(cli: Cli, config: Path) -> None:
    sweep = ("market.sigma=[0.5, 1, 2]", 'liquidity.impact=["linear","sqrt"]')
    result = cli("check", config, "--set", sweep[0], "--set", sweep[1])
    assert result.exit_code == 0, result.output
    resolved = tomllib.loads(result.stdout)
    assert resolved["market"]["sigma"] == [0.5, 1, 2]
    assert resolved["liquidity"]["recovery_half_life"] == "5min"
    assert result.stdout.splitlines()[-1] == (
        "# the sweep expands to 6 scenarios: market.sigma (3 values) x liquidity.impact (2 values)"
    )
    assert stresslab.load_config(resolved).to_toml() == stresslab.load_config(config, sweep).to_toml()


def test_check_without_sweep(cli: Cli, config: Path) -> None:
    result = cli("check", config)
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1] == "# 1 scenario (no sweep)"


@pytest.mark.slow
def test_console_script_runs_and_writes_netcdf(config: Path, tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "stresslab"
    out = tmp_path / "out.nc"
    done = subprocess.run([script, "run", config, "--paths", "100", "--out", out],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "depth VaR/ES 99%" in done.stdout and f"results: {out}" in done.stdout
    assert "simulating" in done.stderr  # the progress bar
    with xr.open_dataset(out) as ds:
        assert ds.sizes == {"scenario": 1, "path": 100, "time": 7, "level": 7}
        assert ds.attrs["config_name"] == "tiny" and ds.attrs["title"] == "stresslab stress test: tiny"
        assert ds.attrs["history"].endswith(f" stresslab run {config} --paths 100 --out {out}")


@pytest.mark.slow
def test_module_entry_point_reports_errors_without_traceback(cli_process: CliProcess, tmp_path: Path) -> None:
    done = cli_process("check", tmp_path / "missing.toml")
    assert done.returncode == 2
    assert done.stderr == f"error: {tmp_path / 'missing.toml'}: no such config file\n"
    assert done.stdout == ""
