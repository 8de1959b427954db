"""Training data (pipeline/data.py): the built-in shapes and loaders for user data."""

import h5py
import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from pipeline import data
from pipeline.data import DataError

# --- shapes ----------------------------------------------------------------


@pytest.fixture(scope="module")
def shapes64():
    return data.shapes(40, seed=1)


def test_shapes_images_shape_and_range(shapes64):
    images, _ = shapes64
    assert images.shape == (40, 64, 64, 1)
    assert images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert images.max() == 1.0  # a white shape on black, not a blank image
    assert images.mean() > 0.01


def test_shapes_factors(shapes64):
    _, factors = shapes64
    assert set(factors) == {"shape", "scale", "rotation", "x", "y"}
    assert all(len(v) == 40 for v in factors.values())
    assert set(np.unique(factors["shape"])) <= {0, 1, 2}
    assert factors["x"].min() >= 0.3 and factors["x"].max() <= 0.7


def test_shapes_deterministic_for_a_seed(shapes64):
    images, factors = data.shapes(40, seed=1)
    np.testing.assert_array_equal(images, shapes64[0])
    for key, value in factors.items():
        np.testing.assert_array_equal(value, shapes64[1][key])


def test_shapes_differ_for_another_seed(shapes64):
    images, factors = data.shapes(40, seed=2)
    assert not np.array_equal(images, shapes64[0])
    assert not np.array_equal(factors["x"], shapes64[1]["x"])


def test_shapes_x_factor_moves_the_centre_of_mass(shapes64):
    images, factors = shapes64
    columns = np.arange(64) + 0.5
    mass = images[..., 0].sum(axis=(1, 2))
    centre_x = (images[..., 0].sum(axis=1) * columns).sum(axis=1) / mass / 64
    assert np.corrcoef(centre_x, factors["x"])[0, 1] > 0.9
    np.testing.assert_allclose(centre_x, factors["x"], atol=0.1)


# --- image folders ---------------------------------------------------------


def test_16_bit_tiff_folder_scales_by_65535(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", np.full((8, 8), 65535, np.uint16))
    tifffile.imwrite(tmp_path / "b.tif", np.full((8, 8), 32768, np.uint16))
    loaded = data.load(tmp_path)
    images, names = loaded.images, loaded.names
    assert names == ["a.tif", "b.tif"]
    assert images.shape == (2, 8, 8, 1)
    assert images.dtype == np.float32
    np.testing.assert_allclose(images[0], 1.0)
    np.testing.assert_allclose(images[1], 32768 / 65535, rtol=1e-6)


def test_5_channel_tiff_folder(tmp_path):
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 65536, (12, 10, 5), dtype=np.uint16) for _ in range(3)]
    for i, array in enumerate(arrays):
        tifffile.imwrite(tmp_path / f"cell_{i}.tiff", array)
    images, names = data.load_folder(tmp_path)
    assert images.shape == (3, 12, 10, 5)
    assert names == ["cell_0.tiff", "cell_1.tiff", "cell_2.tiff"]
    np.testing.assert_allclose(images, np.stack(arrays) / 65535, rtol=1e-6)


def test_8_bit_png_folder_scales_by_255(tmp_path):
    iio.imwrite(tmp_path / "a.png", np.full((8, 8), 51, np.uint8))
    images = data.load(tmp_path).images
    np.testing.assert_allclose(images, 0.2, rtol=1e-6)


def test_load_resizes_to_image_size(tmp_path):
    for i in range(2):
        iio.imwrite(tmp_path / f"{i}.png", np.full((20, 30), 255, np.uint8))
    images = data.load(tmp_path, image_size=8).images
    assert images.shape == (2, 8, 8, 1)
    np.testing.assert_allclose(images, 1.0, atol=1e-6)


def test_load_conforms_channels(tmp_path):
    iio.imwrite(tmp_path / "a.png", np.full((8, 8), 255, np.uint8))
    images = data.load(tmp_path, channels=3).images
    assert images.shape == (1, 8, 8, 3)


def test_empty_folder_raises_naming_it(tmp_path):
    folder = tmp_path / "empty_images"
    folder.mkdir()
    (folder / "readme.txt").write_text("not an image")
    with pytest.raises(DataError, match="empty_images"):
        data.load(folder)


def test_mixed_shapes_raise_naming_the_file(tmp_path):
    iio.imwrite(tmp_path / "a.png", np.zeros((8, 8), np.uint8))
    iio.imwrite(tmp_path / "b_odd.png", np.zeros((9, 8), np.uint8))
    with pytest.raises(DataError, match="b_odd.png"):
        data.load(tmp_path)


