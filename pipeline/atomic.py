"""Atomic file writes: a temporary name beside the target, then a rename.

A reader (a renderer, a second `fit`) never sees half a file, and a process
killed mid-write leaves only a temporary file that carries its PID, which the
next writer removes. Used by the run-directory code (`run.py`) and the output
writers (`writers.py`) alike.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["temp_path", "remove_stale_temps", "write_bytes", "update_bytes", "json_bytes", "write_h5"]


def temp_path(path: Path) -> Path:
    """Return a temporary name beside `path` that no listing mistakes for it (it carries this PID)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete temporary files under `folder` left by processes that died mid-write; return them.

    A temporary name carries its writer's PID (see `temp_path`), so a file of a
    live writer, such as a training process still running, is never touched.
    """
    removed = []
    for path in Path(folder).rglob(".*.tmp"):
        try:
            pid = int(path.name.rsplit(".", 2)[-2])
            os.kill(pid, 0)
            continue  # its writer is alive
        except ProcessLookupError:
            pass
        except (ValueError, PermissionError):
            continue  # not ours, or another user's live process
        try:
            path.unlink()
            removed.append(path)
        except OSError:
            pass
    return removed


def write_bytes(path: Path, data: bytes, *, durable: bool) -> None:
    """Write `data` to `path` through a temporary file and a rename.

    durable: fsync before the rename, so the file survives a power cut too
    (the run directory's files). Re-creatable outputs skip it: a killed
    process never leaves half a file either way.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def update_bytes(path: Path, data: bytes) -> bool:
    """Write an output file unless it already holds exactly `data` (a no-op render writes nothing)."""
    try:
        if Path(path).read_bytes() == data:
            return False
    except OSError:
        pass
    write_bytes(path, data, durable=False)
    return True


def json_bytes(obj, *, compact: bool = False) -> bytes:
    """Return `obj` as key-sorted JSON: stable bytes for stable input. Indented for people to read, or
    compact: one line, written by json's C encoder, about 6x faster (a large manifest saved often)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":")) if compact else \
        json.dumps(obj, indent=1, sort_keys=True)
    return (text + "\n").encode()


def write_h5(path: Path, fill) -> None:
    """Write an HDF5 file at `path` atomically and durably; `fill(h5file)` writes its contents.

    The file is built in memory and written as bytes: HDF5 itself never
    touches the disk, so a full disk or a dead filesystem is a plain OSError
    from the write, never a half-closed HDF5 file.
    """
    import io

    import h5py

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        fill(f)
    write_bytes(path, buffer.getvalue(), durable=True)
