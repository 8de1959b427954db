"""The reference convolutional VAE for images: `ImageVAE`.

Its `encoder` (image -> [z_mean, z_log_var]) and `decoder` (z -> image in
[0, 1]) are plain functional Keras models of built-in layers, so a run
directory rebuilds them from JSON alone. Sampling happens in `train_step`, so
no custom layer ever has to be importable when rendering.
"""

from __future__ import annotations

import keras
from keras import layers, ops


def _check_size(image_size: int, channels: int, latent_dim: int) -> None:
    if image_size % 8 or not 16 <= image_size <= 256:
        raise ValueError(f"image_size must be a multiple of 8 from 16 to 256. Received: image_size={image_size}.")
    if not 1 <= channels <= 16:
        raise ValueError(f"channels must be from 1 to 16. Received: channels={channels}.")
    if latent_dim < 1:
        raise ValueError(f"latent_dim must be at least 1. Received: latent_dim={latent_dim}.")


def build_encoder(image_size: int, channels: int, latent_dim: int, filters: int = 16) -> keras.Model:
    """Return a functional encoder: (size, size, channels) -> [z_mean, z_log_var]."""
    inputs = keras.Input((image_size, image_size, channels), name="image")
    x = inputs
    for i, f in enumerate((filters, filters * 2, filters * 2)):
        x = layers.Conv2D(f, 4, strides=2, padding="same", activation="relu", name=f"conv{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(max(64, 4 * latent_dim), activation="relu", name="hidden")(x)
    z_mean = layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(x)
    return keras.Model(inputs, [z_mean, z_log_var], name="encoder")


def build_decoder(image_size: int, channels: int, latent_dim: int, filters: int = 16) -> keras.Model:
    """Return a functional decoder: (latent_dim,) -> (size, size, channels) in [0, 1]."""
    side = image_size // 8
    z = keras.Input((latent_dim,), name="z")
    x = layers.Dense(max(64, 4 * latent_dim), activation="relu", name="hidden")(z)
    x = layers.Dense(side * side * filters * 2, activation="relu", name="project")(x)
    x = layers.Reshape((side, side, filters * 2), name="reshape")(x)
    for i, f in enumerate((filters * 2, filters, filters)):
        x = layers.Conv2DTranspose(f, 4, strides=2, padding="same", activation="relu", name=f"deconv{i}")(x)
    outputs = layers.Conv2D(channels, 3, padding="same", activation="sigmoid", name="image")(x)
    return keras.Model(z, outputs, name="decoder")


@keras.saving.register_keras_serializable(package="vaeviz")
class ImageVAE(keras.Model):
    """A convolutional VAE trained on images in [0, 1].

    loss = recon (binary cross-entropy summed over pixels) + beta * kl, both
    averaged over the batch; `loss`, `recon` and `kl` are logged each epoch.
    """

    def __init__(self, *, image_size=64, channels=1, latent_dim=10, filters=16, beta=1.0, **kwargs):
        super().__init__(**kwargs)
        _check_size(image_size, channels, latent_dim)
        self.image_size, self.channels, self.latent_dim = image_size, channels, latent_dim
        self.filters, self.beta = filters, float(beta)
        self.encoder = build_encoder(image_size, channels, latent_dim, filters)
        self.decoder = build_decoder(image_size, channels, latent_dim, filters)
        self.seed_generator = keras.random.SeedGenerator(0)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in ("loss", "recon", "kl")}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, x, training=False):
        z_mean, _ = self.encoder(x, training=training)
        return self.decoder(z_mean, training=training)

    def _terms(self, x, training):
        z_mean, z_log_var = self.encoder(x, training=training)
        eps = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
        z = z_mean + ops.exp(0.5 * z_log_var) * eps
        x_hat = self.decoder(z, training=training)
        recon = ops.mean(ops.sum(_bce(x, x_hat), axis=(1, 2, 3)))
        kl = ops.mean(ops.sum(-0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var)), axis=1))
        return recon, kl

    def train_step(self, data):
        import tensorflow as tf

        x = data[0] if isinstance(data, tuple) else data
        with tf.GradientTape() as tape:
            recon, kl = self._terms(x, training=True)
            loss = recon + self.beta * kl
        grads = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        return self._update(loss, recon, kl)

    def test_step(self, data):
        x = data[0] if isinstance(data, tuple) else data
        recon, kl = self._terms(x, training=False)
        return self._update(recon + self.beta * kl, recon, kl)

    def _update(self, loss, recon, kl):
        for name, value in (("loss", loss), ("recon", recon), ("kl", kl)):
            self.trackers[name].update_state(value)
        return {name: t.result() for name, t in self.trackers.items()}

    def get_config(self):
        return {**super().get_config(), "image_size": self.image_size, "channels": self.channels,
                "latent_dim": self.latent_dim, "filters": self.filters, "beta": self.beta}


def _bce(x, x_hat):
    """Return the element-wise binary cross-entropy of targets `x` and predictions `x_hat`."""
    x_hat = ops.clip(x_hat, 1e-7, 1 - 1e-7)
    return -(x * ops.log(x_hat) + (1 - x) * ops.log(1 - x_hat))
