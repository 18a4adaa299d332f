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
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from stresslab.calibrate import parameters
from stresslab.config.loading import ConfigError, load_config
from stresslab.config.schema import Calibration, Config
from stresslab.engine import xla_options
from stresslab.engine.devices import PATH_AXIS, Devices, select
from stresslab.engine.distributed import Cluster, Messages, span
from stresslab.engine.runner import LANE_PAD, auto_chunk, per_device, precision
from stresslab.engine.scan import simulate_chunk
from stresslab.market import rules
from stresslab.market.model import Params, Static, build

SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class Problem:
    """A calibration problem: its scenarios (one, or the points of a sweep), controls and objective settings.

    ``config`` is the first scenario (simulation settings, seed, dtype); ``labels`` name the scenarios
    by their swept values ("" for a single scenario)."""

    config: Config
    calibration: Calibration
    names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    initial: dict[str, float]
    scenarios: tuple[Config, ...] = ()
    labels: tuple[str, ...] = ("",)


def problem(config: str | Path | Mapping[str, Any] | Config, overrides: Sequence[str] = ()) -> Problem:
    """Load a config with a ``[calibration]`` section and check its controls."""
    loaded = load_config(config, overrides)
    cfg = loaded.scenarios[0]
    if cfg.calibration is None:
        raise ConfigError("the config has no [calibration] section (see README, Calibration)")
    cal = cfg.calibration
    if len(loaded.scenarios) > 1 and cal.aggregate is None:
        raise ConfigError("calibration over a sweep needs calibration.aggregate = 'mean' or 'max' (one policy for "
                          "all its scenarios); or remove the sweep (a list where one value is expected)")
    names = tuple(p.name for p in cal.parameters)
    initial = {p.name: parameters.config_value(cfg, p.name) for p in cal.parameters}
    for scenario in loaded.scenarios[1:]:
        for name in names:
            if parameters.config_value(scenario, name) != initial[name]:
                raise ConfigError(f"calibration.parameters: {name} is swept; a tuned control needs one start value")
    for p in cal.parameters:
        if not p.lower < initial[p.name] < p.upper:
            raise ConfigError(f"calibration.parameters: {p.name} starts at {initial[p.name]:g}, which must lie "
                             f"strictly between lower = {p.lower:g} and upper = {p.upper:g}")
    labels = tuple(", ".join(f"{k}={v[i]:g}" if isinstance(v[i], float) else f"{k}={v[i]}"
                             for k, v in loaded.coords.items()) for i in range(len(loaded.scenarios)))
    return Problem(cfg, cal, names, np.array([p.lower for p in cal.parameters]),
                   np.array([p.upper for p in cal.parameters]), initial, tuple(loaded.scenarios), labels)


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


def parts(cal: Calibration, out: Mapping[str, jnp.ndarray], temperature: jnp.ndarray | None
          ) -> dict[str, jnp.ndarray]:
    """The objective's terms from per-path outputs: ``risk`` of the target, ``halt_cost`` (halt_cost x mean
    halted hours) and ``haircut_cost`` (haircut_cost x mean time-averaged haircut), in objective units."""
    return {"risk": risk(cal, out[cal.target], temperature),
            "halt_cost": cal.halt_cost * jnp.mean(out["halted_time"]) / SECONDS_PER_HOUR,
            "haircut_cost": cal.haircut_cost * jnp.mean(out["mean_haircut"])}


def total(cal: Calibration, out: Mapping[str, jnp.ndarray], temperature: jnp.ndarray | None) -> jnp.ndarray:
    """Objective from per-path outputs: risk of the target plus the costs of halts and haircuts."""
    terms = parts(cal, out, temperature)
    return terms["risk"] + terms["halt_cost"] + terms["haircut_cost"]


def _slice(params: Params, static: Static, names: tuple[str, ...], values: jnp.ndarray, temperature: jnp.ndarray,
           key: jax.Array, first: jnp.ndarray, size: int) -> dict[str, jnp.ndarray]:
    """Per-path outputs of paths ``first .. first + size - 1`` with the controls set to ``values``."""
    params = params.replace(rules=rules.RulesParams(temperature.astype(params.rules.temperature.dtype)))
    for i, name in enumerate(names):
        params = parameters.apply(params, static, name, values[i])
    return simulate_chunk(params, static, key, first, size)[0]


def _batch_slice(params: Params, static: Static, names: tuple[str, ...], candidates: jnp.ndarray,
                 temperature: jnp.ndarray, key: jax.Array, first: jnp.ndarray, size: int) -> dict[str, jnp.ndarray]:
    """Per-path outputs (K, size) of every candidate (K, controls) on the same paths: one vmapped simulation."""
    return jax.vmap(lambda v: _slice(params, static, names, v, temperature, key, first, size))(candidates)


