"""The rebuilt models: compiled calls (predict_on_batch) read the checkpoint loaded last and give an eager
call's outputs, on TensorFlow and on Keras' JAX backend."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from pipeline import run
from pipeline.models import Models

TESTS = Path(__file__).parent
PROBE = "import json, sys, test_models; print(json.dumps(test_models.calls(sys.argv[1], as_lists=True)))"


def calls(run_dir, *, as_lists: bool = False) -> dict:
    """Return {epoch: {"compiled": [z_mean, z_log_var, decoded], "eager": [...]}} of the last checkpoint, then
    the first (the render's order: the last is drawn first), from one Models in this process."""
    models = Models(run.read_run(run_dir))
    images = run.read_samples(Path(run_dir) / run.SAMPLES_H5)["images"]
    codes = np.random.default_rng(0).normal(size=(7, models.latent_dim)).astype("float32")
    checkpoints = run.list_checkpoints(run_dir)
    found = {}
    for ckpt in (checkpoints[-1], checkpoints[0]):
        models.load(ckpt.path)
        eager = [*models.encode(images, compiled=False), models.decode_raw(codes, compiled=False)]
        found[ckpt.epoch] = {"compiled": [*models.encode(images), models.decode_raw(codes)], "eager": eager}
        # the user's own model, called eagerly, decodes the same
        np.testing.assert_allclose(found[ckpt.epoch]["compiled"][2],
                                   np.asarray(models.decoder(codes, training=False)), rtol=1e-5, atol=1e-6)
    if as_lists:
        return {epoch: {how: [a.tolist() for a in arrays] for how, arrays in v.items()} for epoch, v in found.items()}
    return found


def _calls(run_dir: Path, **env) -> dict:
    """Return `calls(run_dir)` from a fresh process with `env`."""
    path = os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-c", PROBE, str(run_dir)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": path, **env})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {int(k): {how: [np.asarray(a) for a in arrays] for how, arrays in v.items()}
            for k, v in json.loads(proc.stdout.strip().splitlines()[-1]).items()}


def _check(found: dict, first: int, last: int) -> None:
    for epoch in (first, last):
        for compiled, eager in zip(found[epoch]["compiled"], found[epoch]["eager"]):
            np.testing.assert_allclose(compiled, eager, rtol=1e-5, atol=1e-6)
    # the first checkpoint's pictures are its own, not those of the checkpoint traced first
    assert np.abs(found[first]["compiled"][2] - found[last]["compiled"][2]).max() > 1e-3


def test_compiled_calls_follow_the_loaded_checkpoint_and_equal_eager_calls(tiny_run):
    checkpoints = run.list_checkpoints(tiny_run.run_dir)
    _check(calls(tiny_run.run_dir), checkpoints[0].epoch, checkpoints[-1].epoch)


def test_compiled_calls_on_the_jax_backend_follow_the_loaded_checkpoint(tiny_run):
    found = _calls(tiny_run.run_dir, KERAS_BACKEND="jax")
    checkpoints = run.list_checkpoints(tiny_run.run_dir)
    _check(found, checkpoints[0].epoch, checkpoints[-1].epoch)
