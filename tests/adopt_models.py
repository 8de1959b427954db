"""VAEs trained the way tutorials train them, saved only with Keras' and TensorFlow's own callbacks, for
tests/test_adopt.py: `pipeline.adopt` must turn their files into runs that render the user's own pictures.

- keras.io's VAE (`KerasIoVAE`: subclassed, an unregistered `Sampling` layer, no get_config), with a `call` so
  that Keras can save it at all (its `train_step` never calls the model, and Keras refuses to save an unbuilt
  one): `build_keras_io` is what a user passes as `--model adopt_models:build_keras_io`.
- The same VAE as the Keras serialization guide writes a savable subclass (`GuideVAE`, registered, with
  get_config / from_config), saved whole as `.keras` archives.
- A functional VAE: one `keras.Model` from image to reconstruction, the KL added by a layer's `add_loss`;
  its encoder and decoder are nested models named `encoder` and `decoder` (layers, not attributes).
"""

import keras
import numpy as np
from keras import layers, ops

import zoo_models

LATENT, SIZE = 2, 16


class Sampling(layers.Layer):
    """keras.io's: z from (z_mean, z_log_var); unregistered, as in the example."""

    def call(self, inputs):
        z_mean, z_log_var = inputs
        return z_mean + ops.exp(0.5 * z_log_var) * keras.random.normal(ops.shape(z_mean))


def keras_io_parts(sampling=Sampling):
    inputs = keras.Input(shape=(SIZE, SIZE, 1))
    x = layers.Conv2D(8, 3, activation="relu", strides=2, padding="same")(inputs)
    x = layers.Flatten()(x)
    x = layers.Dense(16, activation="relu")(x)
    z_mean = layers.Dense(LATENT, name="z_mean")(x)
    z_log_var = layers.Dense(LATENT, name="z_log_var")(x)
    encoder = keras.Model(inputs, [z_mean, z_log_var, sampling()([z_mean, z_log_var])], name="encoder")
    latent_inputs = keras.Input(shape=(LATENT,))
    x = layers.Dense(8 * 8 * 8, activation="relu")(latent_inputs)
    x = layers.Reshape((8, 8, 8))(x)
    outputs = layers.Conv2DTranspose(1, 3, activation="sigmoid", strides=2, padding="same")(x)
    return encoder, keras.Model(latent_inputs, outputs, name="decoder")


class KerasIoVAE(zoo_models.KerasIoVAE):
    """The example's VAE (tests/zoo_models.py), with the `call` a user adds so that Keras can save it."""

    def call(self, x):
        return self.decoder(self.encoder(x)[2])


def build_keras_io():
    """The model as the training script builds it, called once so that it is built."""
    vae = KerasIoVAE(*keras_io_parts())
    vae(np.zeros((1, SIZE, SIZE, 1), "float32"))
    return vae


@keras.saving.register_keras_serializable(package="adopt_models")
class RegisteredSampling(Sampling):
    pass


@keras.saving.register_keras_serializable(package="adopt_models")
class GuideVAE(KerasIoVAE):
    """keras.io's VAE made savable as the Keras serialization guide says: registered, get_config, from_config."""

    def get_config(self):
        return {**super().get_config(), "encoder": keras.saving.serialize_keras_object(self.encoder),
                "decoder": keras.saving.serialize_keras_object(self.decoder)}

    @classmethod
    def from_config(cls, config):
        encoder = keras.saving.deserialize_keras_object(config.pop("encoder"))
        decoder = keras.saving.deserialize_keras_object(config.pop("decoder"))
        return cls(encoder, decoder, **config)


def build_guide():
    vae = GuideVAE(*keras_io_parts(RegisteredSampling))
    vae(np.zeros((1, SIZE, SIZE, 1), "float32"))
    return vae


class KLLoss(layers.Layer):
    """Adds the KL term to the model's losses and passes z_mean on."""

    def call(self, inputs):
        z_mean, z_log_var = inputs
        self.add_loss(ops.mean(ops.sum(-0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var)), axis=1)))
        return z_mean


def build_functional():
    inputs = keras.Input((SIZE, SIZE, 1))
    h = layers.Dense(32, activation="relu")(layers.Flatten()(inputs))
    encoder = keras.Model(inputs, [layers.Dense(LATENT)(h), layers.Dense(LATENT)(h)], name="encoder")
    z_in = keras.Input((LATENT,))
    out = layers.Reshape((SIZE, SIZE, 1))(layers.Dense(SIZE * SIZE, activation="sigmoid")(
        layers.Dense(32, activation="relu")(z_in)))
    decoder = keras.Model(z_in, out, name="decoder")
    x = keras.Input((SIZE, SIZE, 1))
    z_mean, z_log_var = encoder(x)
    z = Sampling()([KLLoss()([z_mean, z_log_var]), z_log_var])
    vae = keras.Model(x, decoder(z), name="functional_vae")
    vae.compile(optimizer=keras.optimizers.Adam(3e-3), loss="binary_crossentropy")
    return vae


def build_other_architecture():
    """keras.io's VAE with 3 latents: its files do not fit build_keras_io's model."""
    global LATENT
    LATENT, saved = 3, LATENT
    try:
        return build_keras_io()
    finally:
        LATENT = saved


def build_flat():
    """An MLP VAE on flattened images: its encoder takes (256,), so adopting it needs --image-shape."""
    x = keras.Input((SIZE * SIZE,))
    h = layers.Dense(16, activation="relu")(x)
    encoder = keras.Model(x, [layers.Dense(LATENT)(h), layers.Dense(LATENT)(h)], name="encoder")
    z = keras.Input((LATENT,))
    decoder = keras.Model(z, layers.Dense(SIZE * SIZE, activation="sigmoid")(z), name="decoder")
    return keras.Model(x, decoder(encoder(x)[0]), name="flat_vae")


class TfCheckpoints(keras.callbacks.Callback):
    """tf.train.CheckpointManager each epoch, as TensorFlow's checkpoint guide writes it: a `step` variable (the
    epoch, from 1), the optimizer and the model under the key `net`."""

    def __init__(self, folder):
        super().__init__()
        self.folder = folder

    def on_train_begin(self, logs=None):
        import tensorflow as tf

        self.step = tf.Variable(0, dtype=tf.int64)
        self.checkpoint = tf.train.Checkpoint(step=self.step, optimizer=self.model.optimizer, net=self.model)
        self.manager = tf.train.CheckpointManager(self.checkpoint, self.folder, max_to_keep=5)

    def on_epoch_end(self, epoch, logs=None):
        self.step.assign(epoch + 1)
        self.manager.save()
