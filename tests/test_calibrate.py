"""Calibration: exact gradients of the smoothed objective, convergence to a known optimum, honest
held-out improvement on a shipped config, and a calibrated config that runs."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import subprocess_env

import stresslab
from stresslab.calibrate import gradcheck, parameters
from stresslab.calibrate.loop import HOLDOUT_SEED_OFFSET, evaluate
from stresslab.calibrate.objective import Evaluator, evaluator, problem
from stresslab.engine.runner import precision
from stresslab.io import store

ROOT = Path(__file__).parent.parent


def gradient_config(law: str) -> dict:
    """A small float64 market where every tunable control matters: haircuts, the engine's order
    size, and a breaker level (drop and halt length). Halt lengths are not whole steps: at whole
    steps the relaxed halt countdown has a kink (left and right derivatives differ)."""
    return {
        "simulation": {"horizon": "40min", "dt": "1min", "dtype": "float64", "record_points": 4, "seed": 3},
        "market": {"sigma": 1.5, "shocks": [{"type": "gap", "at": "10min", "size": -0.05}]},
        "liquidity": {"depth": 2e6, "impact": law, "permanent_fraction": 0.5, "depletion": 0.5,
                      "recovery_half_life": "10min"},
        "position_grids": [{"side": "long", "notional": 2e7, "leverage_min": 5, "leverage_max": 40, "cohorts": 6,
                            "maintenance_margin": 0.01}],
        "liquidation": {"insurance_fund": 1e9, "max_order": 3e6},
        "haircuts": {"enabled": True, "base": 0.05, "vol_sensitivity": 0.01, "depth_sensitivity": 0.1, "cap": 0.8},
        "breakers": {"enabled": True, "levels": [{"drop": 0.08, "halt": 330.0}]},
        "calibration": {
            "measure": "es", "level": 0.9, "halt_cost": 0.02, "haircut_cost": 0.1, "paths": 64,
            "parameters": [
                {"name": "haircuts.base", "lower": 0.0, "upper": 0.5},
                {"name": "haircuts.vol_sensitivity", "lower": 0.0, "upper": 0.1},
                {"name": "liquidation.max_order", "lower": 1e5, "upper": 1e8},
                {"name": "breakers.levels.0.drop", "lower": 0.01, "upper": 0.5},
                {"name": "breakers.levels.0.halt", "lower": 60.0, "upper": 3600.0},
            ],
        },
    }


def central(f, x: dict, name: str, h: float) -> float:
    up, down = dict(x), dict(x)
    up[name] += h
    down[name] -= h
    return (float(f(up)) - float(f(down))) / (2 * h)


@pytest.mark.slow
@pytest.mark.parametrize("law,point", [("linear", 0), ("sqrt", 1), ("linear", 2)])
def test_gradient_matches_central_differences(law, point):
    shifts = [{}, {"haircuts.base": 0.12, "breakers.levels.0.halt": 430.0},
              {"liquidation.max_order": 1.5e6, "breakers.levels.0.drop": 0.06, "haircuts.vol_sensitivity": 0.03}]
    with jax.enable_x64(True):
        f = stresslab.objective(gradient_config(law), temperature=2e-3)
        x = {**f.initial, **shifts[point]}
        grad = jax.grad(f)(x)
        for name in f.names:
            h = 1e-8 * max(abs(x[name]), 1e-3)  # small: the relaxed objective curves sharply
            # central differences at h and h/2, Richardson-extrapolated: truncation error O(h^4)
            numeric = (4 * central(f, x, name, h / 2) - central(f, x, name, h)) / 3
            exact = float(grad[name])
            scale = max(abs(numeric), abs(exact), 1e-8 * abs(float(f(x))) / max(abs(x[name]), 1e-3))
            assert abs(exact - numeric) <= 1e-4 * scale, (name, exact, numeric)
        assert any(abs(float(g)) > 0 for g in grad.values())


def haircut_threshold_config(**calibration) -> dict:
    """A long at 10x with 5 % maintenance: a haircut h liquidates it at once iff h > h* = 1 - 0.05 x 10 = 0.5.
    A gap at 5 min then leaves bad debt of 5 % of its notional unless it was liquidated. Objective: mean bad
    debt + haircut_cost x haircut, minimised just above h*."""
    return {
        "simulation": {"steps": 10, "dt": "1min", "dtype": "float64", "record_points": 2},
        "market": {"sigma": 0.0, "shocks": [{"type": "gap", "at": "5min", "size": -0.15}]},
        "liquidity": {"enabled": False},
        "positions": [{"side": "long", "leverage": 10, "notional": 1e6, "maintenance_margin": 0.05}],
        "liquidation": {"penalty": 0.0, "insurance_fund": 1e9, "adl": False},
        "haircuts": {"enabled": True, "base": 0.3, "cap": 0.9},
        "calibration": {"target": "bad_debt", "measure": "mean", "haircut_cost": 1e4, "paths": 16,
                        "holdout_paths": 16, "iterations": 60, "learning_rate": 0.1, "temperature_start": 0.02,
                        "temperature_end": 1e-4,
                        "parameters": [{"name": "haircuts.base", "lower": 0.0, "upper": 0.9}], **calibration},
    }


@pytest.mark.slow
def test_converges_to_the_known_optimum():
    result = stresslab.calibrate(haircut_threshold_config())
    tuned = result.values["haircuts.base"]
    assert 0.5 < tuned < 0.53  # h* = 0.5, plus the relaxation's margin
    assert result.before.objective == pytest.approx(5e4 + 0.3e4)  # bad debt 5 % of 1e6 + 1e4 x 0.3
    assert result.before.terms == pytest.approx({"risk": 5e4, "halt_cost": 0.0, "haircut_cost": 0.3e4})
    assert result.after.objective == pytest.approx(1e4 * tuned)  # no bad debt, only the haircut's cost
    trace = result.trace
    assert trace.sizes["iteration"] == 12 + 60  # CMA-ES generations, then gradient iterations
    assert list(np.unique(trace.phase.values)) == ["global", "gradient"]
    gradient = trace.where(trace.phase == "gradient", drop=True)
    assert np.all(np.isfinite(gradient.grad_norm)) and np.all(np.isfinite(gradient.hard_objective))
    assert np.all(np.diff(trace.paths_simulated) > 0)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_heldout_objective_improves_on_a_shipped_config():
    overrides = ["calibration.iterations=6", "calibration.generations=3", "calibration.paths=256",
                 "calibration.holdout_paths=2000", "simulation.horizon=3h"]
    result = stresslab.calibrate(ROOT / "configs" / "calibration" / "haircuts_crypto.toml", overrides=overrides)
    assert result.after.upper < result.before.lower  # better, beyond the held-out confidence intervals
    assert result.trace.objective[-1] < result.trace.objective[0]


@pytest.mark.slow
def test_cli_writes_trace_and_a_calibrated_config_that_runs(cli_process, config_file):
    config = config_file(haircut_threshold_config(iterations=3), "threshold.toml")
    out = config.with_name("tuned")
    done = cli_process("calibrate", config, "--out", out)
    assert done.returncode == 0, done.stderr
    assert "held-out objective after" in done.stdout
    assert (out / "trace.zarr").is_dir()
    tuned = tomllib.loads((out / "calibrated.toml").read_text())
    trace = store.read(out / "trace.zarr")
    assert tuned["haircuts"]["base"] != 0.3
    assert list(trace.parameter.values) == ["haircuts.base"]
    ran = cli_process("run", out / "calibrated.toml", "--paths", "20")
    assert ran.returncode == 0, ran.stderr
    again = cli_process("calibrate", config, "--out", out)
    assert again.returncode == 2 and again.stderr.startswith("error:") and "--overwrite" in again.stderr


def test_bad_calibration_sections_are_named():
    raw = haircut_threshold_config()
    raw["calibration"]["parameters"] = [{"name": "market.sigma", "lower": 0, "upper": 1}]
    with pytest.raises(stresslab.ConfigError, match="cannot tune 'market.sigma'"):
        stresslab.objective(raw)
    raw = haircut_threshold_config()
    raw["calibration"]["parameters"] = [{"name": "haircuts.base", "lower": 0.4, "upper": 0.9}]
    with pytest.raises(stresslab.ConfigError, match="starts at 0.3, which must lie strictly between"):
        stresslab.objective(raw)
    raw = haircut_threshold_config()
    raw["calibration"]["parameters"] = [{"name": "breakers.levels.0.drop", "lower": 0.01, "upper": 0.5}]
    with pytest.raises(stresslab.ConfigError, match="needs breakers.enabled"):
        stresslab.objective(raw)
    raw = haircut_threshold_config()
    raw["positions"][0]["maintenance_margin"] = [0.05, 0.04]
    with pytest.raises(stresslab.ConfigError, match="calibration over a sweep needs calibration.aggregate"):
        stresslab.objective(raw)
    raw["calibration"]["aggregate"] = "max"
    raw["haircuts"]["base"] = [0.3, 0.4]
    with pytest.raises(stresslab.ConfigError, match="haircuts.base is swept"):
        stresslab.objective(raw)


@pytest.mark.parametrize("aggregate", ["max", "mean"])
def test_one_policy_for_a_sweep_protects_every_scenario(aggregate):
    """Two books: maintenance 5 % and 4 % at 10x, so a haircut h liquidates before the gap iff h > 0.5 and
    h > 0.6. Any h below 0.6 leaves the 4 % book with bad debt of 5 % of 1e6, which costs more than the
    haircut; both aggregates tune h to just above 0.6, and each scenario's held-out result is reported."""
    raw = haircut_threshold_config(aggregate=aggregate, iterations=20, generations=6)
    raw["positions"][0]["maintenance_margin"] = [0.05, 0.04]
    result = stresslab.calibrate(raw)
    assert 0.6 < result.values["haircuts.base"] < 0.63
    assert list(result.scenarios) == ["positions.0.maintenance_margin=0.05",
                                      "positions.0.maintenance_margin=0.04"]
    (before5, after5), (before4, after4) = result.scenarios.values()
    assert before5.objective == pytest.approx(5e4 + 0.3e4) and before4.objective == pytest.approx(5e4 + 0.3e4)
    assert after5.objective == after4.objective == pytest.approx(1e4 * result.values["haircuts.base"])
    assert result.after.objective == pytest.approx(after4.objective)


