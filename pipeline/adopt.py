"""Adopt checkpoints written without vaeviz: the user's model loaded from each file, copied into a run directory.

    python -m pipeline.adopt runs/vae --model my_models:build_vae --run checkpoints/vae --data x_train.npy

The model comes from a `.keras` file (any whole-model save holds the architecture) or `module:function`, the
user's own code, imported because they named it. Each checkpoint (see `pipeline.sources`) is loaded into it with
Keras or `tf.train`, checked (every encoder and decoder variable really loaded), and its encoder and decoder
weights are written as the run's `weights/epoch_NNNN.weights.h5`, with no optimizer state and the file it came
from in its attributes. run.json and the samples are what `CheckpointForViz` writes for the same model and
options, so the run renders like any other. The source is only read.
"""

from __future__ import annotations

import csv
import datetime
import importlib
import io
import re
import time
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

if __name__ == "__main__":  # before click and Keras: say what to install where the render extra is missing
    from pipeline.startup import require_render

    require_render()

import click
import numpy as np

from pipeline import run, sources
from pipeline.modelspec import DECODER_OUTPUTS, ENCODER_OUTPUTS, ENCODER_SCALES
from pipeline.sources import BACKUP, KERAS, TF_CHECKPOINT, Found, SourceError

__all__ = ["AdoptError", "CheckpointFileError", "Summary", "adopt", "build_model", "Loader"]

STATED = ("encoder_outputs", "encoder_scale", "decoder_output", "image_shape", "value_range", "conditions",
          "labels", "factors", "factor_names", "n_eval", "hparams")  # what CheckpointForViz lets a user state
_BOOKKEEPING = {"optimizer", "save_counter", *sources.TF_EPOCH_VARIABLES}  # tf.train.Checkpoint's non-model objects
# A value no trained weight holds in every entry: a variable still all of it after a load was not loaded.
_UNLOADED = np.float32(-1.2345679e-29)


class AdoptError(ValueError):
    """The adoption cannot start or go on: a model that cannot be built, a source of no checkpoints, two for
    one epoch. The message says what was expected, what was received and what to do."""


class CheckpointFileError(Exception):
    """One checkpoint file cannot be adopted; the others still are."""


@dataclass
class Summary:
    """What an adoption did: epochs adopted now, epochs already adopted from the same bytes, files that failed
    (with why) and files whose name gives no epoch."""

    run_dir: Path
    adopted: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    unnumbered: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0  # all of it, Keras' start-up included
    copy_seconds: float | None = None  # loading and writing the checkpoints (not with --follow)

    def line(self) -> str:
        """Return the one-line summary the CLI prints."""
        n = len(self.adopted)
        each = f" ({self.copy_seconds / n:.2f} s a checkpoint)" if n and self.copy_seconds is not None else ""
        parts = [f"adopted {n} checkpoint{'s' * (n != 1)} into {self.run_dir} in {self.seconds:.1f} s{each}"]
        if self.unchanged:
            parts.append(f"{len(self.unchanged)} already adopted")
        if self.failed or self.unnumbered:
            parts.append(f"{len(self.failed) + len(self.unnumbered)} skipped (named above)")
        return "; ".join(parts) + (f". Render it: python -m pipeline.render {self.run_dir}"
                                   if self.adopted or self.unchanged else ": nothing to render")


def as_adopt_options(message: str) -> str:
    """Return a CheckpointForViz message with its arguments named as the adopt options that state them."""
    message = re.sub(r"CheckpointForViz\((?:run_dir, )?(?:data, )?(?:\.\.\., )?((?:[^()]|\([^()]*\))*)\)", r"\1",
                     message)
    names = "|".join(STATED + ("n_samples", "data", "encoder", "decoder"))

    def option(m):
        value = m.group(2).strip("()").replace(" ", "") if m.group(2) else ""
        return f"--{m.group(1).replace('_', '-')}{' ' + value if value else ' '}"

    message = re.sub(rf"\b({names})=(\([^()]*\))?", option, message)
    for said, option_said in _PHRASES:
        message = message.replace(said, option_said)
    return message.replace("CheckpointForViz", "adopt")


_PHRASES = (("pass data (or image_shape) to CheckpointForViz", "pass --data (or --image-shape)"),
            ("a smaller n_samples", "a smaller --n-samples"), ("Drop conditions", "Drop --conditions"))


