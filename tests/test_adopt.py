"""`pipeline.adopt`: checkpoints saved with Keras' and TensorFlow's own callbacks become runs that render the
user's own model: its reconstructions and KL per latent, at each epoch, as loaded from that epoch's file.

One module fixture trains each model of tests/adopt_models.py once and writes every format; the source
folders are checked unchanged (SHA-256 of every file) after every adoption.
"""

import csv
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import adopt_models as am
from pictures import shown, tile
from pipeline import run
from pipeline.adopt import main as adopt_main

EPOCHS, N = 3, 8  # 8 samples: a 3 x 3 grid


def checksums(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shapes16):
    """Return the folder where each model was trained once, with every format its callbacks wrote."""
    import keras

    root = tmp_path_factory.mktemp("adopt_sources")
    x = shapes16
    np.save(root / "x.npy", x)
    keras.utils.set_random_seed(0)
    vae = am.build_keras_io()
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    vae.fit(x, epochs=EPOCHS, batch_size=32, verbose=0, callbacks=[
        keras.callbacks.ModelCheckpoint(str(root / "kio" / "vae.{epoch:02d}-{loss:.2f}.weights.h5"),
                                        save_weights_only=True),
        am.TfCheckpoints(str(root / "kio_tf")), keras.callbacks.CSVLogger(str(root / "kio.csv"))])
    keras.utils.set_random_seed(0)
    guide = am.build_guide()
    guide.compile(optimizer=keras.optimizers.Adam(3e-3))
    guide.fit(x, epochs=EPOCHS, batch_size=32, verbose=0,
              callbacks=[keras.callbacks.ModelCheckpoint(str(root / "guide" / "vae.{epoch:02d}.keras"))])
    keras.utils.set_random_seed(0)
    functional = am.build_functional()
    functional.fit(x, x, epochs=EPOCHS, batch_size=32, verbose=0, callbacks=[
        keras.callbacks.ModelCheckpoint(str(root / "func" / "epoch{epoch}.weights.h5"), save_weights_only=True),
        keras.callbacks.BackupAndRestore(str(root / "func_backup"), delete_checkpoint=False)])
    functional.save(root / "legacy" / f"vae.{EPOCHS:02d}.h5")  # Keras' legacy HDF5 full save
    return root


def adopt(*args, sources=None):
    """Run the adopt CLI in this process; check that `sources` (folders) were not written to."""
    before = {s: checksums(s) for s in sources or ()}
    result = CliRunner().invoke(adopt_main, [str(a) for a in args], catch_exceptions=False)
    for s in sources or ():
        assert checksums(s) == before[s], f"adopt wrote into {s}"
    return result


def users_own(model, samples: np.ndarray, encoder="encoder", decoder="decoder"):
    """Return (recon as shown, KL per latent) of the user's model as loaded: decode(z_mean) of the samples."""
    enc, dec = am_part(model, encoder), am_part(model, decoder)
    z_mean, z_log_var = (np.asarray(o, np.float64) for o in enc(samples, training=False)[:2])
    kl = np.mean(0.5 * (z_mean ** 2 + np.exp(z_log_var) - 1.0 - z_log_var), axis=0)
    return shown(np.clip(np.asarray(dec(z_mean.astype("float32"), training=False)), 0, 1)), kl


def am_part(model, name):
    return getattr(model, name, None) or model.get_layer(name)


def rendered(render, run_dir: Path, out: Path, epoch: int):
    """Render the run (recon, walk, kl) and return (recon tiles, {dim: kl}) of `epoch`."""
    result = render(run_dir, "--out", out, "--views", "recon,walk,kl", "--jobs", "1", "--quiet")
    assert result.exit_code == 0, result.output
    picture = np.asarray(Image.open(out / "recon" / f"epoch_{epoch:04d}.png"))
    with open(out / "latents.csv", newline="") as f:
        kl = {int(r["dim"]): float(r["kl"]) for r in csv.DictReader(f) if int(r["epoch"]) == epoch}
    return np.stack([tile(picture, *divmod(i, 3)) for i in range(N)]), kl


def check_against_users_model(render, tmp_path, run_dir, model, epoch, **parts):
    samples = run.read_samples(run_dir / run.SAMPLES_H5)["images"]
    recon, kl = rendered(render, run_dir, tmp_path / "out", epoch)
    want_recon, want_kl = users_own(model, samples, **parts)
    assert np.abs(recon - want_recon).max() <= 1
    assert np.allclose([kl[d] for d in range(am.LATENT)], want_kl, atol=1e-4, rtol=0)


