"""The run directory format (pipeline/run.py): plain numpy, h5py and json."""

import json
import os

import h5py
import numpy as np
import pytest

from pipeline import atomic, run
from pipeline.run import CheckpointError, RunError


# --- schedule --------------------------------------------------------------


def test_log_epochs_up_to_100():
    assert run.log_epochs(100) == [1, 2, 3, 4, 5, 6, 8, 10, 13, 16, 20, 25, 32, 40, 50, 63, 79, 100]


def test_log_epochs_stops_at_up_to():
    assert run.log_epochs(1) == [1]
    assert run.log_epochs(12) == [1, 2, 3, 4, 5, 6, 8, 10]
    assert run.log_epochs(0) == []


def test_is_scheduled_log_matches_log_epochs():
    expected = set(run.log_epochs(200))
    assert [e for e in range(1, 201) if run.is_scheduled(e, "log")] == sorted(expected)


@pytest.mark.parametrize("every, expected", [(1, [1, 2, 3, 4, 5, 6, 7]), (3, [3, 6]), (5, [5])])
def test_is_scheduled_every_n(every, expected):
    assert [e for e in range(1, 8) if run.is_scheduled(e, every)] == expected


# --- samples ---------------------------------------------------------------


def test_choose_indices_sorted_unique_in_range():
    indices = run.choose_indices(1000, 64, seed=0)
    assert indices.shape == (64,)
    assert indices.dtype == np.int64
    assert np.all(np.diff(indices) > 0)  # sorted and unique
    assert indices.min() >= 0 and indices.max() < 1000


def test_choose_indices_deterministic_for_a_seed():
    np.testing.assert_array_equal(run.choose_indices(1000, 64, seed=3), run.choose_indices(1000, 64, seed=3))
    assert not np.array_equal(run.choose_indices(1000, 64, seed=3), run.choose_indices(1000, 64, seed=4))


def test_choose_indices_all_images():
    np.testing.assert_array_equal(run.choose_indices(5, 5, seed=0), np.arange(5))


@pytest.mark.parametrize("n_samples", [11, 0])
def test_choose_indices_out_of_range_raises(n_samples):
    with pytest.raises(ValueError, match=f"n_samples={n_samples}"):
        run.choose_indices(10, n_samples, seed=0)


def test_samples_round_trip(tmp_path):
    images = np.arange(3 * 4 * 4 * 1, dtype=np.float32).reshape(3, 4, 4, 1) / 100
    path = tmp_path / run.SAMPLES_H5
    run.write_samples(path, indices=[2, 5, 7], images=images, names=["a.png", "b.png", "c.png"],
                      seed=7, source="folder")
    got = run.read_samples(path)
    np.testing.assert_array_equal(got["indices"], [2, 5, 7])
    np.testing.assert_array_equal(got["images"], images)
    assert got["names"] == ["a.png", "b.png", "c.png"]
    assert (got["seed"], got["source"]) == (7, "folder")


# --- checkpoints -----------------------------------------------------------


def _parts():
    return {"encoder": [np.arange(6, dtype=np.float32).reshape(2, 3), np.ones(3, np.float32)],
            "decoder": [np.full((3, 1), -2.5, np.float32)]}


def test_list_checkpoints_sorted_by_epoch_without_temp_files(tmp_path):
    folder = tmp_path / run.WEIGHTS_DIR
    folder.mkdir()
    for name in ["epoch_0010.weights.h5", "epoch_0002.weights.h5", "epoch_0001.weights.h5",
                 ".epoch_0002.weights.h5.123.tmp", ".epoch_0003.weights.h5.99.tmp",
                 "epoch_0004.weights.h5.tmp", "notes.txt", "epoch_12345.weights.h5"]:
        (folder / name).write_bytes(b"x")
    (folder / "epoch_0005.weights.h5").mkdir()  # a folder is not a checkpoint
    found = run.list_checkpoints(tmp_path)
    assert [c.epoch for c in found] == [1, 2, 10, 12345]
    assert [c.name for c in found] == ["epoch_0001.weights.h5", "epoch_0002.weights.h5",
                                       "epoch_0010.weights.h5", "epoch_12345.weights.h5"]


def test_list_checkpoints_of_a_run_without_weights_is_empty(tmp_path):
    assert run.list_checkpoints(tmp_path) == []


def test_checkpoint_name_numbers_from_one_with_four_digits():
    assert run.checkpoint_name(1) == "epoch_0001.weights.h5"
    assert run.checkpoint_name(12345) == "epoch_12345.weights.h5"


def test_write_read_weights_round_trip(tmp_path):
    path = tmp_path / run.WEIGHTS_DIR / run.checkpoint_name(3)
    run.write_weights(path, _parts(), epoch=3)
    got = run.read_weights(path)
    assert set(got) == {"encoder", "decoder"}
    for part, arrays in _parts().items():
        assert len(got[part]) == len(arrays)
        for a, b in zip(got[part], arrays):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
    with h5py.File(path, "r") as f:
        assert int(f.attrs["epoch"]) == 3
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def _assert_checkpoint_error(path):
    with pytest.raises(CheckpointError) as info:
        run.read_weights(path)
    assert path.name in str(info.value)
    return str(info.value)


def test_read_weights_zero_byte_file(tmp_path):
    path = tmp_path / "epoch_0001.weights.h5"
    path.write_bytes(b"")
    assert "empty" in _assert_checkpoint_error(path)


