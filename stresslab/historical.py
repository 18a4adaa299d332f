"""Compare a scenario with a real day: the stylised facts (``stresslab.metrics.facts``) of real minute prices
against their distribution over simulated sample paths, on the same window and the same clock."""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import tomli_w
import xarray as xr

from stresslab.calibrate import cmaes
from stresslab.calibrate.parameters import set_in_config
from stresslab.config.loading import ScenarioSet, load_config
from stresslab.config.units import parse_duration
from stresslab.errors import ConfigError, DataError
from stresslab.io import market_data
from stresslab.metrics import facts
from stresslab.progress import Silent, progress_bar

_FORMATS = {"percent": lambda v: f"{100 * v:.1f}%", "minutes": lambda v: f"{v / 60:.0f} min",
            "number": lambda v: f"{v:.2f}"}
"""How each kind of fact (``Fact.display``) is written in tables."""
MAX_SAMPLES = 10_000
"""Most sample paths a comparison keeps (``simulation.keep_paths``' limit)."""


@dataclass(frozen=True)
class Comparison:
    """Real facts against simulated ones on one window.

    Attributes:
        table: one row per fact: ``real``, simulated ``median``, ``low`` and ``high`` (5 % and 95 %), ``inside``.
        real: the real prices of the window (dim ``time``, UTC).
        simulated: the simulated sample prices on the same window (dims ``sample``, ``time``, UTC).
        result: the full simulated Dataset.
        start: the window's start (UTC); minutes: its length.
    """

    table: pd.DataFrame
    real: xr.DataArray
    simulated: xr.DataArray
    result: xr.Dataset
    start: pd.Timestamp
    minutes: int


def _window(scenarios: ScenarioSet, data: str | os.PathLike[str], start: str | None) -> tuple[pd.Timestamp, int]:
    """The comparison window: from the config's ``simulation.start`` (or ``start``) for the config's horizon, cut
    to what the data cover."""
    sim = scenarios.scenarios[0].simulation
    if start is not None:
        begin = pd.Timestamp(start)
        begin = begin.tz_convert(None) if begin.tzinfo else begin
    elif sim.start is not None:
        begin = pd.Timestamp(sim.start).tz_convert(None)
    else:
        raise ConfigError("simulation.start: compare needs the UTC time the scenario starts at; give "
                          "simulation.start in the config (e.g. start = 2021-05-19T09:00:00Z) or --start")
    if abs(sim.dt - 60.0) > 1e-9:
        raise ConfigError(f"simulation.dt: compare needs 1-minute steps, like the real bars (got {sim.dt:g} s)")
    bars = market_data.read_bars(data)
    covered = len(bars.loc[begin: begin + pd.Timedelta(minutes=sim.n_steps - 1)])
    if covered == 0 or bars.loc[begin:].index[0] != begin:
        raise DataError(f"--data {data}: the scenario starts at {begin} (UTC), which the file does not cover "
                        f"({bars.index[0]} to {bars.index[-1] + pd.Timedelta(minutes=1)})")
    return begin, covered


def compare(config, data: str | os.PathLike[str], *, paths: int = 1000, seed: int | None = None,
            overrides: Iterable[str] = (), start: str | None = None, progress: bool = False) -> Comparison:
    """Simulate ``paths`` sample paths of a one-scenario config and compare their facts with real minute data.

    Args:
        config: a config (path, dict or loaded) with one scenario, 1-minute steps and ``simulation.start``.
        data: a shipped day (``"2021-05-19"``) or a CSV of 1-minute bars (``stresslab.io.market_data``).
        paths: simulated paths, all kept as sample paths (at most 10 000).
        seed: random seed (default ``simulation.seed``).
        overrides: ``"a.b=value"`` config overrides.
        start: the window's UTC start, if the config has no ``simulation.start``.
        progress: show a progress bar.

    Returns:
        The :class:`Comparison`; the window is the config's horizon, cut to the minutes the data cover.

    Raises:
        ConfigError: the config is invalid, sweeps, has no start, or has steps other than 1 minute.
        DataError: the data cannot be read or do not cover the scenario's start.
    """
    from stresslab.api import simulate

    if not 1 <= paths <= MAX_SAMPLES:
        raise ConfigError(f"paths: compare keeps every path as a sample path: 1 to {MAX_SAMPLES} (got {paths})")
    scenarios = load_config(config, overrides)
    if len(scenarios.scenarios) != 1:
        raise ConfigError(f"compare needs one scenario; this config sweeps {', '.join(scenarios.axes)}: "
                          "fix each swept field with --set")
    steps = scenarios.scenarios[0].simulation.n_steps
    settings = [f"simulation.paths={paths}", f"simulation.keep_paths={paths}", f"simulation.record_points={steps}"]
    if seed is not None:
        settings.append(f"simulation.seed={seed}")
    scenarios = load_config(scenarios, settings)
    begin, minutes = _window(scenarios, data, start)
    return _comparison(simulate(scenarios, progress=progress, on_error="warn"), data, begin, minutes)


