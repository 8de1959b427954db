"""The run directory: the one contract between training and rendering.

::

    checkpoints/<run>/
      run.json                          format, versions, architecture, finished flag
      samples.h5                        indices + images of the fixed samples
      weights/epoch_0001.weights.h5     encoder + decoder weights only
      history.csv                       one row per epoch of the training logs

Everything here is plain numpy, h5py and json: reading a run never imports
TensorFlow. Every file is written durably through `pipeline.atomic` (a
temporary name in its own folder, then a rename), so a reader never sees half a file.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import atomic

FORMAT = "vaeviz-run"
FORMAT_VERSION = 2  # the newest this vaeviz reads and writes
# run.json keys of version 2 (a run that uses none of them is written as version 1, as 0.1.0 wrote it):
V2_KEYS = ("encoder_form", "encoder_scale", "decoder_output", "decoder_activation", "image_shape",
           "condition_width", "skipped_epochs", "stream")
WEIGHTS_FORMAT = "vaeviz-weights"

RUN_JSON = "run.json"
SAMPLES_H5 = "samples.h5"
EVAL_H5 = "eval.h5"
HISTORY_CSV = "history.csv"
WEIGHTS_DIR = "weights"
# Only final names match: temporary files start with a dot and end in `.tmp`.
_CHECKPOINT_RE = re.compile(r"^epoch_(\d{4,})\.weights\.h5$")


class RunError(Exception):
    """A directory is not a readable run (missing or corrupt run.json, samples.h5)."""


class CheckpointError(Exception):
    """One checkpoint cannot be read or does not fit the run's models."""


@dataclass(frozen=True)
class Checkpoint:
    """One weights file of a run, identified by its epoch and its bytes' stat."""

    epoch: int
    path: Path
    size: int
    mtime_ns: int

    @property
    def name(self) -> str:
        return self.path.name

    def stamp(self) -> dict:
        """Return what identifies this file's content cheaply (name, size, mtime)."""
        return {"name": self.name, "size": self.size, "mtime_ns": self.mtime_ns}


