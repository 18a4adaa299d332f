"""Multi-process runs: two processes on localhost write the single-process Dataset; failures stop every process."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import jax
import pytest
import xarray as xr
from helpers import SMALL_CONFIG, Cli, start_stresslab_process, subprocess_env, without

import stresslab
import stresslab.cli
from stresslab import api
from stresslab.engine import distributed, runner
from stresslab.engine.distributed import Cluster
from stresslab.io import store
from stresslab.io.checkpoint import partial_dir

CONFIG = SMALL_CONFIG.replace("paths = 300\n", "paths = 300\nchunk_size = 100\n")
"""The shared small config, in chunks of 100 paths (each process gets several)."""
WHERE_AND_WHEN = ("device_count", "process_count", "git_commit", "history", "date_created", "title", "config_name")
"""Attributes that say which hardware ran the paths, the checkout's commit (it moves if a commit lands
between the runs of a test), and when and by which command the result was made."""
SLURM = {"SLURM_JOB_ID": "4242", "SLURM_STEP_NODELIST": "node[001-002]", "SLURM_NTASKS": "2", "SLURM_PROCID": "1",
         "SLURM_LOCALID": "0"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


CALIBRATION = CONFIG.replace("paths = 300\nchunk_size = 100\n", "chunk_size = 64\n") + """
[liquidation]
max_order = 1e6