def compare_result(result: xr.Dataset, data: str | os.PathLike[str]) -> Comparison:
    """:func:`compare` for a result already simulated: its sample paths (every minute, ``simulation.keep_paths``)
    on its UTC ``clock`` (``simulation.start``) against the real data of the same window.

    Raises:
        ConfigError: the result has no clock, no minute sample paths, or more than one scenario.
        DataError: the data cannot be read or do not cover the result's start.
    """
    if "clock" not in result.coords:
        raise ConfigError("simulation.start: the result is not on the real clock; run the config with "
                          "simulation.start (UTC) to compare it with real data")
    if result.sizes.get("scenario", 1) != 1:
        raise ConfigError("compare needs one scenario; this result is a sweep: select one scenario first")
    try:
        facts.of_result(result.isel(time=slice(0, 2)))
    except ValueError as err:
        raise ConfigError(f"simulation.keep_paths: {err}") from None
    begin = pd.Timestamp(result["clock"].values[0])
    bars = market_data.read_bars(data)
    steps = result.sizes["time"] - 1
    covered = len(bars.loc[begin: begin + pd.Timedelta(minutes=steps - 1)])
    if covered == 0 or bars.loc[begin:].index[0] != begin:
        raise DataError(f"--data {data}: the result starts at {begin} (UTC), which the file does not cover "
                        f"({bars.index[0]} to {bars.index[-1] + pd.Timedelta(minutes=1)})")
    return _comparison(result, data, begin, covered)


def _comparison(result: xr.Dataset, data: str | os.PathLike[str], begin: pd.Timestamp, minutes: int) -> Comparison:
    real = market_data.prices(data, begin, minutes)
    clock = begin.to_datetime64() + result["time"].values
    simulated = (result["sample_price"].isel(scenario=0, time=slice(0, minutes + 1))
                 .assign_coords(time=clock[: minutes + 1]))
    table = facts.compare(facts.facts(real), facts.facts(simulated))
    return Comparison(table, real, simulated, result, begin, minutes)


def format_table(comparison: Comparison) -> str:
    """The comparison as aligned text: real, then the simulated median and 5–95 % band; ✗ marks a real value outside
    the band."""
    shown = {fact.name: fact for fact in facts.FACTS}
    rows = []
    for name, row in comparison.table.iterrows():
        fact = shown[name]
        fmt = _FORMATS[fact.display]
        value = "-" if not np.isfinite(row.real) else fmt(row.real)
        band = f"{fmt(row['median'])} ({fmt(row.low)} to {fmt(row.high)})"
        rows.append((fact.long_name, value, band, "" if row.inside else "✗"))
    width = max(len(r[0]) for r in rows)
    header = (f"{comparison.start:%Y-%m-%d %H:%M} UTC + {comparison.minutes} min; real, then simulated median "
              f"(5-95 %) over {comparison.simulated.sizes['sample']} paths; ✗: real outside the band")
    lines = [header] + [f"{name:<{width}}  {real:>10}  {band:<36}{mark}" for name, real, band, mark in rows]
    inside = int(comparison.table.inside.sum())
    lines.append(f"{inside} of {len(rows)} facts inside the simulated 5-95 % band")
    return "\n".join(lines)


