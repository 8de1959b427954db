"""`CheckpointForViz`: the only thing vaeviz puts in a training loop.

It writes a run directory (see `pipeline.run`): the architecture once, the
fixed samples once, then each scheduled epoch the encoder and decoder weights
(no optimizer state) and the epoch's logs. Rendering happens elsewhere.

In the training loop it only copies the weights to host memory; a background
thread writes the files, so an epoch costs what it cost without the callback.
"""

from __future__ import annotations

import datetime
import platform
from pathlib import Path

import keras
import numpy as np

from pipeline import atomic, run
from pipeline.background import Writer
from pipeline.data import describe_source


class CheckpointForViz(keras.callbacks.Callback):
    """Save what vaeviz needs to render a VAE's training, and nothing more.

    Args:
        run_dir: folder of the run (created). A second `fit` into the same
            folder continues its epoch numbering; a different architecture is
            refused.
        data: the training images (numpy array, h5py dataset, or path to an
            image folder) to choose the fixed samples from, or None to save
            weights only (the renderer can take samples later: `--data`).
        n_samples: how many fixed samples to keep.
        seed: seed of the sample choice.
        every: save weights every `every` epochs, or `"log"` for epochs
            1, 2, 3, 4, 5, 6, 8, 10, 13, 16, 20, ... (ten per decade). The last
            epoch of a `fit` is always saved.
        encoder, decoder: the models to save; default `model.encoder` and
            `model.decoder`. The encoder outputs `z_mean`, `[z_mean, z_log_var]`
            or `[z_mean, z_log_var, z]`.
        value_range: (lo, hi) of the images; default: inferred from the samples
            ([0, 1] or [-1, 1] when they fit, else their min and max).
        background: write the weights and history files in a background
            thread (default), so `on_epoch_end` only copies the weights to
            host memory. At most 2 writes wait; a slower disk makes training
            wait rather than memory grow. The files are all written when `fit`
            returns; a write error is raised from `fit` at the next epoch end
            (or its end). `False` writes them in `on_epoch_end`.
    """

    def __init__(self, run_dir, data=None, *, n_samples=64, seed=0, every=1,
                 encoder=None, decoder=None, value_range=None, background=True):
        super().__init__()
        self.run_dir = Path(run_dir)
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise ValueError(f"run_dir must be a folder. Received: run_dir={str(run_dir)!r}, which is a file.")
        if every != "log" and not (isinstance(every, int) and not isinstance(every, bool) and every >= 1):
            raise ValueError(f"every must be an integer >= 1 or \"log\". Received: every={every!r}.")
        if not (isinstance(n_samples, int) and n_samples >= 1):
            raise ValueError(f"n_samples must be an integer >= 1. Received: n_samples={n_samples!r}.")
        if value_range is not None and not (len(value_range) == 2 and value_range[0] < value_range[1]):
            raise ValueError(f"value_range must be (lo, hi) with lo < hi. Received: value_range={value_range!r}.")
        self.data, self.source, self._files = describe_source(data)
        if self.data is not None and n_samples > len(self.data):
            raise ValueError(f"n_samples must be at most the number of images in data ({len(self.data)}). "
                             f"Received: n_samples={n_samples}. Pass a smaller n_samples.")
        self.n_samples, self.seed, self.every = n_samples, seed, every
        self.encoder, self.decoder, self.value_range = encoder, decoder, value_range
        self._offset = None       # file epoch = keras epoch + 1 + offset (resume)
        self._last_saved = None
        self._last_seen = None
        self._writer = Writer(background=background)

    # --- hooks ------------------------------------------------------------

    def on_train_begin(self, logs=None):
        self._writer.flush()  # the writes of an earlier, failed fit come first
        if self.run_dir.is_dir():
            atomic.remove_stale_temps(self.run_dir)  # half-written files of a killed earlier process
        self._offset = self._last_saved = self._last_seen = None  # even after a failed fit
        encoder = self.encoder if self.encoder is not None else getattr(self.model, "encoder", None)
        decoder = self.decoder if self.decoder is not None else getattr(self.model, "decoder", None)
        if encoder is None or decoder is None:
            raise ValueError("CheckpointForViz needs the encoder and decoder: the model has no "
                             "`encoder`/`decoder` attribute. Pass them: "
                             "CheckpointForViz(run_dir, data, encoder=..., decoder=...).")
        self._encoder, outputs = _encoder_view(encoder)
        self._decoder = decoder
        info = {
            "encoder": _architecture(self._encoder, "encoder"),
            "decoder": _architecture(decoder, "decoder"),
            "encoder_outputs": outputs,
            "input_shape": [int(d) for d in self._encoder.input_shape[1:]],
            "latent_dim": int(decoder.input_shape[-1]),
            "signature": _signature(self._encoder, decoder),
        }
        existing = _read_existing(self.run_dir)
        if existing is not None:
            if existing.get("signature") != info["signature"]:
                raise ValueError(
                    f"run_dir `{self.run_dir}` holds a run of a different architecture "
                    f"(encoder/decoder weight shapes differ: {_first_difference(existing.get('signature'), info['signature'])}). "
                    f"Pass a new run_dir for this model.")
            existing["finished"] = False
            run.write_run(self.run_dir, existing)
            return
        samples = self._write_samples()
        run.write_run(self.run_dir, {
            **info,
            "value_range": list(self.value_range or _infer_range(samples)),
            "samples": None if samples is None else {
                "n_samples": self.n_samples, "seed": self.seed, "source": self.source,
                "n_total": len(self.data),
                "method": "numpy default_rng(seed).choice(n_total, n_samples, replace=False), sorted"},
            "seed": self.seed,
            "every": self.every,
            "versions": _versions(),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "finished": False,
        })

    def on_epoch_begin(self, epoch, logs=None):
        if self._offset is None:
            last = run.last_epoch(self.run_dir)
            self._offset = max(0, last - epoch)

    def on_epoch_end(self, epoch, logs=None):
        if self._offset is None:
            self.on_epoch_begin(epoch)
        number = epoch + 1 + self._offset
        self._last_seen = number
        logs = {k: float(v) for k, v in (logs or {}).items()}
        self._writer.submit(run.append_history, self.run_dir / run.HISTORY_CSV, number, logs)
        if run.is_scheduled(number, self.every):
            self._save(number)

    def on_train_end(self, logs=None):
        if self._last_seen is not None and self._last_saved != self._last_seen:
            self._save(self._last_seen)
        self._writer.flush()
        info = run.read_run(self.run_dir)
        info["finished"] = True
        run.write_run(self.run_dir, info)
        self._offset = None

    # --- helpers ------------------------------------------------------------

    def _save(self, epoch: int) -> None:
        # a copy, not a view: the optimizer may update a backend's host buffer in place
        # (torch on CPU) while the writer thread still holds the arrays
        parts = {"encoder": [np.array(v.numpy(), copy=True) for v in self._encoder.weights],
                 "decoder": [np.array(v.numpy(), copy=True) for v in self._decoder.weights]}
        self._writer.submit(run.write_weights, self.run_dir / run.WEIGHTS_DIR / run.checkpoint_name(epoch),
                            parts, epoch=epoch)
        self._last_saved = epoch

    def _write_samples(self):
        """Write samples.h5 and return the sample images, or None without data."""
        if self.data is None:
            return None
        indices = run.choose_indices(len(self.data), self.n_samples, self.seed)
        names = None
        if self._files is not None:
            from pipeline import data as data_mod

            h, w, c = self._encoder.input_shape[1:]
            images, names = data_mod.load_folder(self.source, [self._files[i] for i in indices])
            images = data_mod.conform(images, image_size=h if h == w else None, channels=c)
        else:
            images = np.asarray(self.data[indices])  # h5py needs increasing indices: sorted
        run.write_samples(self.run_dir / run.SAMPLES_H5, indices=indices, images=images,
                          names=names, seed=self.seed, source=self.source)
        return images


