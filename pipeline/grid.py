"""Pure array code: model outputs -> uint8 pictures. No files, no TensorFlow.

A *grid* is a (rows * (H + pad) + pad, cols * (W + pad) + pad, C) uint8 array
of tiles with `pad` pixels of `pad_value` around and between them, C being 1
(grayscale) or 3 (RGB).
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np

__all__ = ["to_uint8", "display", "parse_channels", "tile", "square_cols", "pick_channels", "contrasting_pad", "caption",
           "label_rows", "label_columns", "tile_centers", "text_band", "stack_labelled"]


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


COLORS = {"red": (1, 0, 0), "green": (0, 1, 0), "blue": (0, 0, 1), "cyan": (0, 1, 1),
          "magenta": (1, 0, 1), "yellow": (1, 1, 0), "gray": (1, 1, 1), "grey": (1, 1, 1), "white": (1, 1, 1)}
NORMALIZE = ("global", "per-image", "none")
NONFINITE_RGB = (255, 0, 0)  # where a model produced NaN or Inf


def parse_channels(spec: str):
    """Return channel indices `[0, 2, 4]` from `0,2,4`, or a composite `[(0, "magenta"), ...]`
    from `0:magenta,1:green` (colours: red, green, blue, cyan, magenta, yellow, gray)."""
    items = [p.strip() for p in str(spec).split(",") if p.strip()]
    try:
        if items and all(":" in p for p in items):
            pairs = [(int(k), c.strip().lower()) for k, c in (p.split(":", 1) for p in items)]
            bad = [c for _, c in pairs if c not in COLORS]
            if bad:
                raise ValueError(f"unknown colour `{bad[0]}`")
            return pairs
        if items and not any(":" in p for p in items):
            return [int(p) for p in items]
        raise ValueError("mixed or empty")
    except ValueError as err:
        raise ValueError(f"expected channel indices like `0,2,4` or a composite like `0:magenta,1:green` "
                         f"(colours: {', '.join(sorted(set(COLORS) - {'grey', 'white'}))}); received `{spec}` "
                         f"({err}).") from None


def _scaled(images: np.ndarray, value_range, normalize: str) -> np.ndarray:
    """Return images as float64 display intensities in [0, 1] (NaN kept)."""
    x = np.asarray(images, dtype=np.float64)
    if normalize == "none":
        return np.clip(x, 0.0, 1.0)
    if normalize == "per-image":
        with warnings.catch_warnings():  # an all-NaN image: its range falls back to [0, 1]
            warnings.simplefilter("ignore", RuntimeWarning)
            finite = np.where(np.isfinite(x), x, np.nan)
            lo = np.nanmin(finite, axis=(1, 2), keepdims=True) if finite.size else 0.0
            hi = np.nanmax(finite, axis=(1, 2), keepdims=True) if finite.size else 1.0
        lo, hi = np.nan_to_num(lo, nan=0.0), np.nan_to_num(hi, nan=1.0)
        span = np.where(hi > lo, hi - lo, 1.0)
        return np.clip((x - lo) / span, 0.0, 1.0)
    lo, hi = (float(v) for v in value_range)
    if not hi > lo:
        raise ValueError(f"value_range must be (lo, hi) with lo < hi; received {value_range}.")
    # in place: the same float64 operations as np.clip((x - lo) / (hi - lo), 0, 1), without three temporaries
    # (a research-size walk is 8 M values: each temporary is 60 MB written and read)
    x = np.array(x, dtype=np.float64) if x is images else x
    x -= lo
    x /= hi - lo
    return np.clip(x, 0.0, 1.0, out=x)


def _to_bytes(x: np.ndarray) -> np.ndarray:
    """Return display intensities `x` (float64 in [0, 1] or NaN; overwritten) as uint8: NaN 0, else rint(255 x)."""
    nan = np.isnan(x)
    if nan.any():
        x[nan] = 0.0
    x *= 255
    return np.rint(x, out=x).astype(np.uint8)


def nonfinite_mask(images: np.ndarray) -> np.ndarray:
    """Return (N, H, W) bool: pixels with NaN or Inf in any channel of (N, H, W, C) images."""
    images = np.asarray(images)
    if images.dtype.kind not in "fc" or images.size == 0 or (
            images.dtype.kind == "f" and np.isfinite(images.min()) and np.isfinite(images.max())):
        return np.zeros(images.shape[:-1], bool)  # min and max are NaN when any value is: one fast pass each
    return ~np.isfinite(images).all(axis=-1)


def match_channels(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Return uint8 arrays (..., 1 or 3) with one channel count: all RGB if any is.

    display() turns a grayscale picture RGB where it marks NaN, so a marked
    frame may sit among gray ones.
    """
    if len({a.shape[-1] for a in arrays}) < 2:
        return arrays
    return [a if a.shape[-1] == 3 else a.repeat(3, axis=-1) for a in arrays]