def display_table(comparison: Comparison) -> pd.DataFrame:
    """The comparison as a table of text cells, one row per fact (as :func:`format_table` shows them)."""
    shown = {fact.name: fact for fact in facts.FACTS}
    rows = []
    for name, row in comparison.table.iterrows():
        fmt = _FORMATS[shown[name].display]
        rows.append({"fact": shown[name].long_name, "real": fmt(row.real) if np.isfinite(row.real) else "-",
                     "simulated median": fmt(row["median"]), "5 %": fmt(row.low), "95 %": fmt(row.high),
                     "inside": "yes" if row.inside else "no"})
    return pd.DataFrame(rows).set_index("fact")


def plot(comparison: Comparison, path: str | os.PathLike[str] | None = None):
    """The real path over the simulated fan (5–95 % and 25–75 % bands, median), on the UTC clock; saved as PNG
    when ``path`` is given. Returns the Matplotlib figure."""
    from matplotlib.figure import Figure

    sim = comparison.simulated
    q = sim.quantile([0.05, 0.25, 0.5, 0.75, 0.95], dim="sample").values
    time = sim["time"].values
    fig = Figure(figsize=(9, 4.5), layout="constrained")
    ax = fig.subplots()
    ax.fill_between(time, q[0], q[4], color="tab:blue", alpha=0.15, lw=0, label="simulated 5-95 %")
    ax.fill_between(time, q[1], q[3], color="tab:blue", alpha=0.3, lw=0, label="simulated 25-75 %")
    ax.plot(time, q[2], color="tab:blue", lw=1, label="simulated median")
    ax.plot(comparison.real["time"].values, comparison.real.values, color="black", lw=1.2, label="real")
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel("price")
    ax.set_title(f"real against simulated, from {comparison.start:%Y-%m-%d %H:%M} UTC")
    ax.legend(loc="best", fontsize="small")
    fig.autofmt_xdate()
    if path is not None:
        fig.savefig(Path(path), dpi=120)
    return fig


def distance(real: xr.Dataset, simulated: xr.Dataset, names: Iterable[str], *, dim: str = "sample") -> float:
    """The fit's distance: the mean over the facts ``names`` of ``((real - simulated median) / tolerance)^2``
    (``Fact.tolerance``); paths where a fact is NaN are left out, and a fact NaN on every path gives ``inf``."""
    tolerance = {fact.name: fact.tolerance for fact in facts.FACTS}
    misses = []
    for name in names:
        sim = np.asarray(simulated[name].values, np.float64)
        sim = sim[np.isfinite(sim)]
        value = float(real[name])
        if not np.isfinite(value):
            continue
        misses.append(((value - np.median(sim)) / tolerance[name]) ** 2 if sim.size else np.inf)
    return float(np.mean(misses)) if misses else np.inf


@dataclass(frozen=True)
class FitResult:
    """What ``stresslab fit`` found.

    Attributes:
        values, initial: fitted and starting value of each parameter (durations in seconds).
        before, after: the comparison at the starting and the fitted values.
        distance_before, distance_after: the fit's distance there.
        trace: one row per generation: the best candidate's values and distance, and the generation's best.
        config: the fitted config (resolved, as ``stresslab run`` accepts it).
    """

    values: dict[str, float]
    initial: dict[str, float]
    before: Comparison
    after: Comparison
    distance_before: float
    distance_after: float
    trace: pd.DataFrame
    config: dict

    def to_toml(self, command: str | None = None) -> str:
        """The fitted config as TOML, headed by the command that produced it and the fit's figures."""
        header = [f"# fitted by: {command}" if command else "# fitted by stresslab.historical.fit",
                  f"# distance {self.distance_before:.4g} -> {self.distance_after:.4g}; facts inside the "
                  f"simulated 5-95 % band: {int(self.before.table.inside.sum())} -> "
                  f"{int(self.after.table.inside.sum())} of {len(self.after.table)}"]
        header += [f"#   {name} = {self.values[name]:.6g} (from {self.initial[name]:.6g})" for name in self.values]
        return "\n".join(header) + "\n" + tomli_w.dumps(self.config)


