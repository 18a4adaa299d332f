"""Reference implementation in vectorised NumPy: stresslab's market step for one venue.

A port of ``stresslab/market/step.py`` (and the mechanism modules it composes) for
the subset of the model that ``benchmarks/scenario.py`` describes, written the way a
careful quant writes Monte Carlo in NumPy: arrays over paths (and paths x cohorts),
one Python loop over time steps, and the iterative parts (intra-step cascade rounds,
the Newton solve of the clearing price, auto-deleveraging, settlement) run only on the
paths that still need them (index sets shrink as paths converge), never on all paths.

Randomness: by default NumPy's ``Generator`` (PCG64) draws, per step, the diffusion
normal, the jump-count uniform and the jump-size normal of every path; ``draws``
replays given ones instead (stresslab's, for the agreement tests).
"""

from __future__ import annotations

import numpy as np
from scenario import Draws, Scenario
from scipy.special import ndtr

ONE_PERCENT = 0.01
MAX_CONSUMED = 1.0 - 1e-4
TINY_VAR = 1e-12
MIN_TAU = 1e-9
MAX_NEWTON_ITERATIONS = 64
NEWTON_TOLERANCE = 8.0
MIN_SLOPE = 0.05
MAX_MOVE = 10.0
SQRT_2PI = float(np.sqrt(2.0 * np.pi))
"""Constants of stresslab's kernel (liquidity.py, dealers.py, step.py), same values."""
STATS = ("rounds", "newton", "adl", "settle", "band", "halted")
"""Work counted over paths: cascade rounds, Newton iterations, and path-steps with ADL, liquidation
fills, a price-band stop and a halt."""


def _impact(sc: Scenario, flow, depth):
    """Log-price impact of a signed flow and d impact / d flow (liquidity.impact)."""
    if not sc.impact_sqrt:
        slope = ONE_PERCENT / depth
        return slope * flow, slope
    ratio = np.abs(flow) / depth
    move = ONE_PERCENT * np.sign(flow) * np.sqrt(ratio)
    return move, 0.5 * ONE_PERCENT / (np.sqrt(np.maximum(ratio, 1e-12)) * depth)


def _flow_for_move(sc: Scenario, move, depth):
    ratio = move / ONE_PERCENT
    return depth * (np.sign(ratio) * ratio**2 if sc.impact_sqrt else ratio)


def _execution_fraction(sc: Scenario, queue_notional, depth):
    ratio = sc.collar / ONE_PERCENT
    cap = np.minimum(sc.max_order, depth * (ratio**2 if sc.impact_sqrt else ratio))
    return np.where(queue_notional > cap, cap / np.maximum(queue_notional, 1e-30), 1.0)


def _option_terms(sc: Scenario, t_years):
    """The options book's constants for a step at ``t_years`` (each (O,), dealers.option_terms):
    d1 = intercept + inv_vol * y, gamma x price = sum(gamma_scale * exp(-d1**2 / 2))."""
    tau = sc.expiry - t_years
    alive = tau > MIN_TAU
    vol_t = np.maximum(sc.implied_vol * np.sqrt(np.where(alive, tau, 1.0)), 1e-12)
    q = np.where(alive, sc.quantity, 0.0)
    return ((np.log(sc.s0 / sc.strike) + 0.5 * vol_t**2) / vol_t, 1.0 / vol_t, q,
            np.where(sc.is_call, 0.0, 1.0), q / (SQRT_2PI * vol_t))


def _delta_gamma(terms, y):
    """Options book delta (units) and gamma x price (units) at log-price ``y`` (n,)."""
    intercept, inv_vol, q, put, gamma_scale = terms
    d1 = intercept + inv_vol * y[:, None]
    return (q * (ndtr(d1) - put)).sum(1), (gamma_scale * np.exp(-0.5 * d1**2)).sum(1)


def _target_hedge(sc: Scenario, y, terms):
    if sc.dealer_book == "constant_gamma":
        return sc.gamma * y / ONE_PERCENT
    delta, _ = _delta_gamma(terms, y)
    return -delta


