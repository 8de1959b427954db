"""One checkpoint -> its files: one encode, one decode of every view's codes, draw, write.

`draw_checkpoint` is the pure part (a models object in, arrays out); it asks
each view for its codes and hands each its share of one batched decode, so
one checkpoint costs one encoder call and one decoder call whatever is drawn.
`render_checkpoint` loads the checkpoint and writes what was drawn;
`render_checkpoints` does so for several, drawing one while the next decodes.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from pipeline import grid, plan, run, writers
from pipeline.latents import analysis_summary, kl_per_dim, latent_stats, stats_file
from pipeline.settings import Decoding
from pipeline.views.base import ANALYSIS, ANIMATION, Inputs

__all__ = ["encode", "decode_views", "draw_decoded", "draw_checkpoint", "render_checkpoint", "render_checkpoints"]


def encode(models, samples: dict | None, *, analysis: bool = False) -> Inputs:
    """Return the Inputs of the checkpoint loaded in `models`: the samples ({"images" as fed,
    "conditions", "eval"}) shown as images, and their encodings; with `analysis`, the analysis set's
    codes too (the evaluation set's, or the samples' without one)."""
    if samples is None:
        return Inputs(latent_dim=models.latent_dim)
    fed, conditions = samples["images"], samples.get("conditions")
    z_mean, z_log_var = models.encode(fed, conditions)
    kl = None if z_log_var is None else kl_per_dim(z_mean, z_log_var).tolist()
    found = {}
    if analysis:
        evaluation = samples.get("eval")
        found = {"analysis_z": z_mean} if evaluation is None else {
            "analysis_z": models.encode(evaluation["images"], evaluation["conditions"])[0],
            "analysis_labels": evaluation["labels"],
            "analysis_factors": evaluation["factors"]}
    return Inputs(latent_dim=models.latent_dim, images=np.asarray(fed).reshape(len(fed), *models.image_shape),
                  z_mean=z_mean, z_log_var=z_log_var, kl=kl, conditions=conditions, **found)


def _codes(view, s, inputs: Inputs, decoding: Decoding):
    """Return (codes, their conditions or None, blocks): a view's codes, repeated once per chosen condition
    when the view does not pick conditions itself (blocks: how many repeats, 1 without)."""
    codes = view.codes(s, inputs)
    if isinstance(codes, tuple):
        return codes[0], codes[1], 1
    if not decoding.conditions:
        return codes, None, 1
    values = np.asarray(decoding.conditions, np.float32)
    return np.tile(codes, (len(values), 1)), np.repeat(values, len(codes), axis=0), len(values)


def _in_blocks(view, s, decoded: np.ndarray, inputs: Inputs, blocks: int, labels):
    """Return the view's drawing of `decoded`: one drawing, or one per condition stacked with its label."""
    if blocks == 1:
        return view.draw(s, decoded, inputs)
    drawings = [view.draw(s, part, inputs) for part in np.split(decoded, blocks)]
    if view.kind == ANIMATION:  # frame by frame
        return [grid.stack_labelled(list(frames), labels) for frames in zip(*drawings)]
    return grid.stack_labelled(drawings, labels)


def decode_views(models, inputs: Inputs, work, decoding: Decoding = Decoding()) -> list:
    """Return [(view, settings, its decoded images, blocks)] of the decoding views of [(view, settings)]: every
    view's codes decoded in one batched call."""
    decoding_views = [(view, s) for view, s in work if view.decodes]
    parts = [_codes(view, s, inputs, decoding) for view, s in decoding_views]
    if not parts:
        return []
    bounds = np.cumsum([0] + [len(codes) for codes, _, _ in parts])
    conditions = None if parts[0][1] is None else np.concatenate([c for _, c, _ in parts])
    images = models.decode(np.concatenate([codes for codes, _, _ in parts]), conditions, output=decoding.decoder_output)
    return [(view, s, images[a:b], blocks)
            for (view, s), (_, _, blocks), a, b in zip(decoding_views, parts, bounds[:-1], bounds[1:])]


def draw_decoded(decoded: list, inputs: Inputs, work, decoding: Decoding = Decoding()) -> tuple[dict, int]:
    """Return ({view name: its drawing}, count of NaN or Inf pixels decoded): `decoded` (see decode_views) drawn,
    and the analyses of [(view, settings)] made. Numpy and Pillow only: no model is called."""
    drawn, nonfinite = {}, 0
    for view, s, images, blocks in decoded:
        nonfinite += int(grid.nonfinite_mask(images).sum())
        drawn[view.name] = _in_blocks(view, s, images, inputs, blocks, decoding.condition_labels)
    for view, s in work:
        if view.kind == ANALYSIS:
            drawn[view.name] = view.analyze(s, inputs)
    return drawn, nonfinite


