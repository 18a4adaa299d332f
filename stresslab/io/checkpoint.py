"""Chunk-by-chunk results of a run in progress, so a killed run can resume where it stopped.

Each finished chunk is saved as one ``.npz`` file, written to a temporary name and
renamed into place, so a file that exists is complete. The directory holds a
fingerprint of the run (resolved config, seed, paths, chunk size, version); a
resume with anything different is refused. Because every path's numbers depend
only on (seed, path index), a resumed run ends bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from stresslab.errors import CheckpointError

FINGERPRINT = "run.json"
START_OVER = ("overwrite", "to start over")



class Checkpoint:
    """Finished chunks of one run, in ``directory``.

    Args:
        directory: where chunk files live (created if missing).
        identity: everything that determines the numbers (JSON-serialisable).
        resume: continue a partial run found in ``directory``; without it an
            existing partial run is refused rather than silently reused or lost.
        output: the result this run writes, named in messages (default: ``directory``).
    """

    def __init__(self, directory: str | os.PathLike[str], identity: dict, *, resume: bool,
                 output: str | os.PathLike[str] | None = None) -> None:
        self.directory = Path(directory)
        fingerprint = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
        marker = self.directory / FINGERPRINT
        name = Path(output) if output is not None else self.directory
        if marker.exists():
            if not resume:
                raise CheckpointError(f"an unfinished run of {name} is in the way",
                                      [("resume", "to continue it"), START_OVER])
            if json.loads(marker.read_text())["fingerprint"] != fingerprint:
                raise CheckpointError(f"the unfinished run of {name} has a different config, seed, paths or chunk "
                                      "size (resume it with the same arguments)", [START_OVER])
        else:
            self.directory.mkdir(parents=True, exist_ok=True)
            _atomic_write_bytes(marker, json.dumps({"fingerprint": fingerprint, "identity": identity}).encode())

    def _file(self, scenario: int, start: int, count: int) -> Path:
        return self.directory / f"scenario{scenario:05d}_paths{start:012d}+{count}.npz"

    def load(self, scenario: int, start: int, count: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None:
        """The saved (per-path, recorded) arrays of paths ``start .. start + count - 1``, or None."""
        path = self._file(scenario, start, count)
        if not path.exists():
            return None
        with np.load(path) as data:
            per_path = {k.removeprefix("p/"): data[k] for k in data.files if k.startswith("p/")}
            recorded = {k.removeprefix("r/"): data[k] for k in data.files if k.startswith("r/")}
        return per_path, recorded

    def save(self, scenario: int, start: int, per_path: dict[str, np.ndarray],
             recorded: dict[str, np.ndarray]) -> None:
        """Save a finished chunk; the file appears complete or not at all."""
        target = self._file(scenario, start, len(next(iter(per_path.values()))))
        temporary = target.with_name(f".{target.name}.tmp")
        arrays = {f"p/{k}": v for k, v in per_path.items()} | {f"r/{k}": v for k, v in recorded.items()}
        with open(temporary, "wb") as handle:
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)

    def count(self) -> int:
        """Number of finished chunks saved."""
        return saved_chunks(self.directory)

    def remove(self) -> None:
        """Delete the partial run (once the complete result is in place)."""
        shutil.rmtree(self.directory, ignore_errors=True)


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def saved_chunks(directory: str | os.PathLike[str]) -> int:
    """Number of finished chunks saved in ``directory`` (0 if there is none)."""
    return sum(1 for _ in Path(directory).glob("scenario*.npz"))


def partial_dir(out: str | os.PathLike[str]) -> Path:
    """Where the chunks of a run writing to ``out`` are kept until it completes."""
    out = Path(out)
    return out.with_name(f"{out.name}.partial")
