"""``benchmarks/profile_step.py``: the reference scenario's kernels, timed by JAX's profiler, charged to the step's
phases through the optimised module's stack frames; every share adds up and bad arguments are usage errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a child process compiles the reference kernel

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "profile_step.py"
PHASES = {"open_step", "pre_flow", "margin_check", "cascade", "settle", "after_trade", "observe"}


def _run(*args: str, tmp: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "STRESSLAB_CPU_DEVICES": "1", "JAX_PLATFORMS": "cpu"}
    if tmp is not None:
        env["TMPDIR"] = str(tmp)
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=900)


def test_the_profile_charges_the_step_phases_and_its_shares_add_up(tmp_path):
    out, scratch = tmp_path / "profile.json", tmp_path / "scratch"
    scratch.mkdir()
    done = _run("--paths", "128", "--steps", "125", "--top", "5", "--set", "position_grids.0.cohorts=8", "--json",
                str(out), tmp=scratch)
    assert done.returncode == 0, done.stderr
    assert not [p for p in scratch.iterdir() if p.name.startswith("stresslab-profile-")]  # dump and trace removed
    result = json.loads(out.read_text())
    assert (result["paths"], result["steps"], result["devices"]) == (128, 125, 1)
    assert result["overrides"] == ["position_grids.0.cohorts=8"] and "with position_grids.0.cohorts=8" in done.stdout
    assert not result["capped"] and result["events"] > 0
    phases = {row["phase"]: row for row in result["phases"]}
    assert PHASES <= set(phases), sorted(phases)  # every phase of the step ran kernels (the gap at 2 h cascades)
    assert abs(sum(row["share"] for row in result["phases"]) - 1.0) < 1e-9
    assert abs(sum(row["ms"] for row in result["phases"]) - result["total_ms"]) < 1e-6 * result["total_ms"]
    assert phases["cascade"]["share"] > 0.05 and phases["cascade"]["kernels_per_device_step"] >= 1
    kernels = sum(row["kernels_per_device_step"] for row in result["phases"])
    assert kernels == pytest.approx(result["kernels_per_device_step"])
    assert {row["phase"] for row in result["sources"]} <= set(phases)
    assert "by phase" in done.stdout and "kernels per device and step" in done.stdout


def test_a_bad_argument_is_a_usage_error():
    done = _run("--paths", "0")
    assert done.returncode == 2
    assert "--paths, --steps, --depth and --top must be at least 1" in done.stderr


def test_a_horizon_before_the_reference_shocks_is_a_usage_error_naming_the_field():
    done = _run("--steps", "60")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--steps 60, --set (none): market.shocks.0.at: 2h is at or after the end of the run" in done.stderr


def test_a_bad_override_is_a_usage_error_naming_the_field():
    done = _run("--set", "position_grids.0.cohortz=3")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "position_grids.0.cohortz: unknown key; allowed keys: side," in done.stderr
