"""The reference scenario as plain NumPy arrays, shared by the NumPy and Numba reference implementations.

The references read their parameters from stresslab's own config pipeline
(``load_config`` then ``market.model.build``), so all three implementations see the
same numbers; what they port is the kernel (``stresslab/market/step.py`` and the
mechanism modules it composes, whose ``OUTPUTS`` give the per-path outputs).

Supported subset of the model (what ``benchmarks/reference.toml`` switches on): one
venue; exogenous price with jumps, gaps, volatility spikes and sell programs; a book
with linear or square-root impact, depletion and withdrawal; any number of cohorts
with flat or tiered margin; the liquidation engine (order cap, collar), insurance
fund and ADL; dealers with an options or constant-gamma book; funding; basis
arbitrage against spot; breaker levels (any reference) and a price band; haircuts;
the mark is the venue's last price. Not supported (refused by :func:`load`): several
venues, a collateral asset, defensive traders and kill switches, an index/spot or
smoothed mark, ``liquidity.enabled = false``, and the smooth (calibration) relaxation.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np

from stresslab.config.loading import load_config
from stresslab.config.schema import Config
from stresslab.engine.runner import precision
from stresslab.market.model import OUTPUTS as REGISTRY
from stresslab.market.model import Static, build

REFERENCE = Path(__file__).with_name("reference.toml")
"""The shipped reference scenario."""

NOT_PORTED = ("min_collateral_price", "collateral_pnl", "defensive_sold", "momentum_traded", "dip_bought")
"""Outputs of mechanisms the references do not port (:func:`load` refuses configs that switch them on)."""
OUTPUTS = tuple(o.name for o in REGISTRY if not o.per_venue and o.name not in NOT_PORTED)
"""Per-path outputs the references compute, with stresslab's names and order (``market/model.OUTPUTS``)."""


class Unsupported(ValueError):
    """The config switches on a mechanism the reference implementations do not port."""


@dataclass(frozen=True)
class Scenario:
    """Kernel inputs of one scenario, NumPy arrays of ``dtype`` (scalars as 0-d arrays).

    Shapes: C cohorts, K margin tiers, O options, P sell programs, L breaker levels,
    T steps. Per-step schedules (``sigma_t``, ``gap_t``) replace stresslab's
    start/end arrays of spikes and gaps (the same numbers, looked up once).
    """

    dtype: np.dtype
    n_steps: int
    dt_years: float
    dt_seconds: float
    impact_sqrt: bool
    cascade_rounds: int
    max_jumps: int
    dealer_book: str | None
    adl: bool
    funding_every: int
    arbitrage: bool
    breakers: bool
    breaker_reference: str
    band: bool
    haircuts: bool
    # exogenous price
    s0: float
    drift: float
    sigma_t: np.ndarray  # (T,) per year, spikes applied
    gap_t: np.ndarray  # (T,) log gap in each step
    jump_mean: float
    jump_std: float
    jump_cdf: np.ndarray  # (max_jumps,) P(N <= k)
    # book
    depth: float
    permanent: float
    decay: float
    depletion: float
    withdrawal: float
    vol_ref: float
    vol_decay: float
    # sell programs (P,)
    sell_start: np.ndarray
    sell_per_step: np.ndarray
    sell_total: np.ndarray
    sell_sign: np.ndarray
    # cohorts (C,), tiers (C, K)
    side: np.ndarray
    units0: np.ndarray
    entry: np.ndarray
    margin_per_unit: np.ndarray
    tier_lower: np.ndarray
    tier_width: np.ndarray
    tier_rate: np.ndarray
    accounts: np.ndarray
    # liquidation
    penalty: float
    fund0: float
    max_order: float
    collar: float
    # dealers
    gamma: float
    strike: np.ndarray  # (O,)
    expiry: np.ndarray  # (O,) years
    quantity: np.ndarray  # (O,) signed units held by dealers
    is_call: np.ndarray  # (O,) bool
    implied_vol: float
    # funding
    interest: float
    clamp: float
    cap: float
    funding_scale: float
    # arbitrage
    arb_pull: float
    arb_cap: float
    # breakers (L,)
    drop: np.ndarray
    halt_steps: np.ndarray
    vol_scaling: float
    breaker_vol_ref: float
    band_width: float
    band_steps: int
    ref_decay: float
    # haircuts
    hc_base: float
    hc_vol: float
    hc_depth: float
    hc_floor: float
    hc_cap: float
    hc_buffer: float
    hc_max_step: float

    @property
    def n_cohorts(self) -> int:
        return int(self.side.shape[0])

    @property
    def n_draws(self) -> int:
        """Uniforms stresslab draws per path and step (1, or 3 with jumps)."""
        return 3 if self.max_jumps else 1


