"""Progress over paths: a bar on a terminal, occasional plain lines in a log, nothing when asked.

A bar redraws itself with carriage returns, which fill a log file (a batch job's stderr,
``| tee``) with fragments. When stderr is not a terminal, progress is written instead as a
plain line every ``LINE_FRACTION`` of the work or every ``LINE_SECONDS``, whichever comes
first. ``TQDM_DISABLE=1`` in the environment turns progress off, as for any tqdm bar.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Protocol

LINE_FRACTION = 0.1
"""A plain progress line at least every tenth of the work..."""
LINE_SECONDS = 30.0
"""...and at least every 30 s of wall time (when some work was done since the last line)."""
DISABLE_ENV = "TQDM_DISABLE"
DESCRIPTION = "simulating"


class Progress(Protocol):
    def update(self, n: int = 1) -> object: ...

    def set_postfix(self, **values: object) -> object: ...


class Silent:
    """Progress that shows nothing (progress turned off)."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, **values: object) -> None:
        pass


def disabled_by_environment() -> bool:
    """Whether ``TQDM_DISABLE`` is set to something other than empty, 0 or false."""
    return os.environ.get(DISABLE_ENV, "").strip().lower() not in ("", "0", "false", "no")


class Lines:
    """Progress as plain lines on ``stream``: ``simulating: 4000/10000 paths (40 %), 12 s``."""

    def __init__(self, total: int, stream: IO[str], description: str = DESCRIPTION, unit: str = "paths") -> None:
        self.total, self.stream, self.description, self.unit = total, stream, description, unit
        self.done = 0
        self.start = self.last_time = time.monotonic()
        self.last_done = 0
        self.postfix = ""

    def set_postfix(self, **values: object) -> None:
        """Show ``key=value`` pairs at the end of the next line (as tqdm's ``set_postfix``)."""
        self.postfix = ", ".join(f"{key}={value}" for key, value in values.items())

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        step = max(1, int(self.total * LINE_FRACTION))
        if self.done >= self.total or self.done - self.last_done >= step or now - self.last_time >= LINE_SECONDS:
            self._line(now)

    def _line(self, now: float) -> None:
        share = f" ({100 * self.done / self.total:.0f} %)" if self.total else ""
        postfix = f", {self.postfix}" if self.postfix else ""
        print(f"{self.description}: {self.done}/{self.total} {self.unit}{share}, {now - self.start:.0f} s{postfix}",
              file=self.stream, flush=True)
        self.last_done, self.last_time = self.done, now


@contextmanager
def progress_bar(total: int, *, enabled: bool, stream: IO[str] | None = None, description: str = DESCRIPTION,
                 unit: str = "path") -> Iterator[Progress | None]:
    """Progress over ``total`` units of work (paths by default): a tqdm bar on a terminal, :class:`Lines`
    otherwise, None when off.

    Args:
        total: the units to run.
        enabled: show progress at all (``TQDM_DISABLE=1`` turns it off too).
        stream: where to write (default: stderr).
        description, unit: what the work is (``"fitting"``, ``"generation"``).
    """
    stream = stream if stream is not None else sys.stderr
    if not enabled or disabled_by_environment():
        yield None
        return
    if not stream.isatty():
        yield Lines(total, stream, description, f"{unit}s")
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, unit=unit, desc=description, dynamic_ncols=True, file=stream) as bar:
        yield bar
