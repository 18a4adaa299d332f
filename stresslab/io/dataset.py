"""Assemble scenario results into one ``xarray.Dataset`` with units and provenance."""

from __future__ import annotations

import numpy as np
import xarray as xr

from stresslab.config.loading import ScenarioSet
from stresslab.engine.runner import ScenarioResult

PER_PATH = {
    "cascade_depth": ("1", "maximum drawdown of the traded price from its start (fraction)"),
    "min_price": ("quote currency", "minimum traded price"),
    "final_price": ("quote currency", "traded price at the horizon"),
    "liquidated_long": ("quote currency", "notional of long positions liquidated"),
    "liquidated_short": ("quote currency", "notional of short positions liquidated"),
    "bad_debt": ("quote currency", "negative equity left by liquidations"),
    "insurance_fund": ("quote currency", "insurance fund at the horizon"),
    "adl_notional": ("quote currency", "notional closed by auto-deleveraging"),
    "socialised_loss": ("quote currency", "bad debt neither the fund nor ADL covered"),
    "penalties": ("quote currency", "liquidation penalties paid to the insurance fund"),
    "realized_vol": ("1/sqrt(year)", "realised volatility of traded log returns, annualised"),
    "min_depth_ratio": ("1", "minimum available depth over the configured depth"),
    "trader_equity": ("quote currency", "traders' returned cash plus open equity at the horizon"),
    "trader_pnl": ("quote currency", "traders' realised plus unrealised PnL"),
    "funding_long": ("quote currency", "funding received by long cohorts (negative: paid)"),
    "funding_short": ("quote currency", "funding received by short cohorts (negative: paid)"),
    "collateral_pnl": ("quote currency", "revaluation of collateral held in an asset (negative: depeg loss)"),
    "min_funding_rate": ("1", "lowest funding payment rate, fraction per funding interval"),
    "max_funding_rate": ("1", "highest funding payment rate, fraction per funding interval"),
    "halted_time": ("s", "time trading was halted (circuit breakers and band pauses)"),
    "halt_count": ("1", "number of halts (breaker levels fired and band pauses)"),
    "max_haircut": ("1", "highest collateral haircut"),
    "mean_haircut": ("1", "collateral haircut averaged over the steps of the run"),
    "haircut_ratio": ("1", "procyclicality: peak over trough haircut during the run"),
    "min_collateral_price": ("1", "lowest price of the collateral asset relative to its peg, as margin saw it"),
    "min_basis": ("1", "lowest traded price over the spot (fundamental) price, minus 1"),
    "defensive_sold": ("quote currency", "notional traded by defensive traders (stops, volatility and VaR limits)"),
    "unstable_step": ("step", "first step with unstable hedging feedback (-1: none)"),
    "rounds_exhausted": ("steps", "steps whose cascade needed more than cascade_rounds rounds"),
    "floor_step": ("step", "first step whose order flow moved the log-price by the model bound (-1: none)"),
    "nonfinite_step": ("step", "first step with a non-finite price, depth, hedge or fund (-1: none)"),
    "fund_exhausted_step": ("step", "first step ending with the insurance fund at zero (-1: none)"),
    "time_to_trough": ("s", "time from the start to the lowest traded price (NaN: never below the start)"),
    "recovery_time": ("s", "time from the trough until the price regained half of the fall, in log terms "
                           "(NaN: not within the horizon)"),
}
PER_VENUE = {
    "venue_cascade_depth": ("1", "maximum drawdown of the venue's traded price from its start (fraction)"),
    "venue_min_price": ("quote currency", "minimum traded price on the venue"),
    "venue_final_price": ("quote currency", "traded price on the venue at the horizon"),
    "venue_liquidated_long": ("quote currency", "notional of long positions liquidated on the venue"),
    "venue_liquidated_short": ("quote currency", "notional of short positions liquidated on the venue"),
    "venue_bad_debt": ("quote currency", "negative equity left by liquidations on the venue"),
    "venue_insurance_fund": ("quote currency", "the venue's insurance fund at the horizon"),
    "venue_halted_time": ("s", "time trading was halted on the venue"),
    "venue_min_collateral_price": ("1", "lowest price of the collateral asset as the venue's margin saw it"),
    "venue_min_basis": ("1", "lowest traded price on the venue over the spot price, minus 1"),
}
"""Per-path outputs along a ``venue`` dimension, present when a config has two or more venues."""
SERIES = {
    "price": ("quote currency", "traded price"),
    "depth": ("1", "available depth over the configured depth"),
    "liquidation": ("quote currency", "notional liquidated since the previous time point"),
}


def _series(result: ScenarioResult) -> dict[str, np.ndarray]:
    rec = result.recorded
    cumulative = rec["liquidated"]
    liquidated = np.diff(cumulative, axis=1, prepend=np.zeros_like(cumulative[:, :1]))  # in the recorded dtype
    return {"price": rec["price"], "depth": rec["depth_ratio"], "liquidation": liquidated}


def assemble(scenarios: ScenarioSet, results: list[ScenarioResult], *, seed: int,
             attrs: dict[str, object]) -> xr.Dataset:
    """Stack per-scenario results along ``scenario``; swept values become coordinates."""
    sim = scenarios.scenarios[0].simulation
    static = results[0].static
    quantiles = np.asarray(sim.quantiles, dtype=float)
    time = (static.record_steps * static.dt_seconds * 1e9).astype("timedelta64[ns]")
    data: dict[str, tuple] = {}
    for name, (units, long_name) in PER_PATH.items():
        stacked = np.stack([r.per_path[name] for r in results])
        data[name] = (("scenario", "path"), stacked, {"units": units, "long_name": long_name})
    for name, (units, long_name) in PER_VENUE.items():
        if name in results[0].per_path:
            stacked = np.stack([r.per_path[name] for r in results])
            data[name] = (("scenario", "path", "venue"), stacked, {"units": units, "long_name": long_name})
    series = [_series(r) for r in results]
    for name, (units, long_name) in SERIES.items():
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
    if static.n_venues > 1:
        coords["venue"] = ("venue", np.asarray(scenarios.scenarios[0].venue_names))
    if sim.keep_paths:
        coords["sample"] = ("sample", np.arange(min(sim.keep_paths, coords["path"][1].size)))
    for name, values in scenarios.coords.items():
        coords[name] = ("scenario", np.asarray(values))
    ds = xr.Dataset(data, coords=coords)
    ds.attrs.update({"seed": seed, "swept": ", ".join(scenarios.axes) or "none", **attrs,
                     "config": scenarios.to_toml()})
    return ds
