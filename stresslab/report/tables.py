"""The summary table of a run formatted for people: percentages and thousands separators.

Shared by ``stresslab run`` (printed) and ``stresslab report`` (Markdown and HTML), so
that both show the same columns with the same headers.
"""

from __future__ import annotations

import pandas as pd
import xarray as xr

from stresslab.metrics.tail import SUMMARY_LEVELS, level_suffix, summary_table

PERCENT = 100.0


def display_table(ds: xr.Dataset) -> pd.DataFrame:
    """The tail metrics of :func:`stresslab.metrics.tail.summary_table` as text, one row per scenario.

    Columns: the swept config fields as they are; cascade depth VaR/ES at 95 % and 99 %
    as percentages of the start price; ``P(liq)``, the percentage of paths with any
    liquidation; ``mean bad debt`` in quote currency. Indexed by ``scenario``.
    """
    table = summary_table(ds)
    shown = pd.DataFrame(index=table.index)
    for name in table.columns:
        if name in ds.coords:
            shown[name] = table[name]
    for level in SUMMARY_LEVELS:
        suffix = level_suffix(level)
        shown[f"depth VaR {PERCENT * level:g}%"] = _percentages(table[f"var_{suffix}"])
        shown[f"depth ES {PERCENT * level:g}%"] = _percentages(table[f"es_{suffix}"])
    shown["P(liq)"] = _percentages(table["p_liquidation"])
    shown["mean bad debt"] = table["mean_bad_debt"].map("{:,.2f}".format)
    return shown


def caption(ds: xr.Dataset) -> str:
    """One sentence saying what :func:`display_table`'s columns mean, with the path count."""
    return (f"{ds.sizes['path']} paths per scenario; depth: cascade depth, the maximum drawdown from the start "
            "price; P(liq): paths with any liquidation; bad debt in quote currency")


def _percentages(values: pd.Series) -> pd.Series:
    return (PERCENT * values).map("{:.2f}%".format)
