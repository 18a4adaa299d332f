"""Turn the status data the kernel records per path into clear errors and warnings.

Kernels never raise: they record the first step of each problem per path. Here,
at the edge, each problem is reported once per scenario with its mechanism, the
share of paths affected and the first step (and time) it happened.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from stresslab.config.units import format_duration
from stresslab.errors import StresslabError


@dataclass(frozen=True)
class _Problem:
    field: str
    mechanism: str
    what: str
    advice: str
    fatal: bool


PROBLEMS = (
    _Problem("unstable_step", "dealer hedging",
             "hedging feedback became unstable (dealer gamma / available depth >= 1)",
             "lower dealers.gamma, raise liquidity.depth, or reduce liquidity.withdrawal/depletion", True),
    _Problem("floor_step", "price impact", "order flow exhausted the book: one step's flow moved the log-price by "
             "the model bound (a fall of more than 99.99 %)",
             "raise liquidity.depth, lower liquidity.depletion, or cap liquidation.max_order / price_collar", True),
    _Problem("nonfinite_step", "numerics", "the state became non-finite (NaN or infinite price, depth, hedge or fund)",
             "use simulation.dtype = 'float64' or check the config for extreme values", True),
    _Problem("fund_exhausted_step", "insurance fund", "the insurance fund was exhausted",
             "this is an outcome, not an error: later bad debt went to ADL or socialised loss", False),
)


def report(per_path: dict[str, np.ndarray], scenario: int, dt_seconds: float, on_error: str) -> None:
    """Raise (``on_error="raise"``) or warn for each problem recorded in a scenario's paths.

    Raises:
        StresslabError: a problem that makes the numbers untrustworthy, when on_error is "raise".
    """
    for problem in PROBLEMS:
        steps = per_path[problem.field]
        hit = steps >= 0
        if not hit.any():
            continue
        first = int(steps[hit].min())
        message = (f"scenario {scenario}, {problem.mechanism}: {problem.what} on {hit.mean():.2%} of paths, "
                   f"first at step {first} (t = {format_duration((first + 1) * dt_seconds)}); {problem.advice}")
        if problem.fatal and on_error == "raise":
            raise StresslabError(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)
    exhausted = per_path["rounds_exhausted"]
    if exhausted.any():
        warnings.warn(
            f"scenario {scenario}, cascade rounds: on {np.mean(exhausted > 0):.2%} of paths a cascade needed more "
            "than simulation.cascade_rounds rounds in a step and continued into the next step; "
            "raise simulation.cascade_rounds to resolve it within the step",
            RuntimeWarning, stacklevel=3,
        )
