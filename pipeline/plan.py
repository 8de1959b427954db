"""Which checkpoints to render, and which files are stale: a frame's record is its settings.

A frame is a pure function of (checkpoint bytes, settings); the manifest
records, per output file, the checkpoint's stamp and the settings object its
view drew it with (`settings.record`), so planning needs only `stat` and
JSON: no TensorFlow. Change any setting and exactly the files drawn with it
are stale.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import atomic
from pipeline.latents import stats_file
from pipeline.run import Checkpoint
from pipeline.settings import record

MANIFEST = "manifest.json"
MANIFEST_VERSION = 2  # 1: 0.1.0, settings as loose dicts; its files are drawn again


def parse_epochs(spec: str) -> set[int]:
    """Return the epochs named by `1,5,10-20` (ranges inclusive)."""
    epochs: set[int] = set()
    for part in (p.strip() for p in str(spec).split(",")):
        if not part:
            continue
        try:
            if "-" in part:
                a, b = (int(x) for x in part.split("-", 1))
                if a > b:
                    raise ValueError
                epochs.update(range(a, b + 1))
            else:
                epochs.add(int(part))
        except ValueError:
            raise ValueError(f"`{part}` is not an epoch or a range: expected e.g. `1,5,10-20`.") from None
    if not epochs:
        raise ValueError(f"`{spec}` names no epochs: expected e.g. `1,5,10-20`.")
    return epochs


def select(checkpoints: list[Checkpoint], *, every: int | None = None,
           epochs: set[int] | None = None) -> list[Checkpoint]:
    """Return the checkpoints to render: every `every`-th (and always the last), or those in `epochs`."""
    if epochs is not None:
        return [c for c in checkpoints if c.epoch in epochs]
    if every is None or every <= 1 or not checkpoints:
        return list(checkpoints)
    chosen = checkpoints[every - 1::every]
    if not chosen or chosen[-1] is not checkpoints[-1]:
        chosen.append(checkpoints[-1])
    return chosen


class Manifest:
    """The outputs folder's manifest: {file name: the record that made it}, read once, saved as it grows."""

    def __init__(self, out_dir: Path):
        self.out_dir = Path(out_dir)
        self.files: dict[str, dict] = {}
        self.costs: dict = {}  # what the last render measured: {"view_seconds": per checkpoint and view}
        try:
            data = json.loads((self.out_dir / MANIFEST).read_text())
            if data.get("version") == MANIFEST_VERSION and isinstance(data.get("files"), dict):
                self.files, self.costs = data["files"], dict(data.get("costs") or {})
        except (OSError, ValueError, AttributeError):
            pass  # absent, unreadable or of an older version: everything is drawn again

    def is_fresh(self, name: str, record: dict) -> bool:
        """Return whether output `name` exists and was made from exactly `record`."""
        return self.files.get(name) == record and (self.out_dir / name).is_file()

    def has(self, name: str) -> bool:
        """Return whether output `name` is recorded and on disk."""
        return name in self.files and (self.out_dir / name).is_file()

    def save(self) -> None:
        """Write manifest.json unless it already holds exactly this (a no-op render writes nothing)."""
        atomic.update_bytes(self.out_dir / MANIFEST, atomic.json_bytes(
            {"version": MANIFEST_VERSION, "files": self.files, "costs": self.costs}, compact=True))

    def rendered_epochs(self, file, selected: list[Checkpoint]) -> list[int]:
        """Return the selected epochs whose file (`file(epoch)`) the manifest records and the disk holds."""
        return [c.epoch for c in selected if self.has(file(c.epoch))]


def unrendered(manifest: Manifest, selected: list[Checkpoint], files) -> int:
    """Return how many (checkpoint, file) pairs have no file made from that checkpoint's current bytes.

    files : a `file(epoch)` per view. A cheap estimate of the work ahead, made
    before settings are resolved: a changed setting is not seen here.
    """
    return sum(1 for c in selected for file in files
               if (manifest.files.get(file(c.epoch)) or {}).get("checkpoint") != c.stamp()
               or not (manifest.out_dir / file(c.epoch)).is_file())


def frame_record(stamp: dict, settings, decoding=None) -> dict:
    """Return what a file's manifest entry must equal to be fresh: its checkpoint's stamp, its settings
    and, for a view that decodes, the run's Decoding."""
    entry = {"checkpoint": stamp, "settings": record(settings)}
    return entry if decoding is None else {**entry, "decoding": record(decoding)}


@dataclass
class Task:
    """One checkpoint to load, the views to draw from it [(view, settings)], and whether its statistics."""

    checkpoint: Checkpoint
    views: list = field(default_factory=list)
    stats: object = None  # latents.StatsSettings, or None when fresh (or no samples)
    decoding: object = None  # settings.Decoding of the run

    def plain(self) -> tuple:
        """Return the task as a worker receives it: plain values and the views."""
        c = self.checkpoint
        return (c.epoch, str(c.path), c.stamp(), list(self.views), self.stats, self.decoding)


def _stale(manifest: Manifest, name: str, entry: dict, force: bool, made) -> bool:
    return (force and name not in made) or not manifest.is_fresh(name, entry)


def stale_tasks(manifest: Manifest, selected: list[Checkpoint], views, stats=None, *, decoding=None,
                force: bool = False, made=frozenset()) -> list[Task]:
    """Return a Task for each selected checkpoint with a missing or stale file, in epoch order.

    views : [(view, settings)] of per-checkpoint views, in registry order.
    stats : latents.StatsSettings, or None for a run without samples.
    decoding : the run's settings.Decoding, part of the record of every view that decodes.
    force : draw again even what is fresh, except the files in `made` (made by this render already).
    """
    tasks = []
    for ckpt in selected:
        stamp = ckpt.stamp()
        todo = [(v, s) for v, s in views if _stale(manifest, v.file(ckpt.epoch),
                                                   frame_record(stamp, s, decoding if v.decodes else None),
                                                   force, made)]
        want = stats is not None and _stale(manifest, stats_file(ckpt.epoch), frame_record(stamp, stats), force, made)
        if todo or want:
            tasks.append(Task(ckpt, todo, stats if want else None, decoding))
    return tasks


def add_animations(tasks: list[Task], manifest: Manifest, checkpoints: list[Checkpoint], animations, *,
                   decoding=None, force: bool = False) -> list[Task]:
    """Return `tasks` with each stale ANIMATION view [(view, settings)] added to its checkpoint's task."""
    by_epoch = {t.checkpoint.epoch: t for t in tasks}
    for view, s in animations:
        ckpt = next(c for c in checkpoints if c.epoch == view.animation_epoch(s))
        if force or not manifest.is_fresh(view.file(), frame_record(ckpt.stamp(), s, decoding)):
            by_epoch.setdefault(ckpt.epoch, Task(ckpt, decoding=decoding)).views.append((view, s))
    return sorted(by_epoch.values(), key=lambda t: t.checkpoint.epoch)


def gif_record(manifest: Manifest, view, epochs: list[int], settings: dict) -> dict:
    """Return what a view's GIF entry must equal: its frames' records, in epoch order, and settings."""
    return {"frames": [[view.file(e), manifest.files[view.file(e)]] for e in epochs], "settings": settings}
