"""Assemble scenario results into one ``xarray.Dataset`` with CF-1.10 attributes and provenance.

What the files say (CF conventions, checked by ``tests/test_conventions.py`` with cf-xarray):

- every data variable and coordinate has a ``long_name``; every numeric one a ``units``
  udunits can parse (``"1"`` for fractions, counts and indices, ``"s"`` for seconds),
  except money, whose ``units`` is the config's ``market.currency`` code (``"USD"``);
- an annualised volatility has ``units = "1"`` and a ``comment`` saying it is per square
  root of a year (udunits has no fractional powers);
- a first-step index (``unstable_step``, ``fund_exhausted_step``, …) is an integer with
  ``-1`` for "never", declared as ``flag_values = -1`` / ``flag_meanings = "never"``: not a
  ``_FillValue``, so readers keep the integers instead of masking them to NaN floats;
- ``time`` is the offset from the start of the run (a timedelta; files store it as a
  number with ``units`` such as ``"seconds"``), ``axis = "T"``;
- with ``simulation.start``, a ``clock`` coordinate along ``time`` holds the UTC time (datetime64);
- the band dim is ``level`` (the probability level of each quantile band), so that
  ``ds.quantile(q, dim="path")`` works;
- global ``Conventions``, ``title``, ``history`` (UTC time and command), ``source``,
  ``date_created``, and ``config_name`` when the config file is known.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from stresslab import provenance
from stresslab.config.loading import ScenarioSet
from stresslab.engine.runner import ScenarioResult
from stresslab.market.model import OUTPUTS, SERIES
from stresslab.market.outputs import MONEY, STEP_COUNT, STEP_INDEX, VOLATILITY

CONVENTIONS = "CF-1.10"
LEVEL_DIM = "level"
"""The dim of the quantile bands over paths: the probability level of each band, in (0, 1)."""
NEVER = -1
"""The value of a first-step index when the event never happened."""
DIMENSIONLESS = "1"
COORDINATE_ATTRS: dict[str, dict[str, str]] = {
    "scenario": {"long_name": "scenario index (one per point of the sweep grid)", "units": DIMENSIONLESS},
    "path": {"long_name": "simulated path index", "units": DIMENSIONLESS},
    "time": {"long_name": "time since the start of the run", "axis": "T"},
    LEVEL_DIM: {"long_name": "probability level of the quantile over paths", "units": DIMENSIONLESS},
    "sample": {"long_name": "index of a kept sample path (the first paths of the run)", "units": DIMENSIONLESS},
    "venue": {"long_name": "trading venue"},
}
"""CF attributes of the coordinates; swept config fields get theirs from :func:`_swept_attrs`."""


def cf_attrs(units: str, long_name: str, currency: str, dtype: np.dtype) -> dict[str, object]:
    """CF attributes of a variable whose registry ``units`` (``stresslab.market.outputs.UNITS``) is ``units``.

    Money gets ``currency`` as its units; step indices, step counts and volatilities ``"1"``
    with a ``comment``; a step index also the flag of its ``-1`` value, in its own ``dtype``.
    """
    attrs: dict[str, object] = {"long_name": long_name}
    if units == MONEY:
        attrs["units"] = currency
    elif units == STEP_INDEX:
        attrs.update(units=DIMENSIONLESS, comment=f"index of a simulation step, 0 = the first; {NEVER}: never",
                     flag_values=np.asarray(NEVER, dtype=dtype)[()], flag_meanings="never")
    elif units == STEP_COUNT:
        attrs.update(units=DIMENSIONLESS, comment="a number of simulation steps")
    elif units == VOLATILITY:
        attrs.update(units=DIMENSIONLESS, comment="annualised: standard deviation of log returns over one year, "
                                                  "per square root of a year")
    else:
        attrs["units"] = units
    return attrs


def _series(result: ScenarioResult) -> dict[str, np.ndarray]:
    """Recorded series (paths, T_rec); cumulative ones as increments since the previous time point."""
    out = {}
    for series in SERIES:
        values = result.recorded[series.name]
        if series.cumulative:  # in the recorded dtype
            values = np.diff(values, axis=1, prepend=np.zeros_like(values[:, :1]))
        out[series.name] = values
    return out


def assemble(scenarios: ScenarioSet, results: list[ScenarioResult], *, seed: int,
             attrs: dict[str, object], source: str | None = None) -> xr.Dataset:
    """Stack per-scenario results along ``scenario``; swept values become coordinates.

    Args:
        scenarios: the run's scenarios.
        results: one per scenario, in order.
        seed: the run's seed.
        attrs: provenance attributes (versions, devices, commit, paths).
        source: the config's name (e.g. its file's stem) for ``config_name`` and ``title``;
            default: the config file of a ``stresslab run`` command line, when there is one.
    """
    first = scenarios.scenarios[0]
    sim, currency = first.simulation, first.market.currency
    static = results[0].static
    quantiles = np.asarray(sim.quantiles, dtype=float)
    time = (static.grid.record_steps * static.grid.dt_seconds * 1e9).astype("timedelta64[ns]")
    data: dict[str, tuple] = {}
    for output in OUTPUTS:
        if output.name in results[0].per_path:
            stacked = np.stack([r.per_path[output.name] for r in results])
            data[output.name] = (("scenario", *output.dims), stacked,
                                 cf_attrs(output.units, output.long_name, currency, stacked.dtype))
    series = [_series(r) for r in results]
    for entry in SERIES:
        name, units, long_name = entry.name, entry.units, entry.long_name
        bands = np.stack([np.quantile(s[name], quantiles, axis=0).T.astype(np.float64) for s in series])
        data[f"{name}_quantiles"] = (("scenario", "time", LEVEL_DIM), bands,
                                     cf_attrs(units, f"quantiles over paths of {long_name}", currency, bands.dtype))
        if sim.keep_paths:
            kept = np.stack([s[name][: sim.keep_paths] for s in series])
            data[f"sample_{name}"] = (("scenario", "sample", "time"), kept,
                                      cf_attrs(units, f"{long_name}, sample paths", currency, kept.dtype))
    coords: dict[str, tuple] = {
        "scenario": ("scenario", np.arange(len(results))),
        "path": ("path", np.arange(results[0].per_path["cascade_depth"].shape[0])),
        "time": ("time", time),
        LEVEL_DIM: (LEVEL_DIM, quantiles),
    }
    if static.grid.n_venues > 1:
        coords["venue"] = ("venue", np.asarray(first.venue_names))
    if sim.keep_paths:
        coords["sample"] = ("sample", np.arange(min(sim.keep_paths, coords["path"][1].size)))
    coords = {name: (*value, COORDINATE_ATTRS[name]) for name, value in coords.items()}
    if sim.start is not None:  # the real clock: ds.swap_dims(time="clock") indexes by UTC time
        start = np.datetime64(sim.start.replace(tzinfo=None), "ns")
        coords["clock"] = ("time", start + time, {"long_name": "UTC time (simulation.start + time)"})
    for name, values in scenarios.coords.items():
        coords[name] = ("scenario", np.asarray(values), _swept_attrs(name))
    ds = xr.Dataset(data, coords=coords)
    name = source if source is not None else scenarios.name or provenance.config_name()
    created = provenance.now()
    ds.attrs.update({
        "Conventions": CONVENTIONS,
        "title": f"stresslab stress test{f': {name}' if name else ''}",
        "history": f"{created} {provenance.command()}",
        "source": " ".join(str(part) for part in ("stresslab", attrs.get("stresslab_version"), "Monte Carlo simulation")
                           if part),
        "date_created": created,
        **({"config_name": name} if name else {}),
        "currency": currency,
        "seed": seed, "swept": ", ".join(scenarios.axes) or "none", **attrs,
        "config": scenarios.to_toml(),
    })
    return ds


def _swept_attrs(name: str) -> dict[str, str]:
    """``long_name`` and ``comment`` of the coordinate of the swept config field ``name`` (e.g. ``"market.sigma"``):
    its values are in the config's units (README "Units"), which the schema gives per field, not as udunits."""
    return {"long_name": f"config field {name} (swept)", "comment": "in the units of the config field"}
