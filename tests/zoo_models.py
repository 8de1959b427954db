"""VAEs written the way public tutorials and research code write them, for tests/test_model_zoo.py.

Each `train_<row>(run_dir, x)` builds one, trains it a few epochs with
CheckpointForViz, and returns (encoder, decoder, how the renderer must read
the decoder, conditions or None) so the test can check the pictures against
the user's own model. The subclassed layers are registered here, so the
renderer rebuilds them with `--import zoo_models`.

    python tests/zoo_models.py ROW RUN_DIR X.npy    # train a row in a fresh process (other backends)
"""

import os
import sys

import numpy as np

import keras
from keras import layers, ops

from pipeline import CheckpointForViz

LATENT, SIZE, EPOCHS = 2, 16, 3


# --- keras.io "Variational AutoEncoder" (fchollet): functional, [z_mean, z_log_var, z], Sampling layer ----------


class Sampling(layers.Layer):
    """Uses (z_mean, z_log_var) to sample z; not registered, as in the example (the renderer never needs it)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(1337)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        epsilon = keras.random.normal(shape=ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon


def keras_io_models(channels=1):
    inputs = keras.Input(shape=(SIZE, SIZE, channels))
    x = layers.Conv2D(8, 3, activation="relu", strides=2, padding="same")(inputs)
    x = layers.Conv2D(16, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(16, activation="relu")(x)
    z_mean = layers.Dense(LATENT, name="z_mean")(x)
    z_log_var = layers.Dense(LATENT, name="z_log_var")(x)
    z = Sampling()([z_mean, z_log_var])
    encoder = keras.Model(inputs, [z_mean, z_log_var, z], name="encoder")
    latent_inputs = keras.Input(shape=(LATENT,))
    x = layers.Dense(4 * 4 * 16, activation="relu")(latent_inputs)
    x = layers.Reshape((4, 4, 16))(x)
    x = layers.Conv2DTranspose(16, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Conv2DTranspose(8, 3, activation="relu", strides=2, padding="same")(x)
    outputs = layers.Conv2DTranspose(channels, 3, activation="sigmoid", padding="same")(x)
    return encoder, keras.Model(latent_inputs, outputs, name="decoder")


class KerasIoVAE(keras.Model):
    """The example's VAE: a TensorFlow train_step with a GradientTape."""

    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder, self.decoder = encoder, decoder
        self.total_loss_tracker = keras.metrics.Mean(name="total_loss")

    @property
    def metrics(self):
        return [self.total_loss_tracker]

    def train_step(self, data):
        import tensorflow as tf

        data = data[0] if isinstance(data, tuple) else data
        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(data)
            reconstruction = self.decoder(z)
            reconstruction_loss = ops.mean(ops.sum(keras.losses.binary_crossentropy(data, reconstruction),
                                                   axis=(1, 2)))
            kl_loss = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
            total_loss = reconstruction_loss + ops.mean(ops.sum(kl_loss, axis=1))
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        self.total_loss_tracker.update_state(total_loss)
        return {"loss": self.total_loss_tracker.result()}


def train_keras_io(run_dir, x, data=None):
    """keras.io's VAE, trained with fit on `data` (default: the array x)."""
    keras.utils.set_random_seed(0)
    encoder, decoder = keras_io_models()
    vae = KerasIoVAE(encoder, decoder)
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    source = x if data is None else data
    vae.fit(source, epochs=EPOCHS, batch_size=32 if data is None else None, verbose=0,
            callbacks=[CheckpointForViz(run_dir, source, n_samples=8)])
    return encoder, decoder, "probabilities", None


class Shapes(keras.utils.PyDataset):
    """A PyDataset of (x, x) batches that draws from numpy's global random state, as many do."""

    def __init__(self, x, batch_size=32, **kwargs):
        super().__init__(**kwargs)
        self.x, self.batch_size = x, batch_size

    def __len__(self):
        return len(self.x) // self.batch_size

    def __getitem__(self, i):
        np.random.random()  # the global state the callback must leave as it found it
        batch = self.x[i * self.batch_size:(i + 1) * self.batch_size]
        return batch, batch


def train_pydataset(run_dir, x):
    return train_keras_io(run_dir, x, Shapes(x))


