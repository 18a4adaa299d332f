"""Shared by the tests that split one run over devices or processes: a small two-scenario config
with liquidations, and comparison helpers."""

from __future__ import annotations

import os
from pathlib import Path

import xarray as xr

import stresslab

CONFIG = """
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


def without(ds: xr.Dataset, names: tuple[str, ...]) -> xr.Dataset:
    """``ds`` without the attributes ``names``."""
    out = ds.copy()
    out.attrs = {k: v for k, v in ds.attrs.items() if k not in names}
    return out


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for a child Python that imports this checkout of stresslab."""
    root = str(Path(stresslab.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}
