"""Render a run directory: inputs, reconstructions, latent walks and their GIFs.

    python -m pipeline.render checkpoints/demo            # everything, all cores
    python -m pipeline.render checkpoints/demo --every 5  # every 5th checkpoint and the last

The CLI is thin: `render()` does the work and raises RunError for a folder
that cannot be rendered; the CLI turns that into exit code 2. TensorFlow is
imported only when a frame must actually be drawn.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import click
import numpy as np

from pipeline import plan, run
from pipeline.run import RunError

VIEWS = ("recon", "walk")
GIF_CAPTION_HEIGHT = 16


@dataclass
class Summary:
    """What a render did: frames written, checkpoints skipped as fresh, failures by name."""

    out_dir: Path
    selected: int = 0
    rendered: list[int] = field(default_factory=list)
    frames: int = 0
    skipped: int = 0
    failed: dict[int, str] = field(default_factory=dict)
    gifs: list[str] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        if not self.rendered and not self.failed and not self.gifs:
            return (f"nothing to render: all {self.selected} selected checkpoints are up to date in "
                    f"{self.out_dir} ({self.seconds:.2f} s; --force renders again)")
        return (f"rendered {len(self.rendered)} checkpoints ({self.frames} frames), skipped {self.skipped} "
                f"up to date, failed {len(self.failed)}, {len(self.gifs)} GIFs rebuilt, "
                f"in {self.seconds:.1f} s -> {self.out_dir}")


def default_out_dir(run_dir: Path) -> Path:
    """Return outputs/<run name> (relative to the current folder)."""
    return Path("outputs") / Path(run_dir).resolve().name


def _samples_source(run_dir: Path, out_dir: Path, info: dict, data: str | None):
    """Return (path of the samples file, note): the run's own, or one chosen now from `data`."""
    own = run_dir / run.SAMPLES_H5
    if own.is_file():
        return own, None
    if data is None:
        return None, (f"{run_dir} has no {run.SAMPLES_H5} (trained with CheckpointForViz(run_dir) "
                      f"and no data): rendering the walk only. Pass --data PATH for inputs and recon.")
    from pipeline import data as data_mod

    h, w, c = info["input_shape"]
    images, names = data_mod.load(data, image_size=h if h == w else None, channels=c)
    chosen = info.get("samples") or {}
    n_samples = min(int(chosen.get("n_samples", 64)), len(images))
    indices = run.choose_indices(len(images), n_samples, int(info.get("seed", 0)))
    path = out_dir / run.SAMPLES_H5
    if path.is_file():
        old = run.read_samples(path)
        if np.array_equal(old["indices"], indices) and np.array_equal(old["images"], images[indices]):
            return path, None  # unchanged: keep its mtime, so recon frames stay fresh
    run.write_samples(path, indices=indices, images=images[indices],
                      names=None if names is None else [names[i] for i in indices],
                      seed=int(info.get("seed", 0)), source=str(data))
    return path, f"chose {n_samples} samples from {data} with the run's seed; recorded in {path}"


