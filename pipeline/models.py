"""A run's encoder and decoder, rebuilt from run.json in Keras safe mode, loaded a checkpoint at a time.

Keras (and so TensorFlow) is imported only when a `Models` is built: in a
worker, never in a render that has nothing to draw.
"""

from __future__ import annotations

import warnings

import numpy as np

from pipeline import run
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
    """A run's encoder and decoder, rebuilt once, loaded with one checkpoint at a time.

    It reads the models as run.json says the user wrote them: what the
    encoder gives (z_mean alone, with a log-variance, a log-std or a std, or
    both concatenated), whether the decoder gives probabilities, logits or a
    Gaussian's mean and log-variance, flattened images, and conditions.
    """

    def __init__(self, info: dict, *, safe_mode: bool = True):
        self.encoder = _rebuild(info, "encoder", safe_mode)
        self.decoder = _rebuild(info, "decoder", safe_mode)
        self.latent_dim = int(info["latent_dim"])
        self.input_shape, self.image_shape = list(info["input_shape"]), run.image_shape(info)
        self.form, self.scale = run.encoder_form(info), info.get("encoder_scale", "logvar")
        self.condition_width = info.get("condition_width")
        self.stated_output = info.get("decoder_output")
        self.decides_output = run.decides_output(info)
        self._check_declared_shapes()
        conditions = None if self.condition_width is None else np.zeros((1, self.condition_width), np.float32)
        try:  # builds a subclassed model; shows a run.json whose shapes do not fit its models
            self.encode(np.zeros((1, *self.input_shape), np.float32), conditions, compiled=False)
            self.decode_raw(np.zeros((1, self.latent_dim), np.float32), conditions, compiled=False)
        except Exception as err:  # Keras raises many kinds for a shape that does not fit
            raise RunError(f"run.json is inconsistent: its models cannot be called on input_shape "
                           f"{self.input_shape} and latent_dim {self.latent_dim} ({type(err).__name__}: {err}); "
                           f"the run directory is damaged.") from err

    @property
    def has_log_var(self) -> bool:
        return self.form != "mean"

    def _check_declared_shapes(self) -> None:
        for role, model, wanted in (("decoder input", self.decoder, [self.latent_dim]),
                                    ("encoder input", self.encoder, self.input_shape)):
            try:
                found = [int(d) for d in model.inputs[0].shape[1:]]
            except (AttributeError, ValueError, TypeError):
                continue  # subclassed: no declared inputs; calling it checks it
            if found != wanted:
                raise RunError(f"run.json is inconsistent: the {role} shape is {found}, but "
                               f"latent_dim / input_shape say {wanted}; the run directory is damaged.")

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

    def _call(self, model, x: np.ndarray, conditions, *, compiled: bool = True) -> list[np.ndarray]:
        """Return the model's outputs on one batch as numpy arrays.

        compiled: through `predict_on_batch`, Keras' compiled forward pass (a tf.function on TensorFlow, jitted
        on JAX; traced once per input shape, reading the weights as loaded at each call): on the demo model
        it encodes in a fifth and decodes in half the time of an eager call, with the same bits. Otherwise an
        eager call, which traces nothing (the one-off check that run.json's shapes fit).
        """
        args = x if self.condition_width is None else [x, np.asarray(conditions, np.float32)]
        with warnings.catch_warnings():
            # a model saved with `inputs=[x]` warns on every call with `x`; harmless
            warnings.filterwarnings("ignore", message=".*structure of `inputs`", category=UserWarning)
            out = model.predict_on_batch(args) if compiled else model(args, training=False)
        import keras

        return [keras.ops.convert_to_numpy(o) for o in (out if isinstance(out, (list, tuple)) else [out])]

    def encode(self, images: np.ndarray, conditions=None, *, compiled: bool = True):
        """Return (z_mean, z_log_var or None) of `images` (as fed), float32 numpy, one batched call."""
        out = self._call(self.encoder, np.asarray(images, np.float32), conditions, compiled=compiled)
        if self.form == "concat":
            z_mean, second = np.split(out[0], 2, axis=-1)
        else:
            z_mean, second = out[0], (out[1] if self.form != "mean" and len(out) > 1 else None)
        return z_mean, None if second is None else log_variance(second, self.scale)

    def decode_raw(self, codes: np.ndarray, conditions=None, *, compiled: bool = True) -> np.ndarray:
        """Return the decoder's own output of `codes` (N, latent_dim), one batched call."""
        return self._call(self.decoder, np.asarray(codes, np.float32), conditions, compiled=compiled)[0]

    def decode(self, codes: np.ndarray, conditions=None, *, output: str | None = None) -> np.ndarray:
        """Return the images (N, H, W, C) the decoder draws for `codes`.

        output : how to read the decoder (default: as run.json states, else
        probabilities): `probabilities` as they are, `logits` through a
        sigmoid, `gaussian` the mean (the first half of the channels).
        """
        return self.as_images(self.decode_raw(codes, conditions), output or self.stated_output or "probabilities")

    def as_images(self, raw: np.ndarray, output: str = "probabilities") -> np.ndarray:
        """Return the decoder's raw output read as `output`, shaped as the run's images."""
        raw = np.asarray(raw)
        if output == "gaussian":
            raw = raw[..., :raw.shape[-1] // 2]
        elif output == "logits":
            raw = 1.0 / (1.0 + np.exp(-raw.astype(np.float64)))
        return raw.reshape(len(raw), *self.image_shape)

    def decoder_likelihood(self, images: np.ndarray, z_mean: np.ndarray, conditions=None) -> dict:
        """Return the fixed samples' mean Bernoulli log-likelihood per pixel (nats) under their reconstructions
        read as logits and as values (probabilities), each clipped to [BERNOULLI_EPS, 1 - BERNOULLI_EPS]."""
        raw = self.decode_raw(z_mean, conditions)
        target = np.asarray(images, np.float64).reshape(len(images), *self.image_shape)
        found = {}
        for output in ("logits", "probabilities"):
            p = np.clip(self.as_images(raw, output).astype(np.float64), BERNOULLI_EPS, 1.0 - BERNOULLI_EPS)
            found[output] = float(np.mean(target * np.log(p) + (1.0 - target) * np.log1p(-p)))
        return found


# A reading's probabilities are clipped this far from 0 and 1 before the log, so that a value clipped to exactly
# 0 or 1 costs log(1e-3) = -6.9 nats where it is wrong rather than minus infinity: decoded values that overshoot
# [0, 1] are not ruled out by a few pixels, and sigmoid(logits) is not favoured for never reaching 0 or 1.
BERNOULLI_EPS = 1e-3


def log_variance(second: np.ndarray, scale: str) -> np.ndarray:
    """Return the log-variance the encoder's second output means: it is a log-variance, a log-std or a std."""
    second = np.asarray(second, np.float64)
    if scale == "logstd":
        return 2.0 * second
    if scale == "std":
        return 2.0 * np.log(np.maximum(second, 1e-12))
    return second


def _rebuild(info: dict, role: str, safe_mode: bool):
    """Return the run's encoder or decoder rebuilt from run.json, or raise RunError naming what it needs."""
    import copy

    import keras

    try:
        model = keras.saving.deserialize_keras_object(copy.deepcopy(info[role]), safe_mode=safe_mode)
    except (ValueError, TypeError, AttributeError, KeyError) as err:
        named = ", ".join(f"`{name}` ({cls})" for name, cls in unusual_layers(info)) or "none found"
        raise RunError(f"The run's architecture cannot be rebuilt safely: {err}\nLayers that need "
                       f"trust or code: {named}. If you trust this run directory, pass --unsafe "
                       f"(Lambda layers) or --import MODULE (a module that registers the custom "
                       f"layers or models).") from err
    if not isinstance(model, keras.Model):
        raise RunError(f"run.json's `{role}` is not a Keras model (it rebuilt as a "
                       f"{type(model).__name__}); the run directory is damaged.")
    return model