def test_bounded_transform_round_trips():
    with jax.enable_x64(True):
        for value, lower, upper in [(0.3, 0.0, 0.9), (420.0, 60.0, 3600.0), (1.5e6, 1e5, 1e8)]:
            u = parameters.to_unconstrained(value, lower, upper)
            assert float(parameters.to_bounded(jax.numpy.float64(u), lower, upper)) == pytest.approx(value, rel=1e-12)


GRID_OVERRIDES = {
    "breakers_equity.toml": ["calibration.paths=192", "calibration.holdout_paths=1500", "calibration.iterations=4"],
    "haircuts_crypto.toml": ["calibration.paths=128", "calibration.holdout_paths=1500", "calibration.iterations=4",
                             "simulation.horizon=3h"],
    "haircuts_depth_crypto.toml": ["calibration.paths=128", "calibration.holdout_paths=1500",
                                   "calibration.iterations=4", "simulation.horizon=3h"],
    "breakers_crypto.toml": ["calibration.paths=128", "calibration.holdout_paths=1500", "calibration.iterations=4",
                             "simulation.horizon=3h"],
    "breakers_robust.toml": ["calibration.paths=128", "calibration.holdout_paths=1000", "calibration.iterations=4"],
}
GRID_POINTS = {2: 12, 3: 6, 4: 5}
"""Grid points per control: 12 x 12 for two controls, 6 x 6 x 6 for three, 5 x 5 x 5 x 5 for four."""
GRID_EDGE = 1e-3
"""The grid's outer points lie this share of the range inside the bounds (controls stay strictly inside)."""


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", list(GRID_OVERRIDES))
def test_calibrate_reaches_the_grid_optimum(name):
    """On each shipped problem (fewer paths), calibrate's held-out hard-rule objective is within 2 % of the
    held-out objective at the best point of a dense grid of the training objective over the same bounds."""
    config = ROOT / "configs" / "calibration" / name
    overrides = GRID_OVERRIDES[name]
    result = stresslab.calibrate(config, overrides=overrides)
    prob = problem(config, overrides)
    with precision(prob.config.simulation.dtype):
        ev = evaluator(prob, paths=prob.calibration.paths, seed=prob.config.simulation.seed)
        count = GRID_POINTS[len(prob.names)]
        axes = [lo + (hi - lo) * np.linspace(GRID_EDGE, 1 - GRID_EDGE, count)
                for lo, hi in zip(prob.lower, prob.upper, strict=True)]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(prob.names))
        values = np.concatenate([ev.values(jnp.asarray(chunk)) for chunk in np.array_split(grid, 8)])
        best = dict(zip(prob.names, grid[int(np.nanargmin(values))], strict=True))
        held_out = evaluate(prob, best, paths=prob.calibration.holdout_paths,
                            seed=prob.config.simulation.seed + HOLDOUT_SEED_OFFSET)
    assert result.after.objective <= 1.02 * held_out.objective, (result.values, best, held_out)
    assert result.after.objective < result.before.objective


