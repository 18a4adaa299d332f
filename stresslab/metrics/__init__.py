"""Tail metrics on simulation outputs (VaR, ES and their confidence intervals, exceedance, summary tables)."""

from stresslab.metrics.tail import (
    bad_debt_at_risk,
    es,
    es_ci,
    exceedance,
    liquidations_at_risk,
    p_fund_exhausted,
    recovery_stats,
    summary_table,
    var,
    var_ci,
)

__all__ = ["bad_debt_at_risk", "es", "es_ci", "exceedance", "liquidations_at_risk", "p_fund_exhausted",
           "recovery_stats", "summary_table", "var", "var_ci"]