def _hedge_flow(sc: Scenario, hedge, y, terms):
    if sc.dealer_book == "constant_gamma":
        return sc.gamma * y / ONE_PERCENT - hedge, np.full_like(y, sc.gamma / ONE_PERCENT)
    price = sc.s0 * np.exp(y)
    delta, gamma_price = _delta_gamma(terms, y)
    units = -delta - hedge
    return units * price, (units - gamma_price) * price


def _equity(sc: Scenario, units, price, margin):
    return units * (margin + sc.side * (price[:, None] - sc.entry))


def _maintenance(sc: Scenario, units, price):
    """Tiered maintenance margin (n, C), one (n, C) pass per tier (no (n, C, tiers) temporaries)."""
    per_account = units * price[:, None] / sc.accounts
    total = np.zeros_like(per_account)
    part = np.empty_like(per_account)
    for k in range(sc.tier_rate.shape[1]):
        np.subtract(per_account, sc.tier_lower[:, k], out=part)
        np.maximum(part, 0.0, out=part)
        np.minimum(part, sc.tier_width[:, k], out=part)
        part *= sc.tier_rate[:, k]
        total += part
    return sc.accounts * total


def _side_sums(sc: Scenario, x):
    long = sc.side > 0
    return np.where(long, x, 0.0).sum(-1), np.where(long, 0.0, x).sum(-1)


class _Step:
    """What the clearing equation needs on a set of paths, fixed within a step."""

    def __init__(self, sc, y_base, exogenous, depth, hedge, options, net, total):
        self.sc, self.y_base, self.exogenous, self.depth = sc, y_base, exogenous, depth
        self.hedge, self.options, self.net, self.total = hedge, options, net, total

    def take(self, idx):
        return _Step(self.sc, self.y_base[idx], self.exogenous[idx], self.depth[idx], self.hedge[idx],
                     self.options, self.net[idx], self.total[idx])

    def flow(self, y):
        """Signed flow at log-price ``y`` and d flow / d y (step._total_flow)."""
        sc = self.sc
        fill = sc.s0 * np.exp(0.5 * (self.y_base + y))
        frac = _execution_fraction(sc, self.total * fill, self.depth)
        liq = -self.net * frac * fill
        flow, slope = self.exogenous + liq, np.where(frac < 1.0, 0.0, 0.5 * liq)
        if sc.dealer_book is not None:
            hedge, hedge_slope = _hedge_flow(sc, self.hedge, y, self.options)
            flow, slope = flow + hedge, slope + hedge_slope
        return flow, slope

    def clear(self, y, stats):
        """Safeguarded Newton for y = y_base + impact(flow(y)), path by path (step._clear)."""
        tolerance = NEWTON_TOLERANCE * np.finfo(y.dtype).eps
        y = y.copy()
        phi = np.zeros_like(y)
        active = np.arange(y.shape[0])
        ctx = self
        for _ in range(MAX_NEWTON_ITERATIONS):
            if active.size == 0:
                break
            stats["newton"] += active.size
            ya = y[active]
            flow, slope = ctx.flow(ya)
            move, dmove = _impact(self.sc, flow, ctx.depth)
            fprime = 1.0 - dmove * slope
            newton = fprime > MIN_SLOPE
            y_new = np.where(newton, ya - (ya - ctx.y_base - move) / np.where(newton, fprime, 1.0),
                             ctx.y_base + move)
            y_new = np.clip(y_new, ctx.y_base - MAX_MOVE, ctx.y_base + MAX_MOVE)
            y[active] = y_new
            phi[active] = dmove * slope
            more = ~(np.abs(y_new - ya) <= tolerance * (1.0 + np.abs(ya)))
            active = active[more]
            ctx = ctx.take(more)
        return y, phi