# --- every format, against the user's own model loaded from that epoch's file --------------------------------


def test_keras_weights_h5_of_the_keras_io_vae(trained, tmp_path, render):
    source = trained / "kio"
    result = adopt(source, "--model", "adopt_models:build_keras_io", "--run", tmp_path / "run",
                   "--data", trained / "x.npy", "--n-samples", N, "--history", trained / "kio.csv", sources=[source])
    assert result.exit_code == 0, result.output
    assert "adopted 3 checkpoints" in result.output
    assert [c.epoch for c in run.list_checkpoints(tmp_path / "run")] == [1, 2, 3]
    model = am.build_keras_io()
    model.load_weights(next(source.glob("vae.02-*.weights.h5")))
    check_against_users_model(render, tmp_path, tmp_path / "run", model, 2)
    history = run.read_history(tmp_path / "run" / run.HISTORY_CSV)
    assert [r["epoch"] for r in history] == [1, 2, 3] and "loss" in history[0]  # CSVLogger's 0..2 as 1..3


def test_tf_train_checkpoint_manager_epoch_from_its_step_variable(trained, tmp_path, render):
    import tensorflow as tf

    source = trained / "kio_tf"
    result = adopt(source, "--model", "adopt_models:build_keras_io", "--run", tmp_path / "run",
                   "--data", trained / "x.npy", "--n-samples", N, sources=[source])
    assert result.exit_code == 0, result.output
    assert [c.epoch for c in run.list_checkpoints(tmp_path / "run")] == [1, 2, 3]
    model = am.build_keras_io()
    tf.train.Checkpoint(net=model).restore(str(source / "ckpt-3")).expect_partial()
    check_against_users_model(render, tmp_path, tmp_path / "run", model, 3)
    origin = run.read_origin(tmp_path / "run" / run.WEIGHTS_DIR / run.checkpoint_name(3))
    assert origin["path"].endswith("ckpt-3") and origin["epoch_from"] == "its `step` variable"
    again = adopt(source, "--model", "adopt_models:build_keras_io", "--run", tmp_path / "run")
    assert again.exit_code == 0 and "adopted 0 checkpoints" in again.output and "3 already adopted" in again.output


def test_keras_archives_of_a_registered_subclass_with_the_model_from_one_of_them(trained, tmp_path, render):
    import keras

    source = trained / "guide"
    result = adopt(f"{source}/*.keras", "--model", source / "vae.01.keras", "--import", "adopt_models",
                   "--run", tmp_path / "run", "--data", trained / "x.npy", "--n-samples", N, sources=[source])
    assert result.exit_code == 0, result.output
    model = keras.saving.load_model(source / "vae.02.keras", compile=False)
    check_against_users_model(render, tmp_path, tmp_path / "run", model, 2)


def test_weights_h5_of_a_functional_vae_whose_encoder_and_decoder_are_layers(trained, tmp_path, render):
    source = trained / "func"
    result = adopt(source, "--model", "adopt_models:build_functional", "--run", tmp_path / "run",
                   "--data", trained / "x.npy", "--n-samples", N, sources=[source])
    assert result.exit_code == 0, result.output
    model = am.build_functional()
    model.load_weights(source / "epoch1.weights.h5")
    check_against_users_model(render, tmp_path, tmp_path / "run", model, 1)


def test_backup_and_restore_folder_adopts_its_one_state_at_its_epoch(trained, tmp_path, render):
    source = trained / "func_backup"
    result = adopt(source, "--model", "adopt_models:build_functional", "--run", tmp_path / "run",
                   "--data", trained / "x.npy", "--n-samples", N, sources=[source])
    assert result.exit_code == 0, result.output
    assert [c.epoch for c in run.list_checkpoints(tmp_path / "run")] == [EPOCHS]
    model = am.build_functional()
    model.load_weights(source / "latest.weights.h5")
    check_against_users_model(render, tmp_path, tmp_path / "run", model, EPOCHS)


def test_a_legacy_h5_file_adopts_where_keras_3_loads_it_and_says_where_it_does_not(trained, tmp_path, render):
    result = adopt(trained / "legacy", "--model", "adopt_models:build_functional", "--run", tmp_path / "run",
                   "--data", trained / "x.npy", "--n-samples", N, sources=[trained / "legacy"])
    assert result.exit_code == 0, result.output
    model = am.build_functional()
    model.load_weights(trained / "legacy" / f"vae.{EPOCHS:02d}.h5")
    check_against_users_model(render, tmp_path, tmp_path / "run", model, EPOCHS)
    result = adopt(trained / "legacy", "--model", "adopt_models:build_keras_io", "--run", tmp_path / "sub")
    assert result.exit_code == 2 and "only where Keras 3 reads it" in result.output, result.output


