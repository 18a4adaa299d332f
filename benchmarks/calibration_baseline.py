"""Calibration methods side by side: gradient, CMA-ES, CMA-ES then gradient, and random search.

Every method tunes the same controls of the same config within the same bounds, on the same
training paths (common random numbers), and is judged on the same held-out paths with the hard
rules. Simulated paths are counted as the work: a hard-rule evaluation costs its paths, a
gradient iteration costs its paths times (1 + controls) (a forward-mode tangent counts as a path).
For each method the best point so far (by the hard-rule training objective) is followed along its
run; each distinct best point is evaluated on the held-out paths. Reported per problem: the
held-out objective each method reaches, and how many paths each needed to come within 1 % of the
best held-out objective any method found; ``paths_ratio_vs_cmaes`` is CMA-ES's count over the
gradient method's (the issue's target is >= 10).

    python benchmarks/calibration_baseline.py [CONFIG ...] [--set KEY=VALUE ...] [--candidates N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np

import stresslab
from stresslab.calibrate.loop import HOLDOUT_SEED_OFFSET, evaluate
from stresslab.calibrate.objective import evaluator, problem
from stresslab.engine.runner import precision

stresslab.use_cpu_cores()  # one CPU device per core, as `stresslab calibrate` has (importing leaves JAX alone)
ROOT = Path(__file__).resolve().parent.parent
METHODS = ("gradient", "cmaes", "cmaes+gradient")
BATCH = 8
"""Random-search candidates per batched evaluation (and per point of its trajectory)."""
WITHIN = 0.01


def trajectory(trace) -> list[tuple[int, dict[str, float], float]]:
    """(paths so far, best values so far, their training objective) after each row of a calibrate trace."""
    names = [str(p) for p in trace.parameter.values]
    best, rows = (np.inf, None), []
    for i in range(trace.sizes["iteration"]):
        hard = float(trace.hard_objective[i])
        if np.isfinite(hard) and hard < best[0]:
            best = (hard, {n: float(v) for n, v in zip(names, trace.value[i].values, strict=True)})
        if best[1] is not None:
            rows.append((int(trace.paths_simulated[i]), best[1], best[0]))
    return rows


def random_search(prob, candidates: int, seed: int = 0) -> list[tuple[int, dict[str, float], float]]:
    rng = np.random.default_rng(seed)
    cal = prob.calibration
    rows, best = [], (np.inf, None)
    with precision(prob.config.simulation.dtype):
        ev = evaluator(prob, paths=cal.paths, seed=prob.config.simulation.seed)
        dtype = jnp.dtype(prob.config.simulation.dtype)
        for done in range(0, candidates, BATCH):
            batch = prob.lower + (prob.upper - prob.lower) * rng.random((BATCH, len(prob.names)))
            values = ev.values(jnp.asarray(batch, dtype))
            i = int(np.nanargmin(values))
            if values[i] < best[0]:
                best = (float(values[i]), dict(zip(prob.names, map(float, batch[i]), strict=True)))
            rows.append(((done + BATCH) * cal.paths, best[1], best[0]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="*", type=Path)
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override, e.g. "
                        "calibration.paths=400 (applied to every method)")
    parser.add_argument("--candidates", type=int, default=96, help="random-search candidates")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "calibration_latest.json")
    args = parser.parse_args()
    configs = args.configs or sorted((ROOT / "configs" / "calibration").glob("*.toml"))
    report = {"overrides": args.overrides, "problems": {}}
    for config in configs:
        prob = problem(config, args.overrides)
        cal = prob.calibration
        holdout_seed = prob.config.simulation.seed + HOLDOUT_SEED_OFFSET
        runs, seconds = {}, {}
        for method in METHODS:
            began = time.perf_counter()
            result = stresslab.calibrate(config, overrides=[*args.overrides, f"calibration.method={method}"])
            seconds[method] = time.perf_counter() - began
            runs[method] = trajectory(result.trace)
        began = time.perf_counter()
        runs["random"] = random_search(prob, args.candidates)
        seconds["random"] = time.perf_counter() - began
        held_out: dict[tuple, float] = {}
        with precision(prob.config.simulation.dtype):
            for rows in runs.values():
                for _, values, _ in rows:
                    key = tuple(values[n] for n in prob.names)
                    if key not in held_out:
                        held_out[key] = evaluate(prob, values, paths=cal.holdout_paths, seed=holdout_seed).objective
            before = evaluate(prob, prob.initial, paths=cal.holdout_paths, seed=holdout_seed).objective
        best = min(held_out.values())
        entry = {"holdout_before": before, "best_holdout": best, "methods": {}}
        for method, rows in runs.items():
            curve = [(paths, held_out[tuple(v[n] for n in prob.names)]) for paths, v, _ in rows]
            reached = next((paths for paths, h in curve if h <= best + WITHIN * abs(best)), None)
            entry["methods"][method] = {"holdout": curve[-1][1], "paths": curve[-1][0], "seconds": seconds[method],
                                        "paths_to_within_1pct": reached, "values": rows[-1][1], "curve": curve}
            print(f"{config.name:24s} {method:15s} held-out {curve[-1][1]:.6g} after {curve[-1][0]:9d} paths "
                  f"({seconds[method]:.0f} s); within 1 % of the best ({best:.6g}) after "
                  f"{reached if reached is not None else 'never'}", flush=True)
        grad = entry["methods"]["cmaes+gradient"]["paths_to_within_1pct"]
        cmaes = entry["methods"]["cmaes"]["paths_to_within_1pct"]
        only = entry["methods"]["gradient"]["paths_to_within_1pct"]
        entry["paths_ratio_vs_cmaes"] = (cmaes / grad) if grad and cmaes else None
        entry["gradient_only_paths_ratio_vs_cmaes"] = (cmaes / only) if only and cmaes else None
        print(f"{config.name:24s} paths ratio CMA-ES / calibrate (cmaes+gradient): {entry['paths_ratio_vs_cmaes']}; "
              f"CMA-ES / gradient only: {entry['gradient_only_paths_ratio_vs_cmaes']}")
        report["problems"][config.name] = entry
    args.json.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
