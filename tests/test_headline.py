"""The headline metrics: values by hand on a synthetic result, the metrics file, and ``stresslab run --metrics``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import Cli
from scipy import stats
from synthetic import CURRENCY, result

from stresslab.metrics import headline, write_metrics
from stresslab.metrics.headline import HEADLINE_VARIABLES
from stresslab.report import tables

PATHS = 400
CONFIG = """\
[simulation]
paths = 300
horizon = "30min"
dt = "1min"
record_points = 4

[market]
sigma = 2.0
currency = "EUR"
jumps = { intensity = 300, mean = -0.02, std = 0.02 }

[[positions]]
side = "long"
leverage = 40
notional = 5e8
"""


def _by_hand(x: np.ndarray, level: float, confidence: float = 0.95) -> dict[str, float]:
    """VaR, ES and their intervals of the path values ``x`` computed from the order statistics, as the docs say."""
    n = x.size
    ordered = np.sort(x.astype(np.float64))
    rank = math.ceil(round(level * n, 9))
    tail = n - math.floor(round(level * n, 9))
    value_at_risk = ordered[rank - 1]
    worst = ordered[n - tail:]
    shortfall = worst.mean()
    lower = int(stats.binom.ppf((1 - confidence) / 2, n, level))
    upper = int(stats.binom.ppf((1 + confidence) / 2, n, level)) + 1
    se = math.sqrt((worst.var(ddof=1) + level * (shortfall - value_at_risk) ** 2) / tail)
    z = stats.norm.ppf((1 + confidence) / 2)
    return {"var": value_at_risk, "var_lower": ordered[max(lower, 1) - 1], "var_upper": ordered[min(upper, n) - 1],
            "es": shortfall, "es_lower": shortfall - z * se, "es_upper": shortfall + z * se}


def test_headline_matches_a_hand_computation() -> None:
    ds = result(scenarios=2, paths=PATHS, seed=3)
    fund = np.where(np.arange(PATHS) % 4 == 0, 17, -1)[None, :] * np.ones((2, 1), dtype=np.int32)
    fund[1] = -1
    ds["fund_exhausted_step"] = (("scenario", "path"), fund.astype(np.int32), {"units": "1"})
    table = headline(ds, levels=(0.95, 0.99))
    assert table.index.name == "scenario" and list(table.index) == [0, 1]
    assert table.columns[0] == "market.sigma"
    for position in range(2):
        one = ds.isel(scenario=position)
        values = {"cascade_depth": one.cascade_depth.values, "bad_debt": one.bad_debt.values,
                  "liquidated": one.liquidated_long.values.astype(np.float64) + one.liquidated_short.values}
        for name in HEADLINE_VARIABLES:
            for level, suffix in ((0.95, "95"), (0.99, "99")):
                expected = _by_hand(values[name], level)
                for key, value in expected.items():
                    measure, *bound = key.split("_")
                    column = "_".join([name, measure, suffix, *bound])
                    assert table.iloc[position][column] == pytest.approx(value, rel=1e-6), column
        liquidated = values["liquidated"] > 0
        assert table.iloc[position]["p_liquidation"] == pytest.approx(liquidated.mean())
    assert table["p_fund_exhausted"].tolist() == [0.25, 0.0]
    assert table.attrs["units"]["liquidated_es_99_upper"] == CURRENCY
    assert table.attrs["units"]["cascade_depth_var_95"] == "1" and table.attrs["units"]["p_liquidation"] == "1"
    assert table.attrs["currency"] == CURRENCY and table.attrs["paths"] == PATHS


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_write_metrics_writes_json_and_csv(suffix: str, tmp_path: Path) -> None:
    ds = result(scenarios=2, paths=PATHS, seed=4)
    table = headline(ds)
    target = write_metrics(ds, tmp_path / "out" / f"metrics{suffix}")
    assert target == tmp_path / "out" / f"metrics{suffix}"
    if suffix == ".csv":
        back = pd.read_csv(target, index_col="scenario")
        pd.testing.assert_frame_equal(back, table, check_exact=False, rtol=1e-12)
        return
    document = json.loads(target.read_text(encoding="utf-8"))
    assert document["currency"] == CURRENCY and document["levels"] == [0.95, 0.99] and document["confidence"] == 0.95
    assert document["units"]["bad_debt_es_95"] == CURRENCY
    assert [row["scenario"] for row in document["scenarios"]] == [0, 1]
    for row, (_, values) in zip(document["scenarios"], table.iterrows(), strict=True):
        assert row.keys() == {"scenario", *table.columns}
        assert all(row[name] == pytest.approx(values[name]) for name in table.columns)


def test_nan_is_null_in_json(tmp_path: Path) -> None:
    ds = result(scenarios=1, paths=50)
    ds["cascade_depth"][0, 3] = np.nan
    row = json.loads(write_metrics(ds, tmp_path / "m.json").read_text())["scenarios"][0]
    assert row["cascade_depth_var_99"] is None and row["bad_debt_var_99"] is not None


@pytest.mark.parametrize("name", ["metrics.txt", "metrics", "metrics.zarr"])
def test_write_metrics_refuses_other_suffixes(name: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"a metrics file ends in \.json or \.csv \(it has "):
        write_metrics(result(scenarios=1, paths=20), tmp_path / name)
    assert not list(tmp_path.iterdir())


def test_printed_table_shows_the_money_in_the_currency_within_120_columns() -> None:
    ds = result(scenarios=2, paths=PATHS, seed=5).assign(
        liquidated_long=lambda d: d.liquidated_long * 1e4, bad_debt=lambda d: d.bad_debt * 1e2)
    text = tables.display_table(ds).reset_index().to_string(index=False)
    header = text.splitlines()[0]
    assert "liq VaR/ES 99% (USD bn)" in header and "bad debt VaR/ES 99% (USD m)" in header
    assert "P(liq)" in header and "depth VaR/ES 99%" in header
    assert max(len(line) for line in text.splitlines()) <= 120
    liquidated = (ds.liquidated_long + ds.liquidated_short).isel(scenario=0).values.astype(np.float64)
    expected = _by_hand(liquidated, 0.99)
    cell = tables.display_table(ds).iloc[0]["liq VaR/ES 99% (USD bn)"]
    assert cell == f"{expected['var'] / 1e9:,.2f} / {expected['es'] / 1e9:,.2f}"
    caption = tables.caption(ds)
    assert "in USD" in caption and max(len(line) for line in caption.splitlines()) <= 100


def test_run_writes_metrics_of_a_real_run_in_its_currency(cli: Cli, config_file, tmp_path: Path) -> None:
    config = config_file(CONFIG)
    target = tmp_path / "m.json"
    done = cli("run", config, "--metrics", target, "--seed", "2")
    assert done.exit_code == 0, done.output
    assert f"metrics: {target}" in done.stdout
    assert "liq VaR/ES 99% (EUR" in done.stdout
    document = json.loads(target.read_text())
    assert document["currency"] == "EUR" and document["paths"] == 300
    row = document["scenarios"][0]
    assert 0 < row["cascade_depth_var_99_lower"] <= row["cascade_depth_var_99"] <= row["cascade_depth_var_99_upper"]
    assert row["liquidated_var_99"] <= row["liquidated_es_99"] and 0 < row["p_liquidation"] <= 1


def test_run_refuses_a_bad_metrics_suffix_before_simulating(cli: Cli, config_file, tmp_path: Path) -> None:
    done = cli("run", config_file(CONFIG), "--metrics", tmp_path / "m.txt")
    assert done.exit_code == 2
    assert "a metrics file ends in .json or .csv (it has '.txt')" in done.stderr
    assert "paths per scenario" not in done.stdout  # no summary: nothing was simulated


def test_headline_of_a_plain_dataset_without_scenario_dim_is_refused() -> None:
    with pytest.raises(ValueError, match="no 'scenario' dim"):
        headline(result(scenarios=1, paths=20).isel(scenario=0))
    pd.testing.assert_frame_equal(result(scenarios=1, paths=20).stress.headline(), headline(result(scenarios=1,
                                                                                                 paths=20)))
