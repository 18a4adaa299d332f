"""The notebooks in notebooks/ execute without errors on a small path count, and are stored without outputs.

``historical_comparison.ipynb`` runs every config in ``configs/historical/`` (found at run time); its test
checks that the executed tail-metrics table has a row for each of those configs, with consistent numbers.
``calibration_walkthrough.ipynb`` calibrates the haircuts of ``configs/calibration/haircuts_crypto.toml`` with a few
iterations on a shortened horizon; its test checks that the held-out objective went down and that the before/after
market comparison is consistent with it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import nbclient
import nbformat
import pytest

ROOT = Path(__file__).parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
HISTORICAL_CONFIGS = ROOT / "configs" / "historical"
PATHS = "300"
PATHS_BY_NOTEBOOK = {"historical_comparison.ipynb": "200", "calibration_walkthrough.ipynb": "128"}
"""Paths per scenario where a notebook runs several configs (each one compiles, which dominates the run time);
for the calibration walkthrough, its training paths."""
CALIBRATION_HOLDOUT_PATHS = 1000
ENV_BY_NOTEBOOK = {
    "calibration_walkthrough.ipynb": {
        "STRESSLAB_NOTEBOOK_GENERATIONS": "4",
        "STRESSLAB_NOTEBOOK_ITERATIONS": "4",
        "STRESSLAB_NOTEBOOK_HOLDOUT_PATHS": str(CALIBRATION_HOLDOUT_PATHS),
        "STRESSLAB_NOTEBOOK_HORIZON": "3h",  # the gap at 1 h and the two hours of high volatility after it
    },
}
"""Further environment variables by notebook (about 80 s for the calibration walkthrough on a 2-core CPU)."""
NOTEBOOK_ENV_VARS = ("STRESSLAB_NOTEBOOK_CONFIGS", *sorted({name for env in ENV_BY_NOTEBOOK.values() for name in env}))
"""Cleared before each run, so that a developer's own settings never leak into a test."""
CELL_TIMEOUT_S = 300
"""Seconds per cell: the historical notebook simulates every config in one cell."""
TAIL_TABLE_TAG = "tail-table"
"""Cell tag of the historical notebook's tail-metrics table, one row per config."""
HOLDOUT_TAG = "holdout"
"""Cell tag of the calibration walkthrough's held-out table: rows before, after; objective, its interval, paths."""
MARKET_TAG = "market-comparison"
"""Cell tag of the calibration walkthrough's table of tail metrics, initial vs calibrated market."""


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(notebook: Path) -> None:
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{notebook.name}: a cell has outputs; strip them before committing"
            assert cell.execution_count is None, f"{notebook.name}: a cell has an execution count"


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(notebook: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRESSLAB_NOTEBOOK_PATHS", PATHS_BY_NOTEBOOK.get(notebook.name, PATHS))
    for name in NOTEBOOK_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in ENV_BY_NOTEBOOK.get(notebook.name, {}).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")  # figures as PNG outputs
    monkeypatch.setenv("JAX_PLATFORMS", os.environ.get("JAX_PLATFORMS", "cpu"))
    nb = nbformat.read(notebook, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(notebook.parent)}}
    )
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    errors = [
        out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs if out.output_type == "error"
    ]
    assert not errors
    warned = [out.text for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
              if out.output_type == "stream" and out.name == "stderr" and "Warning" in out.text]
    assert not warned, f"{notebook.name}: warnings in the outputs (TqdmWarning, RuntimeWarning, ...): {warned}"
    assert _images(nb), "no figure was drawn"
    CHECKS.get(notebook.name, lambda nb: None)(nb)


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS


def _check_historical(nb: nbformat.NotebookNode) -> None:
    """Every historical config has a row in the tail table, a section with its header, and its figures."""
    stems = {path.stem for path in HISTORICAL_CONFIGS.glob("*.toml")}
    assert stems, f"no config in {HISTORICAL_CONFIGS}"
    columns, rows = _html_table(_tagged_html(nb, TAIL_TABLE_TAG))
    # one row per config; a config that sweeps gives one row per scenario, labelled "<config> [<scenario>]"
    assert {label.split(" [")[0] for label in rows} == stems
    assert len(rows) >= len(stems)
    for label, cells in rows.items():
        row = dict(zip(columns, cells, strict=True))
        assert 0 < row["depth_var_95"] <= row["depth_var_99"] <= row["depth_es_99"] <= 1, (label, row)
        assert row["depth_var_95"] <= row["depth_es_95"] <= row["depth_es_99"], (label, row)
        assert row["liquidated_var_99"] <= row["liquidated_es_99"], (label, row)
        assert 0 <= row["bad_debt_var_99"] <= row["bad_debt_es_99"], (label, row)
        assert row["mean_bad_debt"] >= 0, (label, row)
        for share in ("p_liquidation", "p_fund_exhausted", "p_adl"):
            assert 0 <= row[share] <= 1, (label, share, row)
    markdown = "\n".join(
        out["data"]["text/markdown"]
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if "text/markdown" in out.get("data", {})
    )
    for label in rows:
        assert f"### {label}\n" in markdown, f"no section for {label}"
    assert len(_images(nb)) >= len(rows) + 2, "expected the two exceedance figures and one figure per config"


