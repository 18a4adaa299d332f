"""Derivatives of the smoothed calibration objective against central differences, on the shipped problems.

For every config in ``configs/calibration/`` (or those given): at its starting values and at
``--points`` random interior points, at ``temperature_start`` and ``temperature_end``, in
float64 on ``--paths`` paths, ``stresslab.calibrate.gradcheck.check`` compares ``jax.grad`` with
central differences at 1e-4 and 2.5e-5 of each control's range. Prints the worst errors per
config and temperature and writes every check to ``--json`` (default
``benchmarks/gradient_check_latest.json``). The acceptance bound is 1e-3 for both errors.

    python benchmarks/gradient_check.py [CONFIG ...] [--paths 2000] [--points 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax

from stresslab.calibrate import gradcheck
from stresslab.calibrate.objective import problem
from stresslab.engine.devices import use_cpu_cores

use_cpu_cores()  # one CPU device per core, as `stresslab calibrate` has (importing stresslab leaves JAX alone)
ROOT = Path(__file__).resolve().parent.parent
BOUND = 1e-3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="*", type=Path)
    parser.add_argument("--paths", type=int, default=2000)
    parser.add_argument("--points", type=int, default=3, help="random interior points besides the start")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "gradient_check_latest.json")
    args = parser.parse_args()
    configs = args.configs or sorted((ROOT / "configs" / "calibration").glob("*.toml"))
    overrides = ["simulation.dtype=float64"]
    report = {"paths": args.paths, "steps": gradcheck.STEPS, "bound": BOUND, "configs": {}}
    jax.config.update("jax_enable_x64", True)
    for config in configs:
        cal = problem(config, overrides).calibration
        entry = {}
        temperatures = {"start": cal.temperature_start, "end": cal.temperature_end}
        if cal.temperature_start == cal.temperature_end:
            temperatures = {"start=end": cal.temperature_end}
        for label, tau in temperatures.items():
            began = time.perf_counter()
            checks = [c for point in gradcheck.interior_points(config, args.points, overrides=overrides)
                      for c in gradcheck.check(config, point, tau, paths=args.paths, overrides=overrides)]
            worst_smooth = max(c.smooth_error for c in checks)
            worst_ad = max(c.ad_error for c in checks)
            entry[label] = {"temperature": tau, "worst_smooth_error": worst_smooth, "worst_ad_error": worst_ad,
                            "passed": bool(worst_smooth <= BOUND and worst_ad <= BOUND),
                            "seconds": time.perf_counter() - began, "checks": [c.as_dict() for c in checks]}
            for c in checks:
                if max(c.smooth_error, c.ad_error) > BOUND:
                    print(f"  missed: {c.control} at {c.point}: AD {c.ad:.6g}, differences {c.fd[0]:.6g} {c.fd[1]:.6g}",
                          flush=True)
            print(f"{config.name:28s} temperature {label:9s} {tau:<8g} worst |fd_h - fd_h/4| {worst_smooth:.2e}  "
                  f"worst |AD - fd| {worst_ad:.2e}  {'ok' if entry[label]['passed'] else 'MISSED'}", flush=True)
        report["configs"][config.name] = entry
    args.json.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
