"""The summary table of a run formatted for people: percentages and thousands separators.

Shared by ``stresslab run`` (printed) and ``stresslab report`` (Markdown and HTML), so
that both show the same columns with the same headers.
"""

from __future__ import annotations

import pandas as pd
import xarray as xr

from stresslab.metrics.tail import (
    HALT_QUANTILES,
    SCENARIO_DIM,
    SUMMARY_LEVELS,
    halt_stats,
    has_halts,
    level_suffix,
    summary_table,
    swept_coords,
)

PERCENT = 100.0


def display_table(ds: xr.Dataset) -> pd.DataFrame:
    """The tail metrics of :func:`stresslab.metrics.tail.summary_table` as text, one row per scenario.

    Columns: the swept config fields as they are; cascade depth VaR/ES at 95 % and 99 %
    as percentages of the start price; ``P(liq)``, the percentage of paths with any
    liquidation; ``mean bad debt`` in quote currency. Indexed by ``scenario``.
    """
    table = summary_table(ds)
    shown = _swept(ds)
    for level in SUMMARY_LEVELS:
        suffix = level_suffix(level)
        shown[f"depth VaR {PERCENT * level:g}%"] = _percentages(table[f"var_{suffix}"])
        shown[f"depth ES {PERCENT * level:g}%"] = _percentages(table[f"es_{suffix}"])
    shown["P(liq)"] = _percentages(table["p_liquidation"])
    shown["mean bad debt"] = table["mean_bad_debt"].map("{:,.2f}".format)
    return shown


def halt_table(ds: xr.Dataset) -> pd.DataFrame | None:
    """Circuit-breaker halt statistics (:func:`stresslab.metrics.tail.halt_stats`) as text, one row per scenario.

    Columns: the swept config fields; ``P(halt)``, the percentage of paths with at least
    one halt; ``mean halts``, halts per path; ``mean halted (s)`` and ``halted 50% (s)``,
    ``halted 95% (s)``, ... , quantiles over paths of the seconds halted. Indexed by ``scenario``.

    Returns:
        The table, or None when ``ds`` has no ``halted_time`` and ``halt_count`` (a run
        without circuit breakers).
    """
    if not has_halts(ds):
        return None
    stats = halt_stats(ds)
    shown = _swept(ds)
    shown["P(halt)"] = _percentages(stats["p_halt"].to_series())
    shown["mean halts"] = stats["mean_halt_count"].to_series().map("{:,.2f}".format)
    shown["mean halted (s)"] = _seconds(stats["mean_halted_time"].to_series())
    for level in HALT_QUANTILES:
        shown[f"halted {PERCENT * level:g}% (s)"] = _seconds(stats[f"halted_time_{level_suffix(level)}"].to_series())
    return shown


def halt_caption(ds: xr.Dataset) -> str:
    """One sentence saying what :func:`halt_table`'s columns mean, with the path count."""
    return (f"{ds.sizes['path']} paths per scenario; P(halt): paths with at least one halt; "
            "halts and seconds halted per path, mean and quantiles over paths")


def caption(ds: xr.Dataset) -> str:
    """One sentence saying what :func:`display_table`'s columns mean, with the path count."""
    return (f"{ds.sizes['path']} paths per scenario; depth: cascade depth, the maximum drawdown from the start "
            "price; P(liq): paths with any liquidation; bad debt in quote currency")


def _swept(ds: xr.Dataset) -> pd.DataFrame:
    """The swept config fields as they are, indexed by ``scenario``: the first columns of every table."""
    return pd.DataFrame({name: ds[name].to_numpy() for name in swept_coords(ds)}, index=ds[SCENARIO_DIM].to_index())


def _seconds(values: pd.Series) -> pd.Series:
    return values.map("{:,.1f}".format)


def _percentages(values: pd.Series) -> pd.Series:
    return (PERCENT * values).map("{:.2f}%".format)
