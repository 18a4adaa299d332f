"""The headline numbers of a run, with confidence intervals, as a table and as a metrics file.

Per scenario: VaR and ES (each with its 95 % confidence interval) of the cascade depth
(fraction of the start price), the notional liquidated, long plus short, and the bad debt
(both in the result's currency, ``ds.attrs["currency"]``); the probability that a path
liquidates anything; the probability that the insurance fund is exhausted. Written by
``stresslab run --metrics PATH`` and into every report directory (``metrics.json``).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from stresslab.metrics import tail

HEADLINE_VARIABLES = ("cascade_depth", tail.LIQUIDATED_TOTAL, "bad_debt")
"""Variables whose VaR and ES :func:`headline` reports."""
HEADLINE_LEVELS = tail.SUMMARY_LEVELS
CONFIDENCE = 0.95
"""Coverage of the confidence intervals."""
METRICS_SUFFIXES = (".json", ".csv")
"""The formats :func:`write_metrics` writes, by suffix."""
FUND_VARIABLE = "fund_exhausted_step"
RUN_ATTRS = ("title", "config_name", "history", "date_created", "stresslab_version", "seed", "paths", "swept")
"""Dataset attributes copied into a JSON metrics file, where present."""


def headline(ds: xr.Dataset, levels: tuple[float, ...] = HEADLINE_LEVELS,
             confidence: float = CONFIDENCE) -> pd.DataFrame:
    """The headline metrics of ``ds``, one row per scenario.

    Args:
        ds: a result with a ``scenario`` dim and the per-path ``cascade_depth``,
            ``liquidated_long``, ``liquidated_short`` and ``bad_debt`` (``fund_exhausted_step``
            when it has one).
        levels: confidence levels of the VaR and ES, each in (0, 1).
        confidence: coverage of the intervals, in (0, 1).

    Returns:
        A DataFrame indexed by ``scenario``: the swept config fields, then for each of
        ``cascade_depth``, ``liquidated`` (long plus short) and ``bad_debt`` and each level
        (suffix ``95`` for 0.95): ``<variable>_var_95`` with ``<variable>_var_95_lower`` and
        ``_upper`` (:func:`~stresslab.metrics.tail.var_ci`, distribution-free), and
        ``<variable>_es_95`` with ``_lower`` and ``_upper`` (:func:`~stresslab.metrics.tail.es_ci`,
        normal approximation); then ``p_liquidation`` (paths with any liquidation) and
        ``p_fund_exhausted``, in [0, 1]. ``table.attrs`` holds ``units`` (column -> units:
        ``"1"`` or the currency code), ``currency``, ``paths``, ``levels`` and ``confidence``.

    Examples:
        >>> headline(ds).loc[0, "liquidated_es_99"]   # USD, scenario 0
    """
    if tail.SCENARIO_DIM not in ds.dims:
        raise ValueError(f"the Dataset has no {tail.SCENARIO_DIM!r} dim; select with a list, e.g. ds.sel(scenario=[0])")
    for level in levels:
        tail.check_level(level)
    tail.check_level(confidence, "confidence")
    table = pd.DataFrame({name: ds[name].to_numpy() for name in tail.swept_coords(ds)},
                         index=ds[tail.SCENARIO_DIM].to_index())
    units: dict[str, str] = {}
    for name in HEADLINE_VARIABLES:
        data = tail.loss(ds, name)
        unit = str(data.attrs.get("units", "1"))
        for level in levels:
            stem = f"{name}_%s_{tail.level_suffix(level)}"
            for measure, point, interval in (("var", tail.var, tail.var_ci), ("es", tail.es, tail.es_ci)):
                column = stem % measure
                bounds = interval(data, level, confidence)
                table[column] = point(data, level).to_numpy()
                for bound in tail.BOUNDS:
                    table[f"{column}_{bound}"] = bounds.sel({tail.BOUND_DIM: bound}).to_numpy()
                units.update({column: unit, f"{column}_lower": unit, f"{column}_upper": unit})
    table["p_liquidation"] = tail.exceedance(tail.loss(ds, tail.LIQUIDATED_TOTAL), 0.0).to_numpy()
    units["p_liquidation"] = "1"
    if FUND_VARIABLE in ds.data_vars:
        table["p_fund_exhausted"] = tail.p_fund_exhausted(ds).to_numpy()
        units["p_fund_exhausted"] = "1"
    table.attrs.update(units=units, currency=str(ds.attrs.get("currency", ds["bad_debt"].attrs.get("units", ""))),
                       paths=int(ds.sizes[tail.PATH_DIM]), levels=list(levels), confidence=confidence)
    return table


headline_table = headline
"""An alias of :func:`headline` for modules with a ``headline`` of their own (the ``ds.stress`` accessor)."""


def check_metrics_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as a Path when its suffix is one :func:`write_metrics` writes.

    Raises:
        ValueError: any other suffix, naming the path and the suffixes allowed.
    """
    target = Path(path)
    if target.suffix.lower() not in METRICS_SUFFIXES:
        found = f"{target.suffix!r}" if target.suffix else "no suffix"
        raise ValueError(f"{target}: a metrics file ends in {' or '.join(METRICS_SUFFIXES)} (it has {found})")
    return target


def write_metrics(ds: xr.Dataset, path: str | os.PathLike[str], *, levels: tuple[float, ...] = HEADLINE_LEVELS,
                  confidence: float = CONFIDENCE) -> Path:
    """Write :func:`headline` of ``ds`` to ``path``: JSON for ``*.json``, CSV for ``*.csv``; missing parents made.

    The JSON file holds ``currency``, ``paths``, ``levels``, ``confidence``, ``units`` (column ->
    units), the run's provenance attributes and ``scenarios``: one object per scenario with the
    swept values and every metric (NaN as ``null``). The CSV file is the table itself, one row per
    scenario with a ``scenario`` column; its units are those of the JSON file.

    Returns:
        The path written.

    Raises:
        ValueError: ``path`` ends in neither ``.json`` nor ``.csv``.
    """
    target = check_metrics_path(path)
    table = headline(ds, levels, confidence)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix.lower() == ".csv":
        table.to_csv(target, index_label=tail.SCENARIO_DIM)
        return target
    rows = [{tail.SCENARIO_DIM: _plain(label), **{str(k): _plain(v) for k, v in row.items()}}
            for label, row in table.iterrows()]
    document = {
        **{key: _plain(ds.attrs[key]) for key in RUN_ATTRS if key in ds.attrs},
        "currency": table.attrs["currency"], "paths": table.attrs["paths"], "levels": table.attrs["levels"],
        "confidence": confidence, "units": table.attrs["units"], "scenarios": rows,
    }
    target.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return target


def _plain(value: object) -> object:
    """A JSON value for a table cell or attribute: numpy scalars as Python ones, NaN as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
