"""One family of errors: every exception stresslab defines derives from ``StresslabError``, keeps the builtin
base a Python user would catch, and carries the command line's exit code."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import stresslab
from stresslab import errors


def _defined_exceptions() -> set[type[BaseException]]:
    found = set()
    for module in pkgutil.walk_packages(stresslab.__path__, "stresslab."):
        if module.name == "stresslab.cli":
            continue  # the CLI's own click exception is how errors are shown, not raised to users
        for _, value in inspect.getmembers(importlib.import_module(module.name), inspect.isclass):
            if issubclass(value, BaseException) and value.__module__.startswith("stresslab"):
                found.add(value)
    return found


def test_every_exception_stresslab_defines_is_a_stresslab_error():
    defined = _defined_exceptions()
    assert {errors.ConfigError, errors.RunError, errors.MissingVariableError} <= defined
    outside = sorted(f"{cls.__module__}.{cls.__qualname__}" for cls in defined
                     if not issubclass(cls, errors.StresslabError))
    assert not outside, f"exceptions outside the StresslabError family: {outside}"
    assert {cls.__module__ for cls in defined} == {"stresslab.errors"}, "every error is defined in stresslab.errors"


@pytest.mark.parametrize(("error", "builtin", "exit_code"), [
    (errors.ConfigError("simulation.dt: bad"), ValueError, 2),
    (errors.SettingError("device", "no GPU"), ValueError, 2),
    (errors.ResultError("not a result"), ValueError, 2),
    (errors.CheckpointError("a partial run is in the way"), FileExistsError, 2),
    (errors.MissingVariableError("no data variable 'bad_debt'"), KeyError, 2),
    (errors.OutputError("x.zarr: the directory a does not exist"), ValueError, 2),
    (errors.OutputInTheWay("x.zarr already exists", [("overwrite", "to replace it")]), FileExistsError, 2),
    (errors.UnknownConfig("crypto_squeez: no such config"), LookupError, 2),
    (errors.DataError("--data x: no such file"), ValueError, 2),
    (errors.RunError("unstable feedback"), RuntimeError, 1),
    (errors.PeerError("process 1: bad config", usage=True), errors.StresslabError, 2),
    (errors.PeerError("process 1: lost", usage=False), errors.StresslabError, 1),
])
def test_each_error_keeps_its_builtin_base_and_exit_code(error, builtin, exit_code):
    assert isinstance(error, errors.StresslabError) and isinstance(error, builtin)
    assert error.exit_code == exit_code


def test_a_bad_config_is_caught_as_a_stresslab_error_naming_the_field():
    with pytest.raises(stresslab.StresslabError, match="liquidity.impact") as raised:
        stresslab.load_config({"simulation": {"steps": 10}, "liquidity": {"impact": "cubic"}})
    assert isinstance(raised.value, ValueError) and raised.value.exit_code == 2


def test_an_output_in_the_way_names_the_argument_that_clears_it_as_each_caller_spells_it():
    error = errors.OutputInTheWay("x.zarr already exists", [("overwrite", "to replace it")])
    assert str(error) == "x.zarr already exists; pass overwrite=True to replace it"
    assert error.explain(lambda name: f"--{name}") == "x.zarr already exists; pass --overwrite to replace it"
    peer = errors.PeerError("process 1: x.zarr already exists", usage=True, remedies=[("overwrite", "to replace it")])
    assert peer.explain(lambda name: f"--{name}").endswith("pass --overwrite to replace it")
