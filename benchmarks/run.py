"""Throughput, scaling, memory and compile time of stresslab against NumPy, Numba and a random-walk floor.

    python benchmarks/run.py [--quick] [--json FILE]

All measurements run in one invocation, interleaved, so that their ratios hold on a
noisy machine:

- reference: path-steps per second of the reference scenario (``benchmarks/reference.toml``,
  1440 steps) for stresslab (the engine's own runner, ``engine.devices.run_chunk``, on all local
  devices and the chunks ``stresslab run`` uses),
  the NumPy and Numba references (``numpy_ref.py``, ``numba_ref.py``) and the floor: the
  same exogenous random walk (``stresslab.market.price.exogenous_return``) on stresslab's
  generator (``engine/keys.py``) and nothing else;
- scaling in paths (10^3 to 10^6, a 150-step horizon that includes the shock; a point is
  skipped when its predicted time exceeds the budget) and in cohorts (12 to 96, the fastest of COHORT_REPEATS
  interleaved runs);
  stresslab's linearity in paths from one ``stresslab run`` of 10^6 paths x 1440 steps against the
  reference's rate;
- peak resident memory of each implementation in its own process (10^5 paths x 24 calm steps), and of
  that ``stresslab run`` (not with ``--quick``);
- compile time: stresslab's (its first chunk less a steady one: every device compiles its copy), the
  floor's, and Numba cold (empty cache).

The JSON (``--json``) holds ``speedup_vs_numpy``, ``speedup_vs_numba`` (their time over
stresslab's) and ``cost_vs_floor`` (stresslab's time over the floor's), every measurement,
the machine, and each target of issue 16 (``TARGETS``) with whether it is met.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
if "NUMBA_CACHE_DIR" not in os.environ:  # measure Numba's cold compile, not a cached one
    os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="stresslab-bench-numba-")
    atexit.register(shutil.rmtree, os.environ["NUMBA_CACHE_DIR"], True)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import scenario  # noqa: E402
from jax.sharding import Mesh  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

from stresslab.engine import xla_options  # noqa: E402
from stresslab.engine.devices import Devices, run_chunk, select, use_cpu_cores  # noqa: E402
from stresslab.engine.keys import path_keys, step_uniforms  # noqa: E402
from stresslab.engine.runner import auto_chunk, per_device, precision  # noqa: E402
from stresslab.market import price  # noqa: E402
from stresslab.market.model import Static, build  # noqa: E402

use_cpu_cores()  # one CPU device per core, as `stresslab run` has (importing stresslab leaves JAX alone)
IMPLS = ("floor", "stresslab", "numba", "numpy")
GENERATORS = {
    "stresslab": "jax.random threefry2x32, fold_in(seed, path) then fold_in(step) (stresslab.engine.keys)",
    "floor": "the same as stresslab (stresslab.engine.keys.step_uniforms)",
    "numpy": "numpy.random.Generator(PCG64), one stream per chunk of 16384 paths",
    "numba": "SplitMix64 counter stream per path, Box-Muller normals",
}
SCALING_STEPS = 150
"""Horizon of the scaling runs: 2 calm hours, the gap, the sell program and the start of the cascade."""
TARGETS = {"speedup_vs_numpy": 10.0, "speedup_vs_numba": 2.0, "crash_vs_numba": 1.5, "cost_vs_floor": 8.0,
           "peak_rss_gb": 2.0, "run_minutes": 10.0, "compile_s": 10.0}
"""Issue 16, item 3: stresslab >= 10x NumPy, >= 2x Numba overall and >= 1.5x Numba in the crash segment (10^4 paths
of the path scaling), <= 8x the floor, compile < 10 s, one ``stresslab run`` of 10^6 x 1440 in <= 10 min and < 2 GB,
cost per path-step from the fewest to the most cohorts growing no faster than Numba's."""
CRASH_PATHS = 10**4
"""Paths of the crash-segment comparison (a point of the path scaling)."""
MEMORY_PATHS = {False: 10**5, True: 10**4}
"""Paths of each implementation's memory run (full, --quick)."""
COHORT_REPEATS = 7
"""Runs of each point of the scaling in cohorts, interleaved; the fastest counts (one run of 0.1-0.6 s varies by
about +-20 % on a 2-core machine, and single best-of-5 runs of the growth ranged 1.55-1.72 for stresslab and
1.33-1.85 for Numba on 7 Dec)."""
RUN_PATHS = 10**6
"""Paths of the one ``stresslab run`` whose peak memory is the target (not with --quick)."""
MEMORY_STEPS = 24
"""Steps of the memory runs: the reference's 24 record points, so the recorded bands are as large as in a full run."""
LINEAR_SLACK = 0.8
"""Run time counts as linear in paths when path-steps/s at the largest run is >= this share of the best."""


