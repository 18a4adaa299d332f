"""Reference implementation in Numba: stresslab's market step for one venue, one path per loop iteration.

The same port as ``numpy_ref.py`` (the subset of the model in ``scenario.py``), written
the way a careful quant writes it for Numba: ``prange`` over paths with
``parallel=True``, and inside each path a scalar loop over time steps, cohorts,
cascade rounds and Newton iterations, so every path stops iterating as soon as it is
done and its state stays in registers and cache. Arithmetic is float64 whatever the
scenario's dtype; the Newton tolerance is the scenario dtype's (as in stresslab).

Randomness: by default a counter-based SplitMix64 stream per path (seeded by
``(seed, path)``, so results do not depend on the thread count), Box-Muller normals;
``draws`` replays given ones instead (stresslab's, for the agreement tests).
"""

from __future__ import annotations

import math
from collections import namedtuple

import numpy as np
from numba import njit, prange
from scenario import OUTPUTS, Draws, Scenario

ONE_PERCENT = 0.01
MAX_CONSUMED = 1.0 - 1e-4
TINY_VAR = 1e-12
MIN_TAU = 1e-9
MAX_NEWTON_ITERATIONS = 64
NEWTON_TOLERANCE = 8.0
MIN_SLOPE = 0.05
MAX_MOVE = 10.0
SQRT_2PI = math.sqrt(2.0 * math.pi)
SQRT_2 = math.sqrt(2.0)
"""Constants of stresslab's kernel (liquidity.py, dealers.py, step.py), same values."""

BOOK_NONE, BOOK_OPTIONS, BOOK_GAMMA = 0, 1, 2
REF_START, REF_PEAK, REF_ROLLING = 0, 1, 2
STATS = ("rounds", "newton", "adl", "settle", "band", "halted")
"""Work counted over paths (see numpy_ref.STATS)."""

# ledger slots
CASH, REALISED, PENALTIES, BAD_DEBT, SOCIALISED, ADL, LIQ_LONG, LIQ_SHORT, FUND, FUND_LONG, FUND_SHORT = range(11)
N_LEDGER = 11
# output columns, in scenario.OUTPUTS order (the registry's), looked up by name
COL = {name: i for i, name in enumerate(OUTPUTS)}
COL_CASCADE_DEPTH = COL["cascade_depth"]
COL_MIN_PRICE = COL["min_price"]
COL_FINAL_PRICE = COL["final_price"]
COL_LIQUIDATED_LONG = COL["liquidated_long"]
COL_LIQUIDATED_SHORT = COL["liquidated_short"]
COL_BAD_DEBT = COL["bad_debt"]
COL_INSURANCE_FUND = COL["insurance_fund"]
COL_ADL_NOTIONAL = COL["adl_notional"]
COL_SOCIALISED_LOSS = COL["socialised_loss"]
COL_PENALTIES = COL["penalties"]
COL_REALIZED_VOL = COL["realized_vol"]
COL_MIN_DEPTH_RATIO = COL["min_depth_ratio"]
COL_TRADER_EQUITY = COL["trader_equity"]
COL_TRADER_PNL = COL["trader_pnl"]
COL_FUNDING_LONG = COL["funding_long"]
COL_FUNDING_SHORT = COL["funding_short"]
COL_MIN_FUNDING_RATE = COL["min_funding_rate"]
COL_MAX_FUNDING_RATE = COL["max_funding_rate"]
COL_HALTED_TIME = COL["halted_time"]
COL_HALT_COUNT = COL["halt_count"]
COL_MAX_HAIRCUT = COL["max_haircut"]
COL_MEAN_HAIRCUT = COL["mean_haircut"]
COL_HAIRCUT_RATIO = COL["haircut_ratio"]
COL_MIN_BASIS = COL["min_basis"]
COL_UNSTABLE_STEP = COL["unstable_step"]
COL_ROUNDS_EXHAUSTED = COL["rounds_exhausted"]
COL_FLOOR_STEP = COL["floor_step"]
COL_NONFINITE_STEP = COL["nonfinite_step"]
COL_FUND_EXHAUSTED_STEP = COL["fund_exhausted_step"]
COL_TIME_TO_TROUGH = COL["time_to_trough"]
COL_RECOVERY_TIME = COL["recovery_time"]
INT_OUTPUTS = ("halt_count", "unstable_step", "rounds_exhausted", "floor_step", "nonfinite_step",
               "fund_exhausted_step")

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
MIX1 = np.uint64(0xBF58476D1CE4E5B9)
MIX2 = np.uint64(0x94D049BB133111EB)
TO_UNIT = 2.0**-53

