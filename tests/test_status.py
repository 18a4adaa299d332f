"""Problems recorded inside the kernel are reported per scenario with mechanism and step."""

from __future__ import annotations

import numpy as np
import pytest

import stresslab
from stresslab import status

EMPTIED_BOOK = {  # a sell 50 000 times the 1 % depth in one step: no price clears it on a flat book
    "simulation": {"horizon": "2h", "dt": "1min", "record_points": 4},
    "market": {"sigma": 0.5, "shocks": [{"type": "sell_program", "start": "30min", "notional": 5e10,
                                         "duration": "1min"}]},
    "liquidity": {"depth": 1e6, "impact": "linear"},
}
FUND = {
    "simulation": {"horizon": "2h", "dt": "1min", "record_points": 4},
    "market": {"sigma": 0.5, "shocks": [{"type": "gap", "at": "30min", "size": -0.1}]},
    "liquidity": {"depth": 5e8, "impact": "sqrt"},
    "position_grids": [{"side": "long", "notional": 5e8, "leverage_min": 5, "leverage_max": 50, "cohorts": 6}],
    "liquidation": {"insurance_fund": 1e5},
}


@pytest.mark.slow
def test_an_emptied_book_is_an_error_naming_mechanism_and_step():
    with pytest.raises(stresslab.StresslabError,
                       match=r"scenario 0, price impact: .* first in the step from 30min to 31min \(step 30"):
        stresslab.simulate(EMPTIED_BOOK, paths=50)
    with pytest.warns(RuntimeWarning, match="price impact"):
        ds = stresslab.simulate(EMPTIED_BOOK, paths=50, on_error="warn")
    assert (ds.floor_step == 30).all()
    assert np.isfinite(ds.min_price).all() and (ds.min_price > 0).all()


@pytest.mark.slow
def test_an_exhausted_fund_is_reported_but_not_an_error():
    with pytest.warns(RuntimeWarning, match=r"insurance fund: the insurance fund was exhausted on 100\.00% of paths, "
                                            r"first in the step from 30min to 31min"):
        ds = stresslab.simulate(FUND, paths=50)
    assert (ds.fund_exhausted_step == 30).all() and (ds.insurance_fund == 0).all()


def test_status_report_for_every_problem_kind():
    n = 4
    quiet = {name: np.full(n, -1) for name in ("unstable_step", "floor_step", "nonfinite_step", "fund_exhausted_step")}
    quiet["rounds_exhausted"] = np.zeros(n, int)
    status.report(quiet, 0, 60.0, "raise")
    for field, mechanism in [("unstable_step", "dealer hedging"), ("floor_step", "price impact"),
                             ("nonfinite_step", "numerics")]:
        bad = dict(quiet, **{field: np.array([-1, 7, 3, -1])})
        with pytest.raises(stresslab.StresslabError, match=rf"scenario 2, {mechanism}: .* on 50\.00% of paths, "
                                                           r"first in the step from 3min to 4min \(step 3, "
                                                           r"counted from 0\)"):
            status.report(bad, 2, 60.0, "raise")
        with pytest.warns(RuntimeWarning, match=mechanism):
            status.report(bad, 2, 60.0, "warn")
    with pytest.warns(RuntimeWarning, match="cascade_rounds"):
        status.report(dict(quiet, rounds_exhausted=np.array([0, 2, 0, 0])), 0, 60.0, "raise")


@pytest.mark.slow
@pytest.mark.parametrize("on_error,code", [("raise", 1), ("warn", 0)])
def test_cli_on_error_choice(cli_process, config_file, on_error, code):
    done = cli_process("run", config_file(EMPTIED_BOOK), "--paths", "20", "--on-error", on_error, timeout=300)
    assert done.returncode == code, done.stderr
    assert "price impact" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_provenance_attributes():
    ds = stresslab.simulate(FUND, paths=5, on_error="warn")
    for key in ("config", "seed", "paths", "stresslab_version", "jax_version", "backend", "device_count",
                "git_commit", "Conventions", "history", "date_created", "currency"):
        assert key in ds.attrs
    assert ds.attrs["device_count"] >= 1
    assert len(ds.attrs["git_commit"]) == 40  # a checkout; an install without a recorded commit has none