def test_unreadable_file_raises_naming_it(tmp_path):
    iio.imwrite(tmp_path / "a.png", np.zeros((8, 8), np.uint8))
    (tmp_path / "x.png").write_bytes(b"\x00garbage, not a PNG\xff" * 20)
    with pytest.raises(DataError, match="x.png"):
        data.load(tmp_path)


def test_missing_path_raises(tmp_path):
    with pytest.raises(DataError, match="nowhere"):
        data.load(tmp_path / "nowhere")


# --- array files -----------------------------------------------------------


def test_load_npy(tmp_path):
    array = np.random.default_rng(0).random((4, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", array)
    loaded = data.load(tmp_path / "x.npy")
    images, names = loaded.images, loaded.names
    assert names is None
    assert images.shape == (4, 8, 8, 1)
    np.testing.assert_array_equal(images[..., 0], array)


def test_load_npz(tmp_path):
    array = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    np.savez(tmp_path / "d.npz", images=array, labels=np.arange(2))
    images = data.load(tmp_path / "d.npz").images
    assert images.shape == (2, 4, 4, 3)
    np.testing.assert_allclose(images, array / 255, rtol=1e-6)


def test_load_h5_dataset_spec(tmp_path):
    array = np.random.default_rng(0).random((5, 8, 8, 2)).astype(np.float32)
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["group/train"] = array
        f["other"] = np.zeros((1, 8, 8))
    loaded = data.load(f"{tmp_path / 'd.h5'}:group/train")
    images, names = loaded.images, loaded.names
    assert names is None
    np.testing.assert_array_equal(images, array)


def test_load_h5_without_dataset_names_the_choices(tmp_path):
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["train"] = np.zeros((1, 8, 8))
    with pytest.raises(DataError, match="train"):
        data.load(tmp_path / "d.h5")


# --- streams: what CheckpointForViz draws its samples from ------------------------------------------


class Batches:
    """A re-iterable of (x, y) batches, as a user's own loader might be."""

    def __init__(self, x, size=16):
        self.x, self.size = x, size

    def __iter__(self):
        return ((self.x[i:i + self.size], None) for i in range(0, len(self.x), self.size))


def test_a_stream_sample_is_deterministic_for_a_seed_and_kept_in_stream_order():
    x = np.arange(200, dtype=np.float32).reshape(200, 1, 1, 1)
    a, pos_a, method = data.sample_stream(Batches(x), 8, seed=3)
    b, pos_b, _ = data.sample_stream(Batches(x), 8, seed=3)
    c, _, _ = data.sample_stream(Batches(x), 8, seed=4)
    np.testing.assert_array_equal(a, b)
    assert list(pos_a) == sorted(pos_a) and not np.array_equal(a, c)
    np.testing.assert_array_equal(a[:, 0, 0, 0], pos_a)  # each image is the one at its position
    assert "reservoir" in method and "default_rng(3)" in method


def test_a_stream_sample_reads_only_the_first_batches():
    x = np.arange(1000, dtype=np.float32).reshape(1000, 1, 1, 1)
    _, positions, _ = data.sample_stream(Batches(x, size=10), 8, seed=0)
    assert positions.max() < data.STREAM_BATCHES * 10


def test_a_pydataset_is_sampled_by_index_and_the_global_random_state_is_restored():
    import random

    import keras

    class Noisy(keras.utils.PyDataset):
        def __len__(self):
            return 10

        def __getitem__(self, i):
            np.random.random(), random.random()  # as augmenting datasets do
            return np.full((4, 2, 2, 1), i, np.float32), np.zeros(4)

    np.random.seed(7)
    random.seed(7)
    before = (np.random.random(), random.random())
    np.random.seed(7)
    random.seed(7)
    images, _, _ = data.sample_stream(Noisy(), 5, seed=0)
    assert (np.random.random(), random.random()) == before
    assert images.shape == (5, 2, 2, 1)


def test_a_tf_data_dataset_is_sampled_without_being_consumed():
    import tensorflow as tf

    x = np.arange(64, dtype=np.float32).reshape(64, 1, 1, 1)
    ds = tf.data.Dataset.from_tensor_slices((x, x)).batch(8)
    images, positions, _ = data.sample_stream(ds, 6, seed=0)
    np.testing.assert_array_equal(images[:, 0, 0, 0], positions)
    assert sum(1 for _ in ds) == 8  # a later iteration sees every batch


def test_too_few_images_in_a_stream_say_how_many_there_were():
    with pytest.raises(ValueError, match=r"\(12\).*n_samples=20"):
        data.sample_stream([np.zeros((4, 2, 2, 1))] * 3, 20, seed=0)