def _rss_mb() -> tuple[float, float]:
    """(current, peak) resident memory of this process, MB."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value
    if "VmRSS" in fields:
        return float(fields["VmRSS"].split()[0]) / 1024, float(fields["VmHWM"].split()[0]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return peak, peak


def _on_devices(chunk_fn, devices: Devices, out_specs):
    """``chunk_fn(params, key, first)`` run on every device of ``devices`` (shard_map; the floor's runner):
    the returned function takes each device's first path index, ``firsts`` (D,). It is compiled with the
    engine's own XLA options (``engine.xla_options``), so that the floor is the best the same compiler gives."""
    mesh = Mesh(np.array(devices.devices), ("path",))

    def local(params, key, firsts):
        return chunk_fn(params, key, firsts[0])

    return jax.jit(jax.shard_map(local, mesh=mesh, in_specs=(P(), P(), P("path")), out_specs=out_specs,
                                 check_vma=False), compiler_options=xla_options.KERNEL)


class Stresslab:
    """stresslab as ``stresslab run`` runs it: the engine's own runner (``engine.devices.run_chunk``: the kernel
    in one ``shard_map`` program over the local devices) on chunks from ``runner.auto_chunk``.
    ``compile_s`` is the first chunk's time less a second one's (one compile serves every device)."""

    def __init__(self, cfg, n: int, seed: int = 0):
        self.dtype = cfg.simulation.dtype
        self.devices = select()
        with precision(self.dtype):
            self.params, self.static = build(cfg)
            self.slice = per_device(auto_chunk(self.static, n, self.devices), len(self.devices))
            self.chunk = self.slice * len(self.devices)
            self.key = jax.random.key(seed)
            first, steady = (_timed(lambda _: jax.block_until_ready(self._chunk(0)), 0) for _ in range(2))
            self.compile_s = max(first - steady, 0.0)

    def _chunk(self, first: int):
        return run_chunk(self.params, self.static, self.key, first, self.slice, self.devices)

    def __call__(self, n: int) -> dict[str, np.ndarray]:
        parts = []
        with precision(self.dtype):
            for first in range(0, n, self.chunk):
                out, _ = jax.block_until_ready(self._chunk(first))
                parts.append({k: np.asarray(v)[: n - first] for k, v in out.items()})
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _floor_chunk(price_params: price.PriceParams, seed_key: jax.Array, first_index: jnp.ndarray, *, static: Static,
                 chunk: int) -> jnp.ndarray:
    """The bare random walk: stresslab's exogenous log-price on stresslab's draws, nothing else (final log-price)."""
    keys = path_keys(seed_key, first_index, chunk)
    grid = static.grid
    dtype = jnp.dtype(grid.dtype)

    def step(y, t):
        draws = step_uniforms(keys, t, static.price.n_draws, dtype)
        return y + price.exogenous_return(price_params, t, draws, grid.dt_years, static.price.max_jumps), None

    y, _ = jax.lax.scan(step, jnp.zeros((chunk,), dtype), jnp.arange(grid.n_steps, dtype=jnp.int32))
    return y


class Floor:
    """The floor on the same devices and chunks as stresslab, one shard of the chunk per device (shard_map)."""

    def __init__(self, cfg, n: int, seed: int = 0):
        self.dtype = cfg.simulation.dtype
        self.devices = select()
        with precision(self.dtype):
            params, self.static = build(cfg)
            self.params = params.price
            self.slice = per_device(auto_chunk(self.static, n, self.devices), len(self.devices))
            self.chunk = self.slice * len(self.devices)
            self.key = jax.random.key(seed)
            fn = _on_devices(partial(_floor_chunk, static=self.static, chunk=self.slice), self.devices, P("path"))
            start = time.perf_counter()
            self.compiled = fn.lower(self.params, self.key, self._firsts(0)).compile()
            self.compile_s = time.perf_counter() - start

    def _firsts(self, first: int) -> np.ndarray:
        return (first + self.slice * np.arange(len(self.devices))).astype(np.uint32)

    def __call__(self, n: int) -> dict[str, np.ndarray]:
        parts = []
        with precision(self.dtype):
            for first in range(0, n, self.chunk):
                parts.append(np.asarray(self.compiled(self.params, self.key, self._firsts(first)))[: n - first])
        return {"final_price": np.exp(np.concatenate(parts))}


def _runner(impl: str, cfg, n: int, seed: int = 0):
    """A callable ``run(n)`` for ``impl`` on config ``cfg`` (compiled for up to ``n`` paths), and its compile time."""
    if impl == "stresslab":
        r = Stresslab(cfg, n, seed)
        return r, r.compile_s
    if impl == "floor":
        r = Floor(cfg, n, seed)
        return r, r.compile_s
    sc = scenario.from_config(cfg)
    if impl == "numpy":
        import numpy_ref

        return partial(numpy_ref.simulate, sc, seed=seed), 0.0
    import numba_ref

    start = time.perf_counter()
    numba_ref.simulate(sc, 2, seed=seed)  # compiles (or loads from NUMBA_CACHE_DIR)
    return partial(numba_ref.simulate, sc, seed=seed), time.perf_counter() - start


def _timed(run, n: int) -> float:
    start = time.perf_counter()
    run(n)
    return time.perf_counter() - start


def _cohort_overrides(total: int) -> list[str]:
    long = 2 * total // 3
    return [f"position_grids.0.cohorts={long}", f"position_grids.1.cohorts={total - long}"]


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine() -> dict:
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_gb = None
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        memory_gb = round(int(meminfo.read_text().split()[1]) / 2**20, 1)
    try:
        import numba

        numba_version, threads = numba.__version__, numba.get_num_threads()
    except ImportError:
        numba_version, threads = None, None
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "stresslab"], cwd=HERE, capture_output=True, text=True)
    return {
        "cpu": cpu, "logical_cpus": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0)),
        "memory_gb": memory_gb, "platform": platform.platform(), "python": platform.python_version(),
        "jax": jax.__version__, "jax_backend": jax.default_backend(), "numpy": np.__version__,
        "numba": numba_version, "numba_threads": threads,
        "xla_kernel_options": xla_options.KERNEL, "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "stresslab_commit": (commit.stdout.strip() or "unknown") + ("+dirty" if dirty.stdout.strip() else ""),
        "load_average_start": list(os.getloadavg()),
    }


