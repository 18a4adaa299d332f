"""The clearing's short path (``clearing.short_path``): the options book's cubic model gives the exact
Newton's clearing price to the Newton tolerance, its error bounds hold, and a whole run agrees."""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stresslab.engine.runner import precision
from stresslab.engine.scan import simulate_chunk
from stresslab.market import clearing, dealers, liquidity, model

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import scenario  # noqa: E402

ITERATIONS = clearing.MODEL_ITERATIONS
"""The kernel's short path (tests set MODEL_ITERATIONS = 0 for the exact iterations throughout)."""
IMPLIED_VOLS = (0.6, 0.25)
"""The reference's options book, and one with 2.4x narrower densities (more curvature per unit move)."""


def _flows(dtype: str, implied_vol: float, paths: int = 128, steps: int = 150) -> tuple[list, object, object]:
    """The step inputs of every cascade of the reference's first ``steps`` steps (calm hours, the gap, the sell
    program and the start of the cascade): a list of (Flow, in_liq, stopped), with the params and static."""
    cfg = scenario.config(steps=steps, overrides=[f"simulation.dtype={dtype}", f"dealers.implied_vol={implied_vol}"])
    captured, cascade = [], clearing.cascade

    def capture(params, static, f, in_liq, stopped, active, triggers):
        leaves, tree = jax.tree.flatten((f, in_liq, stopped))
        jax.debug.callback(lambda *x: captured.append(jax.tree.unflatten(tree, [np.asarray(v) for v in x])), *leaves)
        return cascade(params, static, f, in_liq, stopped, active, triggers)

    x64 = jax.config.jax_enable_x64
    with precision(dtype):
        params, static = model.build(cfg)
        clearing.cascade = capture
        jax.config.update("jax_enable_x64", dtype == "float64")  # the callback's thread too: no float32 copies
        try:
            jax.clear_caches()
            jax.block_until_ready(simulate_chunk(params, static, jax.random.key(5), jnp.uint32(0), paths))
        finally:
            clearing.cascade = cascade
            jax.config.update("jax_enable_x64", x64)
            jax.clear_caches()
    return captured, params, static


def _solve(monkeypatch, params, static, flows, iterations: int) -> list[clearing.Solved]:
    """``clearing.clear`` of every captured step's queue from its pre-flow price, with MODEL_ITERATIONS set
    and the short path tried in either dtype."""
    monkeypatch.setattr(clearing, "MODEL_ITERATIONS", iterations)
    monkeypatch.setattr(clearing, "MODEL_DTYPES", ("float32", "float64"))
    solve = jax.jit(lambda p, f, liq, stop: clearing.clear(p, static, f, clearing.queue(p, f, liq, stop), f.y_base))
    out = [jax.tree.map(np.asarray, solve(params, f, liq, stop)) for f, liq, stop in flows]
    jax.clear_caches()
    return out


