"""The time grid and the helpers every mechanism's ``build`` uses to turn config values into arrays.

``Grid`` is part of ``Static`` (``static.grid``): step length, step count, record
points, venues and dtype. Its methods convert durations in seconds to step
indices and per-step decay factors, venue names to one-hot rows, and Python
numbers to arrays of the scenario's dtype. Nothing here is traced.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

SECONDS_PER_DAY = 86400.0
SECONDS_PER_HOUR = 3600.0
STEP_SLACK = 1e-9
"""Tolerance (in steps) when a time is turned into the step that contains it."""


@dataclass(frozen=True)
class Grid:
    """Shapes and time grid shared by every mechanism (hashable).

    dt_seconds: step length, s.  dt_years: step length, years.  n_steps: steps in the run.
    record_every: steps between recorded time points; n_blocks full blocks then
    ``remainder`` steps (recorded at the end too).  venues: venue names (V of them).
    dtype: "float32" or "float64".  seconds_per_year: length of the year for per-year rates.
    cascade_rounds: cap on the intra-step cascade rounds.
    """

    dt_seconds: float
    dt_years: float
    n_steps: int
    record_every: int
    n_blocks: int
    remainder: int
    venues: tuple[str, ...]
    dtype: str
    seconds_per_year: float
    cascade_rounds: int

    @classmethod
    def of(cls, sim, venues: Sequence[str]) -> Grid:
        """The grid of a validated ``simulation`` section and the config's venue names."""
        seconds_per_year = sim.days_per_year * SECONDS_PER_DAY
        every = max(1, math.ceil(sim.n_steps / sim.record_points))
        return cls(dt_seconds=sim.dt, dt_years=sim.dt / seconds_per_year, n_steps=sim.n_steps,
                   record_every=every, n_blocks=sim.n_steps // every, remainder=sim.n_steps % every,
                   venues=tuple(venues), dtype=sim.dtype, seconds_per_year=seconds_per_year,
                   cascade_rounds=sim.cascade_rounds)

    @property
    def n_venues(self) -> int:
        return len(self.venues)

    @property
    def record_steps(self) -> np.ndarray:
        """Step counts at which the state is recorded (0 = initial)."""
        steps = [b * self.record_every for b in range(self.n_blocks + 1)]
        if self.remainder:
            steps.append(self.n_steps)
        return np.asarray(steps)

    def arr(self, x, dtype=None) -> jnp.ndarray:
        """``x`` as an array of the scenario's float dtype (or of ``dtype``)."""
        if dtype is None:
            return jnp.asarray(np.asarray(x, dtype=np.float64), dtype=jnp.dtype(self.dtype))
        return jnp.asarray(np.asarray(x), dtype=dtype)

    def step_of(self, seconds: float) -> int:
        """Index of the step that contains time ``seconds`` (from the start)."""
        return int(math.floor(seconds / self.dt_seconds + STEP_SLACK))

    def steps_for(self, seconds: float) -> int:
        """Whole steps (at least one) that last about ``seconds``."""
        return max(1, round(seconds / self.dt_seconds))

    def decay(self, half_life: float) -> float:
        """Per-step factor exp(-ln 2 dt / half_life) of an exponential decay with ``half_life`` seconds."""
        return math.exp(-math.log(2.0) * self.dt_seconds / half_life)

    def per_step(self, per_hour: float | None) -> float:
        """Amount per step of a rate ``per_hour`` (None: no limit, inf)."""
        return math.inf if per_hour is None else per_hour * self.dt_seconds / SECONDS_PER_HOUR

    def one_hot(self, venue: str | None) -> list[float]:
        """Row (V,) with 1 at ``venue`` (None: the first venue)."""
        index = self.venues.index(venue) if venue is not None else 0
        return [1.0 if v == index else 0.0 for v in range(self.n_venues)]

    def one_hots(self, venues: Sequence[str | None]) -> np.ndarray:
        """Rows (len(venues), V) of one-hot venues."""
        return np.asarray([self.one_hot(v) for v in venues]).reshape(len(venues), self.n_venues)
