"""What the user's encoder and decoder are, decided before the first epoch: inputs, outputs, scale, architecture.

`inspect_models` calls both once on a few samples (or zeros), works out what
they give, and returns what run.json records of them and the models whose
weights each checkpoint saves. Anything vaeviz cannot render is refused here,
in `on_train_begin`, with a ModelError naming what it saw and the fix, never
after hours of training. Works on every Keras 3 backend.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["ENCODER_OUTPUTS", "ENCODER_SCALES", "DECODER_OUTPUTS", "ModelError", "Spec", "inspect_models"]

ENCODER_OUTPUTS = ("mean", "mean_logvar", "mean_logvar_z", "concat")
ENCODER_SCALES = ("logvar", "logstd", "std")
DECODER_OUTPUTS = ("probabilities", "logits", "gaussian")
_SEE_THROUGH = ("Reshape", "Flatten", "InputLayer", "Permute")  # layers between the output layer and the output


class ModelError(ValueError):
    """An encoder or decoder vaeviz cannot render; the message names what it received and the fix."""


@dataclass
class Spec:
    """What run.json records of the models, and the models whose weights each checkpoint saves."""

    encoder: object
    decoder: object
    info: dict
    notes: list[str] = field(default_factory=list)  # assumptions to tell the user once


def _shape(x) -> tuple:
    return tuple(int(d) if d is not None else None for d in x.shape)


def _outputs(model, args) -> list[np.ndarray]:
    import keras

    out = model(args[0] if len(args) == 1 else list(args), training=False)
    out = list(out) if isinstance(out, (list, tuple)) else [out]
    return [keras.ops.convert_to_numpy(o) for o in out]


def _input_shapes(model) -> list[tuple] | None:
    """Return the shapes (without batch) of a functional or Sequential model's inputs; None if it has none."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return None
    return [_shape(t)[1:] for t in inputs] if inputs else None


def image_shape_of(input_shape: tuple, image_shape) -> tuple:
    """Return the (H, W, C) an image input of `input_shape` shows as, or raise ModelError saying why not."""
    import keras

    shape = tuple(input_shape)
    if image_shape is not None:
        image_shape = tuple(int(d) for d in image_shape)
        if len(image_shape) != 3 or math.prod(image_shape) != math.prod(d or 0 for d in shape):
            raise ModelError(f"image_shape must be (height, width, channels) with as many values as the encoder's "
                             f"input {shape}. Received: image_shape={image_shape}.")
        return image_shape
    if len(shape) == 1:
        side = math.isqrt(shape[0] or 0)
        hint = f" (for {shape[0]} = {side}x{side} gray pixels: image_shape=({side}, {side}, 1))" \
            if side * side == shape[0] else ""
        raise ModelError(f"The encoder takes flat inputs of shape {shape}: 1-D signals and tabular data are not "
                         f"images. If they are flattened images, pass CheckpointForViz(..., image_shape=(H, W, C))"
                         f"{hint} so vaeviz can show them.")
    if len(shape) != 3 or None in shape:
        raise ModelError(f"The encoder's input has shape {shape}; vaeviz renders images (height, width, channels) "
                         f"or flattened images (pass image_shape). Sequences, volumes and videos are not supported.")
    if keras.config.image_data_format() == "channels_first" or (shape[0] <= 4 < shape[-1] and shape[1] > 4):
        raise ModelError(f"The encoder's input {shape} looks channels-first (channels, height, width); vaeviz "
                         f"takes channels-last images (height, width, channels). Build the model channels-last "
                         f"(keras.config.set_image_data_format('channels_last')) and feed (N, H, W, C) arrays.")
    if shape[-1] > 16:
        raise ModelError(f"The encoder's input {shape} has {shape[-1]} channels; vaeviz shows images of 1 to 16 "
                         f"channels (height, width, channels).")
    return shape


def _encoder_inputs(encoder, probe: np.ndarray | None, conditions: np.ndarray | None) -> tuple:
    """Return (image input shape, condition width or None) from the encoder's inputs or the probe."""
    shapes = _input_shapes(encoder)
    if shapes is None:  # subclassed: what it is fed tells
        if probe is None:
            raise ModelError(f"The encoder is a subclassed {type(encoder).__name__} with no declared inputs: pass "
                             f"data (or image_shape) to CheckpointForViz so vaeviz can call it on a few images.")
        return probe.shape[1:], None if conditions is None else conditions.shape[1]
    if len(shapes) > 2 or (len(shapes) == 2 and conditions is None):
        raise ModelError(f"The encoder takes {len(shapes)} inputs {shapes}; vaeviz renders VAEs with one image "
                         f"input, or an image and a condition (a conditional VAE: pass conditions=c, one row per "
                         f"image of data). More than one image input is not supported.")
    if conditions is not None and len(shapes) != 2:
        raise ModelError(f"conditions were given, but the encoder takes one input {shapes[0]}: a conditional VAE's "
                         f"encoder takes [x, c] and its decoder [z, c]. Drop conditions, or build them so.")
    if conditions is not None and shapes[1] != conditions.shape[1:]:
        raise ModelError(f"The encoder's condition input has shape {shapes[1]}, the conditions given "
                         f"{conditions.shape[1:]} per image. Pass conditions shaped (N, {shapes[1][0]}) "
                         f"(e.g. keras.utils.to_categorical(y, {shapes[1][0]})).")
    return shapes[0], None if conditions is None else int(shapes[1][0])


