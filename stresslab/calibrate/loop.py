"""The calibration loop: CMA-ES on the hard rules, optax on the smoothed objective, and honest evaluation.

Both phases use the same training paths (common random numbers), so the optimisers
see a deterministic function (docs/calibration.md). Before and after, the objective is
re-evaluated with the hard rules on fresh held-out paths (another seed), with a
bootstrap confidence interval over paths.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax
import tomli_w
import xarray as xr

from stresslab.calibrate import cmaes, parameters
from stresslab.calibrate.objective import Group, Problem, evaluator, parts, problem, total
from stresslab.config.loading import load_config
from stresslab.config.schema import Config
from stresslab.engine import distributed
from stresslab.engine.devices import Devices, select
from stresslab.engine.runner import precision
from stresslab.progress import Silent, progress_bar
from stresslab.version import __version__

BOOTSTRAP = 400
"""Bootstrap resamples of the held-out paths for the confidence interval."""
CONFIDENCE = 0.95
EDGE = 1e-6
"""The gradient phase starts at least this share of each range inside the bounds."""
MAX_STEP_BACKS = 5
"""Non-finite gradient iterations in a row the gradient phase steps back from before it gives up."""
HOLDOUT_SEED_OFFSET = 1_000_003
"""Held-out paths use seed + this offset: fresh random numbers, never the training paths."""


@dataclass(frozen=True)
class Evaluation:
    """Hard-rule objective on held-out paths with a bootstrap confidence interval, and its terms
    (``risk``, ``halt_cost``, ``haircut_cost``; over a sweep, those of the mean or of the worst scenario)."""

    objective: float
    lower: float
    upper: float
    paths: int
    terms: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class CalibrationResult:
    """What ``calibrate`` returns.

    Attributes:
        values: tuned controls by config path.  initial: the config's values.
        trace: the optimisation trace, an ``xarray.Dataset`` along ``iteration``.
        before, after: hard-rule held-out evaluations at the initial and tuned values.
        config: the calibrated config as a plain dict (``stresslab run`` accepts it).
        scenarios: over a sweep, each scenario's label -> (before, after) held-out evaluations.
    """

    values: dict[str, float]
    initial: dict[str, float]
    trace: xr.Dataset
    before: Evaluation
    after: Evaluation
    config: dict[str, Any]
    scenarios: dict[str, tuple[Evaluation, Evaluation]] = field(default_factory=dict)

    def to_toml(self) -> str:
        return tomli_w.dumps(self.config)


def _schedule(start: float, end: float, iterations: int) -> np.ndarray:
    """Temperatures falling geometrically from ``start`` to ``end``."""
    return np.geomspace(start, end, iterations) if iterations > 1 else np.array([end])


def _optimizer(name: str, learning_rate: float) -> optax.GradientTransformation:
    return getattr(optax, name)(learning_rate)


def evaluate(prob: Problem, values: Mapping[str, float], *, paths: int, seed: int,
             devices: Devices | None = None) -> Evaluation:
    """Hard-rule objective at ``values`` on ``paths`` held-out paths, with a bootstrap CI (over a sweep:
    each scenario's objective on its own paths, aggregated; the bootstrap resamples every scenario's paths)."""
    return evaluate_scenarios(prob, values, paths=paths, seed=seed, devices=devices)[0]


def evaluate_scenarios(prob: Problem, values: Mapping[str, float], *, paths: int, seed: int,
                       devices: Devices | None = None,
                       messages: distributed.Messages | None = None) -> tuple[Evaluation, list[Evaluation]]:
    """The aggregated held-out :class:`Evaluation` and one per scenario (in ``prob.labels`` order); the
    paths split over the processes of ``messages`` when given."""
    ev = evaluator(prob, paths=paths, seed=seed, devices=devices, messages=messages)
    members = ev.evaluators if isinstance(ev, Group) else (ev,)
    dtype = jnp.dtype(prob.config.simulation.dtype)
    point = jnp.asarray([values[n] for n in prob.names], dtype)
    outs = [member.per_path(point) for member in members]
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, paths, size=(BOOTSTRAP, paths))
    each = np.array([[float(total(prob.calibration, out, None))] +
                     [float(total(prob.calibration, {k: v[i] for k, v in out.items()}, None)) for i in picks]
                     for out in outs])  # (scenarios, 1 + BOOTSTRAP)
    terms = [{k: float(v) for k, v in parts(prob.calibration, out, None).items()} for out in outs]
    alpha = (1 - CONFIDENCE) / 2

    def evaluation(row: np.ndarray, terms: dict[str, float]) -> Evaluation:
        lower, upper = np.quantile(row[1:], [alpha, 1 - alpha])
        return Evaluation(float(row[0]), float(lower), float(upper), paths, terms)

    if prob.calibration.aggregate == "max":
        combined = evaluation(each.max(0), terms[int(np.argmax(each[:, 0]))])
    else:
        combined = evaluation(each.mean(0), {k: float(np.mean([t[k] for t in terms])) for k in terms[0]})
    return combined, [evaluation(row, t) for row, t in zip(each, terms, strict=True)]


def calibrate(config: str | Path | Mapping[str, Any] | Config, *, overrides: Sequence[str] = (),
              progress: bool = False, device: Literal["cpu", "gpu"] | None = None,
              num_devices: int | None = None) -> CalibrationResult:
    """Tune the controls of ``config``'s ``[calibration]`` section: a global search, then gradient refinement.

    ``calibration.method`` chooses the phases. ``cmaes`` (global): CMA-ES (pycma) on the hard-rule
    objective over the controls' box, each generation's candidates simulated in one batched call on
    the training paths. ``gradient``: optax on the smoothed objective from the best point so far, with
    the temperature falling from ``temperature_start`` to ``temperature_end``. ``cmaes+gradient``
    (default): both. The result is the point with the lowest hard-rule objective on the training paths
    among the start, every CMA-ES candidate and every gradient iterate; it is then evaluated on fresh
    held-out paths.

    Every evaluation runs through the devices like ``stresslab run``: paths in slices sized to one
    device's memory (or ``simulation.chunk_size``), in groups of one slice on each of ``num_devices``
    local devices of kind ``device`` (default: all of the default kind), one ``shard_map`` program a
    group. After :func:`stresslab.engine.distributed.initialize`, every process of the run calls
    ``calibrate`` alike: each simulates a contiguous share of the paths, the per-path outputs are
    exchanged, and every process follows the same search to the same result. The numbers do not
    depend on the device or process count.

    Returns:
        a :class:`CalibrationResult`: tuned values, the trace (both phases along ``iteration``), held-out
        hard-rule evaluations before and after, and the calibrated config.

    Raises:
        ConfigError / ValueError: the config or its calibration section is unusable.
        RuntimeWarning (a warning, not an error): the gradient phase stepped back or stopped at non-finite values.
        PeerError: in a multi-process run, another process failed (the message is its own).
    """
    messages = distributed.Messages(distributed.current())
    try:
        return _calibrate(config, overrides, progress and messages.cluster.leader, select(device, num_devices),
                          messages)
    except distributed.PeerError:
        raise
    except BaseException as failure:
        messages.abort(failure)  # the other processes stop with this message
        raise


def _calibrate(config: str | Path | Mapping[str, Any] | Config, overrides: Sequence[str], progress: bool,
               devices: Devices, messages: distributed.Messages) -> CalibrationResult:
    """``calibrate`` on ``devices``, its paths split over the processes of ``messages``."""
    prob = problem(config, overrides)
    cal = prob.calibration
    seed = prob.config.simulation.seed
    with precision(prob.config.simulation.dtype):
        dtype = jnp.dtype(prob.config.simulation.dtype)
        ev = evaluator(prob, paths=cal.paths, seed=seed, devices=devices, messages=messages)
        start = np.array([prob.initial[n] for n in prob.names])
        trace = _Trace(prob.names)
        total_steps = (cal.generations if "cmaes" in cal.method else 0) + (
            cal.iterations if "gradient" in cal.method else 0)
        with progress_bar(total_steps, enabled=progress, description="calibrating", unit="step") as shown:
            bar = shown if shown is not None else Silent()
            start_value = float(ev.values(jnp.asarray(start[None], dtype))[0])
            best = (start_value, start)
            if "cmaes" in cal.method:
                best = min(best, _global_phase(prob, ev, start, trace, bar, dtype), key=lambda b: b[0])
            if "gradient" in cal.method:
                best = min(best, _gradient_phase(prob, ev, best[1], trace, bar, dtype), key=lambda b: b[0])
        values_out = {n: float(v) for n, v in zip(prob.names, best[1], strict=True)}
        holdout = seed + HOLDOUT_SEED_OFFSET
        before, before_each = evaluate_scenarios(prob, prob.initial, paths=cal.holdout_paths, seed=holdout,
                                                 devices=devices, messages=messages)
        after, after_each = evaluate_scenarios(prob, values_out, paths=cal.holdout_paths, seed=holdout,
                                               devices=devices, messages=messages)
    scenarios = ({label: (b, a) for label, b, a in zip(prob.labels, before_each, after_each, strict=True)}
                 if len(prob.labels) > 1 else {})
    return CalibrationResult(values_out, dict(prob.initial), trace.dataset(prob, before, after), before, after,
                             _calibrated_config(config, overrides, values_out), scenarios)


def _global_phase(prob: Problem, ev, start: np.ndarray, trace: _Trace, bar, dtype) -> tuple[float, np.ndarray]:
    """CMA-ES on the hard-rule objective, in the box scaled to [0, 1] per control, samples outside it put on its
    faces (``cmaes`` module docstring); returns (best, its values)."""
    cal = prob.calibration

    def record(candidates: np.ndarray, values: np.ndarray) -> None:
        i = int(np.argmin(cmaes.finite_or_worst(values)))
        trace.add("global", candidates[i], values[i], values[i], np.nan, np.nan, ev.paths * len(candidates),
                  np.count_nonzero(~np.isfinite(values)))
        bar.set_postfix(phase="global", objective=f"{np.nanmin(values):.4g}")
        bar.update(1)

    return cmaes.minimise(lambda candidates: ev.values(jnp.asarray(candidates, dtype)), prob.lower, prob.upper,
                          start, generations=cal.generations, sigma=cal.sigma, seed=prob.config.simulation.seed + 1,
                          population=cal.population, on_generation=record, bounds="penalty")


def _gradient_phase(prob: Problem, ev, start: np.ndarray, trace: _Trace, bar, dtype) -> tuple[float, np.ndarray]:
    """optax on the smoothed objective with the temperature schedule, from ``start``.

    A non-finite value or gradient is never applied: the iterate steps back to the last finite one and
    the step is halved, with a warning that names the values, the controls and the paths; after
    ``MAX_STEP_BACKS`` in a row, or at the first iterate, the phase ends with a warning. Returns the best
    gradient iterate by the hard-rule objective on the training paths (all evaluated in one batched call)."""
    cal = prob.calibration
    lo, hi = jnp.asarray(prob.lower, dtype), jnp.asarray(prob.upper, dtype)
    # CMA-ES may return a point on a bound; the bounded transform needs one strictly inside
    span = prob.upper - prob.lower
    inside = np.clip(start, prob.lower + EDGE * span, prob.upper - EDGE * span)
    u = jnp.asarray([parameters.to_unconstrained(float(v), a, b)
                     for v, a, b in zip(inside, prob.lower, prob.upper, strict=True)], dtype)
    optimizer = _optimizer(cal.optimizer, cal.learning_rate)
    state = optimizer.init(u)
    scale, backs, iterates = 1.0, 0, []
    for tau in _schedule(cal.temperature_start, cal.temperature_end, cal.iterations):
        values = parameters.to_bounded(u, lo, hi)
        value, grad_values = ev.value_and_grad(values, float(tau))
        grad_u = grad_values * (hi - lo) * jax.nn.sigmoid(u) * (1 - jax.nn.sigmoid(u))
        finite = bool(jnp.isfinite(value) & jnp.all(jnp.isfinite(grad_u)))
        if not finite:
            backs += 1
            where = (", ".join(f"{n} = {float(v):.6g}" for n, v in zip(prob.names, values, strict=True))
                     + f" (temperature {tau:g}): " + (ev.non_finite(values, float(tau)) or "the risk measure"))
            if backs > MAX_STEP_BACKS or not iterates:
                warnings.warn(f"calibration: the gradient phase stopped: the smoothed objective or its gradient is "
                              f"non-finite at {where}; the result is the best point found before", RuntimeWarning,
                              stacklevel=2)
                trace.add("gradient", np.asarray(values, np.float64), float(value), np.nan, np.nan, float(tau),
                          ev.paths * (1 + len(prob.names)), 1)
                bar.update(1)
                break
            warnings.warn(f"calibration: stepped back from a non-finite gradient at {where}", RuntimeWarning,
                          stacklevel=2)
            u, scale = iterates[-1][0], scale * 0.5
        else:
            backs = 0
            iterates.append((u, np.asarray(values, np.float64)))
            updates, state = optimizer.update(grad_u, state, u)
            u = optax.apply_updates(u, scale * updates)
        trace.add("gradient", np.asarray(values, np.float64), float(value), np.nan,
                  float(jnp.linalg.norm(grad_values)), float(tau), ev.paths * (1 + len(prob.names)), int(not finite))
        bar.set_postfix(phase="gradient", objective=f"{float(value):.4g}")
        bar.update(1)
    if not iterates:
        return np.inf, start
    points = np.stack([v for _, v in iterates] + [np.asarray(parameters.to_bounded(u, lo, hi), np.float64)])
    hard = ev.values(jnp.asarray(points, dtype))
    trace.hard_gradient(hard[:-1], ev.paths * len(points))
    hard = cmaes.finite_or_worst(hard)
    i = int(np.argmin(hard))
    return float(hard[i]), points[i]


class _Trace:
    """The optimisation trace, one row per CMA-ES generation or gradient iteration."""

    def __init__(self, names: tuple[str, ...]):
        self.names = names
        self.rows: dict[str, list] = {k: [] for k in ("phase", "value", "objective", "hard_objective", "grad_norm",
                                                       "temperature", "paths", "non_finite")}

    def add(self, phase, values, objective, hard, grad_norm, temperature, paths, non_finite) -> None:
        for key, item in zip(self.rows, (phase, values, objective, hard, grad_norm, temperature, paths, non_finite),
                             strict=True):
            self.rows[key].append(item)

    def hard_gradient(self, hard: np.ndarray, paths: int) -> None:
        """The hard-rule training objective of the finite gradient iterates, and the paths that cost."""
        rows = [i for i, (p, bad) in enumerate(zip(self.rows["phase"], self.rows["non_finite"], strict=True))
                if p == "gradient" and not bad]
        for i, h in zip(rows, hard, strict=True):
            self.rows["hard_objective"][i] = float(h)
        if self.rows["paths"]:
            self.rows["paths"][-1] += paths

    def dataset(self, prob: Problem, before: Evaluation, after: Evaluation) -> xr.Dataset:
        return _trace(prob, self.rows, before, after)


def _trace(prob: Problem, rows: dict[str, list], before: Evaluation, after: Evaluation) -> xr.Dataset:
    n = len(rows["phase"])
    values = np.stack(rows["value"]) if n else np.zeros((0, len(prob.names)))
    data = {
        "objective": ("iteration", np.asarray(rows["objective"], float),
                      {"long_name": "training objective: hard rules (global phase, best of the generation) or "
                                    "smoothed (gradient phase)"}),
        "hard_objective": ("iteration", np.asarray(rows["hard_objective"], float),
                           {"long_name": "hard-rule objective on the training paths at the row's values"}),
        "grad_norm": ("iteration", np.asarray(rows["grad_norm"], float),
                      {"long_name": "norm of the gradient with respect to the controls (gradient phase)"}),
        "temperature": ("iteration", np.asarray(rows["temperature"], float),
                        {"long_name": "width of the smooth relaxations (gradient phase)"}),
        "paths_simulated": ("iteration", np.cumsum(np.asarray(rows["paths"], np.int64)),
                            {"long_name": "simulated paths so far (a forward-mode tangent counts as a path)",
                             "units": "1"}),
        "non_finite": ("iteration", np.asarray(rows["non_finite"], np.int64),
                       {"long_name": "non-finite evaluations (CMA-ES candidates ranked worst; gradient: "
                                     "stepped back)", "units": "1"}),
        "value": (("iteration", "parameter"), values,
                  {"long_name": "control values: the generation's best candidate or the iterate"}),
    }
    attrs = {"stresslab_version": __version__, "target": prob.calibration.target,
             "measure": prob.calibration.measure, "method": prob.calibration.method}
    for name, ev in (("before", before), ("after", after)):
        attrs.update({f"holdout_{name}": ev.objective, f"holdout_{name}_lower": ev.lower,
                      f"holdout_{name}_upper": ev.upper})
    attrs["holdout_paths"] = before.paths
    return xr.Dataset(data, coords={"iteration": np.arange(n), "phase": ("iteration", np.asarray(rows["phase"], str)),
                                    "parameter": list(prob.names),
                                    "lower": ("parameter", prob.lower), "upper": ("parameter", prob.upper)},
                      attrs=attrs)


def _calibrated_config(config, overrides: Sequence[str], values: Mapping[str, float]) -> dict[str, Any]:
    raw = copy.deepcopy(load_config(config, overrides).resolved)
    for name, value in values.items():
        parameters.set_in_config(raw, name, value)
    load_config(raw)  # the calibrated config must validate
    return raw