@pytest.mark.slow
def test_shipped_breaker_gradients_match_central_differences_at_the_start():
    """breakers_equity.toml at its starting values, at its temperature (start = end), float64, 2000 paths:
    central differences at 1e-4 and 2.5e-5 of each range agree within 1e-3, and jax.grad with them.
    The haircut problems miss at 2000 paths even at their start (a few of the 2000 relaxed cascades fold
    within 1e-4 of the base's range; docs/calibration.md), so they are not asserted here;
    benchmarks/gradient_check.py measures every shipped problem (benchmarks/gradient_check_latest.json)."""
    config = ROOT / "configs" / "calibration" / "breakers_equity.toml"
    overrides = ["simulation.dtype=float64"]
    cal = problem(config, overrides).calibration
    assert cal.temperature_start == cal.temperature_end
    with jax.enable_x64(True):
        point = gradcheck.interior_points(config, 0, overrides=overrides)[0]
        checks = gradcheck.check(config, point, cal.temperature_end, paths=2000, overrides=overrides)
    for c in checks:
        assert c.smooth_error <= 1e-3 and c.ad_error <= 1e-3, c
    assert all(abs(c.ad) > 1e-3 * abs(c.objective) for c in checks)  # every control matters there


DEVICES_SCRIPT = """
import json, sys
import jax
import numpy as np
import stresslab
from stresslab.calibrate.objective import Evaluator, evaluator, problem
from stresslab.engine.devices import select
assert len(jax.local_devices()) == 2, jax.local_devices()
config = json.loads(sys.argv[1])
found = []
with jax.enable_x64(True):
    for n in (1, 2):
        f = stresslab.objective(config, paths=160, temperature=2e-3, num_devices=n)
        value, g = jax.value_and_grad(f)(f.initial)
        prob = problem(config)
        ev = evaluator(prob, paths=160, seed=0, devices=select(num_devices=n))
        lo, hi = prob.lower, prob.upper
        hard = ev.values(np.stack([lo + (hi - lo) * s for s in (0.2, 0.5, 0.7)]))
        found.append([float(value)] + [float(g[k]) for k in f.names] + [float(h) for h in hard])
print(json.dumps(found))
"""