def _check_calibration(nb: nbformat.NotebookNode) -> None:
    """The held-out objective fell, with sane intervals, and the market comparison agrees with the calibration."""
    columns, rows = _html_table(_tagged_html(nb, HOLDOUT_TAG))
    assert set(rows) == {"before", "after"}, rows
    before, after = (dict(zip(columns, rows[name], strict=True)) for name in ("before", "after"))
    for row in (before, after):
        assert row["lower"] <= row["objective"] <= row["upper"], row
        assert row["paths"] == CALIBRATION_HOLDOUT_PATHS, row
    # 4 iterations of 128 paths: ~ -9 % on the held-out paths, intervals ~ +-1 % (same paths before and after)
    assert after["objective"] < before["objective"], (before, after)
    columns, text = _html_cells(_tagged_html(nb, MARKET_TAG))
    assert columns[:2] == ["initial", "calibrated"], columns
    metrics = {label: {column: _number(cells[i]) for i, column in enumerate(columns[:2])}
               for label, cells in text.items()}
    for market in ("initial", "calibrated"):
        m = {label: values[market] for label, values in metrics.items()}
        assert 0 <= m["bad debt VaR 95 %"] <= m["bad debt ES 95 %"] <= m["bad debt ES 99 %"], (market, m)
        assert 0 <= m["P(insurance fund exhausted)"] <= 1, (market, m)
        assert 0 < m["mean cascade depth"] <= m["cascade depth ES 99 %"] <= 1, (market, m)
        # the calibrated haircut may be none at all (the corner of the box is this problem's optimum): ratio 1
        assert 0 <= m["mean haircut"] <= m["max haircut"] <= 1 <= m["haircut ratio (peak / trough)"], (market, m)
        assert math.isclose(m["objective (hard rules)"], m["bad debt ES 95 %"] + m["haircut cost"], rel_tol=2e-3)
    assert metrics["mean haircut"]["initial"] > 0, metrics["mean haircut"]
    # the calibrated config carries the tuned (lower) haircuts into simulate, and is better there too (same seed)
    assert metrics["mean haircut"]["calibrated"] < metrics["mean haircut"]["initial"], metrics["mean haircut"]
    objective = metrics["objective (hard rules)"]
    assert objective["calibrated"] < objective["initial"], objective
    assert len(_images(nb)) >= 3, "expected the trace and the two exceedance figures"


CHECKS: dict[str, Callable[[nbformat.NotebookNode], None]] = {
    "historical_comparison.ipynb": _check_historical,
    "calibration_walkthrough.ipynb": _check_calibration,
}
"""Checks of a notebook's executed outputs, beyond running without errors and drawing a figure."""


def _tagged_html(nb: nbformat.NotebookNode, tag: str) -> str:
    """The HTML output (a table) of the one code cell tagged ``tag``."""
    tagged = [cell for cell in nb.cells if tag in cell.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"one cell must be tagged {tag!r}"
    html = [out["data"]["text/html"] for out in tagged[0].outputs if "text/html" in out.get("data", {})]
    assert html, f"the cell tagged {tag!r} shows no table"
    return html[0]


def _images(nb: nbformat.NotebookNode) -> list[str]:
    return [
        out["data"]["image/png"]
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if "image/png" in out.get("data", {})
    ]


class _TableParser(HTMLParser):
    """The header and body rows of a pandas DataFrame's HTML output, as lists of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.head: list[list[str]] = []
        self.body: list[list[str]] = []
        self._section = ""
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("thead", "tbody"):
            self._section = tag
        elif tag == "tr":
            self._row = []
        elif tag in ("th", "td") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("th", "td") and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            (self.head if self._section == "thead" else self.body).append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _html_cells(html: str) -> tuple[list[str], dict[str, list[str]]]:
    """Column names and {row label: cell texts} of a DataFrame's (or Styler's) HTML output."""
    parser = _TableParser()
    parser.feed(html)
    columns = parser.head[0][1:]
    rows = {cells[0]: cells[1:] for cells in parser.body}
    assert all(len(values) == len(columns) for values in rows.values()), "ragged table"
    return columns, rows


def _html_table(html: str) -> tuple[list[str], dict[str, list[float]]]:
    """Column names and {row label: numbers} of a DataFrame's HTML output (numbers may hold thousands commas)."""
    columns, rows = _html_cells(html)
    return columns, {label: [_number(text) for text in cells] for label, cells in rows.items()}


def _number(text: str) -> float:
    value = float(text.replace(",", ""))
    assert not math.isnan(value), "a tail metric is NaN"
    return value