def reference(args, cfg, runners: dict) -> dict:
    """Interleaved repeats of every implementation on the reference scenario."""
    n, steps = args.paths, cfg.simulation.n_steps
    seconds: dict[str, list[float]] = {impl: [] for impl in runners}
    loads = []
    for rep in range(args.repeats):
        order = list(runners)[rep % len(runners):] + list(runners)[: rep % len(runners)]
        for impl in order:
            _log(f"reference, repeat {rep + 1}/{args.repeats}: {impl} ({n} paths x {steps} steps)")
            seconds[impl].append(_timed(runners[impl], n))
            loads.append(os.getloadavg()[0])
    best = {impl: min(v) for impl, v in seconds.items()}
    result = {
        "paths": n, "steps": steps, "repeats": args.repeats, "seconds": seconds,
        "path_steps_per_s": {impl: n * steps / t for impl, t in best.items()},
        "load_average_1min": loads,
    }
    ratios = {"speedup_vs_numpy": ("numpy", "stresslab"), "speedup_vs_numba": ("numba", "stresslab"),
              "cost_vs_floor": ("stresslab", "floor")}
    for name, (top, bottom) in ratios.items():
        if top in seconds and bottom in seconds:
            per_repeat = [a / b for a, b in zip(seconds[top], seconds[bottom], strict=True)]
            result[name] = statistics.median(per_repeat)
            result[f"{name}_per_repeat"] = per_repeat
    return result


