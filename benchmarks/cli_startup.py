"""How long ``stresslab --help`` takes, and how much memory it needs: a benchmark, not a test.

Runs ``python -m stresslab.cli ARGS`` (default ``--help``) in fresh child processes and reports the
median wall time of several runs and the largest peak resident set size (``ru_maxrss`` of the
children), as JSON on stdout and, with ``--json PATH``, in a file. The command line imports
no JAX, xarray or library module before a command runs, so ``--help`` and shell completion
take about as long as importing click.

    python benchmarks/cli_startup.py                     # stresslab --help, median of 5
    python benchmarks/cli_startup.py --repeat 9 -- run --help
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPEAT = 5
"""Runs per measurement (the median is reported)."""
ROOT = Path(__file__).resolve().parents[1]


def measure(args: list[str], repeat: int) -> dict[str, object]:
    """Median wall time (s) and peak RSS (MiB) of ``python -m stresslab.cli ARGS`` over ``repeat`` fresh runs."""
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env = {**os.environ, "PYTHONPATH": path}
    times, peaks = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "stresslab.cli", *args], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
        peaks.append(max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
    return {
        "command": ["stresslab", *args],
        "repeat": repeat,
        "median_wall_s": round(statistics.median(times), 3),
        "min_wall_s": round(min(times), 3),
        "peak_rss_mib": round(max(peaks) / 1024, 1),  # ru_maxrss is in KiB on Linux
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=REPEAT, help=f"runs per measurement (default {REPEAT})")
    parser.add_argument("--json", type=Path, help="also write the result to this file")
    parser.add_argument("args", nargs="*", default=["--help"], help="arguments after stresslab (default --help)")
    options = parser.parse_args()
    result = measure(options.args, options.repeat)
    text = json.dumps(result, indent=2)
    print(text)
    if options.json is not None:
        options.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
