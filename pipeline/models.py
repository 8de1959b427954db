"""A run's encoder and decoder, rebuilt from run.json in Keras safe mode, loaded a checkpoint at a time.

Keras (and so TensorFlow) is imported only when a `Models` is built: in a
worker, never in a render that has nothing to draw.
"""

from __future__ import annotations

import warnings

import numpy as np

from pipeline.run import CheckpointError, RunError, read_weights

__all__ = ["Models", "unusual_layers"]


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