def train_tf_data(run_dir, x):
    import tensorflow as tf

    return train_keras_io(run_dir, x, tf.data.Dataset.from_tensor_slices(x).batch(32))


# --- TensorFlow's "Convolutional Variational Autoencoder" tutorial: Sequential, Dense(2 * latent), logits, -----
# --- and its hand-written training loop, here driving the callback through keras.callbacks.CallbackList --------


class CVAE(keras.Model):
    def __init__(self, latent_dim):
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = keras.Sequential([
            layers.InputLayer(shape=(SIZE, SIZE, 1)),
            layers.Conv2D(8, 3, strides=2, activation="relu"),
            layers.Conv2D(16, 3, strides=2, activation="relu"),
            layers.Flatten(),
            layers.Dense(latent_dim + latent_dim)])  # No activation
        self.decoder = keras.Sequential([
            layers.InputLayer(shape=(latent_dim,)),
            layers.Dense(4 * 4 * 16, activation="relu"),
            layers.Reshape((4, 4, 16)),
            layers.Conv2DTranspose(16, 3, strides=2, padding="same", activation="relu"),
            layers.Conv2DTranspose(8, 3, strides=2, padding="same", activation="relu"),
            layers.Conv2DTranspose(1, 3, strides=1, padding="same")])  # No activation: logits

    def encode(self, x):
        mean, logvar = ops.split(self.encoder(x), 2, axis=1)
        return mean, logvar


def train_cvae_tutorial(run_dir, x, decoder_output="logits"):
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    model = CVAE(LATENT)
    optimizer = keras.optimizers.Adam(3e-3)

    def compute_loss(batch):
        mean, logvar = model.encode(batch)
        z = mean + tf.exp(logvar * 0.5) * tf.random.normal(tf.shape(mean))
        logits = model.decoder(z)
        cross_ent = tf.nn.sigmoid_cross_entropy_with_logits(logits=logits, labels=batch)
        kl = -0.5 * tf.reduce_sum(1 + logvar - mean ** 2 - tf.exp(logvar), axis=1)
        return tf.reduce_mean(tf.reduce_sum(cross_ent, axis=[1, 2, 3]) + kl)

    @tf.function
    def train_step(batch):
        with tf.GradientTape() as tape:
            loss = compute_loss(batch)
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    callbacks = keras.callbacks.CallbackList([CheckpointForViz(
        run_dir, x, n_samples=8, encoder=model.encoder, decoder=model.decoder, decoder_output=decoder_output)],
        model=model)
    callbacks.on_train_begin()
    for epoch in range(EPOCHS):
        callbacks.on_epoch_begin(epoch)
        for batch in tf.data.Dataset.from_tensor_slices(x).shuffle(len(x), seed=epoch).batch(32):
            loss = train_step(batch)
        callbacks.on_epoch_end(epoch, {"loss": float(loss)})
    callbacks.on_train_end()
    return model.encoder, model.decoder, "logits", None


# --- Keras 3 on any backend: the loss in a compute_loss override ---------------------------------------------


class AnyBackendVAE(keras.Model):
    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder, self.decoder = encoder, decoder
        self.seed_generator = keras.random.SeedGenerator(0)

    def call(self, x, training=False):
        z_mean, z_log_var = self.encoder(x)[:2]
        z = z_mean + ops.exp(0.5 * z_log_var) * keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
        return self.decoder(z), z_mean, z_log_var

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        reconstruction, z_mean, z_log_var = y_pred
        recon = ops.mean(ops.sum(keras.losses.binary_crossentropy(x, reconstruction), axis=(1, 2)))
        kl = ops.mean(ops.sum(-0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var)), axis=1))
        return recon + kl


class SilentVAE(AnyBackendVAE):
    """Tracks no metric, so fit's logs are empty (Keras' TensorFlow trainer cannot run with none: JAX, torch)."""

    @property
    def metrics(self):
        return []


def train_any_backend(run_dir, x):
    keras.utils.set_random_seed(0)
    encoder, decoder = keras_io_models()
    vae = (AnyBackendVAE if keras.backend.backend() == "tensorflow" else SilentVAE)(encoder, decoder)
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    vae.fit(x, epochs=EPOCHS, batch_size=32, verbose=0, callbacks=[CheckpointForViz(run_dir, x, n_samples=8)])
    return encoder, decoder, "probabilities", None