Params = namedtuple("Params", [
    "n_steps", "dt_years", "dt_seconds", "impact_sqrt", "cascade_rounds", "max_jumps", "book", "adl",
    "funding_every", "arbitrage", "breakers", "reference", "band", "haircuts", "tolerance",
    "s0", "drift", "sigma_t", "gap_t", "jump_mean", "jump_std", "jump_cdf",
    "depth", "permanent", "decay", "depletion", "withdrawal", "vol_ref", "vol_decay",
    "sell_start", "sell_per_step", "sell_total", "sell_sign",
    "side", "units0", "entry", "margin_per_unit", "tier_lower", "tier_width", "tier_rate", "accounts",
    "penalty", "fund0", "max_order", "collar",
    "gamma",
    "interest", "clamp", "cap", "funding_scale", "arb_pull", "arb_cap",
    "drop", "halt_steps", "vol_scaling", "breaker_vol_ref", "band_width", "band_steps", "ref_decay",
    "hc_base", "hc_vol", "hc_depth", "hc_floor", "hc_cap", "hc_buffer", "hc_max_step",
    "opt_intercept", "opt_inv_vol", "opt_quantity", "opt_put", "opt_gamma_scale",
])


def params_of(sc: Scenario) -> Params:
    """The scenario as a Numba-friendly named tuple (float64 arrays, int codes for string switches)."""

    def a(x):  # always a fresh writable array: Numba types read-only arrays apart (another compile)
        return np.array(x, dtype=np.float64, order="C", copy=True)

    book = {None: BOOK_NONE, "options": BOOK_OPTIONS, "constant_gamma": BOOK_GAMMA}[sc.dealer_book]
    reference = {"start": REF_START, "peak": REF_PEAK, "rolling": REF_ROLLING}[sc.breaker_reference]
    return Params(
        sc.n_steps, sc.dt_years, sc.dt_seconds, sc.impact_sqrt, sc.cascade_rounds, sc.max_jumps, book, sc.adl,
        sc.funding_every, sc.arbitrage, sc.breakers, reference, sc.band, sc.haircuts,
        NEWTON_TOLERANCE * float(np.finfo(sc.dtype).eps),
        sc.s0, sc.drift, a(sc.sigma_t), a(sc.gap_t), sc.jump_mean, sc.jump_std, a(sc.jump_cdf),
        sc.depth, sc.permanent, sc.decay, sc.depletion, sc.withdrawal, sc.vol_ref, sc.vol_decay,
        np.array(sc.sell_start, np.int64, copy=True), a(sc.sell_per_step), a(sc.sell_total), a(sc.sell_sign),
        a(sc.side), a(sc.units0), a(sc.entry), a(sc.margin_per_unit), a(sc.tier_lower), a(sc.tier_width),
        a(sc.tier_rate), a(sc.accounts),
        sc.penalty, sc.fund0, sc.max_order, sc.collar,
        sc.gamma,
        sc.interest, sc.clamp, sc.cap, sc.funding_scale, sc.arb_pull, sc.arb_cap,
        a(sc.drop), np.array(sc.halt_steps, np.int64, copy=True), sc.vol_scaling, sc.breaker_vol_ref,
        sc.band_width, sc.band_steps, sc.ref_decay,
        sc.hc_base, sc.hc_vol, sc.hc_depth, sc.hc_floor, sc.hc_cap, sc.hc_buffer, sc.hc_max_step,
        *(a(x) for x in _option_tables(sc)),
    )


