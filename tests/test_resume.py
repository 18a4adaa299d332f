"""Interrupted runs: chunks saved as they finish, kill -9 and --resume, Ctrl-C, no half-written output."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from helpers import start_stresslab_process

pytestmark = pytest.mark.slow  # every test runs `python -m stresslab.cli` in child processes

CONFIG = """
[simulation]
horizon = "2h"
dt = "1min"
paths = 12000
chunk_size = 128
record_points = 20

[market]
sigma = 0.9
jumps = { intensity = 200, mean = -0.02, std = 0.02 }

[[position_grids]]
side = "long"
notional = 1e8
leverage_min = 5
leverage_max = 50
cohorts = 8
"""


def wait_for_chunks(partial: Path, count: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300
    while len(list(partial.glob("*.npz"))) < count:
        assert process.poll() is None, "the run finished before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.fixture(scope="module")
def reference(cli_process, tmp_path_factory) -> tuple[Path, xr.Dataset]:
    work = tmp_path_factory.mktemp("resume")
    (work / "c.toml").write_text(CONFIG)
    done = cli_process("run", "c.toml", "--out", "reference.zarr", cwd=work)
    assert done.returncode == 0, done.stderr
    assert not (work / "reference.zarr.partial").exists()
    return work, xr.open_zarr(work / "reference.zarr").load()


def test_kill_9_then_resume_gives_the_identical_dataset(cli_process, reference):
    work, expected = reference
    out = work / "killed.zarr"
    process = start_stresslab_process("run", "c.toml", "--out", out.name, cwd=work)
    wait_for_chunks(work / "killed.zarr.partial", 3, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not out.exists()  # nothing half-written is presented as a result
    refused = cli_process("run", "c.toml", "--out", out.name, cwd=work)
    assert refused.returncode == 2 and "--resume" in refused.stderr and "Traceback" not in refused.stderr
    other = cli_process("run", "c.toml", "--out", out.name, "--resume", "--seed", "5", cwd=work)
    assert other.returncode == 2 and "different config" in other.stderr
    resumed = cli_process("run", "c.toml", "--out", out.name, "--resume", cwd=work)
    assert resumed.returncode == 0, resumed.stderr
    assert not (work / "killed.zarr.partial").exists()
    got = xr.open_zarr(out).load()
    for name in expected.variables:
        np.testing.assert_array_equal(got[name].values, expected[name].values, err_msg=name)
    when = ("history", "date_created")  # when and by which command each result was made
    assert {k: v for k, v in got.attrs.items() if k not in when} == {
        k: v for k, v in expected.attrs.items() if k not in when}


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(cli_process, reference):
    work, expected = reference
    process = start_stresslab_process("run", "c.toml", "--out", "interrupted.nc", cwd=work, interruptible=True)
    wait_for_chunks(work / "interrupted.nc.partial", 2, process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130
    assert "Traceback" not in stderr
    assert "--resume" in stderr.splitlines()[-1]
    assert not (work / "interrupted.nc").exists()
    resumed = cli_process("run", "c.toml", "--out", "interrupted.nc", "--resume", cwd=work)
    assert resumed.returncode == 0, resumed.stderr
    got = xr.open_dataset(work / "interrupted.nc", engine="h5netcdf").load()
    np.testing.assert_array_equal(got.cascade_depth.values, expected.cascade_depth.values)


def test_resume_without_out_is_refused(cli_process, config_file):
    config = config_file(CONFIG)
    done = cli_process("run", config.name, "--resume", cwd=config.parent)
    assert done.returncode == 2 and "--resume needs --out" in done.stderr


def test_existing_result_is_never_overwritten_silently(cli_process, reference):
    work, _ = reference
    again = cli_process("run", "c.toml", "--out", "reference.zarr", "--paths", "10", cwd=work)
    assert again.returncode == 2 and "already exists" in again.stderr
