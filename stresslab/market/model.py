"""The market model as a whole: build its parts from a config, start its state, and read its outputs.

``build(config)`` returns ``Params`` (a ``Parts`` of array pytrees: everything a user may
sweep or calibrate) and ``Static`` (a hashable ``Parts`` of shapes, switches, the time
grid and the rules), one part per mechanism of ``step.MECHANISMS``. The registry of
per-path ``OUTPUTS``, recorded ``SERIES`` and ``PROBLEMS`` is collected here from the
mechanism modules, in model order; the engine, the Dataset, ``status``, the report, the
benchmarks and the tests read it. Nothing here imports the config schema at run time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax.numpy as jnp

from stresslab.market import clearing, rules
from stresslab.market.grid import Grid
from stresslab.market.outputs import STEP_COUNT, STEP_INDEX, Output, Problems, Series
from stresslab.market.parts import Parts
from stresslab.market.step import MECHANISMS

if TYPE_CHECKING:
    from stresslab.config.schema import Config

Params = Parts
Static = Parts

SERIES: tuple[Series, ...] = tuple(series for _, module in MECHANISMS for series in getattr(module, "SERIES", ()))
"""Recorded series, first venue, at every record point."""
OUTPUTS: tuple[Output, ...] = (
    *(output for _, module in MECHANISMS for output in getattr(module, "OUTPUTS", ())),
    *clearing.OUTPUTS,
)
"""Per-path outputs at the end of the horizon: prices from the first venue, money summed over venues, and
``venue_*`` outputs (path, venue) with two or more venues."""
PROBLEMS = Problems.collect(
    (*clearing.PROBLEMS, *(problem for _, module in MECHANISMS for problem in getattr(module, "PROBLEMS", ()))))
"""The enumeration of the problems the kernel records per path, in the order they are reported (fatal ones
first): ``for problem in PROBLEMS``, ``PROBLEMS.floor_step.advice``."""


def _check_registry() -> None:
    """Fail at import on a name declared twice or a problem without a step-index or step-count output."""
    for entries, kind in ((OUTPUTS, "outputs"), (SERIES, "series")):
        names = [e.name for e in entries]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"{kind} declared twice: {repeated}")
    steps = {o.name for o in OUTPUTS if o.units in (STEP_INDEX, STEP_COUNT)}
    unrecorded = [problem.output for problem in PROBLEMS if problem.output not in steps]
    if unrecorded:
        raise ValueError(f"problems without a step-index or step-count output: {unrecorded}")


_check_registry()


def output(name: str) -> Output:
    """The registry entry of per-path output ``name``."""
    for o in OUTPUTS:
        if o.name == name:
            return o
    raise KeyError(f"no output {name!r}")


def build(config: Config, smooth: bool = False) -> tuple[Parts, Parts]:
    """Turn one validated scenario into kernel inputs: (Params, Static).

    ``smooth`` chooses the relaxed rules (calibration) instead of the hard ones.
    """
    grid = Grid.of(config.simulation, config.venue_names)
    params = {"rules": rules.RulesParams(temperature=grid.arr(rules.DEFAULT_TEMPERATURE))}
    static = {"grid": grid, "rules": rules.Smooth() if smooth else rules.Hard()}
    for name, module in MECHANISMS:
        params[name], static[name] = module.build(config, grid)
    return Parts(**params), Parts(**static)


def init(params: Parts, static: Parts, n: int) -> tuple[Parts, Parts]:
    """The state and the online summary of ``n`` paths at the start."""
    state = {name: m.init(params, static, n) for name, m in MECHANISMS if hasattr(m, "init")}
    summary = {name: m.init_summary(params, static, n) for name, m in MECHANISMS if hasattr(m, "init_summary")}
    return Parts(**state), Parts(**summary, problems=clearing.init_problems(n))


def finish(params: Parts, static: Parts, state: Parts, summary: Parts) -> dict[str, jnp.ndarray]:
    """Per-path outputs {name: (N,) or (N, V)} at the end of the horizon."""
    n_venues = static.grid.n_venues
    return {o.name: o.compute(params, static, state, summary) for o in OUTPUTS if o.exists(n_venues)}


def record(params: Parts, static: Parts, state: Parts) -> dict[str, jnp.ndarray]:
    """Recorded series {name: (N,)} at one time point (cumulative series as running totals)."""
    return {s.name: s.record(params, static, state) for s in SERIES}


def n_draws(static: Parts) -> int:
    """Uniforms drawn per path and step: the price's, then the noise traders' (``noise_traders.pre_flow``)."""
    return static.price.n_draws + static.noise_traders.n_draws
