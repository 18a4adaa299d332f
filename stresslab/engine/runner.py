"""Run scenarios chunk by chunk on the chosen local devices, and gather host-side results.

Chunks have one fixed size (the last one is padded and trimmed), so one compiled
kernel serves every chunk of a scenario and every scenario with the same shapes.
A chunk's paths are split evenly over the devices (``engine.devices``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from stresslab.config.schema import Config
from stresslab.engine.devices import Devices, run_chunk, select
from stresslab.market.model import Static, build

CPU_CHUNK_BYTES = 512 * 2**20
"""Working-set budget of one chunk on the CPU, bytes (CPU devices share the host's memory)."""
DEVICE_MEMORY_SHARE = 0.4
"""Share of each accelerator's memory its slice of a chunk may use."""
WORK_ARRAYS_PER_COHORT = 48
"""Rough count of (paths x cohorts) temporaries alive in a step, for sizing chunks."""
RANKING_ARRAYS = 4
"""(paths x cohorts x cohorts) temporaries of the auto-deleveraging ranking."""
MAX_AUTO_CHUNK_PER_CPU_DEVICE = 2048
"""Largest automatic slice of a chunk per CPU device, paths. Most of a step's kernels touch a few numbers
per path, so a larger slice spreads their dispatch over more paths, until its working set leaves the core's
caches (on the README's 2-core machine, 7 Dec, interleaved, best of 3 and 5: the reference day at 8192 paths x 720
steps ran at 3.44, 3.79 and 3.59 M path-steps/s with slices of 1024, 2048 and 4096; the crash segment at
10^4 paths x 150 steps at 2.27 and 2.66 M with 1024 and 2048). ``CPU_CHUNK_BYTES`` caps it for many cohorts."""
MAX_AUTO_CHUNK_PER_ACCELERATOR = 2**24
"""Largest automatic slice of a chunk per accelerator, paths."""
LANE_PAD = 64
"""Compiled chunks hold a multiple of this many paths per device (padding is discarded): every path then
runs through the same vectorised machine code, which keeps results bit-identical across chunk sizes and
device counts."""

Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class ScenarioResult:
    """Host arrays of one scenario: per-path outputs (paths,) and recorded series (paths, T_rec)."""

    per_path: Arrays
    recorded: Arrays
    static: Static


class ChunkStore(Protocol):
    """Where finished chunks are kept (``io.checkpoint.Checkpoint``, ``io.store.PathStore``)."""

    def load(self, scenario: int, start: int, count: int) -> tuple[Arrays, Arrays] | None:
        """The (per-path, recorded) arrays of paths ``start .. start + count - 1``, or None if not saved."""

    def save(self, scenario: int, start: int, per_path: Arrays, recorded: Arrays) -> None:
        """Keep a finished chunk."""


def precision(dtype: str):
    """Context in which arrays of ``dtype`` can be built and traced."""
    return jax.enable_x64(True) if dtype == "float64" else contextlib.nullcontext()


def auto_chunk(static: Static, paths: int, devices: Devices | None = None) -> int:
    """Paths per chunk that fit the memory of ``devices`` (default: all local devices of the default kind).

    An accelerator's slice of a chunk may use ``DEVICE_MEMORY_SHARE`` of its memory; CPU
    devices share the host's memory, so there ``CPU_CHUNK_BYTES`` is the budget of the whole chunk.
    """
    devices = devices or select()
    itemsize = jnp.dtype(static.grid.dtype).itemsize
    cohorts = max(static.positions.n_cohorts, 1)
    per_path = itemsize * (WORK_ARRAYS_PER_COHORT * cohorts + RANKING_ARRAYS * cohorts**2 + 64
                           + 3 * (static.grid.n_blocks + 2))
    device = devices.devices[0]
    budget, cap = CPU_CHUNK_BYTES, MAX_AUTO_CHUNK_PER_CPU_DEVICE * len(devices)
    if device.platform != "cpu":
        stats = device.memory_stats() or {}
        share = int(stats["bytes_limit"] * DEVICE_MEMORY_SHARE) if "bytes_limit" in stats else CPU_CHUNK_BYTES
        budget, cap = share * len(devices), MAX_AUTO_CHUNK_PER_ACCELERATOR * len(devices)
    limit = int(max(1, min(paths, budget // per_path, cap)))
    chunks = -(-paths // limit)
    return -(-paths // chunks)  # equal chunks: the last one is not mostly padding


def per_device(chunk: int, count: int) -> int:
    """Paths each of ``count`` devices runs for a chunk of ``chunk`` paths: a multiple of ``LANE_PAD``."""
    share = -(-chunk // count)
    return -(-share // LANE_PAD) * LANE_PAD


def run_paths(config: Config, *, seed: int, start: int, stop: int, chunk_size: int | None = None,
              devices: Devices | None = None, progress: tqdm | None = None, checkpoint: ChunkStore | None = None,
              index: int = 0, on_chunk: Callable[[Arrays, Arrays], None] | None = None) -> Static:
    """Simulate paths ``start .. stop - 1`` of one scenario, chunk by chunk, in order.

    Randomness depends only on (seed, path index), so any split of the paths into
    chunks, devices or processes gives the same numbers.

    Args:
        config: one scenario.
        seed: random seed.
        start, stop: the global path indices to simulate (``stop`` excluded).
        chunk_size: paths per chunk (default: sized to the devices' memory).
        devices: where to run (default: all local devices of the default kind).
        progress: a bar advanced by the paths of each chunk.
        checkpoint: chunks already saved there (as scenario ``index``) are loaded instead
            of simulated, and every new chunk is saved as it finishes.
        on_chunk: called with each chunk's per-path outputs {name: (n,)} and recorded
            series {name: (n, T_rec)}, in path order.

    Returns:
        The scenario's static settings (shapes, record points).
    """
    devices = devices or select()
    with precision(config.simulation.dtype), jax.default_device(devices.devices[0]):
        params, static = build(config)
        paths = stop - start
        if paths <= 0:
            return static
        chunk = min(chunk_size or auto_chunk(static, paths, devices), paths)
        slice_size = per_device(chunk, len(devices))
        key = jax.random.key(seed)
        for first in range(start, stop, chunk):
            take = min(chunk, stop - first)
            saved = checkpoint.load(index, first, take) if checkpoint is not None else None
            if saved is None:
                out, rec = run_chunk(params, static, key, first, slice_size, devices)
                saved = ({k: np.asarray(v)[:take] for k, v in out.items()},
                         {k: np.asarray(v).T[:take] for k, v in rec.items()})
                if checkpoint is not None:
                    checkpoint.save(index, first, *saved)
            if on_chunk is not None:
                on_chunk(*saved)
            if progress is not None:
                progress.update(take)
    return static


def run_scenario(config: Config, *, paths: int, seed: int, chunk_size: int | None = None,
                 progress: tqdm | None = None, checkpoint: ChunkStore | None = None, index: int = 0,
                 devices: Devices | None = None) -> ScenarioResult:
    """Simulate ``paths`` paths of one scenario and keep their outputs on the host (see ``run_paths``).

    The host arrays are allocated once, at the first chunk, and filled chunk by chunk: holding
    10^6 paths costs their outputs' size once, not twice.
    """
    per_path: Arrays = {}
    recorded: Arrays = {}
    filled = 0

    def keep(out: Arrays, rec: Arrays) -> None:
        nonlocal filled
        take = next(iter(out.values())).shape[0]
        for into, part in ((per_path, out), (recorded, rec)):
            for name, value in part.items():
                if name not in into:
                    into[name] = np.empty((paths, *value.shape[1:]), value.dtype)
                into[name][filled:filled + take] = value
        filled += take

    static = run_paths(config, seed=seed, start=0, stop=paths, chunk_size=chunk_size, devices=devices,
                       progress=progress, checkpoint=checkpoint, index=index, on_chunk=keep)
    return ScenarioResult(per_path, recorded, static)