def test_read_weights_truncated_file(tmp_path):
    path = tmp_path / "epoch_0001.weights.h5"
    run.write_weights(path, {"encoder": [np.ones((64, 64), np.float32)], "decoder": []}, epoch=1)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _assert_checkpoint_error(path)


def test_read_weights_not_hdf5(tmp_path):
    path = tmp_path / "epoch_0001.weights.h5"
    path.write_bytes(b"this is not an HDF5 file\n" * 10)
    _assert_checkpoint_error(path)


def test_read_weights_hdf5_of_another_kind(tmp_path):
    path = tmp_path / "epoch_0001.weights.h5"
    with h5py.File(path, "w") as f:
        f["layers/dense/vars/0"] = np.ones(3)  # e.g. a Keras save_weights file
    _assert_checkpoint_error(path)


# --- run.json --------------------------------------------------------------


def _info():
    return {"encoder": {"class_name": "Functional", "config": {}}, "decoder": {"class_name": "Functional", "config": {}},
            "input_shape": [16, 16, 1], "latent_dim": 3, "value_range": [0.0, 1.0], "finished": True}


def test_write_read_run_round_trip(tmp_path):
    run.write_run(tmp_path, _info())
    got = run.read_run(tmp_path)
    assert got == {"format": run.FORMAT, "format_version": 1, **_info()}  # nothing of version 2: as 0.1.0 wrote


@pytest.mark.parametrize("key, value", [("encoder_form", "concat"), ("encoder_scale", "logstd"),
                                        ("decoder_output", "logits"), ("image_shape", [4, 4, 1]),
                                        ("condition_width", 3), ("skipped_epochs", [2])])
def test_a_run_using_a_version_2_key_is_written_as_version_2(tmp_path, key, value):
    info = {**_info(), key: value, **({"input_shape": [16]} if key == "image_shape" else {})}
    run.write_run(tmp_path, info)
    assert run.read_run(tmp_path)["format_version"] == 2
    run.write_run(tmp_path, {**_info(), "encoder_scale": "logvar", "skipped_epochs": []})  # their defaults
    assert run.read_run(tmp_path)["format_version"] == 1


def test_read_run_missing_dir(tmp_path):
    with pytest.raises(RunError, match="not a directory"):
        run.read_run(tmp_path / "nope")


def test_read_run_missing_run_json(tmp_path):
    with pytest.raises(RunError, match="run.json"):
        run.read_run(tmp_path)


def test_read_run_corrupt_json(tmp_path):
    (tmp_path / run.RUN_JSON).write_text('{"format": "vaeviz-run", "encoder": {')
    with pytest.raises(RunError, match="not readable JSON"):
        run.read_run(tmp_path)


def test_read_run_wrong_format(tmp_path):
    (tmp_path / run.RUN_JSON).write_text(json.dumps({**_info(), "format": "something-else"}))
    with pytest.raises(RunError, match="something-else"):
        run.read_run(tmp_path)


def test_read_run_newer_version(tmp_path):
    (tmp_path / run.RUN_JSON).write_text(json.dumps({**_info(), "format": run.FORMAT,
                                                     "format_version": run.FORMAT_VERSION + 1}))
    with pytest.raises(RunError, match="newer"):
        run.read_run(tmp_path)


# --- history.csv -----------------------------------------------------------


def test_add_history_adds_rows_and_grows_columns(tmp_path):
    path = tmp_path / run.HISTORY_CSV
    run.add_history(path, {1: {"loss": 3.5}})
    run.add_history(path, {2: {"loss": 2.25, "kl": 0.5}})
    assert path.read_text().splitlines()[0] == "epoch,kl,loss"
    assert run.read_history(path) == [{"epoch": 1, "loss": 3.5}, {"epoch": 2, "kl": 0.5, "loss": 2.25}]


def test_add_history_replaces_a_repeated_epoch(tmp_path):
    path = tmp_path / run.HISTORY_CSV
    run.add_history(path, {1: {"loss": 3.5}})
    run.add_history(path, {2: {"loss": 2.0}})
    run.add_history(path, {2: {"loss": 1.0}})
    assert run.read_history(path) == [{"epoch": 1, "loss": 3.5}, {"epoch": 2, "loss": 1.0}]


def test_read_history_absent_is_empty(tmp_path):
    assert run.read_history(tmp_path / run.HISTORY_CSV) == []


def test_last_epoch_from_history_and_checkpoints(tmp_path):
    assert run.last_epoch(tmp_path) == 0
    run.add_history(tmp_path / run.HISTORY_CSV, {2: {"loss": 1.0}})
    assert run.last_epoch(tmp_path) == 2
    run.write_weights(tmp_path / run.WEIGHTS_DIR / run.checkpoint_name(4), _parts(), epoch=4)
    assert run.last_epoch(tmp_path) == 4


def test_remove_stale_temps_deletes_dead_writers_files_only(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (tmp_path / "weights").mkdir()
    stale = tmp_path / "weights" / f".epoch_0002.weights.h5.{dead}.tmp"
    live = tmp_path / f".history.csv.{os.getpid()}.tmp"
    final = tmp_path / "weights" / "epoch_0001.weights.h5"
    for p in (stale, live, final):
        p.write_bytes(b"x")
    assert atomic.remove_stale_temps(tmp_path) == [stale]
    assert not stale.exists() and live.exists() and final.exists()
