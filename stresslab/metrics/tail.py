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

Confidence intervals (:func:`var_ci`, :func:`es_ci`) have a ``bound`` dim with the
labels ``"lower"`` and ``"upper"``, in the units of the input:

- the VaR interval is distribution-free: two order statistics whose ranks come from
  the Binomial(n, a) law of the number of paths below the true quantile, so its
  coverage is at least ``confidence`` for any continuous distribution (conservative
  for discrete ones and exact up to the rounding of the ranks);
- the ES interval is the normal approximation ``ES +- z * se`` with
  ``se**2 = (s**2 + a * (ES - VaR)**2) / k`` on the ``k`` tail values, where ``s**2`` is
  the sample variance of the tail values and the second term accounts for the
  uncertainty of where the tail starts (asymptotic variance of the empirical ES).

References:
    Acerbi, C. and Tasche, D. (2002), "On the coherence of expected shortfall",
    Journal of Banking & Finance 26(7).
    David, H. A. and Nagaraja, H. N. (2003), "Order Statistics", 3rd ed., section 7.1
    (distribution-free confidence intervals for quantiles).
    Brazauskas, V., Jones, B. L., Puri, M. L. and Zitikis, R. (2008), "Estimating
    conditional tail expectation with actuarial applications in view", Journal of
    Statistical Planning and Inference 138(11).
"""

from __future__ import annotations

import math
import tomllib
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from stresslab.errors import MissingVariableError

PATH_DIM = "path"
SCENARIO_DIM = "scenario"
SUMMARY_LEVELS = (0.95, 0.99)
"""Confidence levels of the VaR and ES columns of :func:`summary_table`."""
HEADLINE_LEVEL = SUMMARY_LEVELS[-1]
"""The confidence level that figures mark by default (VaR and ES on distributions, exceedance reference)."""
_RANK_TOLERANCE = 1e-9
"""``level * n`` this close to an integer is that integer (undoes float error such as 0.95 * 200)."""

BOUND_DIM = "bound"
BOUNDS = ("lower", "upper")
"""Labels of the ``bound`` dim of :func:`var_ci` and :func:`es_ci`."""
LIQUIDATED = ("liquidated_long", "liquidated_short")
LIQUIDATED_TOTAL = "liquidated"
"""The name :func:`loss` gives the notional liquidated per path, long plus short."""
SUMMARY_VARIABLES = ("cascade_depth",)
"""Variables whose VaR and ES :func:`summary_table` shows by default."""
HALT_VARIABLES = ("halted_time", "halt_count")
"""Per-path circuit-breaker outputs: seconds halted (float) and number of halts (int), on (scenario, path)."""
HALT_QUANTILES = (0.5, 0.95, 0.99)
"""Quantile levels of the halted time reported by :func:`halt_stats`."""

Data = xr.DataArray | xr.Dataset
Kernel = Callable[[np.ndarray], np.ndarray]



def require(ds: xr.Dataset, *names: str, purpose: str | None = None) -> None:
    """Raise :class:`MissingVariableError` unless every one of ``names`` is a data variable of ``ds``.

    Args:
        ds: the Dataset to check.
        names: the data variables needed.
        purpose: what needs them (e.g. ``"halt statistics"``), said at the start of the message.
    """
    missing = [name for name in names if name not in ds.data_vars]
    if not missing:
        return
    head = f"no data variable {', '.join(repr(name) for name in missing)}"
    if purpose is not None:
        head = f"{purpose}: {head} (needed: {', '.join(names)})"
    raise MissingVariableError(f"{head}; per-path variables: {', '.join(per_path_variables(ds)) or 'none'}")


def per_path_variables(ds: xr.Dataset) -> list[str]:
    """The names of ``ds``'s data variables with a ``path`` dim, sorted."""
    return sorted(str(name) for name, v in ds.data_vars.items() if PATH_DIM in v.dims)


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
    check_level(level)
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
    check_level(level)
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


