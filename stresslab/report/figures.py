"""Figures of a stresslab result, drawn with matplotlib's object API.

One implementation serves both ``stresslab report`` and the ``ds.stress.plot_*`` methods,
in two layers:

- ``draw_*`` functions draw on a given :class:`~matplotlib.axes.Axes`: one scenario's fan
  chart or distribution, or the exceedance curves of several scenarios;
- ``*_figure`` functions lay those out in a new :class:`~matplotlib.figure.Figure`, one
  panel per scenario (one line each for exceedance), labelled with the swept config
  values; at most :data:`MAX_SCENARIOS` are drawn so that a large sweep still gives a
  legible page.

The report makes its figures with ``Figure`` itself (Agg canvas, no pyplot state);
the accessor passes ``matplotlib.pyplot.figure`` so that figures show in notebooks.
Scenarios are given by position along the ``scenario`` dim and keep one colour each
in every figure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from stresslab.metrics import tail
from stresslab.report import tables

Color = tuple[float, float, float, float]
"""An RGBA colour, each channel in [0, 1]."""
NewFigure = Callable[..., Figure]
"""Makes an empty figure from ``figsize`` and ``layout`` keywords: ``Figure`` or ``pyplot.figure``."""

MAX_SCENARIOS = 12
"""Scenarios drawn per figure; larger selections show the first ones and say so in the title."""
MAX_COLUMNS = 3
"""Panels per row."""
PANEL_SIZE = (5.0, 3.4)
"""Width and height of one panel, inches."""
WIDE_SIZE = (2 * PANEL_SIZE[0], 1.5 * PANEL_SIZE[1])
"""Width and height of a one-axes figure with a line per scenario (exceedance curves), inches."""
TAIL_LEVEL = tail.HEADLINE_LEVEL
"""Confidence level of the VaR and ES marked on distributions, and of the exceedance reference line."""
HISTOGRAM_BINS = 50
HISTOGRAM_ALPHA = 0.7
BAND_ALPHA = (0.15, 0.45)
"""Opacity of the outermost and innermost quantile band of a fan chart."""
PERCENT = 100.0
FRACTION_UNITS = "1"
"""``units`` of dimensionless variables; floating ones (fractions) are shown in percent."""
TIME_UNITS = (("d", 86_400.0), ("h", 3_600.0), ("min", 60.0), ("s", 1.0))
"""Units for time axes, seconds each; the largest that fits the horizon at least twice is used."""
TIME_UNIT_MIN_SPAN = 2.0
COLORS = "tab10"
"""matplotlib colormap that colours the scenarios."""
QUANTILE_DIM = "level"
"""The dim of the quantile bands: the probability level of each band, in (0, 1)."""
MARKERS = (("VaR", "--"), ("ES", ":"))
"""Name and line style of the tail marks on a distribution, in the order drawn."""


@dataclass(frozen=True)
class Band:
    """Quantile bands over paths of one quantity against time: the variable and how to label it."""

    variable: str
    title: str
    ylabel: str
    """What the y axis shows; money gets its units (the result's currency, scaled) in parentheses."""
    reference: float | None = None
    """A value marked with a dotted horizontal line (e.g. intact depth), or None."""
    steps: bool = False
    """Values are totals over the interval ending at each time point (drawn as steps, not interpolated)."""


INTACT_DEPTH = 1.0
"""Available over configured depth of an untouched book."""
BANDS = {
    "price": Band("price_quantiles", "Traded price: quantile bands over paths", "price"),
    "liquidation": Band("liquidation_quantiles", "Liquidations: notional since the previous time point",
                        "notional", steps=True),
    "depth": Band("depth_quantiles", "Order book depth: collapse and recovery", "available / configured depth",
                  INTACT_DEPTH),
}
"""The quantities with quantile bands over time, by the name the plotting methods take."""


def band(ds: xr.Dataset, quantity: str) -> Band:
    """The :class:`Band` of ``quantity`` (a key of :data:`BANDS` or its variable name), checked present in ``ds``.

    Raises:
        ValueError: ``quantity`` is not one of :data:`BANDS`.
        MissingVariableError: (a ``ValueError``) ``ds`` lacks the quantity's band variable.
    """
    by_variable = {b.variable: b for b in BANDS.values()}
    found = BANDS.get(quantity) or by_variable.get(quantity)
    if found is None:
        raise ValueError(f"no quantile bands of {quantity!r}; quantities with bands: {', '.join(BANDS)}")
    if found.variable not in ds.data_vars:
        present = sorted(str(name) for name, v in ds.data_vars.items() if QUANTILE_DIM in v.dims)
        raise tail.MissingVariableError(f"no data variable {found.variable!r} (quantile bands of {quantity}); "
                                        f"band variables: {', '.join(present) or 'none'}")
    return found


def per_path(ds: xr.Dataset, name: str) -> xr.DataArray:
    """The data variable ``name`` of ``ds``, checked to have a ``path`` dim and no other dim but ``scenario``.

    Raises:
        MissingVariableError: (a ``ValueError``) ``ds`` has no variable ``name``.
        ValueError: ``name`` has no ``path`` dim (e.g. a quantile band), or another dim
            besides ``scenario`` (e.g. ``venue``: select one first).
    """
    tail.require(ds, name)
    data = ds[name]
    dims = ", ".join(map(str, data.dims))
    if tail.PATH_DIM not in data.dims:
        raise ValueError(f"{name!r} has no {tail.PATH_DIM!r} dim (dims: {dims}); "
                         f"per-path variables: {', '.join(tail.per_path_variables(ds)) or 'none'}")
    extra = [str(dim) for dim in data.dims if dim not in (tail.SCENARIO_DIM, tail.PATH_DIM)]
    if extra:
        raise ValueError(f"{name!r} has dims ({dims}); select one {' and one '.join(extra)} first, "
                         f"e.g. ds.isel({extra[0]}=0)")
    return data


def display_scale(data: xr.DataArray) -> tuple[float, str]:
    """How ``data`` is shown: the factor applied to its values and the unit then (fractions in percent)."""
    units = str(data.attrs.get("units", ""))
    if data.dtype.kind == "f" and units == FRACTION_UNITS:
        return PERCENT, "%"
    return 1.0, units


def draw_fan(ax: Axes, ds: xr.Dataset, quantity: str, position: int, *, legend: bool = True,
             scale: tuple[float, str] | None = None) -> Axes:
    """Draw the quantile bands of ``quantity`` against time for the scenario at ``position``.

    Each pair of outer quantiles (lowest with highest, then inwards) is shaded, more
    opaque inwards, and the median is a line when the levels include one. ``depth``
    gets a dotted line at :data:`INTACT_DEPTH`.

    Args:
        ax: the axes to draw on.
        ds: a result with the quantity's band variable on (scenario, time, level).
        quantity: a key of :data:`BANDS` (``"price"``, ``"depth"``, ``"liquidation"``).
        position: index of the scenario along the ``scenario`` dim.
        legend: add a legend naming the bands.
        scale: the factor the values are divided by and the unit then (default: :func:`band_scale`
            of this scenario); panels that share a y axis pass one for all.

    Returns:
        ``ax``: one ``PolyCollection`` per pair of quantiles, one line for the median and
        one for the reference value, if any.
    """
    spec = band(ds, quantity)
    times, unit = time_axis(ds)
    levels = ds[QUANTILE_DIM].to_numpy().astype(np.float64)
    factor, units = band_scale(ds, quantity, [position]) if scale is None else scale
    bands = ds[spec.variable].isel({tail.SCENARIO_DIM: position}).transpose("time", QUANTILE_DIM).to_numpy()
    _draw_bands(ax, times, bands / factor, levels, _color(position), spec.steps)
    if spec.reference is not None:
        ax.axhline(spec.reference, color="black", linewidth=0.8, linestyle=":")
    ax.set_title(_label(ds, position), fontsize="medium")
    ax.set_xlabel(f"time ({unit})")
    ax.set_ylabel(f"{spec.ylabel} ({units})" if units else spec.ylabel)
    ax.ticklabel_format(axis="y", style="plain", useOffset=False)
    ax.grid(True, alpha=0.3)
    if legend:
        ax.legend(fontsize="small", title="quantile over paths", title_fontsize="small")
    return ax


def draw_distribution(ax: Axes, ds: xr.Dataset, name: str, level: float, position: int) -> Axes:
    """Draw the histogram over paths of ``name`` for the scenario at ``position``, with VaR and ES marked.

    Fractions (units ``"1"``) are shown in percent. VaR and ES at ``level`` are the values
    of :func:`stresslab.metrics.tail.var` and :func:`~stresslab.metrics.tail.es`, drawn as
    dashed and dotted vertical lines; with a non-finite path they are undefined, not
    drawn, and the x label says how many paths were left out of the histogram.

    Returns:
        ``ax``: :data:`HISTOGRAM_BINS` bar patches and the VaR and ES lines (in that order).
    """
    tail.check_level(level)
    data = per_path(ds, name).isel({tail.SCENARIO_DIM: position})
    scale, unit = display_scale(data)
    values = scale * data.to_numpy().astype(np.float64)
    finite = values[np.isfinite(values)]
    ax.hist(finite, bins=HISTOGRAM_BINS, color=_color(position), alpha=HISTOGRAM_ALPHA)
    percent_level = f"{PERCENT * level:g} %"
    for (marker, style), metric in zip(MARKERS, (tail.var, tail.es), strict=True):
        mark = scale * float(metric(data, level))
        if math.isfinite(mark):
            ax.axvline(mark, color="black", linestyle=style,
                       label=f"{marker} {percent_level}: {_format_value(mark, unit)}")
    label = _axis_label(name, unit)
    if finite.size < values.size:
        label += f"; {values.size - finite.size} non-finite paths left out, VaR and ES undefined"
    ax.set_xlabel(label)
    ax.set_ylabel("paths")
    ax.set_title(_label(ds, position), fontsize="medium")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")
    return ax


def draw_exceedance(ax: Axes, ds: xr.Dataset, name: str, level: float,
                    positions: Sequence[int] | None = None) -> Axes:
    """Draw the exceedance curves ``P(X > x)`` of ``name`` against ``x``, one step line per scenario, log scale.

    Fractions (units ``"1"``) are shown in percent; non-finite paths are left out. A
    dotted line marks the probability ``1 - level``, where each curve crosses its VaR.

    Args:
        ax: the axes to draw on.
        ds: a result with the per-path variable ``name``.
        name: the variable, e.g. ``"cascade_depth"``.
        level: confidence level in (0, 1) of the reference line.
        positions: indices along ``scenario`` (default: all, at most :data:`MAX_SCENARIOS`).

    Returns:
        ``ax``: one line per scenario with a finite path, then the reference line.
    """
    tail.check_level(level)
    data = per_path(ds, name)
    shown, total = _shown(ds, positions)
    scale, unit = display_scale(data)
    smallest = 1.0
    for position in shown:
        values = scale * data.isel({tail.SCENARIO_DIM: position}).to_numpy().astype(np.float64)
        ordered = np.sort(values[np.isfinite(values)])
        count = ordered.size
        if count == 0:
            continue
        survival = 1.0 - np.arange(1, count + 1) / count
        ax.step(ordered, survival, where="post", color=_color(position), label=_label(ds, position))
        smallest = min(smallest, 1.0 / count)
    ax.axhline(1.0 - level, color="grey", linewidth=0.8, linestyle=":",
               label=f"{PERCENT * (1 - level):g} % of paths (VaR {PERCENT * level:g} %)")
    ax.set_yscale("log")
    ax.set_ylim(smallest / 2, 1.0)
    ax.set_xlabel(_axis_label(f"{name} x", unit))
    ax.set_ylabel(f"P({_axis_name(name)} > x)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title(_title(f"{_axis_name(name).capitalize()}: exceedance probability", total))
    return ax


def fan_figure(ds: xr.Dataset, quantity: str, positions: Sequence[int] | None = None,
               new_figure: NewFigure = Figure) -> Figure:
    """One fan chart (:func:`draw_fan`) per scenario at ``positions`` (default: all), as panels of a new figure."""
    spec = band(ds, quantity)
    shown, total = _shown(ds, positions)
    figure, axes = _panels(len(shown), _title(spec.title, total), new_figure, sharey=True)
    scale = band_scale(ds, quantity, shown)
    for index, (ax, position) in enumerate(zip(axes, shown, strict=True)):
        draw_fan(ax, ds, quantity, position, legend=index == 0, scale=scale)
    return figure


def band_scale(ds: xr.Dataset, quantity: str, positions: Sequence[int]) -> tuple[float, str]:
    """How the bands of ``quantity`` at the scenario ``positions`` are shown: a factor and the units then.

    Money (units the result's currency, e.g. ``"USD"``) is divided by 1e9, 1e6 or 1e3 to read as
    ``"USD bn"``, ``"USD m"`` or ``"USD k"`` (:func:`stresslab.report.tables.money_scale`); a price
    keeps its units; fractions (``"1"``) have none.
    """
    spec = band(ds, quantity)
    data = ds[spec.variable]
    units = str(data.attrs.get("units", ""))
    if units in ("", FRACTION_UNITS):
        return 1.0, ""
    if quantity == "price":
        return 1.0, units
    factor, suffix = tables.money_scale(data.isel({tail.SCENARIO_DIM: list(positions)}).to_numpy())
    return factor, f"{units}{suffix}"


def distribution_figure(ds: xr.Dataset, name: str, level: float, positions: Sequence[int] | None = None,
                        new_figure: NewFigure = Figure) -> Figure:
    """One histogram with VaR and ES (:func:`draw_distribution`) per scenario, as panels of a new figure."""
    tail.check_level(level)
    per_path(ds, name)
    shown, total = _shown(ds, positions)
    figure, axes = _panels(len(shown), _title(f"{_axis_name(name).capitalize()}: distribution over paths", total),
                           new_figure)
    for ax, position in zip(axes, shown, strict=True):
        draw_distribution(ax, ds, name, level, position)
    return figure


def exceedance_figure(ds: xr.Dataset, name: str, level: float, positions: Sequence[int] | None = None,
                      new_figure: NewFigure = Figure) -> Figure:
    """The exceedance curves of all scenarios at ``positions`` (:func:`draw_exceedance`) in a new figure."""
    tail.check_level(level)
    per_path(ds, name)
    figure = new_figure(figsize=WIDE_SIZE, layout="constrained")
    draw_exceedance(figure.subplots(), ds, name, level, positions)
    return figure


def price_fan(ds: xr.Dataset) -> Figure:
    """Fan chart of the traded price: quantile bands over paths against time, one panel per scenario."""
    return fan_figure(ds, "price")


def liquidation_bands(ds: xr.Dataset) -> Figure:
    """Notional liquidated between recorded time points: quantile bands over paths, one panel per scenario."""
    return fan_figure(ds, "liquidation")


def depth_bands(ds: xr.Dataset) -> Figure:
    """Available depth over configured depth (1 = intact): quantile bands showing collapse and recovery."""
    return fan_figure(ds, "depth")


def depth_histogram(ds: xr.Dataset) -> Figure:
    """Distribution of cascade depth (% of the start price) with its VaR and ES at :data:`TAIL_LEVEL` marked."""
    return distribution_figure(ds, "cascade_depth", TAIL_LEVEL)


def depth_exceedance(ds: xr.Dataset) -> Figure:
    """Exceedance curves P(cascade depth > x) against x (% of the start price), one line per scenario, log scale."""
    return exceedance_figure(ds, "cascade_depth", TAIL_LEVEL)


def time_axis(ds: xr.Dataset) -> tuple[np.ndarray, str]:
    """The ``time`` coordinate as floats in a readable unit (days, hours, minutes or seconds), and that unit."""
    seconds = ds["time"].to_numpy().astype("timedelta64[ns]").astype(np.float64) / 1e9
    span = float(seconds.max(initial=0.0))
    for unit, length in TIME_UNITS:
        if span >= TIME_UNIT_MIN_SPAN * length:
            return seconds / length, unit
    unit, length = TIME_UNITS[-1]
    return seconds / length, unit


def _draw_bands(ax: Axes, times: np.ndarray, bands: np.ndarray, levels: np.ndarray, color: Color,
                steps: bool = False) -> None:
    """Shade the band between each pair of outer quantiles (lowest with highest, and inwards); line the median.

    With ``steps``, each value holds over the interval that ends at its time point (a step drawn
    back to the previous point), as for totals since the previous time point.
    """
    step = "pre" if steps else None
    order = np.argsort(levels)
    levels, bands = levels[order], bands[:, order]
    pairs = levels.size // 2
    for i in range(pairs):
        low, high = i, levels.size - 1 - i
        alpha = BAND_ALPHA[0] + (BAND_ALPHA[1] - BAND_ALPHA[0]) * i / max(pairs - 1, 1)
        ax.fill_between(times, bands[:, low], bands[:, high], color=color, alpha=alpha, linewidth=0, step=step,
                        label=f"{PERCENT * levels[low]:g}–{PERCENT * levels[high]:g} %")
    if levels.size % 2:
        middle = pairs
        ax.plot(times, bands[:, middle], color=color, linewidth=1.5, label=f"{PERCENT * levels[middle]:g} %",
                drawstyle="steps-pre" if steps else "default")


def _panels(count: int, title: str, new_figure: NewFigure, sharey: bool = False) -> tuple[Figure, list[Axes]]:
    """A figure with ``count`` panels, ``MAX_COLUMNS`` to a row; unused panels hidden; ``sharey``: one y axis."""
    columns = min(count, MAX_COLUMNS)
    rows = math.ceil(count / columns)
    figure = new_figure(figsize=(PANEL_SIZE[0] * columns, PANEL_SIZE[1] * rows + 0.5), layout="constrained")
    axes = list(figure.subplots(rows, columns, squeeze=False, sharey=sharey).flat)
    for ax in axes[count:]:
        ax.set_visible(False)
    figure.suptitle(title)
    return figure, axes[:count]


def _shown(ds: xr.Dataset, positions: Sequence[int] | None) -> tuple[list[int], int]:
    """The positions drawn (at most :data:`MAX_SCENARIOS`; default all) and how many were asked for."""
    chosen = list(range(ds.sizes[tail.SCENARIO_DIM])) if positions is None else list(positions)
    if not chosen:
        raise ValueError("no scenario to draw")
    return chosen[:MAX_SCENARIOS], len(chosen)


def _title(title: str, total: int) -> str:
    if total > MAX_SCENARIOS:
        return f"{title} (first {MAX_SCENARIOS} of {total} scenarios)"
    return title


def _axis_name(name: str) -> str:
    return name.replace("_", " ")


def _axis_label(name: str, unit: str) -> str:
    return f"{_axis_name(name)} ({unit})" if unit else _axis_name(name)


def _format_value(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value:.2f} %"
    return f"{value:,.4g} {unit}".rstrip()


def _label(ds: xr.Dataset, position: int) -> str:
    """``scenario 0: market.sigma=0.5`` — the scenario's label and swept config values."""
    values = ", ".join(f"{name}={_format(ds[name].values[position])}" for name in tail.swept_coords(ds))
    index = ds[tail.SCENARIO_DIM].values[position]
    return f"scenario {index}: {values}" if values else f"scenario {index}"


def _format(value: object) -> str:
    return f"{value:g}" if isinstance(value, float | np.floating) else str(value)


def _color(position: int) -> Color:
    palette = colormaps[COLORS]
    return palette(position % palette.N)
