"""Run scenarios chunk by chunk on whatever device JAX has, and gather host-side results.

Chunks have one fixed size (the last one is padded and trimmed), so one compiled
kernel serves every chunk of a scenario and every scenario with the same shapes.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from stresslab.config.schema import Config
from stresslab.engine.scan import simulate_chunk
from stresslab.market.params import Static, build

if TYPE_CHECKING:
    from stresslab.io.checkpoint import Checkpoint

CPU_CHUNK_BYTES = 512 * 2**20
"""Working-set budget per chunk on a CPU, bytes."""
DEVICE_MEMORY_SHARE = 0.4
"""Share of an accelerator's memory one chunk may use."""
WORK_ARRAYS_PER_COHORT = 48
"""Rough count of (paths x cohorts) temporaries alive in a step, for sizing chunks."""
RANKING_ARRAYS = 4
"""(paths x cohorts x cohorts) temporaries of the auto-deleveraging ranking."""
MAX_AUTO_CHUNK = 2**16
LANE_PAD = 64
"""Compiled chunks hold a multiple of this many paths (padding is discarded): every path then
runs through the same vectorised machine code, which keeps results bit-identical across chunk sizes."""


@dataclass(frozen=True)
class ScenarioResult:
    """Host arrays of one scenario: per-path outputs (paths,) and recorded series (paths, T_rec)."""

    per_path: dict[str, np.ndarray]
    recorded: dict[str, np.ndarray]
    static: Static


def precision(dtype: str):
    """Context in which arrays of ``dtype`` can be built and traced."""
    return jax.enable_x64(True) if dtype == "float64" else contextlib.nullcontext()


def auto_chunk(static: Static, paths: int) -> int:
    """Paths per chunk that fit the device's memory budget."""
    itemsize = jnp.dtype(static.dtype).itemsize
    cohorts = max(static.n_cohorts, 1)
    per_path = itemsize * (WORK_ARRAYS_PER_COHORT * cohorts + RANKING_ARRAYS * cohorts**2 + 64
                           + 3 * (static.n_blocks + 2))
    device = jax.devices()[0]
    budget = CPU_CHUNK_BYTES
    stats = device.memory_stats() if device.platform != "cpu" else None
    if stats and "bytes_limit" in stats:
        budget = int(stats["bytes_limit"] * DEVICE_MEMORY_SHARE)
    limit = int(max(1, min(paths, budget // per_path, MAX_AUTO_CHUNK if device.platform == "cpu" else 2**24)))
    chunks = -(-paths // limit)
    return -(-paths // chunks)  # equal chunks: the last one is not mostly padding


def run_scenario(config: Config, *, paths: int, seed: int, chunk_size: int | None = None,
                 progress: tqdm | None = None, checkpoint: Checkpoint | None = None,
                 index: int = 0) -> ScenarioResult:
    """Simulate ``paths`` paths of one scenario; randomness depends only on (seed, path index).

    With a ``checkpoint``, chunks already saved there (as scenario ``index``) are
    loaded instead of simulated, and every new chunk is saved as it finishes.
    """
    with precision(config.simulation.dtype):
        params, static = build(config)
        chunk = chunk_size or auto_chunk(static, paths)
        chunk = min(chunk, paths)
        key = jax.random.key(seed)
        per_path: dict[str, list[np.ndarray]] = {}
        recorded: dict[str, list[np.ndarray]] = {}
        compiled = -(-chunk // LANE_PAD) * LANE_PAD
        for start in range(0, paths, chunk):
            take = min(chunk, paths - start)
            saved = checkpoint.load(index, start, take) if checkpoint is not None else None
            if saved is None:
                out, rec = simulate_chunk(params, static, key, jnp.uint32(start), compiled)
                saved = ({k: np.asarray(v)[:take] for k, v in out.items()},
                         {k: np.asarray(v).T[:take] for k, v in rec.items()})
                if checkpoint is not None:
                    checkpoint.save(index, start, *saved)
            for name, value in saved[0].items():
                per_path.setdefault(name, []).append(value)
            for name, value in saved[1].items():
                recorded.setdefault(name, []).append(value)
            if progress is not None:
                progress.update(take)
    return ScenarioResult(
        {k: np.concatenate(v) for k, v in per_path.items()},
        {k: np.concatenate(v) for k, v in recorded.items()},
        static,
    )