# --- the user's model --------------------------------------------------------------------------------------


def build_model(spec: str, *, imports=(), safe_mode: bool = True):
    """Return the user's Keras model: loaded from a `.keras` file, or built by `module:function` (called with no
    arguments). `imports` are imported first (modules that register custom classes)."""
    from pipeline.startup import import_keras

    keras = import_keras()
    for module in imports:
        _import(module, "--import")
    if str(spec).endswith(".keras"):
        path = Path(spec)
        if not path.is_file():
            raise AdoptError(f"--model `{spec}` does not exist. Pass a .keras file of the model (any whole-model "
                             f"save of the run holds its architecture) or `module:function` that builds it.")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a compiled model's optimizer state, not loaded: harmless
                return keras.saving.load_model(path, compile=False, safe_mode=safe_mode)
        except zipfile.BadZipFile as err:
            raise AdoptError(f"--model `{spec}` is not a complete .keras archive ({err}).") from err
        except Exception as err:  # Keras raises TypeError, ValueError and more for a class it cannot find
            raise AdoptError(f"--model `{spec}` cannot be loaded ({type(err).__name__}: {err}). If it uses "
                             f"custom classes (a subclassed model, a Sampling layer), pass --import MODULE, the "
                             f"module that defines and registers them (@keras.saving."
                             f"register_keras_serializable()); a Lambda layer needs --unsafe (trusted files "
                             f"only).") from err
    module, sep, function = str(spec).partition(":")
    if not sep or not module or not function.isidentifier():
        raise AdoptError(f"--model must be a .keras file or `module:function`. Received: `{spec}`.")
    built = getattr(_import(module, "--model"), function, None)
    if not callable(built):
        raise AdoptError(f"--model `{spec}`: `{module}` has no function `{function}`.")
    model = built()
    if not isinstance(model, keras.Model):
        raise AdoptError(f"--model `{spec}` returned a {type(model).__name__}, not a keras.Model.")
    return model


def _import(module: str, option: str):
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise AdoptError(f"{option}: cannot import `{module}` ({err}). Pass a module importable here (on "
                         f"PYTHONPATH, or run from its folder).") from err


def model_part(model, name: str, role: str):
    """Return the model's encoder or decoder: the attribute `name` (dotted for nested ones), else its layer `name`."""
    part = model
    for attr in name.split("."):
        part = getattr(part, attr, None)
    if part is None:
        try:
            part = model.get_layer(name)
        except ValueError:
            names = [layer.name for layer in getattr(model, "layers", [])]
            raise AdoptError(f"The model has no {role} `{name}`: no attribute or layer of that name (its layers: "
                             f"{', '.join(names) or 'none'}). Name it: --{role} ATTRIBUTE_OR_LAYER.") from None
    return part


def ensure_built(model, encoder) -> None:
    """Build a model Keras cannot load weights into yet, by calling it once on zeros shaped as the encoder's input."""
    from pipeline.callback import _declared_input_shape

    if model.built:
        return
    try:
        model(np.zeros((1, *_declared_input_shape(encoder)), np.float32))
    except Exception as err:  # no call(), no declared input shape (None)
        raise AdoptError(f"The model is not built, so Keras cannot load weights into it, and calling it on zeros "
                         f"failed ({type(err).__name__}: {err}). Build it where it is made: call it on a batch "
                         f"(model(x[:1])) or model.build(input_shape), as training must have before saving.") from err


# --- loading one checkpoint -----------------------------------------------------------------------------------


