"""The ``ds.stress`` accessor: tail metrics of a result Dataset by variable name, and its figures.

It sits above both :mod:`stresslab.metrics` and :mod:`stresslab.report` (it uses the one and
draws with the other), so that neither imports the other upwards. Importing :mod:`stresslab`
registers it, so any Dataset from :func:`stresslab.simulate`
or read back from disk (:func:`stresslab.io.store.read`, lazily) answers::

    ds.stress.var("cascade_depth", 0.99)       # fraction of the start price, per scenario
    ds.stress.es("bad_debt", 0.95)             # the result's currency (e.g. USD), per scenario
    ds.stress.exceedance("cascade_depth", 0.1) # probability in [0, 1], per scenario
    ds.stress.summary()                        # pandas DataFrame, one row per scenario
    ds.stress.headline()                       # VaR/ES with CIs of depth, liquidations, bad debt
    ds.stress.var_ci("cascade_depth", 0.99)    # lower/upper along a ``bound`` dim
    ds.stress.es_ci("cascade_depth", 0.99)
    ds.stress.liquidations_at_risk(0.99)       # Dataset: var, es, the result's currency
    ds.stress.bad_debt_at_risk(0.99)           # Dataset: var, es, the result's currency
    ds.stress.p_fund_exhausted()               # probability in [0, 1]
    ds.stress.recovery()                       # Dataset: medians in seconds, p_recovered
    ds.stress.halts()                          # Dataset: P(halt), halted time (s), halt counts

and draws the figures of ``stresslab report`` (one implementation,
:mod:`stresslab.report.figures`)::

    ds.stress.plot_fan("price", scenario=0)    # Axes; scenario=None: a Figure, one panel each
    ds.stress.plot_distribution("cascade_depth", level=0.99)   # histogram, VaR and ES marked
    ds.stress.plot_exceedance("cascade_depth") # Axes, one curve per scenario
    ds.stress.plot_liquidations()              # fan chart of notional liquidated
    ds.stress.plot_depth()                     # fan chart of available / configured depth

Each metric is a thin wrapper over :mod:`stresslab.metrics.tail`, with the same
estimators, units and NaN handling. A missing variable raises
:class:`~stresslab.metrics.tail.MissingVariableError` (both a ``KeyError`` and a
``ValueError``) naming it and the per-path variables there are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from stresslab.metrics import tail
from stresslab.metrics.headline import CONFIDENCE, HEADLINE_LEVELS, headline_table

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

ACCESSOR_NAME = "stress"
Scenario = int | Sequence[int] | None
"""Which scenarios a plot draws, by their ``scenario`` label: one, several, or None for all."""


@xr.register_dataset_accessor(ACCESSOR_NAME)
class StressAccessor:
    """Tail metrics over the ``path`` dim of a stresslab result, one value per scenario."""

    def __init__(self, ds: xr.Dataset) -> None:
        self._ds = ds

    def var(self, name: str, level: float) -> xr.DataArray:
        """Value-at-risk of the data variable ``name`` at confidence ``level`` in (0, 1).

        Returns:
            The ``ceil(level * n)``-th smallest of the ``n`` path values, in the units of
            the variable (e.g. a fraction of the start price for ``cascade_depth``), float64,
            with the ``path`` dim removed. See :func:`stresslab.metrics.tail.var`.
        """
        return tail.var(self._variable(name), level)

    def es(self, name: str, level: float) -> xr.DataArray:
        """Expected shortfall of ``name`` at confidence ``level``: the mean of the worst ``1 - level`` of paths.

        Returns:
            In the units of the variable, float64, with the ``path`` dim removed; never
            below :meth:`var` at the same level. See :func:`stresslab.metrics.tail.es`.
        """
        return tail.es(self._variable(name), level)

    def exceedance(self, name: str, threshold: float) -> xr.DataArray:
        """Probability that ``name`` exceeds ``threshold`` (in the variable's units): the share of paths above it.

        Returns:
            A probability in [0, 1], float64, with the ``path`` dim removed.
            See :func:`stresslab.metrics.tail.exceedance`.
        """
        return tail.exceedance(self._variable(name), threshold)

    def var_ci(self, name: str, level: float, confidence: float = 0.95) -> xr.DataArray:
        """Distribution-free ``confidence`` interval for the ``level`` VaR of ``name``.

        Returns:
            Two order statistics of the path values, in the units of the variable, float64,
            with the ``path`` dim removed and a ``bound`` dim (``"lower"``, ``"upper"``).
            See :func:`stresslab.metrics.tail.var_ci`.
        """
        return tail.var_ci(self._variable(name), level, confidence)

    def es_ci(self, name: str, level: float, confidence: float = 0.95) -> xr.DataArray:
        """Normal-approximation ``confidence`` interval for the ``level`` ES of ``name``.

        Returns:
            In the units of the variable, float64, with the ``path`` dim removed and a ``bound``
            dim (``"lower"``, ``"upper"``). See :func:`stresslab.metrics.tail.es_ci`.
        """
        return tail.es_ci(self._variable(name), level, confidence)

    def liquidations_at_risk(self, level: float) -> xr.Dataset:
        """VaR and ES at ``level`` of ``liquidated_long + liquidated_short`` per path.

        Returns:
            A Dataset with ``var`` and ``es``, in the result's currency, one value per scenario.
            See :func:`stresslab.metrics.tail.liquidations_at_risk`.
        """
        self._require(*tail.LIQUIDATED)
        return tail.liquidations_at_risk(self._ds, level)

    def bad_debt_at_risk(self, level: float) -> xr.Dataset:
        """VaR and ES at ``level`` of ``bad_debt`` per path.

        Returns:
            A Dataset with ``var`` and ``es``, in the result's currency, one value per scenario.
            See :func:`stresslab.metrics.tail.bad_debt_at_risk`.
        """
        self._require("bad_debt")
        return tail.bad_debt_at_risk(self._ds, level)

    def p_fund_exhausted(self) -> xr.DataArray:
        """Probability that the insurance fund is exhausted: share of paths with ``fund_exhausted_step >= 0``.

        Returns:
            A probability in [0, 1], float64, one value per scenario.
            See :func:`stresslab.metrics.tail.p_fund_exhausted`.
        """
        self._require("fund_exhausted_step")
        return tail.p_fund_exhausted(self._ds)

    def recovery(self) -> xr.Dataset:
        """Time-to-trough and recovery-time statistics, one value per scenario.

        Returns:
            A Dataset with ``median_time_to_trough`` (s, over paths that fell),
            ``median_recovery_time`` (s, over paths that recovered) and ``p_recovered``
            (share of all paths whose ``recovery_time`` is not NaN, in [0, 1]).
            See :func:`stresslab.metrics.tail.recovery_stats`.
        """
        self._require("time_to_trough", "recovery_time")
        return tail.recovery_stats(self._ds)

    def halts(self, quantiles: tuple[float, ...] = tail.HALT_QUANTILES) -> xr.Dataset:
        """Circuit-breaker halt statistics, one value per scenario.

        Returns:
            A Dataset with ``p_halt`` (share of paths with at least one halt, in [0, 1]),
            ``mean_halt_count``, ``mean_halted_time`` (s) and ``halted_time_50``,
            ``halted_time_95``, ``halted_time_99`` (s; one per level of ``quantiles``).
            See :func:`stresslab.metrics.tail.halt_stats`.

        Raises:
            MissingVariableError: (a ``ValueError``) the Dataset has no ``halted_time`` or
                ``halt_count``: the run had no circuit breakers.
        """
        return tail.halt_stats(self._ds, quantiles)

    def summary(self, variables: Sequence[str] = tail.SUMMARY_VARIABLES,
                levels: Sequence[float] = tail.SUMMARY_LEVELS) -> pd.DataFrame:
        """The headline tail metrics, one row per scenario (:func:`stresslab.metrics.tail.summary_table`).

        Columns: the swept config fields, then ``<variable>_var_95``, ``<variable>_es_95``, ... of
        each of ``variables`` (default ``cascade_depth``, fractions of the start price;
        ``"liquidated"``: long plus short) at each of ``levels``, ``p_liquidation`` (in [0, 1])
        and ``mean_bad_debt`` (the result's currency); with circuit breakers, the columns of
        :meth:`halts` after them. ``table.attrs["units"]`` gives each column's units.
        """
        return tail.summary_table(self._ds, tuple(variables), tuple(levels))

    def headline(self, levels: Sequence[float] = HEADLINE_LEVELS,
                 confidence: float = CONFIDENCE) -> pd.DataFrame:
        """VaR and ES with confidence intervals of cascade depth, liquidated notional and bad debt, P(liquidation)
        and P(fund exhausted), one row per scenario: :func:`stresslab.metrics.headline.headline`."""
        return headline_table(self._ds, tuple(levels), confidence)

    def plot_fan(self, quantity: str = "price", scenario: Scenario = None, ax: Axes | None = None) -> Axes | Figure:
        """Fan chart: quantile bands over paths of ``quantity`` against time.

        Args:
            quantity: ``"price"``, ``"depth"`` or ``"liquidation"`` (the ``*_quantiles`` variables).
            scenario: the label of one scenario, a list of labels, or None for all.
            ax: draw on these axes (one scenario: given, or the only one in the Dataset).

        Returns:
            The Axes drawn on when ``scenario`` is one label or ``ax`` is given; otherwise a
            Figure with one panel per scenario (at most :data:`~stresslab.report.figures.MAX_SCENARIOS`).

        Raises:
            ValueError: unknown ``quantity``, its variable missing (naming the band variables
                there are), an unknown scenario, or ``ax`` with several scenarios.
        """
        figures = _figures()
        figures.band(self._ds, quantity)
        return self._draw_scenarios(scenario, ax, lambda a, ds, p: figures.draw_fan(a, ds, quantity, p),
                            lambda ds, ps, new: figures.fan_figure(ds, quantity, ps, new))

    def plot_liquidations(self, scenario: Scenario = None, ax: Axes | None = None) -> Axes | Figure:
        """Fan chart of the notional liquidated between recorded time points: :meth:`plot_fan` of ``"liquidation"``."""
        return self.plot_fan("liquidation", scenario, ax)

    def plot_depth(self, scenario: Scenario = None, ax: Axes | None = None) -> Axes | Figure:
        """Fan chart of available over configured depth (1 = intact, dotted): :meth:`plot_fan` of ``"depth"``."""
        return self.plot_fan("depth", scenario, ax)

    def plot_distribution(self, name: str = "cascade_depth", level: float = tail.HEADLINE_LEVEL,
                          scenario: Scenario = None, ax: Axes | None = None) -> Axes | Figure:
        """Histogram over paths of the per-path variable ``name``, with its VaR and ES at ``level`` marked.

        Fractions (units ``"1"``, e.g. ``cascade_depth``) are shown in percent; the marks
        are at :meth:`var` and :meth:`es` (dashed and dotted), in the same units.

        Args:
            name: a per-path variable.
            level: confidence level of the VaR and ES in (0, 1).
            scenario: the label of one scenario, a list of labels, or None for all.
            ax: draw on these axes (one scenario: given, or the only one in the Dataset).

        Returns:
            The Axes drawn on when ``scenario`` is one label or ``ax`` is given; otherwise a
            Figure with one panel per scenario.

        Raises:
            ValueError: ``name`` missing or not per-path (naming the per-path variables),
                ``level`` outside (0, 1), an unknown scenario, or ``ax`` with several scenarios.
        """
        figures = _figures()
        tail.check_level(level)
        figures.per_path(self._ds, name)
        return self._draw_scenarios(scenario, ax, lambda a, ds, p: figures.draw_distribution(a, ds, name, level, p),
                            lambda ds, ps, new: figures.distribution_figure(ds, name, level, ps, new))

    def plot_exceedance(self, name: str = "cascade_depth", level: float = tail.HEADLINE_LEVEL,
                        scenario: Scenario = None, ax: Axes | None = None) -> Axes:
        """Exceedance curves ``P(name > x)`` against ``x`` on a log scale, one per scenario, on one Axes.

        Args:
            name: a per-path variable (fractions are shown in percent).
            level: a dotted line marks the probability ``1 - level``, where each curve is at its VaR.
            scenario: the label of one scenario, a list of labels, or None for all.
            ax: draw on these axes; default a new figure.

        Returns:
            The Axes: one line per scenario, then the reference line.

        Raises:
            ValueError: ``name`` missing or not per-path, ``level`` outside (0, 1), or an unknown scenario.
        """
        figures = _figures()
        tail.check_level(level)
        figures.per_path(self._ds, name)
        ds = self._with_scenarios()
        positions = self._positions(ds, scenario)
        if ax is None:
            ax = _pyplot_figure()(figsize=figures.WIDE_SIZE, layout="constrained").subplots()
        return figures.draw_exceedance(ax, ds, name, level, positions)

    def _draw_scenarios(self, scenario: Scenario, ax: Axes | None, draw_one: Callable[[Axes, xr.Dataset, int], Axes],
                draw_all: Callable[[xr.Dataset, list[int], Callable[..., Figure]], Figure]) -> Axes | Figure:
        """One scenario on one Axes (``ax`` or a new one), or a new Figure with one panel per scenario."""
        ds = self._with_scenarios()
        positions = self._positions(ds, scenario)
        one = scenario is not None and np.ndim(scenario) == 0
        if ax is None and not one:
            return draw_all(ds, positions, _pyplot_figure())
        if len(positions) != 1:
            raise ValueError(f"ax= draws one scenario; pass scenario=<label> "
                             f"(scenarios: {', '.join(map(str, ds[tail.SCENARIO_DIM].values))})")
        if ax is None:
            ax = _pyplot_figure()(figsize=_figures().PANEL_SIZE, layout="constrained").subplots()
        return draw_one(ax, ds, positions[0])

    def _with_scenarios(self) -> xr.Dataset:
        """The Dataset with a ``scenario`` dim (a Dataset of one selected scenario gets it back, length 1)."""
        if tail.SCENARIO_DIM in self._ds.dims:
            return self._ds
        return self._ds.expand_dims(tail.SCENARIO_DIM)

    @staticmethod
    def _positions(ds: xr.Dataset, scenario: Scenario) -> list[int]:
        """Positions along ``scenario`` of the labels in ``scenario`` (all when None)."""
        labels = ds[tail.SCENARIO_DIM].to_index()
        if scenario is None:
            return list(range(labels.size))
        wanted = [scenario] if np.ndim(scenario) == 0 else list(scenario)
        unknown = [label for label in wanted if label not in labels]
        if unknown or not wanted:
            raise ValueError(f"no scenario {', '.join(map(str, unknown)) or 'selected'}; "
                             f"scenarios: {', '.join(map(str, labels))}")
        return [int(labels.get_loc(label)) for label in wanted]

    def _require(self, *names: str) -> None:
        tail.require(self._ds, *names)

    def _variable(self, name: str) -> xr.DataArray:
        tail.require(self._ds, name)
        return self._ds[name]


def _figures() -> ModuleType:
    """:mod:`stresslab.report.figures`, imported on first use: ``import stresslab`` does not load matplotlib."""
    from stresslab.report import figures

    return figures


def _pyplot_figure() -> Callable[..., Figure]:
    """``matplotlib.pyplot.figure``: figures the accessor makes are pyplot's, so notebooks and ``plt.show`` see them."""
    from matplotlib import pyplot

    return pyplot.figure