def _path_value(raw: dict, name: str) -> float:
    node = raw
    for part in name.split("."):
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError, TypeError):
            raise ConfigError(f"fit.parameters: {name} is not in the config; give it a value to start from") from None
    try:
        if isinstance(node, str):
            return parse_duration(node)  # durations are kept with their units in a resolved config
        if not isinstance(node, bool) and isinstance(node, int | float):
            return float(node)
    except ValueError:
        pass
    raise ConfigError(f"fit.parameters: {name} is {node!r}, not a number or a duration")


def _with_values(raw: dict, names: list[str], values: np.ndarray) -> dict:
    out = copy.deepcopy(raw)
    for name, value in zip(names, values, strict=True):
        set_in_config(out, name, float(value))
    return out


def fit(config, *, overrides: Iterable[str] = (), data: str | os.PathLike[str] | None = None,
        progress: bool = False) -> FitResult:
    """Fit a scenario's ``[fit]`` parameters to real minute prices (the method of simulated moments).

    CMA-ES (``stresslab.calibrate.cmaes``) minimises :func:`distance` between the real facts of ``fit.data`` and the
    median facts of ``fit.paths`` simulated paths, over the parameters' boxes, with common random numbers (the
    config's seed for every candidate). The window is the config's horizon from ``simulation.start``. ``data``
    replaces ``fit.data``.

    Raises:
        ConfigError: no ``[fit]`` section, a sweep, a parameter the config lacks, or a config ``compare`` refuses.
        DataError: the data cannot be read or do not cover the scenario.
    """
    scenarios = load_config(config, overrides)
    scenario = scenarios.scenarios[0]
    spec = scenario.fit
    if spec is None:
        raise ConfigError("fit: the config has no [fit] section (data, parameters; see docs/historical.md)")
    if len(scenarios.scenarios) != 1:
        raise ConfigError(f"fit needs one scenario; this config sweeps {', '.join(scenarios.axes)}")
    raw = scenarios.resolved
    source = spec.data if data is None else str(data)
    if data is not None:
        raw["fit"]["data"] = source
    names = [p.name for p in spec.parameters]
    lower = np.array([p.lower for p in spec.parameters])
    upper = np.array([p.upper for p in spec.parameters])
    initial = np.array([_path_value(raw, name) for name in names])
    outside = [f"{n} = {v:g} (box {lo:g} to {hi:g})" for n, v, lo, hi in zip(names, initial, lower, upper, strict=True)
               if not lo <= v <= hi]
    if outside:
        raise ConfigError(f"fit.parameters: the config's value is outside the box: {'; '.join(outside)}")
    real = None

    def run(values: np.ndarray) -> tuple[Comparison, float]:
        nonlocal real
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            comparison = compare(_with_values(raw, names, values), source, paths=spec.paths)
        if real is None:
            real = facts.facts(comparison.real)
        return comparison, distance(real, facts.facts(comparison.simulated), spec.facts)

    generations = []
    with progress_bar(spec.generations + 2, enabled=progress, description="fitting", unit="generation") as shown:
        bar = shown if shown is not None else Silent()
        before, distance_before = run(initial)
        bar.update(1)

        def evaluate(candidates: np.ndarray) -> np.ndarray:
            return np.array([run(candidate)[1] for candidate in candidates])

        def record(candidates: np.ndarray, values: np.ndarray) -> None:
            i = int(np.argmin(cmaes.finite_or_worst(values)))
            generations.append({**dict(zip(names, candidates[i], strict=True)), "distance": values[i]})
            bar.update(1)

        best, values = cmaes.minimise(evaluate, lower, upper, initial, generations=spec.generations, sigma=spec.sigma,
                                      seed=scenario.simulation.seed + 1, population=spec.population,
                                      on_generation=record)
        if not best < distance_before:
            values = initial
        after, distance_after = run(values)
        bar.update(1)
    fitted = _with_values(raw, names, values)
    return FitResult(dict(zip(names, map(float, values), strict=True)), dict(zip(names, map(float, initial),
                     strict=True)), before, after, distance_before, distance_after, pd.DataFrame(generations), fitted)
