"""The latent-walk codes (pure) and the one-call-per-walk contract."""

import numpy as np

from pipeline.batch import view_grids
from pipeline.frames import normal_ppf, walk_codes

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
    """Stands in for frames.Models: counts decode calls, decodes a code to its mean pixel."""

    latent_dim = 3

    def __init__(self):
        self.decode_calls = []

    def encode(self, images):
        return np.zeros((len(images), self.latent_dim), np.float32), None

    def decode(self, codes):
        self.decode_calls.append(len(codes))
        return np.full((len(codes), 4, 4, 1), 0.5, np.float32)


SETTINGS = {"channels": None, "value_range": [0.0, 1.0], "normalize": "global", "scale": 1, "pad": 2, "pad_value": 255,
            "walk_steps": 10, "walk_range": [0.05, 0.95], "order": None, "anchor": "prior", "active_kl": 0.01}
LABEL = 64  # the walk's row-label band


def test_a_walk_is_decoded_in_one_call_and_has_one_row_per_latent():
    models = CountingModels()
    grids = view_grids(models, None, ["walk"], SETTINGS)
    assert models.decode_calls == [3 * 10]
    assert grids["walk"].shape == (3 * (4 + 2) + 2, LABEL + 10 * (4 + 2) + 2, 1)


def test_recon_uses_one_encode_and_one_decode_and_the_inputs_layout():
    models = CountingModels()
    grids = view_grids(models, np.zeros((7, 4, 4, 1)), ["recon"], SETTINGS)
    assert models.decode_calls == [7]
    assert grids["recon"].shape == (3 * 6 + 2, 3 * 6 + 2, 1)  # 7 tiles -> 3 x 3