def _option_tables(sc: Scenario) -> tuple[np.ndarray, ...]:
    """The options book's per-step constants (dealers.option_terms) for t_years = row * dt_years, rows
    0 .. n_steps ((n_steps + 1, O) each; the put flags (O,))."""
    t_years = (np.arange(sc.n_steps + 1) * sc.dt_years)[:, None]
    tau = np.asarray(sc.expiry, np.float64) - t_years
    alive = tau > MIN_TAU
    vol_t = np.maximum(sc.implied_vol * np.sqrt(np.where(alive, tau, 1.0)), 1e-12)
    q = np.where(alive, np.asarray(sc.quantity, np.float64), 0.0)
    if q.shape[1] == 0:  # no options book: one dummy column keeps the arrays 2-d
        q, vol_t = np.zeros((q.shape[0], 1)), np.ones((q.shape[0], 1))
        strike, is_call = np.ones(1), np.ones(1, bool)
    else:
        strike, is_call = np.asarray(sc.strike, np.float64), np.asarray(sc.is_call, bool)
    return ((np.log(sc.s0 / strike) + 0.5 * vol_t**2) / vol_t, 1.0 / vol_t, q, np.where(is_call, 0.0, 1.0),
            q / (SQRT_2PI * vol_t))


@njit(cache=True)
def _clip(x, lo, hi):
    return min(max(x, lo), hi)


@njit(cache=True)
def _mix(z):
    z = (z ^ (z >> np.uint64(30))) * MIX1
    z = (z ^ (z >> np.uint64(27))) * MIX2
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def _uniform(state):
    """Next SplitMix64 state and a uniform in (0, 1)."""
    state = state + GOLDEN
    return state, (float(_mix(state) >> np.uint64(11)) + 0.5) * TO_UNIT


@njit(cache=True)
def _maintenance(p, c, units, price):
    per_account = units * price / p.accounts[c]
    total = 0.0
    for k in range(p.tier_rate.shape[1]):
        total += p.tier_rate[c, k] * _clip(per_account - p.tier_lower[c, k], 0.0, p.tier_width[c, k])
    return p.accounts[c] * total


@njit(cache=True)
def _equity(p, c, units, price, margin):
    return units * (margin + p.side[c] * (price - p.entry[c]))


@njit(cache=True)
def _delta_gamma(p, y, row):
    """Options book delta (units) and gamma x price (units) at log-price ``y``, from the step's row of the
    option tables (dealers.option_terms: d1 = intercept + inv_vol * y)."""
    delta = 0.0
    gamma_price = 0.0
    for o in range(p.opt_quantity.shape[1]):
        d1 = p.opt_intercept[row, o] + p.opt_inv_vol[row, o] * y
        call = 0.5 * math.erfc(-d1 / SQRT_2)
        delta += p.opt_quantity[row, o] * (call - p.opt_put[o])
        gamma_price += p.opt_gamma_scale[row, o] * math.exp(-0.5 * d1 * d1)
    return delta, gamma_price


@njit(cache=True)
def _target_hedge(p, y, row):
    if p.book == BOOK_GAMMA:
        return p.gamma * y / ONE_PERCENT
    if p.book == BOOK_OPTIONS:
        delta, _ = _delta_gamma(p, y, row)
        return -delta
    return 0.0


@njit(cache=True)
def _flow_for_move(p, move, depth):
    ratio = move / ONE_PERCENT
    if p.impact_sqrt:
        return depth * math.copysign(ratio * ratio, ratio) if ratio != 0.0 else 0.0
    return depth * ratio


@njit(cache=True)
def _execution_fraction(p, queue_notional, depth):
    ratio = p.collar / ONE_PERCENT
    cap = min(p.max_order, depth * (ratio * ratio if p.impact_sqrt else ratio))
    return cap / max(queue_notional, 1e-30) if queue_notional > cap else 1.0


@njit(cache=True)
def _flow(p, y, y_base, exogenous, depth, net, total, hedge, row):
    """Signed flow at log-price ``y`` and d flow / d y (step._total_flow)."""
    fill = p.s0 * math.exp(0.5 * (y_base + y))
    frac = _execution_fraction(p, total * fill, depth)
    liq = -net * frac * fill
    flow = exogenous + liq
    slope = 0.0 if frac < 1.0 else 0.5 * liq
    if p.book == BOOK_OPTIONS:
        price = p.s0 * math.exp(y)
        delta, gamma_price = _delta_gamma(p, y, row)
        units = -delta - hedge
        flow += units * price
        slope += (units - gamma_price) * price
    elif p.book == BOOK_GAMMA:
        flow += p.gamma * y / ONE_PERCENT - hedge
        slope += p.gamma / ONE_PERCENT
    return flow, slope


