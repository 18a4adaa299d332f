"""The Python entry points: ``simulate`` a config into an ``xarray.Dataset``."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import jax
import xarray as xr
from tqdm.auto import tqdm

from stresslab import __version__, status
from stresslab.config.loading import ScenarioSet, load_config
from stresslab.config.schema import Config
from stresslab.engine.runner import run_scenario
from stresslab.io.checkpoint import Checkpoint
from stresslab.io.dataset import assemble


def simulate(config: str | Path | Mapping[str, Any] | Config | ScenarioSet, *, paths: int | None = None,
             seed: int | None = None, overrides: Iterable[str] = (), chunk_size: int | None = None,
             progress: bool = False, on_error: Literal["raise", "warn"] = "raise",
             checkpoint: Checkpoint | None = None) -> xr.Dataset:
    """Run every scenario of a config and return the results as one Dataset.

    Args:
        config: a config file path, a plain dict with the config schema, or a loaded config.
        paths: paths per scenario (default ``simulation.paths``).
        seed: random seed (default ``simulation.seed``).
        overrides: ``"a.b=value"`` strings applied before validation.
        chunk_size: paths per chunk (default ``simulation.chunk_size``, "auto" sizes it
            to the device memory). Results are identical for any chunk size.
        progress: show a progress bar over paths.
        on_error: ``"raise"`` or ``"warn"`` when the kernel recorded a problem that makes numbers
            untrustworthy (unstable feedback, an exhausted book, non-finite state); see ``stresslab.status``.
        checkpoint: save each finished chunk there, and reuse the chunks already
            saved (resuming an interrupted run gives identical results).

    Returns:
        Dataset with dims ``scenario``, ``path``, ``time``, ``quantile``: per-path
        outputs, quantile bands over time, optional sample paths; the resolved
        config, seed and versions as attributes.

    Raises:
        ConfigError: the config is invalid (message names the field).
        StresslabError: the run produced numbers that cannot be trusted.
    """
    given = {"paths": paths, "seed": seed, "chunk_size": chunk_size}
    overrides = [*overrides, *(f"simulation.{k}={v}" for k, v in given.items() if v is not None)]
    scenarios = load_config(config, overrides)
    sim = scenarios.scenarios[0].simulation
    paths, seed = sim.paths, sim.seed
    chunk_size = None if sim.chunk_size == "auto" else sim.chunk_size
    results = []
    with tqdm(total=paths * len(scenarios.scenarios), unit="path", disable=not progress,
              desc="simulating", dynamic_ncols=True) as bar:
        for i, scenario in enumerate(scenarios.scenarios):
            result = run_scenario(scenario, paths=paths, seed=seed, chunk_size=chunk_size, progress=bar,
                                  checkpoint=checkpoint, index=i)
            status.report(result.per_path, i, scenario.simulation.dt, on_error)
            results.append(result)
    attrs = {
        "stresslab_version": __version__,
        "jax_version": jax.__version__,
        "backend": jax.default_backend(),
        "device_count": jax.device_count(),
        "git_commit": _git_commit(),
        "paths": paths,
    }
    return assemble(scenarios, results, seed=seed, attrs=attrs)


def _git_commit() -> str:
    """The commit of the stresslab checkout this code runs from, or "unknown" (e.g. a wheel install)."""
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                              text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and len(commit) == 40 else "unknown"
