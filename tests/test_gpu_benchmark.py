"""``benchmarks/gpu.py``, the one-command GPU benchmark: it runs at tiny size on the CPU and writes every figure,
and without a GPU (and without --tiny) it refuses with a hint instead of timing the CPU as if it were one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a child process compiles the kernel and the calibration objective

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "gpu.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "STRESSLAB_CPU_DEVICES": "1", "JAX_PLATFORMS": "cpu"}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=900)


def test_the_tiny_run_measures_everything_and_writes_json(tmp_path):
    out = tmp_path / "gpu.json"
    done = _run("--tiny", "--json", str(out))
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    names = [m["name"] for m in result["measurements"]]
    assert names == ["reference day", "reference day", "crash segment", "calibration iteration (value and gradient)"]
    assert [m["paths"] for m in result["measurements"][:2]] == [256, 1024]
    for m in result["measurements"]:
        assert m["path_steps_per_s"] > 0 and m["steady_s"] > 0 and m["compile_s"] >= 0
    assert result["machine"]["platform"] == "cpu" and result["size"] == "tiny"
    assert result["goal"]["met"] is False  # a tiny run never claims the 10^7-path goal
    assert "crash segment: 256 paths x 150 steps" in done.stdout


def test_without_a_gpu_the_full_run_refuses_with_the_install_hint():
    done = _run()
    assert done.returncode == 2
    assert "JAX finds no GPU" in done.stderr and "stresslab[cuda]" in done.stderr and "--tiny" in done.stderr
