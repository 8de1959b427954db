"""Models -> arrays: the codes to decode (pure) and the calls that decode them.

`walk_codes` is pure numpy. `Models` rebuilds a run's encoder and decoder
from run.json (Keras safe mode) and loads a checkpoint's weights into them;
Keras is imported only when a `Models` is built.
"""

from __future__ import annotations

import warnings
from statistics import NormalDist

import numpy as np

from pipeline.run import CheckpointError, RunError, read_weights

__all__ = ["normal_ppf", "walk_codes", "Models"]


def normal_ppf(p) -> np.ndarray:
    """Return the standard-normal inverse CDF of each probability in `p` (float64)."""
    p = np.asarray(p, dtype=np.float64)
    if np.any((p <= 0) | (p >= 1)):
        raise ValueError(f"probabilities must lie strictly between 0 and 1; received {p.min()}..{p.max()}.")
    inv = NormalDist().inv_cdf
    return np.array([inv(float(v)) for v in p.ravel()]).reshape(p.shape)


def walk_codes(latent_dim: int, *, steps: int = 10, lo: float = 0.05, hi: float = 0.95) -> np.ndarray:
    """Return the latent walk's codes, (latent_dim * steps, latent_dim) float32.

    Row block d (rows d*steps ... d*steps + steps - 1) walks dimension d over
    ppf(linspace(lo, hi, steps)) with every other dimension at 0, as in
    Kingma & Welling's figures: one row of the picture per latent.
    """
    if latent_dim < 1 or steps < 1:
        raise ValueError(f"latent_dim and steps must be >= 1; received latent_dim={latent_dim}, steps={steps}.")
    if not 0 < lo < hi < 1:
        raise ValueError(f"walk range must satisfy 0 < lo < hi < 1; received lo={lo}, hi={hi}.")
    values = normal_ppf(np.linspace(lo, hi, steps))
    codes = np.zeros((latent_dim, steps, latent_dim), np.float32)
    for d in range(latent_dim):
        codes[d, :, d] = values
    return codes.reshape(latent_dim * steps, latent_dim)


class Models:
    """A run's encoder and decoder, rebuilt once, loaded with one checkpoint at a time."""

    def __init__(self, info: dict, *, safe_mode: bool = True):
        import keras

        try:
            self.encoder = keras.saving.deserialize_keras_object(info["encoder"], safe_mode=safe_mode)
            self.decoder = keras.saving.deserialize_keras_object(info["decoder"], safe_mode=safe_mode)
        except (ValueError, TypeError) as err:
            raise RunError(f"The run's architecture cannot be rebuilt: {err} If you trust this run "
                           f"directory, pass --unsafe (Lambda layers) or --import MODULE (custom "
                           f"layers registered by MODULE).") from err
        self.has_log_var = len(info.get("encoder_outputs", ["z_mean"])) > 1
        self.latent_dim = int(info["latent_dim"])

    def load(self, checkpoint_path) -> None:
        """Load a checkpoint's weights, or raise CheckpointError if they do not fit."""
        parts = read_weights(checkpoint_path)
        for part, model in (("encoder", self.encoder), ("decoder", self.decoder)):
            arrays, expected = parts[part], model.weights
            if len(arrays) != len(expected):
                raise CheckpointError(f"{checkpoint_path.name}: holds {len(arrays)} {part} arrays, the run's "
                                      f"{part} has {len(expected)} (a checkpoint of another model?)")
            for array, var in zip(arrays, expected):
                if tuple(array.shape) != tuple(var.shape):
                    raise CheckpointError(f"{checkpoint_path.name}: {part} weight `{var.path}` has shape "
                                          f"{tuple(array.shape)}, the run's model needs {tuple(var.shape)} "
                                          f"(a checkpoint of another model?)")
            model.set_weights(arrays)

    def encode(self, images: np.ndarray):
        """Return (z_mean, z_log_var or None) of `images`, float32 numpy, one batched call."""
        with warnings.catch_warnings():
            # a model saved with `inputs=[x]` warns on every call with `x`; harmless
            warnings.filterwarnings("ignore", message=".*structure of `inputs`", category=UserWarning)
            out = self.encoder(np.asarray(images, np.float32), training=False)
        out = out if isinstance(out, (list, tuple)) else [out]
        z_mean = np.asarray(out[0])
        z_log_var = np.asarray(out[1]) if self.has_log_var and len(out) > 1 else None
        return z_mean, z_log_var

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Return the decoded images (N, H, W, C) of `codes` (N, latent_dim), one batched call."""
        return np.asarray(self.decoder(np.asarray(codes, np.float32), training=False))
