"""Reading rendered grids back in tests: one tile of a grid, and images as the renderer shows them."""

import numpy as np

from pipeline import grid


def tile(picture: np.ndarray, r: int, c: int, *, size: int = 16, pad: int = 2, left: int = 0,
         top: int = 0) -> np.ndarray:
    """Return tile (r, c) of a grid of `size`-pixel tiles `pad` apart, starting `left` and `top` in, as ints."""
    y, x = top + pad + r * (size + pad), left + pad + c * (size + pad)
    return picture[y:y + size, x:x + size].astype(int)


def shown(images: np.ndarray) -> np.ndarray:
    """Return one-channel images in [0, 1] (N, H, W, 1) as the renderer shows them: uint8 levels, as ints."""
    return grid.to_uint8(images[..., 0], value_range=(0, 1)).astype(int)
