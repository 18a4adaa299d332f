"""Write a report of a stresslab result: PNG figures, a Markdown summary and one self-contained HTML page.

The directory is written under a hidden temporary name next to its target and
renamed into place when complete, so a report directory is never half-written. The
HTML page embeds its figures as base64 ``data:`` URIs and loads nothing else, so it
opens offline and can be sent on as one file.
"""

from __future__ import annotations

import base64
import html
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from stresslab.errors import ResultError
from stresslab.io import store
from stresslab.market.model import SERIES, output
from stresslab.metrics import tail
from stresslab.metrics.headline import write_metrics
from stresslab.report import figures, tables

REPORT_SUFFIX = ".report"
SUMMARY_FILE = "summary.md"
HTML_FILE = "report.html"
DPI = 100
"""Resolution of the PNG figures, dots per inch (figure sizes are in :mod:`stresslab.report.figures`)."""
REQUIRED = (*(output(name).name for name in ("cascade_depth", "liquidated_long", "liquidated_short", "bad_debt")),
            *(f"{series.name}_quantiles" for series in SERIES))
"""Data variables a result needs for a report: the per-path summaries and the quantile bands."""
OPTIONAL = (*tail.HALT_VARIABLES, "fund_exhausted_step")
"""Data variables a report shows when the result has them (circuit-breaker halts, the insurance fund running
out); others are not read."""
OLD_LEVEL_DIM = "quantile"
"""What results written before the band dim was named ``level`` call it; :func:`load_result` renames it."""
METRICS_FILE = "metrics.json"
"""The headline metrics of the result (:func:`stresslab.metrics.headline.write_metrics`), in every report."""
PROVENANCE = ("config_name", "date_created", "history", "currency", "seed", "paths", "swept", "stresslab_version",
              "jax_version", "backend", "device_count", "git_commit")
"""Dataset attributes listed as the run's provenance (the resolved ``config`` is shown in full after them)."""



@dataclass(frozen=True)
class Plot:
    """One figure of the report: its file name, what it shows, and how to draw it."""

    file: str
    caption: str
    draw: Callable[[xr.Dataset], Figure]


@dataclass(frozen=True)
class Section:
    """A table of the report under its heading, with a caption saying what its columns mean."""

    heading: str
    caption: str
    table: pd.DataFrame


PLOTS = (
    Plot("price_fan.png", "Traded price: quantile bands over paths against time (fan chart).", figures.price_fan),
    Plot("depth_histogram.png", f"Cascade depth over paths, with VaR and ES at {figures.TAIL_LEVEL:.0%} marked.",
         figures.depth_histogram),
    Plot("depth_exceedance.png", "Probability that the cascade depth exceeds x, by scenario.",
         figures.depth_exceedance),
    Plot("liquidations.png", "Notional liquidated between recorded time points: quantile bands over paths.",
         figures.liquidation_bands),
    Plot("depth.png", "Available order book depth over configured depth: collapse and recovery.",
         figures.depth_bands),
)


def default_directory(result: str | os.PathLike[str]) -> Path:
    """Where a report of ``result`` goes by default: ``RESULT`` with its suffix replaced by ``.report``."""
    return Path(result).with_suffix(REPORT_SUFFIX)


def load_result(path: str | os.PathLike[str], extra: tuple[str, ...] = ()) -> xr.Dataset:
    """Read the variables a report needs from a result written by ``stresslab run --out`` (Zarr or ``.nc``).

    Returns:
        An in-memory Dataset with the :data:`REQUIRED` variables, those of :data:`OPTIONAL` and ``extra``
        (e.g. ``sample_price`` for a comparison with real data) that the result has, the coordinates and the run's
        attributes.

    Raises:
        FileNotFoundError: nothing exists at ``path``.
        ResultError: ``path`` exists but is not a readable result, or lacks a required variable.
    """
    source = Path(path)
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such results file or Zarr store")
    try:
        ds = store.read(source)
    except (OSError, ValueError, KeyError) as err:
        kind = "netCDF file" if store.is_netcdf(source) else "Zarr store"
        raise ResultError(f"{source}: not a readable {kind} ({err})") from None
    missing = [name for name in REQUIRED if name not in ds.data_vars]
    if missing:
        ds.close()
        raise ResultError(f"{source}: not a stresslab result; missing variables: {', '.join(missing)}")
    with ds:
        loaded = ds[[*REQUIRED, *(name for name in (*OPTIONAL, *extra) if name in ds.data_vars)]].load()
    if OLD_LEVEL_DIM in loaded.dims and figures.QUANTILE_DIM not in loaded.dims:
        loaded = loaded.rename({OLD_LEVEL_DIM: figures.QUANTILE_DIM})
    return loaded


def write_report(ds: xr.Dataset, directory: str | os.PathLike[str], *, overwrite: bool = False,
                 comparison=None) -> Path:
    """Write the figures, ``summary.md`` and the self-contained ``report.html`` of a result into ``directory``.

    Both pages name the config and the run date and hold the tail metrics and, when the
    result comes from a run with circuit breakers, a table of halt statistics; other
    variables beyond :data:`REQUIRED` are ignored. ``metrics.json`` holds the headline
    metrics with their confidence intervals (:func:`stresslab.metrics.headline.write_metrics`).

    Args:
        ds: a result (e.g. from :func:`load_result` or :func:`stresslab.simulate`) with the
            :data:`REQUIRED` variables and its provenance attributes.
        directory: the report directory to create; missing parents are created.
        overwrite: replace an existing ``directory``.
        comparison: a ``stresslab.historical.Comparison`` of the result with a real day: the report then shows
            its table of stylised facts and the real path over the simulated fan.

    Returns:
        The directory written.

    Raises:
        FileExistsError: ``directory`` exists and ``overwrite`` is false.
    """
    target = Path(directory)
    store.check_target(target, overwrite=overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:12]}")
    try:
        temporary.mkdir()
        plots = PLOTS if comparison is None else (*PLOTS, _real_day_plot(comparison))
        images = {plot.file: _save(plot.draw(ds), temporary / plot.file) for plot in plots}
        write_metrics(ds, temporary / METRICS_FILE)
        sections = _sections(ds)
        if comparison is not None:
            sections.append(_real_day_section(comparison))
        (temporary / SUMMARY_FILE).write_text(_markdown(ds, sections, plots), encoding="utf-8")
        (temporary / HTML_FILE).write_text(_html(ds, sections, images, plots), encoding="utf-8")
        store.check_target(target, overwrite=overwrite)
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        os.replace(temporary, target)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return target


