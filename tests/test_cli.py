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
import stresslab.api
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

    monkeypatch.setattr(stresslab.api, "simulate", unstable)
    result = cli("run", config)
    assert result.exit_code == 1
    assert result.stderr == "error: scenario 0: hedging feedback became unstable\n"


@pytest.mark.filterwarnings("default")
def test_warnings_are_one_line_after_the_run(cli: Cli, config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = stresslab.api.simulate

    def warn_then_simulate(*args: object, **kwargs: object) -> xr.Dataset:
        warnings.warn("scenario 0: cascade rounds exhausted", RuntimeWarning, stacklevel=2)
        return real(*args, **kwargs)

    monkeypatch.setattr(stresslab.api, "simulate", warn_then_simulate)
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


# --- output paths: every bad --out refused before anything runs, exit 2, naming the user's path ---------------


@pytest.fixture
def no_simulation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any simulation or calibration fails the test: the refusal must come first."""
    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("simulated before the output was checked")

    monkeypatch.setattr(stresslab.api, "simulate", refuse)
    monkeypatch.setattr(stresslab.api, "load_config", refuse)
    from stresslab.calibrate import loop
    monkeypatch.setattr(loop, "calibrate", refuse)


@pytest.mark.parametrize("command", ["run", "calibrate", "report"])
def test_read_only_output_is_refused_up_front(cli: Cli, config: Path, tmp_path: Path, no_simulation: None, command: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import stresslab.io.targets
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = stresslab.io.targets.os.access
    monkeypatch.setattr(stresslab.io.targets.os, "access",
                        lambda path, mode: Path(path) != locked and real_access(path, mode))  # as root chmod is no use
    out = locked / "x.zarr"
    source = config if command != "report" else tmp_path / "result.zarr"
    result = cli(command, source, "--out", out)
    _assert_usage_error(result, str(out), "cannot write in", "read-only")
    assert ".partial" not in result.stderr and not list(locked.iterdir())


@pytest.mark.parametrize("command", ["run", "calibrate", "report"])
def test_output_under_a_file_is_refused(cli: Cli, config: Path, tmp_path: Path, no_simulation: None,
                                        command: str) -> None:
    out = config / "x.zarr"
    _assert_usage_error(cli(command, config, "-o", out), str(out), f"{config} is a file, not a directory")


@pytest.mark.parametrize("command", ["run", "calibrate", "report"])
def test_missing_output_directory_is_refused_not_created(cli: Cli, config: Path, tmp_path: Path, no_simulation: None,
                                                         command: str) -> None:
    out = tmp_path / "nowhere" / "deeper" / "x.zarr"
    _assert_usage_error(cli(command, config, "--out", out), str(out),
                        f"the directory {out.parent} does not exist")
    assert not (tmp_path / "nowhere").exists()


def test_unknown_output_suffix_is_refused(cli: Cli, config: Path, tmp_path: Path, no_simulation: None) -> None:
    out = tmp_path / "out.csv"
    _assert_usage_error(cli("run", config, "--out", out), str(out), "unknown output format '.csv'", "'.nc'",
                        "'.zarr'", "no suffix")
    assert not out.exists()


def test_existing_output_says_pass_overwrite(cli: Cli, config: Path, tmp_path: Path, no_simulation: None) -> None:
    out = tmp_path / "done.nc"
    out.write_text("")
    result = cli("run", config, "--out", out)
    _assert_usage_error(result, f"{out} already exists; pass --overwrite to replace it")
    assert "overwrite=True" not in result.stderr


def test_stale_partial_is_refused_by_the_users_path_and_overwrite_starts_over(cli: Cli, config: Path,
                                                                              tmp_path: Path) -> None:
    from stresslab.io.checkpoint import Checkpoint, partial_dir
    out = tmp_path / "r.zarr"
    Checkpoint(partial_dir(out), {"an": "older run"}, resume=False)
    refused = cli("run", config, "--out", out)
    _assert_usage_error(refused, f"an unfinished run of {out} is in the way", "pass --resume to continue it",
                        "or --overwrite to start over")
    assert ".partial" not in refused.stderr
    started_over = cli("run", config, "--out", out, "--overwrite")
    assert started_over.exit_code == 0, started_over.output
    assert out.exists() and not partial_dir(out).exists()


def test_python_callers_are_told_overwrite_true(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.nc"
    out.write_text("")
    with pytest.raises(FileExistsError, match=r"already exists; pass overwrite=True to replace it"):
        stresslab.run_to(config, out)


@pytest.mark.parametrize(("name", "make", "fragment"), [
    ("folder", lambda p: p.mkdir(), "is a directory, not a config file"),
    ("result.zarr", lambda p: p.mkdir(), "is a result store, not a config file; stresslab report reads it"),
    ("result.nc", lambda p: p.write_bytes(b"\x89HDF"), "is a result file, not a config file"),
])
def test_check_says_what_a_non_config_is(cli: Cli, tmp_path: Path, name: str, make, fragment: str) -> None:
    path = tmp_path / name
    make(path)
    _assert_usage_error(cli("check", path), str(path), fragment)


# --- messages ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "expected"), [
    (("--chunk-size", "0"), "error: simulation.chunk_size must be a positive integer or 'auto'"),
    (("--set", "positions.0.venue=nowhere"), "error: positions.0.venue: unknown venue 'nowhere'"),
])
def test_one_prefix_then_the_field(cli: Cli, config: Path, args: tuple[str, ...], expected: str) -> None:
    result = cli("check" if args[0] == "--set" else "run", config, *args)
    _assert_usage_error(result)
    assert result.stderr.startswith(expected), result.stderr


def test_minutes_written_m_suggest_min(cli: Cli, config_file) -> None:
    path = config_file(TINY.replace('dt = "1min"', 'dt = "5m"'))
    _assert_usage_error(cli("check", path), "simulation.dt", "unknown time unit 'm'", "write '5min'")


def test_shock_after_the_horizon_in_the_users_units(cli: Cli, config_file) -> None:
    path = config_file(TINY.replace("sigma = 0.8", 'sigma = 0.8\nshocks = [{ type = "gap", at = "10h", size = -0.1 }]'))
    _assert_usage_error(cli("check", path), "market.shocks.0.at: 10h is at or after the end of the run",
                        "simulation.horizon 1h")


@pytest.mark.parametrize(("saved", "words"), [(1, "1 finished chunk of"), (3, "3 finished chunks of")])
def test_interrupt_counts_chunks_and_prints_the_resume_command(cli: Cli, config: Path, tmp_path: Path, saved: int,
                                                               words: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from stresslab.io.checkpoint import partial_dir
    out = tmp_path / "r.zarr"

    def interrupted(*_: object, **__: object) -> None:
        for i in range(saved):
            (partial_dir(out) / f"scenario00000_paths{i:012d}+1.npz").write_bytes(b"")
        raise KeyboardInterrupt

    monkeypatch.setattr(stresslab.api, "simulate", interrupted)
    monkeypatch.setattr(sys, "argv", ["/usr/bin/stresslab", "run", str(config), "-o", str(out)])
    result = cli("run", config, "-o", out)
    assert result.exit_code == 130
    assert words in result.stderr and f"{out} are saved" in result.stderr
    assert result.stderr.rstrip().endswith(f"To continue: stresslab run {config} -o {out} --resume")


def test_status_names_the_step_and_the_time_it_covers() -> None:
    import numpy as np

    from stresslab import status
    from stresslab.market.model import PROBLEMS
    problem = next(p for p in PROBLEMS if not p.counted)
    per_path = {p.output: np.full(4, -1 if not p.counted else 0) for p in PROBLEMS}
    per_path[problem.output] = np.array([60, 61, -1, -1])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            status.report(per_path, 0, 60.0, "warn")
        except stresslab.StresslabError as err:
            message = str(err)
        else:
            message = str(caught[0].message)
    assert "first in the step from 1h to 1h 1min (step 60, counted from 0)" in message
    assert "on 50.00% of paths" in message


# --- speed and habits -------------------------------------------------------------------------------------------


NOT_IMPORTED = ("jax", "xarray", "stresslab.api", "stresslab.engine", "matplotlib", "zarr")


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["--version"], ["configs"]])
def test_help_and_version_import_no_jax(args: list[str]) -> None:
    code = ("import sys\nfrom stresslab import cli\n"
            f"try:\n    cli.main({args!r}, prog_name='stresslab')\nexcept SystemExit:\n    pass\n"
            f"print(sorted(m for m in {NOT_IMPORTED!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                          env={**helpers_env(), "PYTHONPATH": str(Path(stresslab.__file__).parents[1])})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"
    if args == ["--version"]:
        assert done.stdout.startswith(f"stresslab, version {stresslab.__version__}")


def helpers_env() -> dict[str, str]:
    from helpers import subprocess_env
    return subprocess_env()


def test_device_metavar_lists_the_platforms() -> None:
    from stresslab.engine.devices import PLATFORMS
    assert stresslab.cli.DEVICE_KINDS == "|".join(PLATFORMS)


def test_progress_off_a_terminal_is_plain_lines(cli: Cli, config: Path) -> None:
    result = cli("run", config)
    assert result.exit_code == 0, result.output
    assert "\r" not in result.stderr
    assert "simulating: 200/200 paths (100 %)" in result.stderr


@pytest.mark.parametrize("how", ["-q", "--quiet", "TQDM_DISABLE"])
def test_quiet_and_tqdm_disable_turn_progress_off(cli: Cli, config: Path, how: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    if how == "TQDM_DISABLE":
        monkeypatch.setenv("TQDM_DISABLE", "1")
    result = cli("run", config, *([] if how == "TQDM_DISABLE" else [how]))
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert all(header in result.stdout for header in METRIC_HEADERS)


def test_short_options(cli: Cli, config: Path, tmp_path: Path) -> None:
    out = tmp_path / "short.nc"
    result = cli("run", config, "-n", "64", "-s", "market.sigma=0.5", "-o", out, "-q")
    assert result.exit_code == 0, result.output
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert ds.sizes["path"] == 64 and "sigma = 0.5" in ds.attrs["config"]


# --- shipped configs --------------------------------------------------------------------------------------------


def test_shipped_configs_are_listed_one_line_each(cli: Cli) -> None:
    from stresslab import shipped
    result = cli("configs")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == len(shipped.names()) >= 12
    by_name = dict(line.split(None, 1) for line in lines)
    assert by_name["crypto_long_squeeze"] == "a long-liquidation cascade on a BTC-like perpetual"
    assert "historical/2020_03_12_black_thursday" in by_name and "calibration/breakers_equity" in by_name
    assert all(description and "=" not in description[:3] for description in by_name.values())


def test_shipped_config_by_name_stem_or_path(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli("check", "crypto_long_squeeze").exit_code == 0
    by_stem = cli("check", "2020_03_12_black_thursday")
    assert by_stem.exit_code == 0 and by_stem.stdout == cli("check", "historical/2020_03_12_black_thursday").stdout
    (tmp_path / "crypto_long_squeeze.toml").write_text(TINY)  # a real file wins over a shipped name
    assert "paths = 200" in cli("check", "crypto_long_squeeze.toml").stdout


def test_unknown_shipped_name_lists_close_matches(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _assert_usage_error(cli("run", "crypto_long_squeez"), "crypto_long_squeez: no such config file or shipped config",
                        "did you mean crypto_long_squeeze")


def test_configs_copy_refuses_to_overwrite(cli: Cli, tmp_path: Path) -> None:
    copied = cli("configs", "copy", "crypto_long_squeeze", tmp_path)
    assert copied.exit_code == 0, copied.output
    target = tmp_path / "crypto_long_squeeze.toml"
    from stresslab import shipped
    assert target.read_text() == shipped.path("crypto_long_squeeze").read_text()
    target.write_text("# mine\n")
    _assert_usage_error(cli("configs", "copy", "crypto_long_squeeze", tmp_path), str(target), "--overwrite")
    assert target.read_text() == "# mine\n"
    assert cli("configs", "copy", "crypto_long_squeeze", tmp_path, "--overwrite").exit_code == 0
    assert target.read_text() != "# mine\n"
    _assert_usage_error(cli("configs", "copy", "nope", tmp_path), "nope: no such config file or shipped config")


def test_the_repository_configs_folder_is_the_packaged_one() -> None:
    root = Path(stresslab.__file__).parents[1]
    assert (root / "configs").resolve() == (root / "stresslab" / "configs").resolve()


# --- typed run settings -----------------------------------------------------------------------------------------


def test_run_settings_replace_simulation_fields_without_override_strings(config: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from stresslab.config import loading
    scenarios = stresslab.load_config(config, ["market.sigma=[0.5, 1]"])
    monkeypatch.setattr(loading, "_apply_override", lambda *_: pytest.fail("settings went through --set strings"))
    applied = stresslab.RunSettings(paths=7, seed=3, chunk_size=64).apply(scenarios)
    assert [s.simulation.paths for s in applied.scenarios] == [7, 7]
    assert [s.market.sigma for s in applied.scenarios] == [0.5, 1]
    assert applied.resolved["simulation"]["seed"] == 3 and applied.resolved["market"]["sigma"] == [0.5, 1]
    with pytest.raises(stresslab.ConfigError, match=r"simulation\.paths.*\(got 0\)"):
        stresslab.RunSettings(paths=0).apply(scenarios)


def test_completion_offers_shipped_names_then_files() -> None:
    from click.shell_completion import ShellComplete
    completion = ShellComplete(stresslab.cli.main, {}, "stresslab", "_STRESSLAB_COMPLETE")
    items = completion.get_completions(["run"], "crypto_l")
    assert [(item.value, item.type) for item in items] == [("crypto_long_squeeze", "plain"), ("crypto_l", "file")]


@pytest.mark.slow
def test_the_command_line_gives_jax_the_cpu_devices_asked_for(cli_process: CliProcess, config: Path,
                                                             tmp_path: Path) -> None:
    out = tmp_path / "two.nc"
    done = cli_process("run", config, "-n", "64", "-o", out, "-q", env={"STRESSLAB_CPU_DEVICES": "2"})
    assert done.returncode == 0, done.stderr
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert ds.attrs["device_count"] == 2


def test_progress_lines_name_the_work_and_carry_the_postfix() -> None:
    """Calibration and fits report steps and generations as plain lines too, with their current objective."""
    import io

    from stresslab.progress import Silent, progress_bar

    stream = io.StringIO()
    with progress_bar(4, enabled=True, stream=stream, description="fitting", unit="generation") as bar:
        bar.set_postfix(distance="1.5")
        for _ in range(4):
            bar.update(1)
    assert stream.getvalue().splitlines()[-1].startswith("fitting: 4/4 generations (100 %)")
    assert stream.getvalue().splitlines()[-1].endswith("distance=1.5") and "\r" not in stream.getvalue()
    with progress_bar(4, enabled=False, stream=stream) as off:
        assert off is None
    Silent().update(1), Silent().set_postfix(x=1)  # what calibration and fit use when progress is off


def test_the_fit_command_reports_progress_as_plain_lines(cli: Cli, tmp_path: Path) -> None:
    """`stresslab fit` off a terminal: generations as plain lines (no carriage returns)."""
    import tomli_w

    config = {"simulation": {"steps": 60, "dt": "1min", "start": "2021-05-19T09:00:00Z", "paths": 16},
              "market": {"price": 40000.0, "shocks": [{"type": "gap", "at": "20min", "size": -0.05}]},
              "fit": {"data": "2021-05-19", "paths": 16, "generations": 1, "population": 2,
                      "parameters": [{"name": "market.shocks.0.size", "lower": -0.2, "upper": -0.01}]}}
    source = tmp_path / "day.toml"
    source.write_text(tomli_w.dumps(config))
    result = cli("fit", source, "-o", tmp_path / "day.fit")
    assert result.exit_code == 0, result.stderr
    assert "fitting: 3/3 generations (100 %)" in result.stderr and "\r" not in result.stderr
