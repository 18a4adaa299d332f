"""The ``ds.stress`` accessor: tail metrics of a result Dataset by variable name.

Importing :mod:`stresslab` registers it, so any Dataset from :func:`stresslab.simulate`
or read back from disk (:func:`stresslab.io.store.read`, lazily) answers::

    ds.stress.var("cascade_depth", 0.99)       # fraction of the start price, per scenario
    ds.stress.es("bad_debt", 0.95)             # quote currency, per scenario
    ds.stress.exceedance("cascade_depth", 0.1) # probability in [0, 1], per scenario
    ds.stress.summary()                        # pandas DataFrame, one row per scenario
    ds.stress.var_ci("cascade_depth", 0.99)    # lower/upper along a ``bound`` dim
    ds.stress.es_ci("cascade_depth", 0.99)
    ds.stress.liquidations_at_risk(0.99)       # Dataset: var, es, quote currency
    ds.stress.bad_debt_at_risk(0.99)           # Dataset: var, es, quote currency
    ds.stress.p_fund_exhausted()               # probability in [0, 1]
    ds.stress.recovery()                       # Dataset: medians in seconds, p_recovered

Each method is a thin wrapper over :mod:`stresslab.metrics.tail`, with the same
estimators, units and NaN handling.
"""

from __future__ import annotations

import pandas as pd
import xarray as xr

from stresslab.metrics import tail

ACCESSOR_NAME = "stress"


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
            A Dataset with ``var`` and ``es``, quote currency, one value per scenario.
            See :func:`stresslab.metrics.tail.liquidations_at_risk`.
        """
        self._require(*tail.LIQUIDATED)
        return tail.liquidations_at_risk(self._ds, level)

    def bad_debt_at_risk(self, level: float) -> xr.Dataset:
        """VaR and ES at ``level`` of ``bad_debt`` per path.

        Returns:
            A Dataset with ``var`` and ``es``, quote currency, one value per scenario.
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

    def summary(self) -> pd.DataFrame:
        """The headline tail metrics, one row per scenario (:func:`stresslab.metrics.tail.summary_table`).

        Columns: the swept config fields, then ``var_95``, ``es_95``, ``var_99``, ``es_99``
        of ``cascade_depth`` (fractions of the start price), ``p_liquidation`` (in [0, 1])
        and ``mean_bad_debt`` (quote currency).
        """
        return tail.summary_table(self._ds)

    def _require(self, *names: str) -> None:
        for name in names:
            self._variable(name)

    def _variable(self, name: str) -> xr.DataArray:
        if name not in self._ds.data_vars:
            per_path = sorted(str(n) for n, v in self._ds.data_vars.items() if tail.PATH_DIM in v.dims)
            raise KeyError(f"no data variable {name!r}; per-path variables: {', '.join(per_path) or 'none'}")
        return self._ds[name]
