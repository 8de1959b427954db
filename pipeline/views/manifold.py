"""manifold: Kingma & Welling's Figure 4, a grid of decodes over two latents, the others at 0."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline import grid
from pipeline.settings import Picture
from pipeline.views.base import FRAME, LABEL_WIDTH, View, labelled_rows, normal_ppf, shown


@dataclass(frozen=True)
class ManifoldSettings:
    picture: Picture
    walk_steps: int
    walk_range: tuple[float, float]
    manifold_dims: tuple[int, int]  # (columns, rows)
    latent_dim: int


def manifold_codes(latent_dim: int, dims=(0, 1), *, steps: int = 10, lo: float = 0.05,
                   hi: float = 0.95) -> np.ndarray:
    """Return the 2-D manifold's codes, (steps * steps, latent_dim) float32, row-major.

    Linearly spaced coordinates of the unit square through the inverse Gaussian
    CDF. Column c sets dims[0] to ppf(u_c) (left to right increasing), row r
    sets dims[1] to ppf(u_{steps-1-r}) (top row highest, as a plot's y axis);
    every other dimension is 0.
    """
    i, j = dims
    if not (0 <= i < latent_dim and 0 <= j < latent_dim and i != j):
        raise ValueError(f"manifold dims must be two different dimensions below {latent_dim}; received {dims}.")
    values = normal_ppf(np.linspace(lo, hi, steps))
    codes = np.zeros((steps, steps, latent_dim), np.float32)
    codes[:, :, i] = values[None, :]
    codes[:, :, j] = values[::-1, None]
    return codes.reshape(steps * steps, latent_dim)


class Manifold(View):
    name, title, kind, Settings = "manifold", "2-D manifold", FRAME, ManifoldSettings
    about = "decodes over the inverse Gaussian CDF of a unit square, for two latents"

    def settings(self, options, facts):
        d, dims = facts.latent_dim, options.latents.manifold_dims
        if d < 2:
            raise ValueError(f"the manifold view needs latent_dim >= 2; this run has {d}.")
        chosen = tuple(dims) if dims else tuple(facts.ranked[:2])
        if not all(0 <= k < d for k in chosen) or len(set(chosen)) != 2:
            raise ValueError(f"--manifold-dims must be two different dimensions below {d}; received {dims}.")
        lo_hi = tuple(options.latents.walk_range)
        return ManifoldSettings(picture=facts.picture, walk_steps=options.latents.walk_steps, walk_range=lo_hi,
                                manifold_dims=chosen, latent_dim=d)

    def codes(self, s, inputs):
        lo, hi = s.walk_range
        return manifold_codes(s.latent_dim, s.manifold_dims, steps=s.walk_steps, lo=lo, hi=hi)

    def draw(self, s, decoded, inputs):
        (i, j), steps = s.manifold_dims, s.walk_steps
        tiles = shown(decoded, s.picture)
        values = normal_ppf(np.linspace(*s.walk_range, steps))
        rows = labelled_rows(tiles, steps, [f"z{j} {v:+.1f}" for v in values[::-1]], s.picture)
        centers = grid.tile_centers(steps, tiles.shape[2], s.picture.pad)
        return grid.label_columns(rows, [f"{v:+.1f}" for v in values], [LABEL_WIDTH + c for c in centers],
                                  title=f"z{i}")


VIEW = Manifold()
