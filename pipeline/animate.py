"""Frames of every epoch -> each animated view's GIF and MP4, and TensorBoard's events file.

Each is rebuilt only when one of its frames, captions or settings changed
since it was made (the manifest records all three).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline import grid, plan, writers

__all__ = ["caption_text", "frame_epochs", "build_animations", "write_tensorboard", "CAPTION_HEIGHT", "TENSORBOARD"]

CAPTION_HEIGHT = 16  # pixels of the band above each GIF frame
TENSORBOARD = "tensorboard"


def caption_text(epoch: int, history: dict, width: int) -> str:
    """Return a frame's caption: the epoch and, when history.csv has them, its loss and kl."""
    text = f"epoch {epoch:>{width}}"
    row = history.get(epoch, {})
    for key, fmt in (("loss", ".1f"), ("kl", ".2f")):
        if key in row:
            text += f"  {key} {row[key]:{fmt}}"
    return text


def frame_epochs(epochs: list[int], max_frames: int, spacing: str = "even") -> list[int]:
    """Return at most `max_frames` of `epochs` for an animation, the first and the last always in.

    even: spread evenly over the list; log: denser early, where training changes most.
    """
    n = len(epochs)
    if n <= max_frames:
        return list(epochs)
    if spacing == "log":
        positions = np.geomspace(1, n, max_frames) - 1
    else:
        positions = np.linspace(0, n - 1, max_frames)
    chosen = sorted(set(np.rint(positions).astype(int).tolist()) | {0, n - 1})
    return [epochs[i] for i in chosen]


def build_animations(manifest: plan.Manifest, selected, views, animation, history: dict, *,
                     force: bool) -> list[str]:
    """Rebuild each animated view's GIF (and MP4 with `animation.mp4`) that is stale; return their names.

    An animation shows at most `animation.max_frames` epochs (see `frame_epochs`); every epoch keeps its PNG.
    """
    out_dir, rebuilt = manifest.out_dir, []
    for view in views:
        epochs = frame_epochs(manifest.rendered_epochs(view.file, selected), animation.max_frames,
                              animation.frame_spacing)
        if not epochs:
            continue
        width = len(str(epochs[-1]))
        captions = [caption_text(e, history, width) for e in epochs]
        record = plan.gif_record(manifest, view, epochs, {"fps": animation.fps, "captions": captions})
        targets = [f"{view.name}.gif"] + ([f"{view.name}.mp4"] if animation.mp4 else [])
        stale = [name for name in targets if force or not manifest.is_fresh(name, record)]
        if not stale:
            continue
        frames = [grid.caption(writers.read_png(out_dir / view.file(e)), text, height=CAPTION_HEIGHT)
                  for e, text in zip(epochs, captions)]
        for name in stale:
            (writers.write_gif if name.endswith(".gif") else writers.write_mp4)(out_dir / name, frames,
                                                                                fps=animation.fps)
            manifest.files[name] = record
            rebuilt.append(name)
    return rebuilt


def write_tensorboard(manifest: plan.Manifest, selected, views, history: dict, *, force: bool) -> list[str]:
    """Rewrite OUT/tensorboard/ when a frame or the history changed; return what was rewritten.

    One image per view and epoch (tag vaeviz/<view>, step = epoch) and the
    history as scalars. Rewriting whole keeps re-runs from duplicating steps.
    """
    images = {view.name: [(e, view.file(e)) for e in manifest.rendered_epochs(view.file, selected)]
              for view in views}
    record = {"images": {v: [[e, manifest.files[n]] for e, n in items] for v, items in images.items()},
              "history": [history[e] for e in sorted(history)]}  # a list: JSON keys would be strings
    name = f"{TENSORBOARD}/{writers.TENSORBOARD_EVENTS}"
    if not force and manifest.is_fresh(name, record):
        return []
    out_dir = Path(manifest.out_dir)
    writers.write_tensorboard(out_dir / TENSORBOARD, scalars=history,
                              images={v: [(e, out_dir / n) for e, n in items] for v, items in images.items()})
    manifest.files[name] = record
    return [name]