@pytest.mark.slow
def test_objective_gradient_and_batches_are_identical_on_one_and_two_devices():
    """The objective's paths are cut into groups of one slice per device, each slice within the chunk size
    (here chunk_size 32, 160 paths: three slices of 64 paths on one device, two groups of two on two, one
    shard_map program each); one or two devices give bit-identical values and gradients."""
    config = gradient_config("sqrt")
    config["simulation"]["chunk_size"] = 32
    config["calibration"]["parameters"] = [p for p in config["calibration"]["parameters"]
                                           if p["name"] in ("haircuts.base", "breakers.levels.0.drop")]
    done = subprocess.run([sys.executable, "-c", DEVICES_SCRIPT, json.dumps(config)], capture_output=True, text=True,
                          timeout=900, check=False,
                          env=subprocess_env(XLA_FLAGS="--xla_force_host_platform_device_count=2"))
    assert done.returncode == 0, done.stderr[-3000:]
    one, two = json.loads(done.stdout.strip().splitlines()[-1])
    assert one == two
    assert all(np.isfinite(one)) and all(v != 0 for v in one[1:3])


def test_a_non_finite_gradient_steps_back_then_stops_with_a_warning(monkeypatch):
    """The gradient phase never applies a non-finite step: it steps back (a warning naming the values),
    and after MAX_STEP_BACKS in a row ends with a warning; the result is the best point found before."""
    real = Evaluator.value_and_grad
    calls = []

    def flaky(self, values, temperature):
        calls.append(1)
        value, grad = real(self, values, temperature)
        return (value, grad) if len(calls) == 1 else (value, grad * jnp.nan)

    monkeypatch.setattr(Evaluator, "value_and_grad", flaky)
    with pytest.warns(RuntimeWarning, match="stepped back from a non-finite gradient at haircuts.base = ") as caught:
        result = stresslab.calibrate(haircut_threshold_config(iterations=10, generations=3))
    assert any("the gradient phase stopped" in str(w.message) for w in caught)
    gradient = result.trace.where(result.trace.phase == "gradient", drop=True)
    assert int(gradient.non_finite.sum()) == 1 + 5  # MAX_STEP_BACKS step-backs, then the stop
    assert np.isfinite(result.after.objective) and 0.0 < result.values["haircuts.base"] < 0.9


