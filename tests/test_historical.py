"""Each shipped historical scenario lands inside its docs/validation.md band ("Real events").

Statistics are medians over 1 000 paths (seed 0) unless stated; each band is
written in the config's header next to the facts it reproduces.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import stresslab
from stresslab import historical
from stresslab.metrics import facts

pytestmark = pytest.mark.slow  # 1000 paths of each shipped historical scenario

HISTORICAL = Path(__file__).parent.parent / "configs" / "historical"
PATHS = 1000


def run(name: str) -> object:
    return stresslab.simulate(HISTORICAL / name, paths=PATHS, seed=0, on_error="warn").isel(scenario=0)


def assert_published_inside_band(simulated, published: float) -> None:
    """The published figure lies inside the simulated 5-95 % band (issue 14's acceptance for the reported
    liquidation totals and timing)."""
    low, high = np.percentile(np.asarray(simulated), [5, 95])
    assert low <= published <= high, (low, published, high)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_2010_05_06_emini_flash_crash():
    minutes = [f"simulation.keep_paths={PATHS}", "simulation.record_points=720"]  # every 5-s step of each path
    ds = stresslab.simulate(HISTORICAL / "2010_05_06_emini_flash_crash.toml", paths=PATHS, seed=0, on_error="warn",
                            overrides=minutes).isel(scenario=0)
    assert 0.03 <= float(ds.cascade_depth.median()) <= 0.08  # > 5 % from 2:41 to 2:45:27
    assert float(ds.min_depth_ratio.median()) < 0.01  # buy-side depth < 1 % of the morning level
    assert float(ds.halt_count.median()) >= 1  # the 5-second Stop Logic pause
    assert float(ds.recovery_time.median()) < 20 * 60  # most of the fall retraced within ~20 minutes
    # CFTC-SEC timeline: the program from 2:32 (t = 5 min), the low at the 2:45:28 pause, 13.5 minutes into it,
    # and the recovery under way while the program was still selling ($4.1bn at $3.44m/s: it ends at 24.9 min)
    program_start, program_end = 5 * 60, 5 * 60 + 4.1e9 / (0.09 * 3.3e12 / 86400)
    into_program = (float(ds.time_to_trough.median()) - program_start) / 60
    assert 11.5 <= into_program <= 15.5, into_program
    seconds = ds.time.values.astype("timedelta64[s]").astype(float)
    prices = ds.sample_price.values
    low = prices.min(1)
    at_end = prices[:, np.searchsorted(seconds, program_end) - 1]
    regained = (at_end - low) / (1110.0 - low)  # market.price
    assert np.median(regained) > 0.25, np.median(regained)
    assert float(ds.dip_bought.median()) == pytest.approx(2e9, rel=1e-3)  # the buyers spent their budget


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_2020_03_12_black_thursday():
    ds = run("2020_03_12_black_thursday.toml")
    assert 0.40 <= float(ds.cascade_depth.median()) <= 0.60  # the real perp fell 53.3 % to 02:16 UTC on 13 March
    assert float(ds.liquidated_long.median()) > 7e8  # > $700m of perp longs liquidated
    assert -0.15 <= float(ds.min_basis.median()) <= -0.03  # the perp ~$400 under spot
    assert float(ds.bad_debt.median()) > 0  # fills below bankruptcy left bad debt
    assert float(ds.min_funding_rate.median()) < 0  # longs received funding


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_2021_05_19_crypto_crash():
    ds = run("2021_05_19_crypto_crash.toml")
    total = ds.liquidated_long + ds.liquidated_short
    assert 0.22 <= float(ds.cascade_depth.median()) <= 0.40  # BTC -30 % intraday
    assert 5e9 <= float(total.median()) <= 13e9  # ~$8.6bn liquidated
    assert_published_inside_band(total, 8.6e9)  # 1000 paths: 5-95 % $6.3bn-$21bn
    assert float((ds.liquidated_long / total).median()) > 0.85
    assert float((ds.final_price / ds.min_price - 1).median()) > 0.04  # partly retraced
    assert float(ds.recovery_time.median()) < 6 * 3600  # within hours


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_2025_10_10_tariff_crash():
    ds = run("2025_10_10_tariff_crash.toml")
    total = ds.liquidated_long + ds.liquidated_short
    assert 12e9 <= float(total.median()) <= 30e9  # ~$19bn in < 24 h
    assert_published_inside_band(total, 19e9)  # 1000 paths: 5-95 % $15.9bn-$27.7bn
    assert float((ds.liquidated_long / total).median()) > 0.85  # > $17bn of it longs
    assert float(ds.min_depth_ratio.median()) < 0.10  # depth down 90-98 % reported (1000 paths: ~0.09 left)
    assert float((ds.adl_notional > 0).mean()) > 0.5  # ADL fired
    assert 0.08 <= float(ds.cascade_depth.median()) <= 0.25
    collateral = ds.venue_min_collateral_price.median("path")
    assert 0.55 <= float(collateral.sel(venue="cex_a")) <= 0.80  # the stablecoin printed ~0.65 there
    assert float(collateral.sel(venue=["cex_b", "dex_c"]).min()) > 0.90  # other venues stayed near 1
    seconds = ds.time.values.astype("timedelta64[s]").astype(float)
    first_leg = (seconds > 50 * 60) & (seconds <= 90 * 60)  # 20:50-21:30 UTC (simulation.start 20:00 UTC)
    increments = ds.sample_liquidation.values
    share = increments[:, first_leg].sum(1) / increments.sum(1)
    # ~70 % reported between 20:50 and 21:30 UTC, inside the 5-95 % band of the sample paths (1000 paths, 50 kept:
    # median 0.79, 0.60-0.99; with the engines at $1bn a minute per venue the median was 0.97 and the band above 0.77)
    assert_published_inside_band(share, 0.70)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_external_collateral_index_removes_the_depeg_loop():
    """Same paths (common random numbers), internal versus external pricing of the stablecoin."""
    liquidated = {}
    for pricing in ("internal", "external"):
        ds = stresslab.simulate(HISTORICAL / "2025_10_10_tariff_crash.toml", paths=400, seed=0, on_error="warn",
                                overrides=[f"collateral.pricing={pricing}"]).isel(scenario=0)
        liquidated[pricing] = ds.venue_liquidated_long.sel(venue="cex_a").values
        if pricing == "external":
            assert float(ds.venue_min_collateral_price.min()) == 1.0
    # was < 0.8: on the real clock, with the shocks fitted to the real minute prices (a 3.7 % spot step, flows over
    # minutes), external pricing removes ~10 % of cex_a's long liquidations (400 paths: 0.90 of internal, with the
    # long books as fitted first and with them 1.6x alike); the loop is still there on 98 % of paths (below)
    assert liquidated["external"].mean() < 0.95 * liquidated["internal"].mean()
    assert np.mean(liquidated["external"] <= liquidated["internal"] * (1 + 1e-6)) > 0.9


# The shape of each crypto day, minute by minute (issue 14): the real value of every stylised fact (the issue's
# table: drawdown, peak-to-trough time, both retraces, end return, worst 1- and 5-minute falls; and the realised
# volatility, the highest hourly volatility, the 1 % and 99 % return quantiles and the excess kurtosis) lies inside
# the simulated 5-95 % band, on the config's window of real Binance minute prices (stresslab.historical.compare;
# facts from stresslab.metrics.facts).
SHAPE_PATHS = 1000


def assert_shape(name: str, day: str) -> historical.Comparison:
    comparison = historical.compare(HISTORICAL / name, day, paths=SHAPE_PATHS, seed=0)
    assert list(comparison.table.index) == [fact.name for fact in facts.FACTS]
    assert comparison.table.inside.all(), historical.format_table(comparison)
    return comparison


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_2020_03_12_shape_minute_by_minute():
    assert_shape("2020_03_12_black_thursday.toml", "2020-03-12")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_2021_05_19_shape_minute_by_minute():
    assert_shape("2021_05_19_crypto_crash.toml", "2021-05-19")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_2025_10_10_shape_minute_by_minute():
    # its first 308 minutes, 20:00-01:08 UTC
    comparison = assert_shape("2025_10_10_tariff_crash.toml", "2025-10-10")
    # and the worst minute is the real one, the 21:19 wick, not the 20:50 news (an earlier fit put a -4.5 % minute
    # there, where the real price fell 0.4 %): on 90 % of paths within a minute of the real one
    real = np.argmin(np.diff(np.log(comparison.real.values)))
    simulated = np.argmin(np.diff(np.log(comparison.simulated.values), axis=1), axis=1)
    assert np.mean(np.abs(simulated - real) <= 1) >= 0.9, (real, np.bincount(simulated))
