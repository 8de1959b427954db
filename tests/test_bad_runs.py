"""Bad run directories, through the CLI: each problem is named with what is wrong,
the rest renders, nothing crashes with a traceback, earlier outputs are never
damaged and nothing is written outside --out."""

import functools
import json
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline import run

EPOCHS = 3  # of the tiny_run fixture


@pytest.fixture(scope="module")
def render(render):
    """The CLI, keeping an exception other than a clean exit in result.exception (see assert_no_crash)."""
    return functools.partial(render, catch=True)


def assert_no_crash(result):
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        f"crashed with {result.exception!r}; output:\n{result.output}"


def mentions(result, *patterns):
    """Assert each regex of `patterns` occurs in the output (case-insensitive)."""
    for pattern in patterns:
        assert re.search(pattern, result.output, re.IGNORECASE), f"no `{pattern}` in:\n{result.output}"


def failed_lines(result) -> dict:
    """Return {epoch: reason} of the CLI's `failed: epoch N: reason` lines."""
    return {int(m.group(1)): m.group(2) for m in re.finditer(r"^failed: epoch (\d+): (.*)$", result.output, re.M)}


def gif_frame_count(path: Path) -> int:
    with Image.open(path) as im:
        return im.n_frames


@pytest.fixture
def run_dir(tiny_run, tmp_path):
    """Return a private copy of the tiny 3-epoch run (latent_dim 3, 9 samples)."""
    return Path(shutil.copytree(tiny_run.run_dir, tmp_path / "run"))


def ckpt(run_dir: Path, epoch: int) -> Path:
    return run_dir / run.WEIGHTS_DIR / run.checkpoint_name(epoch)


def edit_run_json(run_dir: Path, change) -> None:
    path = run_dir / run.RUN_JSON
    info = json.loads(path.read_text())
    change(info)
    path.write_text(json.dumps(info))


@pytest.fixture(scope="module")
def foreign_checkpoint(tmp_path_factory, shapes16, make_tiny_vae):
    """Return a checkpoint of another model: the same architecture with latent_dim 5."""
    from pipeline.callback import CheckpointForViz

    other = tmp_path_factory.mktemp("foreign") / "run"
    make_tiny_vae(latent_dim=5).fit(shapes16[:64], epochs=1, batch_size=64, verbose=0,
                                    callbacks=[CheckpointForViz(other)])
    return ckpt(other, 1)


# --- one bad checkpoint: named, skipped, the rest rendered, exit 1 --------------------

