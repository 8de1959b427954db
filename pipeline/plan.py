"""Which checkpoints to render and which of their frames are missing or stale.

A frame is a pure function of (checkpoint bytes, samples, settings); the
manifest records, per output file, the checkpoint stamp and the settings that
made it, so planning needs only `stat` and JSON: no TensorFlow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.run import Checkpoint

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1


def frame_name(view: str, epoch: int) -> str:
    """Return the output path, relative to the outputs folder, of a view's frame of an epoch.

    `latents` frames are JSON statistics; the traversal is one GIF of one epoch.
    """
    if view == "traversal":
        return "traversal.gif"
    return f"{view}/epoch_{epoch:04d}.{'json' if view == 'latents' else 'png'}"


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


def read_manifest(out_dir: Path) -> dict:
    """Return the outputs folder's manifest ({"files": {...}}), empty if absent or unreadable."""
    try:
        manifest = json.loads((Path(out_dir) / MANIFEST).read_text())
        if manifest.get("version") == MANIFEST_VERSION and isinstance(manifest.get("files"), dict):
            return manifest
    except (OSError, ValueError, AttributeError):
        pass
    return {"version": MANIFEST_VERSION, "files": {}}


def is_fresh(out_dir: Path, manifest: dict, name: str, record: dict) -> bool:
    """Return whether output `name` exists and was made from exactly `record`."""
    return manifest["files"].get(name) == record and (Path(out_dir) / name).is_file()


def frame_record(checkpoint: Checkpoint, settings: dict) -> dict:
    """Return what a frame's manifest entry must equal for the frame to be fresh."""
    return {"checkpoint": checkpoint.stamp(), "settings": settings}


@dataclass
class Task:
    """One checkpoint to load, and the views of it to render."""

    checkpoint: Checkpoint
    views: list[str] = field(default_factory=list)


def stale_tasks(out_dir: Path, manifest: dict, selected: list[Checkpoint],
                view_settings: dict[str, dict], *, force: bool = False) -> list[Task]:
    """Return a Task for each selected checkpoint with a missing or stale frame."""
    tasks = []
    for ckpt in selected:
        views = [v for v, s in view_settings.items()
                 if force or not is_fresh(out_dir, manifest, frame_name(v, ckpt.epoch), frame_record(ckpt, s))]
        if views:
            tasks.append(Task(ckpt, views))
    return tasks


def rendered_epochs(out_dir: Path, manifest: dict, view: str, selected: list[Checkpoint]) -> list[int]:
    """Return the selected epochs whose frame of `view` the manifest records and the disk holds."""
    return [c.epoch for c in selected
            if frame_name(view, c.epoch) in manifest["files"] and (Path(out_dir) / frame_name(view, c.epoch)).is_file()]


def gif_record(manifest: dict, view: str, epochs: list[int], settings: dict) -> dict:
    """Return what a view's GIF entry must equal: its frames' records, in epoch order, and settings."""
    frames = [[frame_name(view, e), manifest["files"][frame_name(view, e)]] for e in epochs]
    return {"frames": frames, "settings": settings}
