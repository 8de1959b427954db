"""traversal: one animation of one checkpoint: each active latent swept out and back, others at anchors.

Rows are latents, columns anchors (the prior mean, then a few samples'
encodings); frame t sets every row's latent to the t-th value of a ping-pong
sweep over the walk's quantiles, so the GIF loops without a jump.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline import grid
from pipeline.settings import Picture
from pipeline.views.base import ANIMATION, View, labelled_rows, normal_ppf, row_labels, shown


@dataclass(frozen=True)
class TraversalSettings:
    picture: Picture
    walk_steps: int
    walk_range: tuple[float, float]
    traversal_dims: tuple[int, ...]  # the latents swept, one row each
    active_kl: float
    fps: float
    traverse_epoch: int
    anchors: int  # the prior mean, then the encodings of the first anchors - 1 samples
    latent_dim: int
    samples: dict | None


def traversal_codes(anchors: np.ndarray, dims, *, steps: int = 10, lo: float = 0.05,
                    hi: float = 0.95) -> np.ndarray:
    """Return the traversal's codes, (frames, len(dims) * len(anchors), d) float32.

    Frame t sets, in row r, dimension dims[r] of every anchor to the t-th value
    of a ping-pong sweep over ppf(linspace(lo, hi, steps)): out and back, so
    the GIF loops without a jump (2 * steps - 2 frames).
    """
    anchors = np.asarray(anchors, np.float64)
    values = normal_ppf(np.linspace(lo, hi, steps))
    sweep = np.concatenate([values, values[-2:0:-1]]) if steps > 2 else values
    codes = np.tile(anchors, (len(sweep), len(dims), 1, 1))  # (frames, rows, anchors, d)
    for r, d in enumerate(dims):
        codes[:, r, :, d] = sweep[:, None]
    return codes.reshape(len(sweep), len(dims) * len(anchors), anchors.shape[-1]).astype(np.float32)


def traversal_anchors(z_mean, latent_dim: int, n: int) -> np.ndarray:
    """Return the codes the traversal holds still: the prior mean, then the first n - 1 samples' encodings."""
    anchors = np.zeros((1, latent_dim), np.float32)
    return anchors if z_mean is None else np.concatenate([anchors, z_mean[:n - 1]])


class Traversal(View):
    name, title, kind, Settings = "traversal", "Traversal", ANIMATION, TraversalSettings
    about = "each active latent swept out and back, others at a few anchors"

    def settings(self, options, facts):
        o = options.latents
        active = [d for d in facts.ranked if facts.kl is None or facts.kl[d] >= o.active_kl]
        epoch = o.traverse_epoch if o.traverse_epoch is not None else facts.last_epoch
        if epoch not in facts.epochs:
            raise ValueError(f"--traverse-epoch {epoch} has no checkpoint (the run has epochs "
                             f"{facts.epochs[0]}..{facts.epochs[-1]}).")
        return TraversalSettings(picture=facts.picture, walk_steps=o.walk_steps, walk_range=tuple(o.walk_range),
                                 traversal_dims=tuple((active or list(facts.ranked))[:o.max_latents or 10]),
                                 active_kl=o.active_kl, fps=options.animation.fps, traverse_epoch=epoch,
                                 anchors=4, latent_dim=facts.latent_dim, samples=facts.samples)

    def animation_epoch(self, s):
        return s.traverse_epoch

    def codes(self, s, inputs):
        lo, hi = s.walk_range
        anchors = traversal_anchors(inputs.z_mean, s.latent_dim, s.anchors)
        return traversal_codes(anchors, s.traversal_dims, steps=s.walk_steps, lo=lo, hi=hi).reshape(-1, s.latent_dim)

    def draw(self, s, decoded, inputs):
        n_anchors = len(traversal_anchors(inputs.z_mean, s.latent_dim, s.anchors))
        tiles = shown(decoded, s.picture)
        tiles = tiles.reshape(-1, len(s.traversal_dims) * n_anchors, *tiles.shape[1:])
        labels, grays = row_labels(s.traversal_dims, inputs.kl, s.active_kl)
        return [grid.caption(labelled_rows(frame, n_anchors, labels, s.picture, grays), f"epoch {s.traverse_epoch}")
                for frame in tiles]


VIEW = Traversal()
