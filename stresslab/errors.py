"""Errors stresslab raises at its edges (kernels record problems as data)."""

from __future__ import annotations


class StresslabError(RuntimeError):
    """A run that cannot give trustworthy numbers; the message says why and what to change."""