def file_stamp(path: Path) -> dict:
    """Return what identifies a file's content cheaply: its name, size and modification time."""
    st = Path(path).stat()
    return {"name": Path(path).name, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def checkpoint_name(epoch: int) -> str:
    """Return the file name of an epoch's weights, numbered from 1 as Keras does."""
    return f"epoch_{epoch:04d}.weights.h5"


# --- run.json --------------------------------------------------------------


def read_run(run_dir: Path) -> dict:
    """Return the parsed run.json of `run_dir`, or raise RunError saying what is wrong."""
    run_dir = Path(run_dir)
    path = run_dir / RUN_JSON
    if not run_dir.is_dir():
        raise RunError(f"`{run_dir}` is not a directory. Pass a run directory "
                       f"written by CheckpointForViz (it holds {RUN_JSON} and {WEIGHTS_DIR}/).")
    if not path.is_file():
        raise RunError(f"`{run_dir}` is not a run directory: it has no {RUN_JSON}. "
                       f"Pass the folder given to CheckpointForViz(run_dir) during training.")
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise RunError(f"`{path}` is not readable JSON ({err}). The run's architecture is "
                       f"lost; re-create it by training again with CheckpointForViz.") from err
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise RunError(f"`{path}` is not a vaeviz run file: expected format `{FORMAT}`, "
                       f"received `{info.get('format') if isinstance(info, dict) else type(info).__name__}`.")
    if info.get("format_version", 0) > FORMAT_VERSION:
        raise RunError(f"`{path}` has format version {info['format_version']}, newer than this "
                       f"vaeviz reads ({FORMAT_VERSION}). Upgrade vaeviz.")
    for key in ("encoder", "decoder", "input_shape", "latent_dim", "value_range"):
        if key not in info:
            raise RunError(f"`{path}` lacks `{key}`; it was not written by CheckpointForViz.")
    problems = _field_problems(info)
    if problems:
        raise RunError(f"`{path}` is damaged: {'; '.join(problems)}. Re-create it by training again "
                       f"with CheckpointForViz (the weights files are kept).")
    return info


def is_finished(run_dir: Path) -> bool:
    """Return whether run.json says the run finished training (False while it is missing or unreadable)."""
    try:
        return bool(read_run(run_dir).get("finished", False))
    except RunError:
        return False


def _field_problems(info: dict) -> list[str]:
    """Return what is wrong with run.json's fields, each naming the key and the value received."""
    problems = []
    for key in ("encoder", "decoder"):
        if not (isinstance(info[key], dict) and "class_name" in info[key] and "config" in info[key]):
            problems.append(f"`{key}` must be a Keras model config, received {str(info[key])[:40]!r}")
    latent = info["latent_dim"]
    if not (isinstance(latent, int) and not isinstance(latent, bool) and latent >= 1):
        problems.append(f"`latent_dim` must be an integer >= 1, received {latent!r}")
    shape, image = info["input_shape"], info.get("image_shape") or info["input_shape"]
    if not (isinstance(shape, list) and shape and all(isinstance(d, int) and d > 0 for d in shape)):
        problems.append(f"`input_shape` must be a list of positive integers, received {shape!r}")
    elif not (isinstance(image, list) and len(image) == 3 and all(isinstance(d, int) and d > 0 for d in image)
              and int(np.prod(image)) == int(np.prod(shape))):
        problems.append(f"`image_shape` (or `input_shape`) must be [height, width, channels] of the input's size, "
                        f"received {image!r} for input {shape!r}")
    vr = info["value_range"]
    if not (isinstance(vr, list) and len(vr) == 2 and all(isinstance(v, (int, float)) and np.isfinite(v) for v in vr)
            and vr[0] < vr[1]):
        problems.append(f"`value_range` must be [lo, hi] with lo < hi, received {vr!r}")
    return problems


def write_run(run_dir: Path, info: dict) -> None:
    """Write run.json atomically: format version 2 if it uses a key of version 2, else 1."""
    version = 2 if any(info.get(k) not in (None, [], DEFAULTS.get(k)) for k in V2_KEYS) else 1
    atomic.write_bytes(Path(run_dir) / RUN_JSON,
                       atomic.json_bytes({**info, "format": FORMAT, "format_version": version}), durable=True)


DEFAULTS = {"encoder_scale": "logvar"}  # version-2 keys whose default a version-1 run means too


def encoder_form(info: dict) -> str:
    """Return what the run's encoder gives: mean, mean_logvar, mean_logvar_z or concat (see modelspec)."""
    if "encoder_form" in info:
        return info["encoder_form"]
    return "mean_logvar" if len(info.get("encoder_outputs", ["z_mean"])) > 1 else "mean"


def decides_output(info: dict) -> bool:
    """Return whether the renderer decides how to read the decoder: a linear (or unknown) output layer,
    no decoder_output stated, images in [0, 1] (logits or an MSE-trained decoder: the samples tell)."""
    return (info.get("decoder_output") is None and info.get("decoder_activation") in ("linear", "unknown")
            and [float(v) for v in info["value_range"]] == [0.0, 1.0])


def image_shape(info: dict) -> list[int]:
    """Return the (height, width, channels) the run's images are shown as (its input shape, unless flattened)."""
    return list(info.get("image_shape") or info["input_shape"])


# --- samples.h5 ------------------------------------------------------------


def choose_indices(n_total: int, n_samples: int, seed: int) -> np.ndarray:
    """Return `n_samples` sorted indices into `range(n_total)`, without replacement."""
    if not 1 <= n_samples <= n_total:
        raise ValueError(f"n_samples must be between 1 and the number of images ({n_total}). "
                         f"Received: n_samples={n_samples}.")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_total, size=n_samples, replace=False)).astype(np.int64)


def _write_strings(f, name: str, values) -> None:
    import h5py

    f.create_dataset(name, data=np.asarray([str(v) for v in values], dtype=object), dtype=h5py.string_dtype())


def _read_strings(f, name: str) -> list[str] | None:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in f[name][()]] if name in f else None


def write_samples(path: Path, *, indices, images, names=None, conditions=None, seed: int, source: str) -> None:
    """Write the fixed samples (indices, images exactly as fed, optional file names and conditions)."""
    def fill(f):
        f.create_dataset("indices", data=np.asarray(indices, dtype=np.int64))
        f.create_dataset("images", data=np.asarray(images))
        if names is not None:
            _write_strings(f, "names", names)
        if conditions is not None:
            f.create_dataset("conditions", data=np.asarray(conditions))
        f.attrs["seed"] = seed
        f.attrs["source"] = source

    atomic.write_h5(path, fill)


