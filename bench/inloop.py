"""`InLoopViz`: the classic in-loop visualising callback, the baseline vaeviz replaces.

It does in `on_epoch_end` what the public "VAEcallback" that vaeviz grew from
did every epoch: reconstruct the fixed samples with `model.predict`, decode
the latent walk one code per `predict` call (latent_dim x steps calls), and
write both grids as PNGs. (It built its GIFs once at the end; that part is
left out here, so this baseline is, if anything, cheaper than the original.)
"""

from __future__ import annotations

from pathlib import Path
from statistics import NormalDist

import keras
import numpy as np
from PIL import Image

from pipeline import grid


class InLoopViz(keras.callbacks.Callback):
    """Render recon and walk grids of `model` (with `.decoder`) inside the training loop.

    Args:
        out_dir: folder for `inputs.png`, `recon_NNNN.png`, `walk_NNNN.png`.
        samples: (N, H, W, C) fixed images in [0, 1].
        latent_dim: size of the decoder's input.
        steps: walk points per latent, at ppf(linspace(0.05, 0.95, steps)).
    """

    def __init__(self, out_dir, samples, *, latent_dim: int, steps: int = 10):
        super().__init__()
        self.out_dir = Path(out_dir)
        self.samples = np.asarray(samples, np.float32)
        values = [NormalDist().inv_cdf(p) for p in np.linspace(0.05, 0.95, steps)]
        self.codes = np.zeros((latent_dim, steps, latent_dim), np.float32)
        for d in range(latent_dim):
            self.codes[d, :, d] = values
        self.steps = steps

    def on_train_begin(self, logs=None):
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._save(self.samples, grid.square_cols(len(self.samples)), "inputs.png")

    def on_epoch_end(self, epoch, logs=None):
        recon = self.model.predict(self.samples, verbose=0)
        walk = np.concatenate([self.model.decoder.predict(code[None], verbose=0)
                               for code in self.codes.reshape(-1, self.codes.shape[-1])])
        self._save(recon, grid.square_cols(len(recon)), f"recon_{epoch + 1:04d}.png")
        self._save(walk, self.steps, f"walk_{epoch + 1:04d}.png")

    def _save(self, images, cols, name):
        tiles = grid.tile(grid.to_uint8(images), cols=cols, pad=2, pad_value=255)
        Image.fromarray(tiles[..., 0] if tiles.shape[-1] == 1 else tiles).save(self.out_dir / name)
