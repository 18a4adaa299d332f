"""The registry of outputs and the enumeration of problems (market/outputs.py, market/model.py)."""

from __future__ import annotations

import enum

import pytest

from stresslab.market import model
from stresslab.market.outputs import STEP_COUNT, STEP_INDEX, Output, Problem, Problems, Series


def test_an_output_or_series_without_known_units_fails_when_declared() -> None:
    with pytest.raises(ValueError, match=r"output 'depth_left': units 'percent' is not one of"):
        Output("depth_left", "percent", "depth left", lambda p, s, st, su: st)
    with pytest.raises(ValueError, match=r"output 'flow': units '' is not one of"):
        Series("flow", "", "flow", lambda p, s, st: st)


def test_problems_are_an_enumeration_of_recorded_outputs_fatal_first() -> None:
    assert issubclass(model.PROBLEMS, enum.Enum)
    members = list(model.PROBLEMS)
    assert {p.name for p in members} == {"unstable_step", "floor_step", "nonfinite_step", "rounds_exhausted",
                                          "fund_exhausted_step"}
    fatal = [p.fatal for p in members]
    assert fatal == sorted(fatal, reverse=True) and any(fatal) and not all(fatal)
    assert model.PROBLEMS["floor_step"] is model.PROBLEMS.floor_step
    assert model.PROBLEMS.floor_step.fatal and "liquidity.depth" in model.PROBLEMS.floor_step.advice
    assert not model.PROBLEMS.fund_exhausted_step.fatal
    for problem in members:
        assert problem.output == problem.name and problem.message and problem.advice
        units = model.output(problem.output).units
        assert units == (STEP_COUNT if problem.counted else STEP_INDEX)


def test_two_problems_recording_one_output_fail() -> None:
    first = Problem("spill_step", "book", "spilled", "raise depth", fatal=True)
    again = Problem("spill_step", "book", "spilled again", "raise depth", fatal=False)
    with pytest.raises(TypeError, match="spill_step"):
        Problems.collect([first, again])
    ordered = Problems.collect([Problem("a_step", "m", "warned", "x", fatal=False), first])
    assert [p.name for p in ordered] == ["spill_step", "a_step"]
