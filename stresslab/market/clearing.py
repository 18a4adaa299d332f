"""The price that clears a step's flow, and the intra-step cascade rounds that find it.

Within a step the book, the haircut, the mark's fixed part and every pre-flow order are
fixed (``Flow``). At a candidate log-price ``y`` the liquidation queue, defensive
stops and the dealers' hedge send market orders; the clearing price solves
``y = y_base + impact(flow(y))`` (safeguarded Newton). A cascade round solves it
for the cohorts queued so far, compares the mark at that price with the cohorts'
trigger prices (computed once per step, ``Rules.triggers``) and the stops, adds what
newly triggered, and repeats until nothing new (``Rules.round_grew``) or
``grid.cascade_rounds``. The first round runs on every path; the further rounds only on
the paths where it triggered something, gathered ROUND_BATCH at a time (``compact.py``):
a vectorised loop would otherwise run every path until the longest cascade of the chunk
is done. The clearing solve itself is split the same way: without the short path below,
SLICE_ITERATIONS Newton iterations on every path (most converge in 3-4), then the paths not
yet converged go on NEWTON_BATCH at a time (a few per slice take fixed-point steps where the
equation's slope is below MIN_SLOPE and need up to ~7). Every path runs exactly the iterations
it would alone, so results do not depend on the batch sizes (``tests/test_compact.py``).

With an options book, the short path (``short_path``) replaces most exact iterations: the first
evaluates the book's greeks and their next two derivatives, further iterations solve the equation
with the book's delta replaced by that cubic Taylor model (no erfc or exp per option), and the
model's root is taken where Lagrange's bound on the model's error puts it within half the Newton
tolerance of the exact root (``model_root_ok``); the re-hedge and the book's depletion after the
trade then use the same model (``book_at``). The other paths (a jump, a cascade, near-expiry
options) iterate on the exact book in batches. On the benchmarks' reference day 96-98 % of the
float32 path-steps take the short path (80 % with a 2.4x narrower book); float64, whose tolerance
is 10^9 times tighter, does not try it (MODEL_DTYPES; ``tests/test_short_path.py``).
Arrays are (N, V) per venue, cohorts (N, V, C).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from stresslab.market import collateral, compact, dealers, liquidity, oracle, positions
from stresslab.market.outputs import Output, Problem
from stresslab.market.reduce import fixed_sum

MAX_NEWTON_ITERATIONS = 64
"""Cap on the iterations for the price that clears a step's flow (Newton converges in a few)."""
NEWTON_TOLERANCE = 8.0
"""Convergence when an iteration moves the log-price by at most this many machine epsilons."""
SLICE_ITERATIONS = 3
"""Clearing iterations run on every path of a slice; the paths not converged by then go on in batches."""
NEWTON_BATCH = 128
"""Paths per batch of the clearing iterations after SLICE_ITERATIONS (``clear``)."""
MIN_SLOPE = 0.05
"""Below this slope of the clearing equation Newton falls back to a fixed-point step."""
MAX_MOVE = 10.0
"""Bound on the log-price move caused by one step's flow (an unstable market hits it)."""
MODEL_ITERATIONS = 6
"""Newton iterations on the options book's cubic model in the short path (``clear``; 0: no short path)."""
MODEL_SHARE = 0.5
"""The short path's root is taken where its error bound is at most this share of the Newton tolerance."""
QUEUE_BATCH = 128
"""Paths per batch of the sums over cohorts of the step's first queue (``first_queue``)."""
ROUND_BATCH = 128
"""Paths per batch of the cascade rounds after the first (``cascade``)."""
HEDGE_BATCH = 128
"""Paths per batch of the exact greeks after the trade where the short path did not give them (``book_at``)."""
BOUND_SLACK = 1e-9
"""A clearing move within this relative distance of MAX_MOVE is on the bound (the equation has no root inside)."""


