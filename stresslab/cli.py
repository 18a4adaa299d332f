"""The ``stresslab`` command line: parse arguments, call the library, print results.

Exit codes: 0 success; 1 a run that cannot give trustworthy numbers, or an output
that cannot be written; 2 a usage problem (bad config, missing file, bad ``--set``,
an output that exists without ``--overwrite``, devices or processes that cannot be
had). Problems are reported as one line on stderr, ``error: ...``, never as a traceback.
In a multi-process run every process exits with the code of the first failure.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import click
import xarray as xr

from stresslab import __version__
from stresslab.api import run_identity, simulate, simulate_distributed
from stresslab.calibrate import loop as calibration
from stresslab.config.loading import ConfigError, ScenarioSet, load_config
from stresslab.engine import distributed
from stresslab.engine.devices import PLATFORMS, SettingError
from stresslab.errors import StresslabError
from stresslab.io import store
from stresslab.io.checkpoint import Checkpoint, partial_dir
from stresslab.report import HTML_FILE, ResultError, default_directory, load_result, tables, write_report

USAGE_ERROR = 2
RUN_ERROR = 1
INTERRUPTED = 130


class _Failure(click.ClickException):
    """A problem reported as one line, ``error: message``, with its exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(" ".join(message.split()))
        self.exit_code = exit_code

    def show(self, file: IO[str] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


@contextmanager
def _reported() -> Iterator[None]:
    """Turn the library's errors into one-line messages and exit codes."""
    try:
        yield
    except (ConfigError, FileExistsError) as err:
        raise _Failure(str(err), USAGE_ERROR) from None
    except SettingError as err:
        raise _Failure(f"--{err.setting.replace('_', '-')}: {err.reason}", USAGE_ERROR) from None
    except distributed.PeerError as err:
        raise _Failure(str(err), USAGE_ERROR if err.usage else RUN_ERROR) from None
    except StresslabError as err:
        raise _Failure(str(err), RUN_ERROR) from None
    except OSError as err:
        where = f"{err.filename}: " if err.filename else ""
        raise _Failure(f"{where}{err.strerror or err}", RUN_ERROR) from None


@contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """Show the warnings raised inside as ``warning: message`` lines on stderr, once the block ends.

    Deferred so that they do not land in the middle of the progress bar.
    """
    with warnings.catch_warnings(record=True) as caught:
        try:
            yield
        finally:
            for warning in caught:
                click.echo(f"warning: {warning.message}", err=True)


_set_option = click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE",
    help="Override a config field, e.g. --set market.sigma=0.8; a list sweeps it, e.g. --set 'market.sigma=[0.5, 1]'. "
         "Repeatable.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="stresslab")
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
@click.argument("config")
@click.option("--paths", type=int, help="Paths per scenario (default: simulation.paths).")
@click.option("--seed", type=int, help="Random seed (default: simulation.seed).")
@click.option("--chunk-size", type=int,
              help="Paths per chunk (default: simulation.chunk_size); results do not depend on it.")
@click.option("--out", type=click.Path(path_type=Path),
              help="Write the results here: netCDF if it ends in .nc, else a Zarr directory.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out.")
@click.option("--on-error", type=click.Choice(["raise", "warn"]), default="raise", show_default=True,
              help="When the kernel records untrustworthy numbers (unstable feedback, an exhausted book, NaN): "
                   "stop with an error, or warn and write the results with the affected paths flagged.")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted run with --out from the chunks it saved; the result is identical.")
@click.option("--device", metavar="|".join(PLATFORMS),
              help="Run on the CPU or on NVIDIA GPUs (default: a GPU if JAX finds one, else the CPU).")
@click.option("--num-devices", type=int, metavar="N",
              help="Split each chunk's paths over this many local devices (default: all); results do not depend on it.")
@click.option("--coordinator", metavar="HOST:PORT",
              help="Multi-process run: where process 0 listens (auto-detected under SLURM srun).")
@click.option("--num-processes", type=int, metavar="N",
              help="Multi-process run: how many processes run this command (auto-detected under SLURM srun; "
                   "1 turns detection off).")
@click.option("--process-id", type=int, metavar="I",
              help="Multi-process run: this process's index, 0 to N-1 (auto-detected under SLURM srun).")
@click.option("--metrics", type=click.Path(path_type=Path), callback=lambda ctx, param, value: _metrics_path(value),
              help="Write the headline metrics with confidence intervals here: JSON (*.json) or CSV (*.csv).")
@_set_option
def run(config: str, paths: int | None, seed: int | None, chunk_size: int | None, out: Path | None,
        overwrite: bool, on_error: str, resume: bool, device: str | None, num_devices: int | None,
        coordinator: str | None, num_processes: int | None, process_id: int | None,
        metrics: Path | None, overrides: tuple[str, ...]) -> None:
    """Simulate the scenarios of CONFIG (TOML or YAML) and print their tail metrics.

    With --out, every finished chunk is saved beside the output (OUT.partial)
    until the result is written, so a run that is killed can be resumed.

    Paths are split over all local devices. Run the same command in several
    processes (--coordinator, --num-processes, --process-id, or srun under SLURM)
    to split them over machines: each process simulates its share into OUT.partial,
    and process 0 writes OUT, identical to a single-process run.
    """
    settings = {"paths": paths, "seed": seed, "chunk_size": chunk_size}
    overrides += tuple(f"simulation.{key}={value}" for key, value in settings.items() if value is not None)
    with _reported():
        cluster = distributed.initialize(coordinator, num_processes, process_id)
        if resume and out is None:
            raise _Failure("--resume needs --out: only runs that write their results save chunks", USAGE_ERROR)
        if cluster.count > 1:
            _run_distributed(config, overrides, cluster, out, overwrite=overwrite, on_error=on_error, resume=resume,
                             device=device, num_devices=num_devices)
            return
        scenarios = load_config(config, overrides)
        chunks = None
        if out is not None:
            store.check_target(out, overwrite=overwrite)
            chunks = Checkpoint(partial_dir(out), run_identity(scenarios), resume=resume)
        try:
            with _warnings_as_lines():
                ds = simulate(scenarios, progress=True, checkpoint=chunks, on_error=on_error, device=device,
                              num_devices=num_devices)
        except KeyboardInterrupt:
            if chunks is None:
                raise _Failure("interrupted; nothing was saved (runs without --out keep no chunks)",
                               INTERRUPTED) from None
            raise _Failure(f"interrupted; {chunks.count()} finished chunks are saved in {chunks.directory}. "
                           "Run the same command with --resume to continue", INTERRUPTED) from None
        if out is not None:
            store.write(ds, out, overwrite=overwrite)
            chunks.remove()
    click.echo(_format_summary(ds))
    if metrics is not None:
        from stresslab.metrics.headline import write_metrics

        click.echo(f"metrics: {write_metrics(ds, metrics)}")
    if out is not None:
        click.echo(f"results: {out}")


def _run_distributed(config: str, overrides: tuple[str, ...], cluster: distributed.Cluster, out: Path | None, *,
                     overwrite: bool, on_error: str, resume: bool, device: str | None, num_devices: int | None) -> None:
    """This process's part of a multi-process run; process 0 prints the summary.

    The config is read inside the run, so that a process that cannot read it stops the others.
    """
    if out is None:
        raise _Failure("--out is needed to run more than one process: each process writes its paths beside it, "
                       "on a file system all processes share", USAGE_ERROR)
    try:
        with _warnings_as_lines():
            ds = simulate_distributed(config, out, overrides=overrides, progress=cluster.leader, on_error=on_error,
                                      overwrite=overwrite, resume=resume, device=device, num_devices=num_devices)
    except KeyboardInterrupt:
        raise _Failure(f"interrupted; the paths finished so far are saved in {partial_dir(out)}. "
                       "Run the same command with --resume to continue", INTERRUPTED) from None
    if ds is not None:
        click.echo(_format_summary(ds))
        click.echo(f"results: {out}")


@main.command()
@click.argument("config")
@_set_option
def check(config: str, overrides: tuple[str, ...]) -> None:
    """Validate CONFIG and print it resolved (defaults filled in, units normalised) as TOML."""
    with _reported():
        scenarios = load_config(config, overrides)
    click.echo(scenarios.to_toml())
    click.echo(f"# {_describe_sweep(scenarios)}")


@main.command(name="calibrate")
@click.argument("config")
@click.option("--out", type=click.Path(path_type=Path),
              help="Output directory (default: the config's name with the suffix .calibration).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out.")
@click.option("--netcdf", is_flag=True, help="Write the trace as netCDF (trace.nc) instead of Zarr (trace.zarr).")
@click.option("--device", metavar="|".join(PLATFORMS),
              help="Run the paths on this kind of device (default: JAX's default backend).")
@click.option("--num-devices", type=int, metavar="N",
              help="Deal the paths over this many local devices (default: all); results do not depend on it.")
@_set_option
def calibrate_command(config: str, out: Path | None, overwrite: bool, netcdf: bool, device: str | None,
                      num_devices: int | None, overrides: tuple[str, ...]) -> None:
    """Tune the controls in CONFIG's [calibration] section (CMA-ES on the hard rules, then gradient refinement);
    write DIR/trace and DIR/calibrated.toml (a config `stresslab run` accepts as it is)."""
    target = out if out is not None else Path(Path(config).stem + ".calibration")
    with _reported():
        if target.exists() and not overwrite:
            raise FileExistsError(f"{target} exists; pass --overwrite to replace it")
        with _warnings_as_lines():
            result = calibration.calibrate(config, overrides=overrides, progress=True, device=device,
                                           num_devices=num_devices)
        target.mkdir(parents=True, exist_ok=True)
        store.write(result.trace, target / ("trace.nc" if netcdf else "trace.zarr"), overwrite=True)
        staged = target / "calibrated.toml.partial"
        staged.write_text(result.to_toml())
        staged.replace(target / "calibrated.toml")
    click.echo(_format_calibration(result))
    click.echo(f"results: {target}")


def _format_calibration(result: calibration.CalibrationResult) -> str:
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
@click.option("--out", type=click.Path(path_type=Path),
              help="Report directory (default: RESULT with the suffix .report, e.g. squeeze.report).")
@click.option("--overwrite", is_flag=True, help="Replace an existing report directory.")
def report(result: Path, out: Path | None, overwrite: bool) -> None:
    """Write PNG figures, summary.md and a self-contained report.html for RESULT (from `stresslab run --out`)."""
    target = out if out is not None else default_directory(result)
    with _reported():
        try:
            ds = load_result(result)
        except (FileNotFoundError, ResultError) as err:
            raise _Failure(str(err), USAGE_ERROR) from None
        written = write_report(ds, target, overwrite=overwrite)
    click.echo(f"report: {written / HTML_FILE}")


def _format_summary(ds: xr.Dataset) -> str:
    """An aligned table of tail metrics, one row per scenario, with the swept values and a caption.

    Cascade depth VaR/ES are percentages of the start price, ``P(liq)`` is the
    percentage of paths with any liquidation, bad debt is in quote currency.
    """
    return f"{tables.caption(ds)}\n{tables.display_table(ds).reset_index().to_string(index=False)}"


def _describe_sweep(scenarios: ScenarioSet) -> str:
    count = len(scenarios.scenarios)
    if not scenarios.axes:
        return "1 scenario (no sweep)"
    axes = " x ".join(f"{name} ({len(values)} values)" for name, values in scenarios.axes.items())
    return f"the sweep expands to {count} scenarios: {axes}"


if __name__ == "__main__":
    main(prog_name="stresslab")
