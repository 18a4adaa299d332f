"""Where a step's time goes: the reference scenario's XLA kernels, timed by JAX's profiler, mapped to the source.

    python benchmarks/profile_step.py [--paths N] [--steps T] [--set KEY=VALUE ...] [--depth D] [--top K]
                                      [--json FILE]

It runs ``benchmarks/reference.toml`` (``--steps`` replaces its horizon; the default 150 holds the calm
first two hours and the start of the crash; ``--set`` overrides it as ``stresslab run --set`` does, e.g.
``--set position_grids.0.cohorts=48`` to see what grows with the cohorts) on the engine's runner, as
``benchmarks/run.py`` times it, once under ``jax.profiler.trace``. Each kernel the XLA runtime executed (a
fusion, a copy, a while loop's own work) is an event in the trace; its self time (its duration less that of
the events nested in it) is charged to the source line its HLO instruction came from, through the stack
frames XLA keeps in the optimised module (dumped with ``--xla_dump_to``). The tables give:

- by phase: the ``market_step`` phase (``stresslab/market/step.py``) each kernel belongs to; kernels
  outside the step (the random draws, the path keys, the scan), kernels without a source line (copies
  XLA inserted around loops, some reductions) and the runtime's own time between kernels (its events' self time:
  dispatch and loop control) are listed as such;
- by source: the call chain below the phase, ``--depth`` frames deep;
- kernels per step: how many kernels one device ran per step on average. On a CPU each kernel costs its
  dispatch (about half a microsecond on the 2-core machine of the README's figures) on top of its work,
  so at a slice of 1024 paths, where most kernels touch a few thousand numbers, this count sets much of
  a step's cost.

Figures are self times summed over the devices' threads (so they exceed the wall time with 2 CPU
devices), in milliseconds and as shares of the total. The profiler keeps at most a million events; a
run that reaches that many is reported, and ``--steps`` or fewer devices keep it whole.
"""

from __future__ import annotations

import argparse
import atexit
import collections
import glob
import gzip
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
DUMP = tempfile.mkdtemp(prefix="stresslab-profile-hlo-")
atexit.register(shutil.rmtree, DUMP, True)  # the module's text and its kernels' LLVM IR: tens of MB
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + f" --xla_dump_to={DUMP} --xla_dump_hlo_as_text"
                           " --xla_dump_hlo_module_re=.*(_sharded_chunk|_one_device).*").strip()
os.environ["STRESSLAB_COMPILE_CACHE"] = "off"  # a cached executable is not compiled again, so nothing is dumped

import jax  # noqa: E402
import run as bench  # noqa: E402  (benchmarks/run.py: the engine's runner as ``stresslab run`` uses it)
import scenario  # noqa: E402

from stresslab.errors import UsageError  # noqa: E402

EVENT_CAP = 1_000_000
"""Events the profiler's trace keeps at most."""
OUTSIDE = "outside the step (draws, path keys, scan)"
RUNTIME = "XLA runtime between kernels (dispatch, loop control)"
UNNAMED = "kernels without a source line (inserted copies, reductions)"
WAITS = ("wait for completion",)
"""Events that only wait for others (their self time is idle): left out."""


class Frames:
    """The stack frames of an optimised HLO module's text dump: which source line each instruction came from."""

    def __init__(self, text: str):
        files, functions, locations, self.parent, self.location = {}, {}, {}, {}, {}
        section = None
        for line in text.splitlines():
            stripped = line.strip()
            if stripped in ("FileNames", "FunctionNames", "FileLocations", "StackFrames"):
                section = stripped
                continue
            entry = re.match(r"^(\d+) (.*)$", stripped)
            if section is None or entry is None:
                if section == "StackFrames" and self.parent:
                    break
                continue
            index, rest = int(entry.group(1)), entry.group(2)
            fields = dict(re.findall(r"(\w+)=(\d+)", rest))
            if section == "FileNames":
                files[index] = Path(rest.strip('"')).name
            elif section == "FunctionNames":
                functions[index] = rest.strip('"')
            elif section == "FileLocations":
                locations[index] = (files[int(fields["file_name_id"])], functions[int(fields["function_name_id"])],
                                    int(fields["line"]))
            else:  # a frame's parent is numbered from 1 as well, 0 being none
                self.location[index] = locations[int(fields["file_location_id"])]
                self.parent[index] = int(fields["parent_frame_id"]) - 1
        self.frame = {m.group(1): int(m.group(2)) for m in
                      re.finditer(r"^\s*(?:ROOT )?%([\w.\-]+) = .*stack_frame_id=(\d+)", text, re.MULTILINE)}
        self.instructions = set(re.findall(r"^\s*(?:ROOT )?%([\w.\-]+) = ", text, re.MULTILINE))

    def chain(self, instruction: str) -> list[tuple[str, str, int]] | None:
        """(file, function, line) from the outermost caller to the instruction's own line; None if it has none."""
        frame = self.frame.get(instruction)
        if frame is None:
            return None
        out, seen = [], set()
        while frame in self.location and frame not in seen:
            seen.add(frame)
            out.append(self.location[frame])
            frame = self.parent[frame]
        return out[::-1]


def self_times(events: list[dict], instructions) -> tuple[collections.Counter, collections.Counter]:
    """Self time (microseconds) and count of each event name on the threads that ran the module's kernels
    (those with an event named after one of its ``instructions``), nesting taken per thread."""
    by_thread = collections.defaultdict(list)
    for e in events:
        if e.get("ph") == "X" and not any(w in e["name"] for w in WAITS):
            by_thread[e["tid"]].append(e)
    by_thread = {tid: es for tid, es in by_thread.items() if any(e["name"] in instructions for e in es)}
    seconds, counts = collections.Counter(), collections.Counter()
    for thread in by_thread.values():
        thread.sort(key=lambda e: (e["ts"], -e.get("dur", 0)))
        stack: list[list] = []  # [end, name, duration, children's duration]

        def close(item):
            seconds[item[1]] += item[2] - item[3]
            counts[item[1]] += 1

        for e in thread:
            while stack and stack[-1][0] <= e["ts"]:
                close(stack.pop())
            dur = e.get("dur", 0)
            if stack:
                stack[-1][3] += dur
            stack.append([e["ts"] + dur, e["name"], dur, 0])
        while stack:
            close(stack.pop())
    return seconds, counts


