"""The mark price margin checks use (docs/model.md 8): the venue's last price, the index (median of the
venues and spot), spot, or a smoothed mark; an index or spot mark protects positions from a sale on their
own book, a smoothed mark rides out a transient dip."""

from __future__ import annotations

import math

import pytest
from helpers import VENUE_DEPTH as DEPTH
from helpers import two_venues

pytestmark = pytest.mark.slow  # each test compiles and runs a market kernel


@pytest.mark.parametrize("mark", ["index", "spot"])
def test_an_index_or_spot_mark_protects_positions_from_their_own_book(run64, mark):
    last = run64(two_venues(False, "last")).isel(path=0)
    other = run64(two_venues(False, mark)).isel(path=0)
    assert float(last.venue_liquidated_long.sel(venue="A")) > 0
    assert float(other.venue_liquidated_long.sel(venue="A")) == 0.0
    # The book still took the program: the traded price on A fell by its impact.
    assert float(other.venue_min_price.sel(venue="A")) == pytest.approx(100 * math.exp(-0.05), rel=1e-12)


def test_a_smoothed_mark_rides_out_a_transient_dip(run64):
    """A fully transient 5 % dip (1-minute recovery half-life) under a 30x long whose liquidation price
    (97.15) it crosses: marked at the last price it would be liquidated (see the "last" mark above); an
    exponential moving average with a 30-minute half-life moves only 0.1 % and keeps it."""
    ds = run64({"simulation": {"steps": 30, "dt": "1min", "record_points": 2},
                "market": {"sigma": 0.0, "shocks": [
                    {"type": "sell_program", "start": "5min", "notional": 5 * DEPTH, "duration": "1min"}]},
                "liquidity": {"depth": DEPTH, "permanent_fraction": 0.0, "recovery_half_life": "1min",
                              "depletion": 0.0},
                "oracle": {"mark": "last", "smoothing": "30min"},
                "positions": [{"side": "long", "leverage": 30, "notional": 1e5}],
                "liquidation": {"adl": False, "insurance_fund": 1e9}}).isel(path=0)
    assert float(ds.min_price) == pytest.approx(100 * math.exp(-0.05), rel=1e-12)
    assert float(ds.min_price) < 100 * (1 - 1 / 30) / 0.995
    assert float(ds.liquidated_long) == 0.0