class Loader:
    """The user's model, loaded a checkpoint at a time; returns the encoder and decoder weights each one holds."""

    def __init__(self, model, encoder, decoder):
        self.model, self.encoder, self.decoder = model, encoder, decoder
        self.variables = [v for part in (encoder, decoder) for v in part.weights
                          if np.dtype(v.dtype).kind == "f" and int(np.prod(v.shape))]
        self._tf_key = None
        self._reference = None  # the model's own .weights.h5 layout, made when a file does not fit

    def load(self, found: Found) -> dict[str, list[np.ndarray]]:
        """Return {"encoder": [...], "decoder": [...]} of `found`, or raise CheckpointFileError saying why."""
        for v in self.variables:
            v.assign(np.full(v.shape, _UNLOADED, v.dtype))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # what Keras skips is found below, by the variables left unloaded
                if found.format == TF_CHECKPOINT:
                    self._restore(found)
                else:
                    self.model.load_weights(str(found.path))
        except CheckpointFileError:
            raise
        except Exception as err:  # h5py, zipfile, Keras and TensorFlow each raise their own
            raise CheckpointFileError(self._why(found, err)) from err
        unloaded = self._unloaded()
        if unloaded:
            raise CheckpointFileError(self._why(found, None, unloaded))
        return {"encoder": [np.array(v.numpy()) for v in self.encoder.weights],
                "decoder": [np.array(v.numpy()) for v in self.decoder.weights]}

    def _unloaded(self) -> list[str]:
        return [v.path for v in self.variables if np.all(np.asarray(v.numpy()) == _UNLOADED)]

    def _restore(self, found: Found) -> None:
        """Restore a tf.train checkpoint through the root object that holds the model (tried in turn, once)."""
        import tensorflow as tf
        from tensorflow.core.protobuf import trackable_object_graph_pb2

        graph = trackable_object_graph_pb2.TrackableObjectGraph()
        graph.ParseFromString(tf.train.load_checkpoint(str(found.path)).get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
        names = [child.local_name for child in graph.nodes[0].children]
        keys = [n for n in names if n not in _BOOKKEEPING]
        if not keys:
            raise CheckpointFileError(f"{found.path.name}: holds only optimizer state and counters "
                                      f"({', '.join(names)}), no model weights. Save the model with it: "
                                      f"tf.train.Checkpoint(model=model, optimizer=optimizer).")
        for key in sorted(keys, key=lambda k: k != self._tf_key):  # the key that worked last, first
            tf.train.Checkpoint(**{key: self.model}).restore(str(found.path)).expect_partial()
            if not self._unloaded():
                self._tf_key = key
                return

    def _why(self, found: Found, err: Exception | None, unloaded=()) -> str:
        """Return why `found` did not load: damaged, optimizer-only, or (with the layer and shapes) another model's."""
        name = found.path.name
        if isinstance(err, zipfile.BadZipFile) or (isinstance(err, OSError) and "truncated" in str(err)):
            return (f"{name}: truncated or damaged ({type(err).__name__}: {err}): the file is incomplete (a copy cut "
                    f"short, or still being written). Copy it again, or adopt with --follow while training writes it")
        if isinstance(err, OSError):
            return f"{name}: not a readable checkpoint ({err})"
        layout = _layout(found) if found.format not in (TF_CHECKPOINT, sources.LEGACY_H5) else None
        if layout is not None and layout and all(p.startswith("optimizer/") for p in layout):
            return (f"{name}: holds only optimizer state, no model weights: nothing to render. Save the model's "
                    f"weights (ModelCheckpoint(save_weights_only=True) saves them with the optimizer's)")
        differences = self._differences(layout) if layout is not None else []
        if differences:
            return (f"{name}: its weights do not fit the model (a checkpoint of another architecture?): "
                    + "; ".join(differences[:3]) + (f"; and {len(differences) - 3} more" if len(differences) > 3
                                                    else ""))
        legacy = (" A Keras 2 .h5 file loads into Keras 3 only where Keras 3 reads it: the weights of functional and "
                  "Sequential models, layer by layer; save .weights.h5 files (ModelCheckpoint(save_weights_only="
                  "True)) for other models") if found.format == sources.LEGACY_H5 else ""
        if err is not None:
            return f"{name}: does not load into the model ({type(err).__name__}: {str(err).strip()[:600]}).{legacy}"
        return (f"{name}: loaded, but left {len(unloaded)} of the encoder's and decoder's variables unset "
                f"({', '.join(unloaded[:4])}{', ...' if len(unloaded) > 4 else ''}): it is not a checkpoint of "
                f"this model (another architecture, or the model saved under another name).{legacy}")

    def _differences(self, layout: dict) -> list[str]:
        """Return where a file's weight arrays differ from the model's own (Keras' .weights.h5 paths and shapes)."""
        if self._reference is None:
            import tempfile

            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / "model.weights.h5"
                self.model.save_weights(path)
                self._reference = _h5_layout(path)
        out = []
        for path, shape in self._reference.items():
            if path.startswith("optimizer/"):
                continue
            if path not in layout:
                out.append(f"the file has no `{path}` (the model's is {shape})")
            elif layout[path] != shape:
                out.append(f"`{path}` is {layout[path]} in the file, {shape} in the model")
        return out


def _h5_layout(source) -> dict[str, tuple]:
    import h5py

    found = {}
    with h5py.File(source, "r") as f:
        f.visititems(lambda name, obj: found.__setitem__(name, tuple(obj.shape))
                     if isinstance(obj, h5py.Dataset) else None)
    return found


def _layout(found: Found) -> dict[str, tuple] | None:
    """Return {dataset path: shape} of a Keras weights file or archive's weights; None where unreadable."""
    try:
        if found.format == KERAS:
            with zipfile.ZipFile(found.path) as archive:
                return _h5_layout(io.BytesIO(archive.read("model.weights.h5")))
        return _h5_layout(found.path)
    except (OSError, KeyError, zipfile.BadZipFile):
        return None


# --- the run directory ----------------------------------------------------------------------------------------


def _samples(data, encoder) -> tuple:
    """Return (images shaped as the encoder takes them, labels, factors, factor names) of --data, or Nones."""
    if data is None:
        return None, None, None, None
    from pipeline import data as data_mod

    from pipeline.callback import _declared_input_shape

    shape = _declared_input_shape(encoder)  # None for a subclassed encoder: the images as they are
    square = shape is not None and len(shape) == 3 and shape[0] == shape[1]
    loaded = data_mod.load(data, image_size=shape[0] if square else None, channels=shape[2] if square else None)
    images = loaded.images
    if shape is not None and len(shape) == 1 and images[0].size == shape[0]:
        images = images.reshape(len(images), *shape)  # flattened images, as the MLP VAE is fed
    return images, loaded.labels, loaded.factors, loaded.factor_names


def begin_run(run_dir: Path, encoder, decoder, *, data=None, n_samples: int = 64, seed: int = 0, note=print,
              **stated):
    """Write run.json and the samples for the user's encoder and decoder, as CheckpointForViz would for
    training; return the callback, whose `saved_models` are what each checkpoint copies."""
    from pipeline.callback import CheckpointForViz
    from pipeline.modelspec import ModelError

    images, labels, factors, names = _samples(data, encoder)
    if images is not None:
        stated = {"labels": labels, "factors": factors, "factor_names": names,
                  **{k: v for k, v in stated.items() if v is not None}}
    if images is not None and n_samples > len(images):
        n_samples = len(images)
        note(f"--data has {n_samples} images: all of them are the fixed samples")
    try:
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            callback = CheckpointForViz(run_dir, images, n_samples=n_samples, seed=seed, encoder=encoder,
                                        decoder=decoder, background=False, on_error="raise", **stated)
            callback.on_train_begin()
    except (ModelError, ValueError) as err:
        raise AdoptError(as_adopt_options(str(err))) from err
    for warning in said:
        if str(warning.message).startswith("CheckpointForViz: "):
            note(as_adopt_options(str(warning.message)[len("CheckpointForViz: "):]))
    return callback


def read_csv_logger(path: Path) -> dict[int, dict]:
    """Return {epoch from 1: {name: value}} of a keras.callbacks.CSVLogger file (it numbers epochs from 0)."""
    rows = {}
    try:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                try:
                    epoch = int(row.pop("epoch")) + 1
                except (KeyError, TypeError, ValueError):
                    raise AdoptError(f"--history `{path}` is not a CSVLogger file: expected an `epoch` column of "
                                     f"whole numbers, received columns {list(row)}.") from None
                values = {}
                for k, v in row.items():
                    try:
                        values[k] = float(v)
                    except (TypeError, ValueError):
                        pass  # an empty or non-numeric cell costs that value, not the row
                rows[epoch] = values
    except OSError as err:
        raise AdoptError(f"--history `{path}` cannot be read ({err}).") from err
    return rows


def _adopted(run_dir: Path) -> dict[int, dict | None]:
    """Return {epoch: the origin it records} of the run's checkpoints (None: not adopted, e.g. written in training)."""
    return {c.epoch: run.read_origin(c.path) for c in run.list_checkpoints(run_dir)}


def same_bytes(origin: dict | None, stamp: dict) -> bool:
    """Return whether an adopted checkpoint's origin is the file of `stamp` (path, format, size, mtime) as it is."""
    return origin is not None and all(origin.get(k) == v for k, v in stamp.items())


def adopt_one(found: Found, loader: Loader, run_dir: Path, summary: Summary, done: dict) -> None:
    """Adopt one checkpoint unless the run has it from the same bytes; a failure is recorded, never raised."""
    stamp = found.stamp()
    if same_bytes(done.get(found.epoch), stamp):
        summary.unchanged.append(found.epoch)
        return
    try:
        parts = loader.load(found)
        origin = {**stamp, **({"epoch_from": found.how} if found.how else {})}
        run.write_weights(run_dir / run.WEIGHTS_DIR / run.checkpoint_name(found.epoch), parts, epoch=found.epoch,
                          origin=origin)
    except CheckpointFileError as err:
        summary.failed[str(found.path)] = str(err)
        return
    done[found.epoch] = origin
    summary.adopted.append(found.epoch)


def finish_run(run_dir: Path, record: dict, *, finished: bool) -> None:
    """Write run.json with the adoption's record (sources, model, when) and the finished flag."""
    info = run.read_run(run_dir)
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    run.write_run(run_dir, {**info, "adopted": {**record, "at": stamp}, "finished": finished})


def _listing(paths, epoch_pattern, *, waiting: bool) -> sources.Listing:
    try:
        return sources.find(paths, epoch_pattern=epoch_pattern)
    except SourceError as err:
        if waiting and ("does not exist" in str(err) or str(err).startswith("No checkpoints")):
            return sources.Listing()  # --follow: training has not written its first file yet
        raise AdoptError(str(err)) from err


def adopt(source, *, model: str, run_dir, data=None, history=None, encoder: str = "encoder",
          decoder: str = "decoder", epoch_pattern: str | None = None, n_samples: int = 64, seed: int = 0,
          imports=(), safe_mode: bool = True, follow: bool = False, poll: float = 2.0, idle_timeout: float = 600.0,
          note=lambda msg: None, progress=None, sleep=time.sleep, **stated) -> Summary:
    """Turn existing checkpoints into a run directory that `pipeline.render` renders; return a Summary.

    source : a folder, a glob, a file or a TensorFlow prefix, or a list of them (see `pipeline.sources`).
    model : a `.keras` file or `module:function`; encoder, decoder: its attributes or layers.
    stated : what CheckpointForViz lets a user state (`STATED`), e.g. decoder_output="logits".
    follow : keep adopting files as training writes them (each once its size is unchanged for one poll)
    until `idle_timeout` seconds pass without one. Raises AdoptError where nothing can be adopted.
    """
    started, paths = time.perf_counter(), [str(s) for s in ([source] if isinstance(source, (str, Path)) else source)]
    run_dir = Path(run_dir)
    listing = _listing(paths, epoch_pattern, waiting=follow)
    from pipeline.quiet import quietly

    with quietly():  # TensorFlow's start-up lines (CUDA probing at the first op) stay off the terminal
        user = build_model(model, imports=imports, safe_mode=safe_mode)
        enc, dec = model_part(user, encoder, "encoder"), model_part(user, decoder, "decoder")
        ensure_built(user, enc)
    callback = begin_run(run_dir, enc, dec, data=data, n_samples=n_samples, seed=seed, note=note, **stated)
    loader, summary, done = Loader(user, *callback.saved_models), Summary(run_dir), _adopted(run_dir)
    record = {"source": paths, "model": str(model), "encoder": encoder, "decoder": decoder}
    finish_run(run_dir, record, finished=False)
    if history is not None:
        run.add_history(run_dir / run.HISTORY_CSV, read_csv_logger(Path(history)))
    try:
        if follow:
            _follow(paths, epoch_pattern, loader, summary, done, poll=poll, idle_timeout=idle_timeout, note=note,
                    sleep=sleep, history=history)
        else:
            summary.unnumbered = {str(p): why for p, why in listing.unnumbered.items()}
            loop = time.perf_counter()
            for i, found in enumerate(listing.found.values()):
                adopt_one(found, loader, run_dir, summary, done)
                if progress is not None:
                    progress(i + 1, len(listing.found))
            summary.copy_seconds = time.perf_counter() - loop
    finally:
        finish_run(run_dir, record, finished=True)
        summary.seconds = time.perf_counter() - started
    return summary


def _follow(paths, epoch_pattern, loader: Loader, summary: Summary, done: dict, *, poll: float,
            idle_timeout: float, note, sleep, history) -> None:
    """Adopt each checkpoint as it appears, once its stamp (size, mtime) is unchanged for one poll; stop after
    `idle_timeout` seconds without a new or changed file."""
    seen, failed, last_new, history_stamp = {}, {}, time.monotonic(), None
    while True:
        listing = _listing(paths, epoch_pattern, waiting=True)
        for path, why in listing.unnumbered.items():
            if str(path) not in summary.unnumbered:
                summary.unnumbered[str(path)] = why
                note(f"skipped: {path}: {why}")
        for found in listing.found.values():
            stamp = found.stamp()
            if same_bytes(done.get(found.epoch), stamp) or failed.get(found.path) == stamp:
                continue
            if seen.get(found.path) != stamp:  # new or still being written: taken at the next poll if unchanged
                seen[found.path], last_new = stamp, time.monotonic()
                continue
            adopt_one(found, loader, summary.run_dir, summary, done)
            if same_bytes(done.get(found.epoch), stamp):
                note(f"adopted epoch {found.epoch} from {found.path}")
            else:
                failed[found.path] = stamp  # tried again only once the file changes
                note(f"failed: {summary.failed[str(found.path)]}")
            last_new = time.monotonic()
        if history is not None and Path(history).is_file() and run.file_stamp(history) != history_stamp:
            history_stamp = run.file_stamp(history)
            run.add_history(summary.run_dir / run.HISTORY_CSV, read_csv_logger(Path(history)))
        if time.monotonic() - last_new > idle_timeout:
            note(f"no new checkpoint for {idle_timeout:g} s: stopping (run.json now says the run finished)")
            return
        sleep(poll)


# --- the command line -------------------------------------------------------------------------------------------


def _npy(ctx, param, value):
    if value is None:
        return None
    try:
        return np.load(value, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise click.BadParameter(f"expected a .npy file of one row per image of --data, received `{value}` "
                                 f"({err}).") from None


def _shape(ctx, param, value):
    if value is None:
        return None
    try:
        shape = tuple(int(v) for v in value.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3:
        raise click.BadParameter(f"expected HEIGHT,WIDTH,CHANNELS like `28,28,1`, received `{value}`.")
    return shape


def _hparams(ctx, param, value):
    import json

    if value is None:
        return None
    try:
        return dict(json.loads(value))
    except (TypeError, ValueError) as err:
        raise click.BadParameter(f"expected a JSON object like '{{\"beta\": 4}}', received `{value}` ({err}).") \
            from None


class _Fatal(click.ClickException):
    exit_code = 2  # nothing adopted: as bad usage


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("source", nargs=-1, required=True)
@click.option("--model", "model_spec", required=True, metavar="FILE.keras|MODULE:FUNCTION",
              help="The model: a .keras file (any whole-model save of the run), or a function of yours that "
                   "builds it (imported because you name it).")
@click.option("--run", "run_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The run directory to write (created; adopting into it again adds what is new).")
@click.option("--data", help="Training data to take the fixed samples from (as pipeline.train's --data). "
              "Without it the run renders the views that need no samples.")
@click.option("--history", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A CSVLogger file: the run's training curves.")
@click.option("--encoder", default="encoder", show_default=True, help="The encoder: an attribute or layer name.")
@click.option("--decoder", default="decoder", show_default=True, help="The decoder: an attribute or layer name.")
@click.option("--epoch-pattern", metavar="TEMPLATE",
              help="The filepath given to ModelCheckpoint, e.g. `vae.{epoch:02d}-{loss:.2f}.weights.h5`: where "
                   "the epoch is in each name. [default: a number after `epoch`, else the number that changes "
                   "from file to file]")
@click.option("--n-samples", default=64, show_default=True, type=click.IntRange(min=1), help="Fixed samples.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the sample choice.")
@click.option("--encoder-outputs", type=click.Choice(ENCODER_OUTPUTS), help="What the encoder gives. [default: detected]")
@click.option("--encoder-scale", type=click.Choice(ENCODER_SCALES), default="logvar", show_default=True,
              help="The encoder's second output.")
@click.option("--decoder-output", type=click.Choice(DECODER_OUTPUTS),
              help="How to read the decoder. [default: probabilities; a linear output on [0, 1] data is decided "
                   "by the samples' likelihood]")
@click.option("--image-shape", callback=_shape, metavar="H,W,C", help="The image shape of flattened inputs.")
@click.option("--value-range", nargs=2, type=float, help="LO HI of the images. [default: from the samples]")
@click.option("--conditions", callback=_npy, metavar="FILE.npy", help="A conditional VAE's conditions, one row "
              "per image of --data.")
@click.option("--labels", callback=_npy, metavar="FILE.npy", help="A class per image of --data (clusters view).")
@click.option("--factors", callback=_npy, metavar="FILE.npy", help="Generative factors per image of --data (N, K).")
@click.option("--factor-names", callback=lambda c, p, v: None if v is None else v.split(","), metavar="A,B,...",
              help="Names of the factors.")
@click.option("--n-eval", type=click.IntRange(min=0), help="Images of the evaluation set. [default: 2000 with "
              "labels or factors]")
@click.option("--hparams", callback=_hparams, metavar="JSON", help="Training settings a comparison shows.")
@click.option("--follow", is_flag=True, help="Keep adopting new files while training writes them; each is taken "
              "once its size is unchanged for one poll.")
@click.option("--poll", default=2.0, show_default=True, type=click.FloatRange(min=0.05),
              help="Seconds between looks for new files with --follow.")
@click.option("--idle-timeout", default=600.0, show_default=True, type=click.FloatRange(min=0),
              help="With --follow, stop after this many seconds without a new file.")
@click.option("--import", "imports", multiple=True, metavar="MODULE",
              help="Import MODULE first: it registers the custom classes of a .keras model.")
@click.option("--unsafe", is_flag=True, help="Load a .keras model without Keras safe mode (Lambda layers). "
              "Only for files you trust.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar, only the summary line.")
@click.option("--verbose", "-v", is_flag=True, help="Show tracebacks.")
def main(source, *, model_spec, run_dir, imports, unsafe, quiet, verbose, value_range, **options):
    """Adopt checkpoints written without vaeviz (SOURCE: folders, globs or files) into a run directory.

    \b
    Formats: Keras .weights.h5 and .keras files (ModelCheckpoint), tf.train checkpoints
    (ckpt-N.index, CheckpointManager), a BackupAndRestore folder. The source is never written to.
    Exit 0: every checkpoint adopted; 1: some files skipped (each named, with why); 2: nothing adopted.

    \b
    Examples:
      python -m pipeline.adopt runs/vae --model my_models:build_vae --run checkpoints/vae --data x.npy
      python -m pipeline.adopt "runs/vae/*.keras" --model runs/vae/vae.01.keras --run checkpoints/vae
      python -m pipeline.adopt runs/vae --model my_models:build_vae --run checkpoints/vae --follow
    """
    import os
    import sys

    from pipeline.cli import _Progress
    from pipeline.quiet import VERBOSE

    if verbose:
        os.environ[VERBOSE] = "1"  # TensorFlow's start-up lines too

    say = (lambda msg: None) if quiet else (lambda msg: click.echo(msg, err=True))
    bar = _Progress(not quiet and not options["follow"] and sys.stderr.isatty(), label="adopting")
    try:
        summary = adopt(list(source), model=model_spec, run_dir=run_dir, imports=imports, safe_mode=not unsafe,
                        value_range=tuple(value_range) if value_range else None, note=say, progress=bar,
                        **options)
    except AdoptError as err:
        if verbose:
            raise
        raise _Fatal(str(err)) from err
    except KeyboardInterrupt:
        say("stopped (Ctrl-C): every checkpoint adopted so far is complete; adopt again to go on")
        sys.exit(1)
    finally:
        bar.close()
    for path, why in sorted(summary.unnumbered.items()):
        click.echo(f"skipped: {path}: {why}", err=True)
    for path, why in sorted(summary.failed.items()):
        click.echo(f"failed: {why}", err=True)
    click.echo(summary.line())
    if not summary.adopted and not summary.unchanged:
        sys.exit(2)
    if summary.failed or summary.unnumbered:
        sys.exit(1)


if __name__ == "__main__":
    from pipeline.startup import run_command

    run_command(main)
