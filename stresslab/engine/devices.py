"""Which local devices run the paths, and how one chunk of paths is split across them.

A chunk's paths are cut into equal, contiguous per-device slices (each a multiple of
``LANE_PAD`` paths, see ``runner``); every device runs the same single-device kernel
(``simulate_chunk``, one call per device from a thread of its own, no communication between devices).
Randomness comes from the global path index, so a path's numbers do not
depend on how many devices run it.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import jax
import numpy as np

from stresslab.engine.scan import simulate_chunk
from stresslab.errors import SettingError
from stresslab.market.model import Params, Static

PLATFORMS = ("cpu", "gpu")
"""Device kinds a run can ask for (``gpu``: NVIDIA GPUs through the CUDA build of JAX)."""
CUDA_HINT = "for NVIDIA GPUs install the CUDA build of JAX: pip install 'stresslab[cuda]'"
CPU_DEVICES_ENV = "STRESSLAB_CPU_DEVICES"
"""Environment variable: how many CPU devices JAX should create (default: one per usable core)."""
FORCE_FLAG = "xla_force_host_platform_device_count"


def use_cpu_cores() -> int | None:
    """Give JAX one CPU device per usable core, so that paths are sharded over all cores.

    ``import stresslab`` changes nothing in JAX: the command line calls this before it runs
    anything, and Python users call ``stresslab.use_cpu_cores()`` first thing, before any JAX
    computation.

    XLA runs one CPU device's kernel on about one core; with several CPU devices their
    slices of a chunk run concurrently (results are bit-identical for any device count).
    Applies only before JAX's backends start, and only if neither ``XLA_FLAGS``
    (``--xla_force_host_platform_device_count``) nor ``jax_num_cpu_devices`` already set the
    count; ``STRESSLAB_CPU_DEVICES=N`` chooses N instead of the core count.

    Returns:
        The count set, or None where it was left alone.
    """
    wanted = os.environ.get(CPU_DEVICES_ENV, "")
    if FORCE_FLAG in os.environ.get("XLA_FLAGS", "") or jax.config.jax_num_cpu_devices > 0:
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    count = cores
    if wanted:
        try:
            count = int(wanted)
        except ValueError:
            count = 0
        if count < 1:
            warnings.warn(f"{CPU_DEVICES_ENV} must be a whole number >= 1 (got {wanted!r}); using {cores}, "
                          "the number of usable cores", stacklevel=2)
            count = cores
    try:
        jax.config.update("jax_num_cpu_devices", count)
    except RuntimeError:  # JAX's backends have started: the device count is fixed now
        if wanted:
            warnings.warn(f"{CPU_DEVICES_ENV} is ignored: JAX was already running when use_cpu_cores() was called",
                          stacklevel=2)
        return None
    return count



@dataclass(frozen=True)
class Devices:
    """The local devices that run a process's paths, all of one platform, in JAX's order."""

    devices: tuple[jax.Device, ...]

    @property
    def platform(self) -> str:
        """``cpu`` or ``gpu``."""
        return self.devices[0].platform

    def __len__(self) -> int:
        return len(self.devices)


def select(device: str | None = None, num_devices: int | None = None) -> Devices:
    """The first ``num_devices`` local devices of kind ``device``.

    Args:
        device: ``"cpu"`` or ``"gpu"``; default: JAX's default backend (a GPU when the
            CUDA build of JAX finds one, else the CPU).
        num_devices: how many of them (default: all local devices of that kind). Under
            ``jax.distributed`` these are this process's devices only.

    Returns:
        The devices, e.g. ``len(select("cpu"))`` is 4 with
        ``XLA_FLAGS=--xla_force_host_platform_device_count=4``.

    Raises:
        SettingError: an unknown kind, no device of that kind, or a count out of range.
    """
    if device is not None and device not in PLATFORMS:
        raise SettingError("device", f"must be one of {', '.join(PLATFORMS)} (got {device!r})")
    try:
        found = jax.local_devices(backend=device)
    except RuntimeError:
        raise SettingError("device", f"no {device.upper()} is visible to JAX (it has: {jax.default_backend()}); "
                                     f"{CUDA_HINT}") from None
    if num_devices is not None and not 1 <= num_devices <= len(found):
        raise SettingError("num_devices", f"must be between 1 and {len(found)}, the number of local "
                                          f"{found[0].platform.upper()} devices (got {num_devices})")
    return Devices(tuple(found[:num_devices]))


def run_chunk(params: Params, static: Static, seed_key: jax.Array, first_index: int, per_device: int,
              devices: Devices) -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
    """Simulate paths ``first_index .. first_index + per_device * len(devices) - 1``.

    Device ``d`` runs paths ``first_index + d * per_device`` onwards, through the same
    kernel that one device runs on a chunk of ``per_device`` paths: each device gets its own
    call of ``simulate_chunk`` (the same HLO module, compiled for that device). The calls are
    made from one thread per device, so that the devices compile their copies of the kernel
    at the same time on the first chunk and run concurrently after it. No ``shard_map``: its
    SPMD-partitioned module is fused differently by XLA, and XLA:CPU contracts a*b + c into
    FMAs inside fused kernels, so a different fusion rounds differently.

    Returns:
        per-path outputs {name: (paths,)} and recorded series {name: (T_rec, paths)}, paths
        in global order.
    """

    x64 = jax.config.jax_enable_x64  # the caller's precision: JAX's config contexts are per thread

    def launch(d: int):
        device = devices.devices[d]
        with jax.enable_x64(x64), jax.default_device(device):
            inputs = jax.device_put((params, seed_key, np.uint32(first_index + d * per_device)), device)
            return simulate_chunk(params=inputs[0], static=static, seed_key=inputs[1], first_index=inputs[2],
                                  chunk=per_device)

    if len(devices) == 1:
        return launch(0)
    with ThreadPoolExecutor(len(devices)) as pool:
        parts = list(pool.map(launch, range(len(devices))))
    out = {k: np.concatenate([np.asarray(p[0][k]) for p in parts]) for k in parts[0][0]}
    rec = {k: np.concatenate([np.asarray(p[1][k]) for p in parts], axis=1) for k in parts[0][1]}
    return out, rec
