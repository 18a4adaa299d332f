"""Runs split over several processes (one per GPU, or per node) through ``jax.distributed``.

Every process runs the same command. Each simulates one contiguous slice of every
scenario's paths on its own local devices and writes it into its region of one Zarr
store beside the output (``io.store.PathStore``); process 0 then reads the store back,
checks and assembles the Dataset exactly as a single-process run does, and writes it.
Randomness depends only on the global path index, so the result is the one a single
process gives.

Processes exchange only small messages (ready, done, or failed with the reason)
through the key-value store of JAX's distributed runtime, not through collectives, so
a process can wait for the others as long as they need. A process that fails tells the
others, which stop with the same message and exit code; when a process dies, the
runtime notices the missing heartbeats and stops the others.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

import jax
import numpy as np

from stresslab.engine.devices import SettingError
from stresslab.engine.runner import LANE_PAD
from stresslab.errors import PeerError, RunError, UsageError

SLURM_VARIABLES = ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS", "SLURM_PROCID", "SLURM_LOCALID")
"""What JAX reads to set up a run under SLURM (``srun``): it joins the step's tasks when all are set."""
POLL_MS = 1_000
"""While waiting for another process, how often to look for a failure elsewhere, ms (waits are unbounded)."""
MAX_PORT = 65535
PIECE_BYTES = 1 << 20
"""Largest value ``Messages.share`` puts into the key-value store at once, bytes (gRPC limits a message to 4 MiB)."""
USAGE_ERRORS = (UsageError, FileExistsError)
"""Failures that are the caller's to fix (the command line exits with 2 on every process)."""


@dataclass(frozen=True)
class Cluster:
    """This process's place in a run: ``process`` (0 .. ``count`` - 1) of ``count`` processes."""

    process: int = 0
    count: int = 1

    @property
    def leader(self) -> bool:
        """Process 0 prepares the output and finishes the run."""
        return self.process == 0



def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> Cluster:
    """Join the processes of a multi-process run; call it before any JAX computation.

    Args:
        coordinator: ``HOST:PORT`` where process 0 listens; every process must reach it.
        num_processes: how many processes run (1: a single-process run, nothing to join).
        process_id: this process's index, 0 .. ``num_processes`` - 1.

    With none of them given, a SLURM job step with more than one task (``srun``) is
    detected from the environment, as ``jax.distributed.initialize`` does it: the
    coordinator on the step's first node, one process per task, each task using the GPU
    of its local rank (so start one task per GPU). Otherwise the run is single-process.
    Under SLURM, the values given replace the detected ones.

    Returns:
        This process's place in the run.

    Raises:
        SettingError: a value out of range, or one missing outside SLURM.
        RunError: the coordinator could not be reached.
    """
    if jax.distributed.is_initialized():
        return current()
    slurm = _under_slurm()
    _check(coordinator, num_processes, process_id, slurm)
    if num_processes == 1 or (num_processes is None and not slurm):
        return Cluster()
    settings = {"coordinator_address": coordinator, "num_processes": num_processes, "process_id": process_id}
    if not slurm:
        settings["cluster_detection_method"] = "deactivate"  # use all visible devices, as given
    try:
        jax.distributed.initialize(**settings)
    except (RuntimeError, ValueError) as err:
        where = coordinator or "from SLURM"
        raise RunError(f"could not join the multi-process run (coordinator {where}): {err}") from None
    return current()


def current() -> Cluster:
    """This process's place in the run (one process unless ``jax.distributed`` is initialised)."""
    return Cluster(jax.process_index(), jax.process_count())


def _under_slurm() -> bool:
    """Inside a SLURM job step with more than one task."""
    if not all(name in os.environ for name in SLURM_VARIABLES):
        return False
    try:
        return int(os.environ["SLURM_NTASKS"]) > 1
    except ValueError:
        return False


def _check(coordinator: str | None, num_processes: int | None, process_id: int | None, slurm: bool) -> None:
    if num_processes is not None and num_processes < 1:
        raise SettingError("num_processes", f"must be at least 1 (got {num_processes})")
    if process_id is not None and process_id < 0:
        raise SettingError("process_id", f"must be 0 or more (got {process_id})")
    if process_id is not None and num_processes is not None and process_id >= num_processes:
        raise SettingError("process_id", f"must be less than the number of processes, {num_processes} "
                                         f"(got {process_id})")
    if coordinator is not None:
        host, _, port = coordinator.rpartition(":")
        if not host or not port.isdigit() or not 1 <= int(port) <= MAX_PORT:
            raise SettingError("coordinator", f"must be HOST:PORT with a port from 1 to {MAX_PORT}, "
                                              f"e.g. node001:8476 (got {coordinator!r})")
    if slurm or num_processes == 1:
        return
    if num_processes is None:
        if coordinator is not None or process_id is not None:
            raise SettingError("num_processes", "is needed with a coordinator or a process id (outside SLURM)")
        return
    if coordinator is None:
        raise SettingError("coordinator", "is needed to run more than one process outside SLURM: "
                                          "HOST:PORT of process 0, reachable by all processes")
    if process_id is None:
        raise SettingError("process_id", "is needed to run more than one process outside SLURM: "
                                         f"this process's index, 0 to {num_processes - 1}")