class Flow(NamedTuple):
    """Everything the clearing equation and the margin checks need that is fixed within a step.

    y_base: pre-flow log-price (N, V).  exogenous: pre-flow notional (programs, arbitrage, risk targets,
    trend followers), buy > 0 (N, V).  depth: available 1 % depth (N, V).  units: cohort units (N, V, C).
    hedge: dealers' hedge (N, V).  options: the options book's per-step terms (or None).
    mark_fixed, mark_prev: the mark's fixed source and the previous smoothed mark (N, V).
    y_c_base: collateral-asset log-price before liquidations sell seized collateral (N, V).
    haircut (N, V).  adj: funding received per unit (N, V, C).  defensive_units (N, V, D).
    peak, trough: running extremes of the traded log-price (N, V).
    """

    y_base: jnp.ndarray
    exogenous: jnp.ndarray
    depth: jnp.ndarray
    units: jnp.ndarray
    hedge: jnp.ndarray
    options: dealers.OptionTerms | None
    mark_fixed: jnp.ndarray
    mark_prev: jnp.ndarray
    y_c_base: jnp.ndarray
    haircut: jnp.ndarray
    adj: jnp.ndarray
    defensive_units: jnp.ndarray
    peak: jnp.ndarray
    trough: jnp.ndarray


class Queue(NamedTuple):
    """Flow waiting to execute, per venue (N, V): liquidations' net signed units (long > 0) and
    total units, the collateral-asset notional (at the peg) they hold, and defensive stops' net units."""

    net_units: jnp.ndarray
    total_units: jnp.ndarray
    collateral: jnp.ndarray
    stop_units: jnp.ndarray


class Margin(NamedTuple):
    """Collateral per unit (N, V, C): for margin checks (after the haircut), at value, and its
    revaluation (collateral held in an asset). None when plain posted collateral applies."""

    check: jnp.ndarray | None
    value: jnp.ndarray | None
    reval: jnp.ndarray | float


class Cleared(NamedTuple):
    """Result of the cascade rounds: clearing log-price ``y`` (N, V); ``solved`` the cohorts whose flow
    is in ``y`` and their ``queue``; ``in_liq`` every cohort in liquidation; defensive populations
    ``stopped``; feedback ``phi`` = d impact / d y at ``y``; ``exhausted`` where rounds ran out;
    ``local`` the options book's cubic model of the last solve and ``modelled`` where ``y`` is its root
    (``Solved``; None and all False without the short path)."""

    y: jnp.ndarray
    solved: jnp.ndarray
    queue: Queue
    in_liq: jnp.ndarray
    stopped: jnp.ndarray
    phi: jnp.ndarray
    exhausted: jnp.ndarray
    local: dealers.Local | None
    modelled: jnp.ndarray


def queue(params, f: Flow, in_liq: jnp.ndarray, stopped: jnp.ndarray) -> Queue:
    """The flow of the cohorts in liquidation (weights ``in_liq``) and of stopped defensive populations."""
    cp = params.positions.cohorts
    queued = in_liq * f.units
    stops = jnp.where(stopped, f.defensive_units, 0.0)
    return Queue(fixed_sum(cp.side * queued, -1), fixed_sum(queued, -1),
                 fixed_sum(queued * cp.margin_per_unit * params.collateral.share, -1),
                 fixed_sum(params.defensive.side * stops, -1))


def first_queue(params, f: Flow, in_liq: jnp.ndarray, stopped: jnp.ndarray) -> Queue:
    """``queue`` at the start of a step's cascade, its sums over cohorts taken only on the paths where some
    cohort or defensive population is queued with a position (QUEUE_BATCH paths at a time, ``compact.on_paths``).

    On the other paths every summand is a zero (weights and units are finite and at least 0), whose sum the
    order-fixed tree gives from the cohorts' sides alone; it is taken once, without a path axis, so the
    result is ``queue``'s bit for bit. A float sum over the cohort axis costs several times an elementwise
    pass over it on a CPU, and in most steps few paths have anything queued."""
    n, v = f.y_base.shape
    idle = queue(params, f._replace(units=jnp.zeros((1,) + f.units.shape[1:], f.units.dtype),
                                     defensive_units=jnp.zeros((1,) + f.defensive_units.shape[1:],
                                                               f.defensive_units.dtype)),
                 jnp.zeros((1,) + in_liq.shape[1:], in_liq.dtype), jnp.zeros((1,) + stopped.shape[1:], bool))
    need = (jnp.any((in_liq != 0) & (f.units != 0), (-2, -1))
            | jnp.any(stopped & (f.defensive_units != 0), (-2, -1)))

    def sums(_, f, in_liq, stopped):
        return queue(params, f, in_liq, stopped)

    return compact.on_paths(need, sums, Queue(*(jnp.broadcast_to(x, (n, v)) for x in idle)),
                            f._replace(options=None), in_liq, stopped, batch=QUEUE_BATCH)


