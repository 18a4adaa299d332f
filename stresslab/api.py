"""The Python entry points: ``simulate`` a config into an ``xarray.Dataset``, or ``run_to`` a file, on one
process or many.

``run_to`` is the one orchestration of a run that writes its result: the command line uses it for one
process and for many, and every result is written by ``stresslab.io.store.write``. Run settings
(paths, seed, chunk size, devices, what to do on an error) are typed (:class:`RunSettings`) and
applied to the validated config, never turned into ``--set`` strings.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jax
import xarray as xr

from stresslab import accessor as _accessor  # noqa: F401  (results carry ds.stress)
from stresslab import provenance, status
from stresslab.config.loading import ScenarioSet, load_config, validate
from stresslab.config.schema import Config
from stresslab.engine import devices as device_choice
from stresslab.engine import distributed
from stresslab.engine.runner import ScenarioResult, precision, run_paths, run_scenario
from stresslab.engine.scan import simulate_chunk
from stresslab.io import store, targets
from stresslab.io.checkpoint import Checkpoint, partial_dir
from stresslab.io.dataset import assemble
from stresslab.market.model import Static, build
from stresslab.progress import progress_bar
from stresslab.version import __version__

STAGING = "paths"
"""Name of the shared store of a multi-process run, inside the output's ``.partial`` directory."""

ConfigLike = str | Path | Mapping[str, Any] | Config | ScenarioSet
OnError = Literal["raise", "warn"]


@dataclass(frozen=True)
class RunSettings:
    """How to run a config, beside what it says: None keeps the config's value (or the default).

    Attributes:
        paths: paths per scenario (``simulation.paths``).
        seed: random seed (``simulation.seed``).
        chunk_size: paths per chunk, or ``"auto"`` (``simulation.chunk_size``); results do not depend on it.
        device: ``"cpu"`` or ``"gpu"`` (default: JAX's default backend).
        num_devices: how many local devices share each chunk (default: all); results do not depend on it.
        on_error: ``"raise"`` or ``"warn"`` when the kernel recorded untrustworthy numbers.
    """

    paths: int | None = None
    seed: int | None = None
    chunk_size: int | Literal["auto"] | None = None
    device: Literal["cpu", "gpu"] | None = None
    num_devices: int | None = None
    on_error: OnError = "raise"

    SIMULATION_FIELDS = ("paths", "seed", "chunk_size")
    """The settings that are fields of the config's ``simulation`` section."""

    def apply(self, scenarios: ScenarioSet) -> ScenarioSet:
        """``scenarios`` with the given simulation fields replaced (validated again, as the config was).

        Raises:
            ConfigError: a value the schema refuses (the message names the field, e.g. ``simulation.paths``).
        """
        changes = {name: getattr(self, name) for name in self.SIMULATION_FIELDS if getattr(self, name) is not None}
        if not changes:
            return scenarios
        updated = tuple(
            validate(scenario.model_copy(update={"simulation": scenario.simulation.model_copy(update=changes)})
                     .model_dump(mode="json", exclude_none=True))
            for scenario in scenarios.scenarios)
        simulation = updated[0].model_dump(mode="json", exclude_none=True)["simulation"]
        resolved = {**scenarios.resolved, "simulation": simulation}
        return dataclasses.replace(scenarios, scenarios=updated, resolved=resolved)