def work_counts(cfg, n: int) -> dict:
    """Work per path-step of the reference (counted by the NumPy reference, float32): cascade rounds, Newton
    iterations, and the share of path-steps with ADL, fills, band stops and halts."""
    import numpy_ref

    stats: dict[str, int] = {}
    numpy_ref.simulate(scenario.from_config(cfg), n, seed=1, stats=stats)
    return {k: v / (n * cfg.simulation.n_steps) for k, v in stats.items()}


def scaling_paths(args, impls) -> dict:
    cfg = scenario.config(steps=SCALING_STEPS)
    sizes = [10**3, 10**4] if args.quick else [10**3, 10**4, 10**5, 10**6]
    points = {impl: [] for impl in impls}
    for impl in impls:
        rate = None
        for n in sizes:
            predicted = n * SCALING_STEPS / rate if rate else 0.0
            if predicted > args.budget:
                skipped = f"predicted {predicted:.0f} s > budget {args.budget:.0f} s"
                points[impl].append({"paths": n, "skipped": skipped})
                continue
            _log(f"scaling in paths: {impl}, {n} paths x {SCALING_STEPS} steps")
            run, _ = _runner(impl, cfg, n)
            seconds = _timed(run, n)
            rate = n * SCALING_STEPS / seconds
            points[impl].append({"paths": n, "seconds": seconds, "path_steps_per_s": rate})
    return {"steps": SCALING_STEPS, "points": points}


def scaling_cohorts(args, impls) -> dict:
    """Cost per path-step at 12 to 96 cohorts. Every (cohorts, implementation) point is compiled first, then the
    points are timed in turn, COHORT_REPEATS times over: a slow spell of the machine falls on every point alike
    instead of on one. Each point keeps its fastest run (``seconds``) and the median of its runs."""
    totals = [12, 48] if args.quick else [12, 24, 48, 96]
    n = 512 if args.quick else 2048
    runners = {}
    for total in totals:
        cfg = scenario.config(steps=SCALING_STEPS, overrides=_cohort_overrides(total))
        for impl in impls:
            _log(f"scaling in cohorts: compiling {impl}, {total} cohorts, {n} paths x {SCALING_STEPS} steps")
            runners[total, impl] = _runner(impl, cfg, n)
    runs = {point: [] for point in runners}
    for repeat in range(COHORT_REPEATS):
        _log(f"scaling in cohorts: run {repeat + 1} of {COHORT_REPEATS} of every point")
        for point, (run, _) in runners.items():
            runs[point].append(_timed(run, n))
    points = {impl: [] for impl in impls}
    for (total, impl), seconds in runs.items():
        points[impl].append({"cohorts": total, "seconds": min(seconds), "median_seconds": float(np.median(seconds)),
                             "path_steps_per_s": n * SCALING_STEPS / min(seconds),
                             "compile_s": runners[total, impl][1]})
    return {"paths": n, "steps": SCALING_STEPS, "repeats": COHORT_REPEATS, "points": points}


def _child(args) -> None:
    """Run one implementation in this process and print its peak memory (``--child``)."""
    cfg = scenario.config(steps=args.steps, overrides=["market.shocks=[]"])
    run, compile_s = _runner(args.child, cfg, args.paths)
    before, peak_before = _rss_mb()
    seconds = _timed(run, args.paths)
    after, peak = _rss_mb()
    print(json.dumps({"impl": args.child, "paths": args.paths, "steps": args.steps, "seconds": seconds,
                      "compile_s": compile_s, "rss_before_run_mb": before, "peak_rss_before_run_mb": peak_before,
                      "peak_rss_mb": peak}))