def display(images: np.ndarray, *, channels=None, value_range=(0.0, 1.0), normalize: str = "global",
            scale: int = 1) -> np.ndarray:
    """Return (N, H * scale, W * scale, 1 or 3) uint8: what the user sees of model-space images.

    images : (N, H, W, C) in the model's `value_range` (any dtype; 16-bit keeps
        its full range until the final rounding).
    channels : indices (see `pick_channels`) or a composite [(index, colour)]
        that adds each chosen channel in its colour, as microscopy viewers do.
    normalize : `global` (the value range), `per-image` (each image's own
        min..max per channel) or `none` (values already in [0, 1]).
    scale : nearest-neighbour upsampling factor, for tiny images.
    Pixels with NaN or Inf in a shown channel are painted NONFINITE_RGB (red;
    a grayscale result then becomes RGB), so a diverged model is seen, not hidden.
    """
    if normalize not in NORMALIZE:
        raise ValueError(f"normalize must be one of {NORMALIZE}; received `{normalize}`.")
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must be (N, H, W, C); received shape {images.shape}.")
    if channels and isinstance(channels[0], (tuple, list)):
        c = images.shape[-1]
        if any(not 0 <= k < c for k, _ in channels):
            raise ValueError(f"composite channels must be below {c} (the images' channel count); "
                             f"received {[k for k, _ in channels]}.")
        raw = images[..., [k for k, _ in channels]]
        x = np.nan_to_num(_scaled(raw, value_range, normalize), nan=0.0)
        rgb = np.clip(x @ np.array([COLORS[name] for _, name in channels], np.float64), 0.0, 1.0)
        out = np.rint(rgb * 255).astype(np.uint8)
    else:
        raw = pick_channels(images, channels)
        x = _scaled(raw, value_range, normalize)
        if channels is not None and len(channels) == 2 or channels is None and images.shape[-1] == 2:
            x[..., 2] = 0.0  # the blue pick_channels adds is black, whatever the value range
        out = _to_bytes(x)
    bad = nonfinite_mask(raw)
    if bad.any():
        out = out if out.shape[-1] == 3 else out.repeat(3, axis=-1)
        out[bad] = NONFINITE_RGB
    if scale > 1:
        out = out.repeat(scale, axis=1).repeat(scale, axis=2)
    return out


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


@functools.lru_cache(maxsize=16)
def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def text_band(height: int, width: int, texts, *, size: int, background: int = 0) -> np.ndarray:
    """Return a (height, width) uint8 band with each (text, (x, y), gray, anchor) of `texts` drawn."""
    from PIL import Image, ImageDraw

    band = Image.new("L", (width, height), background)
    draw = ImageDraw.Draw(band)
    for text, xy, gray, anchor in texts:
        draw.text(xy, text, fill=gray, font=_font(size), anchor=anchor)
    return np.asarray(band)


def _beside(grid: np.ndarray, band: np.ndarray, *, axis: int, before: bool) -> np.ndarray:
    band = band[..., None].repeat(grid.shape[-1], axis=-1)
    return np.concatenate([band, grid] if before else [grid, band], axis=axis)


def tile_centers(n: int, size: int, pad: int) -> list[float]:
    """Return the centre coordinate of each of `n` tiles of `size` along a padded grid axis."""
    return [pad + k * (size + pad) + size / 2 for k in range(n)]


def label_rows(grid: np.ndarray, labels, centers, *, width: int = 64, grays=None,
               background: int = 0) -> np.ndarray:
    """Return `grid` with a band of `width` pixels at its left, a label centred on each row.

    grays : the gray level of each label (default 255): greyed labels mark
    inactive latents. The grid's own pixels are unchanged.
    """
    grays = [255] * len(labels) if grays is None else list(grays)
    row = (centers[1] - centers[0]) if len(centers) > 1 else grid.shape[0]
    size = int(max(7, min(12, row - 3)))
    band = text_band(grid.shape[0], width, [(t, (width - 3, c), g, "rm") for t, c, g in zip(labels, centers, grays)],
                     size=size, background=background)
    return _beside(grid, band, axis=1, before=True)


def label_columns(grid: np.ndarray, labels, centers, *, height: int = 14, title: str = "",
                  background: int = 0) -> np.ndarray:
    """Return `grid` with a band of `height` pixels below it, a label centred under each column."""
    texts = [(t, (c, height // 2), 255, "mm") for t, c in zip(labels, centers)]
    if title:  # in the corner left of the first tile, under the row labels
        texts.append((title + " \u2192", (2, height // 2), 255, "lm"))
    band = text_band(height, grid.shape[1], texts, size=max(7, height - 5), background=background)
    return _beside(grid, band, axis=0, before=False)


def caption(grid: np.ndarray, text: str, *, height: int = 16, background: int = 0) -> np.ndarray:
    """Return `grid` with a band of `height` pixels above it holding `text`.

    The grid's own pixels are unchanged: the caption never covers a tile.
    """
    band = text_band(height, grid.shape[1], [(text, (3, height // 2), 255 - background, "lm")],
                     size=max(8, height - 4), background=background)
    return _beside(grid, band, axis=0, before=True)


def stack_labelled(grids: list[np.ndarray], labels, *, height: int = 16) -> np.ndarray:
    """Return equal-width grids stacked top to bottom, each under a band of `height` pixels with its label."""
    banded = match_channels([caption(g, str(label), height=height) for g, label in zip(grids, labels)])
    return np.concatenate(banded, axis=0)
