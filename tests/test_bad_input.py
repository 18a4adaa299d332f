"""Property-based: broken configs always end in exit code 2 and one clear line, never a traceback."""

from __future__ import annotations

import math
from pathlib import Path

import tomli_w
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

BASE = {
    "simulation": {"horizon": "1h", "dt": "1min", "paths": 10, "seed": 1, "dtype": "float32",
                   "chunk_size": "auto", "cascade_rounds": 8, "record_points": 5, "keep_paths": 0},
    "market": {"price": 100.0, "sigma": 0.8, "drift": 0.0, "daily_volume": 1e9,
               "jumps": {"enabled": True, "intensity": 10.0, "mean": -0.02, "std": 0.02},
               "shocks": [{"type": "gap", "at": "10min", "size": -0.05},
                          {"type": "sell_program", "start": "5min", "notional": 1e6, "duration": "5min"}]},
    "liquidity": {"enabled": True, "depth": 1e7, "impact": "sqrt", "permanent_fraction": 0.5,
                  "recovery_half_life": "5min", "depletion": 1.0, "withdrawal": 0.5, "vol_half_life": "10min"},
    "positions": [{"side": "long", "leverage": 20.0, "notional": 1e6, "maintenance_margin": 0.005}],
    "position_grids": [{"side": "short", "notional": 1e6, "leverage_min": 2.0, "leverage_max": 10.0,
                        "cohorts": 3}],
    "liquidation": {"penalty": 0.01, "insurance_fund": 1e5, "adl": True},
    "dealers": {"enabled": True, "book": "constant_gamma", "gamma": 1e6},
}


def leaves(tree, prefix=()):
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from leaves(value, (*prefix, key))
    elif isinstance(tree, list) and tree and isinstance(tree[0], dict):
        for i, value in enumerate(tree):
            yield from leaves(value, (*prefix, i))
    else:
        yield prefix


LEAVES = [p for p in leaves(BASE) if p[-1] != "type"]
TABLES = [(), ("simulation",), ("market",), ("market", "jumps"), ("liquidity",), ("positions", 0),
          ("liquidation",), ("dealers",), ("market", "shocks", 1)]
BROKEN = st.sampled_from([math.nan, math.inf, -math.inf, "abc", "-5min", {"x": 1}, [[1, 2]], -1e300, 1e300])


def schema_keys(table) -> set[str]:
    """The keys the config schema allows in ``BASE``'s table at ``table``: the fields of its model, found by
    validating ``BASE`` and walking the validated config (a list item by index, a table by name)."""
    from stresslab.config.schema import Config

    node = Config.model_validate(BASE)
    for part in table:
        node = node[part] if isinstance(part, int) else getattr(node, part)
    return set(type(node).model_fields)


def replaced(tree, path, value):
    import copy

    out = copy.deepcopy(tree)
    node = out
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return out


def assert_clean_refusal(result):
    assert result.exit_code == 2, (result.exit_code, result.output, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output + result.stderr


CHECK = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@CHECK
@given(path=st.sampled_from(LEAVES), value=BROKEN, as_yaml=st.booleans())
def test_a_broken_value_anywhere_is_refused_by_name(cli, tmp_path, path, value, as_yaml):
    if value in (-1e300, 1e300) and path[-1] in ("drift", "mean", "notional", "gamma", "size", "seed"):
        value = math.nan  # these fields accept any finite sign/size within their own bounds
    raw = replaced(BASE, path, value)
    file = tmp_path / ("c.yaml" if as_yaml else "c.toml")
    file.write_text(yaml.safe_dump(raw) if as_yaml else tomli_w.dumps(raw))
    for command in ("check", "run"):
        result = cli(command, file, catch_exceptions=False)
        assert_clean_refusal(result)
        named = ".".join(str(p) for p in path)
        assert named in result.stderr or path[0] in result.stderr or "config" in result.stderr, result.stderr


@CHECK
@given(table=st.sampled_from(TABLES), key=st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12))
def test_unknown_keys_are_refused_with_the_allowed_ones(cli, tmp_path, table, key):
    if key in schema_keys(table):  # a key the schema allows there (``funding`` at the top) is not unknown
        return
    file = tmp_path / "c.toml"
    file.write_text(tomli_w.dumps(replaced(BASE, (*table, key), 1.0)))
    result = cli("check", file, catch_exceptions=False)
    assert_clean_refusal(result)
    assert f"{key}: unknown key" in result.stderr and "allowed keys" in result.stderr


@CHECK
@given(text=st.text(max_size=200))
def test_arbitrary_text_never_gives_a_traceback(cli, tmp_path, text):
    for suffix in (".toml", ".yaml"):
        file = tmp_path / f"c{suffix}"
        file.write_text(text, encoding="utf-8")
        result = cli("check", file, catch_exceptions=False)
        assert result.exit_code in (0, 2), result.output
        assert "Traceback" not in result.output + result.stderr


def test_huge_sizes_are_refused(cli, tmp_path):
    for path, value in [(("simulation", "paths"), 10**12), (("simulation", "cascade_rounds"), 10**6),
                        (("position_grids", 0, "cohorts"), 10**5)]:
        file = tmp_path / "c.toml"
        file.write_text(tomli_w.dumps(replaced(BASE, path, value)))
        assert_clean_refusal(cli("run", file, catch_exceptions=False))


def test_every_shipped_config_passes_check(cli):
    configs = sorted((Path(__file__).parents[1] / "configs").rglob("*.toml"))
    assert configs
    for config in configs:
        result = cli("check", config, catch_exceptions=False)
        assert result.exit_code == 0, (config, result.stderr)
