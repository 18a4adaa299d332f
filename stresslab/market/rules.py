"""Every discontinuous decision of the kernel, in one object chosen outside jit.

``Hard`` holds the exchange rules as they are (runs, reports, held-out evaluation);
``Smooth`` relaxes them for gradient-based calibration with width ``temperature``
(``params.rules.temperature``). ``static.rules`` is one of the two; the step
function calls its methods and never asks which one it has.

Decisions, and what ``Smooth`` does with each (method by method below):

============================  =====================================================
decision                      smooth relaxation (temperature T)
============================  =====================================================
trading share (halts)         real share 1 - clip(halt left, 0, 1) of the step
open (who trades this step)   share > 1/2; it only gates ADL, defensive traders'
                              risk targets and stops, and problem flags. The
                              opening mark and the liquidation weights carried to
                              the next step blend by the traded share (``keep``)
gate / keep (halted venues)   blend by the traded share
liquidation trigger           sigmoid, or the one-sided ramp (``Smooth.trigger``,
                              ``calibration.relaxation``), of the margin shortfall per
                              notional / T (hard: the mark against each cohort's trigger
                              price, computed once per step, ``triggers``)
cascade round stopping        stop when no weight rose by > SMOOTH_ROUND_ULPS eps
breaker levels, halt length   sigmoid of (threshold - price) / T; real countdown
price band                    not relaxed: the band is off
ADL decision (``adl_queue``)  the liquidation weight itself (hard: weight >= 1/2)
ADL bankrupt (``bankrupt``)   ramp of -equity / notional / T (hard: equity at the mark <= 0)
fund short (``fund_short``)   ramp of (deficit - fund) / (T x bankrupt notional) (hard:
                              fund <= the bankrupt cohorts' deficit); ADL closes the
                              product of the weights, the rest stays in the queue
ADL ranking                   not relaxed (a soft ranking changed no measured derivative)
defensive stops (``stops``)   not relaxed
kill switches                 not relaxed
momentum signal               sigmoid of (|window return| - threshold) / T
dip buyers' signal            sigmoid of (log drawdown - log(1 - threshold)) / T
Newton stopping               not relaxed for the value (``newton_done``: iterations
                              stop at the tolerance, or when two Newton steps show
                              quadratic convergence, ``quadratic_done``); the
                              derivative does not pass through the iterations but
                              through the implicit function theorem at the root
                              (``solution``)
square-root impact at 0 flow  softened by SMOOTH_ROOT_FLOOR (``root_floor``)
============================  =====================================================

What is measured (``benchmarks/gradient_check.py``, docs/calibration.md): with these relaxations
``jax.grad`` agrees with central differences where the relaxed objective is smooth, which needs a
temperature at which the relaxed cascade does not fold (breakers_equity.toml: T = 0.005, not 0.01 or < 0.004;
the haircut problems come closest with the ramp at T = 5e-4, and still miss at 2000 paths). Where the relaxed
cascade folds on some path (it has two fixed points, or its rounds do not settle, and the path's outcome
jumps) the differences and ``jax.grad`` part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from stresslab.market import breakers, defensive, positions, safe
from stresslab.market.ramp import ramp

DEFAULT_TEMPERATURE = 1e-3
"""Width of the smooth relaxations when none is given."""
SMOOTH_ROUND_ULPS = 100.0
"""With smooth triggers, cascade rounds stop when no cohort's liquidation weight rises by more than this
many machine epsilons (an early stop leaves a jump of that size in the relaxed objective)."""


SMOOTH_ROOT_FLOOR = 1e-8
"""With smooth rules the square-root impact law is softened at zero flow (share of depth): relaxed triggers
leave tiny flows everywhere, where the root's infinite derivative would blow up tangents. The price moves by
at most 0.01 x sqrt(1e-8) = 1e-6 in log-price less than with the root."""
MIN_IMPLICIT_SLOPE = 0.05
"""Below this slope F_y of the clearing equation (Newton's own fallback threshold, ``clearing.MIN_SLOPE``) the
implicit derivative 1 / F_y is not used: the root is at a fold and jumps rather than moves."""


class RulesParams(NamedTuple):
    """temperature: width of the smooth relaxations (a fraction of notional for margin triggers,
    log-price for breaker levels, momentum and dip buyers' signals); unused by the hard rules."""

    temperature: jnp.ndarray


def build(config, grid) -> tuple[RulesParams, None]:
    return RulesParams(temperature=grid.arr(DEFAULT_TEMPERATURE)), None


def quadratic_done(move: jnp.ndarray, last_move: jnp.ndarray, limit: jnp.ndarray) -> jnp.ndarray:
    """Whether two Newton steps in a row, of sizes ``last_move`` then ``move``, show that the next would move
    the log-price by at most ``limit``: in quadratic convergence the next step is about move^3 / last_move^2
    (the contraction constant move / last_move^2 estimated from these two). The step must have more than
    halved, so that an early, not yet quadratic, phase does not stop the iteration; the first step
    (``last_move`` infinite) never stops it."""
    seen = last_move < jnp.inf
    last = jnp.where(seen, last_move, 0.0)  # no inf x 0 = NaN in the product when the limit is 0
    return seen & (move < 0.5 * last) & (move * move * move <= limit * last * last)


@dataclass(frozen=True)
class Hard:
    """The exchange rules: every decision is a bool."""

    smooth: ClassVar[bool] = False
    root_floor: ClassVar[float] = 0.0
    """Softening of the square-root impact law at zero flow (``liquidity.impact``); none for the hard rules."""
    model_book: ClassVar[bool] = True
    """Whether the clearing may take its short path on the options book's cubic model (``clearing.clear``):
    the hard rules do; the smooth rules iterate on the exact book, whose derivatives calibration checks."""

    def trading(self, s: breakers.BreakerState) -> jnp.ndarray:
        """Whether each venue trades this step (N, V) bool: no halt left."""
        return s.left <= 0

    def open(self, trading: jnp.ndarray) -> jnp.ndarray:
        """The hard view of ``trading`` (N, V) bool."""
        return trading

    def none_halted(self, shape, dtype) -> jnp.ndarray:
        """``trading`` where no venue has breakers (N, V)."""
        return jnp.ones(shape, bool)

    def gate(self, trading: jnp.ndarray, x: jnp.ndarray) -> jnp.ndarray:
        """Flow ``x`` sent to the book: all of it where the venue trades, none where halted."""
        return jnp.where(trading, x, 0.0)

    def keep(self, trading: jnp.ndarray, new: jnp.ndarray, old: jnp.ndarray) -> jnp.ndarray:
        """``new`` where the venue traded, ``old`` where it was halted."""
        return jnp.where(trading, new, old)

    def rounds_on(self, trading: jnp.ndarray) -> jnp.ndarray:
        """Venues where cascade rounds run (N, V) bool."""
        return trading

    def triggers(self, cp: positions.CohortParams, units, check) -> positions.Triggers:
        """The cohorts' trigger prices for ``units`` and collateral ``check`` (N, V, C): computed once while
        both are fixed, so that each cascade round compares prices instead of re-evaluating tiered margins."""
        return positions.Triggers(units, check, positions.trigger_prices(cp, units, check))

    def liquidation(self, cp: positions.CohortParams, triggers: positions.Triggers, in_liq, mark, temperature
                    ) -> jnp.ndarray:
        """Cohorts in liquidation at ``mark`` (N, V, C): 1 if already queued or below maintenance, else 0."""
        new = (in_liq < 0.5) & positions.triggered_at(cp, triggers.prices, mark)
        return jnp.maximum(in_liq, new.astype(in_liq.dtype))

    def round_grew(self, raised: jnp.ndarray, queued: jnp.ndarray) -> jnp.ndarray:
        """Whether a cascade round added a cohort (N, V): another round is needed."""
        return jnp.any(raised > queued, -1)

    def solution(self, residual, y: jnp.ndarray, unsolved: jnp.ndarray) -> jnp.ndarray:
        """The root ``y`` (N, V) of an elementwise equation ``residual(y) = 0``, as the solver found it
        (``unsolved``: where it stopped on the model's bound or before converging)."""
        return y

    def breaker_state(self, n: int, n_venues: int, n_levels: int, dtype) -> breakers.BreakerState:
        """No halt yet; integer countdowns and bool level flags."""
        return breakers.initial_state(n, n_venues, n_levels, dtype, jnp.int32, bool)

    def breakers(self, p, static, s, trading, breached, y, vol, temperature) -> breakers.BreakerState:
        """End-of-step breaker update (:func:`breakers.advance`)."""
        return breakers.advance(p, static.reference, s, ~trading, trading, breached, y, vol)

    def band(self, p, static, trading, y, y_prev, y_base, depth, impact):
        """The price band (:func:`breakers.band`): (y, share of the flow executed, breached)."""
        if not static.band:
            return y, 1.0, jnp.zeros_like(trading)
        return breakers.band(p, trading, y, y_prev, y_base, depth, impact)

    def adl_queue(self, in_liq: jnp.ndarray, open_: jnp.ndarray) -> jnp.ndarray:
        """Cohorts ADL may close (N, V, C), 1 or 0 in the dtype of ``in_liq``: queued for liquidation on a
        venue that trades."""
        return ((in_liq >= 0.5) & open_[..., None]).astype(in_liq.dtype)

    def bankrupt(self, queued: jnp.ndarray, units: jnp.ndarray, equity: jnp.ndarray, notional: jnp.ndarray,
                 temperature) -> jnp.ndarray:
        """Cohorts ADL closes if the fund falls short (N, V, C), 1 or 0: ``queued``, holding units, and with
        ``equity`` (quote currency, at the mark) at or below zero (``notional``: units x mark, unused here)."""
        return jnp.where((units > 0) & (equity <= 0.0), queued, 0.0)

    def fund_short(self, bankrupt: jnp.ndarray, deficit: jnp.ndarray, fund: jnp.ndarray, notional: jnp.ndarray,
                   temperature) -> jnp.ndarray:
        """Paths and venues where ADL acts (N, V), 1 or 0: some cohort is ``bankrupt`` and the insurance
        ``fund`` (quote currency) is at most the bankrupt cohorts' ``deficit`` (their negative equity summed;
        ``notional``, their units x mark summed as weighted, is unused here)."""
        return (jnp.any(bankrupt > 0, -1) & (fund <= deficit)).astype(fund.dtype)

    def newton_done(self, move, last_move, limit, newton, was_newton) -> jnp.ndarray:
        """Whether the clearing solver stops (N, V) bool after an iteration moved the log-price by ``move``:
        the move is at most ``limit``, or this and the previous iteration were Newton steps (``newton``,
        ``was_newton``) whose sizes show quadratic convergence (:func:`quadratic_done`)."""
        return (move <= limit) | (newton & was_newton & quadratic_done(move, last_move, limit))

    def signal(self, excess: jnp.ndarray, temperature) -> jnp.ndarray:
        """A threshold rule's firing (1 or 0, in the dtype of ``excess``): ``excess`` > 0."""
        return (excess > 0).astype(excess.dtype)

    def stops(self, p: defensive.DefensiveParams, units, done, y, peak, trough) -> jnp.ndarray:
        """Defensive populations whose stop or drawdown limit is breached at ``y`` (:func:`defensive.stopped`)."""
        return defensive.stopped(p, units, done, y, peak, trough)

    def kill_switches(self, p: defensive.DefensiveParams, vol: jnp.ndarray) -> jnp.ndarray:
        """Share of depth left after kill switches fire above their volatility (:func:`defensive.depth_multiplier`)."""
        return defensive.depth_multiplier(p, vol)


@dataclass(frozen=True)
class Smooth(Hard):
    """Relaxed rules for calibration: each tends to the hard rule as the temperature goes to 0.

    Decisions not listed here are inherited from ``Hard`` unchanged ("not relaxed"): ADL's ranking,
    ``newton_done`` (the solver's value stops by the same rule; its derivative comes
    from ``solution``), defensive ``stops`` and ``kill_switches``.
    """

    trigger: str = "sigmoid"
    """Shape of the relaxed liquidation trigger (``calibration.relaxation``, :func:`positions.trigger_weight`):
    "sigmoid" or the one-sided "ramp"."""
    smooth: ClassVar[bool] = True
    root_floor: ClassVar[float] = SMOOTH_ROOT_FLOOR
    model_book: ClassVar[bool] = False

    def trading(self, s: breakers.BreakerState) -> jnp.ndarray:
        """Share of the step each venue trades (N, V): 1 - clip(left, 0, 1) of a real-valued countdown."""
        return 1.0 - jnp.clip(s.left, 0.0, 1.0)

    def open(self, trading: jnp.ndarray) -> jnp.ndarray:
        """Not relaxed: a venue counts as open when more than half of the step traded."""
        return trading > 0.5

    def none_halted(self, shape, dtype) -> jnp.ndarray:
        return jnp.ones(shape, dtype)

    def gate(self, trading: jnp.ndarray, x: jnp.ndarray) -> jnp.ndarray:
        """The traded share of ``x``."""
        return x * trading

    def keep(self, trading: jnp.ndarray, new: jnp.ndarray, old: jnp.ndarray) -> jnp.ndarray:
        """A blend by the traded share: old + g (new - old)."""
        return old + trading * (new - old)

    def rounds_on(self, trading: jnp.ndarray) -> jnp.ndarray:
        """Rounds run wherever any share of the step trades."""
        return trading > 0

    def triggers(self, cp, units, check) -> positions.Triggers:
        """No trigger prices: the relaxed rule weighs the margin shortfall at each mark."""
        return positions.Triggers(units, check, None)

    def liquidation(self, cp, triggers, in_liq, mark, temperature) -> jnp.ndarray:
        """Weight in [0, 1] of (maintenance - equity) / (units x mark) / T, a sigmoid or the one-sided ramp
        (``trigger``, :func:`positions.trigger_weight`); a weight never falls within a step."""
        return jnp.maximum(in_liq, positions.trigger_weight(cp, triggers.units, mark, triggers.check, temperature,
                                                            self.trigger))

    def adl_queue(self, in_liq: jnp.ndarray, open_: jnp.ndarray) -> jnp.ndarray:
        """The liquidation weight itself, on venues that trade (more than half of the step)."""
        return in_liq * open_[..., None]

    def bankrupt(self, queued, units, equity, notional, temperature) -> jnp.ndarray:
        """``queued`` times the ramp of the negative equity per notional over T: 0 at positive equity, as
        the hard rule, and the full queue weight from a deficit of T x notional on."""
        held = notional > 0
        per_notional = -equity / jnp.where(held, notional, 1.0)
        return jnp.where(held, queued * ramp(per_notional / temperature), 0.0)

    def fund_short(self, bankrupt, deficit, fund, notional, temperature) -> jnp.ndarray:
        """The ramp of the deficit's excess over the fund, over T x the bankrupt cohorts' notional (weighted
        as ``bankrupt``): ADL takes over from the fund gradually instead of at once when the fund runs out.
        The quotient is taken only where the deficit exceeds the fund (it is then at most the largest
        deficit per notional over T), so that a tiny bankrupt weight gives no overflowing tangent."""
        short = deficit > fund
        return jnp.where(short, ramp(safe.ratio(jnp.where(short, deficit - fund, 0.0), temperature * notional)),
                         0.0)

    def round_grew(self, raised: jnp.ndarray, queued: jnp.ndarray) -> jnp.ndarray:
        """Another round while some weight rose by more than SMOOTH_ROUND_ULPS machine epsilons."""
        tolerance = SMOOTH_ROUND_ULPS * jnp.finfo(raised.dtype).eps
        return jnp.any(raised > queued + tolerance, -1)

    def solution(self, residual, y: jnp.ndarray, unsolved: jnp.ndarray) -> jnp.ndarray:
        """The root ``y`` with its derivative by the implicit function theorem: dy = -dF / F_y.

        The value is the solver's ``y`` unchanged; derivatives do not pass through the solver's
        tolerance-stopped iterations but through one linearisation of ``residual`` at the root.
        Where the solver found no root (``unsolved``: on the bound, or not converged) or the equation's
        slope is below MIN_IMPLICIT_SLOPE (a fold, where the root jumps), the derivative is that of one
        fixed-point step y = y_base + impact(flow(y)) at ``y``: dy = -dF.
        """
        y = jax.lax.stop_gradient(y)
        r, slope = jax.jvp(residual, (y,), (jnp.ones_like(y),))
        implicit = ~unsolved & (slope > MIN_IMPLICIT_SLOPE)
        slope = jax.lax.stop_gradient(jnp.where(implicit, slope, 1.0))
        return y - (r - jax.lax.stop_gradient(r)) / slope

    def breaker_state(self, n: int, n_venues: int, n_levels: int, dtype) -> breakers.BreakerState:
        """No halt yet; real-valued countdowns and level weights."""
        return breakers.initial_state(n, n_venues, n_levels, dtype, dtype, dtype)

    def breakers(self, p, static, s, trading, breached, y, vol, temperature) -> breakers.BreakerState:
        """Levels fire with weight sigmoid((threshold - y) / T) times the traded share and what is left of
        the level; the halt left is a real countdown (:func:`breakers.advance_smooth`)."""
        return breakers.advance_smooth(p, static.reference, s, trading, y, vol, temperature)

    def band(self, p, static, trading, y, y_prev, y_base, depth, impact):
        """Not relaxed: no price band in smooth mode."""
        return y, 1.0, jnp.zeros(y.shape, bool)

    def signal(self, excess: jnp.ndarray, temperature) -> jnp.ndarray:
        """sigmoid(excess / T)."""
        return jax.nn.sigmoid(excess / temperature)

