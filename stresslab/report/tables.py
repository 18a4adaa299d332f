"""The summary table of a run formatted for people: percentages and thousands separators.

Shared by ``stresslab run`` (printed) and ``stresslab report`` (Markdown and HTML), so
that both show the same columns with the same headers.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import numpy as np
import pandas as pd
import xarray as xr

from stresslab.metrics.headline import headline
from stresslab.metrics.tail import (
    HALT_QUANTILES,
    HEADLINE_LEVEL,
    SCENARIO_DIM,
    halt_stats,
    has_halts,
    level_suffix,
    swept_coords,
)

PERCENT = 100.0
MONEY_COLUMNS = (("liquidated", "liq"), ("bad_debt", "bad debt"))
"""Money variables of the printed table (:func:`stresslab.metrics.tail.loss` names) and their short labels."""
MONEY_SCALES = ((1e9, "bn"), (1e6, "m"), (1e3, "k"))
"""Scales money is shown in, largest first, with their suffixes."""
MONEY_FORMAT = "{:,.2f}"
CAPTION_WIDTH = 100
"""Characters per line of the printed caption."""


def display_table(ds: xr.Dataset) -> pd.DataFrame:
    """The headline metrics (:func:`stresslab.metrics.headline.headline`) as text, one row per scenario.

    Columns: the swept config fields as they are; ``depth VaR/ES 99%``, the cascade depth VaR and
    ES as percentages of the start price; ``liq VaR/ES 99% (USD bn)``, the notional
    liquidated (long plus short), and ``bad debt VaR/ES 99% (USD m)``, in the result's currency
    scaled to a readable unit that the header names; ``P(liq)``, the percentage of paths with any
    liquidation; ``P(fund out)``, of paths that exhausted the insurance fund (when the result has
    ``fund_exhausted_step``). Each VaR/ES cell is ``VaR / ES``, at 99 % (95 % and the confidence
    intervals are in :func:`~stresslab.metrics.headline.headline`), so that a sweep's table stays
    within 120 columns. Indexed by ``scenario``.
    """
    table = headline(ds)
    currency = table.attrs["currency"]
    shown = _swept(ds)
    suffix = level_suffix(HEADLINE_LEVEL)
    shown[f"depth VaR/ES {PERCENT * HEADLINE_LEVEL:g}%"] = _pairs(table, f"cascade_depth_%s_{suffix}", _percentages)
    for name, label in MONEY_COLUMNS:
        stem = f"{name}_%s_{suffix}"
        factor, scale = money_scale(table[[stem % "var", stem % "es"]].to_numpy())
        shown[f"{label} VaR/ES {PERCENT * HEADLINE_LEVEL:g}% ({currency}{scale})"] = _pairs(
            table, stem, lambda values, factor=factor: (values / factor).map(MONEY_FORMAT.format))
    shown["P(liq)"] = _percentages(table["p_liquidation"])
    if "p_fund_exhausted" in table:
        shown["P(fund out)"] = _percentages(table["p_fund_exhausted"])
    return shown


def money_scale(values: np.ndarray) -> tuple[float, str]:
    """The factor money ``values`` are divided by to be shown, and its suffix (``" bn"``, ``" m"``, ``" k"``, ``""``).

    The largest scale that the largest finite absolute value reaches at least once.
    """
    finite = np.abs(values[np.isfinite(values)])
    largest = float(finite.max()) if finite.size else 0.0
    for factor, suffix in MONEY_SCALES:
        if largest >= factor:
            return factor, f" {suffix}"
    return 1.0, ""


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
    """What :func:`display_table`'s columns mean and their units, with the path count, in one paragraph."""
    currency = ds.attrs.get("currency", ds["bad_debt"].attrs.get("units", "quote currency"))
    text = (f"{ds.sizes['path']:,} paths per scenario; each cell VaR / ES over paths; depth: cascade depth, the "
            f"maximum drawdown from the start price, % of it; liq: notional liquidated, long plus short, and bad "
            f"debt, in {currency} (bn = 1e9, m = 1e6); P(liq): paths with any liquidation; P(fund out): paths that "
            f"exhausted the insurance fund; confidence intervals: --metrics FILE or ds.stress.headline()")
    return textwrap.fill(text, width=CAPTION_WIDTH)


def _swept(ds: xr.Dataset) -> pd.DataFrame:
    """The swept config fields as they are, indexed by ``scenario``: the first columns of every table."""
    return pd.DataFrame({name: ds[name].to_numpy() for name in swept_coords(ds)}, index=ds[SCENARIO_DIM].to_index())


def _pairs(table: pd.DataFrame, stem: str, show: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """``"VaR / ES"`` cells from the columns ``stem % "var"`` and ``stem % "es"``, each shown with ``show``."""
    return show(table[stem % "var"]) + " / " + show(table[stem % "es"])


def _seconds(values: pd.Series) -> pd.Series:
    return values.map("{:,.1f}".format)


def _percentages(values: pd.Series) -> pd.Series:
    return (PERCENT * values).map("{:.2f}%".format)
