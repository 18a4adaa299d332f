"""The optimisation loop: optax on bounded controls, a temperature schedule, and honest evaluation.

Every iteration uses the same training paths (common random numbers), so the
optimiser sees a deterministic function. Before and after, the objective is
re-evaluated with the hard rules on fresh held-out paths (another seed), with a
bootstrap confidence interval over paths.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import tomli_w
import xarray as xr
from tqdm import tqdm

from stresslab import __version__
from stresslab.calibrate import parameters
from stresslab.calibrate.objective import Problem, evaluator, problem, total
from stresslab.config.loading import load_config
from stresslab.config.schema import Config
from stresslab.engine.runner import precision
from stresslab.errors import StresslabError

BOOTSTRAP = 400
"""Bootstrap resamples of the held-out paths for the confidence interval."""
CONFIDENCE = 0.95
HOLDOUT_SEED_OFFSET = 1_000_003
"""Held-out paths use seed + this offset: fresh random numbers, never the training paths."""


@dataclass(frozen=True)
class Evaluation:
    """Hard-rule objective on held-out paths with a bootstrap confidence interval."""

    objective: float
    lower: float
    upper: float
    paths: int


@dataclass(frozen=True)
class CalibrationResult:
    """What ``calibrate`` returns.

    Attributes:
        values: tuned controls by config path.  initial: the config's values.
        trace: the optimisation trace, an ``xarray.Dataset`` along ``iteration``.
        before, after: hard-rule held-out evaluations at the initial and tuned values.
        config: the calibrated config as a plain dict (``stresslab run`` accepts it).
    """

    values: dict[str, float]
    initial: dict[str, float]
    trace: xr.Dataset
    before: Evaluation
    after: Evaluation
    config: dict[str, Any]

    def to_toml(self) -> str:
        return tomli_w.dumps(self.config)


def _schedule(start: float, end: float, iterations: int) -> np.ndarray:
    """Temperatures falling geometrically from ``start`` to ``end``."""
    return np.geomspace(start, end, iterations) if iterations > 1 else np.array([end])


def _optimizer(name: str, learning_rate: float) -> optax.GradientTransformation:
    return getattr(optax, name)(learning_rate)


def evaluate(prob: Problem, values: Mapping[str, float], *, paths: int, seed: int) -> Evaluation:
    """Hard-rule objective at ``values`` on ``paths`` held-out paths, with a bootstrap CI."""
    ev = evaluator(prob, paths=paths, seed=seed)
    dtype = jnp.dtype(prob.config.simulation.dtype)
    out = ev.per_path(jnp.asarray([values[n] for n in prob.names], dtype))
    point = float(total(prob.calibration, out, None))
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, paths, size=(BOOTSTRAP, paths))
    samples = [float(total(prob.calibration, {k: v[i] for k, v in out.items()}, None)) for i in picks]
    alpha = (1 - CONFIDENCE) / 2
    lower, upper = np.quantile(samples, [alpha, 1 - alpha])
    return Evaluation(point, float(lower), float(upper), paths)


def calibrate(config: str | Path | Mapping[str, Any] | Config, *, overrides: Sequence[str] = (),
              progress: bool = False) -> CalibrationResult:
    """Tune the controls of ``config``'s ``[calibration]`` section by gradient descent.

    Returns:
        a :class:`CalibrationResult`: tuned values, the trace (objective, gradient norm,
        temperature and each control per iteration), held-out hard-rule evaluations
        before and after, and the calibrated config.

    Raises:
        ConfigError / ValueError: the config or its calibration section is unusable.
    """
    prob = problem(config, overrides)
    cal = prob.calibration
    seed = prob.config.simulation.seed
    with precision(prob.config.simulation.dtype):
        dtype = jnp.dtype(prob.config.simulation.dtype)
        lower, upper = prob.lower, prob.upper
        u = jnp.asarray([parameters.to_unconstrained(prob.initial[n], lo, hi)
                         for n, lo, hi in zip(prob.names, lower, upper, strict=True)], dtype)
        ev = evaluator(prob, paths=cal.paths, seed=seed)
        optimizer = _optimizer(cal.optimizer, cal.learning_rate)
        state = optimizer.init(u)
        temperatures = _schedule(cal.temperature_start, cal.temperature_end, cal.iterations)
        lo, hi = jnp.asarray(lower, dtype), jnp.asarray(upper, dtype)
        history: dict[str, list[float]] = {"objective": [], "grad_norm": [], "temperature": []}
        path_history: list[np.ndarray] = []
        with tqdm(total=cal.iterations, disable=not progress, desc="calibrating", dynamic_ncols=True) as bar:
            for tau in temperatures:
                values = parameters.to_bounded(u, lo, hi)
                value, grad_values = ev.value_and_grad(values, float(tau))
                grad_u = grad_values * (hi - lo) * jax.nn.sigmoid(u) * (1 - jax.nn.sigmoid(u))
                if not (jnp.isfinite(value) and jnp.all(jnp.isfinite(grad_u))):
                    raise StresslabError(f"calibration: non-finite objective or gradient at iteration "
                                             f"{len(path_history)} (values {np.asarray(values)})")
                updates, state = optimizer.update(grad_u, state, u)
                u = optax.apply_updates(u, updates)
                norm = float(jnp.linalg.norm(grad_values))
                history["objective"].append(float(value))
                history["grad_norm"].append(norm)
                history["temperature"].append(float(tau))
                path_history.append(np.asarray(values, dtype=np.float64))
                bar.set_postfix(objective=f"{float(value):.4g}", grad_norm=f"{norm:.3g}")
                bar.update(1)
        tuned = np.asarray(parameters.to_bounded(u, lo, hi), dtype=np.float64)
        values_out = {n: float(v) for n, v in zip(prob.names, tuned, strict=True)}
        holdout = seed + HOLDOUT_SEED_OFFSET
        before = evaluate(prob, prob.initial, paths=cal.holdout_paths, seed=holdout)
        after = evaluate(prob, values_out, paths=cal.holdout_paths, seed=holdout)
    trace = _trace(prob, history, np.stack(path_history), before, after)
    return CalibrationResult(values_out, dict(prob.initial), trace, before, after,
                             _calibrated_config(config, overrides, values_out))


def _trace(prob: Problem, history: dict[str, list[float]], values: np.ndarray, before: Evaluation,
           after: Evaluation) -> xr.Dataset:
    iteration = np.arange(values.shape[0])
    data = {
        "objective": ("iteration", np.asarray(history["objective"]),
                      {"long_name": "smoothed objective on the training paths"}),
        "grad_norm": ("iteration", np.asarray(history["grad_norm"]),
                      {"long_name": "norm of the gradient with respect to the controls"}),
        "temperature": ("iteration", np.asarray(history["temperature"]),
                        {"long_name": "width of the smooth relaxations"}),
        "value": (("iteration", "parameter"), values, {"long_name": "control values at the iteration's start"}),
    }
    attrs = {"stresslab_version": __version__, "target": prob.calibration.target,
             "measure": prob.calibration.measure}
    for name, ev in (("before", before), ("after", after)):
        attrs.update({f"holdout_{name}": ev.objective, f"holdout_{name}_lower": ev.lower,
                      f"holdout_{name}_upper": ev.upper})
    attrs["holdout_paths"] = before.paths
    return xr.Dataset(data, coords={"iteration": iteration, "parameter": list(prob.names),
                                    "lower": ("parameter", prob.lower), "upper": ("parameter", prob.upper)},
                      attrs=attrs)


def _calibrated_config(config, overrides: Sequence[str], values: Mapping[str, float]) -> dict[str, Any]:
    raw = copy.deepcopy(load_config(config, overrides).resolved)
    for name, value in values.items():
        parameters.set_in_config(raw, name, value)
    load_config(raw)  # the calibrated config must validate
    return raw
