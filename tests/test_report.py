"""The ``ds.stress`` accessor and ``stresslab report``: values, files, self-contained HTML, errors, rendering."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from helpers import Cli

from stresslab.io import store
from stresslab.metrics import tail
from stresslab.metrics.headline import headline
from stresslab.report import build, figures

SCENARIOS = 2
CONFIG = """\
[simulation]
paths = 200
horizon = "1h"
dt = "1min"
record_points = 6

[market]
sigma = [0.5, 3.0]

[[positions]]
side = "long"
leverage = 20
notional = 5e6

[[positions]]
side = "short"
leverage = 20
notional = 5e6
"""
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MIN_PNG_BYTES = 5_000
PNG_SIDE = (200, 4_000)
"""Sane bounds of a figure's width and height, pixels."""
LEVELS = (0.5, 0.95, 0.99)
THRESHOLDS = (0.0, 0.01, 0.05)
CHROMIUM = "/usr/bin/chromium"
BROWSER_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def result(cli: Cli, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-scenario sweep written by ``stresslab run --out`` to a Zarr store."""
    directory = tmp_path_factory.mktemp("run")
    config = directory / "sweep.toml"
    config.write_text(CONFIG)
    out = directory / "sweep.zarr"
    done = cli("run", config, "--out", out)
    assert done.exit_code == 0, done.output
    return out


@pytest.fixture(scope="module")
def report_dir(cli: Cli, result: Path) -> Path:
    done = cli("report", result)
    assert done.exit_code == 0, done.output
    directory = result.with_suffix(".report")
    assert done.stdout.strip() == f"report: {directory / build.HTML_FILE}"
    return directory


def test_accessor_equals_tail_functions_in_memory_and_on_lazy_zarr(result: Path) -> None:
    lazy = store.read(result)
    assert not isinstance(lazy["cascade_depth"].variable._data, np.ndarray)  # not loaded yet
    loaded = lazy.load()
    for ds in (store.read(result), loaded):
        for name in ("cascade_depth", "bad_debt", "liquidated_long"):
            for level in LEVELS:
                xr.testing.assert_identical(ds.stress.var(name, level), tail.var(loaded[name], level))
                xr.testing.assert_identical(ds.stress.es(name, level), tail.es(loaded[name], level))
            for threshold in THRESHOLDS:
                xr.testing.assert_identical(ds.stress.exceedance(name, threshold),
                                            tail.exceedance(loaded[name], threshold))
        assert ds.stress.var("cascade_depth", 0.99).sizes == {"scenario": SCENARIOS}
        assert ds.stress.summary().equals(tail.summary_table(loaded))


def test_accessor_names_the_per_path_variables_when_asked_for_a_missing_one(result: Path) -> None:
    with pytest.raises(KeyError, match="no data variable 'depth'.*cascade_depth"):
        store.read(result).stress.var("depth", 0.99)


def test_report_writes_figures_summary_and_self_contained_html(report_dir: Path) -> None:
    expected = {plot.file for plot in build.PLOTS} | {build.SUMMARY_FILE, build.HTML_FILE, build.METRICS_FILE}
    assert {p.name for p in report_dir.iterdir()} == expected
    for plot in build.PLOTS:
        data = (report_dir / plot.file).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > MIN_PNG_BYTES, plot.file
        width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
        assert PNG_SIDE[0] <= width <= PNG_SIDE[1] and PNG_SIDE[0] <= height <= PNG_SIDE[1], (plot.file, width, height)

    page = (report_dir / build.HTML_FILE).read_text(encoding="utf-8")
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == len(build.PLOTS)
    assert all(source.startswith("data:image/png;base64,") for source in sources)
    assert not re.search(r"https?://|<link|<script|url\(", page)
    assert "depth VaR/ES 99%" in page and "liq VaR/ES 99% (USD" in page and "market.sigma" in page

    summary = (report_dir / build.SUMMARY_FILE).read_text(encoding="utf-8")
    assert "| scenario | market.sigma | depth VaR/ES 99% |" in summary
    assert "- **seed**: 0" in summary and "- **git_commit**: " in summary and "unknown" not in summary
    assert "Run on 20" in summary and "- **date_created**: 20" in summary and "- **currency**: USD" in summary
    assert "Circuit breakers" not in summary  # the config has none: no table of zeros
    assert "```toml" in summary and 'horizon = "1h"' in summary
    assert all(f"({plot.file})" in summary for plot in build.PLOTS)


def test_report_of_netcdf_result_and_refusal_to_overwrite(cli: Cli, result: Path, tmp_path: Path) -> None:
    netcdf = store.write(store.read(result).load(), tmp_path / "sweep.nc")
    out = tmp_path / "elsewhere" / "r"
    out.parent.mkdir()  # a missing directory is refused (tests/test_cli.py), not created
    assert cli("report", netcdf, "--out", out).exit_code == 0
    assert (out / build.HTML_FILE).is_file()
    refused = cli("report", netcdf, "--out", out)
    assert refused.exit_code == 2 and "already exists" in refused.stderr and "--overwrite" in refused.stderr
    assert cli("report", netcdf, "--out", out, "--overwrite").exit_code == 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["r"]  # no temporary directory left


@pytest.mark.parametrize(("name", "make", "fragment"), [
    ("missing.zarr", None, "no such results file or Zarr store"),
    ("text.nc", "text", "not a readable netCDF file"),
    ("empty.zarr", "dir", "not a readable Zarr store"),
])
def test_report_of_missing_or_unreadable_result_is_a_one_line_error(cli: Cli, name: str, make: str | None,
                                                                    fragment: str, tmp_path: Path) -> None:
    path = tmp_path / name
    if make == "text":
        path.write_text("not a result")
    elif make == "dir":
        path.mkdir()
    done = cli("report", path)
    assert done.exit_code == 2
    assert done.stderr.startswith(f"error: {path}: {fragment}")
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.output
    assert not path.with_suffix(".report").exists()


def test_report_of_a_dataset_without_the_results_variables(cli: Cli, tmp_path: Path) -> None:
    other = store.write(xr.Dataset({"x": ("path", np.arange(3.0))}), tmp_path / "other.zarr")
    done = cli("report", other)
    assert done.exit_code == 2
    assert done.stderr.startswith(f"error: {other}: not a stresslab result; missing variables: cascade_depth")


def test_figures_of_a_large_sweep_with_a_nan_path(result: Path) -> None:
    """More scenarios than a figure draws, and a NaN path (VaR and ES undefined): every figure is still drawn."""
    copies = figures.MAX_SCENARIOS // SCENARIOS + 1
    ds = xr.concat([store.read(result).load()] * copies, "scenario")
    ds = ds.assign_coords(scenario=np.arange(ds.sizes["scenario"]))
    ds["cascade_depth"][0, 0] = np.nan
    histogram = figures.depth_histogram(ds)
    assert f"first {figures.MAX_SCENARIOS} of {SCENARIOS * copies} scenarios" in histogram.get_suptitle()
    assert "1 non-finite paths left out" in histogram.axes[0].get_xlabel()
    for plot in build.PLOTS:
        drawn = plot.draw(ds)
        assert len([ax for ax in drawn.axes if ax.get_visible()]) in (1, figures.MAX_SCENARIOS), plot.file


@pytest.mark.slow
def test_report_html_renders_in_headless_chromium(report_dir: Path, tmp_path: Path) -> None:
    browser = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if browser is None:
        pytest.skip("chromium not installed: apt-get install chromium")
    screenshot = tmp_path / "page.png"
    page = (report_dir / build.HTML_FILE).resolve()
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,2000", f"--screenshot={screenshot}",
         page.as_uri()],
        capture_output=True, timeout=BROWSER_TIMEOUT_S, check=True,
    )
    data = screenshot.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > MIN_PNG_BYTES



def test_report_writes_the_headline_metrics_and_names_the_config(report_dir: Path, result: Path,
                                                                 tmp_path: Path) -> None:
    metrics = json.loads((report_dir / build.METRICS_FILE).read_text(encoding="utf-8"))
    expected = headline(build.load_result(result))
    assert metrics["currency"] == "USD" and metrics["paths"] == 200 and len(metrics["scenarios"]) == SCENARIOS
    for row, (label, values) in zip(metrics["scenarios"], expected.iterrows(), strict=True):
        assert row["scenario"] == label
        assert row["liquidated_es_99"] == pytest.approx(values["liquidated_es_99"])
        assert row["bad_debt_var_95_upper"] == pytest.approx(values["bad_debt_var_95_upper"])
    named = build.write_report(build.load_result(result).assign_attrs(config_name="sweep"), tmp_path / "named")
    assert (named / build.SUMMARY_FILE).read_text(encoding="utf-8").startswith("# stresslab report: sweep\n")
    assert "<h1>stresslab report: sweep</h1>" in (named / build.HTML_FILE).read_text(encoding="utf-8")


def test_a_result_with_the_old_quantile_dim_still_makes_a_report(result: Path, tmp_path: Path) -> None:
    old = store.write(store.read(result).load().rename(level="quantile"), tmp_path / "old.zarr")
    loaded = build.load_result(old)
    assert "level" in loaded.dims and "quantile" not in loaded.dims
    assert (build.write_report(loaded, tmp_path / "old.report") / build.HTML_FILE).is_file()
