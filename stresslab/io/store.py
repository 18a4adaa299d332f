"""Write results to disk and read them back: a Zarr directory store, or netCDF for ``*.nc``.

A write never leaves a half-written result behind: the Dataset goes to a hidden
temporary sibling of the target, which is renamed into place only once complete
(a failed or interrupted write removes it). An existing target is replaced only
when asked to.

Zarr stores are written in Zarr format 2 with consolidated metadata: every Zarr
reader can open it, and fixed-width strings (swept text fields) and consolidated
metadata have no Zarr 3 specification yet. netCDF files are written with the
h5netcdf engine (netCDF-4/HDF5). Both keep timedelta ``time`` coordinates (as
integers with a ``units`` attribute that xarray decodes) and string attributes
such as the resolved ``config``.

A run split over several processes stages its per-path outputs in a ``PathStore``:
one Zarr store that every process fills with its own paths, and that the process
finishing the run reads back.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path

import numcodecs
import numpy as np
import xarray as xr
import zarr

from stresslab import accessor as _accessor  # noqa: F401  (results read back carry ds.stress)
from stresslab.io import targets

NETCDF_SUFFIX = ".nc"
ZARR_FORMAT = 2
ZARR_CHUNK_BYTES = 32 * 2**20
"""Largest Zarr chunk written for an in-memory array, bytes (compressors refuse chunks over 2 GiB)."""
NETCDF_COMPRESSION = {"zlib": True, "complevel": 4, "shuffle": True}
"""netCDF encoding of the numeric arrays of a netCDF file: deflate (zlib) level 4 after byte shuffling, which
every netCDF-4 reader decodes."""
NETCDF_MIN_COMPRESSED_BYTES = 4096
"""Smaller arrays are stored contiguous: the chunk index of a compressed HDF5 dataset outweighs what
compressing a few kilobytes saves."""
ZARR_COMPRESSOR = numcodecs.Blosc(cname="zstd", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE)
"""Compressor of every Zarr array written: Blosc with zstd after byte shuffling."""
ZARR_COMPRESSOR_KEY = "compressors" if int(zarr.__version__.split(".")[0]) >= 3 else "compressor"
"""The encoding key xarray takes for it: ``compressors`` (a tuple) with zarr-python 3, ``compressor`` with 2."""
SCENARIO_DIM = "scenario"
LAYOUT_FILE = "layout.json"
PER_PATH_GROUP = "per_path"
RECORDED_GROUP = "recorded"
DONE_DIR = "done"


def write(ds: xr.Dataset, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write ``ds`` to ``path`` atomically: netCDF if the path ends in ``.nc``, else a Zarr directory.

    Args:
        ds: the results, e.g. from :func:`stresslab.simulate`; in memory or dask-backed.
        path: target file (``*.nc``) or directory (anything else); missing parent
            directories are created.
        overwrite: replace an existing file or directory at ``path``.

    Returns:
        The path written.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is false.
    """
    target = Path(path)
    check_target(target, overwrite=overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = _sibling(target, "tmp")
    try:
        clean = ds.drop_encoding()
        if is_netcdf(target):
            clean.to_netcdf(temporary, engine="h5netcdf", encoding=_netcdf_encoding(clean))
        else:
            clean.to_zarr(temporary, mode="w-", zarr_format=ZARR_FORMAT, consolidated=True,
                          encoding=_zarr_encoding(clean))
        check_target(target, overwrite=overwrite)
        _move_into_place(temporary, target)
    except BaseException:
        _remove(temporary)
        raise
    return target


def read(path: str | os.PathLike[str]) -> xr.Dataset:
    """Open results written by :func:`write` (or any netCDF file / Zarr store), lazily.

    Args:
        path: a ``*.nc`` file (opened with h5netcdf) or a Zarr directory store.

    Returns:
        The Dataset; variables are read from disk on access (``.load()`` reads them all).

    Raises:
        FileNotFoundError: nothing exists at ``path``.
    """
    source = Path(path)
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such results file or Zarr store")
    if is_netcdf(source):
        return xr.open_dataset(source, engine="h5netcdf")
    return xr.open_zarr(source)


def check_target(path: str | os.PathLike[str], *, overwrite: bool) -> None:
    """Raise ``FileExistsError`` (:class:`~stresslab.io.targets.OutputInTheWay`) if ``path`` exists and may not be
    replaced. :func:`stresslab.io.targets.check_output` checks a path fully before a run."""
    targets.check_exists(path, overwrite=overwrite)


def is_netcdf(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a netCDF file (it ends in ``.nc``) rather than a Zarr store."""
    return Path(path).suffix == NETCDF_SUFFIX


def _zarr_encoding(ds: xr.Dataset) -> dict[str, dict[str, object]]:
    """Chunk shapes for in-memory arrays (one scenario per chunk, at most ``ZARR_CHUNK_BYTES`` each) and the
    :data:`ZARR_COMPRESSOR` for every numeric array.

    Dask-backed arrays keep their own chunks.
    """
    encoding: dict[str, dict[str, object]] = {}
    for name, variable in ds.variables.items():
        if variable.ndim == 0:
            continue
        entry: dict[str, object] = {}
        if _numeric(variable):
            entry[ZARR_COMPRESSOR_KEY] = (ZARR_COMPRESSOR,) if ZARR_COMPRESSOR_KEY == "compressors" else ZARR_COMPRESSOR
        if variable.chunks is None:
            chunks = [1 if dim == SCENARIO_DIM else size for dim, size in variable.sizes.items()]
            while math.prod(chunks) * variable.dtype.itemsize > ZARR_CHUNK_BYTES:
                largest = chunks.index(max(chunks))
                chunks[largest] = -(-chunks[largest] // 2)
            entry["chunks"] = tuple(chunks)
        if entry:
            encoding[str(name)] = entry
    return encoding


def _netcdf_encoding(ds: xr.Dataset) -> dict[str, dict[str, object]]:
    """:data:`NETCDF_COMPRESSION` for every numeric array of :data:`NETCDF_MIN_COMPRESSED_BYTES` or more
    (scalars, strings and small arrays are stored as they are)."""
    return {str(name): dict(NETCDF_COMPRESSION) for name, variable in ds.variables.items()
            if variable.ndim > 0 and _numeric(variable) and variable.nbytes >= NETCDF_MIN_COMPRESSED_BYTES}


def _numeric(variable: xr.Variable) -> bool:
    """Whether ``variable`` holds numbers, booleans or times (not strings), which compressors take."""
    return variable.dtype.kind in "biufmM"


class PathStore:
    """Per-path outputs and recorded series of one run, written by several processes, each its own paths.

    A directory with one Zarr array per output: ``per_path/NAME`` (scenario, path) and
    ``recorded/NAME`` (scenario, path, time), chunked one scenario and ``block`` paths per
    chunk. Processes write disjoint runs of whole blocks (``engine.distributed.span``),
    so no Zarr chunk is ever written by two processes. A chunk of paths counts as stored
    once its marker file in ``done/`` exists; the marker is written after the data, so a
    resumed run skips exactly the chunks that are complete. It follows the protocol of
    ``io.checkpoint.Checkpoint`` (``load``, ``save``), so the runner streams chunks into it.

    Args:
        directory: a store made by :meth:`create`.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.layout = json.loads((self.directory / LAYOUT_FILE).read_text())
        self.block: int = self.layout["block"]

    @classmethod
    def create(cls, directory: str | os.PathLike[str], layout: Mapping[str, object]) -> PathStore:
        """Make an empty store (replacing whatever is at ``directory``).

        Args:
            layout: ``scenarios`` and ``paths`` (ints), ``block`` (paths per Zarr chunk),
                ``per_path`` {name: dtype string} and ``recorded`` {name: [dtype string,
                number of time points]}, as :func:`path_layout` makes it.
        """
        directory = Path(directory)
        _remove(directory)
        scenarios, paths, block = layout["scenarios"], layout["paths"], layout["block"]
        for name, dtype in layout["per_path"].items():
            zarr.create(shape=(scenarios, paths), chunks=(1, block), dtype=dtype,
                        store=str(directory / PER_PATH_GROUP / name))
        for name, (dtype, points) in layout["recorded"].items():
            zarr.create(shape=(scenarios, paths, points), chunks=(1, block, points), dtype=dtype,
                        store=str(directory / RECORDED_GROUP / name))
        (directory / DONE_DIR).mkdir()
        _atomic_write_text(directory / LAYOUT_FILE, json.dumps(dict(layout)))  # last: the store is ready
        return cls(directory)

    @staticmethod
    def exists(directory: str | os.PathLike[str]) -> bool:
        """Whether a complete (possibly partly filled) store is at ``directory``."""
        return (Path(directory) / LAYOUT_FILE).exists()

    def holds(self, layout: Mapping[str, object]) -> bool:
        """Whether this store has the arrays of ``layout``, whatever its block size (a resume keeps the stored one)."""
        return {**self.layout, "block": None} == {**layout, "block": None}

    def _array(self, group: str, name: str) -> zarr.Array:
        return zarr.open_array(store=str(self.directory / group / name), mode="r+")

    def _marker(self, scenario: int, start: int, count: int) -> Path:
        return self.directory / DONE_DIR / f"scenario{scenario:05d}_paths{start:012d}+{count}"

    def save(self, scenario: int, start: int, per_path: Mapping[str, np.ndarray],
             recorded: Mapping[str, np.ndarray]) -> None:
        """Write paths ``start ..`` of ``scenario`` (per-path (n,), recorded (n, T)), then mark them stored."""
        count = len(next(iter(per_path.values())))
        for group, arrays in ((PER_PATH_GROUP, per_path), (RECORDED_GROUP, recorded)):
            for name, values in arrays.items():
                self._array(group, name)[scenario, start:start + count] = values
        _atomic_write_text(self._marker(scenario, start, count), "")

    def load(self, scenario: int, start: int, count: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None:
        """The stored arrays of paths ``start .. start + count - 1``, or None if that chunk is not marked stored."""
        if not self._marker(scenario, start, count).exists():
            return None
        return self._read(scenario, slice(start, start + count))

    def read(self, scenario: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """All paths of ``scenario``: per-path outputs {name: (paths,)} and recorded series {name: (paths, T)}."""
        return self._read(scenario, slice(None))

    def _read(self, scenario: int, paths: slice) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        per_path = {name: self._array(PER_PATH_GROUP, name)[scenario, paths] for name in self.layout["per_path"]}
        recorded = {name: self._array(RECORDED_GROUP, name)[scenario, paths] for name in self.layout["recorded"]}
        return per_path, recorded


def path_layout(scenarios: int, paths: int, block: int, per_path: Mapping[str, np.dtype],
                recorded: Mapping[str, tuple[np.dtype, int]]) -> dict[str, object]:
    """The layout of a :class:`PathStore` (JSON-serialisable, comparable with a stored one)."""
    return {"scenarios": scenarios, "paths": paths, "block": block,
            "per_path": {name: np.dtype(dtype).str for name, dtype in per_path.items()},
            "recorded": {name: [np.dtype(dtype).str, points] for name, (dtype, points) in recorded.items()}}


def _atomic_write_text(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:12]}")
    temporary.write_text(text)
    os.replace(temporary, path)


def _sibling(target: Path, purpose: str) -> Path:
    """A hidden, unique path next to ``target``, on the same file system so a rename is atomic."""
    return target.with_name(f".{target.name}.{purpose}-{uuid.uuid4().hex[:12]}")


def _move_into_place(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target``; an existing ``target`` is set aside first and removed after."""
    if not target.exists() or (source.is_file() and target.is_file()):
        os.replace(source, target)
        return
    backup = _sibling(target, "old")
    os.replace(target, backup)
    try:
        os.replace(source, target)
    except BaseException:
        os.replace(backup, target)
        raise
    _remove(backup)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)