def test_the_gradient_phase_starts_from_a_point_on_a_bound():
    """CMA-ES can return a control exactly on its bound; the gradient phase starts just inside it."""
    from tqdm import tqdm

    from stresslab.calibrate import loop

    prob = problem(haircut_threshold_config(iterations=2))
    with precision("float64"):
        ev = evaluator(prob, paths=16, seed=0)
        value, point = loop._gradient_phase(prob, ev, np.array([0.0]), loop._Trace(prob.names), tqdm(disable=True),
                                            jnp.float64)
    assert np.isfinite(value) and 0.0 <= point[0] < 0.9


@pytest.mark.slow
def test_the_haircut_gradient_is_finite_at_the_corner_of_no_haircuts():
    """haircuts_crypto.toml in float32, just inside the corner where its optimum lies, through the gap: path 113
    of 128 once had NaN tangents from ADL's averages over an empty side (x / maximum(d, 1e-30) overflows its
    derivative) and from Newton's stopping test (inf x 0), which stopped the gradient phase at its first step."""
    config = ROOT / "configs" / "calibration" / "haircuts_crypto.toml"
    prob = problem(config, ["simulation.horizon=63min"])
    assert prob.config.simulation.dtype == "float32"
    with precision("float32"):
        ev = evaluator(prob, paths=128, seed=prob.config.simulation.seed)
        point = jnp.asarray([4e-7, 1e-7, 5e-7], jnp.float32)
        assert ev.non_finite(point, prob.calibration.temperature_start) == ""
        value, grad = ev.value_and_grad(point, prob.calibration.temperature_start)
    assert np.isfinite(float(value)) and np.all(np.isfinite(np.asarray(grad)))
    assert float(grad[0]) > 0  # a higher base haircut costs more here than it saves in bad debt