def block_size(paths: int, processes: int, bytes_per_path: int, limit_bytes: int) -> int:
    """Paths per block of the shared store: a multiple of ``LANE_PAD``, about one process's share,
    at most ``limit_bytes`` per block of recorded series (``bytes_per_path`` each)."""
    share = -(-paths // processes)
    largest = max(LANE_PAD, limit_bytes // max(bytes_per_path, 1) // LANE_PAD * LANE_PAD)
    return min(-(-share // LANE_PAD) * LANE_PAD, largest)


def span(paths: int, block: int, cluster: Cluster) -> tuple[int, int]:
    """The paths ``(start, stop)`` of every scenario that ``cluster.process`` simulates.

    The blocks of paths are dealt out in contiguous runs whose lengths differ by at most
    one block (a process may get none when there are fewer blocks than processes).
    """
    blocks = -(-paths // block)
    first = cluster.process * blocks // cluster.count
    last = (cluster.process + 1) * blocks // cluster.count
    return min(first * block, paths), min(last * block, paths)


class Messages:
    """Small JSON messages between the processes of one run, through the distributed runtime's key-value store.

    A step's message says a process got through it (with a little information). The
    first failure anywhere is published once, as the run's abort message; every wait,
    and ``check`` between chunks, raises it as ``PeerError``, so all processes stop soon
    after one fails (and reach JAX's shutdown barrier together). Every process must
    create its ``Messages`` in the same order, so that runs in one job use the same keys.
    With one process nothing is sent.
    """

    _runs = itertools.count()

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.prefix = f"stresslab/run{next(self._runs)}"
        self._shares = itertools.count()

    def send(self, step: str, **info: object) -> None:
        """Tell the others that this process got through ``step``."""
        if self.cluster.count > 1:
            _client().key_value_set(f"{self.prefix}/{step}/{self.cluster.process}", json.dumps(info))

    def abort(self, failure: BaseException) -> None:
        """Publish this process's failure as the run's abort message, unless another came first."""
        if self.cluster.count == 1:
            return
        usage = isinstance(failure, USAGE_ERRORS) or getattr(failure, "usage", False)
        text = "interrupted" if isinstance(failure, KeyboardInterrupt) else str(failure) or type(failure).__name__
        remedies = getattr(failure, "remedies", ())
        if remedies:  # the others spell the arguments that clear it as their caller does
            text = failure.problem
        message = {"process": self.cluster.process, "usage": bool(usage), "message": text, "remedies": remedies}
        # another process failed first, or the runtime is gone: then its own error is what counts
        with contextlib.suppress(jax.errors.JaxRuntimeError):
            _client().key_value_set(f"{self.prefix}/abort", json.dumps(message))

    def check(self) -> None:
        """Raise ``PeerError`` if another process failed."""
        if self.cluster.count == 1:
            return
        try:
            message = json.loads(_client().key_value_try_get(f"{self.prefix}/abort"))
        except jax.errors.JaxRuntimeError:
            return  # not found: nobody failed
        if message["process"] != self.cluster.process:
            raise PeerError(f"process {message['process']}: {message['message']}", usage=message["usage"],
                            remedies=message.get("remedies", ()))

    def receive(self, step: str, process: int) -> dict[str, object]:
        """Wait until ``process`` got through ``step``; its message. Raises ``PeerError`` if a process failed."""
        if self.cluster.count == 1:
            return {}
        key = f"{self.prefix}/{step}/{process}"
        while True:
            self.check()
            try:
                return json.loads(_client().blocking_key_value_get(key, POLL_MS))
            except jax.errors.JaxRuntimeError as err:
                if "DEADLINE_EXCEEDED" not in str(err):
                    raise RunError(f"lost contact with the processes of the run: {err}") from None

    def gather(self, step: str, processes: range | None = None) -> list[dict[str, object]]:
        """The messages of ``step`` from ``processes`` (default: all), in order."""
        processes = range(self.cluster.count) if processes is None else processes
        return [self.receive(step, process) for process in processes]


    def share(self, arrays: Mapping[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
        """Every process's ``arrays``, in process order (every process calls ``share`` the same number of times).

        The arrays travel through the key-value store in pieces of at most ``PIECE_BYTES``. A process
        removes its pieces of the exchange before last when it posts the next: every process has read
        them by then (it posted the last exchange only after reading all of the one before).
        Raises ``PeerError`` if a process failed.
        """
        if self.cluster.count == 1:
            return [dict(arrays)]
        index, client = next(self._shares), _client()
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        data = buffer.getvalue()
        pieces = range(0, len(data), PIECE_BYTES)
        for i, offset in enumerate(pieces):
            client.key_value_set_bytes(f"{self._shared(index, self.cluster.process)}/{i}",
                                       data[offset:offset + PIECE_BYTES])
        self.send(f"share{index}", pieces=len(pieces))
        if index >= 2:
            client.key_value_delete(self._shared(index - 2, self.cluster.process))
        found = []
        for process in range(self.cluster.count):
            if process == self.cluster.process:
                found.append(dict(arrays))
                continue
            count = int(self.receive(f"share{index}", process)["pieces"])
            data = b"".join(client.blocking_key_value_get_bytes(f"{self._shared(index, process)}/{i}", POLL_MS)
                            for i in range(count))
            with np.load(io.BytesIO(data)) as stored:
                found.append({name: stored[name] for name in stored.files})
        return found

    def _shared(self, index: int, process: int) -> str:
        """The key-value directory of ``process``'s arrays in exchange ``index``."""
        return f"{self.prefix}/shared/{index}/{process}"


def _client():
    """The distributed runtime's client (JAX has no public accessor for its key-value store)."""
    from jax._src import distributed as runtime

    return runtime.global_state.client
