"""CMA-ES (pycma) in a box: the global search that calibration and ``stresslab fit`` share.

The search runs in the box scaled to [0, 1] per coordinate; each generation's candidates are evaluated in one
call, so a caller can simulate them together. Non-finite values rank worst.

Two ways to keep candidates in the box (pycma's boundary handlers). ``"transform"`` maps every sample into the
box through a smooth periodic transform: a bound is reached only in the limit, so an optimum on a face or in a
corner is approached slowly. ``"penalty"`` puts a sample that falls outside on the nearest point of the box and
ranks it by its value there plus a penalty on the distance: the faces are reached exactly. Calibration uses
``"penalty"`` (its optimum is often on a face: no haircut, the shortest halt); ``stresslab fit`` uses
``"transform"`` (a scenario's parameters fit inside their bounds). Measured in docs/calibration.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import cma
import numpy as np


def finite_or_worst(values: np.ndarray) -> np.ndarray:
    """Non-finite values ranked worst (above every finite one), so CMA-ES moves away from them."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    worst = (np.max(np.abs(values[finite])) * 2 + 1) if finite.any() else 1.0
    return np.where(finite, values, worst)


def minimise(evaluate: Callable[[np.ndarray], np.ndarray], lower: np.ndarray, upper: np.ndarray,
             start: np.ndarray, *, generations: int, sigma: float, seed: int, population: int | None = None,
             on_generation: Callable[[np.ndarray, np.ndarray], None] | None = None,
             bounds: Literal["penalty", "transform"] = "transform") -> tuple[float, np.ndarray]:
    """Minimise ``evaluate`` over the box [lower, upper] from ``start``.

    Args:
        evaluate: candidates (K, d) -> values (K,).
        lower, upper, start: (d,) bounds and the first mean (inside the box).
        generations: CMA-ES generations.
        sigma: the initial step, a share of each coordinate's range.
        seed: pycma's seed (the same seed repeats the search).
        population: candidates per generation (default pycma's 4 + 3 ln d).
        on_generation: called with each generation's candidates and values.
        bounds: how samples are kept in the box (module docstring).

    Returns:
        The best value seen and its candidate.
    """
    lower, upper = np.asarray(lower, np.float64), np.asarray(upper, np.float64)
    span = upper - lower
    handler = {"penalty": cma.BoundPenalty, "transform": cma.BoundTransform}[bounds]
    options = {"bounds": [0.0, 1.0], "BoundaryHandler": handler, "seed": seed, "verbose": -9}
    if population is not None:
        options["popsize"] = population
    d = len(lower)
    # pycma needs two dimensions at least: a single coordinate gets an ignored second one
    x0 = np.concatenate([np.clip((np.asarray(start, np.float64) - lower) / span, 0.0, 1.0),
                         np.full(max(0, 2 - d), 0.5)])
    es = cma.CMAEvolutionStrategy(list(x0), sigma, options)
    best = (np.inf, np.asarray(start, np.float64))
    for _ in range(generations):
        unit = np.clip(np.asarray(es.ask()), 0.0, 1.0)
        candidates = lower + span * unit[:, :d]
        values = np.asarray(evaluate(candidates), np.float64)
        ranked = finite_or_worst(values)
        es.tell(list(unit), list(ranked))
        i = int(np.argmin(ranked))
        if values[i] < best[0]:
            best = (float(values[i]), candidates[i])
        if on_generation is not None:
            on_generation(candidates, values)
    return best