def run_to(config: ConfigLike, out: str | os.PathLike[str], settings: RunSettings = RunSettings(), *,
           overrides: Iterable[str] = (), progress: bool = False, overwrite: bool = False,
           resume: bool = False) -> xr.Dataset | None:
    """Simulate a config and write the result to ``out``, on this process or on all processes of the run.

    With one process, every finished chunk is saved in ``OUT.partial`` (an interrupted run resumes
    from it); with several (after :func:`stresslab.engine.distributed.initialize`), each simulates
    its share of the paths as :func:`simulate_distributed` says. Either way the result is written by
    ``stresslab.io.store.write`` and is identical for any chunk size, device and process count.

    Args:
        config: a config file path, a plain dict with the config schema, or a loaded config.
        out: a ``*.nc`` file or a Zarr directory (on a file system every process shares).
        settings: paths, seed, chunk size, devices and ``on_error`` (see :class:`RunSettings`).
        overrides: ``"a.b=value"`` strings applied before validation (``--set``).
        progress: show progress over paths (process 0 only, in a multi-process run).
        overwrite: replace an existing ``out``, and start over rather than resume an unfinished run.
        resume: continue an unfinished run from what it saved; the result is identical.

    Returns:
        The Dataset on process 0, None on the other processes.

    Raises:
        ConfigError, SettingError, StresslabError: as :func:`simulate`.
        FileExistsError: ``out`` or an unfinished run of it is in the way (the message says which argument clears it).
    """
    if distributed.current().count > 1:
        return _distributed(config, out, settings, overrides=overrides, progress=progress, overwrite=overwrite,
                            resume=resume, check=check_result)
    check_result(out, overwrite=overwrite)
    scenarios = settings.apply(load_config(config, overrides))
    chunks = _checkpoint(scenarios, out, overwrite=overwrite, resume=resume)
    ds = simulate(scenarios, settings=settings, progress=progress, checkpoint=chunks)
    store.write(ds, out, overwrite=overwrite)
    chunks.remove()
    return ds


def check_result(out: str | os.PathLike[str], *, overwrite: bool) -> None:
    """Refuse a result path that cannot or may not be written (see ``stresslab.io.targets.check_output``).

    Raises:
        OutputError: a bad suffix, a missing or unwritable directory, a file in the way.
        FileExistsError: ``out`` exists without ``overwrite``.
    """
    targets.check_output(out, overwrite=overwrite, suffixes=targets.RESULT_SUFFIXES)


def _checkpoint(scenarios: ScenarioSet, out: str | os.PathLike[str], *, overwrite: bool, resume: bool) -> Checkpoint:
    """Where the run writing ``out`` saves its chunks; ``overwrite`` without ``resume`` drops a stale one."""
    partial = partial_dir(out)
    if overwrite and not resume:
        shutil.rmtree(partial, ignore_errors=True)
    return Checkpoint(partial, run_identity(scenarios), resume=resume, output=out)


def simulate(config: ConfigLike, *, paths: int | None = None, seed: int | None = None,
             overrides: Iterable[str] = (), chunk_size: int | None = None, progress: bool = False,
             on_error: OnError = "raise", checkpoint: Checkpoint | None = None,
             device: Literal["cpu", "gpu"] | None = None, num_devices: int | None = None,
             settings: RunSettings | None = None) -> xr.Dataset:
    """Run every scenario of a config and return the results as one Dataset.

    Args:
        config: a config file path, a plain dict with the config schema, or a loaded config.
        paths: paths per scenario (default ``simulation.paths``).
        seed: random seed (default ``simulation.seed``).
        overrides: ``"a.b=value"`` strings applied before validation.
        chunk_size: paths per chunk (default ``simulation.chunk_size``, "auto" sizes it
            to the devices' memory). Results are identical for any chunk size.
        progress: show a progress bar over paths.
        on_error: ``"raise"`` or ``"warn"`` when the kernel recorded a problem that makes numbers
            untrustworthy (unstable feedback, an exhausted book, non-finite state); see ``stresslab.status``.
        checkpoint: save each finished chunk there, and reuse the chunks already
            saved (resuming an interrupted run gives identical results).
        device: ``"cpu"`` or ``"gpu"`` (default: JAX's default backend, a GPU if the CUDA
            build of JAX finds one).
        num_devices: how many local devices of that kind share each chunk's paths
            (default: all). Results are identical for any number.
        settings: all of ``paths`` .. ``num_devices`` and ``on_error`` at once, instead of them.

    Returns:
        Dataset with dims ``scenario``, ``path``, ``time``, ``quantile``: per-path
        outputs, quantile bands over time, optional sample paths; the resolved
        config, seed, versions and the devices used as attributes.

    Raises:
        ConfigError: the config is invalid (message names the field).
        SettingError: the devices asked for are not available.
        StresslabError: the run produced numbers that cannot be trusted.
    """
    settings = settings or RunSettings(paths, seed, chunk_size, device, num_devices, on_error)
    scenarios, paths, seed, chunk_size = _resolve(config, settings, overrides)
    targets = device_choice.select(settings.device, settings.num_devices)
    results = []
    with progress_bar(paths * len(scenarios.scenarios), enabled=progress) as bar:
        for i, scenario in enumerate(scenarios.scenarios):
            result = run_scenario(scenario, paths=paths, seed=seed, chunk_size=chunk_size, progress=bar,
                                  checkpoint=checkpoint, index=i, devices=targets)
            status.report(result.per_path, i, scenario.simulation.dt, settings.on_error)
            results.append(result)
    return assemble(scenarios, results, seed=seed, attrs=_provenance(paths, targets.platform, len(targets), 1))


