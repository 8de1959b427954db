"""CheckpointForViz (pipeline/callback.py): what a fit writes into the run directory.

The acceptance tests of the issue: the exact files written, weights that load
into models rebuilt from run.json alone in a fresh process, no optimizer state,
a keras.io-style VAE with a custom sampling layer, resume, schedules, and
argument checks.
"""

import hashlib
import json
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import imageio.v3 as iio
import keras
import numpy as np
import pytest

from pipeline import run
from pipeline.callback import CheckpointForViz

REPO = Path(__file__).resolve().parents[1]

# Rebuilds a run's models from run.json alone, as the renderer must: no training
# code, no custom layers, safe mode. Saves, per checkpoint, the encoder outputs
# on the fixed samples and the decoder's output on z_mean.
FRESH_PROCESS_SCRIPT = r"""
import json
import sys
import threading
import time

import keras
import numpy as np

from pipeline import run

run_dir, out = sys.argv[1], sys.argv[2]
info = run.read_run(run_dir)
samples = run.read_samples(f"{run_dir}/{run.SAMPLES_H5}")["images"]
encoder = keras.saving.deserialize_keras_object(info["encoder"], safe_mode=True)
decoder = keras.saving.deserialize_keras_object(info["decoder"], safe_mode=True)
arrays = {}
for checkpoint in run.list_checkpoints(run_dir):
    weights = run.read_weights(checkpoint.path)
    encoder.set_weights(weights["encoder"])  # raises on a count or shape mismatch
    decoder.set_weights(weights["decoder"])
    outputs = encoder(samples, training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    for name, value in zip(info["encoder_outputs"], outputs):
        arrays[f"{checkpoint.epoch}/{name}"] = np.asarray(value)
    arrays[f"{checkpoint.epoch}/decoded"] = np.asarray(decoder(outputs[0], training=False))
modules = sorted(m for m in sys.modules if m.startswith(("pipeline", "test", "zoo")))
assert "pipeline.model" not in sys.modules and "pipeline.callback" not in sys.modules, modules
np.savez(out, modules=np.array(modules, dtype=str), **arrays)
"""