def _encoder_form(widths: list, latent: int | None, stated: str | None) -> tuple[str, str | None]:
    """Return (the encoder's output form, a note when it was assumed) from its output widths."""
    n, w = len(widths), widths[0]
    if stated is not None:
        fits = {"mean": latent in (None, w), "concat": n == 1 and w % 2 == 0 and latent in (None, w // 2),
                "mean_logvar": n >= 2 and widths[1] == w and latent in (None, w),
                "mean_logvar_z": n == 3 and len(set(widths)) == 1 and latent in (None, w)}
        if not fits[stated]:
            raise ModelError(f"encoder_outputs={stated!r}, but the encoder gives {n} output(s) of widths {widths}"
                             + (f" and the decoder takes codes of width {latent}" if latent else "") + ".")
        return stated, None
    if n == 1 and latent is not None and widths[0] == 2 * latent:
        return "concat", (f"the encoder gives one output of width {widths[0]}, twice the decoder's input "
                          f"({latent}): vaeviz takes it as z_mean then z_log_var concatenated (the TensorFlow "
                          f"CVAE tutorial's Dense(2 * latent)); pass encoder_outputs=... to say otherwise")
    if n == 1 and (latent is None or widths[0] == latent):
        return "mean", None
    if n in (2, 3) and len(set(widths)) == 1 and latent in (None, widths[0]):
        return ("mean_logvar", "mean_logvar_z")[n - 2], None
    raise ModelError(f"The encoder gives {n} output(s) of widths {widths}"
                     + (f" and the decoder takes codes of width {latent}" if latent else "")
                     + ": vaeviz reads z_mean, [z_mean, z_log_var], [z_mean, z_log_var, z], or one tensor of "
                     "z_mean and z_log_var concatenated. Pass encoder_outputs='mean' | 'mean_logvar' | "
                     "'mean_logvar_z' | 'concat' if it is one of these.")


def _decoder_output(out_shape: tuple, image: tuple, input_shape: tuple, stated: str | None) -> tuple[str | None, str | None]:
    """Return (decoder_output or None when unstated, a note when it was assumed) from the decoded shape."""
    c, as_fed = image[-1], tuple(input_shape)
    gaussian = out_shape[:-1] == as_fed[:-1] and out_shape[-1] == 2 * as_fed[-1]
    if out_shape != as_fed and not gaussian:
        raise ModelError(f"The decoder gives images of shape {out_shape}, the encoder takes {as_fed}: vaeviz "
                         f"needs a decoder that gives the image (or, decoder_output='gaussian', a mean and a "
                         f"log-variance per channel: {as_fed[:-1] + (2 * as_fed[-1],)}).")
    if stated == "gaussian" and not gaussian:
        raise ModelError(f"decoder_output='gaussian' needs 2 x {c} channels (mean, then log-variance); the decoder "
                         f"gives {out_shape}.")
    if gaussian and stated is None:
        return "gaussian", (f"the decoder gives {out_shape[-1]} channels for {c}-channel images: vaeviz draws the "
                            f"first {c} as the mean of a Gaussian decoder; pass decoder_output=... to say otherwise")
    if gaussian and stated != "gaussian":
        raise ModelError(f"decoder_output={stated!r}, but the decoder gives {out_shape[-1]} channels for "
                         f"{c}-channel images: a Gaussian decoder is decoder_output='gaussian'.")
    return stated, None


def output_activation(decoder) -> str | None:
    """Return the activation of the decoder's output layer (looking through Reshape/Flatten), None if unknown."""
    try:
        layer = decoder.outputs[0]._keras_history.operation
        layers = [layer]
        while type(layer).__name__ in _SEE_THROUGH:
            layer = layer._inbound_nodes[0].parent_nodes[0].operation
            layers.append(layer)
    except (AttributeError, IndexError, ValueError):
        return None
    activation = getattr(layer, "activation", None)
    if type(layer).__name__ == "Activation" or activation is not None:
        name = getattr(activation, "__name__", str(activation))
        return name
    return None


def _saved(model, role: str, args, keep: int | None):
    """Return (model whose weights are saved, its config for run.json, whether it is functional).

    A functional encoder with more outputs than z_mean and z_log_var is cut to
    those (`keep`), so a custom sampling layer is never needed when rendering.
    A subclassed model is saved with Keras' own serialization and checked for
    real: serialized, rebuilt in safe mode, called, and its weights compared.
    """
    import keras

    if _input_shapes(model) is not None:
        if keep is not None and len(model.outputs) > keep:
            inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs  # calls with an array still fit
            model = keras.Model(inputs, list(model.outputs[:keep]), name=model.name)
        return model, json.loads(model.to_json()), True
    return model, _round_trip(model, role, args), False


def _round_trip(model, role: str, args) -> dict:
    import keras

    cls = type(model)
    fix = (f"Decorate {cls.__name__} with @keras.saving.register_keras_serializable(), give it a get_config() "
           f"that returns every __init__ argument, and define it in a module (say my_models.py), not the "
           f"training script, so that `python -m pipeline.render RUN --import my_models` can rebuild it.")
    if cls.__module__ == "__main__":
        raise ModelError(f"The {role} is a {cls.__name__} defined in the training script (__main__), where the "
                         f"renderer cannot import it. {fix}")
    try:
        config = json.loads(json.dumps(keras.saving.serialize_keras_object(model)))
        for key in ("build_config", "compile_config"):  # built by a call when rebuilt: no half-built warning
            config.pop(key, None)
        rebuilt = keras.saving.deserialize_keras_object(json.loads(json.dumps(config)), safe_mode=True)
        _outputs(rebuilt, args)
    except Exception as err:  # Keras raises many kinds for an unregistered class or a bad get_config
        raise ModelError(f"The {role} ({cls.__module__}.{cls.__name__}) does not survive Keras serialization "
                         f"({type(err).__name__}: {err}). {fix}") from err
    theirs, ours = [tuple(w.shape) for w in model.weights], [tuple(w.shape) for w in rebuilt.weights]
    if theirs != ours:
        raise ModelError(f"The {role} ({cls.__name__}) rebuilt from its get_config() has weights {ours}, the "
                         f"trained one {theirs}: get_config() misses an argument. {fix}")
    return config


def inspect_models(encoder, decoder, *, probe: np.ndarray | None, conditions: np.ndarray | None = None,
                   encoder_outputs: str | None = None, encoder_scale: str = "logvar",
                   decoder_output: str | None = None, image_shape=None) -> Spec:
    """Return the Spec of an encoder and decoder, calling each once on `probe` (a few images as fed) or zeros.

    Raises ModelError for anything vaeviz cannot render.
    """
    input_shape, cond_width = _encoder_inputs(encoder, probe, conditions)
    if probe is not None and tuple(probe.shape[1:]) != tuple(input_shape):
        raise ModelError(f"The data gives images of shape {tuple(probe.shape[1:])}, but the encoder takes "
                         f"{tuple(input_shape)}. Pass the images as the model is fed them (a stream: batches of "
                         f"images, or (x, y) pairs).")
    image = image_shape_of(input_shape, image_shape)
    x = probe[:2] if probe is not None else np.zeros((2, *input_shape), np.float32)
    c = None if cond_width is None else (conditions[:2] if conditions is not None else np.zeros((2, cond_width)))
    enc_args = (x,) if c is None else (x, c)
    widths = [o.shape[-1] for o in _outputs(encoder, enc_args)]
    dec_shapes = _input_shapes(decoder)
    latent = dec_shapes[0][-1] if dec_shapes else None
    form, note = _encoder_form(widths, latent, encoder_outputs)
    latent = latent or (widths[0] // 2 if form == "concat" else widths[0])
    z = np.zeros((2, latent), np.float32)
    dec_args = (z,) if c is None else (z, c)
    decoded = _outputs(decoder, dec_args)
    out, out_note = _decoder_output(tuple(decoded[0].shape[1:]), image, input_shape, decoder_output)
    saved_encoder, enc_config, enc_functional = _saved(encoder, "encoder", enc_args,
                                                       2 if form in ("mean_logvar", "mean_logvar_z") else None)
    saved_decoder, dec_config, dec_functional = _saved(decoder, "decoder", dec_args, None)
    info = {"encoder": enc_config, "decoder": dec_config, "input_shape": list(input_shape),
            "latent_dim": int(latent), "encoder_outputs": ["z_mean"] if form == "mean" else ["z_mean", "z_log_var"]}
    # what a version-1 run could not say: written only where it differs from what version 1 means
    activation = output_activation(decoder) if dec_functional else "unknown"
    extra = {"encoder_form": form if form == "concat" else None,
             "encoder_scale": encoder_scale if encoder_scale != "logvar" else None, "decoder_output": out,
             "decoder_activation": activation if out is None and activation in ("linear", "unknown") else None}
    info.update({k: v for k, v in extra.items() if v is not None})
    if tuple(image) != tuple(input_shape):
        info["image_shape"] = list(image)
    if cond_width is not None:
        info["condition_width"] = cond_width
    return Spec(saved_encoder, saved_decoder, info, [n for n in (note, out_note) if n])