def margin(params, static, f: Flow, y_c: jnp.ndarray) -> Margin:
    """Collateral per unit at collateral-asset log-price ``y_c``, with the step's haircut and funding."""
    if static.collateral.pricing is None and not static.haircuts.enabled and not static.funding.every:
        return Margin(None, None, 0.0)
    posted = params.positions.cohorts.margin_per_unit
    reval = 0.0
    if static.collateral.pricing is not None:
        reval = collateral.revaluation(params, static, y_c)
        posted = posted + reval
    check = posted * (1.0 - f.haircut[..., None]) if static.haircuts.enabled else posted
    return Margin(check + f.adj, posted + f.adj, reval)


def mark(params, static, f: Flow, y: jnp.ndarray) -> jnp.ndarray:
    """Mark log-price for margin at the round's clearing log-price ``y`` (N, V)."""
    return oracle.mark(params.oracle, static.oracle, f.mark_fixed, f.mark_prev, y)


def fill_price(params, f: Flow, y: jnp.ndarray) -> jnp.ndarray:
    """Average execution price of the step's market orders: the geometric mid of the pre-flow and clearing prices."""
    return params.price.s0 * jnp.exp(0.5 * (f.y_base + y))


def execution_fraction(params, static, f: Flow, q: Queue, fill: jnp.ndarray) -> jnp.ndarray:
    """Share of the liquidation queue executed this step at fill price ``fill`` under the engine's caps (N, V)."""
    return positions.execution_fraction(params.positions.liquidation, q.total_units * fill, f.depth,
                                        static.book.impact)


def total_flow(params, static, f: Flow, q: Queue, y: jnp.ndarray, local: dealers.Local | None = None):
    """Signed notional flow at log-price ``y`` (N, V) and its derivative d flow / d y (``local``: the options
    book from its cubic model, ``dealers.Local``)."""
    fill = fill_price(params, f, y)
    frac = execution_fraction(params, static, f, q, fill)
    liq = -q.net_units * frac * fill
    stops = -q.stop_units * fill
    flow, slope = f.exogenous + liq + stops, jnp.where(frac < 1.0, 0.0, 0.5 * liq) + 0.5 * stops
    if static.dealers.book is not None:
        hedge, hedge_slope = dealers.hedge_flow(params.dealers, static.dealers.book, f.hedge, y, params.price.s0,
                                                f.options, local)
        flow, slope = flow + hedge, slope + hedge_slope
    return flow, slope


class Newton(NamedTuple):
    """The clearing solver's state per venue (N, V): the iterate ``y``, where it is still ``active``, the
    feedback ``phi`` at the last iterate, the last iteration's move and whether it was a Newton step."""

    y: jnp.ndarray
    active: jnp.ndarray
    phi: jnp.ndarray
    last_move: jnp.ndarray
    was_newton: jnp.ndarray


class Solved(NamedTuple):
    """A clearing solve (N, V): the root ``y``, the feedback ``phi`` = d impact / d y there, the options
    book's cubic model ``local`` about the starting point, and where ``y`` is the model's root
    (``modelled``: the short path). ``local`` is None without the short path (``short_path``)."""

    y: jnp.ndarray
    phi: jnp.ndarray
    local: dealers.Local | None
    modelled: jnp.ndarray


MODEL_DTYPES = ("float32",)
"""Dtypes whose Newton tolerance the cubic model can meet in a step's move. In float64 (a 10^9 times tighter
tolerance) its bound admitted no path-step of the reference's first 150, so trying it only cost time: the
reference day ran at 1.36 against 1.76 M path-steps/s."""


