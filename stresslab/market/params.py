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
from scipy.stats import norm, poisson

from stresslab.config.schema import Config, Position, PositionGrid
from stresslab.market.arbitrage import ArbitrageParams
from stresslab.market.breakers import BreakerParams
from stresslab.market.collateral import CollateralParams
from stresslab.market.dealers import DealerParams
from stresslab.market.defensive import DefensiveParams
from stresslab.market.funding import FundingParams
from stresslab.market.haircuts import HaircutParams
from stresslab.market.liquidity import LiquidityParams
from stresslab.market.positions import CohortParams, LiquidationParams
from stresslab.market.price import PriceParams
from stresslab.market.sell_program import SellParams

SECONDS_PER_DAY = 86400.0
TIER_CAP = 1e30
"""Upper bound of the last margin tier (a finite stand-in for infinity keeps gradients finite)."""
DEFAULT_TEMPERATURE = 1e-3
"""Width of smooth relaxations when none is given (only used with ``Static.smooth``)."""
JUMP_TAIL = 1e-12
"""Probability of more jumps in one step than the kernel draws (chooses ``max_jumps``)."""


class Params(NamedTuple):
    """All traced parameters of one scenario. Per-venue leaves carry a venue axis V
    (depth (V,), cohorts (V, C), insurance fund (V,), dealers' book (V,) / (V, O), ...).

    program_venue: (P, V) one-hot venue of each sell program.
    oracle_alpha: per-step weight on the previous mark (0: no smoothing).
    temperature: width of the smooth relaxations of hard rules (``Static.smooth``), a fraction
        of notional for margin triggers and of log-price for breaker levels.
    """

    price: PriceParams
    liquidity: LiquidityParams
    sell: SellParams
    cohorts: CohortParams
    liquidation: LiquidationParams
    dealers: DealerParams
    funding: FundingParams
    arbitrage: ArbitrageParams
    breakers: BreakerParams
    haircuts: HaircutParams
    collateral: CollateralParams
    defensive: DefensiveParams
    program_venue: jnp.ndarray
    oracle_alpha: jnp.ndarray
    temperature: jnp.ndarray


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
    n_venues: int = 1
    funding_every: int = 0
    arbitrage: str | None = None
    breakers: bool = False
    breaker_reference: str = "start"
    n_levels: int = 0
    band: bool = False
    haircuts: bool = False
    collateral: str | None = None
    mark: str = "last"
    smoothing: bool = False
    n_defensive: int = 0
    n_kill: int = 0
    smooth: bool = False

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
                 maintenance_margin=grid.maintenance_margin, accounts=grid.accounts, venue=grid.venue)
        for lv, w in zip(lev, weights, strict=True)
    ]


