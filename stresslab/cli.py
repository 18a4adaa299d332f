"""The ``stresslab`` command line: parse arguments, call the library, print results.

Exit codes: 0 success; 1 a run that cannot give trustworthy numbers, or a write that
fails midway; 2 a usage problem (bad config, missing file, unknown shipped name, bad
``--set``, an ``--out`` that cannot or may not be written, devices or processes that
cannot be had); 130 interrupted. Every ``--out`` is checked before anything is
simulated or calibrated. Problems are reported as one line on stderr, ``error: ...``,
never as a traceback. In a multi-process run every process exits with the code of
the first failure.

Short options: ``-o`` (``--out``), ``-n`` (``--paths``), ``-s`` (``--set``), ``-q``
(``--quiet``), ``-h`` (``--help``), ``-V`` (``--version``).
"""

from __future__ import annotations

import shlex
import shutil
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

import click

from stresslab.version import __version__

if TYPE_CHECKING:
    import xarray as xr

    from stresslab.calibrate.loop import CalibrationResult
    from stresslab.config.loading import ScenarioSet

# The library (JAX, xarray, the engine) is imported inside the commands, not here, so that --help, --version
# and shell completion answer at once.

USAGE_ERROR = 2
RUN_ERROR = 1
INTERRUPTED = 130
DEVICE_KINDS = "cpu|gpu"
"""The metavar of --device: ``stresslab.engine.devices.PLATFORMS`` (not imported here: it imports JAX)."""


class _Failure(click.ClickException):
    """A problem reported as one line, ``error: message``, with its exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(" ".join(message.split()))
        self.exit_code = exit_code

    def show(self, file: IO[str] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def _flag(name: str) -> str:
    """How the command line spells a library argument: ``overwrite`` -> ``--overwrite``."""
    return f"--{name.replace('_', '-')}"


def _failure(err: Exception) -> _Failure | None:
    """The one-line message and exit code for a library error, or None for an unexpected one (a bug).

    Every library error is a ``stresslab.errors.StresslabError`` carrying its exit code; the ones that name an
    argument that would clear them (``--overwrite``) are spelled as flags here.
    """
    from stresslab import errors  # light: no JAX, no xarray

    if isinstance(err, errors.SettingError):
        return _Failure(f"{_flag(err.setting)}: {err.reason}", err.exit_code)
    if isinstance(err, errors.StresslabError):
        return _Failure(err.explain(_flag) if hasattr(err, "explain") else str(err), err.exit_code)
    if isinstance(err, FileExistsError):
        return _Failure(str(err), USAGE_ERROR)
    if isinstance(err, OSError):
        where = f"{err.filename}: " if err.filename else ""
        return _Failure(f"{where}{err.strerror or err}", RUN_ERROR)
    return None


@contextmanager
def _reported() -> Iterator[None]:
    """Turn the library's errors into one-line messages and exit codes."""
    try:
        yield
    except click.ClickException:
        raise
    except Exception as err:
        failure = _failure(err)
        if failure is None:
            raise
        raise failure from None


@contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """Show the warnings raised inside as ``warning: message`` lines on stderr, once the block ends.

    Deferred so that they do not land in the middle of the progress bar. Shown even with --quiet:
    a warning is about the numbers, not about progress.
    """
    with warnings.catch_warnings(record=True) as caught:
        try:
            yield
        finally:
            for warning in caught:
                click.echo(f"warning: {warning.message}", err=True)


def _start_jax() -> None:
    """Give JAX one CPU device per usable core (``STRESSLAB_CPU_DEVICES`` overrides) and keep compiled kernels
    on disk (``STRESSLAB_COMPILE_CACHE``: a directory, or ``off``), before it starts.

    Only where this command imports JAX first: a program that calls ``main`` with JAX already
    imported (a test, a notebook) keeps the devices and the cache it set up.
    """
    if "jax" in sys.modules:
        return
    from stresslab.engine.compile_cache import use_compile_cache
    from stresslab.engine.devices import use_cpu_cores

    with _warnings_as_lines():
        use_cpu_cores()
        use_compile_cache()