def var_ci(data: Data, level: float, confidence: float = 0.95) -> Data:
    """Distribution-free confidence interval for the ``level`` value-at-risk (:func:`var`).

    With ``B ~ Binomial(n, level)``, the lower bound is the ``l``-th and the upper the
    ``u``-th smallest path value, where ``l`` is the smallest rank with
    ``P(B <= l) >= (1 - confidence) / 2`` and ``u - 1`` the smallest with
    ``P(B <= u - 1) >= (1 + confidence) / 2``; then ``P(X_(l) <= VaR < X_(u)) >= confidence``
    for any continuous distribution. Ranks are clipped to ``[1, n]``: with too few paths
    for the requested confidence (roughly ``n * (1 - level) < 4`` at 95 %) the interval
    reaches the sample minimum or maximum and its coverage is below ``confidence``.

    Args:
        data: a DataArray with a ``path`` dim, or a Dataset (every data variable with a
            ``path`` dim is reduced, the others are dropped).
        level: confidence level of the VaR in (0, 1), e.g. 0.99.
        confidence: coverage of the interval in (0, 1), default 0.95.

    Returns:
        float64 in the units of the input, with the ``path`` dim removed and a ``bound``
        dim (``"lower"``, ``"upper"``) added last. NaN where any path is NaN.
    """
    check_level(level)
    check_level(confidence, "confidence")
    return _reduce(data, lambda x: _var_ci(x, level, confidence),
                   f"{_percent(confidence)} confidence interval of the {_percent(level)} value-at-risk of",
                   bounds=True)


def es_ci(data: Data, level: float, confidence: float = 0.95) -> Data:
    """Normal-approximation confidence interval for the ``level`` expected shortfall (:func:`es`).

    ``ES +- z * se`` with ``z`` the standard normal ``(1 + confidence) / 2`` quantile and
    ``se**2 = (s**2 + level * (ES - VaR)**2) / k``: ``k`` is the number of tail values
    averaged by :func:`es`, ``s**2`` their sample variance (ddof 1), and the second term
    the variance that comes from estimating where the tail starts. It is asymptotic: use
    ``k`` of at least ~50 (e.g. 5,000 paths at 99 %); heavy tails need more, and with
    infinite tail variance the interval is not valid at all.

    Args:
        data: a DataArray with a ``path`` dim, or a Dataset (every data variable with a
            ``path`` dim is reduced, the others are dropped).
        level: confidence level of the ES in (0, 1), e.g. 0.99.
        confidence: coverage of the interval in (0, 1), default 0.95.

    Returns:
        float64 in the units of the input, with the ``path`` dim removed and a ``bound``
        dim (``"lower"``, ``"upper"``) added last. NaN where any path is NaN, and both
        bounds equal the ES when the tail holds a single value.
    """
    check_level(level)
    check_level(confidence, "confidence")
    return _reduce(data, lambda x: _es_ci(x, level, confidence),
                   f"{_percent(confidence)} confidence interval of the {_percent(level)} expected shortfall of",
                   bounds=True)


def liquidations_at_risk(ds: xr.Dataset, level: float) -> xr.Dataset:
    """Liquidations-at-risk: VaR and ES of the notional liquidated per path, long plus short.

    Args:
        ds: a result Dataset with ``liquidated_long`` and ``liquidated_short`` (quote currency).
        level: confidence level in (0, 1), e.g. 0.99.

    Returns:
        A Dataset with ``var`` and ``es`` of ``liquidated_long + liquidated_short``, in the
        quote currency, one value per scenario (the ``path`` dim removed).
    """
    return _var_es(loss(ds, LIQUIDATED_TOTAL), level)


def bad_debt_at_risk(ds: xr.Dataset, level: float) -> xr.Dataset:
    """Bad-debt-at-risk: VaR and ES of ``bad_debt`` per path.

    Args:
        ds: a result Dataset with ``bad_debt`` (quote currency: negative equity left by
            liquidation fills beyond the bankruptcy price).
        level: confidence level in (0, 1), e.g. 0.99.

    Returns:
        A Dataset with ``var`` and ``es`` of ``bad_debt``, in the quote currency, one value
        per scenario (the ``path`` dim removed).
    """
    return _var_es(ds["bad_debt"], level)


def p_fund_exhausted(ds: xr.Dataset) -> xr.DataArray:
    """Probability that the insurance fund is exhausted: the share of paths with ``fund_exhausted_step >= 0``.

    Args:
        ds: a result Dataset with ``fund_exhausted_step`` (the first step ending with the
            fund at zero, ``-1`` when it never was).

    Returns:
        A probability in [0, 1] (units ``"1"``), float64, one value per scenario.
    """
    return _reduce(ds["fund_exhausted_step"], _share_nonnegative, "probability of", units="1")


