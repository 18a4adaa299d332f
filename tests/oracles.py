"""Closed-form results the simulated market is checked against (docs/validation.md)."""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaln
from scipy.stats import norm

BGK_BETA = 0.5825971579390106
"""Broadie-Glasserman-Kou constant: -zeta(1/2)/sqrt(2 pi)."""


def liquidation_price(side: str, s0: float, leverage: float, mm: float) -> float:
    """Price at which a position entered at s0 hits maintenance margin mm."""
    if side == "long":
        return s0 * (1 - 1 / leverage) / (1 - mm)
    return s0 * (1 + 1 / leverage) / (1 + mm)


def first_passage(s0: float, barrier: float, mu: float, sigma: float, horizon: float) -> float:
    """P(GBM with drift mu, vol sigma hits ``barrier`` before ``horizon``), continuous monitoring."""
    nu = mu - 0.5 * sigma**2
    b = math.log(barrier / s0)
    sd = sigma * math.sqrt(horizon)
    if b < 0:
        return norm.cdf((b - nu * horizon) / sd) + math.exp(2 * nu * b / sigma**2) * norm.cdf((b + nu * horizon) / sd)
    return norm.sf((b - nu * horizon) / sd) + math.exp(2 * nu * b / sigma**2) * norm.sf((b + nu * horizon) / sd)


def first_passage_discrete(s0: float, barrier: float, mu: float, sigma: float, horizon: float, steps: int) -> float:
    """Broadie-Glasserman-Kou: discrete monitoring ~ continuous with the barrier shifted away from s0."""
    shift = math.exp(BGK_BETA * sigma * math.sqrt(horizon / steps))
    shifted = barrier / shift if barrier < s0 else barrier * shift
    return first_passage(s0, shifted, mu, sigma, horizon)


def borel_pmf(k: np.ndarray, m: float) -> np.ndarray:
    """P(N = k) of the Borel distribution with parameter m < 1."""
    k = np.asarray(k, dtype=float)
    return np.exp(-m * k + (k - 1) * np.log(m * k) - gammaln(k + 1))
