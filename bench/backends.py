"""Section 6: CheckpointForViz's in-loop cost per epoch on each Keras backend, beside Keras' ModelCheckpoint.

Each backend trains in a fresh process (KERAS_BACKEND is read once, at import):

    KERAS_BACKEND=jax .venv/bin/python bench/backends.py --size 64 --epochs 4 --rounds 2   # prints JSON

The model is the reference ImageVAE's encoder and decoder with the loss in a
`compute_loss` override, so one model trains on every backend.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from util import Section, Table, interleaved, ms, s, summary

CONFIGS = ["no callback", "ModelCheckpoint", "CheckpointForViz"]


def train(size: int, latent_dim: int, filters: int, images: int, epochs: int, rounds: int) -> dict:
    """Return {config: {"epoch": [s], "hook": [s per on_epoch_end]}} for this process's backend."""
    import keras
    from keras import ops

    from pipeline.callback import CheckpointForViz
    from pipeline.data import shapes
    from pipeline.model import build_decoder, build_encoder
    from training import time_hooks

    class VAE(keras.Model):
        def __init__(self):
            super().__init__()
            self.encoder = build_encoder(size, 1, latent_dim, filters)
            self.decoder = build_decoder(size, 1, latent_dim, filters)
            self.seed = keras.random.SeedGenerator(0)

        def call(self, x, training=False):
            z_mean, z_log_var = self.encoder(x)
            z = z_mean + ops.exp(0.5 * z_log_var) * keras.random.normal(ops.shape(z_mean), seed=self.seed)
            return self.decoder(z), z_mean, z_log_var

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            x_hat, z_mean, z_log_var = y_pred
            recon = ops.mean(ops.sum(keras.losses.binary_crossentropy(x, x_hat), axis=(1, 2)))
            return recon + ops.mean(ops.sum(-0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var)), axis=1))

    x, _ = shapes(images, size=size)
    keras.utils.set_random_seed(0)
    model = VAE()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(x, epochs=1, batch_size=64, verbose=0)  # compile and trace once
    found = {c: {"epoch": [], "hook": []} for c in CONFIGS}
    with tempfile.TemporaryDirectory() as tmp:
        for i, config in enumerate(interleaved(CONFIGS, rounds)):
            folder = Path(tmp) / f"{i:02d}"
            callback = None if config == CONFIGS[0] else time_hooks(
                keras.callbacks.ModelCheckpoint(str(folder / "e{epoch:04d}.weights.h5"), save_weights_only=True)
                if config == "ModelCheckpoint" else CheckpointForViz(folder, x))
            started = time.perf_counter()
            model.fit(x, epochs=epochs, batch_size=64, verbose=0, callbacks=[callback] if callback else [])
            found[config]["epoch"].append((time.perf_counter() - started) / epochs)
            if callback is not None:
                found[config]["hook"] += callback.hook_seconds["on_epoch_end"][1:]
    return found


def section(p: dict, log) -> Section:
    """Train in one fresh process per backend; return the section's table."""
    out = Section("6. In-loop cost per epoch on each Keras backend")
    table = Table(["backend", "epoch, no callback (min)", "ModelCheckpoint in on_epoch_end (median)",
                   "CheckpointForViz in on_epoch_end (median)", "CheckpointForViz / ModelCheckpoint"])
    size, epochs = p["size"], max(3, p["epochs"] // 2)
    for backend in ("tensorflow", "jax"):
        args = [sys.executable, str(Path(__file__)), "--size", str(size), "--latent-dim", str(p["latent_dim"]),
                "--filters", str(p["filters"]), "--images", str(p["images"] // 2), "--epochs", str(epochs),
                "--rounds", str(p["rounds"])]
        proc = subprocess.run(args, capture_output=True, text=True, env={**os.environ, "KERAS_BACKEND": backend,
                                                                         "TF_CPP_MIN_LOG_LEVEL": "3"})
        if proc.returncode != 0:
            out.notes.append(f"{backend}: failed ({proc.stderr.strip().splitlines()[-1] if proc.stderr else '?'})")
            continue
        found = json.loads(proc.stdout.strip().splitlines()[-1])
        ours, theirs = summary(found["CheckpointForViz"]["hook"]), summary(found["ModelCheckpoint"]["hook"])
        table.add(backend, s(summary(found["no callback"]["epoch"])["min"]), ms(theirs["median"]),
                  ms(ours["median"]), f"{ours['median'] / theirs['median']:.2f}")
        log(f"  {backend}: CheckpointForViz {ms(ours['median'])} vs ModelCheckpoint {ms(theirs['median'])}")
    out.tables.append((f"The reference encoder and decoder ({size}x{size}, latent {p['latent_dim']}, "
                       f"{p['images'] // 2} images, batch 64) with the loss in compute_loss, {epochs} epochs "
                       f"per fit, {p['rounds']} interleaved rounds per backend, each backend in a fresh process; "
                       f"hook times exclude each fit's first epoch", table))
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in (("size", 64), ("latent-dim", 10), ("filters", 16), ("images", 2048), ("epochs", 4),
                          ("rounds", 2)):
        parser.add_argument(f"--{name}", type=int, default=default)
    a = parser.parse_args()
    print(json.dumps(train(a.size, a.latent_dim, a.filters, a.images, a.epochs, a.rounds)))