def short_path(static) -> bool:
    """Whether ``clear`` tries the short path: an options book (its greeks are the cost of an iteration), a
    dtype in MODEL_DTYPES, rules that allow it (``Rules.model_book``: not calibration's smooth rules) and
    MODEL_ITERATIONS > 0."""
    return (static.dealers.book == "options" and static.grid.dtype in MODEL_DTYPES and static.rules.model_book
            and MODEL_ITERATIONS > 0)


def clear(params, static, f: Flow, q: Queue, y: jnp.ndarray) -> Solved:
    """Solve y = y_base + impact(flow(y)) by safeguarded Newton, path by path until converged.

    Where the equation's slope is too small for Newton (strong feedback) a fixed-point step is taken
    instead. The short path (``short_path``): the first iteration evaluates the options book's greeks and
    their next two derivatives at the start; up to MODEL_ITERATIONS further iterations solve the equation
    with the book's delta replaced by that cubic model, which costs no erfc or exp per option; where they
    converged and the model's error bound (``model_root_ok``) puts their root within MODEL_SHARE of the
    Newton tolerance of the exact one, it is taken. On the other paths the exact iterations go on from
    the first, NEWTON_BATCH paths at a time (``compact.on_paths``). Without the short path the first
    SLICE_ITERATIONS iterations run on every path, and those still not converged continue in such
    batches, so that a few slow paths do not make every path of the slice iterate as long as they do.
    Each path takes the same iterations whatever the batches.
    """
    never = jnp.zeros(y.shape, bool)
    s = Newton(y, ~never, jnp.zeros_like(y), jnp.full_like(y, jnp.inf), never)
    local, modelled, first = None, never, 0
    if short_path(static):
        local = dealers.greeks(f.options, y)
        s = newton_step(params, static, f, q, s, local)  # exact: the model is exact at its centre
        m = newton_iterations(params, static, f, q, s, 1, 1 + MODEL_ITERATIONS, local)
        modelled = s.active & ~m.active & model_root_ok(params, static, f, q, m.y, local)
        s = Newton(*(jnp.where(modelled, a, b) for a, b in zip(m, s, strict=True)))._replace(
            active=s.active & ~modelled)
        first = 1  # the paths left need more iterations than most: straight to the batches
    else:
        s = newton_iterations(params, static, f, q, s, 0, SLICE_ITERATIONS)
        first = SLICE_ITERATIONS
    if y.shape[0] > NEWTON_BATCH:
        options = f.options  # the options book's terms have no path axis: they are not gathered by path

        def more(s, f, q):
            return newton_iterations(params, static, f._replace(options=options), q, s, first, MAX_NEWTON_ITERATIONS)

        s = compact.on_paths(jnp.any(s.active, -1), more, s, f._replace(options=None), q, batch=NEWTON_BATCH)
    else:
        s = newton_iterations(params, static, f, q, s, first, MAX_NEWTON_ITERATIONS)
    bounded = jnp.abs(s.y - f.y_base) >= MAX_MOVE * (1.0 - BOUND_SLACK)
    y = static.rules.solution(lambda y: residual(params, static, f, q, y), s.y, bounded | s.active)
    return Solved(y, s.phi, local, modelled)


def newton_limit(y: jnp.ndarray) -> jnp.ndarray:
    """The Newton tolerance at log-price ``y``: NEWTON_TOLERANCE machine epsilons of 1 + |y|."""
    return NEWTON_TOLERANCE * jnp.finfo(y.dtype).eps * (1.0 + jnp.abs(y))


def model_root_ok(params, static, f: Flow, q: Queue, y: jnp.ndarray, local: dealers.Local) -> jnp.ndarray:
    """Whether ``y``, a root of the clearing equation with the options book's cubic model ``local``, is
    within MODEL_SHARE of the Newton tolerance of the exact root (N, V) bool.

    The model's delta is off by at most ``dealers.model_error`` units, the flow by that times the price,
    so the exact residual at ``y`` is at most ``liquidity.impact_bound`` of it; the root moves by that
    over the equation's slope, which must be a Newton one (above MIN_SLOPE)."""
    flow, slope = total_flow(params, static, f, q, y, local)
    _, dmove = liquidity.impact(flow, f.depth, static.book.impact, static.rules.root_floor)
    fprime = 1.0 - dmove * slope
    flow_error = dealers.model_error(f.options, local, y) * params.price.s0 * jnp.exp(y)
    off = liquidity.impact_bound(flow, flow_error, f.depth, static.book.impact)
    return (fprime > MIN_SLOPE) & (off <= MODEL_SHARE * newton_limit(y) * fprime)


