"""Assemble scenario results into one ``xarray.Dataset`` with units and provenance."""

from __future__ import annotations

import numpy as np
import xarray as xr

from stresslab.config.loading import ScenarioSet
from stresslab.engine.runner import ScenarioResult
from stresslab.market.model import OUTPUTS, SERIES


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
             attrs: dict[str, object]) -> xr.Dataset:
    """Stack per-scenario results along ``scenario``; swept values become coordinates."""
    sim = scenarios.scenarios[0].simulation
    static = results[0].static
    quantiles = np.asarray(sim.quantiles, dtype=float)
    time = (static.grid.record_steps * static.grid.dt_seconds * 1e9).astype("timedelta64[ns]")
    data: dict[str, tuple] = {}
    for output in OUTPUTS:
        if output.name in results[0].per_path:
            stacked = np.stack([r.per_path[output.name] for r in results])
            data[output.name] = (("scenario", *output.dims), stacked,
                                 {"units": output.units, "long_name": output.long_name})
    series = [_series(r) for r in results]
    for entry in SERIES:
        name, units, long_name = entry.name, entry.units, entry.long_name
        bands = np.stack([np.quantile(s[name], quantiles, axis=0).T.astype(np.float64) for s in series])
        data[f"{name}_quantiles"] = (("scenario", "time", "quantile"), bands,
                                     {"units": units, "long_name": f"quantiles over paths of {long_name}"})
        if sim.keep_paths:
            kept = np.stack([s[name][: sim.keep_paths] for s in series])
            data[f"sample_{name}"] = (("scenario", "sample", "time"), kept,
                                      {"units": units, "long_name": f"{long_name}, sample paths"})
    coords: dict[str, tuple] = {
        "scenario": ("scenario", np.arange(len(results))),
        "path": ("path", np.arange(results[0].per_path["cascade_depth"].shape[0])),
        "time": ("time", time),
        "quantile": ("quantile", quantiles),
    }
    if static.grid.n_venues > 1:
        coords["venue"] = ("venue", np.asarray(scenarios.scenarios[0].venue_names))
    if sim.keep_paths:
        coords["sample"] = ("sample", np.arange(min(sim.keep_paths, coords["path"][1].size)))
    for name, values in scenarios.coords.items():
        coords[name] = ("scenario", np.asarray(values))
    ds = xr.Dataset(data, coords=coords)
    ds.attrs.update({"seed": seed, "swept": ", ".join(scenarios.axes) or "none", **attrs,
                     "config": scenarios.to_toml()})
    return ds
