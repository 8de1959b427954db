"""Pure array code: model outputs -> uint8 pictures. No files, no TensorFlow.

A *grid* is a (rows * (H + pad) + pad, cols * (W + pad) + pad, C) uint8 array
of tiles with `pad` pixels of `pad_value` around and between them, C being 1
(grayscale) or 3 (RGB).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["to_uint8", "tile", "square_cols", "pick_channels", "contrasting_pad", "caption"]


def pick_channels(images: np.ndarray, channels=None) -> np.ndarray:
    """Return images (N, H, W, 1 or 3): grayscale stays, RGB stays, more show 3 of them.

    images : (N, H, W, C) array.
    channels : indices to show (1 to 3 of them); default: channel 0 for C = 1,
        the first three for C >= 3, the two and a zero blue for C = 2.
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must be (N, H, W, C); received shape {images.shape}.")
    c = images.shape[-1]
    if channels is None:
        channels = [0] if c == 1 else list(range(min(c, 3)))
    channels = list(channels)
    if not 1 <= len(channels) <= 3 or any(not 0 <= k < c for k in channels):
        raise ValueError(f"channels must be 1 to 3 indices below {c} (the images' channel count); "
                         f"received {channels}.")
    picked = images[..., channels]
    if len(channels) == 2:
        picked = np.concatenate([picked, np.zeros_like(picked[..., :1])], axis=-1)
    return picked


def to_uint8(images: np.ndarray, *, value_range=(0.0, 1.0)) -> np.ndarray:
    """Return images clipped to `value_range` and scaled to uint8 (same shape).

    NaN becomes 0; +-Inf are clipped like any other value.
    """
    lo, hi = (float(v) for v in value_range)
    if not hi > lo:
        raise ValueError(f"value_range must be (lo, hi) with lo < hi; received {value_range}.")
    x = np.nan_to_num(np.asarray(images, dtype=np.float64), nan=lo, posinf=hi, neginf=lo)
    return np.rint((np.clip(x, lo, hi) - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def square_cols(n: int) -> int:
    """Return the column count of the squarest grid holding `n` tiles: ceil(sqrt(n))."""
    return max(1, math.ceil(math.sqrt(n)))


def contrasting_pad(images_u8: np.ndarray) -> int:
    """Return a pad gray level that stands out from the images' typical border colour.

    Dark borders (the common black background) get white padding, light
    borders black padding.
    """
    images_u8 = np.asarray(images_u8)
    border = np.concatenate([images_u8[:, 0].ravel(), images_u8[:, -1].ravel(),
                             images_u8[:, :, 0].ravel(), images_u8[:, :, -1].ravel()])
    return 255 if border.size == 0 or float(np.median(border)) < 128 else 0


def tile(images: np.ndarray, *, cols: int, pad: int = 2, pad_value: int = 255) -> np.ndarray:
    """Return the grid of `images` (N, H, W, C) uint8, `cols` per row, row-major.

    Cells past N (an incomplete last row) are filled with `pad_value`.
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must be (N, H, W, C); received shape {images.shape}.")
    if images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (use to_uint8 first); received {images.dtype}.")
    if cols < 1 or pad < 0:
        raise ValueError(f"cols must be >= 1 and pad >= 0; received cols={cols}, pad={pad}.")
    n, h, w, c = images.shape
    rows = max(1, math.ceil(n / cols))
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), pad_value, np.uint8)
    for i in range(n):
        r, k = divmod(i, cols)
        top, left = pad + r * (h + pad), pad + k * (w + pad)
        out[top:top + h, left:left + w] = images[i]
    return out


def caption(grid: np.ndarray, text: str, *, height: int = 16, background: int = 0) -> np.ndarray:
    """Return `grid` with a band of `height` pixels above it holding `text`.

    The grid's own pixels are unchanged: the caption never covers a tile.
    """
    from PIL import Image, ImageDraw, ImageFont

    grid = np.asarray(grid)
    h, w, c = grid.shape
    band = Image.new("L", (w, height), background)
    font = ImageFont.load_default(size=max(8, height - 4))
    ImageDraw.Draw(band).text((3, height // 2), text, fill=255 - background, font=font, anchor="lm")
    band_arr = np.asarray(band)[..., None].repeat(c, axis=-1)
    return np.concatenate([band_arr, grid], axis=0)