def newton_step(params, static, f: Flow, q: Queue, s: Newton, local: dealers.Local | None = None) -> Newton:
    """One iteration of the clearing solver where ``s`` is active (``local``: on the options book's cubic model)."""
    flow, slope = total_flow(params, static, f, q, s.y, local)
    move, dmove = liquidity.impact(flow, f.depth, static.book.impact, static.rules.root_floor)
    fprime = 1.0 - dmove * slope
    newton = fprime > MIN_SLOPE
    y_new = jnp.where(newton, s.y - (s.y - f.y_base - move) / jnp.where(newton, fprime, 1.0), f.y_base + move)
    y_new = jnp.clip(y_new, f.y_base - MAX_MOVE, f.y_base + MAX_MOVE)
    step = jnp.abs(y_new - s.y)
    converged = static.rules.newton_done(step, s.last_move, newton_limit(s.y), newton, s.was_newton)
    return Newton(jnp.where(s.active, y_new, s.y), s.active & ~converged, jnp.where(s.active, dmove * slope, s.phi),
                  step, newton)


def newton_iterations(params, static, f: Flow, q: Queue, s: Newton, first: int, stop: int,
                      local: dealers.Local | None = None) -> Newton:
    """Iterations ``first`` .. ``stop`` - 1 of the clearing solver, while any venue of ``s`` is active."""

    def cond(carry):
        k, s = carry
        return (k < stop) & jnp.any(s.active)

    def body(carry):
        k, s = carry
        return k + 1, newton_step(params, static, f, q, s, local)

    return jax.lax.while_loop(cond, body, (first, s))[1]


def residual(params, static, f: Flow, q: Queue, y: jnp.ndarray) -> jnp.ndarray:
    """The clearing equation's residual y - y_base - impact(flow(y)) (N, V); zero at the clearing price."""
    flow, _ = total_flow(params, static, f, q, y)
    move, _ = liquidity.impact(flow, f.depth, static.book.impact, static.rules.root_floor)
    return y - f.y_base - move


def collateral_after(params, static, f: Flow, sold_at_peg: jnp.ndarray) -> jnp.ndarray:
    """Collateral-asset log-price after selling ``sold_at_peg`` (its notional at the peg) of seized collateral."""
    if static.collateral.pricing is None:
        return f.y_c_base
    return collateral.after_sale(params.collateral, f.y_c_base, sold_at_peg * jnp.exp(f.y_c_base))


def triggers(params, static, units, check) -> positions.Triggers:
    """What the rules compare marks with while ``units`` and the collateral per unit ``check`` (after the
    haircut; None: as posted) hold (``Rules.triggers``)."""
    return static.rules.triggers(params.positions.cohorts, units, check)


def liquidation_weights(params, static, t: positions.Triggers, in_liq, mark_price) -> jnp.ndarray:
    """Liquidation weight of each cohort at ``mark_price`` under the rules (1/0, or smooth)."""
    return static.rules.liquidation(params.positions.cohorts, t, in_liq, mark_price, params.rules.temperature)


def round_triggers(params, static, f: Flow, q: Queue, fixed: positions.Triggers | None) -> positions.Triggers:
    """The step's triggers (``fixed``), or, where collateral held in an asset is repriced by the queue's
    seized collateral each round, the triggers at that round's collateral price."""
    if fixed is not None:
        return fixed
    return triggers(params, static, f.units, margin(params, static, f, collateral_after(params, static, f,
                                                                                         q.collateral)).check)


def _triggered(params, static, f: Flow, queued, stopped, q: Queue, y: jnp.ndarray, fixed):
    """Liquidation weights of the cohorts and defensive populations newly stopped at ``y``."""
    mark_price = params.price.s0 * jnp.exp(mark(params, static, f, y))
    new = liquidation_weights(params, static, round_triggers(params, static, f, q, fixed), queued, mark_price)
    new_stops = static.rules.stops(params.defensive, f.defensive_units, stopped, y, f.peak, f.trough)
    return new, new_stops