# --- research code: registered subclassed models; the encoder gives a log standard deviation -----------------


@keras.saving.register_keras_serializable(package="zoo")
class ConvEncoder(keras.Model):
    def __init__(self, latent_dim=LATENT, width=16, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim, self.width = latent_dim, width
        self.conv = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")
        self.flatten = layers.Flatten()
        self.hidden = layers.Dense(width, activation="relu")
        self.mu = layers.Dense(latent_dim)
        self.log_sigma = layers.Dense(latent_dim)

    def call(self, x):
        h = self.hidden(self.flatten(self.conv(x)))
        return self.mu(h), self.log_sigma(h)

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim, "width": self.width}


@keras.saving.register_keras_serializable(package="zoo")
class ConvDecoder(keras.Model):
    def __init__(self, latent_dim=LATENT, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = latent_dim
        self.project = layers.Dense(8 * 8 * 8, activation="relu")
        self.reshape = layers.Reshape((8, 8, 8))
        self.up = layers.Conv2DTranspose(1, 3, strides=2, padding="same", activation="sigmoid")

    def call(self, z):
        return self.up(self.reshape(self.project(z)))

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim}


class SubclassedVAE(AnyBackendVAE):
    def call(self, x, training=False):
        mu, log_sigma = self.encoder(x)
        z = mu + ops.exp(log_sigma) * keras.random.normal(ops.shape(mu), seed=self.seed_generator)
        return self.decoder(z), mu, 2.0 * log_sigma


def train_subclassed(run_dir, x):
    keras.utils.set_random_seed(0)
    vae = SubclassedVAE(ConvEncoder(), ConvDecoder())
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    vae.fit(x, epochs=EPOCHS, batch_size=32, verbose=0,
            callbacks=[CheckpointForViz(run_dir, x, n_samples=8, encoder_scale="logstd")])
    return vae.encoder, vae.decoder, "probabilities", None


# --- a conditional VAE: encoder [x, c], decoder [z, c] ----------------------------------------------------------


def conditional_models(classes):
    x_in, c_in = keras.Input((SIZE, SIZE, 1)), keras.Input((classes,))
    h = layers.Concatenate()([layers.Flatten()(x_in), c_in])
    h = layers.Dense(32, activation="relu")(h)
    encoder = keras.Model([x_in, c_in], [layers.Dense(LATENT)(h), layers.Dense(LATENT)(h)], name="cencoder")
    z_in, c2_in = keras.Input((LATENT,)), keras.Input((classes,))
    h = layers.Dense(32, activation="relu")(layers.Concatenate()([z_in, c2_in]))
    out = layers.Reshape((SIZE, SIZE, 1))(layers.Dense(SIZE * SIZE, activation="sigmoid")(h))
    return encoder, keras.Model([z_in, c2_in], out, name="cdecoder")


class ConditionalVAE(AnyBackendVAE):
    def call(self, inputs, training=False):
        x, c = inputs
        z_mean, z_log_var = self.encoder([x, c])
        z = z_mean + ops.exp(0.5 * z_log_var) * keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
        return self.decoder([z, c]), z_mean, z_log_var

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        reconstruction, z_mean, z_log_var = y_pred
        recon = ops.mean(ops.sum(keras.losses.binary_crossentropy(x[0], reconstruction), axis=(1, 2)))
        kl = ops.mean(ops.sum(-0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var)), axis=1))
        return recon + kl


def train_conditional(run_dir, x, classes=3):
    keras.utils.set_random_seed(0)
    c = keras.utils.to_categorical(np.arange(len(x)) % classes, classes).astype("float32")
    encoder, decoder = conditional_models(classes)
    vae = ConditionalVAE(encoder, decoder)
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    vae.fit([x, c], epochs=EPOCHS, batch_size=32, verbose=0,
            callbacks=[CheckpointForViz(run_dir, x, n_samples=8, conditions=c)])
    return encoder, decoder, "probabilities", c


# --- the classic MLP VAE on flattened images -------------------------------------------------------------------


