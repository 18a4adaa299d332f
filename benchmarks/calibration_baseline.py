"""Gradient calibration against a gradient-free baseline (random search), side by side.

Both tune the same controls of the same config within the same bounds. The baseline
draws candidates uniformly in the bounds and evaluates each with the hard rules on
the training paths (common random numbers); the best candidate so far is re-evaluated
on held-out paths after each batch. Gradient calibration's cost counts each training
path once per iteration (its forward-mode tangents ride along in the same pass).
Reported: the held-out objective each method reaches and the simulated paths it used,
and how many paths random search needed to come within 1 % of gradient calibration.

    python benchmarks/calibration_baseline.py [CONFIG] [--candidates N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import time

import jax.numpy as jnp
import numpy as np

import stresslab
from stresslab.calibrate.loop import HOLDOUT_SEED_OFFSET, evaluate
from stresslab.calibrate.objective import evaluator, problem
from stresslab.engine.runner import precision

DEFAULT = "configs/calibration/haircuts_crypto.toml"
BATCH = 8
"""Candidates between two held-out evaluations of the best one."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default=DEFAULT)
    parser.add_argument("--candidates", type=int, default=64, help="random-search candidates")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()

    start = time.perf_counter()
    result = stresslab.calibrate(args.config)
    gradient_seconds = time.perf_counter() - start
    prob = problem(args.config)
    cal = prob.calibration
    gradient_paths = cal.iterations * cal.paths
    holdout_seed = prob.config.simulation.seed + HOLDOUT_SEED_OFFSET

    rng = np.random.default_rng(0)
    start = time.perf_counter()
    with precision(prob.config.simulation.dtype):
        ev = evaluator(prob, paths=cal.paths, seed=prob.config.simulation.seed)
        dtype = jnp.dtype(prob.config.simulation.dtype)
        best_value, best = np.inf, dict(prob.initial)
        history = []
        for i in range(args.candidates):
            values = prob.lower + (prob.upper - prob.lower) * rng.random(len(prob.names))
            value = float(ev.value(jnp.asarray(values, dtype), None))
            if value < best_value:
                best_value, best = value, dict(zip(prob.names, map(float, values), strict=True))
            if (i + 1) % BATCH == 0 or i + 1 == args.candidates:
                held = evaluate(prob, best, paths=cal.holdout_paths, seed=holdout_seed)
                history.append({"candidates": i + 1, "paths": (i + 1) * cal.paths, "holdout": held.objective,
                                "values": best})
    search_seconds = time.perf_counter() - start

    target = result.after.objective * 1.01
    reached = next((h for h in history if h["holdout"] <= target), None)
    report = {
        "config": args.config,
        "gradient": {"holdout_before": result.before.objective, "holdout_after": result.after.objective,
                     "paths": gradient_paths, "seconds": gradient_seconds, "values": result.values},
        "random_search": {"best_holdout": history[-1]["holdout"], "paths": history[-1]["paths"],
                          "seconds": search_seconds, "history": history},
        "random_search_paths_to_within_1pct_of_gradient": reached["paths"] if reached else None,
        "path_ratio": (reached["paths"] / gradient_paths) if reached else None,
    }
    print(f"gradient: held-out {result.before.objective:.6g} -> {result.after.objective:.6g} "
          f"with {gradient_paths} training paths ({gradient_seconds:.0f} s)")
    for h in history:
        print(f"random search: {h['candidates']:4d} candidates, {h['paths']:8d} paths: held-out {h['holdout']:.6g}")
    if reached:
        print(f"random search came within 1 % of gradient calibration after {reached['paths']} paths "
              f"({reached['paths'] / gradient_paths:.1f}x the gradient's)")
    else:
        print(f"random search did not come within 1 % of gradient calibration in {history[-1]['paths']} paths "
              f"({history[-1]['paths'] / gradient_paths:.1f}x the gradient's)")
    if args.json:
        with open(args.json, "w") as file:
            json.dump(report, file, indent=2)


if __name__ == "__main__":
    main()
