"""The notebooks in notebooks/ execute without errors on a small path count, and are stored without outputs.

``historical_comparison.ipynb`` runs every config in ``configs/historical/`` (found at run time); its test
checks that the executed tail-metrics table has a row for each of those configs, with consistent numbers.
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
PATHS_BY_NOTEBOOK = {"historical_comparison.ipynb": "200"}
"""Paths per scenario where a notebook runs several configs (each one compiles, which dominates the run time)."""
CELL_TIMEOUT_S = 300
"""Seconds per cell: the historical notebook simulates every config in one cell."""
TAIL_TABLE_TAG = "tail-table"
"""Cell tag of the historical notebook's tail-metrics table, one row per config."""


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(notebook: Path) -> None:
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{notebook.name}: a cell has outputs; strip them before committing"
            assert cell.execution_count is None, f"{notebook.name}: a cell has an execution count"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(notebook: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRESSLAB_NOTEBOOK_PATHS", PATHS_BY_NOTEBOOK.get(notebook.name, PATHS))
    monkeypatch.delenv("STRESSLAB_NOTEBOOK_CONFIGS", raising=False)
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
    assert _images(nb), "no figure was drawn"
    CHECKS.get(notebook.name, lambda nb: None)(nb)


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS


def _check_historical(nb: nbformat.NotebookNode) -> None:
    """Every historical config has a row in the tail table, a section with its header, and its figures."""
    stems = {path.stem for path in HISTORICAL_CONFIGS.glob("*.toml")}
    assert stems, f"no config in {HISTORICAL_CONFIGS}"
    tagged = [cell for cell in nb.cells if TAIL_TABLE_TAG in cell.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"one cell must be tagged {TAIL_TABLE_TAG!r}"
    html = [out["data"]["text/html"] for out in tagged[0].outputs if "text/html" in out.get("data", {})]
    assert html, "the tail table cell shows no table"
    columns, rows = _html_table(html[0])
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


CHECKS: dict[str, Callable[[nbformat.NotebookNode], None]] = {"historical_comparison.ipynb": _check_historical}
"""Checks of a notebook's executed outputs, beyond running without errors and drawing a figure."""


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


def _html_table(html: str) -> tuple[list[str], dict[str, list[float]]]:
    """Column names and {row label: numbers} of a DataFrame's HTML output (numbers may hold thousands commas)."""
    parser = _TableParser()
    parser.feed(html)
    columns = parser.head[0][1:]
    rows = {cells[0]: [_number(text) for text in cells[1:]] for cells in parser.body}
    assert all(len(values) == len(columns) for values in rows.values()), "ragged table"
    return columns, rows


def _number(text: str) -> float:
    value = float(text.replace(",", ""))
    assert not math.isnan(value), "a tail metric is NaN"
    return value
