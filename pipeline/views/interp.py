"""interp: rows of linear interpolation in z_mean space between sample pairs (0, 1), (2, 3), ...

Each row starts and ends with the pair's two inputs, so the ends show what
the model makes of them. In a conditional run a row keeps its first sample's condition.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline import grid
from pipeline.settings import Picture
from pipeline.views.base import FRAME, View, shown, tiled


@dataclass(frozen=True)
class InterpSettings:
    picture: Picture
    interp_pairs: int
    interp_steps: int
    samples: dict


def interp_codes(z_a: np.ndarray, z_b: np.ndarray, *, steps: int = 8) -> np.ndarray:
    """Return, per pair (a, b), `steps` codes from z_a to z_b inclusive: (pairs * steps, d)."""
    t = np.linspace(0.0, 1.0, steps)[None, :, None]
    z_a, z_b = np.asarray(z_a, np.float64)[:, None], np.asarray(z_b, np.float64)[:, None]
    codes = (1 - t) * z_a + t * z_b
    return codes.reshape(-1, codes.shape[-1]).astype(np.float32)


class Interp(View):
    name, title, kind, needs_samples, Settings = "interp", "Interpolations", FRAME, True, InterpSettings
    about = "linear paths in z_mean between pairs of samples, the inputs at both ends"

    def settings(self, options, facts):
        return InterpSettings(picture=facts.picture, interp_pairs=options.latents.interp_pairs,
                              interp_steps=options.latents.interp_steps, samples=facts.samples)

    def codes(self, s, inputs):
        pairs = min(s.interp_pairs, len(inputs.z_mean) // 2)
        z, c = inputs.z_mean, inputs.conditions
        codes = interp_codes(z[0:2 * pairs:2], z[1:2 * pairs:2], steps=s.interp_steps)
        return codes if c is None else (codes, np.repeat(c[0:2 * pairs:2], s.interp_steps, axis=0))  # each pair's first

    def draw(self, s, decoded, inputs):
        n = s.interp_steps
        pairs, images = len(decoded) // n, inputs.images
        middle = shown(decoded, s.picture)
        rows = np.concatenate(grid.match_channels([
            shown(images[0:2 * pairs:2], s.picture)[:, None], middle.reshape(pairs, n, *middle.shape[1:]),
            shown(images[1:2 * pairs:2], s.picture)[:, None]]), axis=1)
        return tiled(rows.reshape(-1, *rows.shape[2:]), n + 2, s.picture)


VIEW = Interp()
