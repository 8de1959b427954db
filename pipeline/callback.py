"""`CheckpointForViz`: the only thing vaeviz puts in a training loop.

It writes a run directory (see `pipeline.run`): the architecture once, the
fixed samples once, then each scheduled epoch the encoder and decoder weights
(no optimizer state) and the epoch's logs. Rendering happens elsewhere.

In the training loop it only copies the weights to host memory; a background
thread writes the files, so an epoch costs what it cost without the callback.
Whatever happens to those files (a full disk, a filesystem that stops
answering), training goes on: the failure is a warning and a skipped epoch.
Works with fit or a hand-written loop (keras.callbacks.CallbackList), on the
TensorFlow, JAX and PyTorch backends.
"""

from __future__ import annotations

import datetime
import platform
import threading
import warnings
from pathlib import Path

import keras
import numpy as np

from pipeline import atomic, run
from pipeline.background import Writer
from pipeline.data import choose_samples, describe_source, folder_labels
from pipeline.modelspec import DECODER_OUTPUTS, ENCODER_OUTPUTS, ENCODER_SCALES, inspect_models


HEADER, FINISH = "run.json and samples.h5", "run.json (the run finished)"
CONSEQUENCES = (  # what a failed write costs, by the start of its label
    ("the checkpoint", "that checkpoint is skipped (run.json lists it in skipped_epochs) and later epochs are "
                       "tried again"),
    ("history.csv", "its rows are kept and written with the next write that succeeds"),
    (HEADER, "it is tried again with the next checkpoint"),
    (FINISH, "it is written once the writes before it are done"),
)


def _check_choice(name: str, value, choices, *, optional: bool = True) -> None:
    if not ((optional and value is None) or value in choices):
        raise ValueError(f"{name} must be {'None or ' if optional else ''}one of {', '.join(map(repr, choices))}. "
                         f"Received: {name}={value!r}.")