def test_without_data_the_run_renders_the_views_that_need_no_samples(trained, tmp_path, render):
    assert adopt(trained / "kio", "--model", "adopt_models:build_keras_io", "--run", tmp_path / "run").exit_code == 0
    assert not (tmp_path / "run" / run.SAMPLES_H5).exists()
    result = render(tmp_path / "run", "--out", tmp_path / "out", "--jobs", "1")
    assert result.exit_code == 0 and "walk" in result.output, result.output
    assert (tmp_path / "out" / "walk" / "epoch_0003.png").is_file()


def test_adopting_again_adds_only_what_is_new_or_changed(trained, tmp_path):
    source = tmp_path / "src"
    shutil.copytree(trained / "kio", source)
    newest = sorted(source.glob("*.weights.h5"))[-1]
    held = newest.rename(tmp_path / newest.name)
    args = (source, "--model", "adopt_models:build_keras_io", "--run", tmp_path / "run")
    assert "adopted 2 checkpoints" in adopt(*args).output
    shutil.copy(held, newest)
    again = adopt(*args)
    assert again.exit_code == 0 and "adopted 1 checkpoint " in again.output and "2 already adopted" in again.output
    info = run.read_run(tmp_path / "run")
    assert info["finished"] is True and info["adopted"]["model"] == "adopt_models:build_keras_io"


# --- bad input: a clear message naming the file and the fix; the other checkpoints still adopted ----------------


@pytest.fixture
def mixed(trained, tmp_path):
    """Return a copy of the keras.io run's weights folder, for a test to spoil."""
    source = tmp_path / "src"
    shutil.copytree(trained / "kio", source)
    return source


def adopt_mixed(source, tmp_path, *extra):
    result = adopt(source, "--model", "adopt_models:build_keras_io", "--run", tmp_path / "run", *extra,
                   sources=[source])
    return result, [c.epoch for c in run.list_checkpoints(tmp_path / "run")]


def test_a_truncated_file_is_named_and_skipped(mixed, tmp_path):
    spoilt = sorted(mixed.glob("vae.02-*"))[0]
    spoilt.write_bytes(spoilt.read_bytes()[:5000])
    result, epochs = adopt_mixed(mixed, tmp_path)
    assert result.exit_code == 1 and epochs == [1, 3]
    assert spoilt.name in result.output and "truncated" in result.output and "copy it again" in result.output.lower()


def test_a_file_of_another_architecture_names_the_layer_and_both_shapes(mixed, tmp_path):
    am.build_other_architecture().save_weights(mixed / "vae.04-0.00.weights.h5")
    result, epochs = adopt_mixed(mixed, tmp_path)
    assert result.exit_code == 1 and epochs == [1, 2, 3]
    line = next(line for line in result.output.splitlines() if "vae.04" in line)
    assert "do not fit the model" in line and "/layers/dense" in line, line
    assert "is (16, 3) in the file, (16, 2) in the model" in line, line


def test_an_optimizer_only_tf_checkpoint_says_it_holds_no_model_weights(trained, tmp_path):
    import keras
    import tensorflow as tf

    source = tmp_path / "src"
    shutil.copytree(trained / "kio_tf", source)
    optimizer = keras.optimizers.Adam()
    optimizer.build(am.build_keras_io().trainable_variables)
    tf.train.Checkpoint(step=tf.Variable(9), optimizer=optimizer).save(str(source / "optimizer"))
    result = adopt(source, "--model", "adopt_models:build_keras_io", "--run", tmp_path / "run", sources=[source])
    assert result.exit_code == 1 and [c.epoch for c in run.list_checkpoints(tmp_path / "run")] == [1, 2, 3]
    line = next(line for line in result.output.splitlines() if "optimizer-1" in line)
    assert "only optimizer state" in line and "tf.train.Checkpoint(model=model" in line, line


def test_a_file_whose_name_gives_no_epoch_is_listed_and_skipped(mixed, tmp_path):
    shutil.copy(sorted(mixed.glob("*"))[0], mixed / "best.weights.h5")
    result, epochs = adopt_mixed(mixed, tmp_path)
    assert result.exit_code == 1 and epochs == [1, 2, 3]
    assert "best.weights.h5" in result.output and "--epoch-pattern" in result.output


