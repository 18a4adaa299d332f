"""A cache of compiled kernels on disk, so that a repeated command loads its kernel instead of compiling it.

XLA takes 5-10 s to compile a scenario's kernel (more for calibration's value-and-gradient programs), and
without a cache every ``stresslab run`` pays that again. JAX can keep each compiled program in a directory,
keyed by the program itself (its HLO, the devices, the JAX and jaxlib versions, the compile options): a
second run of the same config, with any seed or control values, loads it. A change that alters the program
(another config's mechanisms, another chunk size, another device count) compiles and adds an entry. The
cache changes no number: the loaded program is the one that was compiled.

The command line turns it on (``use_compile_cache``); Python users call ``stresslab.use_compile_cache()``.
Entries are evicted least recently used beyond MAX_BYTES; reads and writes hold a file lock, so several
processes (``jax.distributed`` jobs, parallel runs) can share the directory.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path

CACHE_ENV = "STRESSLAB_COMPILE_CACHE"
"""Environment variable: the cache directory, or one of OFF to run without a cache."""
OFF = ("0", "off", "false", "no", "none")
"""Values of CACHE_ENV that turn the cache off (any case)."""
MAX_BYTES = 2 * 1024**3
"""Size of the cache beyond which the least recently used kernels are evicted (one kernel takes 0.2-2 MB)."""
MIN_COMPILE_SECONDS = 1.0
"""Only programs that took at least this long to compile are stored (the kernels; not small helpers)."""


def cache_directory(environ: Mapping[str, str] | None = None) -> Path | None:
    """Where the cache lives: ``$STRESSLAB_COMPILE_CACHE``, else ``$XDG_CACHE_HOME/stresslab/jax``, else
    ``~/.cache/stresslab/jax``; None where CACHE_ENV is one of OFF."""
    environ = os.environ if environ is None else environ
    chosen = environ.get(CACHE_ENV, "").strip()
    if chosen.lower() in OFF:
        return None
    if chosen:
        return Path(chosen).expanduser()
    base = environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(base) if base else Path.home() / ".cache") / "stresslab" / "jax"


def use_compile_cache() -> Path | None:
    """Keep compiled kernels on disk in ``cache_directory()``, so later runs of the same program load them.

    Leaves JAX alone where its own cache directory is already set (``JAX_COMPILATION_CACHE_DIR`` or
    ``jax_compilation_cache_dir``) and returns that; returns None where CACHE_ENV turns the cache off or the
    directory cannot be created or written (a warning says why: a run never fails for want of a cache).
    Works before or after JAX starts computing; takes effect for programs compiled afterwards.

    Returns:
        The directory in use, or None.
    """
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    if jax.config.jax_compilation_cache_dir:
        return Path(jax.config.jax_compilation_cache_dir)
    directory = cache_directory()
    if directory is None:
        return None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        problem = None if os.access(directory, os.W_OK | os.X_OK) else "not writable"
    except OSError as err:
        problem = err.strerror
    if problem is not None:
        warnings.warn(f"compiled kernels are not cached: cannot use {directory} ({problem}); set "
                      f"{CACHE_ENV} to a writable directory, or to 'off'", RuntimeWarning, stacklevel=2)
        return None
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    compilation_cache.reset_cache()  # JAX decides on its first compile whether a cache is used: decide again
    return directory
