"""Tail metrics on simulation outputs (VaR, ES, exceedance probabilities, summary tables)."""

from stresslab.metrics.tail import es, exceedance, summary_table, var

__all__ = ["es", "exceedance", "summary_table", "var"]
