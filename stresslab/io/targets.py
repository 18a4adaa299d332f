"""Check an output path before anything is computed for it, and say what is wrong in the user's terms.

Light on purpose (no xarray, no JAX): the command line checks every ``--out`` before a config
is simulated or calibrated, so that a bad path costs no run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

Remedy = tuple[str, str]
"""(argument, what passing it does), e.g. ``("overwrite", "to replace it")``."""


class OutputError(ValueError):
    """An output path that cannot be written: a missing or read-only directory, a file in the way, a bad suffix."""


class OutputInTheWay(FileExistsError):
    """An output, or an unfinished run of it, is in the way; ``remedies`` name the arguments that clear it.

    The message spells the arguments as Python keywords (``overwrite=True``); :meth:`explain`
    spells them as the caller likes, e.g. as command-line flags (``--overwrite``).

    Attributes:
        problem: what is in the way, naming the user's path.
        remedies: (argument, what passing it does) pairs.
    """

    def __init__(self, problem: str, remedies: Sequence[Remedy]) -> None:
        self.problem = problem
        self.remedies = tuple(remedies)
        super().__init__(self.explain(python_keyword))

    def explain(self, spell: Callable[[str], str]) -> str:
        """The message with each argument written by ``spell``."""
        return explain(self.problem, self.remedies, spell)


def explain(problem: str, remedies: Sequence[Remedy], spell: Callable[[str], str]) -> str:
    """``problem; pass A to ..., or B to ...`` with each argument written by ``spell``."""
    actions = ", or ".join(f"{spell(name)} {purpose}" for name, purpose in remedies)
    return f"{problem}; pass {actions}" if remedies else problem


def python_keyword(name: str) -> str:
    """How a Python caller passes argument ``name``: ``overwrite=True``."""
    return f"{name}=True"


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
