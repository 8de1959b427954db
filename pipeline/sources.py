"""Checkpoints written without vaeviz, found and numbered by epoch: Keras' and TensorFlow's own files.

    find(["runs/vae"])                       # a folder
    find(["runs/vae/vae.*.weights.h5"])      # a glob (or the files a shell expanded it to)

Each file is one of these formats, told apart by its name:

- ``weights.h5``: ``model.save_weights`` / ``ModelCheckpoint(save_weights_only=True)``, ``*.weights.h5``;
- ``keras``: a whole-model archive, ``model.save`` / ``ModelCheckpoint(...keras)``, ``*.keras``;
- ``legacy-h5``: a Keras 2 HDF5 file, ``*.h5`` / ``*.hdf5`` (only where Keras 3 still loads it);
- ``tf-checkpoint``: ``tf.train.Checkpoint`` / ``CheckpointManager``, ``ckpt-N.index`` with its data shards;
- ``backup``: the folder of ``keras.callbacks.BackupAndRestore``: ``latest.weights.h5`` and
  ``training_metadata.json``.

The epoch of a file comes from its name: the number that follows ``epoch`` (or ``ep``), else the number that
changes from file to file, else the first whole number in it (``weights.02-1.23.weights.h5`` is epoch 2, what
``ModelCheckpoint``'s ``{epoch:02d}`` wrote); or from ``epoch_pattern``, the file path template given to
``ModelCheckpoint``. A TensorFlow checkpoint's epoch is its saved ``epoch`` or ``step`` variable where it has
one, else N of ``ckpt-N``; a ``BackupAndRestore`` state's is its ``training_metadata.json``'s. Nothing here
writes a file; only a TensorFlow checkpoint's variables need TensorFlow (imported then).
"""

from __future__ import annotations

import glob
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Found", "Listing", "SourceError", "find", "template_regex"]

WEIGHTS_H5, KERAS, LEGACY_H5, TF_CHECKPOINT, BACKUP = "weights.h5", "keras", "legacy-h5", "tf-checkpoint", "backup"
BACKUP_WEIGHTS, BACKUP_METADATA = "latest.weights.h5", "training_metadata.json"
TF_EPOCH_VARIABLES = ("epoch", "step")  # tf.train.Checkpoint(epoch=...) or (step=...), first found wins
_LABELLED = re.compile(r"(?i)(?<![a-z])(?:epoch|ep)[_\-.=]?(\d+)")  # not `step10`
_NUMBER = re.compile(r"(?<!\d\.)(?<!\d)(\d+)(?!\d)(?!\.\d)")  # a whole number, not a part of a decimal
_TF_PREFIX = re.compile(r"^(.*)-(\d+)$")


class SourceError(ValueError):
    """Checkpoints that cannot be adopted as a whole: none found, or two files for one epoch."""


@dataclass(frozen=True)
class Found:
    """One checkpoint: what to load (a file, or a TensorFlow checkpoint's prefix), its format and epoch."""

    path: Path
    format: str
    epoch: int | None
    files: tuple[Path, ...]  # every file it is read from, for its stamp
    how: str = ""  # where the epoch came from, said when it is not the file's name

    def stamp(self) -> dict:
        """Return what identifies this checkpoint's bytes cheaply: each file's size and modification time."""
        stats = [f.stat() for f in self.files]
        return {"path": str(self.path.resolve()), "format": self.format,
                "size": sum(s.st_size for s in stats), "mtime_ns": max(s.st_mtime_ns for s in stats)}


@dataclass
class Listing:
    """What a source holds: numbered checkpoints by epoch, and the files it could not number (with why)."""

    found: dict[int, Found] = field(default_factory=dict)
    unnumbered: dict[Path, str] = field(default_factory=dict)