def _save(figure: Figure, path: Path) -> bytes:
    """Save ``figure`` as PNG at :data:`DPI` and return the file's bytes."""
    figure.savefig(path, format="png", dpi=DPI)
    return path.read_bytes()


def _provenance(ds: xr.Dataset) -> list[tuple[str, str]]:
    return [(key, str(ds.attrs[key])) for key in PROVENANCE if key in ds.attrs]


def _title(ds: xr.Dataset) -> str:
    """``stresslab report: <config name>`` (without the name when the result does not record it)."""
    name = ds.attrs.get("config_name")
    return f"stresslab report: {name}" if name else "stresslab report"


def _subtitle(ds: xr.Dataset) -> str:
    """When the run was made, and the metrics file next to the report."""
    created = ds.attrs.get("date_created")
    run = f"Run on {created}" if created else "Run date not recorded"
    return f"{run}; headline metrics with confidence intervals in {METRICS_FILE}."


def _sections(ds: xr.Dataset) -> list[Section]:
    """The tail metrics, then the circuit-breaker halts when the result has them."""
    sections = [Section("Tail metrics", tables.caption(ds), tables.display_table(ds))]
    halts = tables.halt_table(ds)
    if halts is not None:
        sections.append(Section("Circuit breakers", tables.halt_caption(ds), halts))
    return sections


def _real_day_plot(comparison) -> Plot:
    from stresslab import historical

    return Plot("real_day.png", f"The real day ({comparison.start:%Y-%m-%d %H:%M} UTC + {comparison.minutes} min) "
                "over the simulated fan of sample paths.", lambda ds: historical.plot(comparison))


def _real_day_section(comparison) -> Section:
    from stresslab import historical

    inside = int(comparison.table.inside.sum())
    caption = (f"Stylised facts of the real day against the simulated median and 5-95 % band over "
               f"{comparison.simulated.sizes['sample']} sample paths, {comparison.start:%Y-%m-%d %H:%M} UTC + "
               f"{comparison.minutes} min: {inside} of {len(comparison.table)} facts inside the band")
    return Section("Against the real day", caption, historical.display_table(comparison))


def _markdown(ds: xr.Dataset, sections: list[Section], plots: tuple[Plot, ...] = PLOTS) -> str:
    lines = [f"# {_title(ds)}", "", _subtitle(ds), ""]
    for section in sections:
        table = _markdown_table(section.table.reset_index())
        lines += [f"## {section.heading}", "", f"{section.caption}.", "", table, ""]
    lines += ["## Run", ""]
    lines += [f"- **{key}**: {value}" for key, value in _provenance(ds)]
    lines += ["", "## Figures", ""]
    lines += [f"![{plot.caption}]({plot.file})\n\n{plot.caption}\n" for plot in plots]
    if "config" in ds.attrs:
        lines += ["## Resolved config", "", "```toml", str(ds.attrs["config"]).rstrip(), "```"]
    return "\n".join(lines) + "\n"


def _markdown_table(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of ``table``'s cells as text (``|`` escaped)."""

    def row(cells: list[object]) -> str:
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    header = row(list(table.columns))
    rule = "|" + "|".join("---:" for _ in table.columns) + "|"
    return "\n".join([header, rule, *(row(list(values)) for values in table.itertuples(index=False))])


def _html(ds: xr.Dataset, sections: list[Section], images: dict[str, bytes], plots: tuple[Plot, ...] = PLOTS) -> str:
    provenance = "".join(f"<tr><th>{html.escape(key)}</th><td>{html.escape(value)}</td></tr>"
                         for key, value in _provenance(ds))
    figures_html = "".join(
        f'<figure><img alt="{html.escape(plot.caption)}" '
        f'src="data:image/png;base64,{base64.b64encode(images[plot.file]).decode("ascii")}">'
        f"<figcaption>{html.escape(plot.caption)}</figcaption></figure>"
        for plot in plots
    )
    config = ""
    if "config" in ds.attrs:
        config = f"<h2>Resolved config</h2><pre>{html.escape(str(ds.attrs['config']))}</pre>"
    tables_html = "\n".join(
        f"<h2>{html.escape(section.heading)}</h2>\n<p>{html.escape(section.caption)}.</p>\n"
        + section.table.reset_index().to_html(index=False, border=0, classes="summary", escape=True)
        for section in sections
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(_title(ds))}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ padding: 0.25em 0.75em; border-bottom: 1px solid #ddd; text-align: right; }}
figure {{ margin: 2em 0; }}
img {{ max-width: 100%; }}
pre {{ background: #f6f6f6; padding: 1em; overflow-x: auto; }}
</style>
</head>
<body>
<h1>{html.escape(_title(ds))}</h1>
<p>{html.escape(_subtitle(ds))}</p>
{tables_html}
<h2>Run</h2>
<table>{provenance}</table>
<h2>Figures</h2>
{figures_html}
{config}
</body>
</html>
"""