def _rebuild_in_fresh_process(run_dir, out):
    """Return the arrays FRESH_PROCESS_SCRIPT computed from `run_dir` in a new Python."""
    result = subprocess.run([sys.executable, "-c", FRESH_PROCESS_SCRIPT, str(run_dir), str(out)],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    with np.load(out) as f:
        return dict(f)


def _files(run_dir):
    return {p.relative_to(run_dir).as_posix() for p in Path(run_dir).rglob("*")}


def _epochs(run_dir):
    return [c.epoch for c in run.list_checkpoints(run_dir)]


def _sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def vae(make_tiny_vae):
    """Return one ImageVAE(latent_dim=3) shared by this module's tests whose weights do not matter.

    Reusing it skips building and tracing a new model per test (seconds each).
    """
    return make_tiny_vae()


def _fit(model, x, run_dir, *, epochs, initial_epoch=0, callback=None, **kwargs):
    if callback is None:
        callback = CheckpointForViz(run_dir, x, **kwargs)
    model.fit(x, epochs=epochs, initial_epoch=initial_epoch, batch_size=64, verbose=0, callbacks=[callback])
    return callback


# --- 1. the files of a run -------------------------------------------------


def test_fit_writes_exactly_the_run_files(tiny_run):
    assert _files(tiny_run.run_dir) == {
        "run.json", "samples.h5", "history.csv", "weights",
        "weights/epoch_0001.weights.h5", "weights/epoch_0002.weights.h5", "weights/epoch_0003.weights.h5"}
    info = json.loads((tiny_run.run_dir / "run.json").read_text())
    assert info["finished"] is True
    assert info["format"] == run.FORMAT
    assert info["input_shape"] == [16, 16, 1]
    assert info["latent_dim"] == 3
    assert info["value_range"] == [0.0, 1.0]
    assert info["encoder_outputs"] == ["z_mean", "z_log_var"]


def test_fit_writes_history_rows_per_epoch(tiny_run):
    rows = run.read_history(tiny_run.run_dir / run.HISTORY_CSV)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert all({"loss", "recon", "kl"} <= set(r) for r in rows)


def test_fit_writes_the_chosen_samples(tiny_run):
    samples = run.read_samples(tiny_run.run_dir / run.SAMPLES_H5)
    indices = run.choose_indices(len(tiny_run.x), 9, seed=0)
    np.testing.assert_array_equal(samples["indices"], indices)
    np.testing.assert_array_equal(samples["images"], tiny_run.x[indices])
    assert samples["names"] is None


# --- 2. weights load in a fresh process from run.json alone ----------------


def test_weights_load_into_models_rebuilt_in_a_fresh_process(tiny_run, tmp_path):
    got = _rebuild_in_fresh_process(tiny_run.run_dir, tmp_path / "out.npz")
    assert "pipeline.model" not in got["modules"]
    assert "pipeline.callback" not in got["modules"]
    assert {k.split("/")[0] for k in got if k != "modules"} == {"1", "2", "3"}

    samples = run.read_samples(tiny_run.run_dir / run.SAMPLES_H5)["images"]
    z_mean, z_log_var = (np.asarray(t) for t in tiny_run.model.encoder(samples, training=False))
    decoded = np.asarray(tiny_run.model.decoder(z_mean, training=False))
    np.testing.assert_allclose(got["3/z_mean"], z_mean, atol=1e-5)
    np.testing.assert_allclose(got["3/z_log_var"], z_log_var, atol=1e-5)
    np.testing.assert_allclose(got["3/decoded"], decoded, atol=1e-5)
    assert got["1/decoded"].shape == decoded.shape
    # each epoch's file holds that epoch's weights, not one copy of the last
    assert not np.allclose(got["1/z_mean"], got["3/z_mean"], atol=1e-5)


# --- 3. no optimizer state -------------------------------------------------


def test_weights_file_holds_only_encoder_and_decoder_weights(tiny_run):
    model = tiny_run.model
    expected = [tuple(v.shape) for v in model.encoder.weights] + [tuple(v.shape) for v in model.decoder.weights]
    path = tiny_run.run_dir / "weights" / "epoch_0003.weights.h5"
    datasets = {}
    with h5py.File(path, "r") as f:
        assert set(f.keys()) == {"encoder", "decoder"}
        f.visititems(lambda name, obj: datasets.__setitem__(name, obj.shape)
                     if isinstance(obj, h5py.Dataset) else None)
    assert len(datasets) == len(model.encoder.weights) + len(model.decoder.weights)
    assert len(datasets) < len(model.optimizer.variables)  # Adam keeps 2 slots per weight
    assert all(re.fullmatch(r"(encoder|decoder)/\d{4}", name) for name in datasets), sorted(datasets)
    ordered = [datasets[f"encoder/{i:04d}"] for i in range(len(model.encoder.weights))]
    ordered += [datasets[f"decoder/{i:04d}"] for i in range(len(model.decoder.weights))]
    assert ordered == expected


# --- 4. a keras.io-style VAE with a custom sampling layer ------------------


def test_keras_io_vae_with_custom_sampling_renders_without_its_code(shapes16, tmp_path):
    import zoo_models  # the keras.io example, with its unregistered Sampling layer

    run_dir = tmp_path / "run"
    x = shapes16[:64]
    keras.utils.set_random_seed(0)
    model = zoo_models.KerasIoVAE(*zoo_models.keras_io_models())
    model.compile(optimizer=keras.optimizers.Adam())
    model.fit(x, epochs=2, batch_size=32, verbose=0, callbacks=[CheckpointForViz(run_dir, data=x, n_samples=4)])

    info = run.read_run(run_dir)
    assert "Sampling" not in json.dumps(info["encoder"])
    assert info["encoder_outputs"] == ["z_mean", "z_log_var"]
    assert _epochs(run_dir) == [1, 2]

    got = _rebuild_in_fresh_process(run_dir, tmp_path / "out.npz")
    assert not any(m.startswith(("test_callback", "zoo_models")) for m in got["modules"])
    samples = run.read_samples(run_dir / run.SAMPLES_H5)["images"]
    z_mean, z_log_var, _ = (np.asarray(t) for t in model.encoder(samples, training=False))
    np.testing.assert_allclose(got["2/z_mean"], z_mean, atol=1e-5)
    np.testing.assert_allclose(got["2/z_log_var"], z_log_var, atol=1e-5)
    np.testing.assert_allclose(got["2/decoded"], np.asarray(model.decoder(z_mean, training=False)), atol=1e-5)


# --- 5. resume ---------------------------------------------------------------


def test_resume_continues_epoch_numbering(vae, shapes16, tmp_path):
    run_dir, x = tmp_path / "run", shapes16[:64]
    _fit(vae, x, run_dir, epochs=3, n_samples=9)
    samples_hash = _sha256(run_dir / run.SAMPLES_H5)
    assert _epochs(run_dir) == [1, 2, 3]

    callback = _fit(vae, x, run_dir, epochs=5, initial_epoch=3, n_samples=9)
    assert _epochs(run_dir) == [1, 2, 3, 4, 5]

    _fit(vae, x, run_dir, epochs=1, callback=callback)  # the same callback, no initial_epoch
    assert _epochs(run_dir) == [1, 2, 3, 4, 5, 6]

    _fit(vae, x, run_dir, epochs=1, n_samples=9)  # a new callback, no initial_epoch
    assert _epochs(run_dir) == [1, 2, 3, 4, 5, 6, 7]

    assert [r["epoch"] for r in run.read_history(run_dir / run.HISTORY_CSV)] == [1, 2, 3, 4, 5, 6, 7]
    assert _sha256(run_dir / run.SAMPLES_H5) == samples_hash
    assert run.read_run(run_dir)["finished"] is True


# --- 6. a different architecture is refused --------------------------------


def test_different_architecture_in_same_run_dir_is_refused(tiny_run, make_tiny_vae, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run.run_dir, run_dir)
    before = {name: _sha256(run_dir / name) for name in _files(run_dir) if name != "weights"}
    other = make_tiny_vae(latent_dim=4)
    with pytest.raises(ValueError, match="different architecture"):
        _fit(other, tiny_run.x[:64], run_dir, epochs=1, n_samples=9)
    assert {name: _sha256(run_dir / name) for name in _files(run_dir) if name != "weights"} == before


# --- 7. argument validation --------------------------------------------------


def test_n_samples_larger_than_data_names_both_numbers(tmp_path):
    with pytest.raises(ValueError) as info:
        CheckpointForViz(tmp_path / "run", np.zeros((5, 16, 16, 1), np.float32), n_samples=7)
    assert re.search(r"\b5\b", str(info.value)) and re.search(r"\b7\b", str(info.value)), str(info.value)


@pytest.mark.parametrize("every", [0, -1, "weekly", 2.5, True, None])
def test_bad_every_raises(tmp_path, every):
    with pytest.raises(ValueError, match="every"):
        CheckpointForViz(tmp_path / "run", every=every)


@pytest.mark.parametrize("n_samples", [0, -3, 2.0])
def test_bad_n_samples_raises(tmp_path, n_samples):
    with pytest.raises(ValueError, match="n_samples"):
        CheckpointForViz(tmp_path / "run", np.zeros((5, 16, 16, 1), np.float32), n_samples=n_samples)


@pytest.mark.parametrize("data", [42, {"images": np.zeros((5, 16, 16, 1))}, "not/a/folder"],
                         ids=["int", "dict", "missing folder"])
def test_unsupported_data_type_raises(tmp_path, data):
    with pytest.raises(ValueError, match="data"):
        CheckpointForViz(tmp_path / "run", data)


def test_data_path_that_is_not_a_folder_raises(tmp_path):
    (tmp_path / "images.npy").write_bytes(b"")
    with pytest.raises(ValueError, match="images.npy"):
        CheckpointForViz(tmp_path / "run", tmp_path / "images.npy")


def test_run_dir_that_is_a_file_raises(tmp_path):
    (tmp_path / "run").write_text("")
    with pytest.raises(ValueError, match="run_dir"):
        CheckpointForViz(tmp_path / "run")


# --- 8. schedules ----------------------------------------------------------


def test_every_log_saves_log_spaced_epochs(vae, shapes16, tmp_path):
    run_dir = tmp_path / "run"
    _fit(vae, shapes16[:32], run_dir, epochs=10, every="log", n_samples=4)
    assert _epochs(run_dir) == [1, 2, 3, 4, 5, 6, 8, 10]
    assert [r["epoch"] for r in run.read_history(run_dir / run.HISTORY_CSV)] == list(range(1, 11))


def test_every_n_saves_multiples_and_the_last_epoch(vae, shapes16, tmp_path):
    run_dir = tmp_path / "run"
    _fit(vae, shapes16[:32], run_dir, epochs=7, every=3, n_samples=4)
    assert _epochs(run_dir) == [3, 6, 7]


# --- 9. no data --------------------------------------------------------------


def test_no_data_writes_weights_without_samples(vae, shapes16, tmp_path):
    run_dir = tmp_path / "run"
    vae.fit(shapes16[:32], epochs=2, batch_size=32, verbose=0, callbacks=[CheckpointForViz(run_dir)])
    assert _files(run_dir) == {"run.json", "history.csv", "weights",
                               "weights/epoch_0001.weights.h5", "weights/epoch_0002.weights.h5"}
    info = run.read_run(run_dir)
    assert info["finished"] is True
    assert info["samples"] is None


# --- 10. data as an h5py dataset or an image folder ------------------------


def test_h5py_dataset_data_writes_samples(vae, shapes16, tmp_path):
    x = shapes16[:40]
    with h5py.File(tmp_path / "train.h5", "w") as f:
        f["images"] = x
    run_dir = tmp_path / "run"
    with h5py.File(tmp_path / "train.h5", "r") as f:
        _fit(vae, x, run_dir, epochs=1, callback=CheckpointForViz(run_dir, f["images"], n_samples=5, seed=3))
    samples = run.read_samples(run_dir / run.SAMPLES_H5)
    indices = run.choose_indices(40, 5, seed=3)
    np.testing.assert_array_equal(samples["indices"], indices)
    np.testing.assert_array_equal(samples["images"], x[indices])
    assert samples["names"] is None
    assert "train.h5" in samples["source"]
    assert run.read_run(run_dir)["samples"]["n_total"] == 40


def test_image_folder_data_writes_samples_with_file_names(vae, shapes16, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    pixels = np.round(shapes16[:12, ..., 0] * 255).astype(np.uint8)
    names = [f"img_{i:02d}.png" for i in range(12)]
    for name, image in zip(names, pixels):
        iio.imwrite(folder / name, image)
    run_dir = tmp_path / "run"
    _fit(vae, pixels[..., None] / np.float32(255), run_dir, epochs=1,
         callback=CheckpointForViz(run_dir, folder, n_samples=4, seed=1))
    samples = run.read_samples(run_dir / run.SAMPLES_H5)
    indices = run.choose_indices(12, 4, seed=1)
    np.testing.assert_array_equal(samples["indices"], indices)
    assert samples["names"] == [names[i] for i in indices]
    assert samples["images"].shape == (4, 16, 16, 1)
    np.testing.assert_allclose(samples["images"], pixels[indices, ..., None] / 255, atol=1e-6)


# --- 11. the background writer -----------------------------------------------


def _writer_threads():
    return [t for t in threading.enumerate() if t.name == "vaeviz-writer"]


class _WeightsAtEpochEnd(keras.callbacks.Callback):
    """Record a copy of the encoder's weights at each epoch end."""

    def __init__(self):
        super().__init__()
        self.encoder = {}

    def on_epoch_end(self, epoch, logs=None):
        self.encoder[epoch + 1] = [np.array(v.numpy()) for v in self.model.encoder.weights]


@pytest.mark.parametrize("background", [True, False])
def test_fit_returns_with_every_scheduled_file_written(vae, shapes16, tmp_path, monkeypatch, background):
    real, writers = run.write_weights, []

    def slow_write_weights(*args, **kwargs):
        time.sleep(0.3)  # longer than an epoch here: without a flush the last files would be missing
        writers.append(threading.current_thread().name)
        real(*args, **kwargs)

    monkeypatch.setattr(run, "write_weights", slow_write_weights)
    run_dir, recorder = tmp_path / "run", _WeightsAtEpochEnd()
    vae.fit(shapes16[:64], epochs=4, batch_size=64, verbose=0,
            callbacks=[CheckpointForViz(run_dir, shapes16[:64], n_samples=4, background=background), recorder])

    assert _epochs(run_dir) == [1, 2, 3, 4]
    assert [r["epoch"] for r in run.read_history(run_dir / run.HISTORY_CSV)] == [1, 2, 3, 4]
    assert run.read_run(run_dir)["finished"] is True
    assert writers == ["vaeviz-writer" if background else threading.current_thread().name] * 4
    assert not _writer_threads()
    for epoch, expected in recorder.encoder.items():  # each file holds its epoch's weights, not later ones
        got = run.read_weights(run_dir / "weights" / run.checkpoint_name(epoch))["encoder"]
        for a, b in zip(got, expected):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("background", [True, False])
@pytest.mark.parametrize("epochs", [1, 3])
def test_with_on_error_raise_a_write_error_is_raised_from_fit(vae, shapes16, tmp_path, monkeypatch, background,
                                                               epochs):
    def failing_write_weights(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(run, "write_weights", failing_write_weights)
    run_dir = tmp_path / "run"
    callback = CheckpointForViz(run_dir, shapes16[:64], n_samples=4, background=background, on_error="raise")
    with pytest.raises(OSError, match="No space left"):
        vae.fit(shapes16[:64], epochs=epochs, batch_size=64, verbose=0, callbacks=[callback])
    assert run.read_run(run_dir)["finished"] is False
    assert _epochs(run_dir) == []
    deadline = time.monotonic() + 5
    while _writer_threads() and time.monotonic() < deadline:  # a failed fit leaves no thread behind
        time.sleep(0.01)
    assert not _writer_threads()

    monkeypatch.undo()  # the disk has room again: the same callback trains on, numbering from the run
    vae.fit(shapes16[:64], epochs=1, batch_size=64, verbose=0, callbacks=[callback])
    assert run.read_run(run_dir)["finished"] is True
    assert _epochs(run_dir) == [2]  # epoch 1 is in history.csv; its weights were lost
