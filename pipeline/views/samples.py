"""samples: decodes of fixed draws from the prior N(0, I), the same z at every epoch.

The smallest view, and the example to copy: a settings class (what its
pictures depend on), how those settings follow from the options and the run,
the codes it decodes, and how the decoded images become a grid.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from pipeline import grid
from pipeline.settings import Picture
from pipeline.views.base import FRAME, View, shown, tiled


@dataclass(frozen=True)
class SamplesSettings:
    picture: Picture
    n_prior: int
    latent_dim: int
    seed: int  # the run's: the codes are prior_codes(n_prior, latent_dim, seed)


def prior_codes(n: int, latent_dim: int, *, seed: int = 0) -> np.ndarray:
    """Return `n` fixed draws from N(0, I), (n, latent_dim) float32, deterministic for a seed."""
    return np.random.default_rng(seed).standard_normal((n, latent_dim)).astype(np.float32)


class Samples(View):
    name, title, kind, Settings = "samples", "Prior samples", FRAME, SamplesSettings
    about = "decodes of fixed draws from N(0, I): the same z at every epoch"

    def settings(self, options, facts):
        return SamplesSettings(picture=facts.picture, n_prior=options.latents.n_prior,
                               latent_dim=facts.latent_dim, seed=facts.seed)

    def codes(self, s, inputs):
        return prior_codes(s.n_prior, s.latent_dim, seed=s.seed)

    def draw(self, s, decoded, inputs):
        return tiled(shown(decoded, s.picture), grid.square_cols(len(decoded)), s.picture)

    def run_files(self, s):
        buf = io.BytesIO()  # the z every epoch decodes, for the user to look at
        np.save(buf, prior_codes(s.n_prior, s.latent_dim, seed=s.seed))
        return {"prior_z.npy": buf.getvalue()}


VIEW = Samples()