def recovery_stats(ds: xr.Dataset) -> xr.Dataset:
    """Time-to-trough and recovery-time statistics, one value per scenario.

    ``time_to_trough`` is NaN on paths that never traded below the start price and
    ``recovery_time`` on paths that did not regain half of the fall (in log terms) within
    the horizon; the medians skip those paths (NaN when there are none left).

    Args:
        ds: a result Dataset with ``time_to_trough`` and ``recovery_time`` (seconds).

    Returns:
        A Dataset with:

        - ``median_time_to_trough``: median over paths that fell, in seconds;
        - ``median_recovery_time``: median over paths that recovered, in seconds;
        - ``p_recovered``: share of all paths whose ``recovery_time`` is not NaN, in [0, 1].
    """
    trough, recovery = ds["time_to_trough"], ds["recovery_time"]
    return xr.Dataset({
        "median_time_to_trough": _reduce(trough, _nanmedian, "median over paths that fell of"),
        "median_recovery_time": _reduce(recovery, _nanmedian, "median over paths that recovered of"),
        "p_recovered": _reduce(recovery, _share_finite, "share of paths with a finite", units="1"),
    })


def halt_stats(ds: xr.Dataset, quantiles: tuple[float, ...] = HALT_QUANTILES) -> xr.Dataset:
    """Circuit-breaker halt statistics, one value per scenario.

    Args:
        ds: a result Dataset with the per-path ``halted_time`` (seconds the market was
            halted) and ``halt_count`` (number of halts), as written by runs with circuit
            breakers.
        quantiles: levels in (0, 1) of the halted-time quantiles, default 50, 95 and 99 %.

    Returns:
        A Dataset with:

        - ``p_halt``: share of paths with at least one halt (``halt_count > 0``), in [0, 1];
        - ``mean_halt_count``: mean number of halts per path;
        - ``mean_halted_time``: mean seconds halted per path (paths without a halt count as 0);
        - ``halted_time_50``, ``halted_time_95``, ...: the quantiles of the seconds halted per
          path, one variable per level, with the estimator of :func:`var` (the
          ``ceil(level * n)``-th smallest value).

        All float64 with the ``path`` dim removed; NaN for a scenario with a NaN path.

    Raises:
        MissingVariableError: (a ``ValueError``) ``halted_time`` or ``halt_count`` is absent,
            e.g. a run without circuit breakers.
    """
    require(ds, *HALT_VARIABLES, purpose="halt statistics")
    for level in quantiles:
        check_level(level, "quantile level")
    halted, count = ds[HALT_VARIABLES[0]], ds[HALT_VARIABLES[1]]
    columns = {
        "p_halt": _reduce(count, _share_positive, "share of paths with at least one halt, from", units="1"),
        "mean_halt_count": _reduce(count, _mean, "mean over paths of"),
        "mean_halted_time": _reduce(halted, _mean, "mean over paths of"),
    }
    for level in quantiles:
        columns[f"halted_time_{level_suffix(level)}"] = _reduce(
            halted, lambda x, level=level: _var(x, level), f"{_percent(level)} quantile over paths of")
    return xr.Dataset(columns)


