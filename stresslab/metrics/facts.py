"""Stylised facts of a crash day, one implementation for a real price series and for simulated sample paths.

A price series here is an ``xarray.DataArray`` with a regular ``time`` dimension (datetime64 for real data,
timedelta64 from the start for simulated paths) whose first value is the price at the window's start and whose
later values are the prices at the end of each interval (for 1-minute bars: the first bar's open, then every
close). Any other dims (``scenario``, ``sample``) are kept, so :func:`facts` of 1000 sample paths is one call.

The facts (all fractions unless said otherwise; returns are simple returns, ``p_b / p_a - 1``):

- ``drawdown_from_start``: ``1 - min(p) / p_0``, how far the price fell below where the window started.
- ``max_drawdown``: ``max_t (1 - p_t / max_{s <= t} p_s)``, the largest fall from a running peak.
- ``peak_to_trough_time`` (s): from that peak (the last time before the trough that the price stood at it) to the
  trough (the first time the largest drawdown is reached).
- ``trough_time`` (s): from the window's start to that trough (when the low came, on the real clock).
- ``retrace_1h``: the share of that fall regained one hour after the trough,
  ``(p(trough + 1 h) - p_trough) / (p_peak - p_trough)``, taken at the window's end if that comes sooner;
  NaN when the price never fell.
- ``retrace_end``: the same share at the window's end.
- ``end_return``: ``p_end / p_0 - 1``.
- ``largest_fall_1min``, ``largest_fall_5min``: the most negative return over any 1 (5) minutes of the window,
  ``min_t p(t + 1 min) / p(t) - 1`` (negative; needs prices at least every minute).
- ``realized_vol`` (per square-root year): ``sqrt(sum of squared log returns / window length in years)``.
- ``max_hourly_vol`` (per square-root year): the highest realised volatility over any one-hour window.
- ``return_p01``, ``return_p99``: the 1 % and 99 % quantiles of the 1-minute log returns (the return tails).
- ``excess_kurtosis``: of the 1-minute log returns (0 for a normal distribution).

Years are ``days_per_year`` days of 24 hours (365 by default, as crypto trades around the clock).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

MINUTE = 60.0
HOUR = 3600.0


@dataclass(frozen=True)
class Fact:
    """One stylised fact: its variable ``name``, ``units``, a ``long_name``, how it is shown (``display``:
    "percent" for fractions, "minutes" for durations, "number" otherwise) and the ``tolerance`` a fit aims for
    (in ``units``: ``stresslab fit`` weighs each fact's miss by it)."""

    name: str
    units: str
    long_name: str
    display: str
    tolerance: float


FACTS: tuple[Fact, ...] = (
    Fact("drawdown_from_start", "1", "drawdown from the start price", "percent", 0.01),
    Fact("max_drawdown", "1", "largest fall from a running peak", "percent", 0.01),
    Fact("peak_to_trough_time", "s", "time from the peak to the trough of the largest fall", "minutes", 600.0),
    Fact("trough_time", "s", "time from the window's start to the trough of the largest fall", "minutes", 600.0),
    Fact("retrace_1h", "1", "share of the fall regained 1 h after the trough", "number", 0.05),
    Fact("retrace_end", "1", "share of the fall regained at the window's end", "number", 0.05),
    Fact("end_return", "1", "end price over start price, minus 1", "percent", 0.01),
    Fact("largest_fall_1min", "1", "largest 1-minute fall", "percent", 0.005),
    Fact("largest_fall_5min", "1", "largest 5-minute fall", "percent", 0.01),
    Fact("realized_vol", "1", "realised volatility of the window, per square root of a year", "number", 0.25),
    Fact("max_hourly_vol", "1", "highest realised volatility over one hour, per square root of a year", "number", 0.5),
    Fact("return_p01", "1", "1 % quantile of 1-minute log returns", "percent", 0.001),
    Fact("return_p99", "1", "99 % quantile of 1-minute log returns", "percent", 0.001),
    Fact("excess_kurtosis", "1", "excess kurtosis of 1-minute log returns", "number", 2.0),
)
"""Every fact :func:`facts` computes, in order."""


def spacing_seconds(time: xr.DataArray | np.ndarray) -> float:
    """The regular spacing of a time coordinate in seconds; ``ValueError`` if it is not regular."""
    values = np.asarray(time)
    if values.size < 2:
        raise ValueError("facts need a price series of at least two time points")
    steps = np.diff(values).astype("timedelta64[ns]").astype(np.int64) / 1e9
    if not np.allclose(steps, steps[0], rtol=0, atol=1e-6) or steps[0] <= 0:
        raise ValueError("facts need prices on a regular time grid (the time coordinate's spacing varies)")
    return float(steps[0])


def _lag(spacing: float, seconds: float, what: str) -> int:
    lag = seconds / spacing
    if lag < 1 or abs(lag - round(lag)) > 1e-9:
        raise ValueError(f"{what} needs prices at least every {seconds:g} s, on a grid that divides it "
                         f"(the series has one price every {spacing:g} s)")
    return int(round(lag))


def _window_min(returns: np.ndarray, lag: int) -> np.ndarray:
    """``min_t p(t + lag) / p(t) - 1`` from log prices ``returns`` (..., n)."""
    if returns.shape[-1] <= lag:
        return np.full(returns.shape[:-1], np.nan)
    return np.expm1(np.min(returns[..., lag:] - returns[..., :-lag], axis=-1))


def _facts(p: np.ndarray, spacing: float, days_per_year: float) -> dict[str, np.ndarray]:
    """Every fact of prices ``p`` (..., n) on a grid of ``spacing`` seconds."""
    p = np.asarray(p, dtype=np.float64)
    n = p.shape[-1]
    index = np.arange(n)
    log_p = np.log(p)
    peak_so_far = np.maximum.accumulate(p, axis=-1)
    drawdown = 1.0 - p / peak_so_far
    trough = np.argmax(drawdown, axis=-1)[..., None]
    before = np.where(index <= trough, p, -np.inf)[..., ::-1]
    peak = n - 1 - np.argmax(before, axis=-1)[..., None]  # the last time at the peak before the trough
    p_trough = np.take_along_axis(p, trough, -1)[..., 0]
    p_peak = np.take_along_axis(p, peak, -1)[..., 0]
    fall = p_peak - p_trough
    later = np.minimum(trough + _lag(spacing, HOUR, "retrace_1h"), n - 1)
    p_later = np.take_along_axis(p, later, -1)[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        retrace_1h = np.where(fall > 0, (p_later - p_trough) / fall, np.nan)
        retrace_end = np.where(fall > 0, (p[..., -1] - p_trough) / fall, np.nan)
    window_years = (n - 1) * spacing / (days_per_year * 86_400.0)
    returns = np.diff(log_p, axis=-1)
    minute = _lag(spacing, MINUTE, "the 1-minute facts")
    minute_returns = log_p[..., minute:] - log_p[..., :-minute]
    hour = _lag(spacing, HOUR, "max_hourly_vol")
    squares = np.concatenate([np.zeros((*p.shape[:-1], 1)), np.cumsum(returns**2, axis=-1)], axis=-1)
    if n > hour:
        hourly = np.sqrt(np.max(squares[..., hour:] - squares[..., :-hour], axis=-1) * days_per_year * 24.0)
    else:
        hourly = np.full(p.shape[:-1], np.nan)
    centred = minute_returns - minute_returns.mean(axis=-1, keepdims=True)
    variance = np.mean(centred**2, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        kurtosis = np.mean(centred**4, axis=-1) / variance**2 - 3.0
    return {
        "drawdown_from_start": 1.0 - p.min(axis=-1) / p[..., 0],
        "max_drawdown": np.take_along_axis(drawdown, trough, -1)[..., 0],
        "peak_to_trough_time": (trough - peak)[..., 0] * spacing,
        "trough_time": trough[..., 0] * spacing,
        "retrace_1h": retrace_1h,
        "retrace_end": retrace_end,
        "end_return": p[..., -1] / p[..., 0] - 1.0,
        "largest_fall_1min": _window_min(log_p, minute),
        "largest_fall_5min": _window_min(log_p, _lag(spacing, 5 * MINUTE, "largest_fall_5min")),
        "realized_vol": np.sqrt(squares[..., -1] / window_years),
        "max_hourly_vol": hourly,
        "return_p01": np.quantile(minute_returns, 0.01, axis=-1),
        "return_p99": np.quantile(minute_returns, 0.99, axis=-1),
        "excess_kurtosis": kurtosis,
    }


def facts(prices: xr.DataArray, *, dim: str = "time", days_per_year: float = 365.0) -> xr.Dataset:
    """The stylised facts (module docstring) of every price series in ``prices`` along ``dim``.

    Args:
        prices: prices with a regular time coordinate ``dim``: its first value the price at the window's start.
            Other dims are kept.
        dim: the time dimension.
        days_per_year: length of a year for the volatilities, in 24-hour days.

    Returns:
        One variable per fact (``FACTS``), with ``units`` and ``long_name``, over the dims other than ``dim``.

    Raises:
        ValueError: no ``dim`` coordinate, an irregular grid, prices less often than every minute, or prices
            that are not all positive and finite.
    """
    if dim not in prices.dims or dim not in prices.coords:
        raise ValueError(f"facts need a {dim!r} dimension with a time coordinate (got dims {tuple(prices.dims)})")
    values = prices.transpose(..., dim)
    data = np.asarray(values.values, dtype=np.float64)
    if not (np.isfinite(data).all() and (data > 0).all()):
        raise ValueError("facts need positive, finite prices (the series has missing, zero or negative values)")
    computed = _facts(data, spacing_seconds(prices[dim]), days_per_year)
    dims = values.dims[:-1]
    coords = {name: coord for name, coord in values.coords.items() if dim not in coord.dims}
    return xr.Dataset({fact.name: (dims, computed[fact.name], {"units": fact.units, "long_name": fact.long_name})
                       for fact in FACTS}, coords=coords)


def compare(real: xr.Dataset, simulated: xr.Dataset, *, dim: str = "sample",
            band: tuple[float, float] = (0.05, 0.95)) -> pd.DataFrame:
    """Real facts against the simulated distribution: one row per fact.

    Args:
        real: :func:`facts` of one real series (no dims).
        simulated: :func:`facts` of simulated paths along ``dim`` (one scenario).
        dim: the dimension of the simulated paths.
        band: the quantile levels of the simulated band.

    Returns:
        Columns ``real``, ``median``, ``low``, ``high`` (the band's quantiles) and ``inside`` (the real value lies
        in the band), indexed by fact name; NaN paths (a path that never fell has no retrace) are left out.
    """
    extra = sorted(set(simulated.dims) - {dim})
    if extra:
        raise ValueError(f"compare needs the facts of one scenario; select one first (extra dims {extra})")
    rows = {}
    for fact in FACTS:
        sim = np.asarray(simulated[fact.name].values, dtype=np.float64)
        sim = sim[np.isfinite(sim)]
        value = float(real[fact.name])
        low, median, high = (np.quantile(sim, [band[0], 0.5, band[1]]) if sim.size else (np.nan,) * 3)
        rows[fact.name] = {"real": value, "median": median, "low": low, "high": high,
                           "inside": bool(low <= value <= high)}
    return pd.DataFrame.from_dict(rows, orient="index")


def of_result(ds: xr.Dataset, *, days_per_year: float = 365.0) -> xr.Dataset:
    """The facts of a result's sample paths (``sample_price``), per scenario and sample.

    Raises:
        ValueError: the result kept no sample paths, or recorded them less often than every minute (the message
            says which ``simulation`` settings to change).
    """
    if "sample_price" not in ds:
        raise ValueError("facts need sample paths: run with simulation.keep_paths > 0 (e.g. --set "
                         "simulation.keep_paths=1000) and simulation.record_points equal to the number of steps")
    spacing = spacing_seconds(ds["time"])
    if spacing > MINUTE or MINUTE % spacing > 1e-9:
        raise ValueError(f"facts need prices every minute, but this result recorded one every {spacing:g} s: "
                         "set simulation.record_points to the number of steps (and dt to 1min or a divisor of it)")
    return facts(ds["sample_price"], days_per_year=days_per_year)