def _auto_deleverage(sc: Scenario, units, in_liq, price, value, ledger, paths):
    """ADL on ``paths`` (whose fund cannot cover their bankrupt cohorts), in place (positions.auto_deleverage)."""
    u, liq, p, v = units[paths], in_liq[paths], price[paths], value[paths]
    long = sc.side > 0
    bankrupt = liq & (u > 0) & (_equity(sc, u, p, v) <= 0.0)
    pnl = sc.side * (p[:, None] - sc.entry)
    eligible = ~liq & (u > 0) & (pnl > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.where(eligible, pnl / sc.entry * (p[:, None] / (v + pnl)), -np.inf)
    capacity = np.where(eligible, u, 0.0)
    index = np.arange(sc.n_cohorts)
    ahead = ((score[:, :, None] > score[:, None, :])
             | ((score[:, :, None] == score[:, None, :]) & (index[:, None] < index[None, :])))
    ahead &= sc.side[:, None] == sc.side[None, :]
    before = np.where(ahead, capacity[:, :, None], 0.0).sum(1)
    need_long, need_short = _side_sums(sc, np.where(bankrupt, u, 0.0))
    need = np.where(long, need_short[:, None], need_long[:, None])
    taken = np.clip(need - before, 0.0, capacity)
    by_longs, by_shorts = _side_sums(sc, taken)
    share_long = np.where(need_long > 0, by_shorts / np.maximum(need_long, 1e-30), 0.0)
    share_short = np.where(need_short > 0, by_longs / np.maximum(need_short, 1e-30), 0.0)
    closed = np.where(bankrupt, u * np.where(long, share_long[:, None], share_short[:, None]), 0.0)
    bankrupt_at = sc.entry - sc.side * v
    value_long, value_short = _side_sums(sc, closed * bankrupt_at)
    avg_long = value_long / np.maximum(by_shorts, 1e-30)
    avg_short = value_short / np.maximum(by_longs, 1e-30)
    absorbed = np.where(long, avg_short[:, None], avg_long[:, None])
    realised = sc.side * closed * (bankrupt_at - sc.entry) + sc.side * taken * (absorbed - sc.entry)
    ledger["cash"][paths] += (taken * (v + sc.side * (absorbed - sc.entry))).sum(1)
    ledger["realised_pnl"][paths] += realised.sum(1)
    ledger["adl_notional"][paths] += value_long + value_short
    ledger["liquidated_long"][paths] += value_long
    ledger["liquidated_short"][paths] += value_short
    units[paths] = u - closed - taken


def _settle(sc: Scenario, ledger, filled, fill_price, value, paths):
    """Book liquidation fills on ``paths`` (positions.settle_fills), in place."""
    released = _equity(sc, filled, fill_price, value)
    notional = filled * fill_price[:, None]
    fee = np.minimum(sc.penalty * notional, np.maximum(released, 0.0))
    bad = np.maximum(-released, 0.0)
    fund = ledger["fund"][paths] + fee.sum(1) - bad.sum(1)
    long_n, short_n = _side_sums(sc, notional)
    ledger["cash"][paths] += (np.maximum(released, 0.0) - fee).sum(1)
    ledger["realised_pnl"][paths] += (sc.side * filled * (fill_price[:, None] - sc.entry)).sum(1)
    ledger["penalties"][paths] += fee.sum(1)
    ledger["bad_debt"][paths] += bad.sum(1)
    ledger["socialised"][paths] += np.maximum(-fund, 0.0)
    ledger["liquidated_long"][paths] += long_n
    ledger["liquidated_short"][paths] += short_n
    ledger["fund"][paths] = np.maximum(fund, 0.0)


def _haircut_target(sc: Scenario, vol, depth_ratio):
    shortfall = np.clip(1.0 - depth_ratio, 0.0, 1.0)
    raw = sc.hc_base + sc.hc_vol * vol + sc.hc_depth * shortfall
    calm = sc.hc_base + sc.hc_vol * sc.vol_ref
    return np.clip(np.maximum(raw, calm + sc.hc_buffer), sc.hc_floor, sc.hc_cap)


def _baseline_depth(sc: Scenario, variance):
    excess = np.maximum(np.log(np.maximum(variance, TINY_VAR)) - np.log(max(sc.vol_ref**2, TINY_VAR)), 0.0)
    return sc.depth * np.exp(-0.5 * sc.withdrawal * excess)


def _first(step, happened, t):
    return np.where((step < 0) & happened, t, step)


DEFAULT_CHUNK = 2**14
"""Paths simulated together: bounds the (paths x cohorts x tiers) temporaries (~60 MB in float32 at 48 cohorts)."""


def simulate(sc: Scenario, n: int, seed: int = 0, draws: Draws | None = None,
             stats: dict[str, int] | None = None, chunk: int = DEFAULT_CHUNK) -> dict[str, np.ndarray]:
    """Simulate ``n`` paths of ``sc``, ``chunk`` paths at a time; per-path outputs named as stresslab's
    (``scenario.OUTPUTS``).

    Args:
        draws: random inputs (T, n) to replay; default: NumPy's PCG64 generator, one stream per
            chunk seeded with ``(seed, first path of the chunk)``.
        stats: if given, receives the counts named in ``STATS``.
    """
    stats = stats if stats is not None else {}
    for key in STATS:
        stats.setdefault(key, 0)
    parts = []
    for first in range(0, n, chunk):
        last = min(first + chunk, n)
        given = None if draws is None else Draws(*(x[:, first:last] for x in (draws.z, draws.u_jump, draws.z_jump)))
        parts.append(_simulate_chunk(sc, last - first, np.random.default_rng([seed, first]), given, stats))
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def _simulate_chunk(sc: Scenario, n: int, rng: np.random.Generator, draws: Draws | None,
                    stats: dict[str, int]) -> dict[str, np.ndarray]:
    dt, s0, f = sc.dtype, sc.s0, sc.dtype.type
    n_c = sc.n_cohorts
    zeros = np.zeros(n, dt)
    y_fund, y = zeros.copy(), zeros.copy()
    permanent, transient, consumed = zeros.copy(), zeros.copy(), zeros.copy()
    variance = np.full(n, sc.vol_ref**2, dt)
    remaining = np.broadcast_to(sc.sell_total, (n, sc.sell_total.shape[0])).astype(dt)
    backlog = np.zeros_like(remaining)
    units = np.broadcast_to(sc.units0, (n, n_c)).astype(dt)
    in_liq = np.zeros((n, n_c), bool)
    hedge = zeros.copy()
    if sc.dealer_book is not None:
        hedge = zeros + _target_hedge(sc, zeros, _option_terms(sc, f(0.0)))
    ledger = {k: zeros.copy() for k in ("cash", "realised_pnl", "penalties", "bad_debt", "socialised",
                                        "adl_notional", "liquidated_long", "liquidated_short",
                                        "funding_long", "funding_short")}
    ledger["fund"] = np.full(n, sc.fund0, dt)
    premium_sum, adj, rate = zeros.copy(), np.zeros((n, n_c), dt), zeros.copy()
    n_levels = sc.drop.shape[0]
    left, fired, ref = np.zeros(n, np.int64), np.zeros((n, n_levels), bool), zeros.copy()
    halts, halted_steps = np.zeros(n, np.int64), np.zeros(n, np.int64)
    haircut = zeros.copy()
    if sc.haircuts:
        haircut = zeros + _haircut_target(sc, f(sc.vol_ref), f(1.0))
    never = np.full(n, -1, np.int64)
    min_y, sum_r2, min_depth_ratio = zeros.copy(), zeros.copy(), np.ones(n, dt)
    max_h, min_h, haircut_sum = haircut.copy(), haircut.copy(), zeros.copy()
    min_rate, max_rate, min_basis = zeros.copy(), zeros.copy(), zeros.copy()
    unstable_step, floor_step, nonfinite_step = never.copy(), never.copy(), never.copy()
    fund_exhausted_step, trough_step, recovery_step = never.copy(), never.copy(), never.copy()
    rounds_exhausted = np.zeros(n, np.int64)
    sqrt_dt = np.sqrt(f(sc.dt_years))
    mpu = sc.margin_per_unit
    with_margin = sc.haircuts or sc.funding_every > 0

    for t in range(sc.n_steps):
        if draws is not None:
            z, u_jump, z_jump = draws.z[t], draws.u_jump[t], draws.z_jump[t]
        else:
            z = rng.standard_normal(n, dt)
            u_jump = rng.random(n, dt) if sc.max_jumps else None
            z_jump = rng.standard_normal(n, dt) if sc.max_jumps else None
        sig = sc.sigma_t[t]
        dy = (sc.drift - 0.5 * sig**2) * sc.dt_years + sig * sqrt_dt * z + sc.gap_t[t]
        if sc.max_jumps:
            jumps = (u_jump[:, None] > sc.jump_cdf).sum(1).astype(dt)
            dy = dy + jumps * sc.jump_mean + np.sqrt(jumps) * sc.jump_std * z_jump
        y_fund = y_fund + dy
        # book resilience and withdrawal (liquidity.recover, baseline_depth)
        transient = transient * sc.decay
        consumed = consumed * sc.decay
        vol = np.sqrt(variance)
        base = _baseline_depth(sc, variance)
        depth = base * (1.0 - consumed)
        y_base = y_fund + permanent + transient
        options = _option_terms(sc, f(t + 1) * sc.dt_years)  # hoisted: fixed within the step
        halted = left > 0 if sc.breakers else np.zeros(n, bool)
        stats["halted"] += int(halted.sum())
        trading = ~halted
        if sc.haircuts:
            wanted = _haircut_target(sc, vol, depth / sc.depth)
            haircut = np.clip(wanted, haircut - sc.hc_max_step, haircut + sc.hc_max_step)
        # pre-flow flows: sell programs (with what waited through a halt), basis arbitrage
        program_exec = np.where(t >= sc.sell_start, np.minimum(remaining, sc.sell_per_step + backlog), 0.0)
        exogenous = (sc.sell_sign * program_exec).sum(1)
        if sc.arbitrage:
            wanted = _flow_for_move(sc, sc.arb_pull * (y_fund - y_base), depth)
            exogenous = exogenous + np.clip(wanted, -sc.arb_cap, sc.arb_cap)
        exogenous = np.where(trading, exogenous, 0.0)
        # margin check at the pre-flow mark; ADL where the fund cannot cover the bankrupt cohorts
        if with_margin:
            check = (mpu * (1.0 - haircut[:, None]) if sc.haircuts else mpu) + adj
            value = mpu + adj
        else:
            check = value = np.broadcast_to(mpu, (n, n_c))
        mark0 = s0 * np.exp(np.where(halted, y, y_base))
        open_ = units > 0
        newly = ~in_liq & open_ & (_equity(sc, units, mark0, check) < _maintenance(sc, units, mark0))
        in_liq = in_liq | newly
        if sc.adl:
            bankrupt = in_liq & open_ & (_equity(sc, units, mark0, value) <= 0.0) & trading[:, None]
            deficit = np.where(bankrupt, -_equity(sc, units, mark0, value), 0.0).sum(1)
            short = np.flatnonzero(bankrupt.any(1) & (ledger["fund"] <= deficit))
            if short.size:
                stats["adl"] += short.size
                _auto_deleverage(sc, units, in_liq, mark0, value, ledger, short)
        # intra-step cascade rounds on the trading paths
        y_new, phi = y_base.copy(), zeros.copy()
        solved, queued = in_liq.copy(), in_liq.copy()
        q_net, q_total = zeros.copy(), zeros.copy()
        exhausted = np.zeros(n, bool)
        active = np.flatnonzero(trading)
        whole = _Step(sc, y_base, exogenous, depth, hedge, options, q_net, q_total)
        for _ in range(sc.cascade_rounds):
            if active.size == 0:
                break
            stats["rounds"] += active.size
            u, qd = units[active], queued[active]
            queue = np.where(qd, u, 0.0)
            net, total = (sc.side * queue).sum(1), queue.sum(1)
            ctx = whole.take(active)
            ctx.net, ctx.total = net, total
            y_a, phi_a = ctx.clear(y_new[active], stats)
            y_new[active], phi[active] = y_a, phi_a
            solved[active], q_net[active], q_total[active] = qd, net, total
            mark = s0 * np.exp(y_a)
            new = ~qd & (u > 0) & (_equity(sc, u, mark, check[active]) < _maintenance(sc, u, mark))
            queued[active] = qd | new
            active = active[new.any(1)]
        exhausted[active] = True
        in_liq = queued
        # price band: flow beyond it does not execute
        scale = np.ones(n, dt)
        breached = np.zeros(n, bool)
        if sc.band:
            edge = np.clip(y_new, y + np.log1p(-min(sc.band_width, 1.0 - 1e-6)), y + np.log1p(sc.band_width))
            breached = trading & (edge != y_new)
            wanted = _flow_for_move(sc, y_new - y_base, depth)
            allowed = _flow_for_move(sc, edge - y_base, depth)
            scale = np.where(breached, np.clip(allowed / np.where(wanted == 0, 1.0, wanted), 0.0, 1.0), 1.0)
            y_new = np.where(breached, edge, y_new)
            stats["band"] += int(breached.sum())
        # settle fills at the step's average price
        fill_price = s0 * np.exp(0.5 * (y_base + y_new))
        frac = np.where(trading, _execution_fraction(sc, q_total * fill_price, depth), 0.0) * scale
        fills = np.flatnonzero(q_total * frac > 0)
        if fills.size:
            stats["settle"] += fills.size
            filled = np.where(solved[fills], units[fills], 0.0) * frac[fills, None]
            _settle(sc, ledger, filled, fill_price[fills], value[fills], fills)
            units[fills] = units[fills] - filled
        y_prev = y
        y = np.where(trading, y_new, y)
        done = (trading * scale)[:, None]
        remaining = remaining - program_exec * done
        backlog = program_exec * (1.0 - done)  # a halted program's share waits and executes on reopening
        if sc.dealer_book is not None:
            new_hedge = np.where(trading, _target_hedge(sc, y, options), hedge)
        else:
            new_hedge = hedge
        step_return = y - y_prev
        flow, _ = whole.flow(y)
        move = np.where(trading, y - y_base, 0.0)
        hedge = new_hedge
        consumed = np.minimum(consumed + sc.depletion * np.abs(np.where(trading, flow * scale, 0.0)) / base,
                              MAX_CONSUMED)
        variance = sc.vol_decay * variance + (1.0 - sc.vol_decay) * step_return**2 / sc.dt_years
        permanent = permanent + sc.permanent * move
        transient = transient + (1.0 - sc.permanent) * move
        # breakers fire on the step's price
        if sc.breakers:
            left = np.where(halted, left - 1, left)
            bscale = (np.sqrt(variance) / sc.breaker_vol_ref) ** sc.vol_scaling
            threshold = ref[:, None] + np.log1p(-np.minimum(sc.drop * bscale[:, None], 1.0 - 1e-6))
            hit = trading[:, None] & ~fired & (y[:, None] <= threshold)
            level_halt = np.where(hit, sc.halt_steps, 0).max(1, initial=0)
            new_halt = np.where(breached, np.maximum(level_halt, sc.band_steps), level_halt)
            if sc.breaker_reference == "peak":
                ref = np.where(trading, np.maximum(ref, y), ref)
            elif sc.breaker_reference == "rolling":
                ref = np.where(trading, sc.ref_decay * ref + (1.0 - sc.ref_decay) * y, ref)
            left = np.maximum(left, new_halt)
            fired = fired | hit
            halts = halts + (new_halt > 0)
            halted_steps = halted_steps + halted
        # funding: premium accrues every step, payments at interval ends
        if sc.funding_every:
            premium_sum = premium_sum + np.expm1(y - y_fund)
            if (t + 1) % sc.funding_every == 0:
                p = premium_sum / sc.funding_every
                rate = np.clip(sc.funding_scale * (p + np.clip(sc.interest - p, -sc.clamp, sc.clamp)),
                               -sc.cap, sc.cap)
                per_unit = -sc.side * (rate * s0 * np.exp(y))[:, None]
                long_in, short_in = _side_sums(sc, units * per_unit)
                ledger["funding_long"] = ledger["funding_long"] + long_in
                ledger["funding_short"] = ledger["funding_short"] + short_in
                premium_sum = zeros.copy()
                adj = adj + per_unit
        # online summaries (step.market_step's new_summary)
        if not sc.impact_sqrt:
            unstable_step = _first(unstable_step, (phi >= 1.0) & trading, t)
        floored = (np.abs(y - y_base) >= MAX_MOVE * (1.0 - 1e-6)) & trading
        finite = np.isfinite(y) & np.isfinite(depth) & np.isfinite(hedge) & np.isfinite(ledger["fund"])
        new_low = y < min_y
        min_y = np.where(new_low, y, min_y)
        recovered = (recovery_step < 0) & (trough_step >= 0) & ~new_low & (y >= 0.5 * min_y)
        sum_r2 = sum_r2 + step_return**2
        ratio = _baseline_depth(sc, variance) * (1.0 - consumed) / sc.depth
        min_depth_ratio = np.minimum(min_depth_ratio, ratio)
        max_h, min_h = np.maximum(max_h, haircut), np.minimum(min_h, haircut)
        haircut_sum = haircut_sum + haircut
        min_rate, max_rate = np.minimum(min_rate, rate), np.maximum(max_rate, rate)
        min_basis = np.minimum(min_basis, np.expm1(y - y_fund))
        rounds_exhausted = rounds_exhausted + exhausted
        floor_step = _first(floor_step, floored, t)
        nonfinite_step = _first(nonfinite_step, ~finite, t)
        fund_exhausted_step = _first(fund_exhausted_step, (ledger["fund"] <= 0.0) & (sc.fund0 > 0), t)
        trough_step = np.where(new_low, t, trough_step)
        recovery_step = np.where(new_low, -1, np.where(recovered, t, recovery_step))

    s_end = s0 * np.exp(y)
    value = mpu + adj
    years = sc.n_steps * sc.dt_years
    return {
        "cascade_depth": np.maximum(-np.expm1(min_y), 0.0),
        "min_price": s0 * np.exp(min_y),
        "final_price": s_end,
        "liquidated_long": ledger["liquidated_long"],
        "liquidated_short": ledger["liquidated_short"],
        "bad_debt": ledger["bad_debt"],
        "insurance_fund": ledger["fund"],
        "adl_notional": ledger["adl_notional"],
        "socialised_loss": ledger["socialised"],
        "penalties": ledger["penalties"],
        "realized_vol": np.sqrt(sum_r2 / years),
        "min_depth_ratio": min_depth_ratio,
        "trader_equity": ledger["cash"] + _equity(sc, units, s_end, value).sum(1),
        "trader_pnl": ledger["realised_pnl"] + (sc.side * units * (s_end[:, None] - sc.entry)).sum(1),
        "funding_long": ledger["funding_long"],
        "funding_short": ledger["funding_short"],
        "min_funding_rate": min_rate,
        "max_funding_rate": max_rate,
        "halted_time": halted_steps * sc.dt_seconds,
        "halt_count": halts,
        "max_haircut": max_h,
        "mean_haircut": haircut_sum / sc.n_steps,
        "haircut_ratio": max_h / np.maximum(min_h, 1e-12),
        "min_basis": min_basis,
        "unstable_step": unstable_step,
        "rounds_exhausted": rounds_exhausted,
        "floor_step": floor_step,
        "nonfinite_step": nonfinite_step,
        "fund_exhausted_step": fund_exhausted_step,
        "time_to_trough": np.where(trough_step >= 0, (trough_step + 1) * sc.dt_seconds, np.nan),
        "recovery_time": np.where(recovery_step >= 0, (recovery_step - trough_step) * sc.dt_seconds, np.nan),
    }
