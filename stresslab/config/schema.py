"""The configuration schema: frozen, validated, typed; nothing in it is traced.

Units (see README "Units"): durations are strings with units or seconds; rates
(volatility, drift, jump intensity) are per year; money is notional in quote
currency; ``liquidity.depth`` is the notional that moves price by 1 %.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from stresslab.config.units import Duration, format_duration

MAX_MAGNITUDE = 1e15
"""Largest absolute number a config may hold: beyond it float32 arithmetic (price x units) loses all meaning."""

CURRENCY_CODE_LENGTH = 3
"""Letters of an ISO 4217 currency code (``market.currency``)."""

PositiveFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, validate_default=True)


class Simulation(_Model):
    """Size, time grid, precision and output layout of a run."""

    paths: int = Field(10_000, ge=1, le=10**9, description="number of simulated paths per scenario")
    steps: int | None = Field(None, ge=1, le=10**7, description="number of time steps (or give horizon)")
    horizon: Duration | None = Field(None, description="simulated time span (or give steps)")
    dt: Duration = Field(60.0, description="time step")
    seed: int = Field(0, ge=0, le=2**32 - 1)
    dtype: Literal["float32", "float64"] = "float32"
    chunk_size: int | Literal["auto"] = Field("auto", description="paths per chunk, or 'auto'")
    cascade_rounds: int = Field(16, ge=1, le=1024, description="max intra-step cascade rounds")
    record_points: int = Field(100, ge=1, le=100_000, description="time points kept for quantile bands")
    quantiles: Annotated[tuple[Fraction, ...], Field(min_length=1)] = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
    keep_paths: int = Field(0, ge=0, le=10_000, description="full sample paths kept in the output")
    days_per_year: PositiveFloat = Field(365.0, description="length of the year for per-year rates")
    start: datetime | None = Field(None, description="UTC time of the run's start (e.g. 2021-05-19T09:00:00Z; "
                                   "without a zone it is read as UTC): puts the results on the real clock")

    @model_validator(mode="after")
    def _time_grid(self) -> Simulation:
        if self.start is not None:
            utc = self.start.replace(tzinfo=UTC) if self.start.tzinfo is None else self.start.astimezone(UTC)
            object.__setattr__(self, "start", utc)
        if self.dt <= 0:
            raise ValueError("simulation.dt must be positive")
        if isinstance(self.chunk_size, int) and self.chunk_size < 1:
            raise ValueError("simulation.chunk_size must be a positive integer or 'auto'")
        if (self.steps is None) == (self.horizon is None):
            raise ValueError("give exactly one of simulation.steps and simulation.horizon")
        n = self.n_steps
        if n < 1 or n > 10**7:
            raise ValueError(f"simulation.horizon / simulation.dt gives {n} steps; allowed: 1 to 10^7")
        return self

    @property
    def n_steps(self) -> int:
        if self.steps is not None:
            return self.steps
        return round(self.horizon / self.dt)


class Jumps(_Model):
    """Merton compound-Poisson jumps in log-price."""

    enabled: bool = True
    intensity: NonNegFloat = Field(0.0, description="expected jumps per year")
    mean: float = Field(0.0, ge=-5, le=5, description="mean log jump size")
    std: NonNegFloat = Field(0.0, le=5, description="std of log jump size")


class Gap(_Model):
    """An instantaneous price gap: price multiplied by (1 + size) at time ``at``."""

    type: Literal["gap"]
    at: Duration
    size: float = Field(gt=-1, le=10, description="fractional price change, e.g. -0.05")


class VolSpike(_Model):
    """Volatility multiplied by ``multiplier`` from ``start`` for ``duration``."""

    type: Literal["vol_spike"]
    start: Duration
    duration: Duration
    multiplier: float = Field(gt=0, le=1000)


class SellProgram(_Model):
    """An exogenous sell (or, with negative notional, buy) program.

    Executes ``notional`` from ``start`` either evenly over ``duration`` or at a
    ``participation`` rate of ``market.daily_volume``.
    """

    type: Literal["sell_program"]
    start: Duration
    notional: float = Field(description="total notional sold (negative: bought)")
    duration: Duration | None = None
    participation: Annotated[float, Field(gt=0, le=1)] | None = None
    venue: str | None = Field(None, description="venue the program trades on (default: the first venue)")

    @model_validator(mode="after")
    def _one_pace(self) -> SellProgram:
        if (self.duration is None) == (self.participation is None):
            raise ValueError("give exactly one of duration and participation")
        return self


Shock = Annotated[Gap | VolSpike | SellProgram, Field(discriminator="type")]


class Market(_Model):
    """Exogenous price: GBM with Merton jumps and scheduled shocks."""

    price: PositiveFloat = Field(100.0, description="initial price, quote currency")
    sigma: NonNegFloat = Field(0.5, le=50, description="volatility per year")
    drift: float = Field(0.0, ge=-100, le=100, description="drift per year")
    jumps: Jumps = Jumps()
    daily_volume: NonNegFloat = Field(0.0, description="background traded notional per day")
    shocks: tuple[Shock, ...] = ()
    currency: str = Field("USD", description="quote currency: a 3-letter uppercase ISO 4217 code; the units of "
                                             "every money variable of the results")

    @field_validator("currency", mode="before")
    @classmethod
    def _currency_code(cls, value: object) -> object:
        if not (isinstance(value, str) and len(value) == CURRENCY_CODE_LENGTH and value.isascii()
                and value.isalpha() and value.isupper()):
            raise ValueError(f"must be a 3-letter uppercase currency code such as \"USD\" or "
                             f"\"EUR\" (got {value!r})")
        return value


class Liquidity(_Model):
    """Order-book depth and price impact."""

    enabled: bool = True
    depth: PositiveFloat = Field(1e7, description="notional that moves price by 1 %")
    impact: Literal["linear", "sqrt"] = "linear"
    permanent_fraction: Fraction = 0.5
    recovery_half_life: Duration = 300.0
    depletion: NonNegFloat = Field(1.0, le=1e3, description="depth consumed per unit of traded notional")
    withdrawal: NonNegFloat = Field(0.0, le=100, description="elasticity of depth to volatility above market.sigma")
    vol_half_life: Duration = Field(600.0, description="half-life of the realised-volatility estimate")

    @model_validator(mode="after")
    def _positive_half_lives(self) -> Liquidity:
        for name in ("recovery_half_life", "vol_half_life"):
            if getattr(self, name) <= 0:
                raise ValueError(f"liquidity.{name} must be positive")
        return self


class Tier(_Model):
    """One tier of a maintenance-margin schedule: ``rate`` applies up to ``notional``."""

    notional: PositiveFloat
    rate: Annotated[float, Field(ge=0, lt=1)]


class Margin(_Model):
    """Tiered maintenance margin, used by cohorts with ``maintenance_margin = "tiered"``."""

    tiers: tuple[Tier, ...] = ()

    @model_validator(mode="after")
    def _increasing(self) -> Margin:
        bounds = [t.notional for t in self.tiers]
        if bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
            raise ValueError("margin.tiers must have strictly increasing notional bounds")
        return self


Side = Literal["long", "short"]
MaintenanceMargin = Annotated[float, Field(ge=0, lt=1)] | Literal["tiered"]


class Position(_Model):
    """A cohort of leveraged positions that share side, leverage and entry."""

    side: Side
    leverage: float = Field(gt=1, le=1000)
    notional: PositiveFloat = Field(description="position notional at entry, quote currency")
    maintenance_margin: MaintenanceMargin = 0.005
    entry_price: PositiveFloat | None = Field(None, description="default: market.price")
    accounts: int = Field(1, ge=1, description="accounts sharing the notional (tiers apply per account)")
    venue: str | None = Field(None, description="venue holding the cohort (default: the first venue)")


class PositionGrid(_Model):
    """Cohorts over a geometric grid of leverage, notional weighted by leverage**(-weight_exponent)."""

    side: Side
    notional: PositiveFloat = Field(description="total notional over the grid")
    leverage_min: float = Field(gt=1, le=1000)
    leverage_max: float = Field(gt=1, le=1000)
    cohorts: int = Field(8, ge=1, le=1024)
    weight_exponent: float = Field(0.0, ge=-5, le=5)
    maintenance_margin: MaintenanceMargin = 0.005
    accounts: int = Field(1, ge=1)
    venue: str | None = Field(None, description="venue holding the cohorts (default: the first venue)")

    @model_validator(mode="after")
    def _ordered(self) -> PositionGrid:
        if self.leverage_max < self.leverage_min:
            raise ValueError("leverage_max must be at least leverage_min")
        return self


class Liquidation(_Model):
    """The liquidation engine, insurance fund and auto-deleveraging."""

    penalty: Fraction = Field(0.01, description="liquidation fee as a fraction of filled notional")
    insurance_fund: NonNegFloat = 0.0
    max_order: PositiveFloat | None = Field(None, description="max liquidation notional executed per step")
    price_collar: Annotated[float, Field(gt=0, lt=1)] | None = Field(
        None, description="max price move per step caused by liquidation orders, a fraction"
    )
    adl: bool = True


class OptionPosition(_Model):
    """Options held by dealers, in units of the underlying."""

    type: Literal["call", "put"]
    strike: PositiveFloat
    expiry: Duration
    quantity: PositiveFloat = Field(description="units of the underlying")
    dealer_position: Literal["short", "long"] = "short"


class Dealers(_Model):
    """Option dealers who delta-hedge within each step."""

    enabled: bool = False
    book: Literal["constant_gamma", "options"] = "constant_gamma"
    gamma: float = Field(0.0, description="dollar-delta change per 1 % move; > 0: dealers short gamma")
    implied_vol: NonNegFloat | None = Field(None, le=50, description="per year; default market.sigma")
    options: tuple[OptionPosition, ...] = ()
    venue: str | None = Field(None, description="venue the dealers hedge on (default: the first venue)")

    @model_validator(mode="after")
    def _book(self) -> Dealers:
        if self.enabled and self.book == "options" and not self.options:
            raise ValueError("dealers.book = 'options' needs at least one entry in dealers.options")
        return self


FUNDING_PRESETS = {
    "8h": {"interval": 8 * 3600.0, "rate_interval": 8 * 3600.0, "interest": 0.0001 * 3 * 365, "clamp": 0.0005},
    "hourly": {"interval": 3600.0, "rate_interval": 8 * 3600.0, "interest": 0.0001 * 3 * 365, "clamp": 0.0005,
               "cap": 0.04},
}
"""Documented venue conventions. "8h": BitMEX/Binance style, paid every 8 h, interest 0.01 % per 8 h,
clamp 0.05 %. "hourly": dYdX/Hyperliquid style, one eighth of the 8-hour rate paid every hour, capped
at 4 % per hour. Keys given explicitly override the preset."""


class Funding(_Model):
    """Perpetual funding: F = P + clamp(I - P, -clamp, +clamp) per ``rate_interval``, paid every ``interval``.

    P is the premium (perp over index, minus 1) averaged over the interval; I is
    ``interest`` (per year) over one ``rate_interval``. Each payment is
    F x interval / rate_interval of the mark price per unit, clipped to +-``cap``
    (or +-``cap_maintenance`` x the lowest maintenance margin rate); positive F:
    longs pay shorts. Payments to or from positions not modelled (the rest of the
    open interest) balance the books: funding is zero-sum.
    """

    enabled: bool = False
    preset: Literal["8h", "hourly"] | None = Field(None, description="fill unset keys from a venue convention")
    interval: Duration = Field(8 * 3600.0, description="time between funding payments")
    rate_interval: Duration | None = Field(None, description="period the rate formula refers to (default interval)")
    interest: float = Field(0.0001 * 3 * 365, ge=-10, le=10, description="interest rate per year")
    clamp: NonNegFloat = Field(0.0005, le=1, description="clamp on I - P, fraction per rate_interval")
    cap: Annotated[float, Field(gt=0, le=1)] | None = Field(None, description="cap on each payment, fraction")
    cap_maintenance: PositiveFloat | None = Field(
        None, le=100, description="cap as a multiple of the lowest maintenance margin rate")

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data):
        if isinstance(data, dict) and data.get("preset") in FUNDING_PRESETS:
            return {**FUNDING_PRESETS[data["preset"]], **data}
        return data

    @model_validator(mode="after")
    def _positive_interval(self) -> Funding:
        if self.interval <= 0 or (self.rate_interval is not None and self.rate_interval <= 0):
            raise ValueError("funding.interval and funding.rate_interval must be positive")
        if self.cap is not None and self.cap_maintenance is not None:
            raise ValueError("give at most one of funding.cap and funding.cap_maintenance")
        return self


class Arbitrage(_Model):
    """Arbitrageurs with finite speed and capital pull each venue's price toward a reference.

    ``reference = "spot"``: basis arbitrage of a perpetual against the exogenous spot
    price (the fundamental). ``"venues"``: cross-venue arbitrage toward the
    depth-weighted mean of the venues' prices (zero net flow over venues).
    Each step a venue receives the flow that would close the share
    1 - exp(-ln 2 dt / half_life) of its gap, at most ``capacity`` x dt / 1 h.
    """

    enabled: bool = False
    reference: Literal["spot", "venues"] = "spot"
    half_life: Duration = Field(300.0, description="half-life of a price gap under unlimited capital")
    capacity: NonNegFloat = Field(1e9, description="arbitrage notional per hour and venue, quote currency")

    @model_validator(mode="after")
    def _positive(self) -> Arbitrage:
        if self.half_life <= 0:
            raise ValueError("arbitrage.half_life must be positive")
        return self


class BreakerLevel(_Model):
    """One breaker level: trading halts for ``halt`` when the price is ``drop`` below the reference."""

    drop: Annotated[float, Field(gt=0, lt=1)] = Field(description="fall from the reference, a fraction")
    halt: Duration = Field(description="halt length")


class Breakers(_Model):
    """Circuit breakers, price bands and dynamic thresholds.

    Levels: a halt fires at the end of the first step whose traded price is at or
    below ``reference x (1 - drop x scale)``, once per level, and lasts ``halt``.
    ``reference``: "start" (the session's first price), "peak" (running maximum:
    a drawdown breaker) or "rolling" (moving average of the log-price with
    half-life ``window``). ``scale`` = (realised vol / market.sigma) ** ``vol_scaling``
    (dynamic thresholds; 0 keeps them fixed). ``band``: orders that would move the price
    more than ``band`` from the previous step's price do not execute (the step trades up
    to the band edge) and trading pauses for ``band_pause``. During any halt nothing trades: liquidations, hedges and
    programs queue, the book recovers, the fundamental moves; on reopening the queue
    executes at once.
    """

    enabled: bool = False
    reference: Literal["start", "peak", "rolling"] = "start"
    window: Duration = Field(300.0, description="half-life of the rolling reference")
    levels: tuple[BreakerLevel, ...] = ()
    vol_scaling: float = Field(0.0, ge=0, le=5, description="exponent of the volatility scaling of drops")
    band: Annotated[float, Field(gt=0, lt=1)] | None = Field(None, description="max move per step, a fraction")
    band_pause: Duration = Field(5.0, description="pause when the band is hit")

    @model_validator(mode="after")
    def _ordered(self) -> Breakers:
        drops = [lv.drop for lv in self.levels]
        if drops != sorted(drops) or len(set(drops)) != len(drops):
            raise ValueError("breakers.levels must have strictly increasing drops")
        if self.window <= 0:
            raise ValueError("breakers.window must be positive")
        return self


class Haircuts(_Model):
    """Collateral haircuts: h = clip(max(raw, calm + buffer), floor, cap) with
    raw = base + vol_sensitivity x vol + depth_sensitivity x shortfall, vol the realised
    volatility per year, shortfall = 1 - available depth / configured depth, and calm the
    raw haircut at vol = market.sigma and a full book.

    Anti-procyclicality: ``floor``; a ``buffer`` held in calm that absorbs the first
    ``buffer`` of a rise (released in stress); ``max_change`` per hour. A haircut h
    values collateral at (1 - h) in every margin check.
    """

    enabled: bool = False
    base: Annotated[float, Field(ge=0, lt=1)] = 0.0
    vol_sensitivity: NonNegFloat = Field(0.0, le=10, description="haircut per unit of volatility per year")
    depth_sensitivity: NonNegFloat = Field(0.0, le=10, description="haircut per unit of depth shortfall")
    floor: Annotated[float, Field(ge=0, lt=1)] = 0.0
    cap: Annotated[float, Field(ge=0, lt=1)] = 0.9
    buffer: Annotated[float, Field(ge=0, lt=1)] = 0.0
    max_change: PositiveFloat | None = Field(None, description="max haircut change per hour")

    @model_validator(mode="after")
    def _bounds(self) -> Haircuts:
        if self.floor > self.cap:
            raise ValueError("haircuts.floor must not exceed haircuts.cap")
        return self


class Collateral(_Model):
    """Part of each cohort's collateral held in an asset (e.g. a stablecoin) with its own order book.

    ``pricing = "internal"``: margin values it at its price on the venue's own book;
    ``"external"``: at an external index that holds the peg. Liquidations sell the
    seized collateral into that book; an exogenous dump (``sell``) can trigger a depeg.
    """

    enabled: bool = False
    share: Fraction = Field(0.0, description="fraction of collateral held in the asset")
    pricing: Literal["internal", "external"] = "internal"
    depth: PositiveFloat = Field(1e8, description="1 % depth of the asset's book, quote currency")
    recovery_half_life: Duration = 600.0
    sell: NonNegFloat = Field(0.0, description="exogenous sale of the asset, quote currency")
    sell_start: Duration = 0.0
    sell_duration: Duration = 60.0
    venue: str | None = Field(None, description="venue whose book the exogenous sale hits (default: the first)")

    @model_validator(mode="after")
    def _positive(self) -> Collateral:
        if self.recovery_half_life <= 0 or self.sell_duration <= 0:
            raise ValueError("collateral.recovery_half_life and collateral.sell_duration must be positive")
        return self


class Oracle(_Model):
    """Mark price for margin: the venue's "last" traded price, the "index" (median of the
    venues' prices and spot), or "spot" (the exogenous fundamental); optionally smoothed
    by an exponential moving average with half-life ``smoothing`` (0: none)."""

    mark: Literal["last", "index", "spot"] = "last"
    smoothing: Duration = 0.0


class Venue(_Model):
    """A trading venue with its own book, positions and insurance fund."""

    name: str = Field(min_length=1, max_length=64)
    depth: PositiveFloat | None = Field(None, description="1 % depth (default liquidity.depth)")
    insurance_fund: NonNegFloat | None = Field(None, description="default liquidation.insurance_fund")


class Defensive(_Model):
    """A population of algorithmic traders with one risk control.

    stop_loss: flatten when the price is ``threshold`` below the start.
    drawdown: flatten when the price is ``threshold`` below its running peak.
    vol_target: cut the position to notional x threshold / vol when realised vol (per year) exceeds ``threshold``.
    var_limit: keep units x price x z(confidence) x vol x sqrt(horizon) <= ``threshold`` (quote currency).
    kill_switch: market makers holding ``share`` of the depth cancel their quotes while realised
    vol exceeds ``threshold`` (per year).
    """

    kind: Literal["stop_loss", "drawdown", "vol_target", "var_limit", "kill_switch"]
    side: Side = "long"
    notional: NonNegFloat = Field(0.0, description="position at the start, quote currency")
    threshold: PositiveFloat
    share: Fraction = Field(0.0, description="kill_switch: share of depth withdrawn")
    confidence: Annotated[float, Field(gt=0.5, lt=1)] = 0.99
    horizon: Duration = 86400.0
    venue: str | None = None

    @model_validator(mode="after")
    def _fits(self) -> Defensive:
        if self.kind in ("stop_loss", "drawdown") and self.threshold >= 1:
            raise ValueError(f"{self.kind} threshold is a fraction of the price; allowed: 0 < threshold < 1")
        if self.kind == "kill_switch" and self.notional:
            raise ValueError("kill_switch withdraws depth (give share), it holds no notional")
        return self


class Momentum(_Model):
    """Trend followers: after the price fell by more than ``threshold`` within ``window`` they go short
    ``capital`` (notional, quote currency), after such a rise long; they trade at most ``speed`` notional
    per hour (default: at once) on ``venue``."""

    enabled: bool = False
    capital: NonNegFloat = Field(0.0, description="notional of the position taken on a signal, quote currency")
    threshold: Annotated[float, Field(gt=0, lt=1)] = Field(0.02, description="return over the window, a fraction")
    window: Duration = Field(600.0, description="look-back of the return")
    speed: PositiveFloat | None = Field(None, description="max notional traded per hour (default: at once)")
    venue: str | None = Field(None, description="venue they trade on (default: the first venue)")


class DipBuyers(_Model):
    """Dip buyers: once the traded price stands more than ``threshold`` below its running peak they buy
    ``capital`` (notional, quote currency) in all, at most ``speed`` notional per hour (default: at once),
    on ``venue``, and hold it."""

    enabled: bool = False
    capital: NonNegFloat = Field(0.0, description="notional they buy in all, quote currency")
    threshold: Annotated[float, Field(gt=0, lt=1)] = Field(0.05, description="drawdown from the peak, a fraction")
    speed: PositiveFloat | None = Field(None, description="max notional bought per hour (default: at once)")
    venue: str | None = Field(None, description="venue they buy on (default: the first venue)")


class NoiseTraders(_Model):
    """Noise traders: on every venue, every step, a market order of random sign and size, normal with standard
    deviation ``size`` (notional, quote currency) for a 1-minute step (scaled by the square root of the step
    for others), times the volatility spikes live in the step when ``follow_spikes``."""

    enabled: bool = False
    size: NonNegFloat = Field(0.0, description="standard deviation of one minute's order per venue, quote currency")
    follow_spikes: bool = Field(True, description="their size is multiplied by the volatility spikes in force")


TUNABLE = ("haircuts.base", "haircuts.vol_sensitivity", "haircuts.depth_sensitivity", "haircuts.buffer",
           "liquidation.max_order", "breakers.levels.<i>.drop", "breakers.levels.<i>.halt")
"""Config paths that ``stresslab calibrate`` can tune (``<i>``: a breaker level's index)."""


class TunedParameter(_Model):
    """A control to tune, by its config path, between ``lower`` and ``upper``; it starts at the config's value."""

    name: str
    lower: float
    upper: float

    @model_validator(mode="after")
    def _known(self) -> TunedParameter:
        parts = self.name.split(".")
        known = self.name in TUNABLE or (
            len(parts) == 4 and parts[:2] == ["breakers", "levels"] and parts[2].isdigit()
            and parts[3] in ("drop", "halt"))
        if not known:
            raise ValueError(f"cannot tune {self.name!r}; allowed: {', '.join(TUNABLE)}")
        if not self.lower < self.upper:
            raise ValueError(f"{self.name}: lower must be below upper")
        return self


class Calibration(_Model):
    """Gradient-based tuning of market controls (see README "Calibration").

    Objective: ``measure`` (es, var, mean, or prob = P(target > threshold)) of ``target``
    over paths, plus ``halt_cost`` per hour of mean halted time plus ``haircut_cost`` per
    unit of mean time-averaged haircut (objective units; for target = bad_debt, quote
    currency). Hard rules are relaxed with a temperature falling geometrically from
    ``temperature_start`` to ``temperature_end`` (fraction of notional for margin triggers,
    log-price for breaker levels).
    """

    parameters: Annotated[tuple[TunedParameter, ...], Field(min_length=1, max_length=16)]
    target: Literal["cascade_depth", "bad_debt"] = "cascade_depth"
    measure: Literal["es", "var", "mean", "prob"] = "es"
    level: Annotated[float, Field(gt=0, lt=1)] = 0.99
    threshold: float | None = Field(None, description="for measure = prob: the target level exceeded")
    halt_cost: NonNegFloat = Field(0.0, description="objective units per hour of mean halted time")
    haircut_cost: NonNegFloat = Field(0.0, description="objective units per unit of mean haircut")
    aggregate: Literal["mean", "max"] | None = Field(
        None, description="for a sweep: one policy for all its scenarios, by their mean or worst (max) objective")
    method: Literal["cmaes+gradient", "cmaes", "gradient"] = Field(
        "cmaes+gradient", description="global CMA-ES on the hard rules, gradient refinement, or both")
    generations: int = Field(12, ge=1, le=10_000, description="CMA-ES generations (global phase)")
    population: int | None = Field(None, ge=2, le=10_000,
                                   description="CMA-ES candidates per generation (default 4 + 3 ln(controls))")
    sigma: Annotated[float, Field(gt=0, le=1)] = Field(
        0.3, description="CMA-ES initial step, a share of each control's range")
    optimizer: Literal["adam", "sgd", "rmsprop", "adabelief"] = "adam"
    learning_rate: PositiveFloat = 0.05
    iterations: int = Field(30, ge=1, le=10_000)
    paths: int = Field(2000, ge=16, le=10**7, description="training paths per iteration (common random numbers)")
    holdout_paths: int = Field(20_000, ge=16, le=10**8, description="fresh paths for the hard-rule evaluation")
    temperature_start: PositiveFloat = 0.01
    temperature_end: PositiveFloat = 0.001
    relaxation: Literal["sigmoid", "ramp"] = Field(
        "sigmoid", description="shape of the relaxed liquidation trigger: a sigmoid of the margin shortfall, or a "
                               "one-sided ramp that leaves cohorts above maintenance untouched (docs/calibration.md)")

    @model_validator(mode="after")
    def _threshold(self) -> Calibration:
        if self.measure == "prob" and self.threshold is None:
            raise ValueError("calibration.measure = 'prob' needs calibration.threshold")
        if len({p.name for p in self.parameters}) != len(self.parameters):
            raise ValueError("calibration.parameters: each name at most once")
        return self


FIT_FACTS = ("drawdown_from_start", "peak_to_trough_time", "trough_time", "retrace_1h", "retrace_end", "end_return",
             "largest_fall_1min", "largest_fall_5min")
"""The facts ``stresslab fit`` matches by default: the shape of a crash day (see ``stresslab.metrics.facts``)."""


class FittedParameter(_Model):
    """A scenario field to fit, by its config path (``market.shocks.0.size``, ``liquidity.depth``), between
    ``lower`` and ``upper`` (durations with units or seconds, as the field takes them)."""

    name: str = Field(pattern=r"^[a-z_]+(\.([a-z_]+|[0-9]+))+$")
    lower: float | Duration
    upper: float | Duration

    @model_validator(mode="after")
    def _bounds(self) -> FittedParameter:
        if not self.lower < self.upper:
            raise ValueError(f"{self.name}: lower must be below upper")
        if self.name.split(".")[0] in ("simulation", "fit", "calibration"):
            raise ValueError(f"{self.name}: only scenario fields can be fitted (not simulation, fit or calibration)")
        return self


class Fit(_Model):
    """``stresslab fit``: scenario fields fitted to real minute prices by the method of simulated moments.

    The distance is the mean over ``facts`` of ``((real - simulated median) / tolerance)^2``, with each fact's
    ``tolerance`` from ``stresslab.metrics.facts.FACTS``; CMA-ES minimises it over the parameters' boxes on
    ``paths`` paths with common random numbers. It matches medians, not band widths: pin the noise with
    ``realized_vol`` and ``max_hourly_vol`` among the facts.
    """

    data: str = Field(description="a shipped day (2020-03-12, 2021-05-19, 2025-10-10) or a CSV of 1-minute bars")
    parameters: Annotated[tuple[FittedParameter, ...], Field(min_length=1, max_length=32)]
    facts: Annotated[tuple[str, ...], Field(min_length=1)] = FIT_FACTS
    paths: int = Field(200, ge=16, le=10_000, description="paths per candidate (common random numbers)")
    generations: int = Field(20, ge=1, le=10_000, description="CMA-ES generations")
    population: int | None = Field(None, ge=2, le=10_000,
                                   description="candidates per generation (default 4 + 3 ln(parameters))")
    sigma: Annotated[float, Field(gt=0, le=1)] = Field(0.3, description="initial step, a share of each range")

    @model_validator(mode="after")
    def _unique(self) -> Fit:
        names = [p.name for p in self.parameters]
        if len(set(names)) != len(names):
            raise ValueError("fit.parameters: each name at most once")
        from stresslab.metrics.facts import FACTS

        known = [fact.name for fact in FACTS]
        unknown = [name for name in self.facts if name not in known]
        if unknown:
            raise ValueError(f"fit.facts: unknown {unknown}; allowed: {', '.join(known)}")
        return self


class Config(_Model):
    """A complete, validated stress scenario (one point of a sweep)."""

    simulation: Simulation = Simulation(horizon=86400.0)
    market: Market = Market()
    liquidity: Liquidity = Liquidity()
    margin: Margin = Margin()
    positions: tuple[Position, ...] = ()
    position_grids: tuple[PositionGrid, ...] = ()
    liquidation: Liquidation = Liquidation()
    dealers: Dealers = Dealers()
    funding: Funding = Funding()
    arbitrage: Arbitrage = Arbitrage()
    breakers: Breakers = Breakers()
    haircuts: Haircuts = Haircuts()
    collateral: Collateral = Collateral()
    oracle: Oracle = Oracle()
    venues: tuple[Venue, ...] = ()
    defensive: tuple[Defensive, ...] = ()
    momentum: Momentum = Momentum()
    dip_buyers: DipBuyers = DipBuyers()
    noise_traders: NoiseTraders = NoiseTraders()
    calibration: Calibration | None = None
    fit: Fit | None = None

    @property
    def venue_names(self) -> list[str]:
        """Names of the venues; one unnamed venue when none is configured."""
        return [v.name for v in self.venues] or ["main"]

    @property
    def cohorts(self) -> list[Position]:
        """Explicit positions plus the cohorts expanded from ``position_grids`` (leverages spaced
        geometrically, notional weighted by leverage ** -weight_exponent)."""
        out = list(self.positions)
        for grid in self.position_grids:
            lev = np.geomspace(grid.leverage_min, grid.leverage_max, grid.cohorts)
            weights = lev ** (-grid.weight_exponent)
            weights = weights / weights.sum()
            out.extend(Position(side=grid.side, leverage=float(lv), notional=float(grid.notional * w),
                                maintenance_margin=grid.maintenance_margin, accounts=grid.accounts, venue=grid.venue)
                       for lv, w in zip(lev, weights, strict=True))
        return out

    @model_validator(mode="after")
    def _cross_checks(self) -> Config:
        for path, value in _numbers(self.model_dump()):
            if abs(value) > MAX_MAGNITUDE:
                raise ValueError(f"{path}: {value:g} is too large; allowed magnitude up to {MAX_MAGNITUDE:g}")
        horizon = self.simulation.n_steps * self.simulation.dt
        for i, shock in enumerate(self.market.shocks):
            field, start = ("at", shock.at) if shock.type == "gap" else ("start", shock.start)
            if start >= horizon:
                raise ValueError(f"market.shocks.{i}.{field}: {format_duration(start)} is at or after the end of "
                                 f"the run (simulation.horizon {format_duration(horizon)})")
        uses_tiers = any(p.maintenance_margin == "tiered" for p in (*self.positions, *self.position_grids))
        if uses_tiers and not self.margin.tiers:
            raise ValueError("a cohort has maintenance_margin = 'tiered' but margin.tiers is empty")
        for i, p in enumerate(self.positions):
            entry = p.entry_price or self.market.price
            if p.side == "long" and entry * (1 - 1 / p.leverage) <= 0:
                raise ValueError(f"positions.{i}: leverage must exceed 1")
        d = self.dealers
        if d.enabled and d.book == "constant_gamma" and self.liquidity.enabled and self.liquidity.impact == "linear":
            phi = d.gamma / self.liquidity.depth
            if phi >= 1:
                raise ValueError(
                    f"dealers.gamma / liquidity.depth = {phi:.3g} >= 1: hedging feedback has no stable "
                    "solution (phi must be < 1); lower dealers.gamma or raise liquidity.depth"
                )
        self._check_venues()
        return self

    def _check_venues(self) -> None:
        names = [v.name for v in self.venues]
        if len(set(names)) != len(names):
            raise ValueError("venues: names must be unique")
        known = set(self.venue_names)
        users = [("positions", self.positions), ("position_grids", self.position_grids),
                 ("market.shocks", self.market.shocks), ("defensive", self.defensive)]
        for section, items in users:
            for i, item in enumerate(items):
                venue = getattr(item, "venue", None)
                if venue is not None and venue not in known:
                    raise ValueError(f"{section}.{i}.venue: unknown venue {venue!r}; allowed: {sorted(known)}")
        if self.collateral.venue is not None and self.collateral.venue not in known:
            raise ValueError(f"collateral.venue: unknown venue {self.collateral.venue!r}; allowed: {sorted(known)}")
        for section in ("momentum", "dip_buyers"):
            venue = getattr(self, section).venue
            if venue is not None and venue not in known:
                raise ValueError(f"{section}.venue: unknown venue {venue!r}; allowed: {sorted(known)}")
        if self.dealers.venue is not None and self.dealers.venue not in known:
            raise ValueError(f"dealers.venue: unknown venue {self.dealers.venue!r}; allowed: {sorted(known)}")
        if self.arbitrage.enabled and self.arbitrage.reference == "venues" and len(self.venue_names) < 2:
            raise ValueError("arbitrage.reference = 'venues' needs at least two entries in venues")


def _numbers(tree: object, prefix: str = ""):
    """(dotted path, value) of every number in a dumped config."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _numbers(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(tree, list | tuple):
        for i, value in enumerate(tree):
            yield from _numbers(value, f"{prefix}.{i}")
    elif isinstance(tree, int | float) and not isinstance(tree, bool):
        yield prefix, tree
