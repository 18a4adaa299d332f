"""Every error stresslab raises at its edges, in one family (the kernels record problems as data).

``except stresslab.StresslabError`` catches all of them. Each also derives from the builtin
exception a Python user would expect (``ValueError`` for a bad config, ``KeyError`` for a
missing variable, ``FileExistsError`` for an output in the way, ``RuntimeError`` for a run whose
numbers cannot be trusted), and carries the command line's ``exit_code``: 2 for a
:class:`UsageError` (something to change before running again), 1 otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

USAGE = 2
"""Exit code of a usage problem: a bad config, setting, input or output path."""
FAILED_RUN = 1
"""Exit code of a run that cannot give trustworthy numbers or cannot reach its peers."""


Remedy = tuple[str, str]
"""(argument, what passing it does), e.g. ``("overwrite", "to replace it")``."""


def python_keyword(name: str) -> str:
    """How a Python caller passes argument ``name``: ``overwrite=True``."""
    return f"{name}=True"


def explain(problem: str, remedies: Sequence[Remedy], spell: Callable[[str], str]) -> str:
    """``problem; pass A to ..., or B to ...`` with each argument written by ``spell``."""
    actions = ", or ".join(f"{spell(name)} {purpose}" for name, purpose in remedies)
    return f"{problem}; pass {actions}" if remedies else problem


class StresslabError(Exception):
    """The base of every stresslab error; the message says what is wrong and what to change."""

    exit_code = FAILED_RUN


class UsageError(StresslabError):
    """Something the user asked for cannot be done as asked: change it and run again."""

    exit_code = USAGE


class ConfigError(UsageError, ValueError):
    """A config that cannot be used; the message names the field and what is allowed."""


class SettingError(UsageError, ValueError):
    """A run setting (device, device count, process layout) that cannot be honoured.

    Attributes:
        setting: the parameter's name (``device``, ``num_devices``, ``coordinator``, ...).
        reason: what is wrong and what is allowed.
    """

    def __init__(self, setting: str, reason: str) -> None:
        super().__init__(f"{setting}: {reason}")
        self.setting = setting
        self.reason = reason


class ResultError(UsageError, ValueError):
    """A path that does not hold a readable stresslab result."""


class OutputError(UsageError, ValueError):
    """An output path that cannot be written: a missing or read-only directory, a file in the way, a bad suffix."""


class OutputInTheWay(UsageError, FileExistsError):
    """An output, or an unfinished run of it, is in the way; ``remedies`` name the arguments that clear it.

    The message spells the arguments as Python keywords (``overwrite=True``); :meth:`explain`
    spells them as the caller likes, e.g. as command-line flags (``--overwrite``).

    Attributes:
        problem: what is in the way, naming the user's path.
        remedies: (argument, what passing it does) pairs.
    """

    def __init__(self, problem: str, remedies: Sequence[Remedy] = ()) -> None:
        self.problem = problem
        self.remedies = tuple(tuple(remedy) for remedy in remedies)
        super().__init__(self.explain(python_keyword))

    def explain(self, spell: Callable[[str], str]) -> str:
        """The message with each argument written by ``spell``."""
        return explain(self.problem, self.remedies, spell)


class CheckpointError(OutputInTheWay):
    """A partial run is in the way, or does not match the run being resumed."""


class UnknownConfig(UsageError, LookupError):
    """Neither a config file nor a shipped config by that name (the message lists close matches)."""


class MissingVariableError(UsageError, KeyError, ValueError):
    """A metric or figure needs a data variable that the Dataset lacks.

    Both a ``KeyError`` (as for a missing key of a Dataset) and a ``ValueError`` (the
    Dataset given is not one the call can use); the message names what is missing and
    the per-path variables there are.
    """

    def __str__(self) -> str:
        return str(self.args[0])


class RunError(StresslabError, RuntimeError):
    """A run that cannot give trustworthy numbers (unstable feedback, an exhausted book, non-finite state), or
    a multi-process run that lost its peers."""


class PeerError(StresslabError):
    """Another process of a multi-process run failed; the message is its own.

    Attributes:
        usage: the failure was a usage problem (a bad config, an output in the way); it sets ``exit_code``.
        problem, remedies: as for :class:`OutputInTheWay` (the arguments that would clear the failure).
    """

    def __init__(self, message: str, *, usage: bool, remedies: Sequence[Remedy] = ()) -> None:
        self.problem = message
        self.remedies = tuple(tuple(remedy) for remedy in remedies)
        super().__init__(explain(message, self.remedies, python_keyword))
        self.usage = usage
        self.exit_code = USAGE if usage else FAILED_RUN

    def explain(self, spell: Callable[[str], str]) -> str:
        """The message with each argument that would clear the failure written by ``spell`` (e.g. ``--overwrite``)."""
        return explain(self.problem, self.remedies, spell)


class DataError(UsageError, ValueError):
    """A market-data file that cannot be read, or a window it does not cover."""