class Rounds(NamedTuple):
    """The cascade rounds' state per path (the fields of ``Cleared``): ``queued`` every cohort in
    liquidation so far, ``queue`` the flow of the cohorts ``solved`` into ``y``, ``active`` where another
    round is needed; ``local`` and ``modelled`` those of the last solve (``Solved``)."""

    y: jnp.ndarray
    solved: jnp.ndarray
    queue: Queue
    queued: jnp.ndarray
    stops: jnp.ndarray
    phi: jnp.ndarray
    active: jnp.ndarray
    local: dealers.Local | None
    modelled: jnp.ndarray


def cascade_round(params, static, f: Flow, fixed: positions.Triggers | None, r: Rounds,
                  new_queue: Queue | None = None) -> Rounds:
    """One cascade round where ``r.active``: clear the flow of the cohorts queued so far (``new_queue``, when
    given, is their ``queue``), then queue those that trigger at the new price. Paths where it is not active
    keep their state bit for bit."""
    active = r.active
    new_queue = queue(params, f, r.queued, r.stops) if new_queue is None else new_queue
    solved = clear(params, static, f, new_queue, r.y)
    y = jnp.where(active, solved.y, r.y)
    q = Queue(*(jnp.where(active, new, old) for new, old in zip(new_queue, r.queue, strict=True)))
    local = None if r.local is None else dealers.Local(*(jnp.where(active, new, old)
                                                          for new, old in zip(solved.local, r.local, strict=True)))
    weight, new_stops = _triggered(params, static, f, r.queued, r.stops, q, y, fixed)
    raised = jnp.where(active[..., None], jnp.maximum(r.queued, weight), r.queued)
    new_stops = new_stops & active[..., None]
    grew = static.rules.round_grew(raised, r.queued)
    return Rounds(y, jnp.where(active[..., None], r.queued, r.solved), q, raised, r.stops | new_stops,
                  jnp.where(active, solved.phi, r.phi), active & (grew | jnp.any(new_stops, -1)), local,
                  jnp.where(active, solved.modelled, r.modelled))


def further_rounds(params, static, f: Flow, fixed: positions.Triggers | None, r: Rounds) -> Rounds:
    """Rounds 2 .. ``grid.cascade_rounds`` until nothing new triggers (``Rules.round_grew``)."""

    def cond(carry):
        k, r = carry
        return (k < static.grid.cascade_rounds) & jnp.any(r.active)

    def body(carry):
        k, r = carry
        return k + 1, cascade_round(params, static, f, fixed, r)

    return jax.lax.while_loop(cond, body, (1, r))[1]


def cascade(params, static, f: Flow, in_liq: jnp.ndarray, stopped: jnp.ndarray, active: jnp.ndarray,
            step_triggers: positions.Triggers) -> Cleared:
    """Intra-step cascade rounds on the venues where ``active`` (N, V) holds.

    ``step_triggers`` are the step's (for ``f.units`` and the opening margins): every round compares its
    mark with them, unless collateral held in an asset is repriced by the rounds' sales. The first round
    runs on every path; the further rounds only on the paths where it triggered something, ROUND_BATCH
    paths at a time (``compact.on_paths``), so that a cascade on a few paths does not cost the whole chunk."""
    fixed = step_triggers if static.collateral.pricing is None else None
    zeros = jnp.zeros_like(f.y_base)
    local = dealers.Local(*(zeros,) * len(dealers.Local._fields)) if short_path(static) else None
    r = cascade_round(params, static, f, fixed, Rounds(f.y_base, in_liq, Queue(zeros, zeros, zeros, zeros), in_liq,
                                                       stopped, zeros, active, local, jnp.zeros_like(active)),
                      first_queue(params, f, in_liq, stopped))
    options = f.options  # the options book's terms have no path axis: they are not gathered by path

    def more(r, f, fixed):
        return further_rounds(params, static, f._replace(options=options), fixed, r)

    r = compact.on_paths(jnp.any(r.active, -1), more, r, f._replace(options=None), fixed, batch=ROUND_BATCH)
    return Cleared(r.y, r.solved, r.queue, r.queued, r.stops, r.phi, r.active, r.local, r.modelled)


