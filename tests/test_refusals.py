"""What vaeviz cannot render is refused before the first epoch, with a message that names what it received
and the fix; nothing is written then."""

import keras
import numpy as np
import pytest
from keras import layers

from pipeline.callback import CheckpointForViz

LATENT = 2


def decoder_for(shape):
    z = keras.Input((LATENT,))
    return keras.Model(z, layers.Reshape(shape)(layers.Dense(int(np.prod(shape)))(z)))


def encoder_for(shape, outputs=2, width=LATENT):
    x = keras.Input(shape)
    h = layers.Dense(8)(layers.Flatten()(x)) if len(shape) > 1 else layers.Dense(8)(x)
    return keras.Model(x, [layers.Dense(width)(h) for _ in range(outputs)])


def begin(tmp_path, data, encoder, decoder, **options):
    """Run on_train_begin as fit would; return the run directory (nothing may be written in it)."""
    callback = CheckpointForViz(tmp_path / "run", data, n_samples=2, encoder=encoder, decoder=decoder, **options)
    callback.set_model(keras.Sequential([layers.Dense(1)]))
    callback.on_train_begin()
    return tmp_path / "run"


def refused(tmp_path, data, encoder, decoder, pattern, **options):
    with pytest.raises(ValueError, match=pattern):
        begin(tmp_path, data, encoder, decoder, **options)
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").rglob("*.h5"))


def test_flattened_images_without_image_shape_are_refused_naming_image_shape(tmp_path):
    x = np.random.rand(8, 784).astype("float32")
    refused(tmp_path, x, encoder_for((784,)), decoder_for((784,)), r"image_shape=\(28, 28, 1\)")


def test_tabular_data_is_refused_saying_what_vaeviz_renders(tmp_path):
    x = np.random.rand(8, 12).astype("float32")
    refused(tmp_path, x, encoder_for((12,)), decoder_for((12,)), r"not images.*image_shape")


def test_a_1d_signal_is_refused(tmp_path):
    x = np.random.rand(8, 100, 2).astype("float32")
    refused(tmp_path, x, encoder_for((100, 2)), decoder_for((100, 2)), r"\(100, 2\).*Sequences")


def test_channels_first_images_are_refused_naming_channels_last(tmp_path):
    x = np.random.rand(8, 3, 32, 32).astype("float32")
    refused(tmp_path, x, encoder_for((3, 32, 32)), decoder_for((3, 32, 32)), r"channels-first.*channels_last")


def test_two_image_inputs_are_refused_naming_conditions(tmp_path):
    a, b = keras.Input((8, 8, 1)), keras.Input((8, 8, 1))
    h = layers.Dense(4)(layers.Flatten()(layers.Concatenate()([a, b])))
    encoder = keras.Model([a, b], [layers.Dense(LATENT)(h), layers.Dense(LATENT)(h)])
    x = np.random.rand(8, 8, 8, 1).astype("float32")
    refused(tmp_path, x, encoder, decoder_for((8, 8, 1)), r"2 inputs.*conditions=c.*one image input")


def test_an_encoder_that_fits_no_known_form_is_refused_naming_encoder_outputs(tmp_path):
    x = np.random.rand(8, 8, 8, 1).astype("float32")
    refused(tmp_path, x, encoder_for((8, 8, 1), outputs=4), decoder_for((8, 8, 1)), r"4 output.*encoder_outputs=")


def test_a_stated_encoder_form_that_does_not_fit_is_refused(tmp_path):
    x = np.random.rand(8, 8, 8, 1).astype("float32")
    refused(tmp_path, x, encoder_for((8, 8, 1), outputs=1), decoder_for((8, 8, 1)), r"encoder_outputs='concat'",
            encoder_outputs="concat")


def test_a_decoder_of_another_shape_is_refused_naming_both_shapes(tmp_path):
    x = np.random.rand(8, 8, 8, 1).astype("float32")
    refused(tmp_path, x, encoder_for((8, 8, 1)), decoder_for((4, 4, 1)), r"\(4, 4, 1\).*\(8, 8, 1\)")


class Unregistered(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.flat, self.mean, self.log_var = layers.Flatten(), layers.Dense(LATENT), layers.Dense(LATENT)

    def call(self, x):
        h = self.flat(x)
        return self.mean(h), self.log_var(h)


@keras.saving.register_keras_serializable(package="vaeviz_tests")
class ForgetfulEncoder(Unregistered):
    """Registered, but its get_config() forgets `width`."""

    def __init__(self, width=LATENT, **kwargs):
        super().__init__(**kwargs)
        self.mean, self.log_var = layers.Dense(width), layers.Dense(width)


def test_an_unregistered_subclassed_encoder_is_refused_naming_the_decorator(tmp_path):
    x = np.random.rand(8, 8, 8, 1).astype("float32")
    refused(tmp_path, x, Unregistered(), decoder_for((8, 8, 1)), r"register_keras_serializable")


def test_a_get_config_missing_an_argument_is_refused_naming_get_config(tmp_path):
    x = np.random.rand(8, 8, 8, 1).astype("float32")
    encoder = ForgetfulEncoder(width=LATENT + 1)
    z = keras.Input((LATENT + 1,))
    decoder = keras.Model(z, layers.Reshape((8, 8, 1))(layers.Dense(64)(z)))
    refused(tmp_path, x, encoder, decoder, r"get_config\(\)")


def test_a_class_defined_in_the_training_script_is_refused_naming_a_module(tmp_path, monkeypatch):
    monkeypatch.setattr(ForgetfulEncoder, "__module__", "__main__")
    x = np.random.rand(8, 8, 8, 1).astype("float32")
    refused(tmp_path, x, ForgetfulEncoder(), decoder_for((8, 8, 1)), r"__main__.*--import my_models")


def test_a_one_shot_generator_is_refused_naming_a_re_iterable(tmp_path):
    batches = (np.random.rand(4, 8, 8, 1).astype("float32") for _ in range(3))
    with pytest.raises(ValueError, match=r"one-shot iterator.*re-iterable"):
        CheckpointForViz(tmp_path / "run", batches)


def test_conditions_not_aligned_with_the_data_are_refused(tmp_path):
    x = np.random.rand(8, 8, 8, 1).astype("float32")
    with pytest.raises(ValueError, match=r"one row per image.*5 conditions"):
        CheckpointForViz(tmp_path / "run", x, conditions=np.eye(5))


@pytest.mark.parametrize("option", [{"encoder_outputs": "mu"}, {"encoder_scale": "var"},
                                    {"decoder_output": "bernoulli"}, {"on_error": "ignore"}])
def test_an_unknown_option_value_is_refused_listing_the_choices(tmp_path, option):
    with pytest.raises(ValueError, match="must be .*one of"):
        CheckpointForViz(tmp_path / "run", **option)