def _stamp(path: Path) -> dict:
    st = path.stat()
    return {"name": path.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def render(run_dir, *, out_dir=None, every=None, epochs=None, walk_steps=10, walk_range=(0.05, 0.95),
           pad=2, channels=None, data=None, fps=5.0, jobs=None, force=False, safe_mode=True,
           imports=(), progress=None, log=lambda msg: None) -> Summary:
    """Render the selected checkpoints of `run_dir` into `out_dir`; return a Summary.

    Raises RunError for a folder that cannot be rendered (nothing written then).
    `progress(done, total)` is called as checkpoints to render finish.
    """
    from pipeline import batch, grid, writers

    started = time.perf_counter()
    run_dir = Path(run_dir)
    info = run.read_run(run_dir)
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(run_dir)
    checkpoints = run.list_checkpoints(run_dir)
    if not checkpoints:
        raise RunError(f"{run_dir} has no checkpoints yet ({run.WEIGHTS_DIR}/epoch_NNNN.weights.h5). "
                       f"Train with CheckpointForViz for at least one epoch.")
    selected = plan.select(checkpoints, every=every, epochs=epochs)
    if not selected:
        have = f"{checkpoints[0].epoch}..{checkpoints[-1].epoch}"
        raise RunError(f"none of the requested epochs has a checkpoint (the run has epochs {have}).")
    summary = Summary(out_dir=out_dir, selected=len(selected))

    samples_path, note = _samples_source(run_dir, out_dir, info, data)
    if note:
        summary.notes.append(note)
        log(note)
    samples = run.read_samples(samples_path)["images"] if samples_path else None

    value_range = [float(v) for v in info["value_range"]]
    if channels is not None:
        grid.pick_channels(np.zeros((1, 1, 1, info["input_shape"][-1])), channels)  # validates
    inputs_u8 = None
    if samples is not None:
        inputs_u8 = grid.to_uint8(grid.pick_channels(samples, channels), value_range=value_range)
    common = {"channels": None if channels is None else list(channels), "value_range": value_range,
              "pad": pad, "pad_value": grid.contrasting_pad(inputs_u8) if inputs_u8 is not None else 128,
              "walk_steps": walk_steps, "walk_range": [float(walk_range[0]), float(walk_range[1])]}
    picture = {k: common[k] for k in ("channels", "value_range", "pad", "pad_value")}
    view_settings = {"walk": {**picture, "walk_steps": walk_steps, "walk_range": common["walk_range"]}}
    if samples is not None:
        view_settings = {"recon": {**picture, "samples": _stamp(samples_path)}, **view_settings}
    views = [v for v in VIEWS if v in view_settings]

    manifest = plan.read_manifest(out_dir)
    files = manifest["files"]
    out_dir.mkdir(parents=True, exist_ok=True)
    if inputs_u8 is not None:
        record = {"samples": _stamp(samples_path), "settings": picture}
        if force or not plan.is_fresh(out_dir, manifest, "inputs.png", record):
            writers.write_png(out_dir / "inputs.png", grid.tile(
                inputs_u8, cols=grid.square_cols(len(inputs_u8)), pad=pad, pad_value=common["pad_value"]))
            files["inputs.png"] = record

    tasks = plan.stale_tasks(out_dir, manifest, selected, view_settings, force=force)
    summary.skipped = len(selected) - len(tasks)
    if tasks:
        n_jobs = max(1, min(jobs or batch.cores(), len(tasks)))
        threads = max(1, batch.cores() // n_jobs)
        chunks = np.array_split(np.arange(len(tasks)), min(len(tasks), n_jobs * 4))
        jobs_list = [{
            "run_dir": str(run_dir), "out_dir": str(out_dir),
            "samples_path": str(samples_path) if samples_path else None,
            "tasks": [(t.checkpoint.epoch, str(t.checkpoint.path), t.checkpoint.stamp(), t.views)
                      for t in (tasks[i] for i in chunk)],
            "settings": view_settings, "common": common, "threads": threads,
            "safe_mode": safe_mode, "imports": list(imports),
        } for chunk in chunks if len(chunk)]
        log(f"rendering {len(tasks)} checkpoints with {n_jobs} job(s) x {threads} thread(s)")
        done = 0
        for results in batch.run_jobs(jobs_list, n_jobs=n_jobs):
            for result in results:
                if result["error"]:
                    summary.failed[result["epoch"]] = result["error"]
                    for v in views:  # a failed frame is no longer the checkpoint's picture
                        files.pop(plan.frame_name(v, result["epoch"]), None)
                else:
                    summary.rendered.append(result["epoch"])
                    summary.frames += len(result["files"])
                    files.update(result["files"])
            writers.write_json(out_dir / plan.MANIFEST, manifest)  # progress survives a crash
            done += len(results)
            if progress:
                progress(done, len(tasks))

    _build_gifs(out_dir, manifest, selected, views, fps=fps, force=force, summary=summary)
    writers.write_json(out_dir / plan.MANIFEST, manifest)
    summary.rendered.sort()
    summary.seconds = time.perf_counter() - started
    return summary


def _build_gifs(out_dir, manifest, selected, views, *, fps, force, summary) -> None:
    """Rebuild each view's GIF whose frames (or settings) changed since it was made."""
    from pipeline import grid, writers

    files = manifest["files"]
    for view in views:
        epochs = [c.epoch for c in selected
                  if plan.frame_name(view, c.epoch) in files and (out_dir / plan.frame_name(view, c.epoch)).is_file()]
        if not epochs:
            continue
        name = f"{view}.gif"
        record = plan.gif_record(manifest, view, epochs, {"fps": fps, "caption": "epoch"})
        if not force and plan.is_fresh(out_dir, manifest, name, record):
            continue
        width = max(len(str(epochs[-1])), 1)
        frames = [grid.caption(writers.read_png(out_dir / plan.frame_name(view, e)),
                               f"epoch {e:>{width}}", height=GIF_CAPTION_HEIGHT) for e in epochs]
        writers.write_gif(out_dir / name, frames, fps=fps)
        files[name] = record
        summary.gifs.append(name)


# --- CLI -------------------------------------------------------------------


class NotARun(click.ClickException):
    """A folder that cannot be rendered: exit code 2, like bad usage."""

    exit_code = 2


def _channels(ctx, param, value):
    if value is None:
        return None
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected channel indices like `0,2,4`, received `{value}`.") from None


def _epochs(ctx, param, value):
    if value is None:
        return None
    try:
        return plan.parse_epochs(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Outputs folder. [default: outputs/<run name>]")
@click.option("--every", type=click.IntRange(min=1), help="Render every Nth checkpoint, and always the last.")
@click.option("--epochs", callback=_epochs, help="Render these epochs only, e.g. `1,5,10-20`.")
@click.option("--walk-steps", default=10, show_default=True, type=click.IntRange(min=1),
              help="Columns of the latent walk.")
@click.option("--walk-range", nargs=2, type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=(0.05, 0.95), show_default=True,
              help="Quantiles LO HI of the standard normal that the walk spans.")
@click.option("--pad", default=2, show_default=True, type=click.IntRange(min=0), help="Pixels between tiles.")
@click.option("--channels", callback=_channels, help="Channels to show for >3-channel images, e.g. `0,2,4`.")
@click.option("--data", help="Training data to take samples from when the run has no samples.h5.")
@click.option("--fps", default=5.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="GIF frames per second.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), help="Worker processes. [default: all cores; 1: in this process]")
@click.option("--force", is_flag=True, help="Render everything again, fresh or not.")
@click.option("--unsafe", is_flag=True, help="Load architectures without Keras safe mode (Lambda layers). "
              "Only for run directories you trust.")
@click.option("--import", "imports", multiple=True, metavar="MODULE",
              help="Import MODULE first, to register custom layers the run uses.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar, only the summary line.")
@click.option("--verbose", "-v", is_flag=True, help="Say more; show tracebacks.")
def main(run_dir, out_dir, every, epochs, walk_steps, walk_range, pad, channels, data, fps, jobs,
         force, unsafe, imports, quiet, verbose):
    """Render RUN_DIR's checkpoints into pictures and GIFs.

    \b
    Writes into --out (default outputs/<run name>):
      inputs.png, recon/epoch_NNNN.png, walk/epoch_NNNN.png, recon.gif, walk.gif
    A re-run renders only what is missing or stale.

    \b
    Example:
      python -m pipeline.render checkpoints/demo --every 5 --jobs 2
    """
    if walk_range[0] >= walk_range[1]:
        raise click.BadParameter(f"LO must be below HI, received {walk_range[0]} {walk_range[1]}.",
                                 param_hint="--walk-range")
    say = (lambda msg: click.echo(msg, err=True)) if not quiet else (lambda msg: None)
    bar = None

    def progress(done, total):
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total, label="rendering", file=sys.stderr)
            bar.__enter__()
        bar.update(done - bar.pos)

    try:
        summary = render(run_dir, out_dir=out_dir, every=every, epochs=epochs, walk_steps=walk_steps,
                         walk_range=walk_range, pad=pad, channels=channels, data=data, fps=fps, jobs=jobs,
                         force=force, safe_mode=not unsafe, imports=imports,
                         progress=progress if not quiet and sys.stderr.isatty() else None,
                         log=say if verbose else (lambda m: None))
    except RunError as err:
        if verbose:
            raise
        raise NotARun(str(err)) from err
    except ValueError as err:  # bad settings found once the run is read (e.g. --channels)
        if verbose:
            raise
        raise click.UsageError(str(err)) from err
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    for note in summary.notes:
        if not verbose:
            say(note)
    for epoch, reason in sorted(summary.failed.items()):
        click.echo(f"failed: epoch {epoch}: {reason}", err=True)
    click.echo(summary.line())
    if summary.failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
