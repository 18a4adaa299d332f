"""``ds.stress.plot_*``: what is drawn (bands, bars, curves, VaR/ES marks at the computed values), layouts, errors.

The accessor and ``stresslab report`` share :mod:`stresslab.report.figures`; the tests
check both draw the same thing. Synthetic results keep them fast (no simulation).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import xarray as xr
from matplotlib import pyplot
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from synthetic import QUANTILES, result

import stresslab  # noqa: F401  (registers ds.stress)
from stresslab.io import store
from stresslab.report import build, figures

matplotlib.use("Agg")

BAND_PAIRS = len(QUANTILES) // 2
SCENARIOS = 2
PATHS = 400


@pytest.fixture(autouse=True)
def no_figures_left() -> Iterator[None]:
    """Every test starts without pyplot figures, and none are left behind."""
    pyplot.close("all")
    yield
    pyplot.close("all")


@pytest.fixture(scope="module")
def ds() -> xr.Dataset:
    return result(scenarios=SCENARIOS, paths=PATHS, halts=True, others=True, seed=11)


def _vertical_lines(ax: Axes) -> list[float]:
    """x of each vertical line (``axvline``) on ``ax``, in drawing order."""
    return [float(line.get_xdata()[0]) for line in ax.lines if len(set(line.get_xdata())) == 1]


def _bands(ax: Axes) -> list[PolyCollection]:
    return [c for c in ax.collections if isinstance(c, PolyCollection)]


@pytest.mark.parametrize(("method", "quantity", "reference"), [
    ("plot_fan", "price", None), ("plot_liquidations", "liquidation", None), ("plot_depth", "depth", 1.0),
])
def test_fan_of_one_scenario_has_a_band_per_quantile_pair_and_the_median(ds: xr.Dataset, method: str, quantity: str,
                                                                         reference: float | None) -> None:
    draw = getattr(ds.stress, method)
    ax = draw(scenario=1) if method != "plot_fan" else draw(quantity, scenario=1)
    assert isinstance(ax, Axes)
    assert len(_bands(ax)) == BAND_PAIRS
    median, *rest = ax.lines
    spec = figures.BANDS[quantity]
    variable = spec.variable
    factor, units = figures.band_scale(ds, quantity, [1])
    assert (factor, units) == {"price": (1.0, "USD"), "liquidation": (1e3, "USD k"), "depth": (1.0, "")}[quantity]
    np.testing.assert_allclose(factor * median.get_ydata(), ds[variable].sel(scenario=1, level=0.5))
    if spec.steps:  # totals since the previous time point: a step back from each point, not a line between them
        assert median.get_drawstyle() == "steps-pre"
    else:
        np.testing.assert_allclose(median.get_xdata(), np.linspace(0, 60, len(ds.time)))  # minutes over 1 h
    assert ax.get_xlabel() == "time (min)" and ax.get_ylabel() == (f"{spec.ylabel} ({units})" if units else spec.ylabel)
    assert ax.yaxis.get_major_formatter().get_offset() == ""
    assert [list(line.get_ydata()) for line in rest] == ([[reference, reference]] if reference is not None else [])
    assert ax.get_title() == "scenario 1: market.sigma=1"
    # the outermost band spans the 1 % and 99 % quantiles at every time point
    outer = factor * _bands(ax)[0].get_paths()[0].vertices[:, 1]
    assert np.isclose(outer.min(), ds[variable].sel(scenario=1).min())
    assert np.isclose(outer.max(), ds[variable].sel(scenario=1).max())


def test_sweep_panels_of_a_fan_share_one_y_axis_and_money_reads_in_bn(ds: xr.Dataset) -> None:
    for quantity in ("price", "liquidation"):
        figure = figures.fan_figure(ds, quantity)
        limits = {ax.get_ylim() for ax in figure.axes if ax.get_visible()}
        assert len(limits) == 1, (quantity, limits)
    big = ds.assign(liquidation_quantiles=ds.liquidation_quantiles * 1e5)  # up to ~1e10 USD
    figure = figures.fan_figure(big, "liquidation")
    figure.canvas.draw()
    ax = figure.axes[0]
    assert ax.get_ylabel() == "notional (USD bn)"
    assert ax.yaxis.get_offset_text().get_text() == ""
    assert max(abs(t) for t in ax.get_yticks()) < 100


def test_fan_without_a_scenario_is_a_figure_with_a_panel_each(ds: xr.Dataset) -> None:
    figure = ds.stress.plot_fan()
    assert isinstance(figure, Figure) and pyplot.fignum_exists(figure.number)  # a pyplot figure: notebooks show it
    assert [ax.get_title() for ax in figure.axes] == ["scenario 0: market.sigma=0.5", "scenario 1: market.sigma=1"]
    assert figure.get_suptitle() == figures.BANDS["price"].title
    assert all(len(_bands(ax)) == BAND_PAIRS for ax in figure.axes)
    assert figure.axes[0].get_legend() is not None and figure.axes[1].get_legend() is None
    assert len(ds.stress.plot_fan(scenario=[1]).axes) == 1


def test_fan_on_given_axes_draws_there(ds: xr.Dataset) -> None:
    figure, axes = pyplot.subplots(1, 2)
    assert ds.stress.plot_depth(scenario=0, ax=axes[1]) is axes[1]
    assert not axes[0].has_data() and len(_bands(axes[1])) == BAND_PAIRS
    one = ds.isel(scenario=[1])
    assert one.stress.plot_fan(ax=axes[0]) is axes[0]  # a one-scenario Dataset needs no scenario=
    assert axes[0].get_title() == "scenario 1: market.sigma=1"


@pytest.mark.parametrize("level", [0.9, 0.95, 0.99])
def test_distribution_marks_var_and_es_at_the_computed_values(ds: xr.Dataset, level: float) -> None:
    for scenario in range(SCENARIOS):
        ax = ds.stress.plot_distribution("cascade_depth", level=level, scenario=scenario)
        assert len(ax.patches) == figures.HISTOGRAM_BINS
        assert sum(patch.get_height() for patch in ax.patches) == PATHS
        value_at_risk = 100 * ds.stress.var("cascade_depth", level).sel(scenario=scenario).item()
        shortfall = 100 * ds.stress.es("cascade_depth", level).sel(scenario=scenario).item()
        assert _vertical_lines(ax) == [value_at_risk, shortfall]  # percent of the start price, exactly
        assert shortfall >= value_at_risk
        labels = [text.get_text() for text in ax.get_legend().get_texts()]
        assert labels == [f"VaR {100 * level:g} %: {value_at_risk:.2f} %", f"ES {100 * level:g} %: {shortfall:.2f} %"]
        assert ax.get_xlabel() == "cascade depth (%)"
        # the bars cover the sample: from its minimum to its maximum, in percent
        left = min(patch.get_x() for patch in ax.patches)
        right = max(patch.get_x() + patch.get_width() for patch in ax.patches)
        values = 100 * ds["cascade_depth"].sel(scenario=scenario).values.astype(np.float64)
        assert np.isclose(left, values.min()) and np.isclose(right, values.max())


def test_distribution_of_a_currency_variable_is_not_rescaled(ds: xr.Dataset) -> None:
    ax = ds.stress.plot_distribution("bad_debt", level=0.95, scenario=1)
    expected = [metric("bad_debt", 0.95).sel(scenario=1).item() for metric in (ds.stress.var, ds.stress.es)]
    assert _vertical_lines(ax) == expected
    assert ax.get_xlabel() == "bad debt (USD)"


def test_distribution_without_a_scenario_has_a_panel_each_and_equals_the_report_figure(ds: xr.Dataset) -> None:
    figure = ds.stress.plot_distribution()
    report = figures.depth_histogram(ds)
    assert isinstance(figure, Figure) and len(figure.axes) == len(report.axes) == SCENARIOS
    for mine, theirs in zip(figure.axes, report.axes, strict=True):
        assert _vertical_lines(mine) == _vertical_lines(theirs)
        assert [p.get_height() for p in mine.patches] == [p.get_height() for p in theirs.patches]
        assert mine.get_title() == theirs.get_title() and mine.get_xlabel() == theirs.get_xlabel()
    assert figure.get_suptitle() == report.get_suptitle() == "Cascade depth: distribution over paths"


def test_distribution_with_a_nan_path_leaves_out_the_marks_and_says_so(ds: xr.Dataset) -> None:
    broken = ds.copy(deep=True)
    broken["cascade_depth"][0, 5] = np.nan
    ax = broken.stress.plot_distribution(scenario=0)
    assert _vertical_lines(ax) == [] and ax.get_legend() is None
    assert "1 non-finite paths left out, VaR and ES undefined" in ax.get_xlabel()
    assert sum(patch.get_height() for patch in ax.patches) == PATHS - 1
    assert len(_vertical_lines(broken.stress.plot_distribution(scenario=1))) == 2


def test_exceedance_has_one_curve_per_scenario_equal_to_the_empirical_survival(ds: xr.Dataset) -> None:
    level = 0.95
    ax = ds.stress.plot_exceedance("cascade_depth", level=level)
    assert isinstance(ax, Axes) and len(ax.lines) == SCENARIOS + 1
    *curves, reference = ax.lines
    assert list(reference.get_ydata()) == pytest.approx([1 - level] * 2)
    for scenario, curve in enumerate(curves):
        values = 100 * ds["cascade_depth"].sel(scenario=scenario).values.astype(np.float64)
        x, survival = np.asarray(curve.get_xdata()), np.asarray(curve.get_ydata())
        np.testing.assert_array_equal(x, np.sort(values))
        np.testing.assert_allclose(survival, [(values > v).mean() for v in x])
        # the curve is at or below 1 - level from the VaR on, and above it just before
        value_at_risk = 100 * ds.stress.var("cascade_depth", level).sel(scenario=scenario).item()
        assert survival[x >= value_at_risk].max() <= 1 - level < survival[x < value_at_risk].min()
        assert curve.get_label().startswith(f"scenario {scenario}")
    assert ax.get_yscale() == "log"
    assert ax.get_xlabel() == "cascade depth x (%)" and ax.get_ylabel() == "P(cascade depth > x)"


def test_exceedance_of_chosen_scenarios_on_given_axes(ds: xr.Dataset) -> None:
    _, ax = pyplot.subplots()
    assert ds.stress.plot_exceedance(scenario=1, ax=ax) is ax
    assert [line.get_label() for line in ax.lines][0] == "scenario 1: market.sigma=1" and len(ax.lines) == 2
    assert len(ds.stress.plot_exceedance("halted_time", scenario=[1, 0]).lines) == 3


def test_report_figures_are_the_accessors(ds: xr.Dataset) -> None:
    pairs = [(figures.price_fan(ds), ds.stress.plot_fan()), (figures.depth_bands(ds), ds.stress.plot_depth()),
             (figures.liquidation_bands(ds), ds.stress.plot_liquidations())]
    for report, mine in pairs:
        for theirs, ours in zip(report.axes, mine.axes, strict=True):
            assert [list(line.get_ydata()) for line in theirs.lines] == [list(line.get_ydata()) for line in ours.lines]
            assert len(_bands(theirs)) == len(_bands(ours))
    exceedance = figures.depth_exceedance(ds).axes[0]
    assert [list(line.get_xdata()) for line in exceedance.lines] == [
        list(line.get_xdata()) for line in ds.stress.plot_exceedance().lines]


def test_plots_of_a_lazily_opened_zarr_store(ds: xr.Dataset, tmp_path: Path) -> None:
    lazy = xr.open_zarr(store.write(ds, tmp_path / "run.zarr"))
    assert _vertical_lines(lazy.stress.plot_distribution(scenario=1)) == _vertical_lines(
        ds.stress.plot_distribution(scenario=1))
    assert len(lazy.stress.plot_fan().axes) == SCENARIOS
    assert len(lazy.stress.plot_exceedance().lines) == SCENARIOS + 1


def test_a_single_selected_scenario_plots_without_the_scenario_dim(ds: xr.Dataset) -> None:
    ax = ds.sel(scenario=1).stress.plot_distribution(scenario=1)
    assert _vertical_lines(ax) == _vertical_lines(ds.stress.plot_distribution(scenario=1))
    assert ax.get_title().startswith("scenario 1")


def test_a_large_sweep_draws_the_first_panels_and_says_so() -> None:
    sweep = result(scenarios=figures.MAX_SCENARIOS + 2, paths=50)
    figure = sweep.stress.plot_distribution()
    assert len(figure.axes) - sum(not ax.get_visible() for ax in figure.axes) == figures.MAX_SCENARIOS
    assert f"first {figures.MAX_SCENARIOS} of {figures.MAX_SCENARIOS + 2} scenarios" in figure.get_suptitle()
    ax = sweep.stress.plot_exceedance()
    assert len(ax.lines) == figures.MAX_SCENARIOS + 1 and "first 12 of 14" in ax.get_title()


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda s, ax: s.plot_distribution("nope"), ValueError,
     r"no data variable 'nope'; per-path variables: bad_debt, cascade_depth, funding_long"),
    (lambda s, ax: s.plot_exceedance("depth"), KeyError, r"no data variable 'depth'"),
    (lambda s, ax: s.plot_distribution("price_quantiles"), ValueError,
     r"'price_quantiles' has no 'path' dim \(dims: scenario, time, level\); per-path variables: bad_debt"),
    (lambda s, ax: s.plot_distribution(level=1.5), ValueError, r"level must be strictly between 0 and 1 \(got 1.5\)"),
    (lambda s, ax: s.plot_exceedance(level=0), ValueError, r"level must be strictly between 0 and 1"),
    (lambda s, ax: s.plot_fan("volume"), ValueError,
     r"no quantile bands of 'volume'; quantities with bands: price, liquidation, depth"),
    (lambda s, ax: s.plot_fan(scenario=7), ValueError, r"no scenario 7; scenarios: 0, 1"),
    (lambda s, ax: s.plot_exceedance(scenario=[0, 3]), ValueError, r"no scenario 3; scenarios: 0, 1"),
    (lambda s, ax: s.plot_fan(scenario=[]), ValueError, r"no scenario selected; scenarios: 0, 1"),
    (lambda s, ax: s.plot_depth(ax=ax), ValueError,
     r"ax= draws one scenario; pass scenario=<label> \(scenarios: 0, 1\)"),
])
def test_bad_requests_are_clear_errors_and_draw_nothing(ds: xr.Dataset, call: Callable[[object, Axes], object],
                                                        error: type[Exception], message: str) -> None:
    _, ax = pyplot.subplots()
    with pytest.raises(error, match=message):
        call(ds.stress, ax)
    assert len(pyplot.get_fignums()) == 1 and not ax.has_data()


def test_a_per_venue_variable_is_plotted_one_venue_at_a_time(ds: xr.Dataset) -> None:
    with pytest.raises(ValueError, match=r"'venue_cascade_depth' has dims \(scenario, path, venue\); "
                                         r"select one venue first, e.g. ds.isel\(venue=0\)"):
        ds.stress.plot_distribution("venue_cascade_depth")
    assert pyplot.get_fignums() == []
    perp = ds.sel(venue="perp")
    ax = perp.stress.plot_distribution("venue_cascade_depth", level=0.95, scenario=0)
    expected = [100 * metric("venue_cascade_depth", 0.95).sel(scenario=0).item()
                for metric in (perp.stress.var, perp.stress.es)]
    assert _vertical_lines(ax) == expected
    assert len(perp.stress.plot_exceedance("venue_cascade_depth").lines) == SCENARIOS + 1


def test_a_missing_band_variable_names_those_there_are(ds: xr.Dataset) -> None:
    with pytest.raises(ValueError, match=r"no data variable 'depth_quantiles' \(quantile bands of depth\); "
                                         r"band variables: liquidation_quantiles, price_quantiles"):
        ds.drop_vars("depth_quantiles").stress.plot_depth()
    assert pyplot.get_fignums() == []


def test_report_of_a_result_with_every_kind_of_variable_draws_every_figure(ds: xr.Dataset) -> None:
    for plot in build.PLOTS:
        drawn = plot.draw(ds)
        assert isinstance(drawn, Figure) and not pyplot.get_fignums()  # the report keeps off pyplot
        assert all(ax.has_data() for ax in drawn.axes if ax.get_visible())