class CheckpointForViz(keras.callbacks.Callback):
    """Save what vaeviz needs to render a VAE's training, and nothing more.

    Args:
        run_dir: folder of the run (created). A second `fit` into the same
            folder continues its epoch numbering; a different architecture is
            refused.
        data: the training images to choose the fixed samples from: a numpy
            array, an h5py dataset, an image folder, a keras.utils.PyDataset,
            a tf.data.Dataset or a re-iterable of batches (`x` or `(x, y)`);
            or None to save weights only (the renderer can take samples
            later: `--data`).
        n_samples: how many fixed samples to keep.
        seed: seed of the sample choice.
        every: save weights every `every` epochs, or `"log"` for epochs
            1, 2, 3, 4, 5, 6, 8, 10, 13, 16, 20, ... (ten per decade). The last
            epoch of a `fit` is always saved.
        encoder, decoder: the models to save; default `model.encoder` and
            `model.decoder`: functional, Sequential or registered subclassed
            Keras models.
        encoder_outputs: what the encoder gives: "mean", "mean_logvar",
            "mean_logvar_z", or "concat" (one tensor of z_mean then z_log_var).
            None: detected (a single output twice the decoder's input width is
            "concat", with a warning).
        encoder_scale: the encoder's second output: "logvar" (default), "logstd" or "std".
        decoder_output: "probabilities", "logits" (the renderer applies a
            sigmoid) or "gaussian" (2C channels: mean, then log-variance).
            None: probabilities, except that a decoder with a linear output
            layer on [0, 1] data is decided by the renderer.
        conditions: a conditional VAE's conditions, one row per image of
            `data` (one-hot or any vector); its encoder takes [x, c] and its
            decoder [z, c].
        labels: a class per image of `data` (int or str), for the clusters
            view. A folder of class folders labels itself.
        factors, factor_names: ground-truth generative factors per image of
            `data` (N, K), discrete or continuous, and their names, for the
            disentanglement metrics.
        n_eval: images of a second fixed, seeded set (with their labels and
            factors) that only the analyses use; default 2000 with labels or
            factors (at most the data), else 0. Stored once, as uint8 where the
            data is 8-bit.
        hparams: the training settings a comparison of runs shows (beta,
            learning rate, ...), a dict of JSON values.
        image_shape: (height, width, channels) of flattened image inputs.
        value_range: (lo, hi) of the images; default: inferred from the samples
            ([0, 1] or [-1, 1] when they fit, else their min and max).
        background: write the files in a background thread (default), so
            `on_epoch_end` only copies the weights to host memory. At most 2
            writes wait; the files are all written when `fit` returns.
            `False` writes them in `on_epoch_end`.
        on_error: "warn" (default): a failed write is a warning and a skipped
            checkpoint (listed in run.json), never the end of training; a write
            that cannot start within `write_timeout` seconds is dropped.
            "raise": the error is raised from `fit`.
        write_timeout: seconds the training thread waits, at most, on the writer.
    """

    def __init__(self, run_dir, data=None, *, n_samples=64, seed=0, every=1, encoder=None, decoder=None,
                 encoder_outputs=None, encoder_scale="logvar", decoder_output=None, conditions=None,
                 labels=None, factors=None, factor_names=None, n_eval=None, hparams=None,
                 image_shape=None, value_range=None, background=True, on_error="warn", write_timeout=60.0):
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
        _check_choice("encoder_outputs", encoder_outputs, ENCODER_OUTPUTS)
        _check_choice("encoder_scale", encoder_scale, ENCODER_SCALES, optional=False)
        _check_choice("decoder_output", decoder_output, DECODER_OUTPUTS)
        _check_choice("on_error", on_error, ("warn", "raise"), optional=False)
        self.data, conditions = data, None if conditions is None else np.asarray(conditions)
        if conditions is not None and not (isinstance(data, np.ndarray) and len(conditions) == len(data)):
            raise ValueError(f"conditions must have one row per image of data, and data must then be an array. "
                             f"Received: {len(conditions)} conditions for data of type {type(data).__name__}"
                             + (f" with {len(data)} images" if hasattr(data, "__len__") else "") + ".")
        indexable, source, files = describe_source(data)  # refuses what it cannot take, now
        if files is not None and labels is None:
            labels = folder_labels(Path(source), files)  # a folder of class folders labels itself
        if indexable is not None and n_samples > len(indexable):
            raise ValueError(f"n_samples must be at most the number of images in data ({len(indexable)}). "
                             f"Received: n_samples={n_samples}. Pass a smaller n_samples.")
        self._analysis = _analysis_set(indexable, labels, factors, factor_names, n_eval)
        # a folder is read once the encoder's input shape is known (on_train_begin)
        self._chosen = None if files is not None else choose_samples(data, n_samples=n_samples, seed=seed,
                                                                      conditions=conditions)
        self._eval = None  # the evaluation set this fit writes
        self._conditions = conditions
        self.hparams = _json_values(hparams)
        self._chosen_now = None  # the samples this fit writes (None: resumed, or none)
        self.n_samples, self.seed, self.every = n_samples, seed, every
        self.encoder, self.decoder, self.value_range = encoder, decoder, value_range
        self.model_options = {"encoder_outputs": encoder_outputs, "encoder_scale": encoder_scale,
                              "decoder_output": decoder_output, "image_shape": image_shape}
        self._writer = Writer(background=background, strict=on_error == "raise", timeout=write_timeout)
        self._lock = threading.Lock()
        self._history: dict[int, dict] = {}  # rows not yet on disk
        self._skipped: set[int] = set()
        self._info = None  # run.json as this fit writes it
        self._header_written = False
        self._offset = None       # file epoch = keras epoch + 1 + offset (resume)
        self._last_saved = self._last_seen = None
        self._logged_skips: set[str] = set()

    @property
    def saved_models(self) -> tuple:
        """Return (encoder, decoder) whose weights each checkpoint saves, once `on_train_begin` has run: the
        user's, a functional encoder cut to (z_mean, z_log_var)."""
        return self._encoder, self._decoder

    # --- hooks ------------------------------------------------------------

    def on_train_begin(self, logs=None):
        self._writer.flush()  # the writes of an earlier, failed fit come first
        self._warn_failures()
        if self.run_dir.is_dir():
            atomic.remove_stale_temps(self.run_dir)  # half-written files of a killed earlier process
        self._offset = self._last_saved = self._last_seen = None  # even after a failed fit
        encoder = self.encoder if self.encoder is not None else getattr(self.model, "encoder", None)
        decoder = self.decoder if self.decoder is not None else getattr(self.model, "decoder", None)
        if encoder is None or decoder is None:
            raise ValueError("CheckpointForViz needs the encoder and decoder: the model has no "
                             "`encoder`/`decoder` attribute. Pass them: "
                             "CheckpointForViz(run_dir, data, encoder=..., decoder=...).")
        chosen = self._chosen or choose_samples(self.data, n_samples=self.n_samples, seed=self.seed,
                                                input_shape=_declared_input_shape(encoder))
        n_eval, labels, factors, names = self._analysis
        evaluation = choose_samples(self.data, n_samples=n_eval, seed=self.seed + 1, labels=labels, factors=factors,
                                    conditions=self._conditions, input_shape=_declared_input_shape(encoder)) \
            if n_eval else None
        spec = inspect_models(encoder, decoder, probe=None if chosen is None else chosen.images,
                              conditions=None if chosen is None else chosen.conditions, **self.model_options)
        for note in spec.notes:
            warnings.warn(f"CheckpointForViz: {note}.", stacklevel=2)
        self._encoder, self._decoder = spec.encoder, spec.decoder
        info = {**spec.info, "signature": _signature(spec)}
        existing = _read_existing(self.run_dir)
        if existing is not None:
            if existing.get("signature") != info["signature"]:
                raise ValueError(
                    f"run_dir `{self.run_dir}` holds a run of a different architecture "
                    f"(encoder/decoder weight shapes differ: {_first_difference(existing.get('signature'), info['signature'])}). "
                    f"Pass a new run_dir for this model.")
            self._info, self._chosen_now, self._eval = {**existing, "finished": False}, None, None
        else:
            self._info = self._new_info(info, chosen, evaluation, names)
            self._chosen_now, self._eval = chosen, evaluation
        self._skipped = set(self._info.get("skipped_epochs", []))
        self._header_written = False
        self._writer.submit(self._write_header, label=HEADER)
        self._writer.flush()
        self._warn_failures()

    def on_epoch_begin(self, epoch, logs=None):
        if self._offset is None:
            self._offset = max(0, run.last_epoch(self.run_dir) - epoch)

    def on_epoch_end(self, epoch, logs=None):
        if self._offset is None:
            self.on_epoch_begin(epoch)
        number = epoch + 1 + self._offset
        self._last_seen = number
        with self._lock:
            self._history[number] = self._scalars(logs)
        self._writer.submit(self._write_history, label=f"history.csv (epoch {number})")
        if run.is_scheduled(number, self.every):
            self._save(number)
        self._warn_failures()

    def on_train_end(self, logs=None):
        if self._last_seen is not None and self._last_saved != self._last_seen:
            self._save(self._last_seen)
        if not self._writer.submit(self._finish, label=FINISH):  # the writer is stuck: finish once it is not
            threading.Thread(target=self._finish_later, name="vaeviz-finish", daemon=True).start()
        if not self._writer.flush():
            warnings.warn(f"CheckpointForViz: writes to `{self.run_dir}` still pending after "
                          f"{self._writer.timeout:g} s (a filesystem that stopped answering?); they go on in the "
                          f"background and the run is not marked finished until they are done.", stacklevel=2)
        self._warn_failures()
        self._offset = None

    # --- the writes (in the writer thread) -----------------------------------

    def _finish_later(self) -> None:
        self._writer.flush(float("inf"))
        self._writer.submit(self._finish, label=FINISH)
        self._writer.flush(float("inf"))

    def _write_header(self) -> None:
        """Write samples.h5 (a new run) and run.json, unless written already; later writes retry it."""
        if self._header_written:
            return
        chosen, evaluation = self._chosen_now, self._eval
        if chosen is not None and not (self.run_dir / run.SAMPLES_H5).is_file():
            run.write_samples(self.run_dir / run.SAMPLES_H5, indices=chosen.indices, images=chosen.images,
                              names=chosen.names, conditions=chosen.conditions, seed=self.seed,
                              source=chosen.source)
        if evaluation is not None and not (self.run_dir / run.EVAL_H5).is_file():
            run.write_eval(self.run_dir / run.EVAL_H5, indices=evaluation.indices, images=evaluation.images,
                           labels=evaluation.labels, factors=evaluation.factors,
                           factor_names=self._info["eval"]["factor_names"], conditions=evaluation.conditions,
                           seed=self.seed + 1)
        run.write_run(self.run_dir, self._info)
        self._header_written = True

    def _write_history(self) -> None:
        with self._lock:
            rows = dict(self._history)
        run.add_history(self.run_dir / run.HISTORY_CSV, rows)
        with self._lock:
            for epoch, row in rows.items():
                if self._history.get(epoch) is row:
                    del self._history[epoch]

    def _write_checkpoint(self, epoch: int, parts: dict) -> None:
        try:
            self._write_header()
            run.write_weights(self.run_dir / run.WEIGHTS_DIR / run.checkpoint_name(epoch), parts, epoch=epoch)
        except Exception:
            self._skipped.add(epoch)
            raise
        self._skipped.discard(epoch)

    def _finish(self) -> None:
        self._write_header()
        self._info = {**self._info, "finished": True, "skipped_epochs": sorted(self._skipped)}
        if not self._info["skipped_epochs"]:
            del self._info["skipped_epochs"]
        run.write_run(self.run_dir, self._info)

    # --- helpers ------------------------------------------------------------

    def _new_info(self, info: dict, chosen, evaluation, factor_names) -> dict:
        images = None if chosen is None else chosen.images
        return {**info, "hparams": self.hparams,
                "eval": None if evaluation is None else {
                    "n_eval": len(evaluation.indices), "seed": self.seed + 1, "method": evaluation.method,
                    "labels": evaluation.labels is not None,
                    "factor_names": None if evaluation.factors is None else factor_names},
                "value_range": list(self.value_range or _infer_range(images)),
                "samples": None if chosen is None else {
                    "n_samples": self.n_samples, "seed": self.seed, "source": chosen.source,
                    "n_total": chosen.n_total, "method": chosen.method},
                "stream": None if chosen is None or chosen.n_total is not None else chosen.source,
                "seed": self.seed, "every": self.every, "versions": _versions(),
                "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "finished": False}

    def _scalars(self, logs) -> dict:
        """Return the logs that are scalars, as floats; warn once per key about the others."""
        out = {}
        for key, value in (logs or {}).items():
            try:
                out[key] = float(value)  # numpy, TensorFlow, JAX and torch scalars alike
            except (TypeError, ValueError):
                if key not in self._logged_skips:
                    self._logged_skips.add(key)
                    warnings.warn(f"CheckpointForViz: logs[{key!r}] is not a scalar "
                                  f"({type(value).__name__}); it is left out of history.csv.", stacklevel=3)
        return out

    def _save(self, epoch: int) -> None:
        # a copy, not a view: the optimizer may update a backend's host buffer in place
        # (torch on CPU) while the writer thread still holds the arrays
        parts = {"encoder": [np.array(v.numpy(), copy=True) for v in self._encoder.weights],
                 "decoder": [np.array(v.numpy(), copy=True) for v in self._decoder.weights]}
        if not self._writer.submit(self._write_checkpoint, epoch, parts, label=f"the checkpoint of epoch {epoch}"):
            self._skipped.add(epoch)
        self._last_saved = epoch

    def _warn_failures(self) -> None:
        for label, err in self._writer.failures():
            then = next(consequence for start, consequence in CONSEQUENCES if label.startswith(start))
            warnings.warn(f"CheckpointForViz could not write {label} to `{self.run_dir}` "
                          f"({type(err).__name__}: {err}). Training goes on; {then}.", stacklevel=3)


def _analysis_set(indexable, labels, factors, factor_names, n_eval) -> tuple:
    """Return (n_eval, labels, factors, factor_names) checked against the data, or raise naming what is wrong."""
    n = None if indexable is None else len(indexable)
    for name, values in (("labels", labels), ("factors", factors)):
        if values is not None and (n is None or len(values) != n):
            raise ValueError(f"{name} must have one entry per image of data, and data must then be an array, an "
                             f"h5py dataset or a folder. Received: {len(values)} {name} for "
                             + ("a stream" if n is None else f"{n} images") + ".")
    if factors is not None:
        factors = np.asarray(factors)
        factors = factors[:, None] if factors.ndim == 1 else factors
        factor_names = list(factor_names or [f"factor{k}" for k in range(factors.shape[1])])
        if len(factor_names) != factors.shape[1]:
            raise ValueError(f"factor_names must name each of the {factors.shape[1]} factors. "
                             f"Received: factor_names={factor_names!r}.")
    if n_eval is None:
        n_eval = min(2000, n) if (labels is not None or factors is not None) and n else 0
    if not (isinstance(n_eval, int) and 0 <= n_eval <= (n or 0)):
        raise ValueError(f"n_eval must be an integer from 0 to the number of images in data ({n or 0}). "
                         f"Received: n_eval={n_eval!r}.")
    return n_eval, labels, factors, factor_names


def _json_values(hparams) -> dict | None:
    if hparams is None:
        return None
    import json

    try:
        return json.loads(json.dumps(dict(hparams)))
    except (TypeError, ValueError) as err:
        raise ValueError(f"hparams must be a dict of JSON values (numbers, strings, lists). Received: "
                         f"{hparams!r} ({err}).") from None


def _declared_input_shape(encoder):
    try:
        return tuple(encoder.inputs[0].shape[1:])
    except (AttributeError, ValueError, IndexError, TypeError):
        return None


def _signature(spec) -> dict:
    """Return what must match for two runs to share checkpoints: weight shapes and I/O shapes."""
    return {"encoder": [list(v.shape) for v in spec.encoder.weights],
            "decoder": [list(v.shape) for v in spec.decoder.weights],
            "input_shape": spec.info["input_shape"], "latent_dim": spec.info["latent_dim"]}


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
    """Return the library versions (from package metadata: no backend is imported for them)."""
    from importlib import metadata

    from pipeline import __version__

    found = {"vaeviz": __version__, "python": platform.python_version(), "keras_backend": keras.backend.backend()}
    for package in ("keras", "tensorflow", "jax", "torch", "numpy", "h5py"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return found
