"""The latent-walk codes (pure) and the one-call-per-walk contract."""

import numpy as np

from pipeline import views
from pipeline.frames import draw_checkpoint, encode
from pipeline.settings import Decoding, Facts, Picture, RenderSettings
from pipeline.views.base import normal_ppf
from pipeline.views.walk import walk_codes

# Standard-normal quantiles of linspace(0.05, 0.95, 10), written out.
PPF_10 = [-1.6448536269514722, -1.0364333894937898, -0.6744897501960817, -0.38532046640756773,
          -0.12566134685507402, 0.12566134685507402, 0.38532046640756773, 0.6744897501960817,
          1.0364333894937898, 1.6448536269514722]


def test_normal_ppf_matches_known_quantiles():
    np.testing.assert_allclose(normal_ppf(np.linspace(0.05, 0.95, 10)), PPF_10, rtol=0, atol=1e-12)
    assert normal_ppf([0.5])[0] == 0.0


def test_walk_codes_are_the_quantiles_on_the_diagonal_and_zero_elsewhere():
    d, steps = 4, 10
    codes = walk_codes(d, steps=steps, lo=0.05, hi=0.95)
    assert codes.shape == (d * steps, d)
    blocks = codes.reshape(d, steps, d)
    for dim in range(d):
        np.testing.assert_array_equal(blocks[dim, :, dim], np.float32(PPF_10))
        others = np.delete(blocks[dim], dim, axis=1)
        assert not others.any()


class CountingModels:
    """Stands in for models.Models: counts encode and decode calls, decodes every code to gray 0.5."""

    latent_dim, image_shape = 3, (4, 4, 1)

    def __init__(self):
        self.encode_calls, self.decode_calls = [], []

    def encode(self, images, conditions=None):
        self.encode_calls.append(len(images))
        return np.zeros((len(images), self.latent_dim), np.float32), np.zeros((len(images), self.latent_dim), np.float32)

    def decode(self, codes, conditions=None, *, output=None):
        self.decode_calls.append(len(codes))
        return np.full((len(codes), 4, 4, 1), 0.5, np.float32)


PICTURE = Picture(value_range=(0.0, 1.0), pad_value=255)
FACTS = Facts(picture=PICTURE, latent_dim=3, ranked=(0, 1, 2), kl=None, samples={"name": "samples.h5"}, seed=0,
              epochs=(1,), last_epoch=1)
LABEL = 64  # the walk's row-label band


def work(*names):
    return [(views.get(n), views.get(n).settings(RenderSettings(), FACTS)) for n in names]


def test_a_walk_is_decoded_in_one_call_and_has_one_row_per_latent():
    models = CountingModels()
    drawn, _ = draw_checkpoint(models, encode(models, None), work("walk"))
    assert models.decode_calls == [3 * 10]
    assert drawn["walk"].shape == (3 * (4 + 2) + 2, LABEL + 10 * (4 + 2) + 2, 1)


def test_recon_uses_one_encode_and_one_decode_and_the_inputs_layout():
    models = CountingModels()
    drawn, _ = draw_checkpoint(models, encode(models, {"images": np.zeros((7, 4, 4, 1))}), work("recon"))
    assert models.encode_calls == [7] and models.decode_calls == [7]
    assert drawn["recon"].shape == (3 * 6 + 2, 3 * 6 + 2, 1)  # 7 tiles -> 3 x 3


def test_every_view_of_a_checkpoint_is_decoded_in_one_call():
    models = CountingModels()
    names = ("recon", "walk", "manifold", "samples", "interp", "traversal")
    drawn, nonfinite = draw_checkpoint(models, encode(models, {"images": np.zeros((8, 4, 4, 1))}), work(*names))
    assert len(models.encode_calls) == 1 and len(models.decode_calls) == 1
    assert set(drawn) == set(names) and nonfinite == 0


def test_a_conditional_run_draws_prior_views_once_per_condition_in_one_call():
    models = CountingModels()
    samples = {"images": np.zeros((4, 4, 4, 1)), "conditions": np.eye(2)[[0, 1, 0, 1]]}
    decoding = Decoding(conditions=((1.0, 0.0), (0.0, 1.0)), condition_labels=("c = 0", "c = 1"))
    drawn, _ = draw_checkpoint(models, encode(models, samples), work("recon", "walk"), decoding)
    assert models.decode_calls == [4 + 2 * 3 * 10]  # each sample once, the walk once per condition
    one_block = 3 * (4 + 2) + 2
    assert drawn["walk"].shape[0] == 2 * (16 + one_block)  # two labelled blocks
