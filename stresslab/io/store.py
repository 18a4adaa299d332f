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
"""

from __future__ import annotations

import math
import os
import shutil
import uuid
from pathlib import Path

import xarray as xr

NETCDF_SUFFIX = ".nc"
ZARR_FORMAT = 2
ZARR_CHUNK_BYTES = 32 * 2**20
"""Largest Zarr chunk written for an in-memory array, bytes (compressors refuse chunks over 2 GiB)."""
SCENARIO_DIM = "scenario"


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
            clean.to_netcdf(temporary, engine="h5netcdf")
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
    """Raise ``FileExistsError`` if ``path`` exists and may not be replaced."""
    target = Path(path)
    if not overwrite and (target.exists() or target.is_symlink()):
        raise FileExistsError(f"{target} already exists; pass overwrite=True (--overwrite) to replace it")


def is_netcdf(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a netCDF file (it ends in ``.nc``) rather than a Zarr store."""
    return Path(path).suffix == NETCDF_SUFFIX


def _zarr_encoding(ds: xr.Dataset) -> dict[str, dict[str, tuple[int, ...]]]:
    """Chunk shapes for in-memory arrays: one scenario per chunk, at most ``ZARR_CHUNK_BYTES`` each.

    Dask-backed arrays keep their own chunks.
    """
    encoding = {}
    for name, variable in ds.variables.items():
        if variable.ndim == 0 or variable.chunks is not None:
            continue
        chunks = [1 if dim == SCENARIO_DIM else size for dim, size in variable.sizes.items()]
        while math.prod(chunks) * variable.dtype.itemsize > ZARR_CHUNK_BYTES:
            largest = chunks.index(max(chunks))
            chunks[largest] = -(-chunks[largest] // 2)
        encoding[str(name)] = {"chunks": tuple(chunks)}
    return encoding


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
