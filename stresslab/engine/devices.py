"""Which local devices run the paths, and how one chunk of paths is split across them.

A chunk's paths are cut into equal, contiguous per-device slices (each a multiple of
``LANE_PAD`` paths, see ``runner``); every device runs the same single-device kernel
(``simulate_chunk`` inside one ``shard_map`` over the devices: one compiled program for all of them, no
communication between devices).
Randomness comes from the global path index, so a path's numbers do not
depend on how many devices run it.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from functools import partial

import jax
import numpy as np
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from stresslab.engine import xla_options
from stresslab.engine.scan import simulate_chunk
from stresslab.errors import SettingError
from stresslab.market.model import Params, Static

PLATFORMS = ("cpu", "gpu")
"""Device kinds a run can ask for (``gpu``: NVIDIA GPUs through the CUDA build of JAX)."""
CUDA_HINT = "for NVIDIA GPUs install the CUDA build of JAX: pip install 'stresslab[cuda]'"
CPU_DEVICES_ENV = "STRESSLAB_CPU_DEVICES"
"""Environment variable: how many CPU devices JAX should create (default: one per usable core)."""
FORCE_FLAG = "xla_force_host_platform_device_count"
PATH_AXIS = "path"
"""Name of the mesh axis a chunk's paths are split along."""


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

    @property
    def mesh(self) -> Mesh:
        """A one-axis mesh (``PATH_AXIS``) over the devices, for ``shard_map`` over paths."""
        return Mesh(np.array(self.devices), (PATH_AXIS,))


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

    Device ``d`` runs paths ``first_index + d * per_device`` onwards, through the kernel that
    one device runs on a chunk of ``per_device`` paths. Several devices run it inside one
    ``shard_map`` (one compiled program for all of them: one compile, one copy of the compiler's
    working memory); its per-device program is fused as the single-device one is, so the
    numbers are bit-identical for any device count (``tests/test_devices.py``), which matters
    because XLA:CPU contracts a*b + c into FMAs inside fused kernels.

    Returns:
        per-path outputs {name: (paths,)} and recorded series {name: (T_rec, paths)}, paths
        in global order.
    """
    if len(devices) == 1:
        with jax.default_device(devices.devices[0]):
            return _one_device(params, static, seed_key, np.uint32(first_index), per_device)
    firsts = first_index + per_device * np.arange(len(devices), dtype=np.uint32)
    return _sharded_chunk(params, static, seed_key, firsts, per_device, devices.mesh)


@partial(jax.jit, static_argnames=("static", "per_device"), compiler_options=xla_options.KERNEL)
def _one_device(params: Params, static: Static, seed_key: jax.Array, first: jax.Array, per_device: int):
    """``simulate_chunk`` as the top-level program of one device, compiled with the engine's XLA options."""
    return simulate_chunk(params, static, seed_key, first, per_device)


@partial(jax.jit, static_argnames=("static", "per_device", "mesh"), compiler_options=xla_options.KERNEL)
def _sharded_chunk(params: Params, static: Static, seed_key: jax.Array, firsts: jax.Array, per_device: int,
                   mesh: Mesh) -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
    """One chunk split over ``mesh``: device ``d`` simulates ``per_device`` paths from ``firsts[d]``."""

    def local(params: Params, seed_key: jax.Array, first: jax.Array):
        return simulate_chunk(params, static, seed_key, first[0], per_device)

    # check_vma=False: the kernel is purely per device (no collectives); its lax.cond branches mix
    # replicated parameters with per-device state, which the varying-axis check would refuse.
    return jax.shard_map(local, mesh=mesh, in_specs=(P(), P(), P(PATH_AXIS)),
                         out_specs=(P(PATH_AXIS), P(None, PATH_AXIS)), check_vma=False)(params, seed_key, firsts)