def build(config: Config) -> tuple[Params, Static]:
    """Turn one validated scenario into kernel inputs."""
    sim, mkt, liq = config.simulation, config.market, config.liquidity
    dtype = jnp.dtype(sim.dtype)
    seconds_per_year = sim.days_per_year * SECONDS_PER_DAY
    dt_years = sim.dt / seconds_per_year
    n_steps = sim.n_steps
    venues = config.venue_names

    def arr(x, dt=dtype):
        return jnp.asarray(np.asarray(x, dtype=np.float64 if dt == dtype else None), dtype=dt)

    def step_of(seconds: float) -> int:
        return int(math.floor(seconds / sim.dt + 1e-9))

    def steps_for(seconds: float) -> int:
        return max(1, round(seconds / sim.dt))

    def one_hot(name: str | None) -> list[float]:
        index = venues.index(name) if name is not None else 0
        return [1.0 if v == index else 0.0 for v in range(len(venues))]

    def decay(half_life: float) -> float:
        return math.exp(-math.log(2.0) * sim.dt / half_life)

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
    venue_depth = [v.depth or liq.depth for v in config.venues] or [liq.depth]
    liquidity = LiquidityParams(
        depth=arr(venue_depth), permanent=arr(liq.permanent_fraction),
        decay=arr(decay(liq.recovery_half_life)),
        depletion=arr(liq.depletion), withdrawal=arr(liq.withdrawal), vol_ref=arr(mkt.sigma),
        vol_decay=arr(decay(liq.vol_half_life)),
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
        penalty=arr(lq.penalty),
        fund0=arr([v.insurance_fund if v.insurance_fund is not None else lq.insurance_fund
                   for v in config.venues] or [lq.insurance_fund]),
        max_order=arr(lq.max_order if lq.max_order is not None else np.inf),
        collar=arr(lq.price_collar if lq.price_collar is not None else np.inf),
    )
    d = config.dealers
    dealer_venue = np.asarray(one_hot(d.venue))
    dealer_params = DealerParams(
        gamma=arr(d.gamma * dealer_venue),
        strike=arr([o.strike for o in d.options]),
        expiry=arr([o.expiry / seconds_per_year for o in d.options]),
        quantity=arr(dealer_venue[:, None] * np.asarray(
            [o.quantity * (-1.0 if o.dealer_position == "short" else 1.0) for o in d.options]).reshape(1, -1)),
        is_call=jnp.asarray([o.type == "call" for o in d.options], bool),
        implied_vol=arr(d.implied_vol if d.implied_vol is not None else mkt.sigma),
    )
    every = max(1, math.ceil(n_steps / sim.record_points))
    fn, ab, br, hc, co = config.funding, config.arbitrage, config.breakers, config.haircuts, config.collateral
    funding = _funding_params(config, arr)
    arbitrage = ArbitrageParams(pull=arr(-math.expm1(-math.log(2.0) * sim.dt / ab.half_life)),
                                cap=arr(ab.capacity * sim.dt / 3600.0))
    breakers = BreakerParams(
        drop=arr([lv.drop for lv in br.levels]),
        halt_steps=arr([steps_for(lv.halt) for lv in br.levels]),
        vol_scaling=arr(br.vol_scaling), vol_ref=arr(max(mkt.sigma, 1e-12)),
        band=arr(br.band if br.band is not None else np.inf),
        band_steps=arr(steps_for(br.band_pause), jnp.int32), ref_decay=arr(decay(br.window)),
    )
    haircuts = HaircutParams(
        base=arr(hc.base), vol_sensitivity=arr(hc.vol_sensitivity), depth_sensitivity=arr(hc.depth_sensitivity),
        floor=arr(hc.floor), cap=arr(hc.cap), buffer=arr(hc.buffer), vol_ref=arr(mkt.sigma),
        max_step=arr(hc.max_change * sim.dt / 3600.0 if hc.max_change is not None else np.inf),
    )
    collateral = CollateralParams(
        share=arr(co.share if co.enabled else 0.0), depth=arr(co.depth), decay=arr(decay(co.recovery_half_life)),
        sell_per_step=arr(co.sell * sim.dt / max(co.sell_duration, sim.dt) * np.asarray(one_hot(co.venue))),
        sell_start=arr(step_of(co.sell_start), jnp.int32),
        sell_end=arr(step_of(co.sell_start) + steps_for(co.sell_duration), jnp.int32),
    )
    defensive = _defensive_params(config, arr, one_hot, seconds_per_year)
    static = Static(
        n_steps=n_steps, dt_seconds=sim.dt, dt_years=dt_years, record_every=every,
        n_blocks=n_steps // every, remainder=n_steps % every,
        liquidity=liq.enabled, impact=liq.impact, max_jumps=max_jumps,
        dealer_book=d.book if d.enabled else None, cascade_rounds=sim.cascade_rounds,
        adl=lq.adl and cohorts.side.shape[-1] > 0, n_cohorts=cohorts.side.shape[-1], n_programs=len(programs),
        dtype=sim.dtype, n_venues=len(venues),
        funding_every=steps_for(fn.interval) if fn.enabled else 0,
        arbitrage=ab.reference if ab.enabled else None,
        breakers=br.enabled and (bool(br.levels) or br.band is not None),
        breaker_reference=br.reference, n_levels=len(br.levels), band=br.enabled and br.band is not None,
        haircuts=hc.enabled, collateral=co.pricing if co.enabled and co.share > 0 else None,
        mark=config.oracle.mark, smoothing=config.oracle.smoothing > 0,
        n_defensive=defensive.side.shape[0], n_kill=defensive.kill_threshold.shape[0],
    )
    params = Params(
        price, liquidity, sell, cohorts, liquidation, dealer_params, funding, arbitrage, breakers, haircuts,
        collateral, defensive,
        program_venue=arr(np.asarray([one_hot(s.venue) for s in programs]).reshape(len(programs), len(venues))),
        oracle_alpha=arr(decay(config.oracle.smoothing) if config.oracle.smoothing > 0 else 0.0),
        temperature=arr(DEFAULT_TEMPERATURE),
    )
    return params, static