def _measure_child(argv: list[str]) -> tuple[float, float, str]:
    """Run ``argv`` in a fresh process; (wall seconds, peak RSS in MB of the largest process it ran, stdout).
    Without the cache of compiled kernels (``STRESSLAB_COMPILE_CACHE=off``): a first run's compile and memory
    are what is measured (``benchmarks/compile_cache.py`` measures what the cache saves a repeated run)."""
    wrapper = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
               "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
               "sys.stdout.write(r.stdout); sys.stderr.write(r.stderr[-4000:]); "
               "print('@@', time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
               "sys.exit(r.returncode)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    env["STRESSLAB_COMPILE_CACHE"] = "off"
    done = subprocess.run([sys.executable, "-c", wrapper, *argv], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr[-2000:]}")
    last = [line for line in done.stdout.splitlines() if line.startswith("@@")][-1].split()
    return float(last[1]), float(last[2]) / 1024, done.stdout


def memory(args, impls) -> dict:
    n = MEMORY_PATHS[args.quick]
    steps = MEMORY_STEPS
    result: dict = {"note": f"each implementation in its own process: {n} paths x {steps} calm steps of the reference "
                            "(shocks removed to allow the short horizon, same record points); peak RSS includes "
                            "imports and compilation"}
    for impl in impls:
        _log(f"memory: {impl}, {n} paths")
        _, _, out = _measure_child([sys.executable, str(Path(__file__)), "--child", impl, "--paths", str(n),
                                    "--steps", str(steps)])
        result[impl] = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
    if not args.quick and "stresslab" in impls:
        paths = RUN_PATHS
        _log(f"memory: stresslab run {scenario.REFERENCE.name} --paths {paths} (the whole day, every mechanism)")
        with tempfile.TemporaryDirectory() as tmp:
            seconds, peak, _ = _measure_child([sys.executable, "-m", "stresslab.cli", "run", str(scenario.REFERENCE),
                                               "--paths", str(paths), "--out", str(Path(tmp) / "reference.zarr")])
        result["stresslab_run"] = {"paths": paths, "steps": scenario.config().simulation.n_steps, "wall_s": seconds,
                                   "peak_rss_mb": peak,
                                   "command": f"stresslab run benchmarks/reference.toml --paths {paths}"}
    return result


def _rate(points: list[dict], key: str, value: int) -> float | None:
    """path-steps/s of the scaling point whose ``key`` is ``value`` (None: skipped or absent)."""
    return next((p["path_steps_per_s"] for p in points if p.get(key) == value and "path_steps_per_s" in p), None)


