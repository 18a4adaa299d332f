"""The calibration objective: a risk measure of simulated outcomes plus the cost of the controls.

``objective(config)`` returns a function of a dict of control values to a scalar.
With ``smooth=True`` the hard rules are relaxed (``market/rules.py``) and the
function is differentiable: derivatives are computed in forward mode (one tangent
per control, all at once), which keeps memory at O(paths x controls) for any
horizon, where reverse mode through ``lax.scan`` would store every step (or need
checkpointing) and cannot pass through the cascade's ``while_loop`` at all.
A ``custom_vjp`` wraps the forward-mode Jacobian, so ``jax.grad`` works as usual.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from stresslab.calibrate import parameters
from stresslab.config.loading import ConfigError, load_config
from stresslab.config.schema import Calibration, Config
from stresslab.engine.runner import LANE_PAD, precision
from stresslab.engine.scan import simulate_chunk
from stresslab.market import rules
from stresslab.market.model import Params, Static, build

SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class Problem:
    """A calibration problem: one scenario, its controls and objective settings."""

    config: Config
    calibration: Calibration
    names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    initial: dict[str, float]


def problem(config: str | Path | Mapping[str, Any] | Config, overrides: Sequence[str] = ()) -> Problem:
    """Load a config with a ``[calibration]`` section and check its controls."""
    scenarios = load_config(config, overrides)
    if len(scenarios.scenarios) != 1:
        raise ConfigError("calibration needs a single scenario; remove the sweep (a list where one value is expected)")
    cfg = scenarios.scenarios[0]
    if cfg.calibration is None:
        raise ConfigError("the config has no [calibration] section (see README, Calibration)")
    cal = cfg.calibration
    names = tuple(p.name for p in cal.parameters)
    initial = {p.name: parameters.config_value(cfg, p.name) for p in cal.parameters}
    for p in cal.parameters:
        if not p.lower < initial[p.name] < p.upper:
            raise ConfigError(f"calibration.parameters: {p.name} starts at {initial[p.name]:g}, which must lie "
                             f"strictly between lower = {p.lower:g} and upper = {p.upper:g}")
    return Problem(cfg, cal, names, np.array([p.lower for p in cal.parameters]),
                   np.array([p.upper for p in cal.parameters]), initial)


def risk(cal: Calibration, x: jnp.ndarray, temperature: jnp.ndarray | None) -> jnp.ndarray:
    """The calibration's risk measure of per-path outcomes ``x`` (paths,); smooth when ``temperature`` is given."""
    n = x.shape[0]
    if cal.measure == "mean":
        return jnp.mean(x)
    if cal.measure == "prob":
        if temperature is None:
            return jnp.mean((x > cal.threshold).astype(x.dtype))
        scale = abs(cal.threshold) if cal.target == "bad_debt" and cal.threshold else 1.0
        return jnp.mean(jax.nn.sigmoid((x - cal.threshold) / (temperature * scale)))
    ordered = jnp.sort(x)
    if cal.measure == "var":
        return ordered[min(max(math.ceil(cal.level * n), 1), n) - 1]
    tail = min(max(n - math.floor(cal.level * n), 1), n)
    return jnp.mean(ordered[n - tail:])


def total(cal: Calibration, out: Mapping[str, jnp.ndarray], temperature: jnp.ndarray | None) -> jnp.ndarray:
    """Objective from per-path outputs: risk of the target plus the costs of halts and haircuts."""
    value = risk(cal, out[cal.target], temperature)
    value = value + cal.halt_cost * jnp.mean(out["halted_time"]) / SECONDS_PER_HOUR
    return value + cal.haircut_cost * jnp.mean(out["mean_haircut"])