def attribute(frames: Frames, seconds, counts, depth: int):
    """Self time by phase and by source chain, and kernel counts by phase."""
    by_phase, by_source, kernels = collections.Counter(), collections.Counter(), collections.Counter()
    for name, t in seconds.items():
        chain = frames.chain(name)
        if chain is None:  # a kernel without a source line still counts as a kernel; the runtime's events do not
            kernel = name in frames.instructions
            by_phase[UNNAMED if kernel else RUNTIME] += t
            kernels[UNNAMED] += counts[name] if kernel else 0
            continue
        step = next((i for i, (_, fn, _) in enumerate(chain) if fn == "market_step"), None)
        if step is None:
            phase, source = OUTSIDE, " > ".join(f"{fn}:{line}" for _, fn, line in chain[-2:])
        else:
            below = chain[step + 1:]
            phase = below[0][1] if below else "market_step"
            source = " > ".join(f"{fn}:{line}" for _, fn, line in below[:depth])
        by_phase[phase] += t
        by_source[(phase, source)] += t
        kernels[phase] += counts[name]
    return by_phase, by_source, kernels


def profile(cfg, paths: int, steps: int, depth: int) -> dict:
    runner = bench.Stresslab(cfg, paths)  # compiles and runs twice
    trace_dir = tempfile.mkdtemp(prefix="stresslab-profile-trace-")
    atexit.register(shutil.rmtree, trace_dir, True)
    with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
        start = time.perf_counter()
        runner(paths)
        wall = time.perf_counter() - start
    traces = glob.glob(os.path.join(trace_dir, "**", "perfetto_trace.json.gz"), recursive=True)
    modules = sorted(glob.glob(os.path.join(DUMP, "*after_optimizations.txt")))  # the kernel (--xla_dump_hlo_module_re)
    if not traces or not modules:
        raise SystemExit("profile_step: the profiler wrote no trace or XLA dumped no module of the kernel")
    with gzip.open(traces[0]) as fh:
        trace = json.load(fh)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    frames = Frames(Path(modules[-1]).read_text())
    seconds, counts = self_times(events, frames.instructions)
    by_phase, by_source, kernels = attribute(frames, seconds, counts, depth)
    total = sum(seconds.values())
    devices = len(runner.devices)
    chunks = -(-paths // runner.chunk)
    per_step = chunks * steps * devices
    return {
        "date": time.strftime("%Y-%m-%d", time.gmtime()), "machine": bench.machine(),
        "paths": paths, "steps": steps, "slice": runner.slice, "devices": devices, "wall_s": wall,
        "events": len(events), "capped": len(events) >= EVENT_CAP, "total_ms": total / 1e3,
        "kernels_per_device_step": sum(kernels.values()) / per_step,
        "phases": [{"phase": k, "ms": v / 1e3, "share": v / total, "kernels_per_device_step": kernels[k] / per_step}
                   for k, v in by_phase.most_common()],
        "sources": [{"phase": p, "source": s, "ms": v / 1e3, "share": v / total}
                    for (p, s), v in by_source.most_common()],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paths", type=int, default=2048, help="paths (default 2048)")
    parser.add_argument("--steps", type=int, default=150, help="steps of the reference scenario (default 150)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override the reference config, as stresslab run --set (repeatable)")
    parser.add_argument("--depth", type=int, default=5, help="frames below the phase in the source table (default 5)")
    parser.add_argument("--top", type=int, default=25, help="rows of the source table (default 25)")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args(argv)
    if args.paths < 1 or args.steps < 1 or args.depth < 1 or args.top < 1:
        parser.error("--paths, --steps, --depth and --top must be at least 1")
    try:
        cfg = scenario.config(overrides=args.overrides, steps=args.steps)
    except (UsageError, scenario.Unsupported) as err:  # a horizon before the reference's shocks, a bad --set
        parser.error(f"--steps {args.steps}, --set {' '.join(args.overrides) or '(none)'}: {err}")
    result = {"overrides": args.overrides, **profile(cfg, args.paths, args.steps, args.depth)}
    changed = f" with {', '.join(args.overrides)}" if args.overrides else ""
    print(f"reference scenario{changed}: {result['paths']} paths x {result['steps']} steps, slice {result['slice']} "
          f"paths on "
          f"{result['devices']} device(s), {result['wall_s']:.2f} s under the profiler; "
          f"{result['kernels_per_device_step']:.0f} kernels per device and step; "
          f"self time {result['total_ms']:.0f} ms over all threads")
    if result["capped"]:
        print(f"warning: the trace holds the profiler's cap of {EVENT_CAP} events, so only the first part of the "
              "run: use fewer --steps")
    print("\nby phase                                                      ms   share  kernels/step")
    for row in result["phases"]:
        print(f"  {row['phase'][:56]:<56} {row['ms']:9.1f} {100 * row['share']:6.1f}%  "
              f"{row['kernels_per_device_step']:9.1f}")
    print(f"\nby source (phase > {args.depth} frames)")
    for row in result["sources"][:args.top]:
        print(f"  {row['ms']:9.1f} ms {100 * row['share']:5.1f}%  {row['phase']} > {row['source']}"[:200])
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
