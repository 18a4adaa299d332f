"""Circuit-breaker halt statistics: known answers, lazy Zarr, the summary table and the report's halt section."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from synthetic import OTHER_PER_PATH, result, with_halts

import stresslab  # noqa: F401  (registers ds.stress)
from stresslab.io import store
from stresslab.metrics import MissingVariableError, halt_stats, summary_table
from stresslab.metrics.tail import HALT_VARIABLES
from stresslab.report import build, tables

HALT_COLUMNS = ["p_halt", "mean_halt_count", "mean_halted_time", "halted_time_50", "halted_time_95",
                "halted_time_99"]
BASE_COLUMNS = ["cascade_depth_var_95", "cascade_depth_es_95", "cascade_depth_var_99", "cascade_depth_es_99",
                "p_liquidation", "mean_bad_debt"]
MINUTE = 60.0
PATHS = 100


@pytest.fixture(scope="module")
def known() -> xr.Dataset:
    """Two scenarios of 100 paths with answers by hand, the paths shuffled.

    Scenario 0: 50 paths never halt; path k of the other 50 (k = 1..50) halts k // 10 + 1
    times for k minutes in all. Scenario 1: every path halts once, for 10 s.
    """
    rng = np.random.default_rng(1)
    minutes = np.concatenate([np.zeros(50), np.arange(1, 51)])
    counts = np.concatenate([np.zeros(50, dtype=np.int32), np.arange(1, 51) // 10 + 1])
    order = rng.permutation(PATHS)
    halted = np.stack([MINUTE * minutes[order], np.full(PATHS, 10.0)]).astype(np.float32)
    count = np.stack([counts[order], np.ones(PATHS, dtype=np.int32)]).astype(np.int32)
    return with_halts(halted, count)


def test_halt_stats_match_answers_by_hand(known: xr.Dataset) -> None:
    stats = known.stress.halts()
    assert list(stats.data_vars) == HALT_COLUMNS
    np.testing.assert_array_equal(stats["p_halt"], [0.5, 1.0])
    # counts 1..5: k // 10 + 1 for k = 1..50 is 1 (k < 10) nine times, 2..5 ten times each and 6 once
    np.testing.assert_allclose(stats["mean_halt_count"], [(9 * 1 + 10 * (2 + 3 + 4 + 5) + 6) / PATHS, 1.0])
    np.testing.assert_allclose(stats["mean_halted_time"], [MINUTE * 1275 / PATHS, 10.0])
    # inverted-CDF quantiles: the 50th smallest is 0, the 95th is 45 minutes, the 99th is 49 minutes
    np.testing.assert_array_equal(stats["halted_time_50"], [0.0, 10.0])
    np.testing.assert_array_equal(stats["halted_time_95"], [45 * MINUTE, 10.0])
    np.testing.assert_array_equal(stats["halted_time_99"], [49 * MINUTE, 10.0])
    np.testing.assert_array_equal(stats["breakers.threshold"], known["breakers.threshold"])
    assert stats["p_halt"].attrs["units"] == "1" and stats["halted_time_95"].attrs["units"] == "s"
    assert "95 % quantile over paths of time halted" == stats["halted_time_95"].attrs["long_name"]
    assert all(v.dtype == np.float64 and v.dims == ("scenario",) for v in stats.data_vars.values())
    xr.testing.assert_identical(stats, halt_stats(known))


def test_halt_quantiles_are_var_and_other_levels_can_be_asked_for(known: xr.Dataset) -> None:
    stats = known.stress.halts(quantiles=(0.1, 0.75, 0.999))
    assert [name for name in stats.data_vars if str(name).startswith("halted_time_")] == [
        "halted_time_10", "halted_time_75", "halted_time_99_9"]
    for level, name in ((0.1, "halted_time_10"), (0.75, "halted_time_75"), (0.999, "halted_time_99_9")):
        np.testing.assert_array_equal(stats[name], known.stress.var("halted_time", level))


def test_halt_stats_properties_on_random_halts() -> None:
    ds = result(scenarios=3, paths=2000, halts=True, seed=4)
    stats = ds.stress.halts()
    time, count = ds["halted_time"].values, ds["halt_count"].values
    np.testing.assert_allclose(stats["p_halt"], (count > 0).mean(axis=-1))
    np.testing.assert_allclose(stats["mean_halted_time"], time.mean(axis=-1, dtype=np.float64))
    assert (stats["halted_time_50"] <= stats["halted_time_95"]).all()
    assert (stats["halted_time_95"] <= stats["halted_time_99"]).all()
    assert (stats["halted_time_99"] <= time.max(axis=-1)).all()
    # a path halts when and only when it has halted time: P(halt) is also the share of paths with time > 0
    np.testing.assert_allclose(stats["p_halt"], (time > 0).mean(axis=-1))


def test_a_nan_halted_time_makes_its_scenario_nan_but_not_p_halt(known: xr.Dataset) -> None:
    ds = known.copy(deep=True)
    ds["halted_time"][1, 3] = np.nan
    stats = ds.stress.halts()
    for name in HALT_COLUMNS[2:]:
        assert np.isfinite(stats[name][0]) and np.isnan(stats[name][1]), name
    np.testing.assert_array_equal(stats["p_halt"], [0.5, 1.0])


@pytest.mark.parametrize("absent", [("halted_time", "halt_count"), ("halted_time",), ("halt_count",)])
def test_missing_halt_variables_are_a_clear_value_error(absent: tuple[str, ...]) -> None:
    ds = result(halts=True).drop_vars(list(absent))
    for call in (ds.stress.halts, lambda: halt_stats(ds)):
        with pytest.raises(ValueError, match="halt statistics: no data variable") as raised:
            call()
        message = str(raised.value)
        assert all(repr(name) in message.split(";")[0] for name in absent)
        assert "per-path variables: bad_debt, cascade_depth" in message
    with pytest.raises(KeyError):  # also a KeyError, like any missing Dataset key
        ds.stress.halts()
    assert issubclass(MissingVariableError, KeyError) and issubclass(MissingVariableError, ValueError)


def test_bad_quantile_level_is_refused(known: xr.Dataset) -> None:
    with pytest.raises(ValueError, match="quantile level must be strictly between 0 and 1"):
        known.stress.halts(quantiles=(0.5, 99))


def test_halt_stats_on_a_lazily_opened_zarr_store(tmp_path: Path) -> None:
    ds = result(scenarios=2, paths=300, halts=True, others=True, seed=5)
    lazy = xr.open_zarr(store.write(ds, tmp_path / "run.zarr"))
    assert not isinstance(lazy["halted_time"].variable._data, np.ndarray)  # not read yet
    xr.testing.assert_allclose(lazy.stress.halts().load(), ds.stress.halts())
    pd.testing.assert_frame_equal(lazy.stress.summary(), ds.stress.summary())


def test_halt_stats_on_dask_chunks_across_paths(tmp_path: Path) -> None:
    ds = result(scenarios=2, paths=300, halts=True, seed=6)
    lazy = xr.open_zarr(store.write(ds, tmp_path / "run.zarr")).chunk({"path": 70})
    assert lazy["halted_time"].chunks is not None and len(lazy["halted_time"].chunks[1]) > 1
    xr.testing.assert_allclose(lazy.stress.halts().compute(), ds.stress.halts())


def test_summary_has_halt_columns_only_when_both_variables_are_there() -> None:
    plain = result()
    assert list(plain.stress.summary().columns) == ["market.sigma", *BASE_COLUMNS]
    halted = result(halts=True)
    table = halted.stress.summary()
    assert list(table.columns) == ["market.sigma", *BASE_COLUMNS, *HALT_COLUMNS]
    stats = halted.stress.halts()
    for name in HALT_COLUMNS:
        np.testing.assert_array_equal(table[name], stats[name])
    only_time = halted.drop_vars("halt_count")
    assert list(summary_table(only_time).columns) == ["market.sigma", *BASE_COLUMNS]
    without_breakers = halted.assign_attrs(config='[breakers]\nenabled = false\n')
    assert list(without_breakers.stress.summary().columns) == ["market.sigma", *BASE_COLUMNS]
    assert tables.halt_table(without_breakers) is None
    swept_on = halted.assign_attrs(config='[breakers]\nenabled = [false, true]\n')
    assert list(swept_on.stress.summary().columns) == ["market.sigma", *BASE_COLUMNS, *HALT_COLUMNS]


def test_other_per_path_variables_leave_the_summary_alone() -> None:
    plain, others = result(seed=7), result(others=True, seed=7)
    assert set(OTHER_PER_PATH) <= set(others.data_vars)
    assert others["venue_cascade_depth"].dims == ("scenario", "path", "venue")
    pd.testing.assert_frame_equal(others.stress.summary()[["market.sigma", *BASE_COLUMNS]], plain.stress.summary())
    pd.testing.assert_frame_equal(tables.display_table(others), tables.display_table(plain))


def test_halt_table_formats_the_halt_stats(known: xr.Dataset) -> None:
    table = tables.halt_table(known)
    assert table is not None and table.index.name == "scenario"
    assert list(table.columns) == ["breakers.threshold", "P(halt)", "mean halts", "mean halted (s)", "halted 50% (s)",
                                   "halted 95% (s)", "halted 99% (s)"]
    assert table.loc[0].tolist()[1:] == ["50.00%", "1.55", "765.0", "0.0", "2,700.0", "2,940.0"]
    assert table.loc[1].tolist()[1:] == ["100.00%", "1.00", "10.0", "10.0", "10.0", "10.0"]
    assert tables.halt_table(known.drop_vars("halt_count")) is None


@pytest.mark.parametrize(("halts", "others"), [(False, False), (True, False), (True, True)])
def test_report_has_a_halt_section_exactly_when_the_result_has_halts(halts: bool, others: bool,
                                                                     tmp_path: Path) -> None:
    ds = result(paths=200, halts=halts, others=others, seed=8)
    directory = build.write_report(ds, tmp_path / "r")
    summary = (directory / build.SUMMARY_FILE).read_text(encoding="utf-8")
    page = (directory / build.HTML_FILE).read_text(encoding="utf-8")
    assert "## Tail metrics" in summary and "depth VaR/ES 99%" in page
    if halts:
        stats = tables.halt_table(ds)
        assert summary.index("## Tail metrics") < summary.index("## Circuit breakers") < summary.index("## Run")
        assert "| scenario | market.sigma | P(halt) | mean halts |" in summary
        assert f"| 0 | 0.5 | {' | '.join(stats.loc[0].tolist()[1:])} |" in summary
        assert "<h2>Circuit breakers</h2>" in page and stats.loc[1, "P(halt)"] in page
    else:
        assert "Circuit breakers" not in summary and "Circuit breakers" not in page
    assert not any(name in summary for name in OTHER_PER_PATH)


def test_load_result_keeps_the_halt_variables_when_there(tmp_path: Path) -> None:
    for halts in (False, True):
        path = tmp_path / f"halts-{halts}.zarr"
        loaded = build.load_result(store.write(result(paths=50, halts=halts, others=halts), path))
        assert set(loaded.data_vars) == set(build.REQUIRED) | (set(HALT_VARIABLES) if halts else set())
