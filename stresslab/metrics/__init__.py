"""Tail metrics on simulation outputs (VaR, ES and their confidence intervals, exceedance, summary tables)."""

from stresslab.metrics.tail import (
    MissingVariableError,
    bad_debt_at_risk,
    es,
    es_ci,
    exceedance,
    halt_stats,
    liquidations_at_risk,
    p_fund_exhausted,
    recovery_stats,
    summary_table,
    var,
    var_ci,
)

__all__ = ["MissingVariableError", "bad_debt_at_risk", "es", "es_ci", "exceedance", "halt_stats",
           "liquidations_at_risk", "p_fund_exhausted", "recovery_stats", "summary_table", "var", "var_ci"]
