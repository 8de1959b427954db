"""One checkpoint -> its files: one encode, one decode of every view's codes, draw, write.

`draw_checkpoint` is the pure part (a models object in, arrays out); it asks
each view for its codes and hands each its share of one batched decode, so
one checkpoint costs one encoder call and one decoder call whatever is drawn.
`render_checkpoint` loads the checkpoint and writes what was drawn.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from pipeline import grid, plan, run, writers
from pipeline.latents import kl_per_dim, latent_stats, stats_file
from pipeline.views.base import ANALYSIS, ANIMATION, FRAME, Inputs

__all__ = ["encode", "draw_checkpoint", "render_checkpoint"]


def encode(models, samples: np.ndarray | None) -> Inputs:
    """Return the Inputs of the checkpoint loaded in `models`: the samples and their encodings."""
    if samples is None:
        return Inputs(latent_dim=models.latent_dim)
    z_mean, z_log_var = models.encode(samples)
    kl = None if z_log_var is None else kl_per_dim(z_mean, z_log_var).tolist()
    return Inputs(latent_dim=models.latent_dim, images=samples, z_mean=z_mean, z_log_var=z_log_var, kl=kl)


def draw_checkpoint(models, inputs: Inputs, work) -> tuple[dict, int]:
    """Return ({view name: its drawing}, count of NaN or Inf pixels decoded) for [(view, settings)].

    A FRAME's drawing is a uint8 grid, an ANIMATION's a list of them, an
    ANALYSIS's a grid or a dict of numbers. All decoded in one batched call.
    """
    decoding = [(view, s) for view, s in work if view.kind in (FRAME, ANIMATION)]
    codes = [view.codes(s, inputs) for view, s in decoding]
    drawn, nonfinite = {}, 0
    if codes:
        bounds = np.cumsum([0] + [len(c) for c in codes])
        images = models.decode(np.concatenate(codes))
        nonfinite = int(grid.nonfinite_mask(images).sum())
        for (view, s), a, b in zip(decoding, bounds[:-1], bounds[1:]):
            drawn[view.name] = view.draw(s, images[a:b], inputs)
    for view, s in work:
        if view.kind == ANALYSIS:
            drawn[view.name] = view.analyze(s, inputs)
    return drawn, nonfinite


def _write(view, s, drawing, out_dir: Path, epoch: int) -> str:
    """Write one view's drawing of a checkpoint; return its file name."""
    name = view.file(epoch)
    if view.kind == ANIMATION:
        writers.write_gif(out_dir / name, drawing, fps=s.fps)
    elif isinstance(drawing, dict):
        writers.write_json(out_dir / name, drawing)
    else:
        writers.write_png(out_dir / name, drawing)
    return name


def render_checkpoint(models, samples, task: tuple, out_dir: Path) -> dict:
    """Load a checkpoint into `models`, draw and write its files; return what happened.

    task : (epoch, checkpoint path, stamp, [(view, settings)], stats settings or None).
    Returns {"epoch", "files": {name: manifest record}, "error": None or a reason,
    "warning": None or a message, "seconds"}. One bad checkpoint never raises.
    """
    epoch, path, stamp, work, stats = task
    started = time.perf_counter()
    result = {"epoch": epoch, "files": {}, "error": None, "warning": None}
    try:
        models.load(Path(path))
        inputs = encode(models, samples)
        if stats is not None:
            writers.write_json(out_dir / stats_file(epoch), latent_stats(inputs.z_mean, inputs.z_log_var))
            result["files"][stats_file(epoch)] = plan.frame_record(stamp, stats)
        drawn, nonfinite = draw_checkpoint(models, inputs, work)
        for view, s in work:
            result["files"][_write(view, s, drawn[view.name], out_dir, epoch)] = plan.frame_record(stamp, s)
        if nonfinite:
            result["warning"] = (f"{nonfinite} pixels are NaN or Inf (the weights or codes are not finite); "
                                 f"they are shown in red")
    except run.CheckpointError as err:
        result["error"] = str(err)
    except Exception as err:  # one bad checkpoint must not stop the others
        result["error"] = f"{Path(path).name}: {type(err).__name__}: {err}"
    result["seconds"] = time.perf_counter() - started
    return result