def train_flat_mlp(run_dir, x):
    keras.utils.set_random_seed(0)
    flat = x.reshape(len(x), -1)
    inputs = keras.Input((SIZE * SIZE,))
    h = layers.Dense(64, activation="relu")(inputs)
    encoder = keras.Model(inputs, [layers.Dense(LATENT)(h), layers.Dense(LATENT)(h)])
    z_in = keras.Input((LATENT,))
    decoder = keras.Model(z_in, layers.Dense(SIZE * SIZE, activation="sigmoid")(layers.Dense(64, activation="relu")(z_in)))
    vae = MlpVAE(encoder, decoder)
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    vae.fit(flat, epochs=EPOCHS, batch_size=32, verbose=0,
            callbacks=[CheckpointForViz(run_dir, flat, n_samples=8, image_shape=(SIZE, SIZE, 1))])
    return encoder, decoder, "probabilities", None


class MlpVAE(AnyBackendVAE):
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        reconstruction, z_mean, z_log_var = y_pred
        recon = ops.mean(ops.sum(keras.losses.binary_crossentropy(x[..., None], reconstruction[..., None]), axis=1))
        kl = ops.mean(ops.sum(-0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var)), axis=1))
        return recon + kl


# --- a Gaussian decoder (mean and log-variance per pixel), and a linear decoder trained with MSE -------------------


def linear_models(channels_out):
    encoder, _ = keras_io_models()
    encoder = keras.Model(encoder.inputs, encoder.outputs[:2])
    z_in = keras.Input((LATENT,))
    h = layers.Dense(SIZE * SIZE * channels_out)(layers.Dense(32, activation="relu")(z_in))
    return encoder, keras.Model(z_in, layers.Reshape((SIZE, SIZE, channels_out))(h))  # linear output


class GaussianVAE(AnyBackendVAE):
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        out, z_mean, z_log_var = y_pred
        mean, log_var = out[..., :1], ops.clip(out[..., 1:], -6.0, 6.0)
        nll = ops.mean(ops.sum(0.5 * (log_var + ops.square(x - mean) / ops.exp(log_var)), axis=(1, 2, 3)))
        return nll + ops.mean(ops.sum(-0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var)), axis=1))


class LogitsVAE(AnyBackendVAE):
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        logits, z_mean, z_log_var = y_pred
        bce = ops.mean(ops.sum(keras.losses.binary_crossentropy(x, logits, from_logits=True), axis=(1, 2)))
        return bce + ops.mean(ops.sum(-0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var)), axis=1))


class MseVAE(AnyBackendVAE):
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        out, z_mean, z_log_var = y_pred
        mse = ops.mean(ops.sum(ops.square(x - out), axis=(1, 2, 3)))
        return mse + 0.01 * ops.mean(ops.sum(-0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var)), axis=1))


def _train_linear(run_dir, x, cls, channels_out, expected, epochs=EPOCHS):
    keras.utils.set_random_seed(0)
    encoder, decoder = linear_models(channels_out)
    vae = cls(encoder, decoder)
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    vae.fit(x, epochs=epochs, batch_size=32, verbose=0, callbacks=[CheckpointForViz(run_dir, x, n_samples=8)])
    return encoder, decoder, expected, None


def blurred(x):
    """Return gray-level images: each image box-blurred (as in natural images, few pixels are 0 or 1)."""
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="edge")
    return np.mean([padded[:, i:i + SIZE, j:j + SIZE] for i in range(5) for j in range(5)], axis=0) * 0.8 + 0.1


def binary(x):
    """Return black-and-white images: x thresholded at 0.5 (MNIST-like data binarized, as the CVAE tutorial does)."""
    return (x > 0.5).astype(np.float32)


# A linear decoder with decoder_output not stated, on gray and on binary data: the renderer must find from the
# samples' Bernoulli likelihood that a BCE-on-logits decoder is read through a sigmoid and an MSE one as values.

def train_logits_unstated(run_dir, x):
    return _train_linear(run_dir, blurred(x), LogitsVAE, 1, "logits", epochs=2 * EPOCHS)


def train_logits_unstated_binary(run_dir, x):
    return _train_linear(run_dir, binary(x), LogitsVAE, 1, "logits", epochs=2 * EPOCHS)


