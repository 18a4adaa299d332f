"""Real minute prices: read 1-minute bars (the shipped Binance crash days, or a user's own CSV) as a price series
that :func:`stresslab.metrics.facts.facts` and ``stresslab compare`` read.

Two CSV layouts are read: the shipped one (a header with ``open_time_utc``, ``open``, ``high``, ``low``, ``close``,
…; see ``stresslab/data/README.md`` for provenance) and Binance's public kline dump (no header; columns open time
in ms, open, high, low, close, volume, …). Times are UTC.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from stresslab.errors import DataError

SHIPPED = {
    "2020-03-12": "binance_um_btcusdt_1m_2020-03-12.csv",
    "2021-05-19": "binance_um_btcusdt_1m_2021-05-19.csv",
    "2025-10-10": "binance_um_btcusdt_1m_2025-10-10.csv",
}
"""Shipped crash days (Binance USDⓈ-M BTCUSDT perpetual, 1-minute bars) by date."""
BAR_COLUMNS = ("open", "high", "low", "close")


def locate(source: str | os.PathLike[str]) -> Path:
    """The file of a shipped day (``"2020-03-12"``) or a path to a CSV file."""
    name = str(source)
    if name in SHIPPED:
        return Path(str(resources.files("stresslab") / "data" / SHIPPED[name]))
    path = Path(source)
    if not path.is_file():
        raise DataError(f"--data {name}: no such file, and not a shipped day (one of {', '.join(SHIPPED)})")
    return path


def read_bars(source: str | os.PathLike[str]) -> pd.DataFrame:
    """1-minute bars indexed by their open time (UTC, timezone-naive): columns open, high, low, close.

    Raises:
        DataError: the file is missing, has neither layout, or its bars are not one minute apart.
    """
    path = locate(source)
    try:
        head = path.read_text().splitlines()[0].split(",")
        if "open_time_utc" in head:
            raw = pd.read_csv(path)
            times = pd.to_datetime(raw["open_time_utc"], utc=True).dt.tz_localize(None)
        else:
            raw = pd.read_csv(path, header=None).iloc[:, :5]
            raw.columns = ["open_time_ms", *BAR_COLUMNS]
            times = pd.to_datetime(raw["open_time_ms"], unit="ms")
        bars = raw.loc[:, list(BAR_COLUMNS)].astype(np.float64).set_axis(pd.DatetimeIndex(times), axis=0)
    except (OSError, ValueError, KeyError, IndexError, pd.errors.ParserError) as err:
        raise DataError(f"--data {source}: not a CSV of 1-minute bars in the shipped or Binance kline layout "
                        f"({err})") from None
    steps = np.diff(bars.index.values).astype("timedelta64[s]").astype(np.int64)
    if bars.empty or (steps != 60).any():
        raise DataError(f"--data {source}: bars must be one minute apart, without gaps or duplicates")
    return bars


def prices(source: str | os.PathLike[str], start: str | pd.Timestamp | None = None,
           minutes: int | None = None) -> xr.DataArray:
    """A price series of ``minutes`` minutes from ``start`` (UTC): the first bar's open, then every close.

    Args:
        source: a shipped day (``"2020-03-12"``) or a CSV file (see the module docstring).
        start: the window's start, the open time of its first bar (default: the file's first bar).
        minutes: the window's length (default: to the file's last bar).

    Returns:
        ``price`` with dim ``time`` (datetime64, UTC): ``minutes + 1`` values, the price at ``start`` and at the
        end of every minute.

    Raises:
        DataError: the file cannot be read, or the window is not inside it (the message gives the file's range).
    """
    bars = read_bars(source)
    first = bars.index[0] if start is None else pd.Timestamp(start).tz_localize(None) if pd.Timestamp(
        start).tzinfo else pd.Timestamp(start)
    count = len(bars.loc[first:]) if minutes is None else int(minutes)
    window = bars.loc[first: first + pd.Timedelta(minutes=count - 1)]
    if count < 1 or len(window) != count or window.index[0] != first:
        raise DataError(f"--data {source}: the window {first} + {count} min is not inside the file, which covers "
                        f"{bars.index[0]} to {bars.index[-1] + pd.Timedelta(minutes=1)} (UTC)")
    values = np.concatenate([[window["open"].iloc[0]], window["close"].to_numpy()])
    time = pd.date_range(first, periods=count + 1, freq="1min").values
    return xr.DataArray(values, dims="time", coords={"time": time}, name="price",
                        attrs={"long_name": "traded price (first bar's open, then closes)", "source": str(source)})
