"""Where a result came from: the commit of the code that ran, the command, and when.

Read at the edge (Dataset assembly, reports); nothing here is traced.
"""

from __future__ import annotations

import datetime as _datetime
import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "stresslab"
PACKAGE_DIR = Path(__file__).resolve().parent
COMMIT_LENGTH = 40
"""Hex digits of a full git commit id."""
GIT_TIMEOUT_S = 10
CONFIG_SUFFIXES = (".toml", ".yaml", ".yml")
"""Suffixes of config files, by which :func:`config_name` finds the config on a command line."""


def commit() -> str | None:
    """The commit of the stresslab code this process runs, or None when nothing records it.

    From a git checkout (editable installs included): ``git rev-parse HEAD`` of that
    checkout, and only when the package sits at its top level (a wheel installed in a
    virtual environment inside some other repository does not take that repository's
    commit). From an install of a VCS URL (``pip install git+https://…``): the commit
    pip recorded in the distribution's ``direct_url.json`` (PEP 610). A release wheel
    records none: its version (``stresslab_version``) says which code ran.
    """
    return _checkout_commit() or _installed_commit()


def commit_attrs() -> dict[str, str]:
    """``{"git_commit": <commit>}`` when :func:`commit` knows it, else ``{}`` (the version says it all)."""
    found = commit()
    return {"git_commit": found} if found else {}


def now() -> str:
    """The current UTC time in ISO 8601 to the second, e.g. ``"2026-12-02T04:30:00Z"``."""
    return _datetime.datetime.now(_datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def command(argv: list[str] | None = None) -> str:
    """What made this result, for CF ``history``: ``"stresslab run …"`` from the command line, else
    ``"stresslab.simulate"``."""
    args = sys.argv if argv is None else argv
    if args and _is_cli(args[0]):
        return " ".join(["stresslab", *args[1:]])
    return "stresslab.simulate"


def config_name(argv: list[str] | None = None) -> str | None:
    """The name of the config file of a ``stresslab run`` on the command line (its stem), or None.

    The first argument after ``run`` that ends in ``.toml``, ``.yaml`` or ``.yml``.
    """
    args = sys.argv if argv is None else argv
    if not args or not _is_cli(args[0]) or "run" not in args:
        return None
    for arg in args[args.index("run") + 1:]:
        if Path(arg).suffix in CONFIG_SUFFIXES:
            return Path(arg).stem
    return None


def _is_cli(program: str) -> bool:
    path = Path(program)
    return path.name == DISTRIBUTION or (path.name == "cli.py" and path.resolve().parent == PACKAGE_DIR)


def _checkout_commit() -> str | None:
    try:
        done = subprocess.run(["git", "rev-parse", "--show-toplevel", "HEAD"], cwd=PACKAGE_DIR, capture_output=True,
                              text=True, timeout=GIT_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = done.stdout.split()
    if done.returncode != 0 or len(lines) != 2 or Path(lines[0]).resolve() != PACKAGE_DIR.parent:
        return None
    return lines[1] if len(lines[1]) == COMMIT_LENGTH else None


def _installed_commit() -> str | None:
    try:
        text = metadata.distribution(DISTRIBUTION).read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    if not text:
        return None
    try:
        found = json.loads(text).get("vcs_info", {}).get("commit_id")
    except (ValueError, AttributeError):
        return None
    return found if isinstance(found, str) and len(found) == COMMIT_LENGTH else None