@pytest.mark.parametrize("implied_vol", IMPLIED_VOLS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_short_path_gives_the_exact_clearing_price_to_the_newton_tolerance(monkeypatch, dtype, implied_vol):
    """On every step of the reference's calm hours, gap, sell program and cascade start (128 paths x 150 steps),
    the short path's clearing price is within twice the Newton tolerance of the exact Newton's, and the hedge
    and book flow that the short path takes from the model are within the model's error bound of the exact
    ones. In float32 the short path is what most steps take; in float64 (a 10^9 times tighter tolerance),
    tried here although the kernel does not (``clearing.MODEL_DTYPES``), its bound admits almost no step."""
    with precision(dtype):
        flows, params, static = _flows(dtype, implied_vol)
        exact = _solve(monkeypatch, params, static, flows, 0)
        short = _solve(monkeypatch, params, static, flows, ITERATIONS)
        assert all(e.local is None and not e.modelled.any() for e in exact)
        worst, taken = 0.0, []
        for (f, _, _), e, s in zip(flows, exact, short, strict=True):
            limit = np.asarray(clearing.newton_limit(jnp.asarray(e.y)))
            worst = max(worst, float(np.max(np.abs(s.y - e.y) / limit)))
            taken.append(s.modelled.mean())
            at_root = dealers.greeks(f.options, jnp.asarray(s.y))
            local = dealers.Local(*(jnp.asarray(x) for x in s.local))
            model_delta, _ = dealers._delta_gamma(f.options, jnp.asarray(s.y), local)
            bound = np.asarray(dealers.model_error(f.options, local, jnp.asarray(s.y)))
            error = np.abs(np.asarray(model_delta) - np.asarray(at_root.delta))
            scale = np.finfo(dtype).eps * 16 * (np.abs(np.asarray(at_root.delta)) + 1.0)  # the sums' own rounding
            assert np.all(error[s.modelled] <= bound[s.modelled] + scale[s.modelled])
        share = float(np.mean(taken))
        print(f"{dtype}, implied vol {implied_vol}: short path on {share:.1%}, worst {worst:.2f}x the tolerance")
        assert worst <= 2.0, worst
        if dtype == "float32":
            assert share > 0.75, share
        else:
            assert share < 0.01, share  # the bound refuses the model where the tolerance is tighter than its error


def test_float64_runs_do_not_try_the_short_path(monkeypatch):
    """In float64 the kernel iterates on the exact book (``clearing.MODEL_DTYPES``): a run is bit for bit the
    same with the short path enabled or not (the reference's first 150 steps, 64 paths)."""
    cfg = scenario.config(steps=150, overrides=["simulation.dtype=float64"])
    with precision("float64"):
        _, static = model.build(cfg)
        assert not clearing.short_path(static)
    steps = ["simulation.dtype=float64"]
    full, short = _run(monkeypatch, 0, steps, paths=64, steps=150), _run(monkeypatch, ITERATIONS, steps, paths=64,
                                                                        steps=150)
    for name, value in full.items():
        np.testing.assert_array_equal(short[name], value, err_msg=name)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_cubic_model_stays_within_its_error_bound(dtype):
    """``dealers.model_error`` bounds the cubic model's delta error from moves of 1e-4 to 3 of the book's
    narrowest ``implied_vol sqrt(tau)``, around prices from deep out of the money to deep in."""
    cfg = scenario.config(overrides=[f"simulation.dtype={dtype}"])
    with precision(dtype):
        params, _ = model.build(cfg)
        terms = dealers.option_terms(params.dealers, params.price.s0, jnp.asarray(2.0 / 365, dtype))
        vol_t = 1.0 / float(np.max(np.asarray(terms.inv_vol)))
        rng = np.random.default_rng(2)
        y0 = jnp.asarray(rng.uniform(-0.3, 0.3, (4000, 1)), dtype)
        size = vol_t * 10 ** rng.uniform(-4, np.log10(3), (4000, 1))
        dy = jnp.asarray(np.sign(rng.standard_normal((4000, 1))) * size, dtype)
        local = dealers.greeks(terms, y0)
        model_delta, _ = dealers._delta_gamma(terms, y0 + dy, local)
        exact = dealers.greeks(terms, y0 + dy).delta
        bound = dealers.model_error(terms, local, y0 + dy)
        rounding = np.finfo(dtype).eps * 64 * float(np.sum(np.abs(np.asarray(terms.quantity))))
        error = np.abs(np.asarray(model_delta - exact))
        assert np.all(error <= np.asarray(bound) + rounding)
        assert np.max(error / (np.asarray(bound) + rounding)) > 1e-3  # the bound is not vacuous


@pytest.mark.parametrize("law", ["sqrt", "linear"])
def test_the_impact_bound_holds_across_zero_flow(law):
    """``liquidity.impact_bound`` bounds the change of impact over a flow error, also where the flow changes
    sign (the square root's infinite slope at zero) and where it is far from zero (the slope bound)."""
    rng = np.random.default_rng(7)
    with precision("float64"):
        depth = jnp.asarray(10 ** rng.uniform(6, 9, 20000))
        flow = jnp.asarray(rng.standard_normal(20000) * 10 ** rng.uniform(0, 9, 20000))
        error = jnp.asarray(10 ** rng.uniform(-2, 8, 20000))
        e = error * jnp.asarray(rng.uniform(-1, 1, 20000))
        change = jnp.abs(liquidity.impact(flow + e, depth, law)[0] - liquidity.impact(flow, depth, law)[0])
        bound = liquidity.impact_bound(flow, error, depth, law)
    assert np.all(np.asarray(change) <= np.asarray(bound) * (1 + 1e-12))
    far = np.abs(np.asarray(flow)) > 10 * np.asarray(error)
    assert np.median(np.asarray(bound)[far] / np.maximum(np.asarray(change)[far], 1e-300)) < 10  # tight away from 0


def _run(monkeypatch, iterations: int, overrides: list[str], paths: int = 256,
         steps: int | None = None) -> dict[str, np.ndarray]:
    monkeypatch.setattr(clearing, "MODEL_ITERATIONS", iterations)
    jax.clear_caches()
    cfg = scenario.config(overrides=overrides, steps=steps)
    with precision(cfg.simulation.dtype):
        params, static = model.build(cfg)
        out, _ = simulate_chunk(params, static, jax.random.key(11), jnp.uint32(0), paths)
        result = {k: np.asarray(v, float) for k, v in out.items()}
    jax.clear_caches()
    return result


def test_a_calm_day_is_the_same_with_and_without_the_short_path(monkeypatch):
    """The reference day without its shocks (float32, 256 paths x 1440 steps): path by path, prices, the hedge's
    PnL and the depth agree to float32 rounding accumulated over the day (1e-5 relative)."""
    calm = ["market.shocks=[]"]
    full, short = _run(monkeypatch, 0, calm), _run(monkeypatch, clearing.MODEL_ITERATIONS, calm)
    for name in ("final_price", "min_price", "realized_vol", "min_depth_ratio", "trader_equity"):
        np.testing.assert_allclose(short[name], full[name], rtol=1e-5, err_msg=name)


def test_the_reference_crash_has_the_same_distribution_with_and_without_the_short_path(monkeypatch):
    """On the reference crash (float32, 256 paths) a path's cascade can flip on a last-digit difference at a
    trigger, so the comparison is of the distribution: the medians and means of the headline outputs agree
    within 0.5 %."""
    full, short = _run(monkeypatch, 0, []), _run(monkeypatch, clearing.MODEL_ITERATIONS, [])
    for name in ("cascade_depth", "min_price", "liquidated_long", "final_price"):
        for stat in (np.median, np.mean):
            assert stat(short[name]) == pytest.approx(stat(full[name]), rel=5e-3), name
