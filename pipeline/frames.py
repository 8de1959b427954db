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

__all__ = ["normal_ppf", "walk_codes", "kl_per_dim", "rank_latents", "manifold_codes", "prior_codes",
           "interp_codes", "traversal_codes", "Models"]


def normal_ppf(p) -> np.ndarray:
    """Return the standard-normal inverse CDF of each probability in `p` (float64)."""
    p = np.asarray(p, dtype=np.float64)
    if np.any((p <= 0) | (p >= 1)):
        raise ValueError(f"probabilities must lie strictly between 0 and 1; received {p.min()}..{p.max()}.")
    inv = NormalDist().inv_cdf
    return np.array([inv(float(v)) for v in p.ravel()]).reshape(p.shape)


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


def kl_per_dim(z_mean: np.ndarray, z_log_var: np.ndarray) -> np.ndarray:
    """Return each dimension's KL(N(mu, sigma^2) || N(0, 1)) in nats, averaged over samples (d,)."""
    mu, lv = np.asarray(z_mean, np.float64), np.asarray(z_log_var, np.float64)
    return np.mean(0.5 * (mu ** 2 + np.exp(lv) - 1.0 - lv), axis=0)


def rank_latents(kl, *, max_latents: int | None = None) -> list[int]:
    """Return dimensions by decreasing KL (ties by index), the first `max_latents` of them."""
    kl = np.nan_to_num(np.asarray(kl, np.float64), nan=-np.inf)  # a NaN KL ranks last
    order = sorted(range(len(kl)), key=lambda d: (-kl[d], d))
    return order[:max_latents] if max_latents else order


def manifold_codes(latent_dim: int, dims=(0, 1), *, steps: int = 10, lo: float = 0.05,
                   hi: float = 0.95) -> np.ndarray:
    """Return the 2-D manifold's codes, (steps * steps, latent_dim) float32, row-major.

    Kingma & Welling's Figure 4: linearly spaced coordinates of the unit square
    through the inverse Gaussian CDF. Column c sets dims[0] to ppf(u_c) (left
    to right increasing), row r sets dims[1] to ppf(u_{steps-1-r}) (top row
    highest, as a plot's y axis); every other dimension is 0.
    """
    i, j = dims
    if not (0 <= i < latent_dim and 0 <= j < latent_dim and i != j):
        raise ValueError(f"manifold dims must be two different dimensions below {latent_dim}; received {dims}.")
    values = normal_ppf(np.linspace(lo, hi, steps))
    codes = np.zeros((steps, steps, latent_dim), np.float32)
    codes[:, :, i] = values[None, :]
    codes[:, :, j] = values[::-1, None]
    return codes.reshape(steps * steps, latent_dim)


def prior_codes(n: int, latent_dim: int, *, seed: int = 0) -> np.ndarray:
    """Return `n` fixed draws from N(0, I), (n, latent_dim) float32, deterministic for a seed."""
    return np.random.default_rng(seed).standard_normal((n, latent_dim)).astype(np.float32)


def interp_codes(z_a: np.ndarray, z_b: np.ndarray, *, steps: int = 8) -> np.ndarray:
    """Return, per pair (a, b), `steps` codes from z_a to z_b inclusive: (pairs * steps, d)."""
    t = np.linspace(0.0, 1.0, steps)[None, :, None]
    z_a, z_b = np.asarray(z_a, np.float64)[:, None], np.asarray(z_b, np.float64)[:, None]
    codes = (1 - t) * z_a + t * z_b
    return codes.reshape(-1, codes.shape[-1]).astype(np.float32)


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


def unusual_layers(info: dict) -> list[tuple[str, str]]:
    """Return (layer name, class) of the run's layers that are Lambdas or not Keras' own."""
    found = []

    def visit(node):
        if isinstance(node, dict):
            cls, module = node.get("class_name"), node.get("module") or ""
            if isinstance(cls, str) and "config" in node and (
                    cls == "Lambda" or (module and module.split(".")[0] != "keras")):
                found.append((str(node["config"].get("name", "?")) if isinstance(node["config"], dict)
                              else "?", cls if not module else f"{module}.{cls}"))
            for v in node.values():
                visit(v)
        elif isinstance(node, list):
            for v in node:
                visit(v)

    visit([info.get("encoder"), info.get("decoder")])
    return found


class Models:
    """A run's encoder and decoder, rebuilt once, loaded with one checkpoint at a time."""

    def __init__(self, info: dict, *, safe_mode: bool = True):
        import copy

        import keras

        unusual = unusual_layers(info)  # before Keras, which edits the config it is given
        try:
            self.encoder = keras.saving.deserialize_keras_object(copy.deepcopy(info["encoder"]), safe_mode=safe_mode)
            self.decoder = keras.saving.deserialize_keras_object(copy.deepcopy(info["decoder"]), safe_mode=safe_mode)
        except (ValueError, TypeError, AttributeError, KeyError) as err:
            named = ", ".join(f"`{name}` ({cls})" for name, cls in unusual) or "none found"
            raise RunError(f"The run's architecture cannot be rebuilt safely: {err}\nLayers that need "
                           f"trust or code: {named}. If you trust this run directory, pass --unsafe "
                           f"(Lambda layers) or --import MODULE (a module that registers the custom "
                           f"layers).") from err
        for role, model in (("encoder", self.encoder), ("decoder", self.decoder)):
            if not isinstance(model, keras.Model):
                raise RunError(f"run.json's `{role}` is not a Keras model (it rebuilt as a "
                               f"{type(model).__name__}); the run directory is damaged.")
        self.has_log_var = len(info.get("encoder_outputs", ["z_mean"])) > 1
        self.latent_dim = int(info["latent_dim"])
        found = {"decoder input": int(self.decoder.input_shape[-1]),
                 "encoder input": list(self.encoder.input_shape[1:])}
        wanted = {"decoder input": self.latent_dim, "encoder input": list(info["input_shape"])}
        for key in found:
            if found[key] != wanted[key]:
                raise RunError(f"run.json is inconsistent: the {key} shape is {found[key]}, but "
                               f"latent_dim / input_shape say {wanted[key]}; the run directory is damaged.")

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