@njit(cache=True)
def _clear(p, y, y_base, exogenous, depth, net, total, hedge, row):
    """Safeguarded Newton for y = y_base + impact(flow(y)) (step._clear). Returns (y, phi, iterations)."""
    phi = 0.0
    for k in range(MAX_NEWTON_ITERATIONS):
        flow, slope = _flow(p, y, y_base, exogenous, depth, net, total, hedge, row)
        if p.impact_sqrt:
            ratio = abs(flow) / depth
            move = ONE_PERCENT * math.copysign(math.sqrt(ratio), flow) if flow != 0.0 else 0.0
            dmove = 0.5 * ONE_PERCENT / (math.sqrt(max(ratio, 1e-12)) * depth)
        else:
            dmove = ONE_PERCENT / depth
            move = dmove * flow
        fprime = 1.0 - dmove * slope
        if fprime > MIN_SLOPE:
            y_new = y - (y - y_base - move) / fprime
        else:
            y_new = y_base + move
        y_new = _clip(y_new, y_base - MAX_MOVE, y_base + MAX_MOVE)
        phi = dmove * slope
        converged = abs(y_new - y) <= p.tolerance * (1.0 + abs(y))
        y = y_new
        if converged:
            return y, phi, k + 1
    return y, phi, MAX_NEWTON_ITERATIONS


@njit(cache=True)
def _baseline_depth(p, variance):
    excess = max(math.log(max(variance, TINY_VAR)) - math.log(max(p.vol_ref * p.vol_ref, TINY_VAR)), 0.0)
    return p.depth * math.exp(-0.5 * p.withdrawal * excess)


@njit(cache=True)
def _haircut_target(p, vol, depth_ratio):
    shortfall = _clip(1.0 - depth_ratio, 0.0, 1.0)
    raw = p.hc_base + p.hc_vol * vol + p.hc_depth * shortfall
    calm = p.hc_base + p.hc_vol * p.vol_ref
    return _clip(max(raw, calm + p.hc_buffer), p.hc_floor, p.hc_cap)


@njit(cache=True)
def _auto_deleverage(p, units, in_liq, price, value, ledger, bankrupt, score, capacity, taken, closed):
    """ADL at ``price`` on one path whose fund cannot cover its bankrupt cohorts (positions.auto_deleverage)."""
    n_c = units.shape[0]
    need_long = 0.0
    need_short = 0.0
    for c in range(n_c):
        bankrupt[c] = in_liq[c] and units[c] > 0 and _equity(p, c, units[c], price, value[c]) <= 0.0
        pnl = p.side[c] * (price - p.entry[c])
        if not in_liq[c] and units[c] > 0 and pnl > 0:
            score[c] = pnl / p.entry[c] * (price / (value[c] + pnl))
            capacity[c] = units[c]
        else:
            score[c] = -np.inf
            capacity[c] = 0.0
        if bankrupt[c]:
            if p.side[c] > 0:
                need_long += units[c]
            else:
                need_short += units[c]
    by_longs = 0.0
    by_shorts = 0.0
    for c in range(n_c):
        ahead = 0.0
        for j in range(n_c):
            if p.side[j] == p.side[c] and (score[j] > score[c] or (score[j] == score[c] and j < c)):
                ahead += capacity[j]
        need = need_short if p.side[c] > 0 else need_long
        taken[c] = _clip(need - ahead, 0.0, capacity[c])
        if p.side[c] > 0:
            by_longs += taken[c]
        else:
            by_shorts += taken[c]
    share_long = by_shorts / max(need_long, 1e-30) if need_long > 0 else 0.0
    share_short = by_longs / max(need_short, 1e-30) if need_short > 0 else 0.0
    value_long = 0.0
    value_short = 0.0
    for c in range(n_c):
        closed[c] = units[c] * (share_long if p.side[c] > 0 else share_short) if bankrupt[c] else 0.0
        at = p.entry[c] - p.side[c] * value[c]
        if p.side[c] > 0:
            value_long += closed[c] * at
        else:
            value_short += closed[c] * at
    avg_long = value_long / max(by_shorts, 1e-30)
    avg_short = value_short / max(by_longs, 1e-30)
    for c in range(n_c):
        at = p.entry[c] - p.side[c] * value[c]
        absorbed = avg_short if p.side[c] > 0 else avg_long
        ledger[CASH] += taken[c] * (value[c] + p.side[c] * (absorbed - p.entry[c]))
        ledger[REALISED] += (p.side[c] * closed[c] * (at - p.entry[c])
                             + p.side[c] * taken[c] * (absorbed - p.entry[c]))
        units[c] = units[c] - closed[c] - taken[c]
    ledger[ADL] += value_long + value_short
    ledger[LIQ_LONG] += value_long
    ledger[LIQ_SHORT] += value_short