def read_samples(path: Path) -> dict:
    """Return {"indices", "images", "names", "conditions" (each or None), "seed", "source"} from a samples file."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return {"indices": f["indices"][()], "images": f["images"][()], "names": _read_strings(f, "names"),
                    "conditions": f["conditions"][()] if "conditions" in f else None,
                    "seed": int(f.attrs.get("seed", 0)), "source": str(f.attrs.get("source", ""))}
    except (OSError, KeyError) as err:
        raise RunError(f"`{path}` is not a readable samples file ({err}). Delete it and pass "
                       f"`--data PATH` to choose the samples again from the training data.") from err


# --- eval.h5: the evaluation set of the analyses ------------------------------


def compact(images: np.ndarray) -> tuple[np.ndarray, float]:
    """Return (images to store, the scale that gives them back): uint8 levels / 255 where float images are
    8-bit levels in [0, 1] (4x smaller), else the images as they are with scale 1."""
    images = np.asarray(images)
    if images.dtype.kind == "f" and images.size and images.min() >= 0 and images.max() <= 1:
        levels = np.rint(images * 255.0)
        if np.abs(levels / 255.0 - images).max() < 1e-6:
            return levels.astype(np.uint8), 255.0
    return images, 1.0


def write_eval(path: Path, *, indices, images, labels=None, factors=None, factor_names=None, conditions=None,
               seed: int) -> None:
    """Write the evaluation set: images as fed (compactly), and their labels, factors and conditions where given."""
    stored, scale = compact(images)

    def fill(f):
        f.create_dataset("indices", data=np.asarray(indices, dtype=np.int64))
        f.create_dataset("images", data=stored, compression="gzip", compression_opts=4)
        f["images"].attrs["scale"] = scale
        f["images"].attrs["dtype"] = str(np.asarray(images).dtype)
        if labels is not None:
            labels_ = np.asarray(labels)
            if labels_.dtype.kind in "iub":
                f.create_dataset("labels", data=labels_.astype(np.int64))
            else:
                _write_strings(f, "labels", labels_)
        if factors is not None:
            f.create_dataset("factors", data=np.asarray(factors, np.float64))
            _write_strings(f, "factor_names", factor_names)
        if conditions is not None:
            f.create_dataset("conditions", data=np.asarray(conditions))
        f.attrs["seed"] = seed

    atomic.write_h5(path, fill)


def read_eval(path: Path, *, images: bool = True) -> dict:
    """Return {"indices", "images" (as fed), "labels", "factors", "factor_names", "conditions" (each or None)}
    of eval.h5; images=False leaves the images on disk (None), for a reader that needs only what they are."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            stored, fed = f["images"], None
            if images:
                scale, dtype = float(stored.attrs.get("scale", 1.0)), str(stored.attrs.get("dtype", stored.dtype))
                pixels = stored[()]
                fed = pixels if scale == 1.0 else (pixels / scale).astype(dtype)
            labels = f["labels"][()] if "labels" in f and f["labels"].dtype.kind in "iu" else _read_strings(f, "labels")
            return {"indices": f["indices"][()], "images": fed, "labels": None if labels is None else np.asarray(labels),
                    "factors": f["factors"][()] if "factors" in f else None,
                    "factor_names": _read_strings(f, "factor_names"),
                    "conditions": f["conditions"][()] if "conditions" in f else None}
    except (OSError, KeyError) as err:
        raise RunError(f"`{path}` is not a readable evaluation set ({err}). Delete it: the analyses then use the "
                       f"fixed samples.") from err


# --- weights ---------------------------------------------------------------


def list_checkpoints(run_dir: Path) -> list[Checkpoint]:
    """Return the run's complete checkpoints, sorted by epoch (temporary files excluded)."""
    folder = Path(run_dir) / WEIGHTS_DIR
    found = []
    if folder.is_dir():
        for entry in os.scandir(folder):
            m = _CHECKPOINT_RE.match(entry.name)
            if m and entry.is_file():
                st = entry.stat()
                found.append(Checkpoint(int(m.group(1)), Path(entry.path), st.st_size, st.st_mtime_ns))
    return sorted(found, key=lambda c: c.epoch)


