"""Pure array code: exact small inputs, exact expected outputs."""

import numpy as np
import pytest

from pipeline import grid


def test_to_uint8_clips_and_scales_to_the_value_range():
    x = np.array([-1.0, 0.0, 0.5, 1.0, 2.0, np.nan, np.inf, -np.inf])
    assert grid.to_uint8(x, value_range=(0, 1)).tolist() == [0, 0, 128, 255, 255, 0, 255, 0]
    assert grid.to_uint8(np.array([-1.0, 0.0, 1.0]), value_range=(-1, 1)).tolist() == [0, 128, 255]


def test_to_uint8_keeps_16_bit_range_until_the_end():
    x = np.array([0, 257, 65535], dtype=np.uint16)
    assert grid.to_uint8(x, value_range=(0, 65535)).tolist() == [0, 1, 255]


def test_tile_places_tiles_row_major_with_padding():
    images = np.arange(3 * 2 * 2, dtype=np.uint8).reshape(3, 2, 2, 1) + 1
    out = grid.tile(images, cols=2, pad=1, pad_value=0)[..., 0]
    expected = np.array([
        [0, 0, 0, 0, 0, 0, 0],
        [0, 1, 2, 0, 5, 6, 0],
        [0, 3, 4, 0, 7, 8, 0],
        [0, 0, 0, 0, 0, 0, 0],
        [0, 9, 10, 0, 0, 0, 0],
        [0, 11, 12, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0],
    ])
    np.testing.assert_array_equal(out, expected)


def test_tile_size_is_rows_and_cols_of_tiles_plus_padding():
    out = grid.tile(np.zeros((10, 5, 7, 3), np.uint8), cols=4, pad=2)
    assert out.shape == (3 * (5 + 2) + 2, 4 * (7 + 2) + 2, 3)


def test_tile_rejects_float_input_with_a_hint():
    with pytest.raises(ValueError, match="to_uint8"):
        grid.tile(np.zeros((1, 2, 2, 1)), cols=1)


def test_square_cols():
    assert [grid.square_cols(n) for n in (1, 2, 4, 5, 9, 10, 64)] == [1, 2, 2, 3, 3, 4, 8]


def test_pick_channels_gray_stays_gray_rgb_stays_and_more_show_three():
    assert grid.pick_channels(np.zeros((1, 2, 2, 1))).shape[-1] == 1
    x = np.arange(5, dtype=float).reshape(1, 1, 1, 5) * np.ones((1, 2, 2, 1))
    assert grid.pick_channels(x)[0, 0, 0].tolist() == [0, 1, 2]
    assert grid.pick_channels(x, [0, 2, 4])[0, 0, 0].tolist() == [0, 2, 4]
    assert grid.pick_channels(x, [3, 4])[0, 0, 0].tolist() == [3, 4, 0]  # two channels: zero blue


def test_pick_channels_names_the_bad_index():
    with pytest.raises(ValueError, match=r"below 5.*\[7\]"):
        grid.pick_channels(np.zeros((1, 2, 2, 5)), [7])


def test_contrasting_pad_is_light_on_dark_data_and_dark_on_light_data():
    assert grid.contrasting_pad(np.zeros((2, 4, 4, 1), np.uint8)) == 255
    assert grid.contrasting_pad(np.full((2, 4, 4, 1), 250, np.uint8)) == 0


def test_caption_adds_a_band_and_never_covers_the_grid():
    g = np.random.default_rng(0).integers(0, 256, (20, 30, 1), dtype=np.uint8)
    out = grid.caption(g, "epoch 12", height=16)
    assert out.shape == (36, 30, 1)
    np.testing.assert_array_equal(out[16:], g)
    assert out[:16].max() > 0  # the text was drawn
