"""Fixtures shared by the tests. The helpers they wrap are in ``helpers.py``; this folder goes on ``sys.path``
so that the test modules import ``helpers``, ``kernel``, ``oracles`` and ``synthetic`` by name.

Tests marked ``slow`` (subprocesses, notebooks, historical scenarios, calibration, several processes, long
Monte Carlo runs) are left out of the fast tier, ``python -m pytest -m "not slow" -n 2 -q``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

# No persistent XLA compilation cache: with a cache shared by the xdist workers and their child processes,
# jaxlib 0.10's CPU executable deserialisation aborted a worker (SIGABRT in
# compilation_cache.get_executable_and_time, twice in full runs of 3 Dec 2026), which no test can catch.
# One CPU device per test process: each device compiles its own copy of a kernel, and the two xdist workers
# already use both cores. The tests of several devices start child processes with their own device count.
os.environ.setdefault("STRESSLAB_CPU_DEVICES", "1")

import pytest  # noqa: E402
import tomli_w  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))

import helpers  # noqa: E402


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
