"""The scenarios shipped with stresslab (``stresslab/configs/``), by name.

A shipped config's name is its path under ``stresslab/configs/`` without ``.toml``:
``crypto_long_squeeze``, ``calibration/breakers_equity``, ``historical/2020_03_12_black_thursday``.
Where a file's stem is unique, the stem alone names it too (``2020_03_12_black_thursday``).
The command line accepts a name wherever it takes a config file; a file that exists wins.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from stresslab.errors import UnknownConfig

DIRECTORY = Path(__file__).parent / "configs"
"""Where the shipped configs live (package data in the wheel)."""
SUFFIX = ".toml"
RULE = "="
"""Comment lines made of this character frame a config's title; they are not its description."""
CLOSE_MATCHES = 3


def names() -> list[str]:
    """Every shipped config's full name, sorted: top-level scenarios first, then each folder's."""
    files = sorted(DIRECTORY.rglob(f"*{SUFFIX}"), key=lambda p: (len(p.relative_to(DIRECTORY).parts), str(p)))
    return [p.relative_to(DIRECTORY).with_suffix("").as_posix() for p in files]


def path(name: str) -> Path:
    """The file of shipped config ``name`` (full name, unique stem, either with ``.toml``).

    Raises:
        UnknownConfig: no shipped config has that name (the message lists close matches).
    """
    wanted = name.removesuffix(SUFFIX)
    full = names()
    if wanted in full:
        return DIRECTORY / f"{wanted}{SUFFIX}"
    by_stem = [n for n in full if n.rsplit("/", 1)[-1] == wanted]
    if len(by_stem) == 1:
        return DIRECTORY / f"{by_stem[0]}{SUFFIX}"
    if len(by_stem) > 1:
        raise UnknownConfig(f"{name}: more than one shipped config has that name: {', '.join(by_stem)}")
    stems = {n.rsplit("/", 1)[-1]: n for n in full}
    close = difflib.get_close_matches(wanted, [*full, *stems], n=CLOSE_MATCHES)
    suggestion = f"; did you mean {', '.join(dict.fromkeys(stems.get(c, c) for c in close))}?" if close else ""
    raise UnknownConfig(f"{name}: no such config file or shipped config{suggestion} "
                        "(stresslab configs lists them)")


def describe(name: str) -> str:
    """One line about shipped config ``name``: its title comment, without the file name."""
    file = path(name)
    for line in file.read_text(encoding="utf-8").splitlines():
        text = line.lstrip("#").strip()
        if not line.startswith("#"):
            break
        if text and set(text) != {RULE}:
            return text.removeprefix(f"{file.name}:").strip()
    return ""


def resolve(name_or_path: str | os.PathLike[str]) -> Path:
    """A config file: ``name_or_path`` itself if it exists (or looks like a path), else the shipped config of that name.

    Raises:
        UnknownConfig: neither a file nor a shipped config (the message lists close matches).
    """
    given = Path(name_or_path)
    if given.exists() or given.suffix not in ("", SUFFIX) or _looks_like_a_path(str(name_or_path)):
        return given
    return path(str(name_or_path))


def _looks_like_a_path(text: str) -> bool:
    """Written as a path the user means on disk (absolute, ./, ../, ~), not as a shipped name."""
    return text.startswith(("/", "./", "../", "~")) or os.sep != "/" and os.sep in text