def targets(result: dict) -> list[dict]:
    """Each target of issue 16 (``TARGETS``) with its measured value and whether it is met."""
    ref = result["reference"]
    out = []

    def add(name, target, measured, met, note=""):
        out.append({"target": name, "required": target, "measured": measured, "met": None if met is None else bool(met),
                    "note": note})

    for key, label in (("speedup_vs_numpy", ">= 10x NumPy"), ("speedup_vs_numba", ">= 2x Numba")):
        if key in ref:
            add(key, label, round(ref[key], 3), ref[key] >= TARGETS[key])
    paths = result["scaling_paths"]["points"]
    ours, numba = _rate(paths.get("stresslab", []), "paths", CRASH_PATHS), _rate(paths.get("numba", []), "paths",
                                                                                  CRASH_PATHS)
    if ours and numba:
        add("crash_vs_numba", ">= 1.5x Numba in the crash segment", round(ours / numba, 3),
            ours / numba >= TARGETS["crash_vs_numba"],
            f"{CRASH_PATHS:,} paths x {result['scaling_paths']['steps']} steps: {ours:,.0f} vs {numba:,.0f} "
            "path-steps/s")
    if "cost_vs_floor" in ref:
        add("cost_vs_floor", "<= 8x the bare random walk", round(ref["cost_vs_floor"], 2),
            ref["cost_vs_floor"] <= TARGETS["cost_vs_floor"])
    compile_s = result["compile_seconds"].get("stresslab")
    if compile_s is not None:
        add("compile_s", "< 10 s", round(compile_s, 1), compile_s < TARGETS["compile_s"],
            "the first chunk less a steady one: one shard_map program, compiled once for all local devices")
    cohorts = result["scaling_cohorts"]["points"]
    growth = {}
    for impl in ("stresslab", "numba"):
        pts = [p for p in cohorts.get(impl, []) if "path_steps_per_s" in p]
        if len(pts) >= 2:
            growth[impl] = (pts[0]["path_steps_per_s"] / pts[-1]["path_steps_per_s"], pts[0]["cohorts"],
                            pts[-1]["cohorts"])
    if len(growth) == 2:
        (g_ours, lo, hi), (g_numba, *_) = growth["stresslab"], growth["numba"]
        add("cohort_growth", "cost per path-step growing with cohorts no faster than Numba's", round(g_ours, 2),
            g_ours <= g_numba, f"cost at {hi} cohorts / at {lo}: stresslab {g_ours:.2f}x, Numba {g_numba:.2f}x")
    run = result.get("memory", {}).get("stresslab_run")
    if run is not None:
        rate_small = ref["path_steps_per_s"]["stresslab"]
        rate_large = run["paths"] * run["steps"] / run["wall_s"]
        add("linear_in_paths", "run time linear in paths", f"{rate_large:,.0f} path-steps/s at {run['paths']:,} "
            f"paths (the whole stresslab run: start-up, compile, writing Zarr) vs {rate_small:,.0f} at "
            f"{ref['paths']:,}",
            rate_large >= LINEAR_SLACK * rate_small,
            f"linear when path-steps/s at 10^6 paths is >= {LINEAR_SLACK:.0%} of that at {ref['paths']:,} "
            "(same scenario and steps)")
        add("run_1e6", "10^6 paths x 1440 steps in one stresslab run in <= 10 min", round(run["wall_s"] / 60, 1),
            run["wall_s"] <= TARGETS["run_minutes"] * 60, "minutes, start-up, compile and writing Zarr included")
        add("peak_rss_1e6", "10^6 paths x 1440 steps in one stresslab run under 2 GB", f"{run['peak_rss_mb']:,.0f} MB",
            run["peak_rss_mb"] < TARGETS["peak_rss_gb"] * 1024,
            f"{run['paths']:,} paths x {run['steps']} steps in {run['wall_s'] / 60:.1f} min")
    else:
        points = [p for p in paths.get("stresslab", []) if "path_steps_per_s" in p]
        if len(points) >= 2:
            first, last = points[0], points[-1]
            add("linear_in_paths", "run time linear in paths", f"{last['path_steps_per_s']:,.0f} path-steps/s at "
                f"{last['paths']:,} paths vs {first['path_steps_per_s']:,.0f} at {first['paths']:,}",
                last["path_steps_per_s"] >= LINEAR_SLACK * first["path_steps_per_s"],
                "from the path-scaling runs only (--quick has no 10^6-path run)")
        add("run_1e6", "10^6 paths x 1440 steps in one stresslab run in <= 10 min", None, None,
            "not measured (--quick)")
        add("peak_rss_1e6", "10^6 paths in one stresslab run under 2 GB", None, None, "not measured (--quick)")
    return out