def book_at(params, static, f: Flow, c: Cleared, y: jnp.ndarray, trading: jnp.ndarray) -> dealers.Local:
    """The options book about the step's final log-price ``y`` (N, V), for the re-hedge and the book's
    depletion: the last solve's cubic model where ``y`` is its root (within the model's error bound, as
    ``model_root_ok`` checked), the exact greeks at ``y`` elsewhere (the exact Newton's paths, a band that
    moved the price), computed only on those paths of venues that traded (``compact.on_paths``)."""
    exact = static.rules.rounds_on(trading) & ~(c.modelled & (y == c.y))
    options = f.options

    def at_y(local, y, exact):
        return dealers.Local(*(jnp.where(exact, a, b) for a, b in zip(dealers.greeks(options, y), local,
                                                                          strict=True)))

    return compact.on_paths(jnp.any(exact, -1), at_y, c.local, y, exact, batch=HEDGE_BATCH)


def no_book(params, f: Flow, in_liq: jnp.ndarray, stopped: jnp.ndarray) -> Cleared:
    """Without a book (``liquidity.enabled = false``) nothing moves the price: the queue trades at ``y_base``."""
    zeros = jnp.zeros_like(f.y_base)
    never = jnp.zeros_like(f.y_base, bool)
    return Cleared(f.y_base, in_liq, queue(params, f, in_liq, stopped), in_liq, stopped, zeros, never, None, never)


OUTPUTS = (
    Output("unstable_step", "step index", "first step with unstable hedging feedback (-1: none)",
           lambda p, s, st, su: su.problems.unstable_step),
    Output("rounds_exhausted", "step count", "steps whose cascade needed more than cascade_rounds rounds",
           lambda p, s, st, su: su.problems.rounds_exhausted),
    Output("floor_step", "step index", "first step whose order flow moved the log-price by the model bound (-1: none)",
           lambda p, s, st, su: su.problems.floor_step),
    Output("nonfinite_step", "step index", "first step with a non-finite price, depth, hedge or fund (-1: none)",
           lambda p, s, st, su: su.problems.nonfinite_step),
)
PROBLEMS = (
    Problem("unstable_step", "dealer hedging", "hedging feedback became unstable (dealer gamma / available depth >= 1)",
            "lower dealers.gamma, raise liquidity.depth, or reduce liquidity.withdrawal/depletion", fatal=True),
    Problem("floor_step", "price impact", "order flow exhausted the book: one step's flow moved the log-price by "
            "the model bound (a fall of more than 99.99 %)",
            "raise liquidity.depth, lower liquidity.depletion, or cap liquidation.max_order / price_collar",
            fatal=True),
    Problem("nonfinite_step", "numerics", "the state became non-finite (NaN or infinite price, depth, hedge or fund)",
            "use simulation.dtype = 'float64' or check the config for extreme values", fatal=True),
    Problem("rounds_exhausted", "cascade rounds", "a cascade needed more than simulation.cascade_rounds rounds in a "
            "step and continued into the next step",
            "raise simulation.cascade_rounds to resolve it within the step", fatal=False, counted=True),
)


class ProblemSummary(NamedTuple):
    """First step of each problem per path (N,), -1: never; rounds_exhausted counts steps.

    unstable_step: hedging feedback with no stable solution.  rounds_exhausted: steps whose cascade needed
    more than ``cascade_rounds`` rounds.  floor_step: a step's flow moved the log-price by MAX_MOVE.
    nonfinite_step: a non-finite state.  fund_exhausted_step: a step ended with an insurance fund at zero.
    """

    unstable_step: jnp.ndarray
    rounds_exhausted: jnp.ndarray
    floor_step: jnp.ndarray
    nonfinite_step: jnp.ndarray
    fund_exhausted_step: jnp.ndarray


def init_problems(n: int) -> ProblemSummary:
    never = jnp.full((n,), -1, jnp.int32)
    return ProblemSummary(never, jnp.zeros((n,), jnp.int32), never, never, never)