def _encoder_view(encoder):
    """Return (model to save, output names): for a functional encoder, inputs -> (z_mean, z_log_var).

    Cutting the graph there leaves out a custom sampling layer, so rendering
    never needs its code.
    """
    outputs = getattr(encoder, "outputs", None)
    if isinstance(encoder, keras.Model) and outputs:
        names = ["z_mean", "z_log_var"][:min(len(outputs), 2)]
        if len(outputs) > 3:
            raise ValueError(f"The encoder must output z_mean, [z_mean, z_log_var] or [z_mean, z_log_var, z]. "
                             f"Received {len(outputs)} outputs.")
        if len(outputs) == 1:
            return encoder, names
        # one input as a tensor, not a one-item list, so that calling the rebuilt model with
        # an array matches its saved input structure
        inputs = encoder.inputs[0] if len(encoder.inputs) == 1 else encoder.inputs
        return keras.Model(inputs, list(outputs[:2]), name=encoder.name), names
    raise ValueError(f"CheckpointForViz needs a functional or Sequential encoder (built with keras.Input), "
                     f"received a subclassed {type(encoder).__name__}, whose architecture cannot be saved "
                     f"as JSON. Build the encoder with the functional API.")


def _architecture(model, role: str) -> dict:
    if not getattr(model, "inputs", None):
        raise ValueError(f"The {role} must be a functional or Sequential model built with keras.Input. "
                         f"Received a {type(model).__name__} without inputs.")
    import json

    return json.loads(model.to_json())


def _signature(encoder, decoder) -> dict:
    """Return what must match for two runs to share checkpoints: weight shapes and I/O shapes."""
    return {"encoder": [list(v.shape) for v in encoder.weights],
            "decoder": [list(v.shape) for v in decoder.weights],
            "input_shape": [int(d) for d in encoder.input_shape[1:]],
            "latent_dim": int(decoder.input_shape[-1])}


def _first_difference(old, new) -> str:
    if not isinstance(old, dict):
        return "the existing run.json has no signature"
    for key in ("input_shape", "latent_dim", "encoder", "decoder"):
        if old.get(key) != new.get(key):
            return f"{key}: run_dir has {old.get(key)}, this model has {new.get(key)}"
    return "unknown"


def _read_existing(run_dir: Path):
    if not (run_dir / run.RUN_JSON).exists():
        return None
    return run.read_run(run_dir)


def _infer_range(samples) -> tuple[float, float]:
    if samples is None:
        return (0.0, 1.0)
    lo, hi = float(np.nanmin(samples)), float(np.nanmax(samples))
    if lo >= 0 and hi <= 1:
        return (0.0, 1.0)
    if lo >= -1 and hi <= 1:
        return (-1.0, 1.0)
    if np.issubdtype(np.asarray(samples).dtype, np.integer):
        return (0.0, float(np.iinfo(np.asarray(samples).dtype).max))
    return (lo, hi if hi > lo else lo + 1.0)


def _versions() -> dict:
    import h5py
    import tensorflow as tf

    from pipeline import __version__

    return {"vaeviz": __version__, "keras": keras.__version__, "tensorflow": tf.__version__,
            "numpy": np.__version__, "h5py": h5py.__version__, "python": platform.python_version()}
