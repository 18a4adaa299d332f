"""One command for a GPU: stresslab's throughput, device memory and compile time on the accelerator it finds.

    python benchmarks/gpu.py [--json FILE]          # on a machine with a CUDA GPU and stresslab[cuda]
    python benchmarks/gpu.py --tiny [--json FILE]   # the same measurements at tiny sizes, on any device

Measures, each with a first call (compilation included) and a second, steady one:

- the reference day (``benchmarks/reference.toml``, 48 cohorts, 1440 one-minute steps) at 10^6 and 10^7 paths,
  chunked to the device's memory as ``stresslab run`` does it (``simulation.chunk_size = "auto"``);
- the crash segment (the reference's first 150 steps: two calm hours, the gap, the sell program and the start of
  the cascade) at 10^6 paths;
- one calibration iteration at 10^6 paths: the smoothed objective of ``configs/calibration/breakers_equity.toml``
  and its gradient (forward mode, one tangent per control);

and prints, per measurement, path-steps per second, the peak device memory and the compile time (first call
minus steady call); writes every figure as JSON (default ``benchmarks/gpu_latest.json``). The full run is sized
to finish within 8 minutes on one H100/H200; the goal there is 10^7 paths x 1440 steps in under 60 s.
Without a GPU it exits with code 2 and says how to get one, unless ``--tiny`` or ``--allow-cpu`` is given.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import jax  # noqa: E402
import scenario  # noqa: E402

import stresslab  # noqa: E402
from stresslab.engine.devices import CUDA_HINT, use_cpu_cores  # noqa: E402

CALIBRATION = HERE.parent / "configs" / "calibration" / "breakers_equity.toml"
CRASH_STEPS = 150
SIZES = {  # (reference day paths, crash segment paths, calibration paths, steps of the day, chunk size)
    "full": ((10**6, 10**7), 10**6, 10**6, None, "auto"),
    "tiny": ((256, 1024), 256, 256, CRASH_STEPS, 256),
}
GOAL = {"paths": 10**7, "steps": 1440, "seconds": 60.0}


def _device_memory() -> dict[str, float]:
    """Peak and limit of the first device's memory in GB, where the backend reports them (GPUs do)."""
    stats = jax.devices()[0].memory_stats() or {}
    return {key: stats[name] / 1e9 for key, name in (("peak_gb", "peak_bytes_in_use"), ("limit_gb", "bytes_limit"))
            if name in stats}


def _twice(run) -> tuple[float, float]:
    """Seconds of a first call (compilation included) and of a second, steady one."""
    times = []
    for _ in range(2):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times[0], times[1]


def _measure(name: str, paths: int, steps: int, run) -> dict:
    first, steady = _twice(run)
    entry = {"name": name, "paths": paths, "steps": steps, "first_s": first, "steady_s": steady,
             "compile_s": max(first - steady, 0.0), "path_steps_per_s": paths * steps / steady, **_device_memory()}
    memory = f", peak device memory {entry['peak_gb']:.2f} GB" if "peak_gb" in entry else ""
    print(f"{name}: {paths:,} paths x {steps} steps in {steady:.2f} s ({entry['path_steps_per_s'] / 1e6:.1f} M "
          f"path-steps/s), compile {entry['compile_s']:.1f} s{memory}", flush=True)
    return entry


def _simulate(cfg, paths: int, device: str, chunk_size: int | str):
    settings = stresslab.RunSettings(paths=paths, device=device, chunk_size=chunk_size, on_error="warn")
    return lambda: stresslab.simulate(cfg, settings=settings)


def _calibration(paths: int, device: str):
    f = stresslab.objective(CALIBRATION, smooth=True, paths=paths, device=device)
    value_and_grad = jax.value_and_grad(f)
    return lambda: jax.block_until_ready(value_and_grad(f.initial))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny sizes (a check that the script runs)")
    parser.add_argument("--allow-cpu", action="store_true", help="run the full sizes without a GPU")
    parser.add_argument("--json", type=Path, default=HERE / "gpu_latest.json", help="where to write the figures")
    args = parser.parse_args(argv)
    use_cpu_cores()
    warnings.filterwarnings("ignore", message=r"scenario \d+, insurance fund")  # an outcome of the scenario
    gpus = [d for d in jax.devices() if d.platform == "gpu"]
    if not gpus and not (args.tiny or args.allow_cpu):
        print(f"benchmarks/gpu.py: JAX finds no GPU ({jax.default_backend()} only); {CUDA_HINT}, "
              "or pass --tiny to check the script on this machine", file=sys.stderr)
        raise SystemExit(2)
    device = "gpu" if gpus else "cpu"
    days, crash_paths, calibration_paths, day_steps, chunk = SIZES["tiny" if args.tiny else "full"]
    day = scenario.config(steps=day_steps)
    crash = scenario.config(steps=CRASH_STEPS)
    steps = day.simulation.n_steps
    result = {
        "machine": {"device": str(jax.devices()[0].device_kind), "platform": device, "devices": len(jax.devices()),
                    "jax": jax.__version__, "stresslab": stresslab.__version__, "python": platform.python_version()},
        "size": "tiny" if args.tiny else "full", "measurements": []}
    for paths in days:
        result["measurements"].append(_measure("reference day", paths, steps, _simulate(day, paths, device, chunk)))
    result["measurements"].append(_measure("crash segment", crash_paths, CRASH_STEPS,
                                           _simulate(crash, crash_paths, device, chunk)))
    result["measurements"].append(_measure("calibration iteration (value and gradient)", calibration_paths,
                                           stresslab.load_config(CALIBRATION).scenarios[0].simulation.n_steps,
                                           _calibration(calibration_paths, device)))
    largest = result["measurements"][len(days) - 1]
    result["goal"] = {**GOAL, "measured_s": largest["steady_s"] * GOAL["paths"] * GOAL["steps"]
                      / (largest["paths"] * largest["steps"]), "from": f"{largest['paths']} paths"}
    result["goal"]["met"] = bool(not args.tiny and result["goal"]["measured_s"] < GOAL["seconds"])
    args.json.write_text(json.dumps(result, indent=1))
    print(f"10^7 paths x 1440 steps: {result['goal']['measured_s']:.1f} s (goal < 60 s"
          f"{'' if not args.tiny else ', extrapolated from tiny sizes: not a measurement of the goal'}); "
          f"written: {args.json}")
    return result


if __name__ == "__main__":
    main()
