"""Drive the market kernel step by step from a config dict, in float64 (a test helper)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

import stresslab
from stresslab.engine.keys import path_keys, step_uniforms
from stresslab.market.model import build, init, n_draws
from stresslab.market.step import market_step

STEP = jax.jit(market_step, static_argnames="static")


def kernel_states(raw: dict, n: int = 1, seed: int = 0, smooth: bool = False):
    """Run ``market_step`` directly on ``n`` paths (with the hard rules, or the ``smooth`` ones at
    ``rules.DEFAULT_TEMPERATURE``); returns (params, static, states) with ``states[k]`` the
    state after k steps."""
    raw = {"simulation": {"dtype": "float64", **raw.pop("simulation", {})}, **raw}
    config = stresslab.load_config(raw).scenarios[0]
    with jax.enable_x64(True):
        params, static = build(config, smooth=smooth)
        state, summary = init(params, static, n)
        keys = path_keys(jax.random.key(seed), jnp.uint32(0), n)
        states = [state]
        for t in range(static.grid.n_steps):
            draws = step_uniforms(keys, jnp.int32(t), n_draws(static), jnp.float64)
            state, summary = STEP(params, static, state, summary, jnp.int32(t), draws)
            states.append(state)
    return params, static, states
