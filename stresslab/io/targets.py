"""Check an output path before anything is computed for it, and say what is wrong in the user's terms.

Light on purpose (no xarray, no JAX): the command line checks every ``--out`` before a config
is simulated or calibrated, so that a bad path costs no run.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path

from stresslab.errors import OutputError, OutputInTheWay

REPLACE = ("overwrite", "to replace it")
RESULT_SUFFIXES = (".nc", ".zarr", "")
"""What a result of ``stresslab run`` may be called: ``*.nc`` (netCDF), ``*.zarr`` or no suffix (a Zarr directory)."""


def check_exists(path: str | os.PathLike[str], *, overwrite: bool) -> None:
    """Raise :class:`OutputInTheWay` if ``path`` exists and may not be replaced."""
    target = Path(path)
    if not overwrite and (target.exists() or target.is_symlink()):
        raise OutputInTheWay(f"{target} already exists", [REPLACE])


def check_output(path: str | os.PathLike[str], *, overwrite: bool, suffixes: Collection[str] | None = None) -> None:
    """Refuse an output that cannot or may not be written, before any work is done for it.

    Stricter than the writers (which create missing parent directories): a parent directory
    that does not exist is refused rather than created, since it is more often a typo.

    Args:
        path: the output as the user gave it (messages name it, never an internal path).
        overwrite: an existing output may be replaced.
        suffixes: the allowed suffixes (``""``: none), or None for any.

    Raises:
        OutputError: a suffix not allowed, a parent directory that does not exist, a file
            where a directory should be, or a directory that cannot be written.
        OutputInTheWay: ``path`` exists and ``overwrite`` is false.
    """
    target = Path(path)
    if suffixes is not None and target.suffix not in suffixes:
        allowed = ", ".join(repr(s) if s else "no suffix (a Zarr directory)" for s in suffixes)
        raise OutputError(f"{target}: unknown output format {target.suffix!r}; allowed: {allowed}")
    parent = target.parent
    if not parent.is_dir():
        blocker = next((p for p in (parent, *parent.parents) if p.exists()), None)
        if blocker is not None and not blocker.is_dir():
            raise OutputError(f"{target}: {blocker} is a file, not a directory")
        raise OutputError(f"{target}: the directory {parent} does not exist; create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{target}: cannot write in {parent} (read-only, or not writable by you)")
    check_exists(target, overwrite=overwrite)