def _tangent_slice(params: Params, static: Static, names: tuple[str, ...], values: jnp.ndarray,
                   temperature: jnp.ndarray, key: jax.Array, first: jnp.ndarray, size: int):
    """Per-path outputs (size,) and their forward-mode tangents (controls, size), one tangent per control."""
    def f(v):
        return _slice(params, static, names, v, temperature, key, first, size)

    tangents = jnp.eye(values.shape[0], dtype=values.dtype)
    out, tangent = jax.vmap(lambda t: jax.jvp(f, (values,), (t,)))(tangents)
    return {k: v[0] for k, v in out.items()}, tangent


KERNELS = {"batch": (_batch_slice, P(None, PATH_AXIS)),
           "tangent": (_tangent_slice, (P(PATH_AXIS), P(None, PATH_AXIS)))}
"""What a slice of paths computes (candidates' outputs, or outputs and tangents), and where its path axis is."""


@partial(jax.jit, static_argnames=("kind", "static", "names", "size"), compiler_options=xla_options.KERNEL)
def _on_device(kind: str, params: Params, static: Static, names: tuple[str, ...], controls: jnp.ndarray,
               temperature: jnp.ndarray, key: jax.Array, first: jnp.ndarray, size: int):
    """``KERNELS[kind]`` on ``size`` paths from ``first``, on the device its inputs are on."""
    return KERNELS[kind][0](params, static, names, controls, temperature, key, first, size)


@partial(jax.jit, static_argnames=("kind", "static", "names", "size", "mesh"),
         compiler_options=xla_options.KERNEL)
def _on_mesh(kind: str, params: Params, static: Static, names: tuple[str, ...], controls: jnp.ndarray,
             temperature: jnp.ndarray, key: jax.Array, firsts: jax.Array, size: int, mesh: Mesh):
    """``KERNELS[kind]`` on every device of ``mesh`` at once (one ``shard_map`` program): device ``d`` runs
    ``size`` paths from ``firsts[d]``; outputs hold the devices' paths side by side, in order."""
    body, spec = KERNELS[kind]

    def local(params, controls, temperature, key, first):
        return body(params, static, names, controls, temperature, key, first[0], size)

    # check_vma=False for the reason given in engine.devices._sharded_chunk.
    return jax.shard_map(local, mesh=mesh, in_specs=(P(), P(), P(), P(), P(PATH_AXIS)), out_specs=spec,
                         check_vma=False)(params, controls, temperature, key, firsts)