def summary_table(ds: xr.Dataset, variables: tuple[str, ...] = SUMMARY_VARIABLES,
                  levels: tuple[float, ...] = SUMMARY_LEVELS) -> pd.DataFrame:
    """The headline tail metrics of a run, one row per scenario.

    Args:
        ds: a Dataset from :func:`stresslab.simulate` (or read back from disk), with
            a ``scenario`` dim and the per-path variables ``cascade_depth``,
            ``liquidated_long``, ``liquidated_short`` and ``bad_debt``.
        variables: per-path variables whose VaR and ES are columns, default ``cascade_depth``;
            ``"liquidated"`` is the notional liquidated, long plus short (:func:`loss`).
        levels: confidence levels in (0, 1) of the VaR and ES, default 95 % and 99 %.

    Returns:
        A DataFrame indexed by ``scenario``. It starts with the swept config fields
        (one column per coordinate on ``scenario``), then:

        - ``<variable>_var_95``, ``<variable>_es_95``, ``<variable>_var_99``, ... : VaR and ES
          of each of ``variables`` at each of ``levels``, in the variable's units (``cascade_depth``:
          fractions of the start price; money: the result's currency);
        - ``p_liquidation``: probability that a path liquidates anything, long or
          short, in [0, 1];
        - ``mean_bad_debt``: mean bad debt over paths, in the result's currency;
        - only when the run had circuit breakers (:func:`has_halts`), the columns of
          :func:`halt_stats`: ``p_halt``, ``mean_halt_count``, ``mean_halted_time`` and
          ``halted_time_50``, ``halted_time_95``, ``halted_time_99`` (seconds).

        ``table.attrs["units"]`` maps every metric column to its units.
    """
    if SCENARIO_DIM not in ds.dims:
        raise ValueError(f"the Dataset has no {SCENARIO_DIM!r} dim; select with a list, e.g. ds.sel(scenario=[0])")
    for level in levels:
        check_level(level)
    columns: dict[str, xr.DataArray] = {}
    for name in variables:
        data = loss(ds, name)
        for level in levels:
            columns[f"{name}_var_{level_suffix(level)}"] = var(data, level)
            columns[f"{name}_es_{level_suffix(level)}"] = es(data, level)
    columns["p_liquidation"] = exceedance(loss(ds, LIQUIDATED_TOTAL), 0.0)
    mean_bad_debt = ds["bad_debt"].astype(np.float64).mean(PATH_DIM, skipna=False)
    columns["mean_bad_debt"] = mean_bad_debt.assign_attrs(units=ds["bad_debt"].attrs.get("units", "1"))
    if has_halts(ds):
        columns.update({str(name): column for name, column in halt_stats(ds).data_vars.items()})
    table = pd.DataFrame({name: ds[name].to_numpy() for name in swept_coords(ds)}, index=ds[SCENARIO_DIM].to_index())
    for name, column in columns.items():
        table[name] = column.to_numpy()
    table.attrs["units"] = {name: str(column.attrs.get("units", "1")) for name, column in columns.items()}
    return table


def loss(ds: xr.Dataset, name: str) -> xr.DataArray:
    """The per-path variable ``name`` of ``ds``; ``"liquidated"`` is ``liquidated_long + liquidated_short``.

    Raises:
        MissingVariableError: ``ds`` lacks it (or one of the two liquidated variables).
    """
    if name != LIQUIDATED_TOTAL:
        require(ds, name)
        return ds[name]
    require(ds, *LIQUIDATED)
    total = ds[LIQUIDATED[0]] + ds[LIQUIDATED[1]]
    total.attrs = {"units": ds[LIQUIDATED[0]].attrs.get("units", "quote currency"),
                   "long_name": "notional liquidated, long plus short"}
    return total.rename(LIQUIDATED_TOTAL)


def swept_coords(ds: xr.Dataset) -> list[str]:
    """The swept config fields of a result: its coordinates on the ``scenario`` dim (e.g. ``"market.sigma"``)."""
    return [str(name) for name, coord in ds.coords.items() if coord.dims == (SCENARIO_DIM,) and name != SCENARIO_DIM]


def has_halts(ds: xr.Dataset) -> bool:
    """Whether ``ds`` holds halts worth showing: the outputs :func:`halt_stats` needs, from a run with breakers.

    A result whose resolved ``config`` attribute leaves ``breakers.enabled`` off (in every
    scenario of a sweep) has none, though it carries the (zero) halt outputs; a Dataset
    without a ``config`` attribute is judged by its variables alone.
    """
    if not all(name in ds.data_vars for name in HALT_VARIABLES):
        return False
    if "config" not in ds.attrs:
        return True
    try:
        enabled = tomllib.loads(str(ds.attrs["config"])).get("breakers", {}).get("enabled", False)
    except (tomllib.TOMLDecodeError, AttributeError):
        return True
    return any(enabled) if isinstance(enabled, list) else bool(enabled)


def level_suffix(level: float) -> str:
    """The suffix of :func:`summary_table`'s VaR/ES column names for ``level``: ``"95"`` for 0.95."""
    return f"{100 * level:g}".replace(".", "_")


