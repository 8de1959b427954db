"""Toy views, registered when imported: one of each kind that no built-in view has yet.

Defined outside `pipeline/` on purpose: adding a view must need no edit
there. A worker process unpickles these views by this module's name, which
imports it and so registers them there too.
"""

from dataclasses import dataclass

import numpy as np

from pipeline import grid, views
from pipeline.settings import Picture
from pipeline.views.base import ANALYSIS, FRAME, RUN_PICTURE, View, shown, tiled


@dataclass(frozen=True)
class ToySettings:
    picture: Picture
    latent_dim: int
    reach: float  # how far along z0 the toy frame decodes


class Toy(View):
    """FRAME: decodes z0 at -reach, 0, +reach, the other latents 0: three tiles in a row."""

    name, title, kind, Settings = "toy", "Toy frame", FRAME, ToySettings

    def settings(self, options, facts):
        return ToySettings(picture=facts.picture, latent_dim=facts.latent_dim, reach=2.0)

    def codes(self, s, inputs):
        codes = np.zeros((3, s.latent_dim), np.float32)
        codes[:, 0] = [-s.reach, 0.0, s.reach]
        return codes

    def draw(self, s, decoded, inputs):
        return tiled(shown(decoded, s.picture), 3, s.picture)


@dataclass(frozen=True)
class SpreadSettings:
    samples: dict


class Spread(View):
    """ANALYSIS: a bar per latent, as tall as the spread of z_mean over the samples (encodings only)."""

    name, title, kind, needs_samples, Settings = "spread", "Toy analysis", ANALYSIS, True, SpreadSettings

    def settings(self, options, facts):
        return SpreadSettings(samples=facts.samples)

    def analyze(self, s, inputs):
        heights = np.clip(inputs.z_mean.std(axis=0) * 100, 1, 20).astype(int)
        bars = np.zeros((20, 32 * len(heights), 1), np.uint8)  # wide enough for the GIF's epoch caption
        for d, h in enumerate(heights):
            bars[20 - h:, 32 * d:32 * d + 30] = 255
        return bars


@dataclass(frozen=True)
class KLMapSettings:
    scale: float  # gray levels per nat


class KLMap(View):
    """RUN_PICTURE: one gray pixel per (latent, epoch), brighter with more KL."""

    name, title, kind, Settings = "klmap", "Toy KL map", RUN_PICTURE, KLMapSettings

    def settings(self, options, facts):
        return KLMapSettings(scale=1000.0)

    def summarize(self, s, stats):
        kl = np.array([stats[e]["kl"] for e in sorted(stats)]).T  # (latents, epochs)
        return grid.to_uint8(kl * s.scale, value_range=(0, 255))[..., None]


TOY_VIEWS = [views.register(v) for v in (Toy(), Spread(), KLMap())]