def simulate_distributed(config: ConfigLike, out: str | os.PathLike[str], *, paths: int | None = None,
                         seed: int | None = None, overrides: Iterable[str] = (), chunk_size: int | None = None,
                         progress: bool = False, on_error: OnError = "raise",
                         overwrite: bool = False, resume: bool = False,
                         device: Literal["cpu", "gpu"] | None = None,
                         num_devices: int | None = None, settings: RunSettings | None = None) -> xr.Dataset | None:
    """Run a config over all the processes of a ``jax.distributed`` run and write the result to ``out``.

    Every process calls it with the same arguments, after
    :func:`stresslab.engine.distributed.initialize`. Each simulates a contiguous slice of
    every scenario's paths on its local devices and writes it into its region of one
    Zarr store in ``OUT.partial/``; process 0 then checks the paths as :func:`simulate`
    does, assembles the Dataset and writes it to ``out`` (as ``stresslab.io.store.write``).
    The Dataset is identical to a single-process run's, apart from the ``device_count``
    and ``process_count`` attributes. With one process it simply runs here.

    Args:
        config, paths, seed, overrides, chunk_size, on_error, device, num_devices: as for
            :func:`simulate` (``num_devices`` counts each process's own devices).
        out: the result, a Zarr directory or a ``.nc`` file, on a file system all
            processes share.
        progress: show a progress bar over this process's paths.
        overwrite: replace an existing ``out``, and start over rather than resume an unfinished run.
        settings: all of ``paths`` .. ``num_devices`` and ``on_error`` at once, instead of them.
        resume: continue an interrupted run from the paths already stored (any number of
            processes); the result is identical.

    Returns:
        The Dataset on process 0, None on the other processes.

    Raises:
        ConfigError, SettingError, StresslabError: as :func:`simulate`, on every process.
        FileExistsError: ``out`` exists without ``overwrite``, or an unfinished run is in
            the way without ``resume``.
        PeerError: another process failed (its message says why).
    """
    settings = settings or RunSettings(paths, seed, chunk_size, device, num_devices, on_error)
    return _distributed(config, out, settings, overrides=overrides, progress=progress, overwrite=overwrite,
                        resume=resume, check=store.check_target)


def _distributed(config: ConfigLike, out: str | os.PathLike[str], settings: RunSettings, *,
                 overrides: Iterable[str], progress: bool, overwrite: bool, resume: bool,
                 check: Callable[..., None]) -> xr.Dataset | None:
    """``simulate_distributed``, with ``check(out, overwrite=...)`` run by process 0 before anything is written.

    A failure on any process is published to the others, which stop with its message.
    """
    messages = distributed.Messages(distributed.current())
    try:
        return _run_part(messages, config, out, settings, overrides=overrides, progress=progress,
                         overwrite=overwrite, resume=resume, check=check)
    except distributed.PeerError:
        raise
    except BaseException as failure:
        messages.abort(failure)
        raise