def test_two_files_for_one_epoch_stop_the_adoption_naming_both(mixed, tmp_path):
    first = sorted(mixed.glob("vae.01-*"))[0]
    shutil.copy(first, mixed / "vae.01-9.99.weights.h5")
    result, epochs = adopt_mixed(mixed, tmp_path)
    assert result.exit_code == 2 and epochs == []
    assert first.name in result.output and "vae.01-9.99.weights.h5" in result.output


def test_an_epoch_pattern_reads_the_number_modelcheckpoint_wrote(mixed, tmp_path):
    for f in mixed.glob("*.weights.h5"):  # a name with another number in front: 64px
        f.rename(mixed / f"vae64px-{f.name}")
    result, epochs = adopt_mixed(mixed, tmp_path, "--epoch-pattern", "vae64px-vae.{epoch:02d}-{loss:.2f}.weights.h5")
    assert result.exit_code == 0 and epochs == [1, 2, 3], result.output
    result, epochs = adopt_mixed(mixed, tmp_path / "default")  # the number that changes from file to file
    assert result.exit_code == 0 and epochs == [1, 2, 3], result.output


def test_a_keras_archive_whose_custom_classes_are_not_importable_says_import(trained, tmp_path, monkeypatch):
    import keras

    registry = keras.saving.get_custom_objects()
    for name in [n for n in registry if n.startswith("adopt_models>")]:
        monkeypatch.delitem(registry, name)
    result = adopt(trained / "guide", "--model", trained / "guide" / "vae.01.keras", "--run", tmp_path / "run")
    assert result.exit_code == 2 and "--import" in result.output and "GuideVAE" in result.output, result.output


def test_a_model_refused_for_its_shape_names_the_adopt_option(trained, tmp_path):
    am.build_flat().save_weights(tmp_path / "flat.01.weights.h5")
    result = adopt(tmp_path / "flat.01.weights.h5", "--model", "adopt_models:build_flat", "--run", tmp_path / "run",
                   "--data", trained / "x.npy")
    assert result.exit_code == 2 and "--image-shape 16,16,1" in result.output, result.output
    result = adopt(tmp_path / "flat.01.weights.h5", "--model", "adopt_models:build_flat", "--run", tmp_path / "run",
                   "--data", trained / "x.npy", "--image-shape", "16,16,1", "--n-samples", 4)
    assert result.exit_code == 0, result.output


def test_a_model_that_cannot_be_built_or_found_is_a_clear_error(tmp_path, trained):
    for spec, said in (("adopt_models:nothing", "has no function `nothing`"), ("no_such_module:f", "cannot import"),
                       ("model.h5", "a .keras file or `module:function`"), (tmp_path / "x.keras", "does not exist")):
        result = adopt(trained / "kio", "--model", spec, "--run", tmp_path / "run")
        assert result.exit_code == 2 and said in result.output, result.output
    result = adopt(tmp_path / "missing", "--model", "adopt_models:build_keras_io", "--run", tmp_path / "run")
    assert result.exit_code == 2 and "does not exist" in result.output


# --- a run still training: --follow ----------------------------------------------------------------------------


def test_follow_takes_each_file_once_its_size_is_unchanged_for_one_poll(trained, tmp_path):
    from pipeline.adopt import adopt as adopt_fn

    files = sorted((trained / "kio").glob("*.weights.h5"))
    source, run_dir, polls = tmp_path / "src", tmp_path / "run", []

    def training(seconds):  # each poll, training writes: half a file, then the rest, then the next
        polls.append([c.epoch for c in run.list_checkpoints(run_dir)])
        assert run.read_run(run_dir)["finished"] is False  # render --follow keeps following
        step = len(polls) - 1
        if step < 2 * len(files):
            f = files[step // 2]
            data = f.read_bytes()
            source.mkdir(exist_ok=True)
            (source / f.name).write_bytes(data if step % 2 else data[:len(data) // 2])

    summary = adopt_fn(str(source), model="adopt_models:build_keras_io", run_dir=run_dir, follow=True, poll=0.01,
                       idle_timeout=0.3, sleep=training)
    assert summary.adopted == [1, 2, 3] and not summary.failed
    assert polls[:6] == [[], [], [], [1], [1], [1, 2]]  # half a file is never taken; a whole one a poll later
    assert run.read_run(run_dir)["finished"] is True