def _reduce(data: Data, kernel: Kernel, description: str, units: str | None = None, bounds: bool = False) -> Data:
    """Apply ``kernel`` (path values on the last axis -> float64) to one DataArray or each of a Dataset's.

    With ``bounds``, the kernel returns ``(..., 2)`` and the result gets a ``bound`` dim.
    """
    if isinstance(data, xr.Dataset):
        names = [name for name, v in data.data_vars.items() if PATH_DIM in v.dims]
        if not names:
            raise ValueError(f"no data variable has a {PATH_DIM!r} dim to reduce")
        return xr.Dataset({name: _reduce(data[name], kernel, description, units, bounds) for name in names},
                          attrs=data.attrs)
    if PATH_DIM not in data.dims:
        raise ValueError(f"{data.name or 'the array'} has no {PATH_DIM!r} dim (dims: {', '.join(map(str, data.dims))})")
    if data.sizes[PATH_DIM] == 0:
        raise ValueError(f"{data.name or 'the array'} has no paths")
    gufunc_kwargs: dict[str, object] = {"allow_rechunk": True}
    if bounds:
        gufunc_kwargs["output_sizes"] = {BOUND_DIM: len(BOUNDS)}
    result = xr.apply_ufunc(
        kernel, data, input_core_dims=[[PATH_DIM]], output_core_dims=[[BOUND_DIM] if bounds else []],
        dask="parallelized", output_dtypes=[np.float64], dask_gufunc_kwargs=gufunc_kwargs, keep_attrs=False,
    )
    if bounds:
        result = result.assign_coords({BOUND_DIM: list(BOUNDS)})
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


def _var_ci(x: np.ndarray, level: float, confidence: float) -> np.ndarray:
    n = x.shape[-1]
    alpha = 1 - confidence
    lower_rank = min(max(int(stats.binom.ppf(alpha / 2, n, level)), 1), n)
    upper_rank = min(max(int(stats.binom.ppf(1 - alpha / 2, n, level)) + 1, 1), n)
    ordered = np.partition(x, [lower_rank - 1, upper_rank - 1], axis=-1)
    value = np.stack([ordered[..., lower_rank - 1], ordered[..., upper_rank - 1]], axis=-1).astype(np.float64)
    return np.where(np.isnan(x).any(axis=-1, keepdims=True), np.nan, value) if x.dtype.kind == "f" else value


def _es_ci(x: np.ndarray, level: float, confidence: float) -> np.ndarray:
    n = x.shape[-1]
    _, tail = _tail_ranks(level, n)
    worst = np.sort(np.partition(x, n - tail, axis=-1)[..., n - tail:], axis=-1).astype(np.float64)
    shortfall = worst.mean(axis=-1)
    threshold = _var(x, level)
    tail_variance = worst.var(axis=-1, ddof=1) if tail > 1 else np.zeros_like(shortfall)
    stderr = np.sqrt((tail_variance + level * (shortfall - threshold) ** 2) / tail) if tail > 1 else tail_variance
    half_width = stats.norm.ppf((1 + confidence) / 2) * stderr
    value = np.stack([shortfall - half_width, shortfall + half_width], axis=-1)
    return np.where(np.isnan(x).any(axis=-1, keepdims=True), np.nan, value) if x.dtype.kind == "f" else value


def _var_es(data: xr.DataArray, level: float) -> xr.Dataset:
    return xr.Dataset({"var": var(data, level), "es": es(data, level)})


def _share_nonnegative(x: np.ndarray) -> np.ndarray:
    return np.mean(x >= 0, axis=-1, dtype=np.float64)


def _share_positive(x: np.ndarray) -> np.ndarray:
    return _nan_where_any_nan(x, np.mean(x > 0, axis=-1, dtype=np.float64))


def _mean(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=-1, dtype=np.float64)


def _share_finite(x: np.ndarray) -> np.ndarray:
    return np.mean(~np.isnan(x), axis=-1, dtype=np.float64)


def _nanmedian(x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slice: no path fell or recovered
        return np.nanmedian(x.astype(np.float64), axis=-1)


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


def check_level(level: float, name: str = "level") -> None:
    """Raise ``ValueError`` naming ``name`` unless ``level`` is a probability strictly between 0 and 1."""
    if not 0 < level < 1:
        raise ValueError(f"{name} must be strictly between 0 and 1 (got {level!r})")


def _percent(level: float) -> str:
    return f"{100 * level:g} %"
