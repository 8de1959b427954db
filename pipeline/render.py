"""Render a run directory: inputs, reconstructions, latent walks and their GIFs.

    python -m pipeline.render checkpoints/demo            # everything, all cores
    python -m pipeline.render checkpoints/demo --every 5  # every 5th checkpoint and the last

The CLI is thin: `render()` does the work and raises RunError for a folder
that cannot be rendered; the CLI turns that into exit code 2. TensorFlow is
imported only when a frame must actually be drawn.
"""

from __future__ import annotations

import io
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import click
import numpy as np

from pipeline import plan, run
from pipeline.frames import rank_latents
from pipeline.run import RunError

ALL_VIEWS = ("recon", "walk", "manifold", "samples", "interp", "traversal")
GIF_VIEWS = ("recon", "walk", "manifold", "samples", "interp")
PRIOR_Z = "prior_z.npy"
TENSORBOARD = "tensorboard"
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
    animations: list[str] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    warnings: dict[int, str] = field(default_factory=dict)

    def line(self) -> str:
        if not self.rendered and not self.failed and not self.animations:
            return (f"nothing to render: all {self.selected} selected checkpoints are up to date in "
                    f"{self.out_dir} ({self.seconds:.2f} s; --force renders again)")
        return (f"rendered {len(self.rendered)} checkpoints ({self.frames} frames), skipped {self.skipped} "
                f"up to date, failed {len(self.failed)}, {len(self.animations)} animations rebuilt, "
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


def render(run_dir, *, out_dir=None, every=None, epochs=None, views=("recon", "walk"), walk_steps=10,
           walk_range=(0.05, 0.95), pad=2, channels=None, normalize="global", scale=1, data=None, fps=5.0,
           mp4=False, tensorboard=False, sort_latents=None, active_kl=0.01, max_latents=None,
           walk_anchor="prior", manifold_dims=None, traverse_epoch=None, n_prior=64, interp_pairs=8,
           interp_steps=8, jobs=None, backend="loky", scheduler=None, force=False, safe_mode=True, imports=(),
           progress=None, log=lambda msg: None) -> Summary:
    """Render the selected checkpoints of `run_dir` into `out_dir`; return a Summary.

    Raises RunError for a folder that cannot be rendered (nothing written
    then), ValueError for settings that do not fit the run.
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

    def note(message):
        summary.notes.append(message)
        log(message)

    unknown = set(views) - set(ALL_VIEWS)
    if unknown:
        raise ValueError(f"unknown view(s) {sorted(unknown)}; choose from {', '.join(ALL_VIEWS)}.")
    latent_dim = int(info["latent_dim"])
    samples_path, message = _samples_source(run_dir, out_dir, info, data)
    if message:
        note(message)
    samples = run.read_samples(samples_path)["images"] if samples_path else None
    if samples is not None and (samples.ndim != 4 or len(samples) == 0
                                or list(samples.shape[1:]) != list(info["input_shape"])):
        raise RunError(f"`{samples_path}` holds " + ("no images" if samples.ndim and not len(samples) else
                       f"images of shape {samples.shape}") + f", but the model takes "
                       f"(N >= 1, {', '.join(map(str, info['input_shape']))}). Delete it and pass --data PATH "
                       f"to choose the samples again.")
    needs_samples = [v for v in views if v in ("recon", "interp")]
    if samples is None and needs_samples:
        views = [v for v in views if v not in needs_samples]
    if "manifold" in views and latent_dim < 2:
        raise ValueError(f"the manifold view needs latent_dim >= 2; this run has {latent_dim}.")

    value_range = [float(v) for v in info["value_range"]]
    shown = {"channels": None if channels is None else [list(c) if isinstance(c, tuple) else c for c in channels],
             "value_range": value_range, "normalize": normalize, "scale": scale}
    grid.display(np.zeros((1, 1, 1, info["input_shape"][-1])), **shown)  # validates --channels early
    inputs_u8 = grid.display(samples, **shown) if samples is not None else None
    picture = {**shown, "pad": pad,
               "pad_value": grid.contrasting_pad(inputs_u8) if inputs_u8 is not None else 128}
    walk = {"walk_steps": walk_steps, "walk_range": [float(walk_range[0]), float(walk_range[1])]}
    common = {**picture, **walk, "active_kl": active_kl, "anchor": walk_anchor, "fps": fps,
              "interp_pairs": interp_pairs, "interp_steps": interp_steps,
              "traversal_anchors": 4, "traverse_epoch": None, "order": None,
              "manifold_dims": None, "traversal_dims": None, "prior_z": None}
    view_settings = {}
    if samples is not None:
        samples_stamp = _stamp(samples_path)
        view_settings["latents"] = {"samples": samples_stamp}

    manifest = plan.read_manifest(out_dir)
    files = manifest["files"]
    out_dir.mkdir(parents=True, exist_ok=True)
    run.remove_stale_temps(out_dir)  # half-written files of an interrupted render
    n_jobs = max(1, jobs or batch.cores())

    def run_tasks(tasks, settings):
        """Render `tasks` in parallel, record results in the manifest; return results by epoch."""
        if not tasks:
            return {}
        # Only --jobs 1 renders here. Otherwise the pool has --jobs workers even for one task:
        # this process never pays TensorFlow's start-up, every worker warms up at once, and a
        # worker's thread count (fixed when its TensorFlow starts) fits the full pool.
        where = "inline" if n_jobs == 1 and backend == "loky" else backend
        threads = max(1, batch.cores() // n_jobs)
        chunks = [c for c in np.array_split(np.arange(len(tasks)), min(len(tasks), n_jobs * 4)) if len(c)]
        job_list = [{
            "run_dir": str(run_dir), "out_dir": str(out_dir),
            "samples_path": str(samples_path) if samples_path else None,
            "tasks": [(t.checkpoint.epoch, str(t.checkpoint.path), t.checkpoint.stamp(), t.views)
                      for t in (tasks[i] for i in chunk)],
            "settings": settings, "common": common, "threads": threads,
            "safe_mode": safe_mode, "imports": list(imports),
        } for chunk in chunks]
        log(f"rendering {len(tasks)} checkpoints with {n_jobs} job(s) x {threads} thread(s)")
        done, by_epoch = 0, {}
        for results in batch.run_jobs(job_list, n_jobs=n_jobs, backend=where, scheduler=scheduler):
            for result in results:
                by_epoch[result["epoch"]] = result
                if result["error"]:
                    for v in settings:  # a failed frame is no longer the checkpoint's picture
                        files.pop(plan.frame_name(v, result["epoch"]), None)
                else:
                    files.update(result["files"])
            writers.write_json(out_dir / plan.MANIFEST, manifest)  # progress survives a crash
            done += len(results)
            if progress:
                progress(done, len(tasks))
        return by_epoch

    # Phase 1: the last checkpoint's KL orders the latents of every frame alike.
    has_kl = samples is not None and len(info.get("encoder_outputs", ["z_mean"])) > 1
    if sort_latents == "kl" and not has_kl:
        note("cannot sort latents by KL: " + ("the run has no samples to encode"
             if samples is None else "the encoder outputs no z_log_var") + "; walk rows in index order")
    elif sort_latents is None and samples is not None and not has_kl:
        note("the encoder outputs no z_log_var: no KL per latent; walk rows in index order")
    sort_latents = "kl" if sort_latents in (None, "kl") and has_kl else "index"
    last = selected[-1]
    kl_last, first_pass = None, {}
    if has_kl:
        first_pass = run_tasks(plan.stale_tasks(out_dir, manifest, [last], {"latents": view_settings["latents"]},
                                           force=force), {"latents": view_settings["latents"]})
        if first_pass.get(last.epoch, {}).get("error"):
            summary.failed[last.epoch] = first_pass[last.epoch]["error"]
        stats_path = out_dir / plan.frame_name("latents", last.epoch)
        if stats_path.is_file():
            kl_last = json.loads(stats_path.read_text())["kl"]
    ranked = rank_latents(kl_last) if sort_latents == "kl" and kl_last else list(range(latent_dim))
    common["order"] = ranked[:max_latents] if max_latents else ranked
    if "manifold" in views:
        common["manifold_dims"] = list(manifold_dims) if manifold_dims else ranked[:2]
        if not all(0 <= d < latent_dim for d in common["manifold_dims"]) or len(set(common["manifold_dims"])) != 2:
            raise ValueError(f"--manifold-dims must be two different dimensions below {latent_dim}; "
                             f"received {manifold_dims}.")
    if "traversal" in views:
        active = [d for d in ranked if kl_last is None or kl_last[d] >= active_kl]
        common["traversal_dims"] = (active or ranked)[:max_latents or 10]
        target = traverse_epoch if traverse_epoch is not None else last.epoch
        if target not in {c.epoch for c in checkpoints}:
            raise ValueError(f"--traverse-epoch {target} has no checkpoint (the run has epochs "
                             f"{checkpoints[0].epoch}..{checkpoints[-1].epoch}).")
        common["traverse_epoch"] = target
    if "samples" in views:
        common["prior_z"] = str(_prior_codes(out_dir, n_prior, latent_dim, int(info.get("seed", 0))))

    # Phase 2: every stale frame of every selected view.
    keys = {"recon": (), "walk": ("walk_steps", "walk_range", "order", "anchor", "active_kl"),
            "manifold": ("walk_steps", "walk_range", "manifold_dims"), "samples": (),
            "interp": ("interp_pairs", "interp_steps"),
            "traversal": ("walk_steps", "walk_range", "traversal_dims", "active_kl", "fps", "traverse_epoch")}
    for view in views:
        settings = {**picture, **{k: common[k] for k in keys[view]}}
        if view in ("recon", "interp") or (view in ("walk", "traversal") and has_kl):
            settings["samples"] = samples_stamp  # encoded samples (and, for labels, their KL)
        if view == "samples":
            settings["prior_z"] = _stamp(Path(common["prior_z"]))
        view_settings[view] = settings
    if inputs_u8 is not None:
        record = {"samples": samples_stamp, "settings": picture}
        if force or not plan.is_fresh(out_dir, manifest, "inputs.png", record):
            writers.write_png(out_dir / "inputs.png", grid.tile(
                inputs_u8, cols=grid.square_cols(len(inputs_u8)), pad=pad, pad_value=picture["pad_value"]))
            files["inputs.png"] = record

    frame_views = {v: st for v, st in view_settings.items() if v != "traversal"}
    tasks = plan.stale_tasks(out_dir, manifest, selected, frame_views, force=force)
    made_now = set(first_pass.get(last.epoch, {}).get("files", {}))  # phase 1's stats, even with --force
    tasks = [plan.Task(t.checkpoint, [v for v in t.views if plan.frame_name(v, t.checkpoint.epoch) not in made_now])
             for t in tasks]
    tasks = [t for t in tasks if t.views]
    if "traversal" in views:
        target = next(c for c in checkpoints if c.epoch == common["traverse_epoch"])
        if force or not plan.is_fresh(out_dir, manifest, plan.frame_name("traversal", target.epoch),
                                      plan.frame_record(target, view_settings["traversal"])):
            task = next((t for t in tasks if t.checkpoint.epoch == target.epoch), None)
            if task is None:
                tasks.append(task := plan.Task(target, []))
            task.views.append("traversal")
    summary.skipped = len(selected) - len({t.checkpoint.epoch for t in tasks} & {c.epoch for c in selected})
    tasks.sort(key=lambda t: t.checkpoint.epoch)
    for epoch, result in run_tasks(tasks, view_settings).items():
        if result["error"]:
            summary.failed[epoch] = result["error"]
        else:
            summary.rendered.append(epoch)
            summary.frames += sum(1 for name in result["files"] if not name.endswith(".json"))
            if result.get("warning"):
                summary.warnings[epoch] = result["warning"]
    summary.failed = {e: r for e, r in summary.failed.items() if e not in summary.rendered}

    history = {int(r["epoch"]): r for r in run.read_history(run_dir / run.HISTORY_CSV)}
    _build_gifs(out_dir, manifest, selected, [v for v in views if v in GIF_VIEWS], fps=fps, force=force,
                summary=summary, history=history, mp4=mp4)
    if tensorboard:
        _write_tensorboard(out_dir, manifest, selected, [v for v in views if v in GIF_VIEWS], history,
                           force=force, summary=summary)
    if has_kl or samples is not None:
        _write_latents_csv(out_dir, manifest, selected)
    from pipeline.report import write_report

    write_report(out_dir, run_dir=run_dir, manifest=manifest, selected=selected, views=views,
                 settings={**picture, "views": list(views), **{k: common[k] for k in
                           ("walk_steps", "walk_range", "order", "anchor", "active_kl", "manifold_dims")}},
                 history=history)
    writers.update_json(out_dir / plan.MANIFEST, manifest)
    summary.rendered.sort()
    summary.seconds = time.perf_counter() - started
    return summary


def _prior_codes(out_dir: Path, n: int, latent_dim: int, seed: int) -> Path:
    """Return the path of the fixed prior codes, written once so every epoch decodes the same z."""
    from pipeline import writers
    from pipeline.frames import prior_codes

    path = out_dir / PRIOR_Z
    if path.is_file():
        try:
            z = np.load(path, allow_pickle=False)
            if z.shape == (n, latent_dim):
                return path
        except (OSError, ValueError):
            pass
    buf = io.BytesIO()
    np.save(buf, prior_codes(n, latent_dim, seed=seed))
    writers.write_bytes(path, buf.getvalue())
    return path


def _write_latents_csv(out_dir: Path, manifest: dict, selected) -> None:
    """Write latents.csv (epoch, dim, kl, mean, std of z_mean) from the epochs' latent stats."""
    from pipeline import writers

    lines = ["epoch,dim,kl,mean,std"]
    for epoch in plan.rendered_epochs(out_dir, manifest, "latents", selected):
        stats = json.loads((out_dir / plan.frame_name("latents", epoch)).read_text())
        for d, (mean, std) in enumerate(zip(stats["mean"], stats["std"])):
            kl = "" if stats["kl"] is None else f"{stats['kl'][d]:.6g}"
            lines.append(f"{epoch},{d},{kl},{mean:.6g},{std:.6g}")
    writers.update_bytes(out_dir / "latents.csv", ("\n".join(lines) + "\n").encode())


def caption_text(epoch: int, history: dict, width: int) -> str:
    """Return a frame's caption: the epoch and, when history.csv has them, its loss and kl."""
    text = f"epoch {epoch:>{width}}"
    row = history.get(epoch, {})
    for key, fmt in (("loss", ".1f"), ("kl", ".2f")):
        if key in row:
            text += f"  {key} {row[key]:{fmt}}"
    return text


def _build_gifs(out_dir, manifest, selected, views, *, fps, force, summary, history, mp4=False) -> None:
    """Rebuild each view's GIF (and MP4) whose frames, captions or settings changed since it was made."""
    from pipeline import grid, writers

    files = manifest["files"]
    for view in views:
        epochs = plan.rendered_epochs(out_dir, manifest, view, selected)
        if not epochs:
            continue
        width = len(str(epochs[-1]))
        captions = [caption_text(e, history, width) for e in epochs]
        record = plan.gif_record(manifest, view, epochs, {"fps": fps, "captions": captions})
        targets = [f"{view}.gif"] + ([f"{view}.mp4"] if mp4 else [])
        stale = [name for name in targets if force or not plan.is_fresh(out_dir, manifest, name, record)]
        if not stale:
            continue
        frames = [grid.caption(writers.read_png(out_dir / plan.frame_name(view, e)), text, height=GIF_CAPTION_HEIGHT)
                  for e, text in zip(epochs, captions)]
        for name in stale:
            (writers.write_gif if name.endswith(".gif") else writers.write_mp4)(out_dir / name, frames, fps=fps)
            files[name] = record
            summary.animations.append(name)


def _write_tensorboard(out_dir, manifest, selected, views, history, *, force, summary) -> None:
    """Rewrite OUT/tensorboard/ when a frame or the history changed: one image per view and epoch
    (tag vaeviz/<view>, step = epoch) and the history as scalars. Rewriting whole keeps re-runs
    from duplicating steps."""
    from pipeline import writers

    files = manifest["files"]
    images = {view: [(e, plan.frame_name(view, e)) for e in plan.rendered_epochs(out_dir, manifest, view, selected)]
              for view in views}
    record = {"images": {v: [[e, files[n]] for e, n in items] for v, items in images.items()},
              "history": [history[e] for e in sorted(history)]}  # a list: JSON keys would be strings
    name = f"{TENSORBOARD}/{writers.TENSORBOARD_EVENTS}"
    if not force and plan.is_fresh(out_dir, manifest, name, record):
        return
    writers.write_tensorboard(out_dir / TENSORBOARD,
                              images={v: [(e, out_dir / n) for e, n in items] for v, items in images.items()},
                              scalars=history)
    files[name] = record
    summary.animations.append(name)


def follow_run(run_dir, *, poll: float = 2.0, idle_timeout: float = 600.0, on_summary=lambda s: None,
           log=lambda msg: None, sleep=time.sleep, **options) -> list[Summary]:
    """Render `run_dir` again and again as checkpoints appear; return every pass's Summary.

    Stops when run.json says the run finished and a pass found no new
    checkpoint, or after `idle_timeout` seconds without a new checkpoint
    (KeyboardInterrupt stops it too: every file is written atomically and the
    manifest after each chunk, so the outputs stay consistent). Waits for a
    run directory that does not exist yet.
    """
    summaries, seen, last_new = [], None, time.monotonic()
    while True:
        stamps = [c.stamp() for c in run.list_checkpoints(run_dir)]
        if stamps != seen:
            seen, last_new = stamps, time.monotonic()
            try:
                summary = render(run_dir, **options)
            except RunError as err:
                if (Path(run_dir) / run.RUN_JSON).is_file() and stamps:
                    raise  # a broken run, not one still starting
                log(f"waiting for {run_dir}: {err}")
            else:
                summaries.append(summary)
                on_summary(summary)
        try:
            finished = run.read_run(run_dir).get("finished", False)
        except RunError:
            finished = False
        if finished and [c.stamp() for c in run.list_checkpoints(run_dir)] == seen:
            log("the run finished; every checkpoint is rendered")
            return summaries
        if time.monotonic() - last_new > idle_timeout:
            log(f"no new checkpoint for {idle_timeout:g} s: stopping")
            return summaries
        sleep(poll)


# --- CLI -------------------------------------------------------------------


class NotARun(click.ClickException):
    """A folder that cannot be rendered: exit code 2, like bad usage."""

    exit_code = 2


def _channels(ctx, param, value):
    if value is None:
        return None
    from pipeline.grid import parse_channels

    try:
        return parse_channels(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


def _views(ctx, param, value):
    views = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in views if v not in ALL_VIEWS]
    if unknown or not views:
        raise click.BadParameter(f"expected views from {','.join(ALL_VIEWS)}, received `{value}`.")
    return views


def _anchor(ctx, param, value):
    head, _, k = value.partition(":")
    if value == "prior" or (head == "posterior" and k.isdigit() and int(k) >= 1):
        return value
    raise click.BadParameter(f"expected `prior` or `posterior:K` (K >= 1), received `{value}`.")


def _dims(ctx, param, value):
    if value is None:
        return None
    try:
        i, j = (int(v) for v in value.split(","))
        return [i, j]
    except ValueError:
        raise click.BadParameter(f"expected two latent indices like `0,3`, received `{value}`.") from None


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
@click.option("--channels", callback=_channels,
              help="Channels to show: indices `0,2,4`, or a colour composite `0:magenta,1:green,2:gray`.")
@click.option("--normalize", type=click.Choice(["global", "per-image", "none"]), default="global", show_default=True,
              help="Intensity scaling: the model's value range, each image's own min..max, or none.")
@click.option("--scale", default=1, show_default=True, type=click.IntRange(1, 16),
              help="Upsample tiles K times (nearest neighbour), for tiny images.")
@click.option("--data", help="Training data to take samples from when the run has no samples.h5.")
@click.option("--fps", default=5.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="GIF frames per second.")
@click.option("--mp4", is_flag=True, help="Also write <view>.mp4 (H.264) beside each GIF.")
@click.option("--tensorboard", is_flag=True, help="Also write frames and history to OUT/tensorboard/.")
@click.option("--views", callback=_views, default="recon,walk", show_default=True,
              help=f"What to render, comma-separated, from: {','.join(ALL_VIEWS)}.")
@click.option("--sort-latents", type=click.Choice(["kl", "index"]),
              help="Walk row order: by the KL of the last rendered checkpoint, or by index. "
                   "[default: kl when the encoder gives z_log_var]")
@click.option("--active-kl", default=0.01, show_default=True, type=click.FloatRange(min=0),
              help="Latents with KL (nats) below this are marked inactive (greyed label).")
@click.option("--max-latents", type=click.IntRange(min=1), help="Keep only the K most active walk rows.")
@click.option("--walk-anchor", callback=_anchor, default="prior", show_default=True,
              help="`prior` (others at 0) or `posterior:K` (walk around K samples' encodings).")
@click.option("--manifold-dims", callback=_dims, help="Two latents `i,j` for the manifold. [default: the two most active]")
@click.option("--traverse-epoch", type=int, help="Checkpoint of traversal.gif. [default: the last]")
@click.option("--n-prior", default=64, show_default=True, type=click.IntRange(min=1),
              help="Fixed N(0, I) codes decoded by the `samples` view.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), help="Worker processes. [default: all cores; 1: in this process]")
@click.option("--backend", type=click.Choice(["loky", "dask", "ray"]), default="loky", show_default=True,
              help="Where workers run: this machine (loky), a dask.distributed cluster, or a Ray cluster.")
@click.option("--scheduler", metavar="tcp://HOST:PORT",
              help="With --backend dask: the cluster's scheduler. [default: a local cluster of --jobs workers]")
@click.option("--force", is_flag=True, help="Render everything again, fresh or not.")
@click.option("--unsafe", is_flag=True, help="Load architectures without Keras safe mode (Lambda layers). "
              "Only for run directories you trust.")
@click.option("--import", "imports", multiple=True, metavar="MODULE",
              help="Import MODULE first, to register custom layers the run uses.")
@click.option("--follow", is_flag=True, help="Keep rendering new checkpoints while training runs; stop when "
              "run.json says the run finished, after --idle-timeout, or on Ctrl-C.")
@click.option("--poll", default=2.0, show_default=True, type=click.FloatRange(min=0.05),
              help="Seconds between looks for new checkpoints with --follow.")
@click.option("--idle-timeout", default=600.0, show_default=True, type=click.FloatRange(min=0),
              help="With --follow, stop after this many seconds without a new checkpoint.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar, only the summary line.")
@click.option("--verbose", "-v", is_flag=True, help="Say more; show tracebacks.")
def main(run_dir, *, unsafe, follow, poll, idle_timeout, quiet, verbose, walk_range, **options):
    """Render RUN_DIR's checkpoints into pictures and GIFs.

    \b
    Writes into --out (default outputs/<run name>):
      inputs.png, recon/epoch_NNNN.png, walk/epoch_NNNN.png, recon.gif, walk.gif,
      latents.csv, index.html, and with --views more: manifold/, samples/, interp/, traversal.gif
    A re-run renders only what is missing or stale.

    \b
    Examples:
      python -m pipeline.render checkpoints/demo --every 5 --jobs 2
      python -m pipeline.render checkpoints/demo --follow      # while training runs
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
        if done == total:
            bar.__exit__(None, None, None)
            bar = None

    def report(summary):
        for note in summary.notes:
            if not verbose:
                say(note)
        for epoch, message in sorted(summary.warnings.items()):
            click.echo(f"warning: epoch {epoch}: {message}", err=True)
        for epoch, reason in sorted(summary.failed.items()):
            click.echo(f"failed: epoch {epoch}: {reason}", err=True)
        if follow and summary.rendered:
            click.echo(f"rendered epochs: {', '.join(map(str, summary.rendered))}")
        click.echo(summary.line())

    options.update(walk_range=walk_range, safe_mode=not unsafe,
                   progress=progress if not quiet and sys.stderr.isatty() else None,
                   log=say if verbose else (lambda m: None))
    try:
        if follow:
            summaries = []
            try:
                follow_run(run_dir, poll=poll, idle_timeout=idle_timeout, on_summary=lambda s: (
                    summaries.append(s), report(s)), **options)
            except KeyboardInterrupt:
                say("stopped (Ctrl-C); the outputs are consistent: render again to complete them")
            failed = any(s.failed for s in summaries[-1:])
        else:
            summary = render(run_dir, **options)
            report(summary)
            failed = bool(summary.failed)
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
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