def config(path: str | Path = REFERENCE, overrides: list[str] | tuple[str, ...] = (),
           steps: int | None = None) -> Config:
    """The validated config of ``path`` with ``overrides`` (``"a.b=value"``); ``steps`` replaces the horizon."""
    raw: dict[str, Any] = tomllib.loads(Path(path).read_text())
    if steps is not None:
        raw["simulation"].pop("horizon", None)
        raw["simulation"]["steps"] = steps
    scenarios = load_config(raw, list(overrides)).scenarios
    if len(scenarios) != 1:
        raise Unsupported("the references run one scenario; remove the sweep")
    return scenarios[0]


def _check(static: Static) -> None:
    refused = {
        "several venues": static.grid.n_venues != 1,
        "a collateral asset": static.collateral.pricing is not None,
        "defensive traders or kill switches": static.defensive.n_defensive > 0 or static.defensive.n_kill > 0,
        "trend followers": static.momentum.enabled,
        "dip buyers": static.dip_buyers.enabled,
        "an index, spot or smoothed mark": static.oracle.mark != "last" or static.oracle.smoothing,
        "liquidity.enabled = false": not static.book.enabled,
        "cross-venue arbitrage": static.arbitrage.reference not in (None, "spot"),
        "smooth (calibration) mode": static.rules.smooth,
    }
    bad = [name for name, on in refused.items() if on]
    if bad:
        raise Unsupported(f"the reference implementations do not port {', '.join(bad)}")


