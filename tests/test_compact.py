"""market/compact.py: rare per-path work runs on the paths that need it, in batches, and nowhere else."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from stresslab.market import clearing
from stresslab.market.compact import on_paths


def _work(state, scale):
    """A per-path update of a two-array state with a per-path argument (no multiply-add, so that compiled
    and op-by-op evaluation round alike)."""
    units, cash = state
    return units * scale[:, None], cash - scale + units[:, 0]


@pytest.mark.parametrize(("n", "share", "batch"), [(100, 0.4, 16), (100, 0.03, 16), (7, 1.0, 32), (64, 1.0, 64)])
def test_on_paths_equals_the_work_where_needed_and_nothing_elsewhere(n: int, share: float, batch: int) -> None:
    rng = np.random.default_rng(n + batch)
    need = rng.random(n) < share
    units = jnp.asarray(rng.random((n, 3)))
    cash = jnp.asarray(rng.random(n))
    scale = jnp.asarray(rng.random(n) + 0.5)
    got_units, got_cash = on_paths(jnp.asarray(need), _work, (units, cash), scale, batch=batch)
    all_units, all_cash = _work((units, cash), scale)
    np.testing.assert_array_equal(got_units, np.where(need[:, None], all_units, units))
    np.testing.assert_array_equal(got_cash, np.where(need, all_cash, cash))


def test_on_paths_with_no_path_in_need_returns_the_state_unchanged() -> None:
    units, cash = jnp.ones((10, 2)), jnp.zeros(10)
    got = on_paths(jnp.zeros(10, bool), _work, (units, cash), jnp.ones(10), batch=4)
    np.testing.assert_array_equal(got[0], units)
    np.testing.assert_array_equal(got[1], cash)


def _crash_outputs(monkeypatch, batch: int, overrides: list[str], slice_iterations: int,
                   dtype: str) -> dict[str, np.ndarray]:
    """Per-path outputs of 64 paths of the benchmarks' reference crash (4 h, ``dtype``) with the kernel's
    cascade rounds after the first, its liquidation fills, its clearing iterations after ``slice_iterations``
    (or after the short path's) and the exact greeks after the trade run ``batch`` paths at a time."""
    import sys
    from pathlib import Path

    import jax

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import scenario

    from stresslab.engine.runner import precision
    from stresslab.engine.scan import simulate_chunk
    from stresslab.market import model, step

    jax.clear_caches()  # a kernel traced under other batch sizes must not be reused
    monkeypatch.setattr(clearing, "ROUND_BATCH", batch)
    monkeypatch.setattr(step, "FILL_BATCH", batch)
    monkeypatch.setattr(clearing, "NEWTON_BATCH", batch)
    monkeypatch.setattr(clearing, "HEDGE_BATCH", batch)
    monkeypatch.setattr(clearing, "SLICE_ITERATIONS", slice_iterations)
    cfg = scenario.config(steps=240, overrides=[f"simulation.dtype={dtype}", *overrides])
    with precision(dtype):
        params, static = model.build(cfg)
        out, _ = jax.jit(lambda p, k: simulate_chunk(p, static, k, np.uint32(0), 64))(params, jax.random.key(3))
        return {k: np.asarray(v) for k, v in out.items()}


@pytest.mark.parametrize(("overrides", "dtype"),
                         [([], "float64"), (["liquidation.max_order=2e8", "breakers.enabled=false"], "float64"),
                          ([], "float32")],
                         ids=["reference", "capped-no-breakers", "reference-float32-short-path"])
def test_kernel_results_do_not_depend_on_the_batches_of_rounds_fills_and_clearing(monkeypatch, overrides,
                                                                                   dtype) -> None:
    """The further cascade rounds, the fills, the clearing iterations after the first few and the exact greeks
    after the trade run only on the paths that need them (``clearing.ROUND_BATCH``, ``step.FILL_BATCH``,
    ``clearing.NEWTON_BATCH``, ``clearing.HEDGE_BATCH`` paths at a time; in float32 with the short path,
    ``clearing.short_path``): batches of 8 paths (every clearing iteration after the first in batches), of 16,
    or every path in one batch (the clearing not batched at all) give the same numbers bit for bit, on a crash
    where most paths liquidate over many steps. (Batches of a size that is not a multiple of the vector width,
    1 or 7, are not among them: XLA compiles the elements past the last full vector to scalar code, whose
    multiply-adds can round differently in the last digit, as they do here since 4 Dec; the kernel's batches
    are constants and its chunks multiples of ``runner.LANE_PAD`` paths.)"""
    runs = {b: _crash_outputs(monkeypatch, b, overrides, 1 if b == 8 else clearing.SLICE_ITERATIONS, dtype)
            for b in (8, 16, 64)}
    assert np.mean(runs[64]["liquidated_long"] > 0) > 0.5  # the case exercises the rounds and the fills
    assert np.mean(runs[64]["cascade_depth"]) > 0.03
    for b in (8, 16):
        for name, value in runs[64].items():
            np.testing.assert_array_equal(runs[b][name], value, err_msg=f"{name}, batch {b}")
