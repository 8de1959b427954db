"""walk: one row per latent, walked over standard-normal quantiles, the others held at an anchor.

Kingma & Welling's latent traversal: column c sets the row's latent to
ppf(linspace(lo, hi, walk_steps))[c]. Rows come in the KL order of the last
checkpoint (the same in every frame, so the GIF never reshuffles), each
labelled with its latent and that epoch's KL.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.settings import Picture
from pipeline.views.base import FRAME, View, labelled_rows, normal_ppf, row_labels, shown


@dataclass(frozen=True)
class WalkSettings:
    picture: Picture
    walk_steps: int
    walk_range: tuple[float, float]
    walk_anchor: str  # prior | posterior:K
    order: tuple[int, ...]  # the latents shown, one row each, top to bottom
    active_kl: float
    latent_dim: int
    samples: dict | None  # stamp of the samples whose encodings give the labels' KL and posterior anchors


def walk_codes(latent_dim: int, *, steps: int = 10, lo: float = 0.05, hi: float = 0.95,
               order=None, anchor=None, scale=None) -> np.ndarray:
    """Return the latent walk's codes, (len(order) * steps, latent_dim) float32.

    Row block r walks dimension order[r] (default: every dimension in index
    order) over ppf(linspace(lo, hi, steps)), every other dimension held at
    `anchor` (default 0: the prior mean, as in Kingma & Welling's figures).
    With `scale` (latent_dim,), dimension d walks anchor[d] + scale[d] * ppf:
    its own posterior's quantiles.
    """
    if latent_dim < 1 or steps < 1:
        raise ValueError(f"latent_dim and steps must be >= 1; received latent_dim={latent_dim}, steps={steps}.")
    if not 0 < lo < hi < 1:
        raise ValueError(f"walk range must satisfy 0 < lo < hi < 1; received lo={lo}, hi={hi}.")
    order = list(range(latent_dim)) if order is None else list(order)
    values = normal_ppf(np.linspace(lo, hi, steps))
    anchor = np.zeros(latent_dim) if anchor is None else np.asarray(anchor, np.float64)
    codes = np.tile(anchor, (len(order), steps, 1))
    for r, d in enumerate(order):
        codes[r, :, d] = values if scale is None else anchor[d] + scale[d] * values
    return codes.reshape(len(order) * steps, latent_dim).astype(np.float32)


PAGE_ROWS = 32  # rows of a walk the report shows at a time: a 128-latent walk of 64 px images is 8,450 pixels tall


def page_bands(rows: int, *, row_height: int, pad: int, per_page: int = PAGE_ROWS) -> list[tuple[int, int, str]]:
    """Return (top, height, label) of each page of `per_page` rows of a grid of `rows` rows: pixels, each band
    holding its rows and the pad above and below them (see grid.tile), and `rows 1-32` (1-based)."""
    return [(first * row_height, min(per_page, rows - first) * row_height + pad,
             f"rows {first + 1}-{min(rows, first + per_page)}") for first in range(0, rows, per_page)]


class Walk(View):
    name, title, kind, Settings = "walk", "Latent walk", FRAME, WalkSettings
    about = "one row per latent over standard-normal quantiles, the others held at the anchor"

    def settings(self, options, facts):
        o = options.latents
        return WalkSettings(picture=facts.picture, walk_steps=o.walk_steps, walk_range=tuple(o.walk_range),
                            walk_anchor=o.walk_anchor, order=tuple(facts.ranked[:o.max_latents or None]),
                            active_kl=o.active_kl, latent_dim=facts.latent_dim, samples=facts.samples)

    def codes(self, s, inputs):
        lo, hi = s.walk_range
        walk = dict(steps=s.walk_steps, lo=lo, hi=hi, order=s.order)
        if s.walk_anchor == "prior" or inputs.z_mean is None:
            return walk_codes(s.latent_dim, **walk)
        z_mean, z_log_var = inputs.z_mean, inputs.z_log_var
        return np.concatenate([walk_codes(
            s.latent_dim, **walk, anchor=z_mean[k],
            scale=np.ones(s.latent_dim) if z_log_var is None else np.exp(0.5 * z_log_var[k]))
            for k in range(min(int(s.walk_anchor.split(":")[1]), len(z_mean)))])

    def draw(self, s, decoded, inputs):
        blocks = len(decoded) // (s.walk_steps * len(s.order))  # one per anchor
        labels, grays = row_labels(list(s.order) * blocks, inputs.kl, s.active_kl)
        return labelled_rows(shown(decoded, s.picture), s.walk_steps, labels, s.picture, grays)

    def pages(self, s, *, image_height, frame_height):
        """Pages of PAGE_ROWS rows, in the walk's order (by KL: active rows first), for a walk of one block of
        more rows than that; a walk in blocks (posterior anchors, conditions) is shown whole."""
        pad, rows = s.picture.pad, len(s.order)
        row_height = image_height * s.picture.scale + pad
        if rows <= PAGE_ROWS or frame_height != pad + rows * row_height:
            return None
        return page_bands(rows, row_height=row_height, pad=pad)


VIEW = Walk()
