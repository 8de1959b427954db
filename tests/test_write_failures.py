"""Training never dies because of vaeviz: a full disk, failed writes and a filesystem that stops answering
cost checkpoints and warnings, never the training run; the renderer names what was skipped."""

import errno
import os
import shutil
import subprocess
import threading
from pathlib import Path

import keras
import numpy as np
import pytest

from pipeline import run
from pipeline.callback import CheckpointForViz


def fit(model, x, run_dir, epochs, **options):
    callback = CheckpointForViz(run_dir, x, n_samples=4, **options)
    model.fit(x, epochs=epochs, batch_size=64, verbose=0, callbacks=[callback])
    return callback


def temp_files(folder: Path) -> list:
    return sorted(str(p) for p in folder.rglob("*.tmp"))


@pytest.fixture
def failing_replace(monkeypatch):
    """Make the final rename of chosen files fail with ENOSPC (after their temporary file is written)."""
    rules = {"names": set(), "history_failures": 0}
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        name = Path(dst).name
        if name in rules["names"] or (name == run.HISTORY_CSV and rules["history_failures"] > 0):
            if name == run.HISTORY_CSV:
                rules["history_failures"] -= 1
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    return rules


def test_a_full_disk_warns_skips_those_checkpoints_and_training_goes_on(
        failing_replace, make_tiny_vae, shapes16, tmp_path, render):
    failing_replace["names"] = {run.checkpoint_name(2), run.checkpoint_name(3)}
    failing_replace["history_failures"] = 2
    run_dir = tmp_path / "run"
    with pytest.warns(UserWarning) as warned:
        fit(make_tiny_vae(), shapes16, run_dir, 5)
    messages = [str(w.message) for w in warned]
    for epoch in (2, 3):
        assert any(f"checkpoint of epoch {epoch}" in m and str(run_dir) in m and "No space left" in m
                   and "Training goes on" in m for m in messages), messages
    info = run.read_run(run_dir)
    assert info["finished"] and info["skipped_epochs"] == [2, 3] and info["format_version"] == 2
    assert [c.epoch for c in run.list_checkpoints(run_dir)] == [1, 4, 5]
    assert [r["epoch"] for r in run.read_history(run_dir / run.HISTORY_CSV)] == [1, 2, 3, 4, 5]
    assert temp_files(run_dir) == []
    result = render(run_dir, "--out", tmp_path / "out", "-j", 1)
    assert result.exit_code == 0, result.output
    assert "skipped the checkpoints of epochs 2, 3" in result.output


def test_on_error_raise_keeps_the_strict_behaviour(failing_replace, make_tiny_vae, shapes16, tmp_path):
    failing_replace["names"] = {run.checkpoint_name(2)}
    with pytest.raises(OSError, match="No space left"):
        fit(make_tiny_vae(), shapes16, tmp_path / "run", 4, on_error="raise")
    assert temp_files(tmp_path) == []


def test_a_write_that_hangs_never_hangs_training(make_tiny_vae, shapes16, tmp_path, monkeypatch):
    gate, real = threading.Event(), run.write_weights

    def stuck(path, parts, *, epoch):
        if epoch == 2:
            gate.wait(120)  # a network filesystem that stopped answering
        real(path, parts, epoch=epoch)

    monkeypatch.setattr(run, "write_weights", stuck)
    run_dir = tmp_path / "run"
    try:
        with pytest.warns(UserWarning, match=r"did not finish within|still pending"):
            fit(make_tiny_vae(), shapes16, run_dir, 6, write_timeout=0.5)
        assert not gate.is_set()  # fit returned while the write still hung
    finally:
        gate.set()
    for _ in range(200):  # the writes go on once the filesystem answers, and the run is marked finished
        if run.read_run(run_dir).get("finished"):
            break
        threading.Event().wait(0.05)
    info = run.read_run(run_dir)
    assert info["finished"] and info.get("skipped_epochs"), info.get("skipped_epochs")
    assert 2 in [c.epoch for c in run.list_checkpoints(run_dir)]


def _mount_tmpfs(folder: Path, size: str) -> bool:
    folder.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True).returncode == 0


def test_a_real_full_tmpfs_costs_checkpoints_not_the_training_run(shapes16, tmp_path, render):
    """A 760 KiB disk: run.json and samples.h5 (35 KB) and two checkpoints (300 KB each) fit, a third does
    not; the small files (run.json, history.csv) still do, as on a real disk that fills up."""
    from pipeline.model import ImageVAE

    disk = tmp_path / "small_disk"
    if not _mount_tmpfs(disk, "760k"):
        pytest.skip("cannot mount a tmpfs here (needs root); the injected ENOSPC test covers the same path")
    try:
        run_dir = disk / "run"
        keras.utils.set_random_seed(0)
        model = ImageVAE(image_size=16, channels=1, latent_dim=3, filters=16)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        with pytest.warns(UserWarning, match="No space left"):
            fit(model, shapes16, run_dir, 12)
        saved = [c.epoch for c in run.list_checkpoints(run_dir)]
        info = run.read_run(run_dir)
        assert info["finished"] and info["skipped_epochs"] and saved
        assert sorted(saved + info["skipped_epochs"]) == list(range(1, 13))
        assert temp_files(run_dir) == []
        result = render(run_dir, "--out", tmp_path / "out", "-j", 1)
        assert result.exit_code == 0, result.output
        assert "skipped the checkpoints of epochs" in result.output
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_a_non_scalar_log_is_left_out_with_a_warning(make_tiny_vae, shapes16, tmp_path):
    callbacks = [CheckpointForViz(tmp_path / "run", shapes16, n_samples=4)]
    callbacks = keras.callbacks.CallbackList(callbacks, model=make_tiny_vae())
    callbacks.on_train_begin()
    callbacks.on_epoch_begin(0)
    with pytest.warns(UserWarning, match=r"logs\['per_class'\] is not a scalar"):
        callbacks.on_epoch_end(0, {"loss": 1.5, "per_class": np.array([0.1, 0.2])})
    callbacks.on_train_end()
    assert run.read_history(tmp_path / "run" / run.HISTORY_CSV) == [{"epoch": 1, "loss": 1.5}]