def _run_part(messages: distributed.Messages, config: ConfigLike, out: str | os.PathLike[str], settings: RunSettings,
              *, overrides: Iterable[str], progress: bool, overwrite: bool, resume: bool,
              check: Callable[..., None]) -> xr.Dataset | None:
    """This process's part of ``simulate_distributed``: prepare, simulate its paths, and (process 0) finish."""
    cluster = messages.cluster
    partial = partial_dir(out)
    staging = partial / STAGING
    scenarios, paths, seed, chunk_size = _resolve(config, settings, overrides)
    targets = device_choice.select(settings.device, settings.num_devices)
    on_error = settings.on_error
    messages.send("ready")
    messages.gather("ready")  # every process can run: only now is anything written
    if cluster.leader:
        check(out, overwrite=overwrite)
        _checkpoint(scenarios, out, overwrite=overwrite, resume=resume)
        layout = _layout(scenarios, paths, seed, cluster)
        if not (resume and store.PathStore.exists(staging) and store.PathStore(staging).holds(layout)):
            store.PathStore.create(staging, layout)
        messages.send("prepared")
    else:
        messages.receive("prepared", 0)
    shared = store.PathStore(staging)
    start, stop = distributed.span(paths, shared.block, cluster)
    with progress_bar((stop - start) * len(scenarios.scenarios), enabled=progress) as bar:
        statics = [run_paths(scenario, seed=seed, start=start, stop=stop, chunk_size=chunk_size, devices=targets,
                             progress=bar, checkpoint=shared, index=i, on_chunk=lambda *_: messages.check())
                   for i, scenario in enumerate(scenarios.scenarios)]
    if not cluster.leader:
        messages.send("simulate", devices=len(targets))
        messages.receive("finish", 0)
        return None
    peers = messages.gather("simulate", range(1, cluster.count))
    device_count = len(targets) + sum(int(peer["devices"]) for peer in peers)
    ds = _finish(scenarios, shared, statics, out, seed=seed, on_error=on_error, overwrite=overwrite,
                 attrs=_provenance(paths, targets.platform, device_count, cluster.count))
    shutil.rmtree(partial, ignore_errors=True)
    messages.send("finish")
    return ds


def _finish(scenarios: ScenarioSet, shared: store.PathStore, statics: list[Static], out: str | os.PathLike[str], *,
            seed: int, on_error: str, overwrite: bool, attrs: dict[str, object]) -> xr.Dataset:
    """Check and assemble every scenario's paths from the shared store, as ``simulate`` does, and write the result."""
    results = []
    for i, (scenario, static) in enumerate(zip(scenarios.scenarios, statics, strict=True)):
        per_path, recorded = shared.read(i)
        status.report(per_path, i, scenario.simulation.dt, on_error)
        results.append(ScenarioResult(per_path, recorded, static))
    ds = assemble(scenarios, results, seed=seed, attrs=attrs)
    store.write(ds, out, overwrite=overwrite)
    return ds


def _layout(scenarios: ScenarioSet, paths: int, seed: int, cluster: distributed.Cluster) -> dict[str, object]:
    """The shared store's arrays: the kernel's outputs (traced, not run) for every scenario and path."""
    scenario = scenarios.scenarios[0]
    with precision(scenario.simulation.dtype):
        params, static = build(scenario)
        out, rec = jax.eval_shape(lambda p, k: simulate_chunk(p, static, k, jax.numpy.uint32(0), 1), params,
                                  jax.random.key(seed))
    per_path = {name: value.dtype for name, value in out.items()}
    recorded = {name: (value.dtype, value.shape[0]) for name, value in rec.items()}
    bytes_per_path = sum(dtype.itemsize * points for dtype, points in recorded.values())
    block = distributed.block_size(paths, cluster.count, bytes_per_path, store.ZARR_CHUNK_BYTES)
    return store.path_layout(len(scenarios.scenarios), paths, block, per_path, recorded)


def _resolve(config: ConfigLike, settings: RunSettings,
             overrides: Iterable[str]) -> tuple[ScenarioSet, int, int, int | None]:
    """The scenarios, with paths, seed and chunk size ("auto": None) resolved from the settings and the config."""
    scenarios = settings.apply(load_config(config, overrides))
    sim = scenarios.scenarios[0].simulation
    return scenarios, sim.paths, sim.seed, None if sim.chunk_size == "auto" else sim.chunk_size


def run_identity(scenarios: ScenarioSet) -> dict[str, object]:
    """What determines a run's numbers: a partial run is resumed only if this matches."""
    return {"config": scenarios.to_toml(), "version": __version__}


def _provenance(paths: int, platform: str, device_count: int, process_count: int) -> dict[str, object]:
    return {
        "stresslab_version": __version__,
        "jax_version": jax.__version__,
        "backend": platform,
        "device_count": device_count,
        "process_count": process_count,
        **provenance.commit_attrs(),
        "paths": paths,
    }