BAD_CHECKPOINTS = {
    "truncated": (lambda good, foreign: good[:len(good) // 2], r"unreadable HDF5|truncated"),
    "zero-byte": (lambda good, foreign: b"", r"empty file"),
    "foreign": (lambda good, foreign: foreign, r"another model"),
    "not-hdf5": (lambda good, foreign: b"these are not the weights you are looking for\n" * 40,
                 r"unreadable HDF5|not .*HDF5|signature"),
}


@pytest.mark.parametrize("kind", list(BAD_CHECKPOINTS))
def test_a_bad_checkpoint_is_named_with_its_reason_skipped_and_the_rest_render(
        render, run_dir, foreign_checkpoint, tmp_path, kind):
    make, reason = BAD_CHECKPOINTS[kind]
    bad = ckpt(run_dir, 2)
    bad.write_bytes(make(bad.read_bytes(), foreign_checkpoint.read_bytes()))
    out = tmp_path / "out"
    result = render(run_dir, "--out", out, "-j", 1)
    assert_no_crash(result)
    assert result.exit_code == 1, result.output
    failed = failed_lines(result)
    assert list(failed) == [2], result.output
    assert bad.name in failed[2] and re.search(reason, failed[2], re.IGNORECASE), failed[2]
    for view in ("recon", "walk"):
        assert sorted(p.name for p in (out / view).iterdir()) == ["epoch_0001.png", "epoch_0003.png"]
        assert gif_frame_count(out / f"{view}.gif") == 2


# --- a folder that cannot be rendered: exit 2, saying what is wrong -------------------


def _write(name, data):
    return lambda run_dir: (run_dir / name).write_bytes(data)


def _samples_h5_without_images(run_dir):
    import h5py

    path = run_dir / run.SAMPLES_H5
    path.unlink()
    with h5py.File(path, "w") as f:
        f["indices"] = np.arange(3)


def _samples(images):
    def change(run_dir):
        (run_dir / run.SAMPLES_H5).unlink()
        run.write_samples(run_dir / run.SAMPLES_H5, indices=np.arange(len(images)), images=images,
                          seed=0, source="test")
    return change


RUN_PROBLEMS = {
    "missing run.json": (lambda d: (d / run.RUN_JSON).unlink(), [r"run\.json", r"not a run"]),
    "corrupt run.json": (_write(run.RUN_JSON, b'{"format": "vaeviz-run", "encoder": {"class_'),
                         [r"run\.json", r"JSON"]),
    "binary run.json": (_write(run.RUN_JSON, bytes(range(256)) * 4), [r"run\.json", r"JSON"]),
    "run.json of another format": (lambda d: edit_run_json(d, lambda i: i.update(format="keras-model")),
                                   [r"run\.json", r"not a vaeviz run", r"keras-model"]),
    "run.json that is a list": (_write(run.RUN_JSON, b"[1, 2, 3]\n"), [r"run\.json", r"not a vaeviz run"]),
    "run.json from a newer vaeviz": (lambda d: edit_run_json(d, lambda i: i.update(format_version=99)),
                                     [r"newer", r"upgrade"]),
    "run.json without a decoder": (lambda d: edit_run_json(d, lambda i: i.pop("decoder")),
                                   [r"run\.json", r"decoder"]),
    "corrupt samples.h5": (_write(run.SAMPLES_H5, b"\x89HDF\r\n" + bytes(range(256)) * 8), [r"samples\.h5"]),
    "zero-byte samples.h5": (_write(run.SAMPLES_H5, b""), [r"samples\.h5"]),
    "samples.h5 without images": (_samples_h5_without_images, [r"samples\.h5", r"images"]),
    "reversed value_range": (lambda d: edit_run_json(d, lambda i: i.update(value_range=[1, 0])),
                             [r"value_range"]),
}

# run.json / samples.h5 that are well-formed files but wrong inside: exit 2, naming the field
RUN_PROBLEMS_NOT_VALIDATED = {
    "encoder that is not an architecture": (lambda d: edit_run_json(d, lambda i: i.update(encoder={})),
                                            [r"encoder"]),
    "latent_dim that is not a number": (lambda d: edit_run_json(d, lambda i: i.update(latent_dim="three")),
                                        [r"latent_dim"]),
    "latent_dim that does not fit the decoder": (lambda d: edit_run_json(d, lambda i: i.update(latent_dim=7)),
                                                 [r"latent_dim", r"\b7\b", r"\b3\b"]),
    "value_range that is not numbers": (lambda d: edit_run_json(d, lambda i: i.update(value_range="0..1")),
                                        [r"value_range"]),
    "samples of the wrong image size": (_samples(np.zeros((4, 8, 8, 1), np.float32)),
                                        [r"samples", r"16, 16, 1|16x16"]),
    "zero samples": (_samples(np.zeros((0, 16, 16, 1), np.float32)), [r"samples", r"no |empty|zero|0 "]),
}


def _check_exit_2(render, run_dir, tmp_path, change, patterns):
    change(run_dir)
    result = render(run_dir, "--out", tmp_path / "out", "-j", 1)
    assert_no_crash(result)
    assert result.exit_code == 2, result.output
    mentions(result, *patterns)
    assert not failed_lines(result)


@pytest.mark.parametrize("problem", list(RUN_PROBLEMS))
def test_a_run_that_cannot_be_rendered_exits_2_saying_what_is_wrong(render, run_dir, tmp_path, problem):
    _check_exit_2(render, run_dir, tmp_path, *RUN_PROBLEMS[problem])


@pytest.mark.parametrize("problem", list(RUN_PROBLEMS_NOT_VALIDATED))
def test_a_run_json_or_samples_wrong_inside_exits_2_naming_the_field(render, run_dir, tmp_path, problem):
    _check_exit_2(render, run_dir, tmp_path, *RUN_PROBLEMS_NOT_VALIDATED[problem])


def test_a_plain_folder_exits_2_saying_it_is_not_a_run(render, tmp_path):
    folder = tmp_path / "holiday"
    (folder / "weights").mkdir(parents=True)
    (folder / "notes.txt").write_text("not a run\n")
    Image.new("L", (8, 8)).save(folder / "beach.png")
    result = render(folder, "--out", tmp_path / "out", "-j", 1)
    assert_no_crash(result)
    assert result.exit_code == 2
    mentions(result, r"not a run", r"run\.json", r"CheckpointForViz")
    assert not (tmp_path / "out").exists()


def test_a_file_instead_of_a_folder_exits_2(render, tmp_path):
    path = tmp_path / "run.json"
    path.write_text("{}")
    result = render(path, "--out", tmp_path / "out")
    assert_no_crash(result)
    assert result.exit_code == 2
    mentions(result, r"director|folder")


def test_an_import_that_fails_exits_2_naming_the_module(render, run_dir, tmp_path):
    result = render(run_dir, "--out", tmp_path / "out", "-j", 1, "--import", "no_such_vaeviz_plugin")
    assert_no_crash(result)
    assert result.exit_code == 2
    mentions(result, r"no_such_vaeviz_plugin")


# --- earlier outputs survive a failing render -----------------------------------------


def contents(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def is_epoch_frame(name: str) -> bool:
    return re.search(r"epoch_\d{4}\.", name) is not None or name == "inputs.png"


@pytest.mark.parametrize("epoch", [2, EPOCHS])
def test_a_checkpoint_that_goes_bad_never_damages_frames_already_rendered(render, run_dir, tmp_path, epoch):
    out = tmp_path / "out"
    first = render(run_dir, "--out", out, "-j", 1)
    assert first.exit_code == 0, first.output
    before = contents(out)
    bad = ckpt(run_dir, epoch)
    bad.write_bytes(bad.read_bytes()[:2000])
    result = render(run_dir, "--out", out, "-j", 1)
    assert_no_crash(result)
    assert result.exit_code == 1 and list(failed_lines(result)) == [epoch], result.output
    after = contents(out)
    assert set(before) <= set(after), f"deleted: {sorted(set(before) - set(after))}"
    frames = [name for name in before if is_epoch_frame(name)]
    assert len(frames) >= 2 * EPOCHS + 1
    changed = [name for name in frames if after[name] != before[name]]
    assert changed == [], f"rendered frames changed by a failing render: {changed}"
    assert gif_frame_count(out / "recon.gif") == EPOCHS - 1  # the GIFs leave the bad epoch out
    json.loads((out / "manifest.json").read_text())


@pytest.mark.parametrize("damage", ["run.json", "samples.h5"])
def test_a_run_that_goes_bad_leaves_every_output_byte_identical(render, run_dir, tmp_path, damage):
    out = tmp_path / "out"
    assert render(run_dir, "--out", out, "-j", 1).exit_code == 0
    before = contents(out)
    (run_dir / damage).write_bytes(b"\x00garbage\x00" * 64)
    result = render(run_dir, "--out", out, "-j", 1, "--force")
    assert_no_crash(result)
    assert result.exit_code == 2, result.output
    assert contents(out) == before


# --- untrusted run directories ------------------------------------------------------


@pytest.fixture(scope="module")
def lambda_run(tmp_path_factory, shapes16):
    """Return a run whose functional encoder holds a keras.layers.Lambda (a Python lambda)."""
    import keras

    from pipeline.callback import CheckpointForViz

    keras.utils.set_random_seed(0)
    image = keras.Input((16, 16, 1), name="image")
    h = keras.layers.Dense(8, activation="relu")(keras.layers.Flatten()(image))
    h = keras.layers.Lambda(lambda t: t * 0.5, name="halve")(h)
    encoder = keras.Model(image, [keras.layers.Dense(2, name="z_mean")(h), keras.layers.Dense(2, name="z_log_var")(h)],
                          name="encoder")
    z = keras.Input((2,), name="z")
    decoder = keras.Model(z, keras.layers.Reshape((16, 16, 1))(keras.layers.Dense(256, activation="sigmoid")(z)),
                          name="decoder")
    autoencoder = keras.Model(image, decoder(encoder(image)[0]))
    autoencoder.compile(optimizer="adam", loss="mse")
    run_dir = tmp_path_factory.mktemp("lambda") / "run"
    x = shapes16[:64]
    with warnings.catch_warnings():  # z_log_var gets no gradient from this loss; irrelevant here
        warnings.simplefilter("ignore", UserWarning)
        autoencoder.fit(x, x, epochs=2, batch_size=32, verbose=0,
                        callbacks=[CheckpointForViz(run_dir, x, n_samples=4, encoder=encoder, decoder=decoder)])
    return run_dir


def test_a_lambda_layer_is_refused_by_name_and_the_message_offers_unsafe(render, lambda_run, tmp_path):
    assert "Lambda" in (lambda_run / run.RUN_JSON).read_text()
    result = render(lambda_run, "--out", tmp_path / "out", "-j", 1)
    assert_no_crash(result)
    assert result.exit_code == 2, result.output
    mentions(result, r"Lambda", r"--unsafe")
    assert not list(tmp_path.rglob("*.png"))


def test_the_refusal_names_the_lambda_layer(render, lambda_run, tmp_path):
    result = render(lambda_run, "--out", tmp_path / "out", "-j", 1)
    assert result.exit_code == 2
    mentions(result, r"\bhalve\b")  # the Lambda layer's name, so the user knows what to look at


def test_unsafe_renders_a_trusted_lambda_run(render, lambda_run, tmp_path):
    result = render(lambda_run, "--out", tmp_path / "out", "-j", 1, "--unsafe")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out" / "walk").iterdir()) == ["epoch_0001.png", "epoch_0002.png"]


def test_an_unknown_custom_class_is_refused_and_the_message_offers_import(render, run_dir, tmp_path):
    def rename_last_layer(info):
        layer = info["decoder"]["config"]["layers"][-1]
        layer.update(class_name="MysteryConv", module="mystery_lab.layers", registered_name="MysteryLab>MysteryConv")

    edit_run_json(run_dir, rename_last_layer)
    result = render(run_dir, "--out", tmp_path / "out", "-j", 1)
    assert_no_crash(result)
    assert result.exit_code == 2, result.output
    mentions(result, r"MysteryConv", r"--import")


# --- the renderer writes only under --out -------------------------------------------


def stat_tree(root: Path, *, skip: Path) -> dict:
    """Return {relative path: (is_dir, size, mtime_ns)} under root, `skip`'s subtree left out."""
    found = {}
    for p in root.rglob("*"):
        if p == skip or skip in p.parents:
            continue
        st = p.lstat()
        found[p.relative_to(root).as_posix()] = (p.is_dir(), st.st_size, st.st_mtime_ns)
    return found


def test_render_writes_nothing_outside_out(render, run_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a stray relative write would land here and be seen
    out = tmp_path / "out"
    before = stat_tree(tmp_path, skip=out)
    result = render(run_dir, "--out", out, "-j", 1, "--views", "recon,walk,manifold,samples,interp,traversal")
    assert result.exit_code == 0, result.output
    assert stat_tree(tmp_path, skip=out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "run"]
    assert (out / "walk" / "epoch_0003.png").is_file()


# --- NaN / Inf weights ---------------------------------------------------------------


def poison(run_dir: Path, epoch: int, part: str, index: int, value: float) -> None:
    """Rewrite a checkpoint with `value` everywhere in one weight array (e.g. the decoder's last bias)."""
    path = ckpt(run_dir, epoch)
    parts = run.read_weights(path)
    parts[part][index] = np.full_like(parts[part][index], value)
    run.write_weights(path, parts, epoch=epoch)


DECODER_LAST_BIAS = ("decoder", -1)  # NaN there: every decoded pixel is NaN
ENCODER_Z_MEAN_BIAS = ("encoder", -3)  # ImageVAE's encoder ends z_mean kernel, bias, z_log_var kernel, bias


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # statistics of infinite codes
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [DECODER_LAST_BIAS, ENCODER_Z_MEAN_BIAS], ids=["decoder", "encoder"])
def test_a_checkpoint_with_nan_or_inf_weights_renders_without_crashing(render, run_dir, tmp_path, where, value):
    poison(run_dir, 2, *where, value)
    out = tmp_path / "out"
    result = render(run_dir, "--out", out, "-j", 1, "--views", "recon,walk,manifold,samples,traversal")
    assert_no_crash(result)
    assert result.exit_code == 0, result.output
    for view in ("recon", "walk", "manifold", "samples"):
        assert sorted(p.name for p in (out / view).iterdir()) == [f"epoch_{e:04d}.png" for e in (1, 2, 3)]
        assert gif_frame_count(out / f"{view}.gif") == EPOCHS


def test_a_checkpoint_with_nan_weights_renders_in_a_marked_colour_with_a_warning(render, run_dir, tmp_path):
    poison(run_dir, 2, *DECODER_LAST_BIAS, np.nan)
    out = tmp_path / "out"
    result = render(run_dir, "--out", out, "-j", 1)
    assert_no_crash(result)
    assert result.exit_code == 0, result.output
    mentions(result, r"\bNaN\b", r"epoch\D+2\b")
    recon = np.asarray(Image.open(out / "recon" / "epoch_0002.png").convert("RGB"))
    healthy = np.asarray(Image.open(out / "recon" / "epoch_0001.png").convert("RGB"))
    colours = lambda a: {tuple(c) for c in a.reshape(-1, 3)}  # noqa: E731
    marked = colours(recon) - colours(healthy)
    assert marked and all(len(set(c)) > 1 for c in marked), "NaN pixels are not in a colour of their own"


def test_a_checkpoint_with_nan_weights_renders_the_interp_view_too(render, run_dir, tmp_path):
    poison(run_dir, 2, *DECODER_LAST_BIAS, np.nan)
    out = tmp_path / "out"
    result = render(run_dir, "--out", out, "-j", 1, "--views", "interp")
    assert_no_crash(result)
    assert result.exit_code == 0, result.output
    assert (out / "interp" / "epoch_0002.png").is_file()