@njit(cache=True)
def _path(p, i, seed, given, z_given, u_given, zj_given, out, stats):
    """Simulate path ``i`` over all steps; writes its outputs into ``out[i]`` and work counts into ``stats[i]``."""
    n_c = p.side.shape[0]
    n_l = p.drop.shape[0]
    n_p = p.sell_total.shape[0]
    units = p.units0.copy()
    in_liq = np.zeros(n_c, np.bool_)
    queued = np.zeros(n_c, np.bool_)
    solved = np.zeros(n_c, np.bool_)
    adj = np.zeros(n_c)
    check = np.empty(n_c)
    value = np.empty(n_c)
    bankrupt = np.zeros(n_c, np.bool_)
    score = np.empty(n_c)
    capacity = np.empty(n_c)
    taken = np.empty(n_c)
    closed = np.empty(n_c)
    fired = np.zeros(n_l, np.bool_)
    remaining = p.sell_total.copy()
    backlog = np.zeros(n_p)
    program_exec = np.zeros(n_p)
    ledger = np.zeros(N_LEDGER)
    ledger[FUND] = p.fund0
    rng = _mix(np.uint64(seed) * GOLDEN + np.uint64(i))

    y_fund = 0.0
    y = 0.0
    permanent = 0.0
    transient = 0.0
    consumed = 0.0
    variance = p.vol_ref * p.vol_ref
    hedge = _target_hedge(p, 0.0, 0)
    premium_sum = 0.0
    rate = 0.0
    left = 0
    ref = 0.0
    halts = 0
    halted_steps = 0
    haircut = _haircut_target(p, p.vol_ref, 1.0) if p.haircuts else 0.0
    min_y = 0.0
    sum_r2 = 0.0
    min_depth_ratio = 1.0
    max_h = haircut
    min_h = haircut
    haircut_sum = 0.0
    min_rate = 0.0
    max_rate = 0.0
    min_basis = 0.0
    unstable_step = -1
    floor_step = -1
    nonfinite_step = -1
    fund_exhausted_step = -1
    trough_step = -1
    recovery_step = -1
    rounds_exhausted = 0
    n_rounds = 0
    n_newton = 0
    n_adl = 0
    n_settle = 0
    n_band = 0
    n_halted = 0
    sqrt_dt = math.sqrt(p.dt_years)
    with_margin = p.haircuts or p.funding_every > 0

    for t in range(p.n_steps):
        # exogenous fundamental (price.exogenous_return)
        if given:
            z = z_given[t, i]
            u_jump = u_given[t, i]
            z_jump = zj_given[t, i]
        else:
            rng, u1 = _uniform(rng)
            rng, u2 = _uniform(rng)
            radius = math.sqrt(-2.0 * math.log(u1))
            z = radius * math.cos(2.0 * math.pi * u2)
            z_jump = radius * math.sin(2.0 * math.pi * u2)
            u_jump = 0.5
            if p.max_jumps:
                rng, u_jump = _uniform(rng)
        sig = p.sigma_t[t]
        dy = (p.drift - 0.5 * sig * sig) * p.dt_years + sig * sqrt_dt * z + p.gap_t[t]
        if p.max_jumps:
            jumps = 0.0
            for k in range(p.jump_cdf.shape[0]):
                if u_jump > p.jump_cdf[k]:
                    jumps += 1.0
            dy = dy + jumps * p.jump_mean + math.sqrt(jumps) * p.jump_std * z_jump
        y_fund = y_fund + dy
        # book resilience and withdrawal
        transient = transient * p.decay
        consumed = consumed * p.decay
        vol = math.sqrt(variance)
        base = _baseline_depth(p, variance)
        depth = base * (1.0 - consumed)
        y_base = y_fund + permanent + transient
        row = t + 1  # of the option tables: the step's time to expiry is hoisted out of the Newton loop
        halted = p.breakers and left > 0
        trading = not halted
        if halted:
            n_halted += 1
        if p.haircuts:
            haircut = _clip(_haircut_target(p, vol, depth / p.depth), haircut - p.hc_max_step,
                            haircut + p.hc_max_step)
        # pre-flow flows
        exogenous = 0.0
        for k in range(n_p):
            program_exec[k] = min(remaining[k], p.sell_per_step[k] + backlog[k]) if t >= p.sell_start[k] else 0.0
            exogenous += p.sell_sign[k] * program_exec[k]
        if p.arbitrage:
            exogenous += _clip(_flow_for_move(p, p.arb_pull * (y_fund - y_base), depth), -p.arb_cap, p.arb_cap)
        if halted:
            exogenous = 0.0
        # margin check at the pre-flow mark, ADL
        for c in range(n_c):
            if with_margin:
                check[c] = (p.margin_per_unit[c] * (1.0 - haircut) if p.haircuts else p.margin_per_unit[c]) + adj[c]
                value[c] = p.margin_per_unit[c] + adj[c]
            else:
                check[c] = p.margin_per_unit[c]
                value[c] = p.margin_per_unit[c]
        mark0 = p.s0 * math.exp(y if halted else y_base)
        any_bankrupt = False
        deficit = 0.0
        for c in range(n_c):
            u = units[c]
            if not in_liq[c] and u > 0:
                if _equity(p, c, u, mark0, check[c]) < _maintenance(p, c, u, mark0):
                    in_liq[c] = True
            if in_liq[c] and u > 0 and trading:
                eq = _equity(p, c, u, mark0, value[c])
                if eq <= 0.0:
                    any_bankrupt = True
                    deficit += -eq
        if p.adl and any_bankrupt and ledger[FUND] <= deficit:
            n_adl += 1
            _auto_deleverage(p, units, in_liq, mark0, value, ledger, bankrupt, score, capacity, taken, closed)
        # intra-step cascade rounds
        y_new = y_base
        phi = 0.0
        q_net = 0.0
        q_total = 0.0
        exhausted = False
        for c in range(n_c):
            queued[c] = in_liq[c]
            solved[c] = in_liq[c]
        if trading:
            active = True
            for _ in range(p.cascade_rounds):
                n_rounds += 1
                net = 0.0
                total = 0.0
                for c in range(n_c):
                    solved[c] = queued[c]
                    if queued[c]:
                        net += p.side[c] * units[c]
                        total += units[c]
                q_net = net
                q_total = total
                y_new, phi, iterations = _clear(p, y_new, y_base, exogenous, depth, net, total, hedge, row)
                n_newton += iterations
                mark = p.s0 * math.exp(y_new)
                active = False
                for c in range(n_c):
                    u = units[c]
                    if not queued[c] and u > 0:
                        if _equity(p, c, u, mark, check[c]) < _maintenance(p, c, u, mark):
                            queued[c] = True
                            active = True
                if not active:
                    break
            exhausted = active
        for c in range(n_c):
            in_liq[c] = queued[c]
        # price band
        scale = 1.0
        breached = False
        if p.band:
            edge = _clip(y_new, y + math.log1p(-min(p.band_width, 1.0 - 1e-6)), y + math.log1p(p.band_width))
            breached = trading and edge != y_new
            if breached:
                n_band += 1
                wanted = _flow_for_move(p, y_new - y_base, depth)
                allowed = _flow_for_move(p, edge - y_base, depth)
                scale = _clip(allowed / (1.0 if wanted == 0 else wanted), 0.0, 1.0)
                y_new = edge
        # settle fills at the step's average price
        fill_price = p.s0 * math.exp(0.5 * (y_base + y_new))
        frac = (_execution_fraction(p, q_total * fill_price, depth) if trading else 0.0) * scale
        if q_total * frac > 0:
            n_settle += 1
            fees = 0.0
            bad = 0.0
            for c in range(n_c):
                if not solved[c]:
                    continue
                filled = units[c] * frac
                released = _equity(p, c, filled, fill_price, value[c])
                notional = filled * fill_price
                fee = min(p.penalty * notional, max(released, 0.0))
                fees += fee
                bad += max(-released, 0.0)
                ledger[CASH] += max(released, 0.0) - fee
                ledger[REALISED] += p.side[c] * filled * (fill_price - p.entry[c])
                ledger[BAD_DEBT] += max(-released, 0.0)
                if p.side[c] > 0:
                    ledger[LIQ_LONG] += notional
                else:
                    ledger[LIQ_SHORT] += notional
                units[c] = units[c] - filled
            fund = ledger[FUND] + fees - bad
            ledger[PENALTIES] += fees
            ledger[SOCIALISED] += max(-fund, 0.0)
            ledger[FUND] = max(fund, 0.0)
        y_prev = y
        if trading:
            y = y_new
        done = (1.0 if trading else 0.0) * scale
        for k in range(n_p):
            remaining[k] = remaining[k] - program_exec[k] * done
            backlog[k] = program_exec[k] * (1.0 - done)
        flow, _ = _flow(p, y, y_base, exogenous, depth, q_net, q_total, hedge, row)
        if trading and p.book != BOOK_NONE:
            hedge = _target_hedge(p, y, row)
        step_return = y - y_prev
        move = y - y_base if trading else 0.0
        consumed = min(consumed + p.depletion * abs(flow * scale if trading else 0.0) / base, MAX_CONSUMED)
        variance = p.vol_decay * variance + (1.0 - p.vol_decay) * step_return * step_return / p.dt_years
        permanent = permanent + p.permanent * move
        transient = transient + (1.0 - p.permanent) * move
        # breakers
        if p.breakers:
            if halted:
                left -= 1
            bscale = (math.sqrt(variance) / p.breaker_vol_ref) ** p.vol_scaling
            level_halt = 0
            for k in range(n_l):
                threshold = ref + math.log1p(-min(p.drop[k] * bscale, 1.0 - 1e-6))
                if trading and not fired[k] and y <= threshold:
                    fired[k] = True
                    level_halt = max(level_halt, p.halt_steps[k])
            new_halt = max(level_halt, p.band_steps) if breached else level_halt
            if p.reference == REF_PEAK and trading:
                ref = max(ref, y)
            elif p.reference == REF_ROLLING and trading:
                ref = p.ref_decay * ref + (1.0 - p.ref_decay) * y
            left = max(left, new_halt)
            if new_halt > 0:
                halts += 1
            if halted:
                halted_steps += 1
        # funding
        if p.funding_every:
            premium_sum = premium_sum + math.expm1(y - y_fund)
            if (t + 1) % p.funding_every == 0:
                prem = premium_sum / p.funding_every
                rate = _clip(p.funding_scale * (prem + _clip(p.interest - prem, -p.clamp, p.clamp)), -p.cap, p.cap)
                mark_now = p.s0 * math.exp(y)
                for c in range(n_c):
                    per_unit = -p.side[c] * (rate * mark_now)
                    if p.side[c] > 0:
                        ledger[FUND_LONG] += units[c] * per_unit
                    else:
                        ledger[FUND_SHORT] += units[c] * per_unit
                    adj[c] += per_unit
                premium_sum = 0.0
        # online summaries
        if not p.impact_sqrt and unstable_step < 0 and phi >= 1.0 and trading:
            unstable_step = t
        if floor_step < 0 and abs(y - y_base) >= MAX_MOVE * (1.0 - 1e-6) and trading:
            floor_step = t
        finite = math.isfinite(y) and math.isfinite(depth) and math.isfinite(hedge) and math.isfinite(ledger[FUND])
        if nonfinite_step < 0 and not finite:
            nonfinite_step = t
        new_low = y < min_y
        if new_low:
            min_y = y
        recovered = recovery_step < 0 and trough_step >= 0 and not new_low and y >= 0.5 * min_y
        sum_r2 = sum_r2 + step_return * step_return
        ratio = _baseline_depth(p, variance) * (1.0 - consumed) / p.depth
        min_depth_ratio = min(min_depth_ratio, ratio)
        max_h = max(max_h, haircut)
        min_h = min(min_h, haircut)
        haircut_sum = haircut_sum + haircut
        min_rate = min(min_rate, rate)
        max_rate = max(max_rate, rate)
        min_basis = min(min_basis, math.expm1(y - y_fund))
        if exhausted:
            rounds_exhausted += 1
        if fund_exhausted_step < 0 and ledger[FUND] <= 0.0 and p.fund0 > 0:
            fund_exhausted_step = t
        if new_low:
            trough_step = t
            recovery_step = -1
        elif recovered:
            recovery_step = t

    s_end = p.s0 * math.exp(y)
    open_equity = 0.0
    open_pnl = 0.0
    for c in range(n_c):
        open_equity += _equity(p, c, units[c], s_end, p.margin_per_unit[c] + adj[c])
        open_pnl += p.side[c] * units[c] * (s_end - p.entry[c])
    row = out[i]
    row[COL_CASCADE_DEPTH] = max(-math.expm1(min_y), 0.0)
    row[COL_MIN_PRICE] = p.s0 * math.exp(min_y)
    row[COL_FINAL_PRICE] = s_end
    row[COL_LIQUIDATED_LONG] = ledger[LIQ_LONG]
    row[COL_LIQUIDATED_SHORT] = ledger[LIQ_SHORT]
    row[COL_BAD_DEBT] = ledger[BAD_DEBT]
    row[COL_INSURANCE_FUND] = ledger[FUND]
    row[COL_ADL_NOTIONAL] = ledger[ADL]
    row[COL_SOCIALISED_LOSS] = ledger[SOCIALISED]
    row[COL_PENALTIES] = ledger[PENALTIES]
    row[COL_REALIZED_VOL] = math.sqrt(sum_r2 / (p.n_steps * p.dt_years))
    row[COL_MIN_DEPTH_RATIO] = min_depth_ratio
    row[COL_TRADER_EQUITY] = ledger[CASH] + open_equity
    row[COL_TRADER_PNL] = ledger[REALISED] + open_pnl
    row[COL_FUNDING_LONG] = ledger[FUND_LONG]
    row[COL_FUNDING_SHORT] = ledger[FUND_SHORT]
    row[COL_MIN_FUNDING_RATE] = min_rate
    row[COL_MAX_FUNDING_RATE] = max_rate
    row[COL_HALTED_TIME] = halted_steps * p.dt_seconds
    row[COL_HALT_COUNT] = halts
    row[COL_MAX_HAIRCUT] = max_h
    row[COL_MEAN_HAIRCUT] = haircut_sum / p.n_steps
    row[COL_HAIRCUT_RATIO] = max_h / max(min_h, 1e-12)
    row[COL_MIN_BASIS] = min_basis
    row[COL_UNSTABLE_STEP] = unstable_step
    row[COL_ROUNDS_EXHAUSTED] = rounds_exhausted
    row[COL_FLOOR_STEP] = floor_step
    row[COL_NONFINITE_STEP] = nonfinite_step
    row[COL_FUND_EXHAUSTED_STEP] = fund_exhausted_step
    row[COL_TIME_TO_TROUGH] = (trough_step + 1) * p.dt_seconds if trough_step >= 0 else np.nan
    row[COL_RECOVERY_TIME] = (recovery_step - trough_step) * p.dt_seconds if recovery_step >= 0 else np.nan
    stats[i, 0] = n_rounds
    stats[i, 1] = n_newton
    stats[i, 2] = n_adl
    stats[i, 3] = n_settle
    stats[i, 4] = n_band
    stats[i, 5] = n_halted