def _config_file(config: str) -> Path:
    """CONFIG as given: a file that exists, or the name of a shipped config (``stresslab configs``)."""
    from stresslab import shipped

    return shipped.resolve(config)


def _progress(quiet: bool) -> bool:
    from stresslab.progress import disabled_by_environment

    return not quiet and not disabled_by_environment()


def _resume_command() -> str:
    """The command line that started this run, with ``--resume`` added (as the user can paste it)."""
    argv = ["stresslab", *sys.argv[1:]]
    if "--resume" not in argv:
        argv.append("--resume")
    return shlex.join(argv)


def _chunks(count: int) -> str:
    return f"{count} finished chunk{'' if count == 1 else 's'}"


_quiet_option = click.option("--quiet", "-q", is_flag=True,
                             help="No progress; only the results (warnings and errors still go to stderr).")


_set_option = click.option(
    "--set", "-s", "overrides", multiple=True, metavar="KEY=VALUE",
    help="Override a config field, e.g. --set market.sigma=0.8; a list sweeps it, e.g. --set 'market.sigma=[0.5, 1]'. "
         "Repeatable.",
)


def _cluster_options(command: Callable) -> Callable:
    """``--coordinator``, ``--num-processes`` and ``--process-id``: this process's place in a multi-process job."""
    for option in reversed((
        click.option("--coordinator", metavar="HOST:PORT",
                     help="Multi-process run: where process 0 listens (auto-detected under SLURM srun)."),
        click.option("--num-processes", type=int, metavar="N",
                     help="Multi-process run: how many processes run this command (auto-detected under SLURM "
                          "srun; 1 turns detection off)."),
        click.option("--process-id", type=int, metavar="I",
                     help="Multi-process run: this process's index, 0 to N-1 (auto-detected under SLURM srun)."),
    )):
        command = option(command)
    return command


def _complete_config(context: click.Context, parameter: click.Parameter, incomplete: str) -> list:
    """Shell completion of CONFIG: the shipped names that start with what was typed, then files."""
    from click.shell_completion import CompletionItem

    from stresslab import shipped

    names = [CompletionItem(name) for name in shipped.names() if name.startswith(incomplete)]
    return [*names, CompletionItem(incomplete, type="file")]


_config_argument = click.argument("config", shell_complete=_complete_config)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="stresslab")
def main() -> None:
    """Monte Carlo stress tests of flash crashes and liquidation cascades."""


