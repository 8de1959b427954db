"""Every VAE people actually write (tests/zoo_models.py), trained a few epochs with CheckpointForViz, then
rendered from a copy of the run directories in one fresh process: the pictures are the user's own model's.

Rows on other Keras backends train in a fresh process with KERAS_BACKEND set (JAX always, PyTorch where
`torch` imports); the render stays on TensorFlow.
"""

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import zoo_models
from pictures import shown, tile
from pipeline import run
from pipeline.views.base import LABEL_WIDTH

pytestmark = pytest.mark.slow

TESTS = Path(__file__).parent
SIZE, STEPS = zoo_models.SIZE, 5  # --walk-steps 5: the centre column is z = 0, the anchor
OTHER_BACKENDS = ["jax"] + (["torch"] if importlib.util.find_spec("torch") else [])


def fresh_env(**extra) -> dict:
    path = os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "3", **extra}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory, shapes16):
    """Return (rendered outputs folder, {row: (expected recon, expected walk centre, conditions)}, render log)."""
    root = tmp_path_factory.mktemp("zoo")
    x = shapes16
    np.save(root / "x.npy", x)
    expected = {}
    for row, train in zoo_models.ROWS.items():
        run_dir = root / "checkpoints" / row
        encoder, decoder, output, _ = train(run_dir, x)
        samples = run.read_samples(run_dir / run.SAMPLES_H5)
        recon, centre = zoo_models.expected_pictures(encoder, decoder, output, samples["conditions"],
                                                     samples["images"])
        expected[row] = (recon, centre, samples["conditions"], decoder)
    for backend in OTHER_BACKENDS:
        row = f"{backend}_backend"
        proc = subprocess.run([sys.executable, str(TESTS / "zoo_models.py"), "any_backend",
                               str(root / "checkpoints" / row), str(root / "x.npy")], capture_output=True, text=True,
                              env=fresh_env(KERAS_BACKEND=backend), timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        saved = np.load(root / "checkpoints" / "any_backend_expected.npz")
        expected[row] = (saved["recon"], saved["centre"], None, None)
        assert not len(saved["tensorflow_imported_by_vaeviz"]), saved["tensorflow_imported_by_vaeviz"][0]
        os.remove(root / "checkpoints" / "any_backend_expected.npz")
    copy = root / "elsewhere"
    shutil.copytree(root / "checkpoints", copy / "checkpoints")
    proc = subprocess.run([sys.executable, "-m", "pipeline.render", "--views", "recon,walk", "--walk-steps", str(STEPS),
                           "-j", "1", "--import", "zoo_models"], cwd=copy, capture_output=True, text=True,
                          env=fresh_env(), timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    return copy / "outputs", expected, proc.stdout + proc.stderr


def last_frame(folder: Path) -> Path:
    """Return the frame of the last epoch: the user's model as the test holds it."""
    return sorted(folder.glob("epoch_*.png"))[-1]


ROWS = list(zoo_models.ROWS) + [f"{b}_backend" for b in OTHER_BACKENDS]


@pytest.mark.parametrize("row", ROWS)
def test_recon_is_the_users_own_decode_of_z_mean(zoo, row):
    out, expected, _ = zoo
    recon = np.asarray(Image.open(last_frame(out / row / "recon")))
    want = shown(expected[row][0])
    for i in range(len(want)):
        r, c = divmod(i, 3)  # 8 samples: a 3 x 3 grid
        assert np.abs(tile(recon, r, c) - want[i]).max() <= 1, f"{row}: sample {i}"


@pytest.mark.parametrize("row", ROWS)
def test_the_walks_centre_column_is_the_users_own_decode_of_the_anchor(zoo, row):
    out, expected, _ = zoo
    walk = np.asarray(Image.open(last_frame(out / row / "walk")))
    _, centre, conditions, decoder = expected[row]
    if conditions is None:
        for r in range(zoo_models.LATENT):
            assert np.abs(tile(walk, r, STEPS // 2, left=LABEL_WIDTH) - shown(centre)[0]).max() <= 1, row
        return
    # a conditional run: one block of rows per class, each under a 16-pixel label band
    classes = sorted(set(np.argmax(conditions, axis=1)))
    block = 16 + zoo_models.LATENT * (SIZE + 2) + 2  # pad 2
    assert walk.shape[0] == len(classes) * block
    for k, cls in enumerate(classes):
        c = np.eye(conditions.shape[1], dtype="float32")[[cls]]
        want = shown(np.asarray(decoder([np.zeros((1, zoo_models.LATENT), "float32"), c])))[0]
        got = tile(walk, 0, STEPS // 2, left=LABEL_WIDTH, top=k * block + 16)
        assert np.abs(got - want).max() <= 1, f"class {cls}"


def test_a_concatenated_encoder_output_is_assumed_with_a_warning_naming_the_override(tmp_path, shapes16):
    with pytest.warns(UserWarning, match=r"concatenated.*encoder_outputs"):
        zoo_models.train_cvae_tutorial(tmp_path / "run", shapes16[:64])
    assert run.read_run(tmp_path / "run")["encoder_form"] == "concat"


DECIDED = {"mse_linear": "values", "mse_linear_grey": "values", "logits_unstated": "logits",
           "logits_unstated_binary": "logits", "cvae_unstated_grey": "logits", "cvae_unstated_binary": "logits"}


@pytest.mark.parametrize("row", DECIDED)
def test_an_unstated_linear_decoder_is_read_the_way_that_makes_the_samples_likelier_and_said_so(zoo, row):
    _, _, log = zoo
    said = [line for line in log.splitlines() if line.startswith(f"{row}: the decoder's output layer is linear")]
    assert said and f"read as {DECIDED[row]}:" in said[0] and "decoder_output" in said[0], log
    assert "Bernoulli log-likelihood" in said[0]


def test_the_tutorials_cvae_unstated_on_grey_data_is_drawn_with_mid_tones_as_its_inputs_have(zoo):
    """The issue's case: read as clipped values, its reconstructions had 0 % mid-tones against 27 % in the inputs."""
    out, expected, _ = zoo
    recon = np.asarray(Image.open(last_frame(out / "cvae_unstated_grey" / "recon")))
    tiles = np.stack([tile(recon, *divmod(i, 3)) for i in range(8)])
    assert np.mean((tiles > 25) & (tiles < 230)) > 0.1


def test_a_run_that_logs_no_metric_says_so_in_its_report(zoo):
    out, _, _ = zoo
    assert "no metrics were logged" in (out / "jax_backend" / "index.html").read_text()


def test_new_model_shapes_write_format_version_2_and_plain_ones_version_1(zoo):
    out, _, _ = zoo
    runs = out.parent / "checkpoints"
    assert run.read_run(runs / "keras_io")["format_version"] == 1
    for row in ("cvae_tutorial", "subclassed", "conditional", "flat_mlp", "gaussian", "pydataset"):
        assert run.read_run(runs / row)["format_version"] == 2, row
