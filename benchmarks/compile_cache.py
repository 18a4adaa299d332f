"""What the on-disk cache of compiled kernels saves a repeated command: a benchmark, not a test.

Runs each command in fresh child processes, in turn: "cold" with an empty cache directory (the command
compiles every kernel, as a first run does) and "warm" with a directory that one earlier run of the same
command filled (it loads them; ``stresslab.engine.compile_cache``). Reports the median wall time and
the largest peak resident memory of each, and cold / warm, as JSON on stdout and with ``--json PATH``
in a file. The commands write to a temporary directory; the outputs of a cold and a warm run are
compared variable by variable (the cache must change no number).

    python benchmarks/compile_cache.py                  # stresslab run and stresslab calibrate, 3 of each
    python benchmarks/compile_cache.py --repeat 5 --only run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr

REPEAT = 3
"""Cold and warm runs of each command (the median counts)."""
ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "run": ["run", str(ROOT / "configs" / "crypto_long_squeeze.toml"), "--paths", "20000", "--quiet"],
    "calibrate": ["calibrate", str(ROOT / "configs" / "calibration" / "breakers_equity.toml"), "--quiet",
                  "--set", "calibration.paths=128", "--set", "calibration.iterations=3",
                  "--set", "calibration.holdout_paths=500"],
}
"""The measured commands (``stresslab ARGS``; ``--out`` is added): a shipped run and a short calibration."""
OUTPUT = {"run": "out.zarr", "calibrate": "tuned"}
"""What each command writes under its --out (the run's Dataset; the calibration's directory)."""


def _child(args: list[str], cache: Path, out: Path) -> tuple[float, float]:
    """Wall time (s) and peak RSS (MiB) of one ``python -m stresslab.cli ARGS --out OUT`` with cache ``cache``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    env.update(PYTHONPATH=path, STRESSLAB_COMPILE_CACHE=str(cache))
    wrapper = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
               "r = subprocess.run(sys.argv[1:]); "
               "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)")
    done = subprocess.run([sys.executable, "-c", wrapper, sys.executable, "-m", "stresslab.cli", *args,
                           "--out", str(out)], env=env, capture_output=True, text=True, check=True)
    seconds, peak_kib, code = done.stdout.split()[-3:]
    if int(code) != 0:
        raise SystemExit(f"stresslab {' '.join(args)} failed ({code}): {done.stderr[-2000:]}")
    return float(seconds), float(peak_kib) / 1024


def _same_numbers(a: Path, b: Path) -> bool:
    """Whether two outputs hold the same numbers: a run's Dataset, or every Dataset and the tuned config
    of a calibration's directory."""
    stores = [a] if a.suffix in (".zarr", ".nc") else sorted(p for p in a.iterdir() if p.suffix in (".zarr", ".nc"))
    for left in stores:
        right = b / left.relative_to(a) if left != a else b
        engine = "zarr" if left.suffix == ".zarr" else None
        with xr.open_dataset(left, engine=engine) as x, xr.open_dataset(right, engine=engine) as y:
            for name in x.data_vars:
                if x[name].dtype.kind in "fiub" and not np.array_equal(x[name].values, y[name].values,
                                                                       equal_nan=True):
                    return False
    return all((b / t.relative_to(a)).read_text() == t.read_text() for t in a.glob("*.toml"))


def measure(name: str, repeat: int, work: Path) -> dict[str, object]:
    """Cold and warm runs of ``COMMANDS[name]``, interleaved ``repeat`` times."""
    args = COMMANDS[name]
    warm_cache = work / f"{name}-warm-cache"
    _child(args, warm_cache, work / f"{name}-prime" / OUTPUT[name])  # fills the warm cache
    cold, warm = [], []
    for i in range(repeat):
        cold_cache = work / f"{name}-cold-cache-{i}"
        cold.append(_child(args, cold_cache, work / f"{name}-cold-{i}" / OUTPUT[name]))
        shutil.rmtree(cold_cache)
        warm.append(_child(args, warm_cache, work / f"{name}-warm-{i}" / OUTPUT[name]))
    same = _same_numbers(work / f"{name}-cold-0" / OUTPUT[name], work / f"{name}-warm-0" / OUTPUT[name])
    cold_s, warm_s = statistics.median(t for t, _ in cold), statistics.median(t for t, _ in warm)
    return {
        "command": ["stresslab", *(a.replace(f"{ROOT}{os.sep}", "") for a in args), "--out", OUTPUT[name]],
        "repeat": repeat,
        "cold_median_wall_s": round(cold_s, 2),
        "warm_median_wall_s": round(warm_s, 2),
        "cold_over_warm": round(cold_s / warm_s, 2),
        "cold_peak_rss_mib": round(max(m for _, m in cold), 1),
        "warm_peak_rss_mib": round(max(m for _, m in warm), 1),
        "cache_entries": len(list(warm_cache.glob("*-cache"))),
        "cache_mib": round(sum(p.stat().st_size for p in warm_cache.iterdir()) / 2**20, 2),
        "same_numbers": same,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=REPEAT, help=f"cold and warm runs of each (default {REPEAT})")
    parser.add_argument("--only", choices=list(COMMANDS), action="append", help="only this command (repeatable)")
    parser.add_argument("--json", type=Path, help="also write the result to this file")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stresslab-cache-bench-") as work:
        result = {"date": time.strftime("%Y-%m-%d", time.gmtime()), "python": platform.python_version(),
                  "machine": platform.machine(), "cpus": os.cpu_count(),
                  "commands": {name: measure(name, options.repeat, Path(work))
                               for name in options.only or list(COMMANDS)}}
    text = json.dumps(result, indent=2)
    print(text)
    if options.json is not None:
        options.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