def template_regex(template: str) -> re.Pattern:
    """Return the regex of file names a ModelCheckpoint file path template writes, its epoch a group.

    template : ``"vae.{epoch:02d}-{val_loss:.2f}.weights.h5"`` (a folder in front is ignored); ``{epoch}``
    must be in it, other fields match anything.
    """
    name = Path(template).name
    if "{epoch" not in name:
        raise SourceError(f"--epoch-pattern must contain `{{epoch}}` (as ModelCheckpoint's filepath does, e.g. "
                          f"`vae.{{epoch:02d}}-{{val_loss:.2f}}.weights.h5`). Received: `{template}`.")
    parts = re.split(r"(\{[^}]*\})", name)
    regex = "".join(("(?P<epoch>\\d+)" if p.startswith("{epoch") else ".+?") if p.startswith("{") else re.escape(p)
                    for p in parts)
    return re.compile(f"^{regex}$")


def _format_of(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(".weights.h5"):
        return WEIGHTS_H5
    if name.endswith(".keras"):
        return KERAS
    if name.endswith((".h5", ".hdf5")):
        return LEGACY_H5
    if name.endswith(".index"):
        return TF_CHECKPOINT
    return None


def _candidates(sources) -> list[Path]:
    """Return the checkpoint files and BackupAndRestore folders that the sources name, each once."""
    out: list[Path] = []
    for source in sources:
        source = str(source)
        matched = sorted(Path(p) for p in glob.glob(source)) if glob.has_magic(source) else [Path(source)]
        if not matched or not all(p.exists() or Path(f"{p}.index").exists() for p in matched):
            raise SourceError(f"`{source}` does not exist. Pass a folder of checkpoints, a glob of them "
                              f"(quoted: \"runs/vae/*.weights.h5\"), or checkpoint files.")
        for path in matched:
            if path.is_dir() and (path / BACKUP_METADATA).is_file():
                out.append(path)
            elif path.is_dir():
                out += sorted(p for p in path.iterdir() if p.is_file() and _format_of(p))
            elif not path.exists():
                out.append(Path(f"{path}.index"))  # a TensorFlow checkpoint's prefix, as tf.train names it
            else:
                out.append(path)
    seen: set[Path] = set()
    return [p for p in out if not (p.resolve() in seen or seen.add(p.resolve()))]


def _name_epochs(paths: list[Path], pattern: re.Pattern | None) -> dict[Path, int | None]:
    """Return each file's epoch from its name, or None where its name gives none."""
    stems = {p: p.name[:-len(".weights.h5")] if p.name.endswith(".weights.h5") else p.stem for p in paths}
    if pattern is not None:
        return {p: int(m.group("epoch")) if (m := pattern.match(p.name)) else None for p in paths}
    numbers = {p: [int(n) for n in _NUMBER.findall(s)] for p, s in stems.items()}
    counts = {len(n) for n in numbers.values()}
    varying = None
    if len(paths) > 1 and len(counts) == 1 and (k := counts.pop()):
        varying = next((i for i in range(k) if len({tuple(n)[i] for n in numbers.values()}) > 1), None)
    out = {}
    for p, s in stems.items():
        labelled = _LABELLED.findall(s)
        out[p] = int(labelled[-1]) if labelled else numbers[p][varying] if varying is not None else \
            (numbers[p][0] if numbers[p] else None)
    return out


def _tf_epoch(prefix: Path) -> tuple[int | None, str]:
    """Return (epoch, how it was found) of a TensorFlow checkpoint: its epoch or step variable, else N of ckpt-N."""
    from pipeline.startup import import_keras

    import_keras()
    import tensorflow as tf

    try:
        reader = tf.train.load_checkpoint(str(prefix))
    except Exception:  # a damaged index: numbered by its name; loading it names the problem
        reader = None
    for name in TF_EPOCH_VARIABLES:
        key = f"{name}/.ATTRIBUTES/VARIABLE_VALUE"
        if reader is not None and reader.has_tensor(key):
            value = reader.get_tensor(key)
            if getattr(value, "shape", None) == () and float(value) == int(value):
                return int(value), f"its `{name}` variable"
    m = _TF_PREFIX.match(prefix.name)
    return (int(m.group(2)), "N of ckpt-N") if m else (None, "")


def _backup(folder: Path) -> tuple[Found | None, str]:
    """Return (the BackupAndRestore folder's state, None with the reason when it holds no usable one)."""
    weights = folder / BACKUP_WEIGHTS
    try:
        meta = json.loads((folder / BACKUP_METADATA).read_text())
        epoch, batch = int(meta["epoch"]), int(meta.get("batch", 0))
    except (OSError, ValueError, KeyError, TypeError) as err:
        return None, f"its {BACKUP_METADATA} is not readable ({type(err).__name__}: {err})"
    if not weights.is_file():
        return None, f"it has no {BACKUP_WEIGHTS} (BackupAndRestore deletes both when fit ends)"
    if batch:
        return None, (f"BackupAndRestore saved it during epoch {epoch + 1} (after batch {batch}, save_freq set to "
                      f"a number of batches): not an epoch's end. Use BackupAndRestore(save_freq='epoch')")
    if epoch < 1:
        return None, "it holds the state before the first epoch ended"
    return Found(weights, BACKUP, epoch, (weights, folder / BACKUP_METADATA), f"its {BACKUP_METADATA}"), ""


def find(sources, *, epoch_pattern: str | None = None) -> Listing:
    """Return the checkpoints `sources` (folders, files, globs, TensorFlow prefixes) hold, numbered by epoch.

    Raises SourceError where none are found, or where two checkpoints have one epoch (both named).
    """
    pattern = None if epoch_pattern is None else template_regex(epoch_pattern)
    listing, found = Listing(), []
    paths = _candidates(sources)
    files = [p for p in paths if p.is_file() and _format_of(p) not in (None, TF_CHECKPOINT)]
    epochs = _name_epochs(files, pattern)
    for path in paths:
        if path.is_dir():
            state, why = _backup(path)
            if state is None:
                listing.unnumbered[path] = why
            else:
                found.append(state)
        elif _format_of(path) == TF_CHECKPOINT:
            prefix = path.with_suffix("")
            epoch, how = _tf_epoch(prefix)
            shards = sorted(path.parent.glob(glob.escape(prefix.name) + ".data-*"))
            found.append(Found(prefix, TF_CHECKPOINT, epoch, (path, *shards), how))
        elif _format_of(path) is not None:
            found.append(Found(path, _format_of(path), epochs[path], (path,)))
    for f in found:
        if f.epoch is None or f.epoch < 1:
            listing.unnumbered[f.path] = ("its name gives no epoch" if f.epoch is None else f"epoch {f.epoch} < 1") \
                + (" (pass --epoch-pattern, the filepath given to ModelCheckpoint, e.g. "
                   "`vae.{epoch:02d}.weights.h5`)" if f.format != BACKUP else "")
            continue
        if f.epoch in listing.found:
            other = listing.found[f.epoch]
            raise SourceError(f"Two checkpoints are epoch {f.epoch}: `{other.path}` and `{f.path}`. Adopt one run "
                              f"at a time (a glob or folder of one run's files), or pass --epoch-pattern (the "
                              f"filepath given to ModelCheckpoint) if the epoch was read from the wrong number.")
        listing.found[f.epoch] = f
    if not listing.found and not listing.unnumbered:
        raise SourceError(f"No checkpoints in {', '.join(f'`{s}`' for s in sources)}: expected Keras "
                          f"`.weights.h5` or `.keras` files (ModelCheckpoint), TensorFlow `ckpt-N.index` files "
                          f"(tf.train.CheckpointManager), or a BackupAndRestore folder ({BACKUP_METADATA}).")
    listing.found = dict(sorted(listing.found.items()))
    return listing
