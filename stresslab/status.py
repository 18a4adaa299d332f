"""Turn the status data the kernel records per path into clear errors and warnings.

Kernels never raise: they record the first step of each problem per path. Here,
at the edge, each problem is reported once per scenario with its mechanism, the
share of paths affected and the first step it happened in (as the span of time it covers).
"""

from __future__ import annotations

import warnings

import numpy as np

from stresslab.config.units import format_clock
from stresslab.errors import RunError
from stresslab.market.model import PROBLEMS


def report(per_path: dict[str, np.ndarray], scenario: int, dt_seconds: float, on_error: str) -> None:
    """Raise (``on_error="raise"``) or warn for each problem recorded in a scenario's paths.

    Raises:
        RunError: a problem that makes the numbers untrustworthy, when on_error is "raise".
    """
    for problem in PROBLEMS:
        recorded = per_path[problem.output]
        hit = recorded > 0 if problem.counted else recorded >= 0
        if not hit.any():
            continue
        if problem.counted:
            message = (f"scenario {scenario}, {problem.mechanism}: on {hit.mean():.2%} of paths {problem.message}; "
                       f"{problem.advice}")
        else:
            first = int(recorded[hit].min())
            message = (f"scenario {scenario}, {problem.mechanism}: {problem.message} on {hit.mean():.2%} of paths, "
                       f"first in the step from {format_clock(first * dt_seconds)} to "
                       f"{format_clock((first + 1) * dt_seconds)} (step {first}, counted from 0); {problem.advice}")
        if problem.fatal and on_error == "raise":
            raise RunError(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)
