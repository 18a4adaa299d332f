"""Defensive trading layers (docs/model.md 9): stop-loss and drawdown traders flatten inside the cascade
rounds, volatility-target and VaR-limited traders cut size, kill switches withdraw depth."""

from __future__ import annotations

import math

import numpy as np
import pytest
from kernel import kernel_states
from scipy.optimize import brentq
from scipy.stats import norm

pytestmark = pytest.mark.slow  # each test compiles and runs a market kernel

DEPTH = 1e7
S0 = 100.0
YEAR = 365 * 86400.0
DT = 60.0


def market(defensive: list[dict], shocks: list[dict] | None = None, steps: int = 30, **extra) -> dict:
    """sigma = 0, flat book with permanent impact and no depth consumption; a -6 % gap at 10 min."""
    shocks = [{"type": "gap", "at": "10min", "size": -0.06}] if shocks is None else shocks
    return {"simulation": {"steps": steps, "dt": DT, "record_points": steps, "keep_paths": 1},
            "market": {"sigma": 0.0, "price": S0, "shocks": shocks},
            "liquidity": {"depth": DEPTH, "permanent_fraction": 1.0, "depletion": 0.0, "vol_half_life": "10min"},
            "defensive": defensive, **extra}


def solve_move(y_base: float, units: float, sign: float = -1.0) -> float:
    """Log move x of a step whose market sell (sign -1) or buy (+1) of ``units`` fills at the geometric mid
    s0 exp(y_base + x / 2): x = sign 0.01 units fill / depth."""
    return brentq(lambda x: x - sign * 0.01 * units * S0 * math.exp(y_base + x / 2) / DEPTH, -1.0, 1.0, xtol=1e-15)


def gap_vol(log_return: float, half_life: float = 600.0) -> float:
    """Realised-vol estimate (per year) after one step's log return, from a zero variance."""
    return math.sqrt((1 - 2 ** (-DT / half_life)) * log_return**2 / (DT / YEAR))


@pytest.mark.parametrize("notional", [1e7, 3e7])
def test_stop_loss_sells_its_notional_inside_the_gap_step(run64, notional):
    units = notional / S0
    ds = run64(market([{"kind": "stop_loss", "side": "long", "notional": notional, "threshold": 0.05}])).isel(path=0)
    x = solve_move(math.log(0.94), units)
    fill = S0 * math.exp(math.log(0.94) + x / 2)
    price = ds.sample_price.isel(sample=0).values
    np.testing.assert_allclose(price[:11], S0, rtol=1e-13)
    assert math.log(price[11] / S0) == pytest.approx(math.log(0.94) + x, rel=1e-12)  # in the gap step
    np.testing.assert_allclose(price[11:], price[11], rtol=1e-13)  # flat afterwards: flattened once
    assert float(ds.defensive_sold) == pytest.approx(units * fill, rel=1e-12)
    # Deeper than the gap alone by exactly the impact of its sale.
    assert math.log(float(ds.min_price) / (S0 * 0.94)) == pytest.approx(-0.01 * units * fill / DEPTH, rel=1e-12)


def test_stop_loss_not_breached_does_nothing_and_shorts_stop_on_rises(run64):
    long_ = run64(market([{"kind": "stop_loss", "side": "long", "notional": 1e7, "threshold": 0.07}])).isel(path=0)
    assert float(long_.defensive_sold) == 0.0 and float(long_.min_price) == pytest.approx(94.0)
    short = run64(market([{"kind": "stop_loss", "side": "short", "notional": 1e7, "threshold": 0.05}],
                         shocks=[{"type": "gap", "at": "10min", "size": 0.06}])).isel(path=0)
    x = solve_move(math.log(1.06), 1e5, sign=1.0)  # the short buys back
    assert math.log(float(short.final_price) / S0) == pytest.approx(math.log(1.06) + x, rel=1e-9)
    assert float(short.defensive_sold) == pytest.approx(1e5 * S0 * math.exp(math.log(1.06) + x / 2), rel=1e-9)


def test_stops_and_liquidations_feed_each_other_within_one_step(run64):
    """A -4.5 % gap (price 95.5) misses the 5 % stop but liquidates a 21x long (liquidation price 95.72);
    its sale takes the price below 95, which trips the stop in a later cascade round of the same step.
    The step's price clears the liquidation and the stop together."""
    liq_units, stop_units = 1e5, 1e5
    raw = market([{"kind": "stop_loss", "side": "long", "notional": stop_units * S0, "threshold": 0.05}],
                 shocks=[{"type": "gap", "at": "10min", "size": -0.045}],
                 positions=[{"side": "long", "leverage": 21, "notional": liq_units * S0}],
                 liquidation={"adl": False, "insurance_fund": 1e9})
    ds = run64(raw).isel(path=0)
    y_base = math.log(0.955)
    alone = y_base + solve_move(y_base, liq_units)
    assert S0 * math.exp(alone) < 95.0  # the liquidation alone crosses the stop
    together = y_base + solve_move(y_base, liq_units + stop_units)
    price = ds.sample_price.isel(sample=0).values
    assert math.log(price[11] / S0) == pytest.approx(together, rel=1e-12)
    np.testing.assert_allclose(price[11:], price[11], rtol=1e-13)
    fill = S0 * math.exp(y_base + (together - y_base) / 2)
    assert float(ds.defensive_sold) == pytest.approx(stop_units * fill, rel=1e-12)
    assert float(ds.liquidated_long) == pytest.approx(liq_units * fill, rel=1e-12)


