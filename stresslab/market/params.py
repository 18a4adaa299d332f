"""Build kernel inputs from a validated config: ``Params`` (array leaves) and ``Static`` (Python values).

Every number a user may sweep or calibrate is an array leaf of ``Params``; shapes,
switches and the time grid live in the hashable ``Static``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from scipy.stats import poisson

from stresslab.config.schema import Config, Position, PositionGrid
from stresslab.market.dealers import DealerParams
from stresslab.market.liquidity import LiquidityParams
from stresslab.market.positions import CohortParams, LiquidationParams
from stresslab.market.price import PriceParams
from stresslab.market.sell_program import SellParams

SECONDS_PER_DAY = 86400.0
TIER_CAP = 1e30
"""Upper bound of the last margin tier (a finite stand-in for infinity keeps gradients finite)."""
JUMP_TAIL = 1e-12
"""Probability of more jumps in one step than the kernel draws (chooses ``max_jumps``)."""


class Params(NamedTuple):
    """All traced parameters of one scenario."""

    price: PriceParams
    liquidity: LiquidityParams
    sell: SellParams
    cohorts: CohortParams
    liquidation: LiquidationParams
    dealers: DealerParams


@dataclass(frozen=True)
class Static:
    """Shapes, switches and time grid: decided outside jit (hashable).

    dt_years: step in years. record_every: steps between recorded time points;
    n_blocks full blocks then ``remainder`` steps (recorded at the end too).
    """

    n_steps: int
    dt_seconds: float
    dt_years: float
    record_every: int
    n_blocks: int
    remainder: int
    liquidity: bool
    impact: str
    max_jumps: int
    dealer_book: str | None
    cascade_rounds: int
    adl: bool
    n_cohorts: int
    n_programs: int
    dtype: str

    @property
    def n_draws(self) -> int:
        return 3 if self.max_jumps else 1

    @property
    def record_steps(self) -> np.ndarray:
        """Step counts at which the state is recorded (0 = initial)."""
        steps = [b * self.record_every for b in range(self.n_blocks + 1)]
        if self.remainder:
            steps.append(self.n_steps)
        return np.asarray(steps)


def cohorts_of(config: Config) -> list[Position]:
    """Explicit positions plus the cohorts expanded from ``position_grids``."""
    out = list(config.positions)
    for grid in config.position_grids:
        out.extend(_expand(grid))
    return out


def _expand(grid: PositionGrid) -> list[Position]:
    lev = np.geomspace(grid.leverage_min, grid.leverage_max, grid.cohorts)
    weights = lev ** (-grid.weight_exponent)
    weights = weights / weights.sum()
    return [
        Position(side=grid.side, leverage=float(lv), notional=float(grid.notional * w),
                 maintenance_margin=grid.maintenance_margin, accounts=grid.accounts)
        for lv, w in zip(lev, weights, strict=True)
    ]


def build(config: Config) -> tuple[Params, Static]:
    """Turn one validated scenario into kernel inputs."""
    sim, mkt, liq = config.simulation, config.market, config.liquidity
    dtype = jnp.dtype(sim.dtype)
    seconds_per_year = sim.days_per_year * SECONDS_PER_DAY
    dt_years = sim.dt / seconds_per_year
    n_steps = sim.n_steps

    def arr(x, dt=dtype):
        return jnp.asarray(np.asarray(x, dtype=np.float64 if dt == dtype else None), dtype=dt)

    def step_of(seconds: float) -> int:
        return int(math.floor(seconds / sim.dt + 1e-9))

    gaps = [s for s in mkt.shocks if s.type == "gap"]
    spikes = [s for s in mkt.shocks if s.type == "vol_spike"]
    programs = [s for s in mkt.shocks if s.type == "sell_program"]
    jumps_on = mkt.jumps.enabled and mkt.jumps.intensity > 0
    max_jumps = int(poisson.isf(JUMP_TAIL, mkt.jumps.intensity * dt_years)) + 2 if jumps_on else 0

    price = PriceParams(
        s0=arr(mkt.price), drift=arr(mkt.drift), sigma=arr(mkt.sigma),
        jump_intensity=arr(mkt.jumps.intensity if jumps_on else 0.0),
        jump_mean=arr(mkt.jumps.mean), jump_std=arr(mkt.jumps.std),
        gap_step=arr([step_of(g.at) for g in gaps], jnp.int32),
        gap_log=arr([math.log1p(g.size) for g in gaps]),
        spike_start=arr([step_of(v.start) for v in spikes], jnp.int32),
        spike_end=arr([step_of(v.start) + max(1, round(v.duration / sim.dt)) for v in spikes], jnp.int32),
        spike_mult=arr([v.multiplier for v in spikes]),
    )
    ln2 = math.log(2.0)
    liquidity = LiquidityParams(
        depth=arr(liq.depth), permanent=arr(liq.permanent_fraction),
        decay=arr(math.exp(-ln2 * sim.dt / liq.recovery_half_life)),
        depletion=arr(liq.depletion), withdrawal=arr(liq.withdrawal), vol_ref=arr(mkt.sigma),
        vol_decay=arr(math.exp(-ln2 * sim.dt / liq.vol_half_life)),
    )
    sell = SellParams(
        start=arr([step_of(s.start) for s in programs], jnp.int32),
        per_step=arr([_per_step(s, sim.dt, mkt.daily_volume) for s in programs]),
        total=arr([abs(s.notional) for s in programs]),
        sign=arr([-1.0 if s.notional >= 0 else 1.0 for s in programs]),
    )
    cohorts = _cohort_params(config, arr)
    lq = config.liquidation
    liquidation = LiquidationParams(
        penalty=arr(lq.penalty), fund0=arr(lq.insurance_fund),
        max_order=arr(lq.max_order if lq.max_order is not None else np.inf),
        collar=arr(lq.price_collar if lq.price_collar is not None else np.inf),
    )
    d = config.dealers
    dealer_params = DealerParams(
        gamma=arr(d.gamma),
        strike=arr([o.strike for o in d.options]),
        expiry=arr([o.expiry / seconds_per_year for o in d.options]),
        quantity=arr([o.quantity * (-1.0 if o.dealer_position == "short" else 1.0) for o in d.options]),
        is_call=jnp.asarray([o.type == "call" for o in d.options], bool),
        implied_vol=arr(d.implied_vol if d.implied_vol is not None else mkt.sigma),
    )
    every = max(1, math.ceil(n_steps / sim.record_points))
    static = Static(
        n_steps=n_steps, dt_seconds=sim.dt, dt_years=dt_years, record_every=every,
        n_blocks=n_steps // every, remainder=n_steps % every,
        liquidity=liq.enabled, impact=liq.impact, max_jumps=max_jumps,
        dealer_book=d.book if d.enabled else None, cascade_rounds=sim.cascade_rounds,
        adl=lq.adl and len(cohorts.side) > 0, n_cohorts=len(cohorts.side), n_programs=len(programs),
        dtype=sim.dtype,
    )
    return Params(price, liquidity, sell, cohorts, liquidation, dealer_params), static


def _per_step(program, dt: float, daily_volume: float) -> float:
    if program.duration is not None:
        return abs(program.notional) * dt / max(program.duration, dt)
    return program.participation * daily_volume * dt / SECONDS_PER_DAY


def _cohort_params(config: Config, arr) -> CohortParams:
    cohorts = cohorts_of(config)
    tiers = config.margin.tiers
    n_tiers = max(1, len(tiers))
    upper = np.full((len(cohorts), n_tiers), TIER_CAP)
    rate = np.zeros((len(cohorts), n_tiers))
    for i, c in enumerate(cohorts):
        if c.maintenance_margin == "tiered":
            upper[i, : len(tiers) - 1] = [t.notional for t in tiers[:-1]]
            rate[i] = [t.rate for t in tiers]
        else:
            rate[i, 0] = c.maintenance_margin
    entry = np.array([c.entry_price or config.market.price for c in cohorts])
    lev = np.array([c.leverage for c in cohorts])
    return CohortParams(
        side=arr([1.0 if c.side == "long" else -1.0 for c in cohorts]),
        units0=arr(np.array([c.notional for c in cohorts]) / entry if cohorts else []),
        entry=arr(entry),
        margin_per_unit=arr(entry / lev if cohorts else []),
        tier_upper=arr(upper.reshape(len(cohorts), n_tiers)),
        tier_rate=arr(rate.reshape(len(cohorts), n_tiers)),
        accounts=arr([float(c.accounts) for c in cohorts]),
    )