def _per_step(program, dt: float, daily_volume: float) -> float:
    if program.duration is not None:
        return abs(program.notional) * dt / max(program.duration, dt)
    return program.participation * daily_volume * dt / SECONDS_PER_DAY


def _funding_params(config: Config, arr) -> FundingParams:
    fn = config.funding
    rate_interval = fn.rate_interval or fn.interval
    days = config.simulation.days_per_year
    cap = fn.cap if fn.cap is not None else np.inf
    if fn.cap_maintenance is not None:
        rates = [t.rate for t in config.margin.tiers[:1]]
        rates += [c.maintenance_margin for c in cohorts_of(config) if c.maintenance_margin != "tiered"]
        cap = fn.cap_maintenance * min(rates) if rates and min(rates) > 0 else np.inf
    return FundingParams(
        interest=arr(fn.interest * rate_interval / (days * SECONDS_PER_DAY)), clamp=arr(fn.clamp),
        cap=arr(cap), scale=arr(fn.interval / rate_interval),
    )


def _defensive_params(config: Config, arr, one_hot, seconds_per_year: float) -> DefensiveParams:
    traders = [d for d in config.defensive if d.kind != "kill_switch"]
    kills = [d for d in config.defensive if d.kind == "kill_switch"]
    price = config.market.price
    kind = np.asarray([d.kind for d in traders], dtype=object)

    def is_kind(name: str) -> jnp.ndarray:
        return jnp.asarray(kind == name, bool).reshape(-1)

    n_venues = len(config.venue_names)
    venue_units = np.asarray([one_hot(d.venue) for d in traders]).reshape(len(traders), n_venues).T
    return DefensiveParams(
        side=arr([1.0 if d.side == "long" else -1.0 for d in traders]),
        units0=arr(venue_units * np.asarray([d.notional / price for d in traders]).reshape(1, -1)),
        threshold=arr([d.threshold for d in traders]),
        stop=is_kind("stop_loss"), drawdown=is_kind("drawdown"), vol_target=is_kind("vol_target"),
        var_limit=is_kind("var_limit"),
        zscale=arr([norm.ppf(d.confidence) * math.sqrt(d.horizon / seconds_per_year) for d in traders]),
        kill_threshold=arr([d.threshold for d in kills]),
        kill_share=arr(np.asarray([one_hot(d.venue) for d in kills]).reshape(len(kills), n_venues).T
                       * np.asarray([d.share for d in kills]).reshape(1, -1)),
    )


def _cohort_params(config: Config, arr) -> CohortParams:
    """Cohorts per venue, (V, C) each: venues with fewer cohorts are padded with empty ones."""
    venues = config.venue_names
    by_venue: list[list[Position]] = [[] for _ in venues]
    for c in cohorts_of(config):
        by_venue[venues.index(c.venue) if c.venue is not None else 0].append(c)
    n_cohorts = max(len(v) for v in by_venue)
    tiers = config.margin.tiers
    n_tiers = max(1, len(tiers))
    shape = (len(venues), n_cohorts)
    side, units0, accounts = np.ones(shape), np.zeros(shape), np.ones(shape)
    entry = np.full(shape, config.market.price)
    margin = np.ones(shape)
    upper = np.full((*shape, n_tiers), TIER_CAP)
    rate = np.zeros((*shape, n_tiers))
    for v, cohorts in enumerate(by_venue):
        for i, c in enumerate(cohorts):
            entry[v, i] = c.entry_price or config.market.price
            side[v, i] = 1.0 if c.side == "long" else -1.0
            units0[v, i] = c.notional / entry[v, i]
            margin[v, i] = entry[v, i] / c.leverage
            accounts[v, i] = float(c.accounts)
            if c.maintenance_margin == "tiered":
                upper[v, i, : len(tiers) - 1] = [t.notional for t in tiers[:-1]]
                rate[v, i] = [t.rate for t in tiers]
            else:
                rate[v, i, 0] = c.maintenance_margin
    return CohortParams(side=arr(side), units0=arr(units0), entry=arr(entry), margin_per_unit=arr(margin),
                        tier_upper=arr(upper), tier_rate=arr(rate), accounts=arr(accounts))