def test_drawdown_trader_stops_on_the_fall_from_the_peak_not_from_the_start(run64):
    # A buy program lifts the price 5 % at 2 min; the -6 % gap then leaves it 1.3 % below the start
    # but 6 % below the peak.
    shocks = [{"type": "sell_program", "start": "2min", "notional": -math.log(1.05) / 0.01 * DEPTH,
               "duration": "1min"},
              {"type": "gap", "at": "10min", "size": -0.06}]
    stop = run64(market([{"kind": "stop_loss", "side": "long", "notional": 1e7, "threshold": 0.05}], shocks))
    drawdown = run64(market([{"kind": "drawdown", "side": "long", "notional": 1e7, "threshold": 0.05}], shocks))
    stop, drawdown = stop.isel(path=0), drawdown.isel(path=0)
    assert float(stop.defensive_sold) == 0.0
    assert float(stop.final_price) == pytest.approx(S0 * 1.05 * 0.94, rel=1e-12)
    y_base = math.log(1.05 * 0.94)
    x = solve_move(y_base, 1e5)
    assert math.log(float(drawdown.final_price) / S0) == pytest.approx(y_base + x, rel=1e-12)
    assert float(drawdown.defensive_sold) == pytest.approx(1e5 * S0 * math.exp(y_base + x / 2), rel=1e-12)


def test_kill_switch_withdraws_its_share_of_depth_while_volatility_is_high(run64):
    share, threshold = 0.4, 2.0
    program = {"type": "sell_program", "start": "15min", "notional": DEPTH, "duration": "1min"}
    raw = market([{"kind": "kill_switch", "share": share, "threshold": threshold}],
                 shocks=[{"type": "gap", "at": "10min", "size": -0.06}, program], steps=90)
    ds = run64(raw).isel(path=0)
    assert float(ds.min_depth_ratio) == pytest.approx(1 - share, rel=1e-12)
    # Realised vol after the gap step, decaying by 2^(-dt / 2 half-life) per quiet step.
    v10 = gap_vol(math.log(0.94))
    ratio = ds.depth_quantiles.sel(level=0.5).values
    price = ds.sample_price.isel(sample=0).values
    # The program in step 15 hits the thinned book: its impact is 1 / (1 - share) times larger.
    move = math.log(price[16] / price[15])
    v14 = math.sqrt(v10**2 * 2 ** (-4 * DT / 600.0) * 1.0)  # vol known at the start of step 15
    assert v14 > threshold
    assert move == pytest.approx(-0.01 * DEPTH / ((1 - share) * DEPTH), rel=1e-12)
    # Depth comes back once the estimate falls below the threshold (step returns are zero after 15).
    v15 = gap_vol(move) ** 2 + v10**2 * 2 ** (-5 * DT / 600.0)
    vol = [math.sqrt(v15 * 2 ** (-(k - 15) * DT / 600.0)) for k in range(15, 90)]
    expected = np.where(np.asarray(vol) > threshold, 1 - share, 1.0)
    np.testing.assert_allclose(ratio[16:], expected, rtol=1e-12)
    assert ratio[-1] == 1.0 and ratio[11] == pytest.approx(1 - share)
    np.testing.assert_array_equal(ratio[:11], 1.0)


def test_kill_switch_below_its_threshold_keeps_the_book(run64):
    ds = run64(market([{"kind": "kill_switch", "share": 0.4, "threshold": 1e3}])).isel(path=0)
    assert float(ds.min_depth_ratio) == 1.0


def test_volatility_target_cuts_to_notional_times_threshold_over_vol():
    threshold, notional = 1.5, 2e7
    _, _, states = kernel_states(market([{"kind": "vol_target", "side": "long", "notional": notional,
                                    "threshold": threshold}]))
    units = np.asarray([float(s.defensive.units[0, 0, 0]) for s in states])
    y = np.asarray([float(s.price.y[0, 0]) for s in states])
    units0 = notional / S0
    np.testing.assert_allclose(units[:12], units0, rtol=1e-13)  # vol 0 before the gap: full size
    v = gap_vol(math.log(0.94))  # known at the start of step 11
    assert units[12] == pytest.approx(units0 * threshold / v, rel=1e-12)
    # Its sale is a pre-flow market order at the step's opening price.
    sold = units0 - units[12]
    assert y[12] - y[11] == pytest.approx(-0.01 * sold * S0 * 0.94 / DEPTH, rel=1e-12)
    # Each later step holds units0 x min(1, threshold / vol) with vol known at the step's start.
    variance = np.asarray([float(s.book.variance[0, 0]) for s in states])
    expected = units0 * np.minimum(1.0, threshold / np.sqrt(variance[12:-1]))
    np.testing.assert_allclose(units[13:], expected, rtol=1e-12)


def test_var_limit_keeps_value_at_risk_under_its_threshold():
    limit, confidence, horizon = 5e5, 0.99, 86400.0
    _, _, states = kernel_states(market([{"kind": "var_limit", "side": "long", "notional": 2e7, "threshold": limit,
                                    "confidence": confidence, "horizon": horizon}]))
    z = norm.ppf(confidence) * math.sqrt(horizon / YEAR)
    units = np.asarray([float(s.defensive.units[0, 0, 0]) for s in states])
    y = np.asarray([float(s.price.y[0, 0]) for s in states])
    variance = np.asarray([float(s.book.variance[0, 0]) for s in states])
    np.testing.assert_allclose(units[:12], 2e5, rtol=1e-13)
    for k in range(12, len(states)):  # units in step k from the price and vol known at its start
        cap = limit / (S0 * math.exp(y[k - 1]) * z * math.sqrt(variance[k - 1]))
        assert units[k] == pytest.approx(min(2e5, cap), rel=1e-9), k
    assert units[12] < 2e5
