"""The controls calibration can tune: their values in a config, in ``Params``, and bounded transforms.

A control is named by its config path (``haircuts.base``, ``breakers.levels.0.halt``,
``liquidation.max_order``, ...). The optimiser works on an unconstrained ``u``;
the value is ``lower + (upper - lower) * sigmoid(u)``, so every iterate stays
strictly inside its bounds and gradients never meet a clip.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from stresslab.config.loading import ConfigError
from stresslab.config.schema import Config
from stresslab.market.model import Params, Static

HALT = "halt"


def config_value(config: Config, name: str) -> float:
    """The value of control ``name`` in ``config`` (durations in seconds, notional in quote currency)."""
    section, *rest = name.split(".")
    if section == "breakers":
        index, field = int(rest[1]), rest[2]
        levels = config.breakers.levels
        if not config.breakers.enabled or index >= len(levels):
            raise ConfigError(f"calibration.parameters: {name} needs breakers.enabled and a level {index} "
                             f"(there are {len(levels)})")
        return float(getattr(levels[index], field))
    if section == "haircuts" and not config.haircuts.enabled:
        raise ConfigError(f"calibration.parameters: {name} needs haircuts.enabled = true")
    value = getattr(getattr(config, section), rest[0])
    if value is None:
        raise ConfigError(f"calibration.parameters: {name} has no value in the config; give it one to start from")
    return float(value)


def apply(params: Params, static: Static, name: str, value: jnp.ndarray) -> Params:
    """``params`` with control ``name`` set to ``value`` (traced)."""
    section, *rest = name.split(".")
    if section == "breakers":
        index, field = int(rest[1]), rest[2]
        b = params.breakers
        if field == HALT:
            b = b._replace(halt_steps=b.halt_steps.at[index].set(value / static.grid.dt_seconds))
        else:
            b = b._replace(drop=b.drop.at[index].set(value))
        return params.replace(breakers=b)
    if section == "haircuts":
        return params.replace(haircuts=params.haircuts._replace(**{rest[0]: value}))
    pos = params.positions
    return params.replace(positions=pos._replace(liquidation=pos.liquidation._replace(max_order=value)))


def set_in_config(raw: dict[str, Any], name: str, value: float) -> None:
    """Write ``value`` at config path ``name`` in a plain config dict (in place)."""
    node: Any = raw
    parts = name.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    node[parts[-1]] = value


def to_unconstrained(value: float, lower: float, upper: float) -> float:
    """Inverse of :func:`to_bounded`; the value must lie strictly inside the bounds."""
    share = (value - lower) / (upper - lower)
    return math.log(share / (1.0 - share))


def to_bounded(u: jnp.ndarray, lower: float, upper: float) -> jnp.ndarray:
    return lower + (upper - lower) * jax.nn.sigmoid(u)
