"""Shared test helpers: small float64 configs and standard-error tolerances."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

SIGMAS = 4.0
"""Monte Carlo tolerance, in standard errors (VALIDATION.md)."""


def within(estimate: float, expected: float, stderr: float, bias: float = 0.0) -> bool:
    """True when |estimate - expected| <= SIGMAS * stderr + bias."""
    return abs(estimate - expected) <= SIGMAS * stderr + bias


def proportion_stderr(p: float, n: int) -> float:
    return float(np.sqrt(max(p * (1 - p), 1e-12) / n))
