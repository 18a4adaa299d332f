"""Helpers shared by the tests; ``conftest.py`` puts this folder on ``sys.path`` and wraps the most used
ones in fixtures (``run64``, ``cli``, ``cli_process``, ``config_file``).

The other helper modules here are ``kernel.py`` (drives ``market_step`` directly), ``oracles.py``
(closed-form results, docs/validation.md) and ``synthetic.py`` (result Datasets built without a run). No
``test_*.py`` module imports another one: what two of them share lives in one of these.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import xarray as xr
from click.testing import CliRunner, Result

import stresslab
from stresslab import cli as _cli

ROOT = Path(__file__).resolve().parent.parent
"""The checkout: configs/, notebooks/ and benchmarks/ are read from here."""
CONFIGS = ROOT / "configs"

# ---------------------------------------------------------------------------------------- tolerances

SIGMAS = 4.0
"""Monte Carlo tolerance, in standard errors (docs/validation.md)."""


def within(estimate: float, expected: float, stderr: float, bias: float = 0.0) -> bool:
    """True when |estimate - expected| <= SIGMAS * stderr + bias."""
    return abs(estimate - expected) <= SIGMAS * stderr + bias


def proportion_stderr(p: float, n: int) -> float:
    return float(np.sqrt(max(p * (1 - p), 1e-12) / n))


# ---------------------------------------------------------------------------------------- runs


def run64(raw: dict, paths: int = 1, seed: int = 0, **kw) -> xr.Dataset:
    """``stresslab.simulate`` of the config dict ``raw`` in float64 (``simulation.dtype`` set unless ``raw``
    sets it), scenario 0. ``raw`` itself is left unchanged; ``kw`` goes to ``simulate``."""
    raw = dict(raw)
    raw = {"simulation": {"dtype": "float64", **raw.pop("simulation", {})}, **raw}
    return stresslab.simulate(raw, paths=paths, seed=seed, **kw).isel(scenario=0)


def crash_config(fund: float, max_order: float | None, tiered: bool) -> dict:
    """A 6-hour float64 crash with tiered or flat margin, ADL and an options book: every path liquidates
    (the accounting identity's market, tests/test_accounting.py and tests/test_accounting_funding.py)."""
    mm = "tiered" if tiered else 0.005
    return {
        "simulation": {"horizon": "6h", "dt": "1min", "dtype": "float64", "record_points": 10},
        "market": {"sigma": 1.0, "jumps": {"intensity": 200, "mean": -0.03, "std": 0.03},
                   "shocks": [{"type": "gap", "at": "1h", "size": -0.08}]},
        "liquidity": {"depth": 5e6, "impact": "sqrt", "permanent_fraction": 0.6, "depletion": 2.0,
                      "withdrawal": 0.5},
        "margin": {"tiers": [{"notional": 5e4, "rate": 0.004}, {"notional": 2.5e5, "rate": 0.01},
                             {"notional": 1e9, "rate": 0.025}]},
        "position_grids": [
            {"side": "long", "notional": 3e8, "leverage_min": 3, "leverage_max": 100, "cohorts": 12,
             "maintenance_margin": mm, "accounts": 500},
            {"side": "short", "notional": 2e8, "leverage_min": 3, "leverage_max": 50, "cohorts": 8,
             "maintenance_margin": mm, "accounts": 500},
        ],
        "liquidation": {"penalty": 0.01, "insurance_fund": fund, "max_order": max_order, "adl": True},
        "dealers": {"enabled": True, "book": "options", "options": [
            {"type": "put", "strike": 90.0, "expiry": "2d", "quantity": 2e4, "dealer_position": "short"}]},
    }


GAP_SQUEEZE = {
    "simulation": {"horizon": "2h", "dt": "1min", "dtype": "float64", "cascade_rounds": 32},
    "market": {"price": 100.0, "sigma": 0.6, "shocks": [{"type": "gap", "at": "30min", "size": -0.04}]},
    "liquidity": {"depth": 2e7, "depletion": 0.3, "recovery_half_life": "10min"},
    "position_grids": [{"side": "long", "notional": 1e8, "leverage_min": 5, "leverage_max": 50, "cohorts": 12}],
}
"""A long squeeze: a -4 % gap at 30 min into 5x-50x longs on a thin book (the effect tests of pre-flow traders)."""

VENUE_DEPTH = 1e7
"""1 % depth of venue A of :func:`two_venues` (B has three times as much)."""


def two_venues(arbitrage: bool, mark: str = "last", positions: bool = True, capacity: float = 1e12) -> dict:
    """Venue A (depth 1e7) takes a one-step sell worth 5 % of its book at t = 0; venue B has three
    times the depth. Longs on A at 15-40x; longs on B at 60-90x (liquidated by a ~1 % fall).
    Without ``positions`` the same cohorts are held at 2-3x (never liquidated; same compiled kernel)."""
    a, b = ((15, 40), (60, 90)) if positions else ((2, 3), (2, 3))
    grids = [{"side": "long", "notional": 1e6, "leverage_min": a[0], "leverage_max": a[1], "cohorts": 4,
              "venue": "A"},
             {"side": "long", "notional": 1e6, "leverage_min": b[0], "leverage_max": b[1], "cohorts": 4,
              "venue": "B"}]
    return {"simulation": {"steps": 60, "dt": "1min", "record_points": 2},
            "market": {"sigma": 0.0, "shocks": [
                {"type": "sell_program", "start": "0s", "notional": 5 * VENUE_DEPTH, "duration": "1min",
                 "venue": "A"}]},
            "liquidity": {"depth": VENUE_DEPTH, "permanent_fraction": 1.0, "depletion": 0.0},
            "venues": [{"name": "A"}, {"name": "B", "depth": 3 * VENUE_DEPTH, "insurance_fund": 5e8}],
            "arbitrage": {"enabled": arbitrage, "reference": "venues", "half_life": "5min", "capacity": capacity},
            "oracle": {"mark": mark},
            "position_grids": grids,
            "liquidation": {"adl": False, "insurance_fund": 1e9}}


# ---------------------------------------------------------------------------------------- split runs

SMALL_CONFIG = """
[simulation]
paths = 300
horizon = "1h"
dt = "1min"
record_points = 12
keep_paths = 3

[market]
sigma = [0.9, 1.4]
jumps = { intensity = 300, mean = -0.02, std = 0.02 }
shocks = [{ type = "gap", at = "20min", size = -0.04 }]

[[positions]]
side = "long"
leverage = 30
notional = 5e6

[[positions]]
side = "short"
leverage = 10
notional = 2e6
"""
"""A small two-scenario config with liquidations, shared by the tests that split one run over devices
(tests/test_devices.py) or processes (tests/test_distributed.py)."""


def without(ds: xr.Dataset, names: tuple[str, ...]) -> xr.Dataset:
    """``ds`` without the attributes ``names``."""
    out = ds.copy()
    out.attrs = {k: v for k, v in ds.attrs.items() if k not in names}
    return out


# ---------------------------------------------------------------------------------------- the command line


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for a child Python that imports this checkout of stresslab (whatever is installed)."""
    root = str(Path(stresslab.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


Cli = Callable[..., Result]
"""The type of the ``cli`` fixture (:func:`invoke`)."""


def invoke(*args: str | Path, catch_exceptions: bool = True) -> Result:
    """``stresslab ARGS`` in this process, through click's ``CliRunner`` (stdout and stderr kept apart)."""
    return CliRunner().invoke(_cli.main, [str(a) for a in args], catch_exceptions=catch_exceptions)


INTERRUPTIBLE = ("import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                 "sys.argv[0] = 'stresslab'; runpy.run_module('stresslab.cli', run_name='__main__')")
"""``python -m stresslab.cli`` with Ctrl-C turned back on: a test run from a background job (``cmd &`` in a
script, as CI may be) inherits SIGINT ignored, and Python then never raises KeyboardInterrupt."""


def cli_command(*args: str | Path, interruptible: bool = False) -> list[str]:
    """The argv of ``python -m stresslab.cli ARGS`` with this interpreter (``interruptible``: with SIGINT's
    default handler restored first, :data:`INTERRUPTIBLE`)."""
    start = ["-c", INTERRUPTIBLE] if interruptible else ["-m", "stresslab.cli"]
    return [sys.executable, *start, *map(str, args)]


def stresslab_process(*args: str | Path, cwd: Path | None = None, timeout: float = 600,
                      env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m stresslab.cli ARGS`` in a child process of this checkout, run to the end (text output
    captured; a non-zero exit is returned, not raised). ``env``: extra environment variables."""
    return subprocess.run(cli_command(*args), cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=subprocess_env(**(env or {})), check=False)


CliProcess = Callable[..., subprocess.CompletedProcess]
"""The type of the ``cli_process`` fixture (:func:`stresslab_process`)."""


def start_stresslab_process(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None,
                            interruptible: bool = False) -> subprocess.Popen:
    """``python -m stresslab.cli ARGS`` started in a child process of this checkout (text pipes;
    ``interruptible``: it raises KeyboardInterrupt on SIGINT even where this process ignores SIGINT)."""
    return subprocess.Popen(cli_command(*args, interruptible=interruptible), cwd=cwd,
                            env=env if env is not None else subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
