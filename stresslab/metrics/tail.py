"""Tail metrics over simulated paths: value-at-risk, expected shortfall, exceedance.

Every metric reduces the ``path`` dimension and keeps the others (``scenario`` and
the swept coordinates on it), so a sweep gives one number per scenario. Metrics
take loss-like variables, where larger is worse: ``cascade_depth`` (a fraction of
the start price), ``bad_debt`` (quote currency), liquidated notional, and so on.
A result has the units of its input; probabilities are fractions in [0, 1].

A path with a NaN makes the metric NaN for its scenario: dropping such paths
would silently shorten the tail that the metric is meant to measure.

The estimators are the standard empirical ones on ``n`` paths:

- VaR at level ``a`` is the ``ceil(a * n)``-th smallest value (the inverse of the
  empirical CDF, numpy's ``method="inverted_cdf"``);
- ES at level ``a`` is the mean of the ``ceil((1 - a) * n)`` largest values, so
  ``ES >= VaR`` on every sample.

References:
    Acerbi, C. and Tasche, D. (2002), "On the coherence of expected shortfall",
    Journal of Banking & Finance 26(7).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import xarray as xr

PATH_DIM = "path"
SCENARIO_DIM = "scenario"
SUMMARY_LEVELS = (0.95, 0.99)
"""Confidence levels of the VaR and ES columns of :func:`summary_table`."""
_RANK_TOLERANCE = 1e-9
"""``level * n`` this close to an integer is that integer (undoes float error such as 0.95 * 200)."""

Data = xr.DataArray | xr.Dataset
Kernel = Callable[[np.ndarray], np.ndarray]


def var(data: Data, level: float) -> Data:
    """Value-at-risk: the ``level``-quantile over paths of a loss-like variable.

    Args:
        data: a DataArray with a ``path`` dim, or a Dataset (every data variable
            with a ``path`` dim is reduced, the others are dropped).
        level: confidence level in (0, 1), e.g. 0.99.

    Returns:
        The ``ceil(level * n)``-th smallest of the ``n`` path values, in the units
        of the input (e.g. a fraction of the start price for ``cascade_depth``), as
        float64 with the ``path`` dim removed.

    Examples:
        >>> var(ds["cascade_depth"], 0.99)  # 1 % of paths fall deeper than this
    """
    _check_level(level)
    return _reduce(data, lambda x: _var(x, level), f"{_percent(level)} value-at-risk of")


def es(data: Data, level: float) -> Data:
    """Expected shortfall: the mean of the worst ``1 - level`` share of paths.

    Args:
        data: a DataArray with a ``path`` dim, or a Dataset (every data variable
            with a ``path`` dim is reduced, the others are dropped).
        level: confidence level in (0, 1), e.g. 0.99.

    Returns:
        The mean of the ``ceil((1 - level) * n)`` largest of the ``n`` path values,
        in the units of the input, as float64 with the ``path`` dim removed. It is
        never below :func:`var` at the same level.
    """
    _check_level(level)
    return _reduce(data, lambda x: _es(x, level), f"{_percent(level)} expected shortfall of")


def exceedance(data: Data, threshold: float) -> Data:
    """Probability that a variable exceeds ``threshold``: the share of paths with ``X > threshold``.

    Args:
        data: a DataArray with a ``path`` dim, or a Dataset (every data variable
            with a ``path`` dim is reduced, the others are dropped).
        threshold: in the units of the variable (e.g. 0.05 for a 5 % cascade depth).

    Returns:
        A probability in [0, 1] (units ``"1"``), float64, with the ``path`` dim removed.
    """
    return _reduce(data, lambda x: _exceedance(x, threshold), f"probability of exceeding {threshold:g} of",
                   units="1")


def summary_table(ds: xr.Dataset) -> pd.DataFrame:
    """The headline tail metrics of a run, one row per scenario.

    Args:
        ds: a Dataset from :func:`stresslab.simulate` (or read back from disk), with
            a ``scenario`` dim and the per-path variables ``cascade_depth``,
            ``liquidated_long``, ``liquidated_short`` and ``bad_debt``.

    Returns:
        A DataFrame indexed by ``scenario``. It starts with the swept config fields
        (one column per coordinate on ``scenario``), then:

        - ``var_95``, ``es_95``, ``var_99``, ``es_99``: VaR and ES of
          ``cascade_depth`` at 95 % and 99 %, fractions of the start price;
        - ``p_liquidation``: probability that a path liquidates anything, long or
          short, in [0, 1];
        - ``mean_bad_debt``: mean bad debt over paths, quote currency.
    """
    if SCENARIO_DIM not in ds.dims:
        raise ValueError(f"the Dataset has no {SCENARIO_DIM!r} dim; select with a list, e.g. ds.sel(scenario=[0])")
    depth = ds["cascade_depth"]
    columns: dict[str, xr.DataArray] = {}
    for level in SUMMARY_LEVELS:
        columns[f"var_{level_suffix(level)}"] = var(depth, level)
        columns[f"es_{level_suffix(level)}"] = es(depth, level)
    columns["p_liquidation"] = exceedance(ds["liquidated_long"] + ds["liquidated_short"], 0.0)
    columns["mean_bad_debt"] = ds["bad_debt"].astype(np.float64).mean(PATH_DIM, skipna=False)
    swept = [name for name, coord in ds.coords.items() if coord.dims == (SCENARIO_DIM,) and name != SCENARIO_DIM]
    table = pd.DataFrame({name: ds[name].to_numpy() for name in swept}, index=ds[SCENARIO_DIM].to_index())
    for name, column in columns.items():
        table[name] = column.to_numpy()
    return table


def level_suffix(level: float) -> str:
    """The suffix of :func:`summary_table`'s VaR/ES column names for ``level``: ``"95"`` for 0.95."""
    return f"{100 * level:g}".replace(".", "_")


