"""Fixtures shared by the tests. The helpers they wrap are in ``helpers.py``; this folder goes on ``sys.path``
so that the test modules import ``helpers``, ``kernel``, ``oracles`` and ``synthetic`` by name.

Tests marked ``slow`` (subprocesses, notebooks, historical scenarios, calibration, several processes, long
Monte Carlo runs) are left out of the fast tier, ``python -m pytest -m "not slow" -n 2 -q``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

# One persistent XLA compilation cache for the whole test session: the xdist workers and the child processes
# (CLI, resume, devices, notebooks) compile the same kernels again and again. Set before JAX is imported;
# a compiled program is keyed by its HLO, so the cache changes no number. A developer's own setting wins.
CACHE = Path(tempfile.gettempdir()) / f"stresslab-tests-xla-bounded-{os.getuid()}"
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(CACHE))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
# A bound makes JAX lock the directory around every read and write (filelock), so that one process never
# loads a kernel another is still writing. (Its eviction needs the last-use file that only a bounded cache
# writes, hence a directory of its own.)
os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(8 * 1024**3))
# One CPU device per test process: each device compiles its own copy of a kernel, and the two xdist workers
# already use both cores. The tests of several devices start child processes with their own device count.
os.environ.setdefault("STRESSLAB_CPU_DEVICES", "1")

import gc  # noqa: E402

import jax  # noqa: E402
import pytest  # noqa: E402
import tomli_w  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))

import helpers  # noqa: E402

MAX_MAPPINGS = 20_000
"""Memory mappings of a test process above which compiled kernels are dropped after a module (vm.max_map_count
is 65 530; one module added up to 33 000 in a full run)."""


def _mappings() -> int:
    """Memory mappings of this process (0 where /proc is not available)."""
    try:
        with open("/proc/self/maps", "rb") as maps:
            return sum(1 for _ in maps)
    except OSError:
        return 0


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_kernels():
    """After a test module, drop JAX's in-memory compiled executables when this process holds more than
    MAX_MAPPINGS memory mappings (the persistent cache keeps the kernels on disk). Each loaded CPU executable
    holds a few mappings; an xdist worker that kept every kernel of the suite had 28 900 of the 65 530 that
    vm.max_map_count allows at 40 % of a full run, and XLA aborted it (SIGABRT while loading an executable)
    near the end. Dropping them after every module kept a worker under 36 000 mappings; a full run with a
    warm persistent cache took 1 078 s that way against 687 s without dropping (with a cold cache, as in
    CI, both ways took about 1 480 s)."""
    yield
    if _mappings() > MAX_MAPPINGS:
        jax.clear_caches()
        gc.collect()


@pytest.fixture(scope="session")
def run64() -> Callable[..., object]:
    """:func:`helpers.run64`: ``run64(raw, paths=1, seed=0, **simulate_kw)``, scenario 0 of a float64 run."""
    return helpers.run64


@pytest.fixture(scope="session")
def cli() -> Callable[..., object]:
    """:func:`helpers.invoke`: ``cli(*args)`` runs ``stresslab ARGS`` in this process (click's ``CliRunner``)
    and returns its ``Result`` (``exit_code``, ``stdout``, ``stderr``)."""
    return helpers.invoke


@pytest.fixture(scope="session")
def cli_process() -> Callable[..., object]:
    """:func:`helpers.stresslab_process`: ``cli_process(*args, cwd=None, timeout=600, env=None)`` runs
    ``python -m stresslab.cli ARGS`` in a child process of this checkout and returns the ``CompletedProcess``."""
    return helpers.stresslab_process


@pytest.fixture
def config_file(tmp_path: Path) -> Callable[..., Path]:
    """``config_file(config, name="c.toml")`` writes ``config`` (TOML text, or a dict written as TOML) into
    this test's ``tmp_path`` and returns the file's path; outputs go beside it."""

    def write(config: str | dict, name: str = "c.toml") -> Path:
        path = tmp_path / name
        path.write_text(config if isinstance(config, str) else tomli_w.dumps(config))
        return path

    return write
