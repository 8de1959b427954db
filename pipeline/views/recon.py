"""recon: the fixed samples' reconstructions, decoded from z_mean (no sampling noise, so no flicker)."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline import grid
from pipeline.settings import Picture
from pipeline.views.base import FRAME, View, shown, tiled


@dataclass(frozen=True)
class ReconSettings:
    picture: Picture
    samples: dict  # stamp of the samples encoded


class Recon(View):
    name, title, kind, needs_samples, Settings = "recon", "Reconstructions", FRAME, True, ReconSettings
    about = "the fixed samples decoded from their z_mean, laid out as the inputs"

    def settings(self, options, facts):
        return ReconSettings(picture=facts.picture, samples=facts.samples)

    def codes(self, s, inputs):
        return inputs.z_mean if inputs.conditions is None else (inputs.z_mean, inputs.conditions)

    def draw(self, s, decoded, inputs):
        return tiled(shown(decoded, s.picture), grid.square_cols(len(inputs.images)), s.picture)


VIEW = Recon()