def train_cvae_unstated_grey(run_dir, x):
    """TensorFlow's CVAE tutorial (its decoder outputs logits) with decoder_output left unstated, gray data."""
    return train_cvae_tutorial(run_dir, blurred(x), decoder_output=None)


def train_cvae_unstated_binary(run_dir, x):
    return train_cvae_tutorial(run_dir, binary(x), decoder_output=None)


def train_gaussian(run_dir, x):
    return _train_linear(run_dir, x, GaussianVAE, 2, "gaussian")


def train_mse_linear(run_dir, x):
    return _train_linear(run_dir, binary(x), MseVAE, 1, "probabilities")


def train_mse_linear_grey(run_dir, x):
    return _train_linear(run_dir, blurred(x), MseVAE, 1, "probabilities")


ROWS = {"keras_io": train_keras_io, "pydataset": train_pydataset, "tf_data": train_tf_data,
        "cvae_tutorial": train_cvae_tutorial, "subclassed": train_subclassed, "conditional": train_conditional,
        "flat_mlp": train_flat_mlp, "gaussian": train_gaussian, "mse_linear": train_mse_linear,
        "mse_linear_grey": train_mse_linear_grey, "logits_unstated": train_logits_unstated,
        "logits_unstated_binary": train_logits_unstated_binary, "cvae_unstated_grey": train_cvae_unstated_grey,
        "cvae_unstated_binary": train_cvae_unstated_binary,
        "any_backend": train_any_backend}


def expected_pictures(encoder, decoder, output, conditions, samples):
    """Return (recon, walk centre) as the user's own model draws them: decode(z_mean) of the samples read as
    `output`, and decode(0) (the walk's anchor), both (N, H, W, C) in [0, 1] as the renderer shows them."""
    def call(model, *args):
        out = model(args[0] if len(args) == 1 else list(args), training=False)
        return [keras.ops.convert_to_numpy(o) for o in (out if isinstance(out, (list, tuple)) else [out])]

    extra = () if conditions is None else (conditions,)
    z_mean = call(encoder, samples, *extra)[0]
    if z_mean.shape[-1] == 2 * LATENT:  # the CVAE tutorial's Dense(2 * latent)
        z_mean = z_mean[:, :LATENT]
    zero_c = () if conditions is None else (conditions[:1],)

    def read(raw):
        raw = raw[..., :raw.shape[-1] // 2] if output == "gaussian" else raw
        raw = 1 / (1 + np.exp(-raw.astype(np.float64))) if output == "logits" else raw
        return np.clip(raw.reshape(len(raw), SIZE, SIZE, 1), 0, 1)

    return read(call(decoder, z_mean, *extra)[0]), read(call(decoder, np.zeros((1, LATENT), "float32"), *zero_c)[0])


def _watch_tensorflow_imports() -> list:
    """Return a list that gets the stack of every import of tensorflow made from vaeviz's own code."""
    import builtins
    import traceback

    culprits, real = [], builtins.__import__

    def watched(name, *args, **kwargs):
        if name.split(".")[0] == "tensorflow" and "tensorflow" not in sys.modules:
            stack = traceback.format_stack()
            if any(f"{os.sep}pipeline{os.sep}" in frame for frame in stack):
                culprits.append("".join(stack))
        return real(name, *args, **kwargs)

    builtins.__import__ = watched
    return culprits


if __name__ == "__main__":  # a row in a fresh process: KERAS_BACKEND picks its backend
    by_vaeviz = _watch_tensorflow_imports()  # keras.utils.set_random_seed may import it: that is not ours
    row, run_dir, x_path = sys.argv[1:4]
    x = np.load(x_path)
    encoder, decoder, output, conditions = ROWS[row](run_dir, x)
    from pipeline import run as run_mod

    samples = run_mod.read_samples(os.path.join(run_dir, run_mod.SAMPLES_H5))
    recon, centre = expected_pictures(encoder, decoder, output, conditions, samples["images"])
    np.savez(os.path.join(run_dir, "..", f"{row}_expected.npz"), recon=recon, centre=centre,
             tensorflow_imported_by_vaeviz=np.array(by_vaeviz, dtype=str))
