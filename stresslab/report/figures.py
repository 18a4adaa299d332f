"""Figures of a stresslab result, drawn with matplotlib's object API (Agg canvas, no pyplot state).

Each function takes a result Dataset (in memory) and returns a
:class:`matplotlib.figure.Figure`; :mod:`stresslab.report.build` saves them as PNG.
Scenarios get one panel each (or one line each on a shared axes), labelled with
their swept config values; at most :data:`MAX_SCENARIOS` are drawn so that a large
sweep still gives a legible page.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from stresslab.metrics import tail

Color = tuple[float, float, float, float]
"""An RGBA colour, each channel in [0, 1]."""

MAX_SCENARIOS = 12
"""Scenarios drawn per figure; larger sweeps show the first ones and say so in the title."""
MAX_COLUMNS = 3
"""Panels per row."""
PANEL_SIZE = (5.0, 3.4)
"""Width and height of one panel, inches."""
TAIL_LEVEL = 0.99
"""Confidence level of the VaR and ES marked on the cascade depth histogram."""
HISTOGRAM_BINS = 50
BAND_ALPHA = (0.15, 0.45)
"""Opacity of the outermost and innermost quantile band of a fan chart."""
PERCENT = 100.0
TIME_UNITS = (("d", 86_400.0), ("h", 3_600.0), ("min", 60.0), ("s", 1.0))
"""Units for time axes, seconds each; the largest that fits the horizon at least twice is used."""
TIME_UNIT_MIN_SPAN = 2.0
COLORS = "tab10"
"""matplotlib colormap that colours the scenarios."""


def price_fan(ds: xr.Dataset) -> Figure:
    """Fan chart of the traded price: quantile bands over paths against time, one panel per scenario."""
    return _band_panels(ds, "price_quantiles", "Traded price: quantile bands over paths", "price (quote currency)")


def liquidation_bands(ds: xr.Dataset) -> Figure:
    """Notional liquidated between recorded time points: quantile bands over paths, one panel per scenario."""
    return _band_panels(ds, "liquidation_quantiles", "Liquidations: notional since the previous time point",
                        "notional (quote currency)")


def depth_bands(ds: xr.Dataset) -> Figure:
    """Available depth over configured depth (1 = intact): quantile bands showing collapse and recovery."""
    figure = _band_panels(ds, "depth_quantiles", "Order book depth: collapse and recovery",
                          "available / configured depth")
    for ax in figure.axes:
        if ax.get_visible():
            ax.axhline(1.0, color="black", linewidth=0.8, linestyle=":")
    return figure


def depth_histogram(ds: xr.Dataset) -> Figure:
    """Distribution of cascade depth (% of the start price) with its VaR and ES at :data:`TAIL_LEVEL` marked."""
    scenarios = _shown(ds)
    depth = ds["cascade_depth"]
    value_at_risk = tail.var(depth, TAIL_LEVEL)
    shortfall = tail.es(depth, TAIL_LEVEL)
    figure, axes = _panels(ds, "Cascade depth: distribution over paths")
    level = f"{PERCENT * TAIL_LEVEL:g} %"
    for index, (ax, scenario) in enumerate(zip(axes, scenarios, strict=False)):
        values = PERCENT * depth.isel(scenario=scenario).to_numpy().astype(np.float64)
        finite = values[np.isfinite(values)]
        ax.hist(finite, bins=HISTOGRAM_BINS, color=_color(index), alpha=0.7)
        for metric, name, style in ((value_at_risk, "VaR", "--"), (shortfall, "ES", ":")):
            mark = PERCENT * float(metric.isel(scenario=scenario))
            if math.isfinite(mark):
                ax.axvline(mark, color="black", linestyle=style, label=f"{name} {level}: {mark:.2f} %")
        if finite.size < values.size:
            ax.set_xlabel(f"cascade depth (%); {values.size - finite.size} non-finite paths left out, "
                          f"VaR and ES undefined")
        else:
            ax.set_xlabel("cascade depth (% of start price)")
        ax.set_ylabel("paths")
        ax.set_title(_label(ds, scenario), fontsize="medium")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    return figure


def depth_exceedance(ds: xr.Dataset) -> Figure:
    """Exceedance curves P(cascade depth > x) against x (% of the start price), one line per scenario, log scale."""
    scenarios = _shown(ds)
    figure = Figure(figsize=(2 * PANEL_SIZE[0], 1.5 * PANEL_SIZE[1]), layout="constrained")
    ax = figure.subplots()
    smallest = 1.0
    for index, scenario in enumerate(scenarios):
        values = PERCENT * ds["cascade_depth"].isel(scenario=scenario).to_numpy().astype(np.float64)
        ordered = np.sort(values[np.isfinite(values)])
        count = ordered.size
        if count == 0:
            continue
        survival = 1.0 - np.arange(1, count + 1) / count
        ax.step(ordered, survival, where="post", color=_color(index), label=_label(ds, scenario))
        smallest = min(smallest, 1.0 / count)
    ax.axhline(1.0 - TAIL_LEVEL, color="grey", linewidth=0.8, linestyle=":",
               label=f"{PERCENT * (1 - TAIL_LEVEL):g} % of paths (VaR {PERCENT * TAIL_LEVEL:g} %)")
    ax.set_yscale("log")
    ax.set_ylim(smallest / 2, 1.0)
    ax.set_xlabel("cascade depth x (% of start price)")
    ax.set_ylabel("P(cascade depth > x)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    figure.suptitle(_title(ds, "Cascade depth: exceedance probability"))
    return figure


def time_axis(ds: xr.Dataset) -> tuple[np.ndarray, str]:
    """The ``time`` coordinate as floats in a readable unit (days, hours, minutes or seconds), and that unit."""
    seconds = ds["time"].to_numpy().astype("timedelta64[ns]").astype(np.float64) / 1e9
    span = float(seconds.max(initial=0.0))
    for unit, length in TIME_UNITS:
        if span >= TIME_UNIT_MIN_SPAN * length:
            return seconds / length, unit
    unit, length = TIME_UNITS[-1]
    return seconds / length, unit


def _band_panels(ds: xr.Dataset, name: str, title: str, ylabel: str) -> Figure:
    times, unit = time_axis(ds)
    levels = ds["quantile"].to_numpy().astype(np.float64)
    figure, axes = _panels(ds, title)
    for index, (ax, scenario) in enumerate(zip(axes, _shown(ds), strict=False)):
        bands = ds[name].isel(scenario=scenario).transpose("time", "quantile").to_numpy()
        _draw_bands(ax, times, bands, levels, _color(index))
        ax.set_title(_label(ds, scenario), fontsize="medium")
        ax.set_xlabel(f"time ({unit})")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize="small", title="quantile over paths", title_fontsize="small")
    return figure


def _draw_bands(ax: Axes, times: np.ndarray, bands: np.ndarray, levels: np.ndarray, color: Color) -> None:
    """Shade the band between each pair of outer quantiles (lowest with highest, and inwards); line the median."""
    order = np.argsort(levels)
    levels, bands = levels[order], bands[:, order]
    pairs = levels.size // 2
    for i in range(pairs):
        low, high = i, levels.size - 1 - i
        alpha = BAND_ALPHA[0] + (BAND_ALPHA[1] - BAND_ALPHA[0]) * i / max(pairs - 1, 1)
        ax.fill_between(times, bands[:, low], bands[:, high], color=color, alpha=alpha, linewidth=0,
                        label=f"{PERCENT * levels[low]:g}–{PERCENT * levels[high]:g} %")
    if levels.size % 2:
        middle = pairs
        ax.plot(times, bands[:, middle], color=color, linewidth=1.5, label=f"{PERCENT * levels[middle]:g} %")


def _panels(ds: xr.Dataset, title: str) -> tuple[Figure, list[Axes]]:
    """A figure with one panel per shown scenario, ``MAX_COLUMNS`` to a row; unused panels hidden."""
    count = len(_shown(ds))
    columns = min(count, MAX_COLUMNS)
    rows = math.ceil(count / columns)
    figure = Figure(figsize=(PANEL_SIZE[0] * columns, PANEL_SIZE[1] * rows + 0.5), layout="constrained")
    axes = list(figure.subplots(rows, columns, squeeze=False).flat)
    for ax in axes[count:]:
        ax.set_visible(False)
    figure.suptitle(_title(ds, title))
    return figure, axes[:count]


def _shown(ds: xr.Dataset) -> range:
    return range(min(ds.sizes[tail.SCENARIO_DIM], MAX_SCENARIOS))


def _title(ds: xr.Dataset, title: str) -> str:
    total = ds.sizes[tail.SCENARIO_DIM]
    if total > MAX_SCENARIOS:
        return f"{title} (first {MAX_SCENARIOS} of {total} scenarios)"
    return title


def _label(ds: xr.Dataset, scenario: int) -> str:
    """``scenario 0: market.sigma=0.5`` — the scenario's index and swept config values."""
    swept = [str(name) for name, coord in ds.coords.items()
             if coord.dims == (tail.SCENARIO_DIM,) and name != tail.SCENARIO_DIM]
    values = ", ".join(f"{name}={_format(ds[name].values[scenario])}" for name in swept)
    index = ds[tail.SCENARIO_DIM].values[scenario]
    return f"scenario {index}: {values}" if values else f"scenario {index}"


def _format(value: object) -> str:
    return f"{value:g}" if isinstance(value, float | np.floating) else str(value)


def _color(index: int) -> Color:
    palette = colormaps[COLORS]
    return palette(index % palette.N)