[calibration]
paths = 320
holdout_paths = 192
generations = 2
aggregate = "max"
iterations = 2
parameters = [{ name = "liquidation.max_order", lower = 1e4, upper = 1e7 }]
"""
"""The liquidation engine's order size for both scenarios of the shared config (the worse of the two), on
320 training paths in slices of 64 (the two processes take 128 and 192 of them, in one and two groups of
slices on two devices), CMA-ES then gradient, two steps each."""


def _run_processes(count: int, *args: str | Path, cwd: Path, command: str = "run",
                   extra: tuple[str, ...] = ()) -> list[subprocess.CompletedProcess]:
    """``stresslab COMMAND ARGS`` in ``count`` processes joined through a coordinator on localhost (the last
    process with ``extra`` arguments as well)."""
    env = {name: value for name, value in subprocess_env().items() if name not in SLURM}
    coordinator = f"localhost:{_free_port()}"
    started = [start_stresslab_process(command, *args, *(extra if i == count - 1 else ()), "--coordinator",
                                       coordinator, "--num-processes", str(count), "--process-id", str(i), cwd=cwd,
                                       env=env) for i in range(count)]
    done = []
    for process in started:
        stdout, stderr = process.communicate(timeout=600)
        done.append(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
    return done


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, xr.Dataset]:
    """A config and its single-process result, written and read back."""
    work = tmp_path_factory.mktemp("distributed")
    (work / "c.toml").write_text(CONFIG)
    store.write(stresslab.simulate(work / "c.toml"), work / "reference.zarr")
    return work, store.read(work / "reference.zarr").load()


@pytest.mark.slow
def test_two_processes_write_the_single_process_dataset(reference: tuple[Path, xr.Dataset]) -> None:
    work, expected = reference
    first, second = _run_processes(2, "c.toml", "--out", "two.zarr", cwd=work)
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert "depth VaR/ES 99%" in first.stdout and "results: two.zarr" in first.stdout
    assert second.stdout == "" and "error" not in second.stderr
    ds = store.read(work / "two.zarr").load()
    per_process = len(jax.local_devices())  # the children see the same CPU device count (one per core by default)
    assert ds.attrs["process_count"] == 2 and ds.attrs["device_count"] == 2 * per_process
    assert (ds.liquidated_long > 0).any() and ds.sizes["scenario"] == 2
    xr.testing.assert_identical(without(ds, WHERE_AND_WHEN), without(expected, WHERE_AND_WHEN))
    assert not partial_dir(work / "two.zarr").exists()


@pytest.mark.slow
def test_a_failure_on_one_process_stops_all_with_its_message(reference: tuple[Path, xr.Dataset]) -> None:
    work, _ = reference
    first, second = _run_processes(2, "c.toml", "--out", "reference.zarr", cwd=work)
    message = "reference.zarr already exists; pass --overwrite to replace it"
    assert (first.returncode, second.returncode) == (2, 2)
    assert first.stderr == f"error: {message}\n"
    assert second.stderr == f"error: process 0: {message}\n"


@pytest.mark.slow
def test_one_process_through_the_shared_store_resumes_to_the_same_dataset(
        reference: tuple[Path, xr.Dataset], monkeypatch: pytest.MonkeyPatch) -> None:
    work, expected = reference
    out = work / "resumed.zarr"
    save = store.PathStore.save
    saved = []

    def save_then_stop(self: store.PathStore, *args: object) -> None:
        save(self, *args)
        saved.append(args)
        if len(saved) == 4:  # scenario 0 and the first chunk of scenario 1
            raise KeyboardInterrupt

    monkeypatch.setattr(store.PathStore, "save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        api.simulate_distributed(work / "c.toml", out)
    assert not out.exists() and (partial_dir(out) / api.STAGING).exists()
    monkeypatch.setattr(store.PathStore, "save", save)
    monkeypatch.setattr(distributed, "block_size", lambda *_: 64)  # as with another process count: stored one kept
    simulated = []
    real_run_chunk = runner.run_chunk
    monkeypatch.setattr(runner, "run_chunk", lambda *args: simulated.append(args[3]) or real_run_chunk(*args))
    ds = api.simulate_distributed(work / "c.toml", out, resume=True)
    assert simulated == [100, 200]  # the chunks of 100 paths not stored before
    assert ds.attrs["process_count"] == 1
    xr.testing.assert_identical(without(store.read(out).load(), WHERE_AND_WHEN), without(expected, WHERE_AND_WHEN))
    assert not partial_dir(out).exists()


@pytest.mark.slow
def test_two_processes_calibrate_as_one(tmp_path: Path) -> None:
    """Calibration split over two processes (each its share of every evaluation's paths, outputs exchanged),
    one of them on a single device, follows the single process's search to the same point, trace and
    held-out objectives."""
    (tmp_path / "c.toml").write_text(CALIBRATION)
    expected = stresslab.calibrate(tmp_path / "c.toml")
    first, second = _run_processes(2, "c.toml", "--out", "two", "--quiet", cwd=tmp_path, command="calibrate",
                                   extra=("--num-devices", "1"))
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert "held-out objective after" in first.stdout and second.stdout == ""
    assert (tmp_path / "two" / "calibrated.toml").read_text() == expected.to_toml()
    trace = store.read(tmp_path / "two" / "trace.zarr").load()
    assert trace.sizes["iteration"] == 4 and len(set(trace.hard_objective.values)) > 1
    xr.testing.assert_identical(without(trace, WHERE_AND_WHEN), without(expected.trace, WHERE_AND_WHEN))


@pytest.mark.slow
def test_a_calibration_failing_on_one_process_stops_all(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(CALIBRATION)
    first, second = _run_processes(2, "c.toml", "--out", "two", "--quiet", cwd=tmp_path, command="calibrate",
                                   extra=("--set", "calibration.paths=0"))
    assert second.returncode == 2 and "calibration.paths" in second.stderr, second.stderr
    assert first.returncode == 2 and first.stderr.startswith("error: process 1: "), first.stderr
    assert "calibration.paths" in first.stderr and not (tmp_path / "two").exists()


SHARE = """
import sys
import numpy as np
from stresslab.engine import distributed
cluster = distributed.initialize(sys.argv[1], 2, int(sys.argv[2]))
distributed.PIECE_BYTES = 1000  # several pieces per value
messages = distributed.Messages(cluster)
for n in range(4):  # the pieces of exchange n - 2 are deleted in exchange n
    got = messages.share({"a": np.arange(300 * (cluster.process + 1)) + n, "b": np.ones((2, 3)) * cluster.process})
    assert [g["a"].tolist() for g in got] == [list(range(n, 300 + n)), list(range(n, 600 + n))], n
    assert [g["b"].tolist() for g in got] == [[[0.0] * 3] * 2, [[1.0] * 3] * 2], n
got = messages.share({} if cluster.process else {"x": np.zeros(3)})
assert [sorted(g) for g in got] == [["x"], []]
print("shared")
"""


def test_arrays_are_shared_whole_across_pieces_and_exchanges(tmp_path: Path) -> None:
    env = {name: value for name, value in subprocess_env().items() if name not in SLURM}
    coordinator = f"localhost:{_free_port()}"
    started = [subprocess.Popen([sys.executable, "-c", SHARE, coordinator, str(i)], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    for process in started:
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0 and stdout == "shared\n", stderr


def test_spans_are_whole_blocks_that_cover_every_path() -> None:
    for paths in (1, 64, 300, 1000, 123_457):
        for count in (1, 2, 3, 8):
            block = distributed.block_size(paths, count, 4 * 3 * 101, store.ZARR_CHUNK_BYTES)
            assert block % runner.LANE_PAD == 0
            spans = [distributed.span(paths, block, Cluster(process, count)) for process in range(count)]
            assert spans[0][0] == 0 and spans[-1][1] == paths
            for (_, stop), (start, _) in zip(spans, spans[1:], strict=False):
                assert stop == start and (start % block == 0 or start == paths)
            assert max(stop - start for start, stop in spans) - min(stop - start for start, stop in spans) <= block
    assert distributed.block_size(10**9, 2, 4 * 3 * 101, store.ZARR_CHUNK_BYTES) * 4 * 3 * 101 <= store.ZARR_CHUNK_BYTES


@pytest.mark.parametrize(("args", "message"), [
    (("--num-processes", "0"), "error: --num-processes: must be at least 1 (got 0)"),
    (("--num-processes", "2", "--process-id", "2", "--coordinator", "localhost:1234"),
     "error: --process-id: must be less than the number of processes, 2 (got 2)"),
    (("--process-id", "-1"), "error: --process-id: must be 0 or more (got -1)"),
    (("--num-processes", "2", "--process-id", "0", "--coordinator", "localhost"),
     "error: --coordinator: must be HOST:PORT with a port from 1 to 65535, e.g. node001:8476 (got 'localhost')"),
    (("--num-processes", "2", "--process-id", "0"), "error: --coordinator: is needed to run more than one process"),
    (("--num-processes", "2", "--coordinator", "localhost:1234"), "error: --process-id: is needed to run more"),
    (("--coordinator", "localhost:1234"), "error: --num-processes: is needed with a coordinator or a process id"),
])
def test_bad_process_options_fail_in_one_line(cli: Cli, config_file: Callable[..., Path], args: tuple[str, ...],
                                              message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SLURM:
        monkeypatch.delenv(name, raising=False)
    config = config_file(CONFIG)
    result = cli("run", config, "--out", config.with_name("out.zarr"), *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(message), result.stderr
    assert not jax.distributed.is_initialized()


def test_more_than_one_process_needs_out(cli: Cli, config_file: Callable[..., Path],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(distributed, "initialize", lambda *_: Cluster(0, 2))
    result = cli("run", config_file(CONFIG))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --out is needed to run more than one process")


def test_slurm_steps_are_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(jax.distributed, "initialize", lambda **settings: calls.append(settings))
    monkeypatch.setattr(distributed, "current", lambda: Cluster(1, 2))
    for name, value in SLURM.items():
        monkeypatch.setenv(name, value)
    assert distributed.initialize() == Cluster(1, 2)
    assert calls == [{"coordinator_address": None, "num_processes": None, "process_id": None}]  # JAX reads SLURM
    monkeypatch.setenv("SLURM_NTASKS", "1")
    assert distributed.initialize() == Cluster() and len(calls) == 1  # one task: nothing to join
    monkeypatch.setenv("SLURM_NTASKS", "2")
    assert distributed.initialize(num_processes=1) == Cluster() and len(calls) == 1  # turned off
    for name in SLURM:
        monkeypatch.delenv(name)
    assert distributed.initialize() == Cluster() and len(calls) == 1
    distributed.initialize("node001:8476", 2, 1)
    assert calls[-1] == {"coordinator_address": "node001:8476", "num_processes": 2, "process_id": 1,
                         "cluster_detection_method": "deactivate"}
