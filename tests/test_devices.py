"""Devices: a chunk's paths split over local devices give bit-identical results; device choice and chunk sizing."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import jax
import pytest
import xarray as xr
from helpers import CONFIGS, Cli, subprocess_env, without
from helpers import SMALL_CONFIG as CONFIG

from stresslab.config.loading import load_config
from stresslab.engine import devices, runner
from stresslab.engine.devices import Devices, SettingError
from stresslab.io import store
from stresslab.market.model import build

FOUR_CPU_DEVICES = "--xla_force_host_platform_device_count=4"
RUNS = {"1": "num_devices=1", "2": "num_devices=2", "4": "num_devices=4", "default": ""}
SCRIPT = """
import sys
import tomllib
import jax
import stresslab
from stresslab.io import store
assert len(jax.local_devices()) == 4, jax.local_devices()
config, out, overrides = sys.argv[1], sys.argv[2], sys.argv[3:]
""" + "".join(f"store.write(stresslab.simulate(config, overrides=overrides, {args}), f'{{out}}/{name}.nc')\n"
              for name, args in RUNS.items())
TARIFF_CRASH = ("simulation.horizon=90min", "simulation.paths=300", "simulation.chunk_size=256",
                "simulation.keep_paths=8")
"""The three-venue 2025 config cut to its first 90 minutes (the drops start 50 minutes in): 300 paths in
chunks of 256, so 4 devices run slices of 64 paths and the last chunk is padded."""
WHERE_AND_WHEN = ("device_count", "git_commit", "history", "date_created")
"""Attributes that say which hardware ran the paths, the checkout's commit (it moves if a commit lands
between the runs of a test), and when and by which command the result was made."""


@pytest.mark.slow
@pytest.mark.parametrize("multi_venue", [False, True], ids=["small-sweep", "tariff-crash-three-venues"])
def test_results_are_bit_identical_on_1_2_and_4_devices(config_file: Callable[..., Path], tmp_path: Path,
                                                        multi_venue: bool) -> None:
    config, overrides = (CONFIGS / "historical" / "2025_10_10_tariff_crash.toml", TARIFF_CRASH) if multi_venue \
        else (config_file(CONFIG), ())
    done = subprocess.run([sys.executable, "-c", SCRIPT, config, tmp_path, *overrides], capture_output=True,
                          text=True, timeout=600, env=subprocess_env(XLA_FLAGS=FOUR_CPU_DEVICES), check=False)
    assert done.returncode == 0, done.stderr
    results = {name: store.read(tmp_path / f"{name}.nc").load() for name in RUNS}
    one = results["1"]
    assert (one.liquidated_long > 0).any()
    assert one.sizes["venue"] == 3 if multi_venue else one.sizes["scenario"] == 2
    for name, ds in results.items():
        expected = {"1": 1, "2": 2}.get(name, 4)
        assert ds.attrs["device_count"] == expected, name
        xr.testing.assert_identical(without(ds, WHERE_AND_WHEN), without(one, WHERE_AND_WHEN))


def test_select_devices() -> None:
    assert devices.select() == Devices(tuple(jax.local_devices()))
    assert len(devices.select("cpu", 1)) == 1 and devices.select("cpu").platform == "cpu"
    with pytest.raises(SettingError, match="device: must be one of cpu, gpu"):
        devices.select("tpu")
    for count in (0, len(jax.local_devices(backend="cpu")) + 1):
        with pytest.raises(SettingError, match="num_devices: must be between 1 and"):
            devices.select("cpu", count)


@pytest.mark.skipif(jax.default_backend() == "gpu", reason="a GPU is present")
def test_asking_for_a_gpu_without_one_says_how_to_get_one() -> None:
    with pytest.raises(SettingError, match=r"device: no GPU is visible to JAX .*pip install 'stresslab\[cuda\]'"):
        devices.select("gpu")


@pytest.mark.parametrize(("args", "message"), [
    pytest.param(("--device", "tpu"), "error: --device: must be one of cpu, gpu (got 'tpu')", id="unknown"),
    pytest.param(("--num-devices", "0"), "error: --num-devices: must be between 1 and", id="zero"),
    pytest.param(("--device", "gpu"), "error: --device: no GPU is visible to JAX", id="no-gpu",
                 marks=pytest.mark.skipif(jax.default_backend() == "gpu", reason="a GPU is present")),
])
def test_device_options_fail_in_one_line(cli: Cli, config_file: Callable[..., Path], args: tuple[str, ...],
                                         message: str) -> None:
    result = cli("run", config_file(CONFIG), *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(message), result.stderr
    assert "Traceback" not in result.output


def test_each_device_runs_a_multiple_of_64_paths() -> None:
    for chunk in (1, 63, 64, 65, 300, 1000):
        for count in (1, 2, 3, 4, 8):
            share = runner.per_device(chunk, count)
            assert share % runner.LANE_PAD == 0 and share * count >= chunk
            assert share - runner.LANE_PAD < -(-chunk // count)
    assert runner.per_device(300, 1) == 320 and runner.per_device(300, 4) == 128


class _FakeGPU:
    """Stands in for an accelerator with 16 GiB of memory."""

    platform = "gpu"

    def memory_stats(self) -> dict[str, int]:
        return {"bytes_limit": 16 * 2**30}


def test_auto_chunk_follows_device_memory() -> None:
    _, static = build(load_config(tomllib.loads(CONFIG)).scenarios[0])
    paths = 10**9
    one, two = (runner.auto_chunk(static, paths, Devices((_FakeGPU(),) * n)) for n in (1, 2))
    assert 1.9 * one < two <= 2.1 * one  # each accelerator brings its own memory
    assert one > 100 * runner.MAX_AUTO_CHUNK_PER_CPU_DEVICE  # 40 % of 16 GiB holds far more than a CPU slice
    cpu = jax.local_devices(backend="cpu")[0]
    per_cpu = runner.MAX_AUTO_CHUNK_PER_CPU_DEVICE  # the CPU cap, far under the budget
    assert [runner.auto_chunk(static, paths, Devices((cpu,) * n)) for n in (1, 2, 4)] == [per_cpu, 2 * per_cpu,
                                                                                            4 * per_cpu]
    # CPU devices share the host's memory: many cohorts (the ranking is cohorts squared) hit the budget
    grid = "position_grids=[{side='long', notional=1e9, leverage_min=2, leverage_max=50, cohorts=200}]"
    with runner.precision("float64"):
        _, big = build(load_config(tomllib.loads(CONFIG), ["simulation.dtype=float64", "positions=[]", grid]
                                   ).scenarios[0])
    assert runner.auto_chunk(big, paths, Devices((cpu,))) < per_cpu
    assert runner.auto_chunk(big, paths, Devices((cpu,) * 4)) == runner.auto_chunk(big, paths, Devices((cpu,) * 8))
    assert runner.auto_chunk(static, 100, Devices((_FakeGPU(),))) == 100


COUNT_CPU_DEVICES = "import stresslab, jax; stresslab.use_cpu_cores(); print(len(jax.devices('cpu')))"
IMPORT_ONLY = "import stresslab, jax; print(len(jax.devices('cpu')))"


def _cpu_devices_in_child(code: str = COUNT_CPU_DEVICES, **env: str) -> tuple[int, str]:
    """(CPU device count printed by a child Python that runs ``code``, its stderr)."""
    base = {k: v for k, v in subprocess_env().items() if k not in ("XLA_FLAGS", devices.CPU_DEVICES_ENV)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**base, "JAX_PLATFORMS": "cpu", **env}, check=False)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1]), done.stderr


@pytest.mark.slow
def test_use_cpu_cores_gives_jax_one_cpu_device_per_core() -> None:
    assert _cpu_devices_in_child(IMPORT_ONLY, STRESSLAB_CPU_DEVICES="3")[0] == 1  # importing changes nothing in JAX
    assert _cpu_devices_in_child()[0] == len(os.sched_getaffinity(0))
    assert _cpu_devices_in_child(STRESSLAB_CPU_DEVICES="3")[0] == 3
    # an explicit XLA flag wins, and so does a count set through jax.config before the call
    assert _cpu_devices_in_child(XLA_FLAGS=FOUR_CPU_DEVICES, STRESSLAB_CPU_DEVICES="3")[0] == 4
    preset = "import jax; jax.config.update('jax_num_cpu_devices', 5); " + COUNT_CPU_DEVICES
    assert _cpu_devices_in_child(preset, STRESSLAB_CPU_DEVICES="3")[0] == 5


@pytest.mark.slow
@pytest.mark.parametrize(("code", "value", "count", "warning"), [
    pytest.param(COUNT_CPU_DEVICES, "two", None, "STRESSLAB_CPU_DEVICES must be a whole number >= 1 (got 'two')",
                 id="not-a-number"),
    pytest.param(COUNT_CPU_DEVICES, "0", None, "STRESSLAB_CPU_DEVICES must be a whole number >= 1 (got '0')",
                 id="zero"),
    pytest.param("import jax; jax.devices(); " + COUNT_CPU_DEVICES, "3", 1,
                 "STRESSLAB_CPU_DEVICES is ignored: JAX was already running", id="too-late"),
])
def test_a_cpu_device_count_that_cannot_be_honoured_is_said(code: str, value: str, count: int | None,
                                                          warning: str) -> None:
    found, stderr = _cpu_devices_in_child(code, STRESSLAB_CPU_DEVICES=value)
    assert found == (count or len(os.sched_getaffinity(0)))
    assert warning in stderr and "Traceback" not in stderr