@dataclass(frozen=True)
class Evaluator:
    """Evaluates one problem's objective on fixed paths (common random numbers), through the runner's devices.

    The paths are cut into groups of one slice per device, each slice no larger than one device's memory
    allows (``simulation.chunk_size``, or sized from device memory for ``"auto"``); a group runs as one
    ``shard_map`` program over the devices (compiled once for all of them), one device as a plain call.
    Memory is bounded by the slice, not by the path count, and since results do not depend on the chunk
    size, nor do they on the device count. The risk measure is taken over all paths on the host.

    With ``messages`` of a multi-process run (``jax.distributed``), each process runs a contiguous share
    of the paths on its own devices and the per-path outputs are exchanged (``Messages.share``), so
    every process holds all paths and computes the same objective.
    """

    problem: Problem
    params: Params
    static: Static
    paths: int
    seed: int
    devices: Devices
    messages: Messages | None = None

    @property
    def smooth_rules(self) -> rules.Smooth:
        """The relaxed rules, with the trigger shape of ``calibration.relaxation``."""
        return rules.Smooth(trigger=self.problem.calibration.relaxation)

    @property
    def outputs(self) -> tuple[str, ...]:
        """The per-path outputs the objective's terms read (``parts``); only these leave the devices."""
        return tuple(dict.fromkeys((self.problem.calibration.target, "halted_time", "mean_haircut")))

    def slice_size(self, multiplicity: int, paths: int | None = None) -> int:
        """Paths per device and kernel call when each of ``paths`` paths (default: all) is simulated
        ``multiplicity`` times at once (candidates or tangents): the fewest groups of one slice per device
        that fit, balanced."""
        paths = self.paths if paths is None else paths
        chunk = self.problem.config.simulation.chunk_size
        if chunk == "auto":
            chunk = auto_chunk(self.static, paths * multiplicity, Devices(self.devices.devices[:1]))
            chunk = max(1, chunk // multiplicity)
        chunk, count = per_device(chunk, 1), len(self.devices)
        groups = max(1, -(-paths // (chunk * count)))
        return per_device(-(-paths // groups), count)

    def _map(self, kind: str, static: Static, controls: jnp.ndarray, temperature: jnp.ndarray,
             multiplicity: int) -> tuple[dict[str, np.ndarray], ...]:
        """``KERNELS[kind]`` over all paths: its outputs (``batch``: per-path outputs; ``tangent``: outputs,
        tangents), each joined along the last (path) axis over every group, device and process.

        Each process takes a contiguous run of whole ``LANE_PAD`` blocks (``span``), the same whatever its
        devices and memory, and cuts it into its own groups; the last group may run past the run's end."""
        key, names = jax.random.key(self.seed), self.problem.names
        cluster = Cluster() if self.messages is None else self.messages.cluster
        start, stop = span(self.paths, LANE_PAD, cluster)
        size, count = self.slice_size(multiplicity, stop - start), len(self.devices)
        parts = []
        for first in range(start, stop, size * count):
            if count == 1:
                with jax.default_device(self.devices.devices[0]):
                    out = _on_device(kind, self.params, static, names, controls, temperature, key,
                                     np.uint32(first), size)
            else:
                firsts = first + size * np.arange(count, dtype=np.uint32)
                out = _on_mesh(kind, self.params, static, names, controls, temperature, key, firsts, size,
                               self.devices.mesh)
            parts.append(out if kind == "tangent" else (out,))
        local = {f"{i}:{k}": np.concatenate([np.asarray(p[i][k]) for p in parts], axis=-1)[..., :stop - start]
                 for i in range(len(parts[0]) if parts else 0) for k in self.outputs}
        shares = [local] if self.messages is None else self.messages.share(local)
        joined = {k: np.concatenate([s[k] for s in shares if s], axis=-1) for k in next(s for s in shares if s)}
        return tuple({k.split(":", 1)[1]: v for k, v in joined.items() if k.startswith(f"{i}:")}
                     for i in range(2 if kind == "tangent" else 1))

    def _t(self, temperature: float | None) -> jnp.ndarray:
        return jnp.asarray(1.0 if temperature is None else temperature, self.params.price.s0.dtype)

    def values(self, candidates: jnp.ndarray, temperature: float | None = None) -> np.ndarray:
        """Objective at each row of ``candidates`` (K, controls), all simulated together (K,); hard rules when
        ``temperature`` is None, else the smooth rules at that temperature."""
        static = self.static.replace(rules=rules.Hard() if temperature is None else self.smooth_rules)
        t = self._t(temperature)
        candidates = jnp.asarray(candidates, self.params.price.s0.dtype)
        out, = self._map("batch", static, candidates, t, candidates.shape[0])
        tau = None if temperature is None else t
        return np.asarray(jax.vmap(lambda o: total(self.problem.calibration, o, tau))(out))

    def value(self, values: jnp.ndarray, temperature: float | None) -> jnp.ndarray:
        """Objective at ``values`` (controls in ``problem.names`` order); hard rules when ``temperature`` is None."""
        return jnp.asarray(self.values(jnp.asarray(values)[None], temperature)[0])

    def value_and_grad(self, values: jnp.ndarray, temperature: float) -> tuple[jnp.ndarray, jnp.ndarray]:
        """Smoothed objective and its gradient with respect to the controls (forward mode through the kernel,
        then through the risk measure over all paths)."""
        static, names = self.static.replace(rules=self.smooth_rules), self.problem.names
        t = self._t(temperature)
        out, tangent = self._map("tangent", static, jnp.asarray(values), t, 1 + len(names))
        cal = self.problem.calibration
        value, jac = jax.vmap(lambda dt: jax.jvp(lambda o: total(cal, o, t), (out,), (dt,)))(tangent)
        return value[0], jac

    def non_finite(self, values: jnp.ndarray, temperature: float) -> str:
        """Where the smoothed objective's inputs or derivatives are non-finite at ``values``: the target, the
        controls whose tangents are, and the first paths (empty when all are finite)."""
        static, names = self.static.replace(rules=self.smooth_rules), self.problem.names
        t = self._t(temperature)
        target = self.problem.calibration.target
        out, tangent = (part[target] for part in self._map("tangent", static, jnp.asarray(values), t, 1 + len(names)))
        bad = ~np.isfinite(out) | ~np.all(np.isfinite(tangent), 0)
        if not bad.any():
            return ""
        controls = [n for n, row in zip(names, tangent, strict=True) if not np.all(np.isfinite(row))]
        first = np.flatnonzero(bad)[:5].tolist()
        return (f"{target} is non-finite on {bad.sum()} of {self.paths} paths (first: {first})"
                + (f", its derivative with respect to {', '.join(controls)}" if controls else ""))

    def per_path(self, values: jnp.ndarray) -> dict[str, np.ndarray]:
        """Hard-rule per-path ``outputs`` at ``values`` (for held-out evaluation)."""
        static, t = self.static.replace(rules=rules.Hard()), self._t(None)
        candidates = jnp.asarray(values, self.params.price.s0.dtype)[None]
        out, = self._map("batch", static, candidates, t, 1)
        return {k: v[0] for k, v in out.items()}


@dataclass(frozen=True)
class Group:
    """The objective over a problem's scenarios: each scenario's :class:`Evaluator`, aggregated by
    ``calibration.aggregate`` (``mean``; ``max``, the worst case, whose gradient is the worst scenario's)."""

    evaluators: tuple[Evaluator, ...]
    aggregate: str

    @property
    def paths(self) -> int:
        """Simulated paths per evaluation, over all scenarios."""
        return sum(ev.paths for ev in self.evaluators)

    def _combine(self, values: np.ndarray) -> np.ndarray:
        return values.mean(0) if self.aggregate == "mean" else values.max(0)

    def values(self, candidates: jnp.ndarray, temperature: float | None = None) -> np.ndarray:
        """Aggregated objective at each row of ``candidates`` (K,)."""
        return self._combine(np.stack([ev.values(candidates, temperature) for ev in self.evaluators]))

    def value(self, values: jnp.ndarray, temperature: float | None) -> jnp.ndarray:
        return jnp.asarray(self.values(jnp.asarray(values)[None], temperature)[0])

    def value_and_grad(self, values: jnp.ndarray, temperature: float) -> tuple[jnp.ndarray, jnp.ndarray]:
        """Aggregated smoothed objective and its gradient."""
        each = [ev.value_and_grad(values, temperature) for ev in self.evaluators]
        v = jnp.stack([e[0] for e in each])
        g = jnp.stack([e[1] for e in each])
        if self.aggregate == "mean":
            return v.mean(0), g.mean(0)
        worst = jnp.argmax(v)
        return v[worst], g[worst]

    def non_finite(self, values: jnp.ndarray, temperature: float) -> str:
        found = [(ev.problem, ev.non_finite(values, temperature)) for ev in self.evaluators]
        return "; ".join(f"scenario {label}: {text}" for (prob, text), label in
                         zip(found, self.evaluators[0].problem.labels, strict=True) if text)


def evaluator(prob: Problem, *, paths: int, seed: int, devices: Devices | None = None,
              messages: Messages | None = None) -> Evaluator | Group:
    """Build the kernel inputs of ``prob`` once, for evaluations on ``paths`` paths drawn with ``seed``
    on ``devices`` (default: all local devices of the default kind), split over the processes of
    ``messages`` when given. A problem over a sweep gives a :class:`Group` of one evaluator per
    scenario, each on ``paths`` paths."""
    devices = devices or select()
    built = []
    for scenario in prob.scenarios or (prob.config,):
        with precision(scenario.simulation.dtype):
            params, static = build(scenario)
        built.append(Evaluator(replace(prob, config=scenario), params, static, paths, seed, devices, messages))
    if len(built) == 1:
        return built[0]
    return Group(tuple(built), prob.calibration.aggregate)


def objective(config: str | Path | Mapping[str, Any] | Config, *, smooth: bool = True, paths: int | None = None,
              seed: int | None = None, temperature: float | None = None, overrides: Sequence[str] = (),
              device: Literal["cpu", "gpu"] | None = None,
              num_devices: int | None = None) -> Callable[[Mapping[str, Any]], jnp.ndarray]:
    """The calibration objective of ``config`` as a function of a dict of control values.

    Args:
        config: a config (path, dict or loaded) with a ``[calibration]`` section.
        smooth: relax the hard rules (differentiable with ``jax.grad``); False: the hard rules.
        paths: paths per evaluation (default ``calibration.paths``); the same paths every call.
        seed: random seed (default ``simulation.seed``).
        temperature: relaxation width (default ``calibration.temperature_end``).
        device, num_devices: where the paths run (default: all local devices of the default kind);
            the value does not depend on the device count.

    Returns:
        ``f(values) -> scalar`` with ``f.initial`` the config's starting values and
        ``f.names`` the controls. Under ``jax.enable_x64`` for float64 configs.
    """
    prob = problem(config, overrides)
    ev = evaluator(prob, paths=paths or prob.calibration.paths,
                   seed=prob.config.simulation.seed if seed is None else seed, devices=select(device, num_devices))
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
