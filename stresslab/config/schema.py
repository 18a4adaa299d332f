"""The configuration schema: frozen, validated, typed; nothing in it is traced.

Units (see README "Units"): durations are strings with units or seconds; rates
(volatility, drift, jump intensity) are per year; money is notional in quote
currency; ``liquidity.depth`` is the notional that moves price by 1 %.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from stresslab.config.units import Duration

MAX_MAGNITUDE = 1e15
"""Largest absolute number a config may hold: beyond it float32 arithmetic (price x units) loses all meaning."""

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

    @model_validator(mode="after")
    def _time_grid(self) -> Simulation:
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

    @model_validator(mode="after")
    def _book(self) -> Dealers:
        if self.enabled and self.book == "options" and not self.options:
            raise ValueError("dealers.book = 'options' needs at least one entry in dealers.options")
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

    @model_validator(mode="after")
    def _cross_checks(self) -> Config:
        for path, value in _numbers(self.model_dump()):
            if abs(value) > MAX_MAGNITUDE:
                raise ValueError(f"{path}: {value:g} is too large; allowed magnitude up to {MAX_MAGNITUDE:g}")
        horizon = self.simulation.n_steps * self.simulation.dt
        for i, shock in enumerate(self.market.shocks):
            start = shock.at if shock.type == "gap" else shock.start
            if start >= horizon:
                raise ValueError(f"market.shocks.{i}: starts at {start:g}s, at or after the end of the run "
                                 f"({horizon:g}s)")
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
        return self


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
