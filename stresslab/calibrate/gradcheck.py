"""Check the smoothed objective's derivatives against central differences, the way the acceptance asks.

Each derivative is expressed as the change of the objective over the control's whole range
(d f / d x x (upper - lower)). Central differences are taken at two steps, ``h`` and ``h / 4``
of the range; the smoothed objective is smooth at that scale when they agree, and ``jax.grad``
is right when it agrees with them. Errors are relative to the larger of the difference and
``1e-3 x |objective|`` (a derivative that changes the objective by less than 0.1 % over the
whole range counts as zero).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np

from stresslab.calibrate.objective import objective, problem

STEPS = (1e-4, 2.5e-5)
"""Central-difference steps, as shares of each control's range."""
FLOOR = 1e-3
"""Derivatives are compared relative to max(|difference|, FLOOR x |objective|)."""


@dataclass(frozen=True)
class Check:
    """One control's derivative at one point: ``ad`` (jax.grad) and the two central differences, each
    times the control's range; ``smooth_error`` |fd_h - fd_h/4| and ``ad_error`` |ad - fd_h|, relative."""

    control: str
    point: dict[str, float]
    temperature: float
    objective: float
    ad: float
    fd: tuple[float, float]
    smooth_error: float
    ad_error: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def interior_points(config: str | Path | Mapping[str, Any], count: int, *, seed: int = 0,
                    overrides: Sequence[str] = ()) -> list[dict[str, float]]:
    """The config's starting values, then ``count`` points drawn uniformly in the middle 80 % of the bounds."""
    prob = problem(config, overrides)
    rng = np.random.default_rng(seed)
    points = [dict(prob.initial)]
    for _ in range(count):
        share = rng.uniform(0.1, 0.9, size=len(prob.names))
        points.append({n: float(lo + (hi - lo) * s)
                       for n, lo, hi, s in zip(prob.names, prob.lower, prob.upper, share, strict=True)})
    return points


def check(config: str | Path | Mapping[str, Any], point: Mapping[str, float], temperature: float, *, paths: int,
          seed: int = 29, overrides: Sequence[str] = ()) -> list[Check]:
    """Compare ``jax.grad`` of the smoothed objective with central differences at ``point``, per control."""
    prob = problem(config, overrides)
    f = objective(config, smooth=True, paths=paths, seed=seed, temperature=temperature, overrides=overrides)
    x = {n: float(point[n]) for n in prob.names}
    value = float(f(x))
    grad = jax.grad(f)(x)
    checks = []
    for name, lo, hi in zip(prob.names, prob.lower, prob.upper, strict=True):
        span = hi - lo
        fd = []
        for h in STEPS:
            up, down = dict(x), dict(x)
            up[name] += h * span
            down[name] -= h * span
            fd.append((float(f(up)) - float(f(down))) / (2 * h))
        ad = float(grad[name]) * span
        scale = max(abs(fd[0]), FLOOR * abs(value))
        checks.append(Check(name, x, float(temperature), value, ad, (fd[0], fd[1]),
                            float(abs(fd[0] - fd[1]) / scale), float(abs(ad - fd[0]) / scale)))
    return checks