def draw_checkpoint(models, inputs: Inputs, work, decoding: Decoding = Decoding()) -> tuple[dict, int]:
    """Return ({view name: its drawing}, count of NaN or Inf pixels decoded) for [(view, settings)].

    A FRAME's drawing is a uint8 grid, an ANIMATION's a list of them, an
    ANALYSIS's a grid or a dict of numbers. All decoded in one batched call.
    """
    return draw_decoded(decode_views(models, inputs, work, decoding), inputs, work, decoding)


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


def _statistics(models, inputs: Inputs, settings) -> dict:
    """Return the epoch's latent statistics, how likely the samples are under an undecided decoder read as
    logits and as probabilities, and (when asked) where the analysis set's codes lie."""
    stats = latent_stats(inputs.z_mean, inputs.z_log_var)
    if models.decides_output:
        stats["decoder_likelihood"] = models.decoder_likelihood(inputs.images, inputs.z_mean, inputs.conditions)
    if settings.analysis_set is not None:
        stats["analysis"] = analysis_summary(inputs.analysis_z)
    return stats


def render_checkpoint(models, samples: dict | None, task: tuple, out_dir: Path) -> dict:
    """Load a checkpoint into `models`, draw and write its files; return what happened.

    task : (epoch, checkpoint path, stamp, [(view, settings)], stats settings or None, Decoding).
    Returns {"epoch", "files": {name: manifest record}, "error": None or a reason,
    "warning": None or a message, "seconds"}. One bad checkpoint never raises.
    """
    result, finish = _start_checkpoint(models, samples, task, out_dir)
    finish()
    return result


def render_checkpoints(models, samples: dict | None, tasks, out_dir: Path) -> list[dict]:
    """Return render_checkpoint's result for each task, each checkpoint's pictures drawn and written in a second
    thread while the next checkpoint loads and decodes.

    The model calls keep about one and a half of two cores busy (TensorFlow's threads wait on each other); the
    drawing (numpy, Pillow's PNG encoder) releases the GIL and fills the rest. At most one checkpoint's drawing
    waits, so memory holds two checkpoints' images; every file is written before this returns.
    """
    from concurrent.futures import ThreadPoolExecutor

    results, pending = [], None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="vaeviz-draw") as pool:
        for task in tasks:
            result, finish = _start_checkpoint(models, samples, task, out_dir)
            if pending is not None:
                pending.result()
            pending = pool.submit(finish)
            results.append(result)
        if pending is not None:
            pending.result()
    return results


def _start_checkpoint(models, samples: dict | None, task: tuple, out_dir: Path):
    """Load, encode and decode a checkpoint (the model's part); return (its result, `finish()`: draw and write
    its files into the result). Neither raises: a failure is the result's error."""
    epoch, path, stamp, work, stats, decoding = task
    drawn_as = decoding or Decoding()  # a task's None draws as Decoding() and is recorded as None
    started = time.perf_counter()
    result = {"epoch": epoch, "files": {}, "error": None, "warning": None}

    def failed(err: Exception) -> None:  # one bad checkpoint must not stop the others
        result["error"] = str(err) if isinstance(err, run.CheckpointError) else \
            f"{Path(path).name}: {type(err).__name__}: {err}"

    try:
        models.load(Path(path))
        analysis = any(view.needs_analysis for view, _ in work) or bool(stats and stats.analysis_set)
        inputs = encode(models, samples, analysis=analysis)
        if stats is not None:
            writers.write_json(out_dir / stats_file(epoch), _statistics(models, inputs, stats))
            result["files"][stats_file(epoch)] = plan.frame_record(stamp, stats)
        decoded = decode_views(models, inputs, work, drawn_as)
    except Exception as err:
        failed(err)
        result["seconds"] = time.perf_counter() - started
        return result, lambda: None
    spent = time.perf_counter() - started

    def finish() -> None:
        begun = time.perf_counter()
        try:
            drawn, nonfinite = draw_decoded(decoded, inputs, work, drawn_as)
            for view, s in work:
                name = _write(view, s, drawn[view.name], out_dir, epoch)
                result["files"][name] = plan.frame_record(stamp, s, decoding if view.decodes else None)
            if nonfinite:
                result["warning"] = (f"{nonfinite} pixels are NaN or Inf (the weights or codes are not finite); "
                                     f"they are shown in red")
        except Exception as err:
            failed(err)
        result["seconds"] = spent + time.perf_counter() - begun

    return result, finish