@njit(cache=True, parallel=True)
def _run(p, n, seed, given, z_given, u_given, zj_given, out, stats):
    for i in prange(n):
        _path(p, np.int64(i), seed, given, z_given, u_given, zj_given, out, stats)


def simulate(sc: Scenario, n: int, seed: int = 0, draws: Draws | None = None,
             stats: dict[str, int] | None = None) -> dict[str, np.ndarray]:
    """Simulate ``n`` paths of ``sc``; per-path outputs named as stresslab's (``scenario.OUTPUTS``).

    Args:
        draws: random inputs (T, n) to replay; default: SplitMix64 streams seeded by ``(seed, path)``.
        stats: if given, receives the counts named in ``STATS``.
    """
    p = params_of(sc)
    out = np.zeros((n, len(OUTPUTS)))
    counts = np.zeros((n, len(STATS)), np.int64)
    if draws is None:
        empty = np.zeros((1, 1))
        _run(p, n, seed, False, empty, empty, empty, out, counts)
    else:
        z, u, zj = (np.array(x, np.float64, order="C", copy=True) for x in (draws.z, draws.u_jump, draws.z_jump))
        _run(p, n, seed, True, z, u, zj, out, counts)
    if stats is not None:
        for name, total in zip(STATS, counts.sum(0), strict=True):
            stats[name] = stats.get(name, 0) + int(total)
    result = {name: out[:, COL[name]] for name in OUTPUTS}
    for name in INT_OUTPUTS:
        result[name] = result[name].astype(np.int64)
    return result