def from_config(cfg: Config, dtype: str | None = None) -> Scenario:
    """Build the scenario's arrays through stresslab's ``build``, then convert them to NumPy ``dtype``
    (default: the config's ``simulation.dtype``)."""
    dtype = np.dtype(dtype or cfg.simulation.dtype)
    with precision(cfg.simulation.dtype):
        params, static = build(cfg)
        params = jax.tree_util.tree_map(np.asarray, params)
    _check(static)

    def a(x) -> np.ndarray:
        return np.asarray(x, dtype=dtype)

    def s(x) -> float:
        return float(np.asarray(x).reshape(()))

    pp, lq, cp = params.price, params.book, params.positions.cohorts
    grid = static.grid
    steps = np.arange(grid.n_steps)
    sigma_t = np.full(grid.n_steps, float(pp.sigma))
    for start, end, mult in zip(pp.spike_start, pp.spike_end, pp.spike_mult, strict=True):
        sigma_t = np.where((steps >= start) & (steps < end), sigma_t * float(mult), sigma_t)
    gap_t = np.zeros(grid.n_steps)
    for step, size in zip(pp.gap_step, pp.gap_log, strict=True):
        gap_t[steps == step] += float(size)
    jump_cdf = np.zeros(0)
    max_jumps = static.price.max_jumps
    if max_jumps:
        rate = float(pp.jump_intensity) * grid.dt_years
        k = np.arange(1, max_jumps, dtype=np.float64)
        jump_cdf = np.cumsum(math.exp(-rate) * np.cumprod(np.concatenate([[1.0], rate / k])))
    upper = cp.tier_upper[0]
    lower = np.concatenate([np.zeros_like(upper[:, :1]), upper[:, :-1]], -1)
    dp, fp, bp, hp = params.dealers, params.funding, params.breakers, params.haircuts
    lp = params.positions.liquidation
    return Scenario(
        dtype=dtype, n_steps=grid.n_steps, dt_years=grid.dt_years, dt_seconds=grid.dt_seconds,
        impact_sqrt=static.book.impact == "sqrt", cascade_rounds=grid.cascade_rounds, max_jumps=max_jumps,
        dealer_book=static.dealers.book, adl=static.positions.adl, funding_every=static.funding.every,
        arbitrage=static.arbitrage.reference == "spot", breakers=static.breakers.enabled,
        breaker_reference=static.breakers.reference, band=static.breakers.band, haircuts=static.haircuts.enabled,
        s0=s(pp.s0), drift=s(pp.drift), sigma_t=a(sigma_t), gap_t=a(gap_t), jump_mean=s(pp.jump_mean),
        jump_std=s(pp.jump_std), jump_cdf=a(jump_cdf),
        depth=s(lq.depth), permanent=s(lq.permanent), decay=s(lq.decay), depletion=s(lq.depletion),
        withdrawal=s(lq.withdrawal), vol_ref=s(lq.vol_ref), vol_decay=s(lq.vol_decay),
        sell_start=np.asarray(params.programs.start, np.int64), sell_per_step=a(params.programs.per_step),
        sell_total=a(params.programs.total), sell_sign=a(params.programs.sign),
        side=a(cp.side[0]), units0=a(cp.units0[0]), entry=a(cp.entry[0]), margin_per_unit=a(cp.margin_per_unit[0]),
        tier_lower=a(lower), tier_width=a(upper - lower), tier_rate=a(cp.tier_rate[0]), accounts=a(cp.accounts[0]),
        penalty=s(lp.penalty), fund0=s(lp.fund0), max_order=s(lp.max_order), collar=s(lp.collar),
        gamma=s(dp.gamma), strike=a(dp.strike), expiry=a(dp.expiry), quantity=a(dp.quantity.reshape(-1)),
        is_call=np.asarray(dp.is_call, bool), implied_vol=s(dp.implied_vol),
        interest=s(fp.interest), clamp=s(fp.clamp), cap=s(fp.cap), funding_scale=s(fp.scale),
        arb_pull=s(params.arbitrage.pull), arb_cap=s(params.arbitrage.cap),
        drop=a(bp.drop), halt_steps=np.round(bp.halt_steps).astype(np.int64), vol_scaling=s(bp.vol_scaling),
        breaker_vol_ref=s(bp.vol_ref), band_width=s(bp.band), band_steps=int(bp.band_steps),
        ref_decay=s(bp.ref_decay),
        hc_base=s(hp.base), hc_vol=s(hp.vol_sensitivity), hc_depth=s(hp.depth_sensitivity), hc_floor=s(hp.floor),
        hc_cap=s(hp.cap), hc_buffer=s(hp.buffer), hc_max_step=s(hp.max_step),
    )


def load(path: str | Path = REFERENCE, overrides: list[str] | tuple[str, ...] = (), steps: int | None = None,
         dtype: str | None = None) -> Scenario:
    """:func:`config` then :func:`from_config`."""
    return from_config(config(path, overrides, steps), dtype)


@dataclass(frozen=True)
class Draws:
    """Given random inputs per step and path (T, N) each: the diffusion normal, the jump-count
    uniform and the jump-size normal (the last two unused without jumps)."""

    z: np.ndarray
    u_jump: np.ndarray
    z_jump: np.ndarray


def stresslab_draws(sc: Scenario, seed: int, n: int, first_index: int = 0) -> Draws:
    """The draws stresslab's kernel makes for paths ``first_index ..`` (``engine/keys.py``), as
    normals: ``ndtri`` of its uniforms (what ``market/price.py`` does with them)."""
    import jax.numpy as jnp
    from scipy.special import ndtri

    from stresslab.engine.keys import path_keys, step_uniforms

    name = sc.dtype.name
    with precision(name):
        keys = path_keys(jax.random.key(seed), jnp.uint32(first_index), n)
        steps = jnp.arange(sc.n_steps, dtype=jnp.int32)
        u = np.asarray(jax.jit(jax.vmap(lambda t: step_uniforms(keys, t, sc.n_draws, jnp.dtype(name))))(steps))
    z = ndtri(u[..., 0]).astype(sc.dtype)
    if sc.n_draws == 1:
        return Draws(z, np.zeros_like(z), np.zeros_like(z))
    return Draws(z, u[..., 1].astype(sc.dtype), ndtri(u[..., 2]).astype(sc.dtype))
