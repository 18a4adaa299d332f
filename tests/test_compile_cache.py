"""The on-disk cache of compiled kernels (``engine/compile_cache.py``): where it lives, how it is turned off,
that a second command loads the first one's kernel, and that loading changes no number."""

from __future__ import annotations

import subprocess
from pathlib import Path

import jax
import numpy as np
import pytest
import xarray as xr
from helpers import cli_command, subprocess_env

from stresslab.engine import compile_cache
from stresslab.engine.compile_cache import CACHE_ENV, cache_directory, use_compile_cache

TINY = """\
[simulation]
horizon = "1h"
dt = "1min"
record_points = 6

[market]
sigma = 0.8

[[market.shocks]]
type = "gap"
at = "10min"
size = -0.05

[[positions]]
side = "long"
leverage = [5.0, 20.0]
notional = 5e6
"""


@pytest.mark.parametrize(("environ", "expected"), [
    ({"HOME": "/home/q"}, "/home/q/.cache/stresslab/jax"),
    ({"HOME": "/home/q", "XDG_CACHE_HOME": "/scratch/cache"}, "/scratch/cache/stresslab/jax"),
    ({"HOME": "/home/q", "XDG_CACHE_HOME": "/scratch/cache", CACHE_ENV: "/nvme/kernels"}, "/nvme/kernels"),
    ({"HOME": "/home/q", CACHE_ENV: "~/kernels"}, "/home/q/kernels"),
    ({"HOME": "/home/q", CACHE_ENV: "  "}, "/home/q/.cache/stresslab/jax"),
])
def test_the_directory_follows_the_environment(environ, expected, monkeypatch):
    monkeypatch.setenv("HOME", environ["HOME"])  # Path.home() and expanduser read it
    assert cache_directory(environ) == Path(expected)


@pytest.mark.parametrize("value", ["off", "OFF", "0", "false", "No", "none"])
def test_off_turns_it_off(value):
    assert cache_directory({CACHE_ENV: value, "HOME": "/home/q"}) is None


SETTINGS = ("jax_compilation_cache_dir", "jax_compilation_cache_max_size", "jax_persistent_cache_min_compile_time_secs")
"""The JAX settings ``use_compile_cache`` makes."""


@pytest.fixture
def no_jax_cache():
    """This test process without JAX's own cache directory (the test session sets one); the session's settings
    and cache are restored afterwards."""
    from jax.experimental.compilation_cache import compilation_cache as jax_cache

    saved = {name: getattr(jax.config, name) for name in SETTINGS}
    jax.config.update("jax_compilation_cache_dir", None)
    yield
    for name, value in saved.items():
        jax.config.update(name, value)
    jax_cache.reset_cache()


def test_it_sets_a_bounded_cache_of_kernels(tmp_path, monkeypatch, no_jax_cache):
    """The bound makes JAX evict least recently used entries and hold a file lock around every read and
    write (its LRU cache needs ``filelock``, a dependency): processes sharing the directory never read a
    half-written kernel. Only programs that took a second to compile are kept."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "new" / "kernels"))
    assert use_compile_cache() == tmp_path / "new" / "kernels"
    assert (tmp_path / "new" / "kernels").is_dir()
    assert jax.config.jax_compilation_cache_dir == str(tmp_path / "new" / "kernels")
    assert jax.config.jax_compilation_cache_max_size == compile_cache.MAX_BYTES > 0
    assert jax.config.jax_persistent_cache_min_compile_time_secs == compile_cache.MIN_COMPILE_SECONDS


def test_jax_own_setting_is_left_as_it_is(tmp_path, monkeypatch, no_jax_cache):
    jax.config.update("jax_compilation_cache_dir", str(tmp_path / "theirs"))
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "ours"))
    assert use_compile_cache() == tmp_path / "theirs"
    assert jax.config.jax_compilation_cache_dir == str(tmp_path / "theirs")
    assert not (tmp_path / "ours").exists()


def test_off_leaves_jax_without_a_cache(monkeypatch, no_jax_cache):
    monkeypatch.setenv(CACHE_ENV, "off")
    assert use_compile_cache() is None
    assert not jax.config.jax_compilation_cache_dir


def test_a_directory_that_cannot_be_made_warns_and_runs_without(tmp_path, monkeypatch, no_jax_cache):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(CACHE_ENV, str(blocker / "kernels"))
    with pytest.warns(RuntimeWarning, match=rf"compiled kernels are not cached: cannot use {blocker / 'kernels'}"
                                             rf" .*set {CACHE_ENV} to a writable directory, or to 'off'"):
        assert use_compile_cache() is None
    assert not jax.config.jax_compilation_cache_dir


def _run(config: Path, out: Path, **env: str) -> subprocess.CompletedProcess:
    """``stresslab run`` in a child process with ``env`` and none of the test session's JAX cache settings."""
    environ = {k: v for k, v in subprocess_env(**env).items() if not k.startswith(("JAX_COMPILATION_CACHE",
                                                                                   "JAX_PERSISTENT_CACHE"))}
    done = subprocess.run(cli_command("run", config, "--paths", "64", "--quiet", "--out", out), env=environ,
                          capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0, done.stderr
    return done


@pytest.mark.slow
def test_a_second_run_loads_the_first_runs_kernel_and_gives_the_same_dataset(tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    cache = tmp_path / "kernels"
    _run(config, tmp_path / "first.nc", **{CACHE_ENV: str(cache)})
    entries = sorted(p.name for p in cache.glob("*-cache"))
    assert entries and all(name.startswith(("jit__one_device-", "jit__sharded_chunk-")) for name in entries), entries
    used = {p: p.read_bytes() for p in cache.glob("*-atime")}  # the last use of each entry, rewritten on a hit

    _run(config, tmp_path / "second.nc", **{CACHE_ENV: str(cache)})
    assert sorted(p.name for p in cache.glob("*-cache")) == entries  # nothing compiled anew
    hit = [p for p, stamp in used.items() if int.from_bytes(p.read_bytes(), "little") > int.from_bytes(stamp, "little")]
    assert hit, "the second run did not load the cached kernel"

    with xr.open_dataset(tmp_path / "first.nc") as a, xr.open_dataset(tmp_path / "second.nc") as b:
        assert list(a.data_vars) == list(b.data_vars)
        for name in a.data_vars:
            assert np.array_equal(a[name].values, b[name].values, equal_nan=True), name


@pytest.mark.slow
def test_the_default_directory_and_off(tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    _run(config, tmp_path / "default.nc", XDG_CACHE_HOME=str(tmp_path / "xdg"))
    assert list((tmp_path / "xdg" / "stresslab" / "jax").glob("*-cache"))
    _run(config, tmp_path / "off.nc", XDG_CACHE_HOME=str(tmp_path / "xdg-off"), **{CACHE_ENV: "off"})
    assert not (tmp_path / "xdg-off" / "stresslab").exists()  # (other libraries may keep their caches there)
