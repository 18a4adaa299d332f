"""Run rare per-path work only on the paths that need it, a fixed batch of paths at a time.

A vectorised step computes every branch for the whole chunk; work that a few paths
need in a few steps (auto-deleveraging ranks cohorts against each other, cohorts
squared per path) would then cost the whole chunk whenever one path needs it. Here
the paths that need it are gathered into batches of ``batch`` paths, the work runs on
each batch, and the results are scattered back; other paths are not touched. The
work must be per path (no reduction across paths), so results do not depend on which
batch a path lands in; every batch has the same shape, so they run the same machine code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import jax
import jax.numpy as jnp

State = TypeVar("State")


def on_paths(need: jnp.ndarray, fn: Callable[..., State], state: State, *args, batch: int) -> State:
    """``fn(state, *args)`` on the paths where ``need`` (N,) holds, ``batch`` paths at a time.

    Every array leaf of ``state`` and ``args`` has the path axis first (scalars and
    non-array leaves are passed as they are); ``fn`` returns a new ``state`` of the same
    structure. Paths where ``need`` is False keep their ``state`` bit for bit.
    """
    n = need.shape[0]

    def gather(idx, x):
        return x[jnp.minimum(idx, n - 1)] if jnp.ndim(x) else x  # slots past the needed paths repeat the last path

    def body(carry):
        state, pending = carry
        idx = jnp.nonzero(pending, size=batch, fill_value=n)[0]
        sub = fn(jax.tree.map(lambda x: gather(idx, x), state), *jax.tree.map(lambda x: gather(idx, x), args))
        state = jax.tree.map(lambda x, s: x.at[idx].set(s, mode="drop"), state, sub)  # index n: a spare slot
        return state, pending.at[idx].set(False, mode="drop")

    state, _ = jax.lax.while_loop(lambda carry: jnp.any(carry[1]), body, (state, need))
    return state
