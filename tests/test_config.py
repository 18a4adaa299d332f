"""Config loading: validation messages, durations, overrides, sweeps, YAML, the phi guard."""

from __future__ import annotations

import pytest

import stresslab
from stresslab import ConfigError, load_config
from stresslab.config.units import format_duration, parse_duration


@pytest.mark.parametrize("text,seconds", [("1s", 1), ("500ms", 0.5), ("5min", 300), ("1h", 3600), ("1d", 86400),
                                          ("2w", 14 * 86400), (90, 90), (1.5, 1.5), ("1e3s", 1000)])
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text,message", [("5m", "unknown time unit 'm'"), ("-1s", "cannot read duration"),
                                          ("1e12d", "between 0 and 100 years"),
                                          ("abc", "cannot read duration"), (True, "a duration must be")])
def test_bad_durations(text, message):
    with pytest.raises(ValueError, match=message):
        parse_duration(text)


def test_duration_round_trip():
    for seconds in (1, 60, 300, 3600, 86400, 1.5):
        assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("raw,message", [
    ({"market": {"sigm": 1}}, "market.sigm: unknown key; allowed keys: price, sigma, drift"),
    ({"market": {"sigma": -1}}, "market.sigma: Input should be greater than or equal to 0 (got -1)"),
    ({"liquidity": {"impact": "cubic"}}, "liquidity.impact: Input should be 'linear' or 'sqrt' (got 'cubic')"),
    ({"simulation": {"horizon": "1d", "steps": 10}}, "give exactly one of simulation.steps and simulation.horizon"),
    ({"simulation": {"horizon": "1d", "dtype": "float16"}}, "simulation.dtype"),
    ({"positions": [{"side": "long", "leverage": 0.5, "notional": 1}]}, "positions.0.leverage"),
    ({"market": {"shocks": [{"type": "gap", "at": "1h", "size": -1.5}]}}, "market.shocks.0.size"),
    ({"market": {"shocks": [{"type": "crash"}]}}, "market.shocks.0"),
    ({"market": {"shocks": [{"type": "sell_program", "start": 0, "notional": 1e6}]}},
     "give exactly one of duration and participation"),
    ({"positions": [{"side": "long", "leverage": 5, "notional": 1e6, "maintenance_margin": "tiered"}]},
     "margin.tiers is empty"),
    ({"market": {"price": float("nan")}}, "market.price"),
    ({"simulation": {"horizon": "1d", "paths": 0}}, "simulation.paths"),
    ({"simulation": {"horizon": "1d", "dt": "1ms"}}, "allowed: 1 to 10^7"),
])
def test_invalid_configs_name_the_field(raw, message):
    with pytest.raises(ConfigError) as err:
        load_config(raw)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_unstable_dealer_feedback_is_refused():
    raw = {"liquidity": {"depth": 1e7}, "dealers": {"enabled": True, "gamma": 1.2e7}}
    with pytest.raises(ConfigError, match=r"= 1\.2 >= 1: hedging feedback has no stable solution"):
        load_config(raw)
    load_config({**raw, "dealers": {"enabled": True, "gamma": 0.9e7}})


def test_overrides_are_typed_and_validated():
    s = load_config({}, ["market.sigma=0.9", "liquidity.impact=sqrt", "dealers.enabled=true",
                         'simulation.horizon="2h"'])
    c = s.scenarios[0]
    assert c.market.sigma == 0.9 and c.liquidity.impact == "sqrt" and c.dealers.enabled
    assert c.simulation.n_steps == 120
    with pytest.raises(ConfigError, match="--set"):
        load_config({}, ["market.sigma"])
    with pytest.raises(ConfigError, match="market.sigmaa: unknown key"):
        load_config({}, ["market.sigmaa=1"])


def test_sweeps_expand_to_the_grid_with_validated_coordinates():
    raw = {"market": {"sigma": [0.5, "1"]},
           "positions": [{"side": "long", "leverage": [5, 10, 20], "notional": 1e6}]}
    s = load_config(raw)
    assert len(s.scenarios) == 6
    assert s.coords["market.sigma"] == [0.5, 0.5, 0.5, 1.0, 1.0, 1.0]
    assert s.coords["positions.0.leverage"] == [5.0, 10.0, 20.0] * 2
    assert [c.positions[0].leverage for c in s.scenarios] == [5, 10, 20] * 2
    # Lists the schema expects are not sweeps.
    assert len(load_config({"simulation": {"horizon": "1d", "quantiles": [0.1, 0.9]}}).scenarios) == 1
    with pytest.raises(ConfigError, match="simulation.paths: cannot be swept"):
        load_config({"simulation": {"horizon": "1d", "paths": [1, 2]}})
    with pytest.raises(ConfigError, match="market.sigma: .*\\(got -1\\)"):
        load_config({"market": {"sigma": [0.5, -1]}})


def test_resolved_config_reloads_to_the_same_scenarios(tmp_path):
    s = load_config({"market": {"sigma": [0.5, 0.7]}, "liquidity": {"recovery_half_life": "2min"}})
    path = tmp_path / "resolved.toml"
    path.write_text(s.to_toml())
    again = load_config(path)
    assert again.scenarios == s.scenarios
    assert 'recovery_half_life = "2min"' in s.to_toml()


def test_yaml_is_loaded_safely(tmp_path):
    good = tmp_path / "c.yaml"
    good.write_text("market:\n  sigma: 0.7\nsimulation:\n  horizon: 1h\n")
    assert load_config(good).scenarios[0].market.sigma == 0.7
    evil = tmp_path / "evil.yaml"
    evil.write_text("market: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(evil)


@pytest.mark.parametrize("name,text,message", [
    ("empty.toml", "", "the config file is empty"),
    ("broken.toml", "[market\nsigma = 1", "not valid TOML"),
    ("c.json", "{}", "unknown config format '.json'"),
    ("list.yaml", "- 1\n- 2\n", "must be a table of sections"),
])
def test_unreadable_files(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.toml")


def test_api_arguments_are_validated_like_the_config():
    with pytest.raises(ConfigError, match="simulation.seed"):
        stresslab.simulate({}, paths=10, seed=-1)
    with pytest.raises(ConfigError, match="simulation.chunk_size"):
        stresslab.simulate({}, paths=10, chunk_size=-5)
