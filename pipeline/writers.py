"""Grids -> files. Every file is encoded in memory, written to a temporary name
and renamed, so an interrupted render never leaves half a picture.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from pipeline.run import atomic_write_bytes, atomic_write_json

__all__ = ["write_png", "read_png", "write_gif", "write_json", "write_bytes"]

write_json = atomic_write_json
write_bytes = atomic_write_bytes


def _plain(grid: np.ndarray) -> np.ndarray:
    """Return (H, W) for a 1-channel grid, (H, W, 3) for RGB."""
    grid = np.asarray(grid, np.uint8)
    return grid[..., 0] if grid.ndim == 3 and grid.shape[-1] == 1 else grid


def write_png(path: Path, grid: np.ndarray) -> None:
    """Write a uint8 grid (H, W, 1 or 3) as a PNG (no timestamps: same grid, same bytes)."""
    import imageio.v3 as iio

    atomic_write_bytes(path, iio.imwrite("<bytes>", _plain(grid), extension=".png"))


def read_png(path: Path) -> np.ndarray:
    """Return a PNG written by `write_png` as (H, W, 1 or 3) uint8."""
    import imageio.v3 as iio

    array = iio.imread(path)
    return array[..., None] if array.ndim == 2 else array


def write_gif(path: Path, frames: list[np.ndarray], *, fps: float = 5.0) -> None:
    """Write equal-sized uint8 frames as a GIF that loops forever at `fps` frames a second."""
    import imageio.v3 as iio

    if not frames:
        raise ValueError("write_gif needs at least one frame.")
    stack = np.stack([_plain(f) for f in frames])
    buf = io.BytesIO()
    iio.imwrite(buf, stack, extension=".gif", duration=round(1000 / fps), loop=0)
    atomic_write_bytes(path, buf.getvalue())