def markdown(result: dict) -> str:
    m, ref = result["machine"], result["reference"]
    rate = ref["path_steps_per_s"]
    lines = [
        f"Measured {result['date']} on {m['cpu']}, {m['usable_cpus']} cores, {m['memory_gb']} GB "
        f"({m['platform']}; JAX {m['jax']} {m['jax_backend']}, NumPy {m['numpy']}, Numba {m['numba']}; "
        f"stresslab {m['stresslab_commit']}; load average {m['load_average_start'][0]:.1f} at the start), "
        f"`python benchmarks/run.py{' --quick' if result['quick'] else ''}`. "
        f"Reference scenario: {ref['paths']:,} paths x {ref['steps']} steps, {result['scenario']['cohorts']} cohorts, "
        f"{result['scenario']['dtype']}.",
        "",
        "| implementation | path-steps/s | time / stresslab's | compile (s) | peak RSS (MB) |",
        "|---|---:|---:|---:|---:|",
    ]
    mem = result.get("memory", {})
    for impl in IMPLS:
        if impl not in rate:
            continue
        ratio = rate["stresslab"] / rate[impl]
        compile_s = result["compile_seconds"].get(impl)
        peak = mem.get(impl, {}).get("peak_rss_mb")
        lines.append(f"| {impl} | {rate[impl]:,.0f} | {ratio:.2f} | "
                     f"{'-' if not compile_s else f'{compile_s:.1f}'} | {'-' if peak is None else f'{peak:,.0f}'} |")
    for key, axis in (("scaling_paths", "paths"), ("scaling_cohorts", "cohorts")):
        scaling = result.get(key)
        if not scaling:
            continue
        sizes = sorted({p[axis] for pts in scaling["points"].values() for p in pts})
        where = f"{scaling['steps']} steps" + (f", {scaling['paths']:,} paths" if axis == "cohorts" else "")
        lines += ["", f"| path-steps/s by {axis} ({where}) | " + " | ".join(f"{v:,}" for v in sizes) + " |",
                  "|---|" + "---:|" * len(sizes)]
        for impl, pts in scaling["points"].items():
            by = {p[axis]: p for p in pts}
            cells = [f"{by[v]['path_steps_per_s']:,.0f}" if "path_steps_per_s" in by.get(v, {}) else "-"
                     for v in sizes]
            lines.append(f"| {impl} | " + " | ".join(cells) + " |")
    lines += ["", "| target | required | measured | met | note |", "|---|---|---|---|---|"]
    for t in result["targets"]:
        met = "not measured" if t["met"] is None else "yes" if t["met"] else "**no**"
        lines.append(f"| {t['target']} | {t['required']} | {t['measured']} | {met} | {t['note']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer paths and points; no 10^6-path run")
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--paths", type=int, help="paths of the reference comparison (default 4096; quick 1024)")
    parser.add_argument("--repeats", type=int, help="interleaved repeats of the reference comparison (2; quick 1)")
    parser.add_argument("--budget", type=float, help="skip a scaling point predicted to take longer, s (300; quick 60)")
    parser.add_argument("--impl", action="append", choices=IMPLS, help="only these implementations (repeatable)")
    parser.add_argument("--child", choices=IMPLS, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=MEMORY_STEPS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args)
        return
    args.paths = args.paths or (1024 if args.quick else 4096)
    args.repeats = args.repeats or (1 if args.quick else 2)
    args.budget = args.budget or (60.0 if args.quick else 300.0)
    impls = [i for i in IMPLS if not args.impl or i in args.impl]
    try:
        import numba  # noqa: F401
    except ImportError:
        _log("numba is not installed (pip install numba): the Numba reference is skipped")
        impls = [i for i in impls if i != "numba"]
    started = time.time()
    cfg = scenario.config()
    result: dict = {
        "date": time.strftime("%Y-%m-%d", time.gmtime()), "quick": args.quick, "machine": machine(),
        "scenario": {"config": "benchmarks/reference.toml", "steps": cfg.simulation.n_steps,
                     "cohorts": scenario.from_config(cfg).n_cohorts, "dtype": cfg.simulation.dtype,
                     "numba_arithmetic": "float64 (Newton tolerance of the scenario dtype)"},
        "generators": {impl: GENERATORS[impl] for impl in impls},
    }
    runners, compile_s = {}, {}
    for impl in impls:
        _log(f"compiling {impl}")
        runners[impl], compile_s[impl] = _runner(impl, cfg, args.paths)
    result["compile_seconds"] = {k: v for k, v in compile_s.items() if k != "numpy"}
    result["reference"] = reference(args, cfg, runners)
    for key in ("speedup_vs_numpy", "speedup_vs_numba", "cost_vs_floor"):
        if key in result["reference"]:
            result[key] = result["reference"][key]
    runners.clear()
    result["work_per_path_step"] = work_counts(cfg, 256)
    result["scaling_paths"] = scaling_paths(args, impls)
    result["scaling_cohorts"] = scaling_cohorts(args, impls)
    result["memory"] = memory(args, [i for i in impls if i != "floor"])
    result["targets"] = targets(result)
    result["machine"]["load_average_end"] = list(os.getloadavg())
    result["wall_s"] = time.time() - started
    text = markdown(result)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=float))
        _log(f"wrote {args.json}")


if __name__ == "__main__":
    main()