def _outputs(params: Params, static: Static, names: tuple[str, ...], values: jnp.ndarray, seed: int,
             paths: int) -> dict[str, jnp.ndarray]:
    for i, name in enumerate(names):
        params = parameters.apply(params, static, name, values[i])
    compiled = -(-paths // LANE_PAD) * LANE_PAD
    out, _ = simulate_chunk(params, static, jax.random.key(seed), jnp.uint32(0), compiled)
    return {k: v[:paths] for k, v in out.items()}


@partial(jax.jit, static_argnames=("static", "names", "cal", "paths", "seed", "smooth"))
def _value(params: Params, static: Static, names: tuple[str, ...], cal: Calibration, values: jnp.ndarray,
           temperature: jnp.ndarray, paths: int, seed: int, smooth: bool) -> jnp.ndarray:
    params = params.replace(rules=rules.RulesParams(temperature.astype(params.rules.temperature.dtype)))
    out = _outputs(params, static, names, values, seed, paths)
    return total(cal, out, temperature if smooth else None)


@partial(jax.jit, static_argnames=("static", "names", "cal", "paths", "seed"))
def _values(params: Params, static: Static, names: tuple[str, ...], cal: Calibration, candidates: jnp.ndarray,
            temperature: jnp.ndarray, paths: int, seed: int) -> jnp.ndarray:
    """Hard-rule objective of every candidate (K, controls) on the same paths: one vmapped simulation."""
    return jax.vmap(lambda v: _value(params, static, names, cal, v, temperature, paths, seed, False))(candidates)


@partial(jax.jit, static_argnames=("static", "names", "cal", "paths", "seed"))
def _value_and_jacobian(params: Params, static: Static, names: tuple[str, ...], cal: Calibration,
                        values: jnp.ndarray, temperature: jnp.ndarray, paths: int, seed: int):
    """Value and gradient of the smoothed objective by forward mode, one tangent per control."""
    def f(v):
        return _value(params, static, names, cal, v, temperature, paths, seed, True)

    tangents = jnp.eye(values.shape[0], dtype=values.dtype)
    value, jac = jax.vmap(lambda t: jax.jvp(f, (values,), (t,)))(tangents)
    return value[0], jac


@dataclass(frozen=True)
class Evaluator:
    """Evaluates one problem's objective on fixed paths (common random numbers)."""

    problem: Problem
    params: Params
    static: Static
    paths: int
    seed: int

    def value(self, values: jnp.ndarray, temperature: float | None) -> jnp.ndarray:
        """Objective at ``values`` (controls in ``problem.names`` order); hard rules when ``temperature`` is None."""
        smooth = temperature is not None
        static = self.static.replace(rules=rules.Smooth() if smooth else rules.Hard())
        t = jnp.asarray(temperature if smooth else 1.0, self.params.price.s0.dtype)
        return _value(self.params, static, self.problem.names, self.problem.calibration, values, t, self.paths,
                      self.seed, smooth)

    def values(self, candidates: jnp.ndarray) -> np.ndarray:
        """Hard-rule objective at each row of ``candidates`` (K, controls), in one batched call (K,)."""
        static = self.static.replace(rules=rules.Hard())
        t = jnp.asarray(1.0, self.params.price.s0.dtype)
        return np.asarray(_values(self.params, static, self.problem.names, self.problem.calibration, candidates, t,
                                  self.paths, self.seed))

    def value_and_grad(self, values: jnp.ndarray, temperature: float) -> tuple[jnp.ndarray, jnp.ndarray]:
        """Smoothed objective and its gradient with respect to the controls (forward mode)."""
        t = jnp.asarray(temperature, self.params.price.s0.dtype)
        return _value_and_jacobian(self.params, self.static.replace(rules=rules.Smooth()), self.problem.names,
                                   self.problem.calibration, values, t, self.paths, self.seed)

    def per_path(self, values: jnp.ndarray) -> dict[str, np.ndarray]:
        """Hard-rule per-path outputs at ``values`` (for held-out evaluation)."""
        out = jax.jit(_outputs, static_argnames=("static", "names", "seed", "paths"))(
            self.params, self.static.replace(rules=rules.Hard()), self.problem.names, values, self.seed, self.paths)
        return {k: np.asarray(v) for k, v in out.items()}


def evaluator(prob: Problem, *, paths: int, seed: int) -> Evaluator:
    """Build the kernel inputs of ``prob`` once, for evaluations on ``paths`` paths drawn with ``seed``."""
    with precision(prob.config.simulation.dtype):
        params, static = build(prob.config)
    return Evaluator(prob, params, static, paths, seed)


def objective(config: str | Path | Mapping[str, Any] | Config, *, smooth: bool = True, paths: int | None = None,
              seed: int | None = None, temperature: float | None = None,
              overrides: Sequence[str] = ()) -> Callable[[Mapping[str, Any]], jnp.ndarray]:
    """The calibration objective of ``config`` as a function of a dict of control values.

    Args:
        config: a config (path, dict or loaded) with a ``[calibration]`` section.
        smooth: relax the hard rules (differentiable with ``jax.grad``); False: the hard rules.
        paths: paths per evaluation (default ``calibration.paths``); the same paths every call.
        seed: random seed (default ``simulation.seed``).
        temperature: relaxation width (default ``calibration.temperature_end``).

    Returns:
        ``f(values) -> scalar`` with ``f.initial`` the config's starting values and
        ``f.names`` the controls. Under ``jax.enable_x64`` for float64 configs.
    """
    prob = problem(config, overrides)
    ev = evaluator(prob, paths=paths or prob.calibration.paths,
                   seed=prob.config.simulation.seed if seed is None else seed)
    tau = prob.calibration.temperature_end if temperature is None else temperature
    dtype = jnp.dtype(prob.config.simulation.dtype)

    @jax.custom_vjp
    def f_vector(v):
        return ev.value(v, tau if smooth else None)

    def f_fwd(v):
        if not smooth:
            raise ValueError("objective(smooth=False) uses the hard rules and has no useful gradient")
        value, jac = ev.value_and_grad(v, tau)
        return value, jac

    def f_bwd(jac, g):
        return (g * jac,)

    f_vector.defvjp(f_fwd, f_bwd)

    def f(values: Mapping[str, Any]) -> jnp.ndarray:
        missing = [n for n in prob.names if n not in values]
        if missing:
            raise KeyError(f"objective: no value for {missing}; expected keys {list(prob.names)}")
        return f_vector(jnp.stack([jnp.asarray(values[n], dtype) for n in prob.names]))

    f.initial = dict(prob.initial)
    f.names = prob.names
    return f