def write_weights(path: Path, parts: dict[str, list[np.ndarray]], *, epoch: int, origin: dict | None = None) -> None:
    """Write {"encoder": [arrays], "decoder": [arrays]} (in model.weights order) atomically; `origin`: the
    file they were adopted from (see `pipeline.adopt`), kept as JSON in the file's attributes."""
    def fill(f):
        f.attrs["format"] = WEIGHTS_FORMAT
        f.attrs["epoch"] = epoch
        if origin is not None:
            f.attrs["origin"] = json.dumps(origin)
        for part, arrays in parts.items():
            group = f.create_group(part)
            group.attrs["count"] = len(arrays)
            for i, array in enumerate(arrays):
                group.create_dataset(f"{i:04d}", data=array)

    atomic.write_h5(path, fill)


def read_weights(path: Path) -> dict[str, list[np.ndarray]]:
    """Return {"encoder": [...], "decoder": [...]} arrays, or raise CheckpointError."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path.name}: missing (deleted while rendering?)")
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != WEIGHTS_FORMAT:
                raise CheckpointError(f"{path.name}: not a vaeviz weights file "
                                      f"(no `format={WEIGHTS_FORMAT}` attribute)")
            parts = {}
            for part in ("encoder", "decoder"):
                if part not in f:
                    raise CheckpointError(f"{path.name}: has no `{part}` weights")
                group = f[part]
                parts[part] = [group[f"{i:04d}"][()] for i in range(int(group.attrs["count"]))]
            return parts
    except CheckpointError:
        raise
    except (OSError, KeyError, ValueError) as err:
        reason = "empty file" if path.stat().st_size == 0 else f"unreadable HDF5 ({err})"
        raise CheckpointError(f"{path.name}: {reason}") from err


def read_origin(path: Path) -> dict | None:
    """Return the origin an adopted checkpoint records (see `write_weights`); None if it has none or is unreadable."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            origin = f.attrs.get("origin")
            return None if origin is None else json.loads(origin)
    except (OSError, ValueError):
        return None


# --- history.csv -----------------------------------------------------------


def read_history(path: Path) -> list[dict]:
    """Return history.csv rows as dicts of floats (epoch as int); [] if absent."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                rows.append({k: (int(v) if k == "epoch" else float(v)) for k, v in row.items() if v != ""})
            except (TypeError, ValueError):
                continue  # a damaged line costs that epoch's row, not the file
    return rows


def add_history(path: Path, rows_by_epoch: dict[int, dict]) -> None:
    """Add epochs' logs ({epoch: {name: value}}) to history.csv, rewritten atomically; columns may grow."""
    rows = [r for r in read_history(path) if r["epoch"] not in rows_by_epoch]
    rows += [{"epoch": e, **{k: float(v) for k, v in (logs or {}).items()}} for e, logs in rows_by_epoch.items()]
    columns = ["epoch"] + sorted({k for r in rows for k in r} - {"epoch"})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for r in sorted(rows, key=lambda r: r["epoch"]):
        writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in r.items()})
    atomic.write_bytes(path, out.getvalue().encode(), durable=True)


def last_epoch(run_dir: Path) -> int:
    """Return the last epoch the run recorded (history or checkpoints), 0 if none."""
    run_dir = Path(run_dir)
    epochs = [r["epoch"] for r in read_history(run_dir / HISTORY_CSV)]
    epochs += [c.epoch for c in list_checkpoints(run_dir)]
    return max(epochs, default=0)


# --- schedule --------------------------------------------------------------


def log_epochs(up_to: int) -> list[int]:
    """Return the log-spaced epochs <= up_to: 1, 2, 3, 4, 5, 6, 8, 10, 13, 16, 20, ...

    These are round(10 ** (k / 10)): ten per decade, denser than every epoch
    only where rounding merges them (the first few).
    """
    epochs, k = [], 0
    while (e := round(10 ** (k / 10))) <= up_to:
        if not epochs or e != epochs[-1]:
            epochs.append(e)
        k += 1
    return epochs


def is_scheduled(epoch: int, every) -> bool:
    """Return whether `epoch` (from 1) gets a checkpoint under `every` (int or "log")."""
    if every == "log":
        return epoch in log_epochs(epoch)
    return epoch % every == 0
