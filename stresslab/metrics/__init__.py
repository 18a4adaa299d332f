"""Tail metrics on simulation outputs (VaR, ES and their confidence intervals, exceedance, summary tables,
the headline metrics and their file)."""

from stresslab.metrics.headline import check_metrics_path, headline, write_metrics
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

__all__ = ["MissingVariableError", "bad_debt_at_risk", "check_metrics_path", "es", "es_ci", "exceedance",
           "halt_stats", "headline", "liquidations_at_risk", "p_fund_exhausted", "recovery_stats", "summary_table",
           "var", "var_ci", "write_metrics"]
