"""What the kernel reports, declared once by the mechanism that produces it.

Each mechanism module lists its per-path ``OUTPUTS`` (and, where it has any, recorded
``SERIES`` and ``PROBLEMS``); ``market/model.py`` collects them in model order. The
engine computes them, the Dataset gives them their dims, units and long names,
``status`` turns problems into errors and warnings, and the report, the benchmarks and
the tests read the same lists. An entry without known units fails when its module is
imported.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, fields

import jax.numpy as jnp

MONEY = "quote currency"
"""Money: the result Dataset writes the config's ``market.currency`` code (e.g. ``"USD"``) as its ``units``."""
STEP_INDEX = "step index"
"""The first step something happened, 0-based, ``-1`` when it never did (``units = "1"`` and a flag in files)."""
STEP_COUNT = "step count"
"""A number of steps (``units = "1"`` in files)."""
VOLATILITY = "annualised volatility"
"""Standard deviation of log returns scaled to one year (per square root of a year; ``units = "1"`` in files,
since udunits has no fractional powers)."""
UNITS = ("1", MONEY, "s", STEP_INDEX, STEP_COUNT, VOLATILITY)
"""Units an output may carry: a fraction or count ("1"), money, seconds, a step index, a number of steps,
or an annualised volatility. ``stresslab.io.dataset`` turns each into CF attributes (``units`` udunits can
parse, plus a ``comment`` or flags)."""

Compute = Callable[..., jnp.ndarray]
"""``compute(params, static, state, summary)`` at the end of the horizon: (N,) or, per venue, (N, V)."""


def _check_units(name: str, units: str) -> None:
    if units not in UNITS:
        raise ValueError(f"output {name!r}: units {units!r} is not one of {UNITS}")


@dataclass(frozen=True)
class Output:
    """A per-path output: ``name``, ``units``, ``long_name``, how it is ``compute``d, and whether it is
    ``per_venue`` (dims (path, venue), present when the config has two or more venues; else (path,))."""

    name: str
    units: str
    long_name: str
    compute: Compute
    per_venue: bool = False

    def __post_init__(self) -> None:
        _check_units(self.name, self.units)

    @property
    def dims(self) -> tuple[str, ...]:
        return ("path", "venue") if self.per_venue else ("path",)

    def exists(self, n_venues: int) -> bool:
        """Whether a run with ``n_venues`` venues has this output."""
        return n_venues > 1 or not self.per_venue


@dataclass(frozen=True)
class Series:
    """A recorded time series of the first venue: ``record(params, static, state)`` -> (N,) at each record point.
    ``cumulative`` series are stored as the increment since the previous time point."""

    name: str
    units: str
    long_name: str
    record: Compute
    cumulative: bool = False

    def __post_init__(self) -> None:
        _check_units(self.name, self.units)


@dataclass(frozen=True)
class Problem:
    """A problem the kernel records per path in the output ``output``: the first step it happened (-1: never),
    or with ``counted`` the number of steps it happened in. ``fatal`` problems make the numbers untrustworthy
    (an error unless the user asks for warnings); the others are outcomes worth a warning. Mechanisms
    declare these; ``model.PROBLEMS`` enumerates them (:class:`Problems`)."""

    output: str
    mechanism: str
    message: str
    advice: str
    fatal: bool
    counted: bool = False


class Problems(enum.Enum):
    """The enumeration of every problem the kernel records, in the style of diffrax's ``RESULTS``: one member
    per recorded output (``PROBLEMS.floor_step``, ``PROBLEMS["floor_step"]``), iterated in report order, each
    with its ``message``, ``advice``, ``fatal``, ``mechanism`` and ``counted`` (those of its :class:`Problem`)."""

    def __init__(self, problem: Problem) -> None:
        for field in fields(problem):
            setattr(self, field.name, getattr(problem, field.name))

    @classmethod
    def collect(cls, problems) -> type[Problems]:
        """The enumeration of ``problems`` (:class:`Problem` entries), fatal ones first and otherwise in the
        given order (two entries recording the same output fail: TypeError)."""
        ordered = sorted(problems, key=lambda problem: not problem.fatal)
        return cls("PROBLEMS", [(problem.output, problem) for problem in ordered], module=__name__)