def _metrics_path(value: Path | None) -> Path | None:
    """``--metrics``: refused before any simulation unless it ends in .json or .csv."""
    from stresslab.metrics.headline import check_metrics_path

    try:
        return None if value is None else check_metrics_path(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


@main.command()
@_config_argument
@click.option("--paths", "-n", type=int, help="Paths per scenario (default: simulation.paths).")
@click.option("--seed", type=int, help="Random seed (default: simulation.seed).")
@click.option("--chunk-size", type=int,
              help="Paths per chunk (default: simulation.chunk_size); results do not depend on it.")
@click.option("--out", "-o", type=click.Path(path_type=Path),
              help="Write the results here: a netCDF file if it ends in .nc, else a Zarr directory "
                   "(.zarr or no suffix).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out, and start over an unfinished run of it.")
@click.option("--on-error", type=click.Choice(["raise", "warn"]), default="raise", show_default=True,
              help="When the kernel records untrustworthy numbers (unstable feedback, an exhausted book, NaN): "
                   "stop with an error, or warn and write the results with the affected paths flagged.")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted run with --out from the chunks it saved; the result is identical.")
@click.option("--device", metavar=DEVICE_KINDS,
              help="Run on the CPU or on NVIDIA GPUs (default: a GPU if JAX finds one, else the CPU).")
@click.option("--num-devices", type=int, metavar="N",
              help="Split each chunk's paths over this many local devices (default: all); results do not depend on it.")
@_cluster_options
@click.option("--metrics", type=click.Path(path_type=Path), callback=lambda ctx, param, value: _metrics_path(value),
              help="Write the headline metrics with confidence intervals here: JSON (*.json) or CSV (*.csv).")
@_set_option
@_quiet_option
def run(config: str, paths: int | None, seed: int | None, chunk_size: int | None, out: Path | None,
        overwrite: bool, on_error: str, resume: bool, device: str | None, num_devices: int | None,
        coordinator: str | None, num_processes: int | None, process_id: int | None,
        metrics: Path | None, overrides: tuple[str, ...], quiet: bool) -> None:
    """Simulate the scenarios of CONFIG and print their tail metrics.

    CONFIG is a TOML or YAML file, or the name of a shipped config (see `stresslab configs`).

    With --out, every finished chunk is saved beside the output (OUT.partial)
    until the result is written, so a run that is killed can be resumed.

    Paths are split over all local devices. Run the same command in several
    processes (--coordinator, --num-processes, --process-id, or srun under SLURM)
    to split them over machines: each process simulates its share into OUT.partial,
    and process 0 writes OUT, identical to a single-process run.
    """
    with _reported():
        if resume and out is None:
            raise _Failure("--resume needs --out: only runs that write their results save chunks", USAGE_ERROR)
        source = _config_file(config)
        _start_jax()
        from stresslab import api
        from stresslab.engine import distributed

        cluster = distributed.initialize(coordinator, num_processes, process_id)
        if cluster.count > 1 and out is None:
            raise _Failure("--out is needed to run more than one process: each process writes its paths beside it, "
                           "on a file system all processes share", USAGE_ERROR)
        settings = api.RunSettings(paths=paths, seed=seed, chunk_size=chunk_size, device=device,
                                   num_devices=num_devices, on_error=on_error)
        progress = _progress(quiet) and cluster.leader
        try:
            with _warnings_as_lines():
                if out is None:
                    ds = api.simulate(source, overrides=overrides, progress=progress, settings=settings)
                else:
                    ds = api.run_to(source, out, settings, overrides=overrides, progress=progress,
                                    overwrite=overwrite, resume=resume)
        except KeyboardInterrupt:
            raise _interrupted(out, cluster.count) from None
    if ds is None:
        return
    click.echo(_format_summary(ds))
    if metrics is not None:
        from stresslab.metrics.headline import write_metrics

        click.echo(f"metrics: {write_metrics(ds, metrics)}")
    if out is not None:
        click.echo(f"results: {out}")


def _interrupted(out: Path | None, processes: int) -> _Failure:
    """What was saved of an interrupted run, and the exact command that continues it."""
    from stresslab.io.checkpoint import partial_dir, saved_chunks

    if out is None:
        return _Failure("interrupted; nothing was saved (runs without --out keep no chunks)", INTERRUPTED)
    if processes > 1:
        saved = f"the paths finished so far are saved in {partial_dir(out)}"
    else:
        saved = f"{_chunks(saved_chunks(partial_dir(out)))} of {out} are saved"
    return _Failure(f"interrupted; {saved}. To continue: {_resume_command()}", INTERRUPTED)


@main.command()
@_config_argument
@_set_option
def check(config: str, overrides: tuple[str, ...]) -> None:
    """Validate CONFIG and print it resolved (defaults filled in, units normalised) as TOML.

    CONFIG is a TOML or YAML file, or the name of a shipped config (see `stresslab configs`).
    """
    from stresslab.config.loading import load_config

    with _reported():
        scenarios = load_config(_config_file(config), overrides)
    click.echo(scenarios.to_toml())
    click.echo(f"# {_describe_sweep(scenarios)}")


@main.command(name="calibrate")
@_config_argument
@click.option("--out", "-o", type=click.Path(path_type=Path),
              help="Output directory (default: the config's name with the suffix .calibration).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out.")
@click.option("--netcdf", is_flag=True, help="Write the trace as netCDF (trace.nc) instead of Zarr (trace.zarr).")
@click.option("--device", metavar=DEVICE_KINDS,
              help="Run the paths on this kind of device (default: JAX's default backend).")
@click.option("--num-devices", type=int, metavar="N",
              help="Split the paths over this many local devices (default: all); results do not depend on it.")
@_cluster_options
@_set_option
@_quiet_option
def calibrate_command(config: str, out: Path | None, overwrite: bool, netcdf: bool, device: str | None,
                      num_devices: int | None, coordinator: str | None, num_processes: int | None,
                      process_id: int | None, overrides: tuple[str, ...], quiet: bool) -> None:
    """Tune the controls in CONFIG's [calibration] section (CMA-ES on the hard rules, then gradient refinement);
    write DIR/trace and DIR/calibrated.toml (a config `stresslab run` accepts as it is).

    CONFIG is a TOML or YAML file, or the name of a shipped config (see `stresslab configs`).

    Paths are split over all local devices. Run the same command in several processes (--coordinator,
    --num-processes, --process-id, or srun under SLURM) to split them over machines: every process
    follows the same search, and process 0 writes DIR, identical to a single-process calibration."""
    with _reported():
        source, target = _job_directory(config, out, ".calibration", overwrite)
        _start_jax()
        from stresslab.calibrate import loop as calibration
        from stresslab.engine import distributed
        from stresslab.io import store

        cluster = distributed.initialize(coordinator, num_processes, process_id)
        with _warnings_as_lines():
            result = calibration.calibrate(source, overrides=overrides, progress=_progress(quiet), device=device,
                                           num_devices=num_devices)
        if not cluster.leader:
            return
        target.mkdir(exist_ok=True)
        store.write(result.trace, target / ("trace.nc" if netcdf else "trace.zarr"), overwrite=True)
        _write_whole(target / "calibrated.toml", result.to_toml())
    click.echo(_format_calibration(result))
    click.echo(f"results: {target}")


_data_help = ("Real 1-minute prices: a shipped day (2020-03-12, 2021-05-19, 2025-10-10) or a CSV of 1-minute bars "
              "(see docs/historical.md).")


@main.command()
@_config_argument
@click.option("--data", "-d", required=True, metavar="DAY|CSV", help=_data_help)
@click.option("--paths", "-n", type=int, default=1000, show_default=True,
              help="Simulated paths, all kept as sample paths (at most 10000).")
@click.option("--seed", type=int, help="Random seed (default: simulation.seed).")
@click.option("--start", metavar="UTC", help="The scenario's start, if the config has no simulation.start "
                                             "(e.g. 2021-05-19T09:00).")
@click.option("--plot", type=click.Path(path_type=Path), help="Draw the real path over the simulated fan (PNG).")
@click.option("--table", type=click.Path(path_type=Path), help="Write the comparison table (.csv or .json).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --plot or --table file.")
@_set_option
@_quiet_option
def compare(config: str, data: str, paths: int, seed: int | None, start: str | None, plot: Path | None,
            table: Path | None, overwrite: bool, overrides: tuple[str, ...], quiet: bool) -> None:
    """Compare CONFIG's stylised facts (drawdown, timing, retrace, worst minutes, ...) with a real day's.

    Prints, for every fact, the real value and the simulated median with its 5-95 % band, on the window the
    config covers from simulation.start (cut to the minutes the data cover).
    """
    from stresslab.io import targets

    with _reported():
        source = _config_file(config)
        for path, suffixes in ((plot, (".png",)), (table, (".csv", ".json"))):
            if path is not None:
                targets.check_output(path, overwrite=overwrite, suffixes=suffixes)
        _start_jax()
        from stresslab import historical

        with _warnings_as_lines():
            result = historical.compare(source, data, paths=paths, seed=seed, overrides=overrides, start=start,
                                        progress=_progress(quiet))
        if plot is not None:
            historical.plot(result, plot)
        if table is not None:
            _write_table(result.table, table)
    click.echo(historical.format_table(result))
    for path in (plot, table):
        if path is not None:
            click.echo(f"written: {path}")


def _write_table(frame, path: Path) -> None:
    """A table as CSV or JSON (records keyed by the index), written whole or not at all."""
    staged = path.with_name(path.name + ".partial")
    if path.suffix == ".csv":
        frame.to_csv(staged, index_label="fact")
    else:
        frame.to_json(staged, orient="index", indent=1)
    staged.replace(path)


@main.command()
@_config_argument
@click.option("--data", "-d", metavar="DAY|CSV", help=_data_help + " Default: the config's fit.data.")
@click.option("--out", "-o", type=click.Path(path_type=Path),
              help="Output directory (default: the config's name with the suffix .fit).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out.")
@_set_option
@_quiet_option
def fit(config: str, data: str | None, out: Path | None, overwrite: bool, overrides: tuple[str, ...],
        quiet: bool) -> None:
    """Fit the fields of CONFIG's [fit] section to a real day (CMA-ES on the stylised facts: the method of
    simulated moments); write DIR/fitted.toml (headed by this command), DIR/trace.csv and the real path over the
    simulated fan before and after (DIR/before.png, DIR/after.png)."""
    with _reported():
        source, target = _job_directory(config, out, ".fit", overwrite)
        _start_jax()
        from stresslab import historical

        with _warnings_as_lines():
            result = historical.fit(source, overrides=overrides, data=data, progress=_progress(quiet))
        target.mkdir(exist_ok=True)
        result.trace.to_csv(target / "trace.csv", index_label="generation")
        historical.plot(result.before, target / "before.png")
        historical.plot(result.after, target / "after.png")
        _write_whole(target / "fitted.toml", result.to_toml(shlex.join(["stresslab", *sys.argv[1:]])))
    lines = [f"{'parameter':<36}{'initial':>14}{'fitted':>14}"]
    lines += [f"{name:<36}{result.initial[name]:>14.6g}{value:>14.6g}" for name, value in result.values.items()]
    lines += [f"distance {result.distance_before:.4g} -> {result.distance_after:.4g}", "before:",
              historical.format_table(result.before), "after:", historical.format_table(result.after),
              f"results: {target}"]
    click.echo("\n".join(lines))


def _job_directory(config: str, out: Path | None, suffix: str, overwrite: bool) -> tuple[Path, Path]:
    """CONFIG's file and the output directory of a job that takes minutes (default: the config's stem with
    ``suffix``), checked before the job starts."""
    from stresslab.io import targets

    source = _config_file(config)
    target = out if out is not None else Path(source.stem + suffix)
    targets.check_output(target, overwrite=overwrite)
    return source, target


def _write_whole(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a staged file, so that ``path`` is never half-written."""
    staged = path.with_name(path.name + ".partial")
    staged.write_text(text)
    staged.replace(path)


def _format_calibration(result: CalibrationResult) -> str:
    """Tuned values and the held-out hard-rule objective before and after, with 95 % intervals."""
    lines = [f"{'control':<32}{'initial':>14}{'tuned':>14}"]
    lines += [f"{name:<32}{result.initial[name]:>14.6g}{value:>14.6g}" for name, value in result.values.items()]
    for label, ev in (("before", result.before), ("after", result.after)):
        lines.append(f"held-out objective {label}: {ev.objective:.6g} (95 % CI {ev.lower:.6g} to {ev.upper:.6g}, "
                     f"{ev.paths} paths, hard rules) = risk {ev.terms['risk']:.6g} + halt cost "
                     f"{ev.terms['halt_cost']:.6g} + haircut cost {ev.terms['haircut_cost']:.6g}")
    for scenario, (before, after) in result.scenarios.items():
        lines.append(f"  {scenario}: {before.objective:.6g} -> {after.objective:.6g}")
    return "\n".join(lines)


@main.command()
@click.argument("result", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path),
              help="Report directory (default: RESULT with the suffix .report, e.g. squeeze.report).")
@click.option("--overwrite", is_flag=True, help="Replace an existing report directory.")
@click.option("--data", "-d", metavar="DAY|CSV",
              help=_data_help + " Adds the real day's stylised facts against the result's sample paths and the real "
                   "path over their fan (needs a result with simulation.start and minute sample paths).")
def report(result: Path, out: Path | None, overwrite: bool, data: str | None) -> None:
    """Write PNG figures, summary.md and a self-contained report.html for RESULT (from `stresslab run --out`)."""
    from stresslab.io import targets

    with _reported():
        if out is not None:
            targets.check_output(out, overwrite=overwrite)  # before the plotting libraries load
        from stresslab.report import HTML_FILE, default_directory, load_result, write_report

        target = out if out is not None else default_directory(result)
        targets.check_output(target, overwrite=overwrite)  # before the result is read and the figures drawn
        try:
            ds = load_result(result, extra=("sample_price",) if data else ())
        except FileNotFoundError as err:
            raise _Failure(str(err), USAGE_ERROR) from None
        comparison = None
        if data is not None:
            from stresslab import historical

            comparison = historical.compare_result(ds, data)
        written = write_report(ds, target, overwrite=overwrite, comparison=comparison)
    click.echo(f"report: {written / HTML_FILE}")


@main.group(invoke_without_command=True)
@click.pass_context
def configs(context: click.Context) -> None:
    """List the configs shipped with stresslab, one line each: NAME and what it stresses.

    A NAME works wherever a command takes CONFIG (`stresslab run crypto_long_squeeze`); a
    file that exists wins. Where a stem is unique it names the config alone
    (`2020_03_12_black_thursday` for `historical/2020_03_12_black_thursday`).
    """
    if context.invoked_subcommand is not None:
        return
    from stresslab import shipped

    listed = shipped.names()
    width = max(map(len, listed))
    for name in listed:
        click.echo(f"{name:<{width}}  {shipped.describe(name)}")


@configs.command(name="copy")
@click.argument("name")
@click.argument("directory", type=click.Path(path_type=Path), default=Path("."))
@click.option("--overwrite", is_flag=True, help="Replace a file of that name in DIRECTORY.")
def copy_config(name: str, directory: Path, overwrite: bool) -> None:
    """Copy shipped config NAME into DIRECTORY (default: here), to edit and run it."""
    from stresslab import shipped
    from stresslab.io import targets

    with _reported():
        source = shipped.path(name)
        if not directory.is_dir():
            raise targets.OutputError(f"{directory}: no such directory")
        target = directory / source.name
        targets.check_output(target, overwrite=overwrite)
        shutil.copyfile(source, target)
    click.echo(f"copied: {target}")


def _format_summary(ds: xr.Dataset) -> str:
    """An aligned table of tail metrics, one row per scenario, with the swept values and a caption.

    Cascade depth VaR/ES are percentages of the start price, ``P(liq)`` is the
    percentage of paths with any liquidation, bad debt is in quote currency.
    """
    from stresslab.report import tables

    return f"{tables.caption(ds)}\n{tables.display_table(ds).reset_index().to_string(index=False)}"


def _describe_sweep(scenarios: ScenarioSet) -> str:
    count = len(scenarios.scenarios)
    if not scenarios.axes:
        return "1 scenario (no sweep)"
    axes = " x ".join(f"{name} ({len(values)} values)" for name, values in scenarios.axes.items())
    return f"the sweep expands to {count} scenarios: {axes}"


if __name__ == "__main__":
    main(prog_name="stresslab")