def _reduce(data: Data, kernel: Kernel, description: str, units: str | None = None) -> Data:
    """Apply ``kernel`` (path values on the last axis -> float64) to one DataArray or each of a Dataset's."""
    if isinstance(data, xr.Dataset):
        names = [name for name, v in data.data_vars.items() if PATH_DIM in v.dims]
        if not names:
            raise ValueError(f"no data variable has a {PATH_DIM!r} dim to reduce")
        return xr.Dataset({name: _reduce(data[name], kernel, description, units) for name in names}, attrs=data.attrs)
    if PATH_DIM not in data.dims:
        raise ValueError(f"{data.name or 'the array'} has no {PATH_DIM!r} dim (dims: {', '.join(map(str, data.dims))})")
    if data.sizes[PATH_DIM] == 0:
        raise ValueError(f"{data.name or 'the array'} has no paths")
    result = xr.apply_ufunc(
        kernel, data, input_core_dims=[[PATH_DIM]], dask="parallelized", output_dtypes=[np.float64],
        dask_gufunc_kwargs={"allow_rechunk": True}, keep_attrs=False,
    )
    long_name = data.attrs.get("long_name", data.name or "the variable")
    result.attrs = {"units": units if units is not None else data.attrs.get("units", "1"),
                    "long_name": f"{description} {long_name}"}
    return result


def _var(x: np.ndarray, level: float) -> np.ndarray:
    n = x.shape[-1]
    rank, _ = _tail_ranks(level, n)
    value = np.partition(x, rank - 1, axis=-1)[..., rank - 1].astype(np.float64)
    return _nan_where_any_nan(x, value)


def _es(x: np.ndarray, level: float) -> np.ndarray:
    n = x.shape[-1]
    _, tail = _tail_ranks(level, n)
    # sorted, so that the float sum, and the result, does not depend on the order of the paths
    worst = np.sort(np.partition(x, n - tail, axis=-1)[..., n - tail:], axis=-1)
    return _nan_where_any_nan(x, worst.astype(np.float64).mean(axis=-1))


def _exceedance(x: np.ndarray, threshold: float) -> np.ndarray:
    return _nan_where_any_nan(x, np.mean(x > threshold, axis=-1, dtype=np.float64))


def _tail_ranks(level: float, n: int) -> tuple[int, int]:
    """(1-based rank of the VaR order statistic, number of largest values averaged by ES) for ``n`` paths.

    With ``p = level * n``: the rank is ``ceil(p)`` and the tail holds ``n - floor(p)``
    values (``= ceil((1 - level) * n)``), so the tail starts at or above the VaR rank.
    """
    position = level * n
    nearest = round(position)
    if abs(position - nearest) <= _RANK_TOLERANCE * n:
        position = nearest
    return min(max(math.ceil(position), 1), n), min(max(n - math.floor(position), 1), n)


def _nan_where_any_nan(x: np.ndarray, value: np.ndarray) -> np.ndarray:
    if x.dtype.kind != "f":
        return value
    return np.where(np.isnan(x).any(axis=-1), np.nan, value)


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must be strictly between 0 and 1 (got {level!r})")


def _percent(level: float) -> str:
    return f"{100 * level:g} %"
