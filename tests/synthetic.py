"""Synthetic result Datasets shaped like :func:`stresslab.simulate`'s output, built in milliseconds without a run.

The metric, table, figure and report code reads only variables, dims, coords and attrs,
so these stand in for a run wherever the values need not come from the market model
(and can be chosen to give known answers).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from stresslab.io.dataset import cf_attrs
from stresslab.market.model import SERIES, output

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
TIME_POINTS = 7
HORIZON = "1h"
START_PRICE = 100.0
CURRENCY = "USD"
"""``market.currency`` of the synthetic results: the units of their money variables."""
PER_PATH = ("scenario", "path")
BANDS = ("scenario", "time", "level")
OTHER_PER_PATH = ("funding_long", "funding_short", "min_funding_rate", "max_funding_rate", "max_haircut")
"""Per-path variables of a run (funding, haircuts) that no tail metric, table or report section reads.
``others=True`` adds them, with the halts and a per-venue variable, so that a synthetic result has every
kind of variable a run of the full market returns."""
VENUES = ("spot", "perp")
"""Venues of the per-venue variable (``venue_cascade_depth`` on scenario, path, venue) that ``others`` adds."""


FLOAT = np.dtype(np.float32)
"""The dtype of the synthetic per-path variables."""


def attrs(name: str, dtype: np.dtype = FLOAT) -> dict[str, object]:
    """The CF attributes a run gives output ``name`` (or the series behind ``<series>_quantiles``), from the
    registry, money in :data:`CURRENCY`."""
    for series in SERIES:
        if name == f"{series.name}_quantiles":
            return cf_attrs(series.units, f"quantiles over paths of {series.long_name}", CURRENCY, dtype)
    entry = output(name)
    return cf_attrs(entry.units, entry.long_name, CURRENCY, dtype)


def result(scenarios: int = 2, paths: int = 400, *, halts: bool = False, others: bool = False,
           seed: int = 0) -> xr.Dataset:
    """A result with the per-path summaries and quantile bands a report needs, swept over ``market.sigma``.

    Args:
        scenarios: length of the ``scenario`` dim.
        paths: length of the ``path`` dim.
        halts: add ``halted_time`` (s, float32) and ``halt_count`` (int32): about a third
            of the paths halt, each halt lasting 5 minutes.
        others: add the per-path variables of :data:`OTHER_PER_PATH`, a per-venue
            ``venue_cascade_depth`` and the halts.
        seed: of the random values.
    """
    rng = np.random.default_rng(seed)
    shape = (scenarios, paths)
    sigma = 0.5 * (1 + np.arange(scenarios))
    depth = rng.beta(2.0, 20.0, size=shape) * sigma[:, None]
    liquidated = rng.exponential(1e6, size=(2, *shape)) * (rng.uniform(size=(2, *shape)) < 0.4)
    data = {
        "cascade_depth": (PER_PATH, depth.astype(np.float32), attrs("cascade_depth")),
        "liquidated_long": (PER_PATH, liquidated[0].astype(np.float32), attrs("liquidated_long")),
        "liquidated_short": (PER_PATH, liquidated[1].astype(np.float32), attrs("liquidated_short")),
        "bad_debt": (PER_PATH, (rng.exponential(1e4, size=shape) * (depth > 0.1)).astype(np.float32),
                     attrs("bad_debt")),
    }
    levels = np.asarray(QUANTILES)
    spread = np.linspace(0.0, 1.0, TIME_POINTS)[None, :, None] * sigma[:, None, None]
    z = np.sort(rng.normal(size=levels.size))[None, None, :]
    data["price_quantiles"] = (BANDS, START_PRICE * np.exp(0.05 * spread * z), attrs("price_quantiles"))
    data["depth_quantiles"] = (BANDS, 1.0 - 0.2 * spread * levels[::-1], attrs("depth_quantiles"))
    data["liquidation_quantiles"] = (BANDS, 1e5 * spread * levels, attrs("liquidation_quantiles"))
    if halts or others:
        count = rng.integers(0, 3, size=shape) * (rng.uniform(size=shape) < 0.5)
        data["halted_time"] = (PER_PATH, (300.0 * count).astype(np.float32), attrs("halted_time"))
        data["halt_count"] = (PER_PATH, count.astype(np.int32), attrs("halt_count"))
    if others:
        for name in OTHER_PER_PATH:
            data[name] = (PER_PATH, rng.normal(size=shape).astype(np.float32), attrs(name))
        per_venue = rng.beta(2.0, 20.0, size=(*shape, len(VENUES))).astype(np.float32)
        data["venue_cascade_depth"] = ((*PER_PATH, "venue"), per_venue, attrs("venue_cascade_depth"))
    coords = {
        "scenario": np.arange(scenarios), "path": np.arange(paths),
        "time": pd.timedelta_range(0, HORIZON, periods=TIME_POINTS).to_numpy(), "level": levels,
        "market.sigma": ("scenario", sigma),
    }
    if others:
        coords["venue"] = np.asarray(VENUES)
    config = '[market]\nsigma = "swept"\n' + ("[breakers]\nenabled = true\n" if halts or others else "")
    return xr.Dataset(data, coords=coords, attrs={"seed": seed, "paths": paths, "swept": "market.sigma",
                                                   "currency": CURRENCY, "config": config})


def with_halts(halted_time: np.ndarray, halt_count: np.ndarray) -> xr.Dataset:
    """A Dataset of just the two halt variables, given as (scenario, path) arrays, with a swept coordinate."""
    halted_time, halt_count = np.atleast_2d(halted_time), np.atleast_2d(halt_count)
    thresholds = 0.05 * (1 + np.arange(halted_time.shape[0]))
    return xr.Dataset(
        {"halted_time": (PER_PATH, halted_time, {"units": "s", "long_name": "time halted"}),
         "halt_count": (PER_PATH, halt_count, {"units": "1", "long_name": "number of halts"})},
        coords={"scenario": np.arange(thresholds.size), "breakers.threshold": ("scenario", thresholds)},
    )
