"""Render a run directory into pictures, GIFs and a report, in named phases.

    render(run_dir, settings)
      open_run      run.json, checkpoints, the selection, the fixed samples
      read_facts    what only the run can tell: value range, pad colour, the last checkpoint's KL ranking
      resolve       each chosen view's frozen settings (what it draws with, what the manifest records)
      plan_tasks    the files that are missing or stale
      draw          workers draw them (pipeline.execute -> pipeline.frames -> pipeline.views)
      finish        run pictures, GIFs, TensorBoard, latents.csv, the report, the manifest

`python -m pipeline.render` runs the CLI (`pipeline.cli`). TensorFlow is
imported only by workers, and only when a file must actually be drawn.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from pipeline import execute, grid, latents, plan, run, views, writers
from pipeline.atomic import remove_stale_temps
from pipeline.run import RunError
from pipeline.settings import Decoding, Facts, RenderSettings, record
from pipeline.views.base import ANIMATION, RUN_PICTURE, shown

__all__ = ["render", "render_runs", "follow_run", "Summary", "Source", "default_out_dir"]


@dataclass
class Summary:
    """What a render did: frames written, checkpoints skipped as fresh, failures by epoch."""

    out_dir: Path
    selected: int = 0
    rendered: list[int] = field(default_factory=list)
    frames: int = 0
    skipped: int = 0
    failed: dict[int, str] = field(default_factory=dict)
    rebuilt: list[str] = field(default_factory=list)  # run-level files: GIFs, MP4s, run pictures, events
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    warnings: dict[int, str] = field(default_factory=dict)

    def line(self) -> str:
        if not self.rendered and not self.failed and not self.rebuilt:
            return (f"nothing to render: all {self.selected} selected checkpoints are up to date in "
                    f"{self.out_dir} ({self.seconds:.2f} s; --force renders again)")
        return (f"rendered {len(self.rendered)} checkpoints ({self.frames} frames), skipped {self.skipped} "
                f"up to date, failed {len(self.failed)}, {len(self.rebuilt)} run files rebuilt, "
                f"in {self.seconds:.1f} s -> {self.out_dir}")


@dataclass(frozen=True)
class Source:
    """A run directory as a render reads it: samples are as fed to the model, images as shown."""

    run_dir: Path
    info: dict
    checkpoints: tuple
    selected: tuple
    samples: np.ndarray | None
    samples_path: Path | None
    conditions: np.ndarray | None = None
    evaluation: dict | None = None  # eval.h5's labels and factors (run.read_eval; workers read its images)

    @property
    def eval_path(self) -> Path | None:
        return self.run_dir / run.EVAL_H5 if self.evaluation is not None else None

    @property
    def analysis_stamp(self) -> dict | None:
        """Stamp of the analysis set: the evaluation set, or the samples without one."""
        return run.file_stamp(self.eval_path) if self.eval_path else self.samples_stamp

    @property
    def images(self) -> np.ndarray | None:
        return None if self.samples is None else self.samples.reshape(len(self.samples), *run.image_shape(self.info))

    @property
    def samples_stamp(self) -> dict | None:
        return None if self.samples_path is None else run.file_stamp(self.samples_path)

    @property
    def has_kl(self) -> bool:
        return self.samples is not None and run.encoder_form(self.info) != "mean"


def default_out_dir(run_dir: Path) -> Path:
    """Return outputs/<run name> (relative to the current folder)."""
    return Path("outputs") / Path(run_dir).resolve().name


def render(run_dir, settings: RenderSettings = RenderSettings(), *, progress=None,
           log=lambda msg: None) -> Summary:
    """Render the selected checkpoints of `run_dir`; return a Summary.

    Raises RunError for a folder that cannot be rendered (nothing written
    then), ValueError for settings that do not fit the run.
    `progress(done, total)` is called as checkpoints finish.
    """
    started = time.perf_counter()
    for name in settings.views:
        views.get(name)  # unknown names fail before anything is read
    out_dir = Path(settings.out_dir) if settings.out_dir is not None else default_out_dir(run_dir)
    summary = Summary(out_dir=out_dir)
    note = lambda message: (summary.notes.append(message), log(message))  # noqa: E731 - said once, kept
    source = open_run(Path(run_dir), settings, out_dir, note=note)
    summary.selected = len(source.selected)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out_dir)  # half-written files of an interrupted render
    manifest = plan.Manifest(out_dir)
    workers = _Workers(source, manifest, settings, summary, progress, log)
    facts = read_facts(source, settings, workers, note=note)
    chosen = resolve(settings, facts, source, note=note)
    _write_inputs(source, manifest, facts.picture, force=settings.selection.force)
    tasks = plan_tasks(source, manifest, chosen, settings, facts.decoding, made=workers.made)
    summary.skipped = len(source.selected) - len({t.checkpoint.epoch for t in tasks}
                                                  & {c.epoch for c in source.selected})
    for epoch, result in workers.draw(tasks).items():
        _count(summary, epoch, result)
    summary.failed = {e: r for e, r in summary.failed.items() if e not in summary.rendered}
    finish(source, manifest, chosen, settings, facts, summary)
    summary.rendered.sort()
    summary.seconds = time.perf_counter() - started
    return summary


def _count(summary: Summary, epoch: int, result: dict) -> None:
    if result["error"]:
        summary.failed[epoch] = result["error"]
        return
    summary.rendered.append(epoch)
    summary.frames += sum(1 for name in result["files"] if not name.endswith(".json"))
    if result.get("warning"):
        summary.warnings[epoch] = result["warning"]


# --- open_run ----------------------------------------------------------------


def open_run(run_dir: Path, settings: RenderSettings, out_dir: Path, *, note) -> Source:
    """Return the run as a render reads it, or raise RunError saying what is wrong with it."""
    info = run.read_run(run_dir)
    checkpoints = run.list_checkpoints(run_dir)
    if not checkpoints:
        raise RunError(f"{run_dir} has no checkpoints yet ({run.WEIGHTS_DIR}/epoch_NNNN.weights.h5). "
                       f"Train with CheckpointForViz for at least one epoch.")
    selected = plan.select(checkpoints, every=settings.selection.every, epochs=settings.selection.epochs)
    if not selected:
        have = f"{checkpoints[0].epoch}..{checkpoints[-1].epoch}"
        raise RunError(f"none of the requested epochs has a checkpoint (the run has epochs {have}).")
    if info.get("skipped_epochs"):
        note(f"training skipped the checkpoints of epochs {', '.join(map(str, info['skipped_epochs']))}: they "
             f"could not be written (run.json lists them); the others render")
    samples_path = _samples_source(run_dir, out_dir, info, settings, note)
    found = run.read_samples(samples_path) if samples_path else {"images": None, "conditions": None}
    samples, conditions = found["images"], found["conditions"]
    if samples is not None and (samples.ndim < 2 or len(samples) == 0
                                or list(samples.shape[1:]) != list(info["input_shape"])):
        raise RunError(f"`{samples_path}` holds " + ("no images" if samples.ndim and not len(samples) else
                       f"images of shape {samples.shape}") + f", but the model takes "
                       f"(N >= 1, {', '.join(map(str, info['input_shape']))}). Delete it and pass --data PATH "
                       f"to choose the samples again.")
    if info.get("condition_width") and conditions is None:
        raise RunError(f"{run_dir} is a conditional VAE's run, but its samples carry no conditions: the "
                       f"renderer needs them to draw each condition. Train again with CheckpointForViz(..., "
                       f"conditions=c).")
    evaluation = run.read_eval(run_dir / run.EVAL_H5, images=False) \
        if samples is not None and (run_dir / run.EVAL_H5).is_file() else None
    return Source(run_dir, info, tuple(checkpoints), tuple(selected), samples, samples_path, conditions, evaluation)


def _samples_source(run_dir: Path, out_dir: Path, info: dict, settings: RenderSettings, note) -> Path | None:
    """Return the samples file: the run's own, or one chosen now from --data (None: the run has none)."""
    own, data = run_dir / run.SAMPLES_H5, settings.data
    if own.is_file():
        return own
    if data is None:
        drawn = [n for n in settings.views if not views.get(n).needs_samples]
        note(f"{run_dir} has no {run.SAMPLES_H5} (trained with CheckpointForViz(run_dir) and no data): "
             f"rendering {', '.join(drawn) or 'nothing but the report'} only. Pass --data PATH for the "
             f"inputs and the views that need them.")
        return None
    from pipeline import data as data_mod

    h, w, c = run.image_shape(info)
    loaded = data_mod.load(data, image_size=h if h == w else None, channels=c)
    images, names = loaded.images.reshape(len(loaded.images), *info["input_shape"]), loaded.names
    chosen = info.get("samples") or {}
    n_samples = min(int(chosen.get("n_samples", 64)), len(images))
    indices = run.choose_indices(len(images), n_samples, int(info.get("seed", 0)))
    path = out_dir / run.SAMPLES_H5
    if path.is_file():
        old = run.read_samples(path)
        if np.array_equal(old["indices"], indices) and np.array_equal(old["images"], images[indices]):
            return path  # unchanged: keep its mtime, so recon frames stay fresh
    run.write_samples(path, indices=indices, images=images[indices],
                      names=None if names is None else [names[i] for i in indices],
                      seed=int(info.get("seed", 0)), source=str(data))
    note(f"chose {n_samples} samples from {data} with the run's seed; recorded in {path}")
    return path


# --- read_facts --------------------------------------------------------------


def read_facts(source: Source, settings: RenderSettings, workers, *, note) -> Facts:
    """Return what only the run can tell the views, encoding the last checkpoint if its KL is needed."""
    info = source.info
    picture = replace(settings.picture, value_range=tuple(float(v) for v in info["value_range"]))
    shown(np.zeros((1, 1, 1, run.image_shape(info)[-1])), picture)  # a bad --channels fails before any work
    picture = replace(picture, pad_value=128 if source.samples is None else
                      grid.contrasting_pad(shown(source.images, picture)))
    latent_dim = int(info["latent_dim"])
    stats = _last_stats(source, settings, workers, note) or {}
    kl = stats.get("kl")
    sort_by_kl = settings.latents.sort_latents in (None, "kl") and kl is not None
    return Facts(picture=picture, latent_dim=latent_dim,
                 ranked=tuple(latents.rank_latents(kl) if sort_by_kl else range(latent_dim)),
                 kl=None if kl is None else tuple(kl), samples=source.samples_stamp,
                 seed=int(info.get("seed", 0)), epochs=tuple(c.epoch for c in source.checkpoints),
                 last_epoch=source.selected[-1].epoch,
                 decoding=Decoding(_decoder_output(info, stats.get("decoder_likelihood"), note),
                                   *_condition_blocks(source, settings.latents.conditions)),
                 analysis=stats.get("analysis"), analysis_set=source.analysis_stamp, **_analysis_set_facts(source))


def _analysis_set_facts(source: Source) -> dict:
    """Return what the evaluation set tells the analyses: its classes, and its factors' names and levels."""
    from pipeline.metrics import bin_factors

    evaluation = source.evaluation or {}
    labels, factors = evaluation.get("labels"), evaluation.get("factors")
    return {"classes": None if labels is None else tuple(sorted({str(v) for v in labels})),
            "factor_names": None if factors is None else tuple(evaluation["factor_names"]),
            "factor_levels": None if factors is None else tuple(
                int(bin_factors(factors[:, k]).max()) + 1 for k in range(factors.shape[1]))}


def _stats_settings(source: Source, settings: RenderSettings) -> latents.StatsSettings | None:
    """Return what each epoch's statistics record: the samples, and the analysis set when a view needs it."""
    if source.samples is None:
        return None
    wanted = any(views.get(name).needs_analysis for name in settings.views)
    return latents.StatsSettings(samples=source.samples_stamp, analysis_set=source.analysis_stamp if wanted else None,
                                 decoder_test="bernoulli-likelihood" if run.decides_output(source.info) else None)


def _last_stats(source: Source, settings: RenderSettings, workers, note) -> dict | None:
    """Return the statistics of the last selected checkpoint (drawn first), when KL or the decoder's
    output must be known before the frames; None otherwise."""
    sort = settings.latents.sort_latents
    if not source.has_kl:
        if sort == "kl":
            note("cannot sort latents by KL: " + ("the run has no samples to encode" if source.samples is None
                 else "the encoder outputs no z_log_var") + "; walk rows in index order")
        elif sort is None and source.samples is not None:
            note("the encoder outputs no z_log_var: no KL per latent; walk rows in index order")
    stats = _stats_settings(source, settings)
    if stats is None or not (source.has_kl or run.decides_output(source.info) or stats.analysis_set):
        return None
    last = source.selected[-1]
    for epoch, result in workers.draw(plan.stale_tasks(workers.manifest, [last], [], stats,
                                                       force=settings.selection.force)).items():
        if result["error"]:
            workers.summary.failed[epoch] = result["error"]
    # read from disk, not the manifest: a checkpoint that went bad since keeps the ranking its last
    # good statistics gave, so frames already drawn in that order stay as they are
    if not (workers.manifest.out_dir / latents.stats_file(last.epoch)).is_file():
        return None
    return latents.read_stats(workers.manifest.out_dir, last.epoch)


def _decoder_output(info: dict, likelihood: dict | None, note) -> str:
    """Return how to read the decoder: as run.json states, or, for a linear output layer on [0, 1] images,
    whichever of logits or probabilities gives the fixed samples the higher Bernoulli likelihood."""
    if not run.decides_output(info):
        return info.get("decoder_output") or "probabilities"
    state = ("state it: CheckpointForViz(decoder_output='logits' or 'probabilities'), or "
             "`python -m pipeline.adopt --decoder-output logits|probabilities`")
    if not likelihood:
        note(f"the decoder's output layer is linear and decoder_output is not stated, and there are no samples to "
             f"tell logits from values: drawing decoder(z) clipped to [0, 1]; {state}")
        return "probabilities"
    chosen = max(likelihood, key=likelihood.get)
    other = min(likelihood, key=likelihood.get)
    drawn = {"logits": "logits: vaeviz draws sigmoid(decoder(z))",
             "probabilities": "values: vaeviz draws decoder(z) clipped to [0, 1]"}
    note(f"the decoder's output layer is linear and decoder_output is not stated: read as {drawn[chosen]}, "
         f"because the fixed samples are more likely under that reading (mean Bernoulli log-likelihood "
         f"{likelihood[chosen]:.4g} nats per pixel, against {likelihood[other]:.4g} read as "
         f"{'values' if other == 'probabilities' else 'logits'}); {state}")
    return chosen


def _condition_blocks(source: Source, wanted) -> tuple:
    """Return (condition vectors, labels) a conditional run's prior views are drawn for; (None, None) otherwise.

    One-hot conditions: class k for each k of `wanted` (default: the classes among the samples, up to 10);
    others: the k-th distinct condition vector among the samples (default: the first 10).
    """
    c = source.conditions
    if c is None:
        return None, None
    c = np.asarray(c, np.float32).reshape(len(c), -1)
    one_hot = bool(np.all((c == 0) | (c == 1)) and np.all(c.sum(axis=1) == 1))
    if one_hot:
        width, present = c.shape[1], sorted(set(np.argmax(c, axis=1).tolist()))
        chosen = list(wanted) if wanted else present[:10]
        if any(not 0 <= k < width for k in chosen):
            raise ValueError(f"--conditions must be classes below {width} (the one-hot width); received {wanted}.")
        return tuple(tuple(np.eye(width)[k].tolist()) for k in chosen), tuple(f"c = {k}" for k in chosen)
    distinct = list(dict.fromkeys(tuple(row.tolist()) for row in c))
    chosen = list(wanted) if wanted else list(range(min(10, len(distinct))))
    if any(not 0 <= k < len(distinct) for k in chosen):
        raise ValueError(f"--conditions must index the {len(distinct)} distinct condition vectors among the "
                         f"samples; received {wanted}.")
    return tuple(distinct[k] for k in chosen), tuple(f"condition #{k}" for k in chosen)


# --- resolve, plan_tasks -----------------------------------------------------


def resolve(settings: RenderSettings, facts: Facts, source: Source, *, note) -> list[tuple]:
    """Return [(view, its settings)] of the chosen views, in registry order; a view this run cannot have
    (no samples, no factors, ...) is left out with a note saying what it needs."""
    chosen = []
    for view in (views.get(name) for name in views.names() if name in settings.views):  # in registry order
        reason = None if not view.needs_samples or source.samples is not None else "no samples"
        reason = reason or view.unavailable(facts)
        if reason is None:
            chosen.append((view, view.settings(settings, facts)))
        elif reason != "no samples":  # said once already, by open_run
            note(f"not drawn: {reason}")
    return chosen


def plan_tasks(source: Source, manifest: plan.Manifest, chosen, settings: RenderSettings, decoding, *,
               made) -> list:
    """Return the tasks that draw every missing or stale file of the chosen views (and statistics)."""
    force, stats = settings.selection.force, _stats_settings(source, settings)
    tasks = plan.stale_tasks(manifest, list(source.selected), [(v, s) for v, s in chosen if v.per_checkpoint],
                             stats, decoding=decoding, force=force, made=made)
    return plan.add_animations(tasks, manifest, list(source.checkpoints),
                               [(v, s) for v, s in chosen if v.kind == ANIMATION], decoding=decoding, force=force)


def _write_inputs(source: Source, manifest: plan.Manifest, picture, *, force: bool) -> None:
    """Write inputs.png, the fixed samples as a square grid, unless fresh."""
    if source.samples is None:
        return
    entry = {"samples": source.samples_stamp, "settings": record(picture)}
    if force or not manifest.is_fresh("inputs.png", entry):
        tiles = shown(source.images, picture)
        writers.write_png(manifest.out_dir / "inputs.png", grid.tile(
            tiles, cols=grid.square_cols(len(tiles)), pad=picture.pad, pad_value=picture.pad_value))
        manifest.files["inputs.png"] = entry


# --- draw ------------------------------------------------------------------


class _Workers:
    """Draws tasks with the chosen execution, recording each file made in the manifest as results arrive."""

    def __init__(self, source: Source, manifest: plan.Manifest, settings: RenderSettings, summary: Summary,
                 progress, log):
        self.source, self.manifest, self.summary, self.progress, self.log = source, manifest, summary, progress, log
        self.execution = settings.execution
        self.made: set[str] = set()
        self.n_jobs = settings.execution.jobs or self._default_jobs(settings)

    def _default_jobs(self, settings: RenderSettings) -> int:
        """Return --jobs' default for this render: from the work ahead (unrendered checkpoint x view pairs)
        and the last render's measured seconds per pair (see execute.default_jobs)."""
        files = [v.file for v in (views.get(n) for n in settings.views) if v.per_checkpoint]
        pairs = len(self.source.selected) * len(files) if settings.selection.force else \
            plan.unrendered(self.manifest, list(self.source.selected), files)
        seconds = pairs * self.manifest.costs.get("view_seconds", execute.VIEW_SECONDS)
        n_jobs = execute.default_jobs(seconds, cores=execute.cores())
        self.log(f"about {pairs} frames to draw, {seconds:.1f} s of work: {n_jobs} worker(s) by default")
        return n_jobs

    def draw(self, tasks: list) -> dict[int, dict]:
        """Draw `tasks` (plan.Task) in parallel; return each checkpoint's result by epoch."""
        if not tasks:
            return {}
        ex, n_jobs = self.execution, self.n_jobs
        jobs = execute.chunked([t.plain() for t in tasks], n_jobs=n_jobs, run_dir=str(self.source.run_dir),
                               out_dir=str(self.manifest.out_dir), safe_mode=ex.safe_mode, imports=tuple(ex.imports),
                               samples_path=None if self.source.samples_path is None else str(self.source.samples_path),
                               eval_path=None if self.source.eval_path is None else str(self.source.eval_path))
        self.log(f"rendering {len(tasks)} checkpoints with {n_jobs} job(s) x {jobs[0].threads} thread(s)")
        where = "inline" if n_jobs == 1 and ex.backend == "loky" else ex.backend
        by_task, by_epoch = {t.checkpoint.epoch: t for t in tasks}, {}
        for results in execute.run_jobs(jobs, n_jobs=n_jobs, backend=where, scheduler=ex.scheduler):
            for result in results:
                by_epoch[result["epoch"]] = result
                self._record(by_task[result["epoch"]], result)
            self.manifest.save()  # progress survives a crash
            if self.progress:
                self.progress(len(by_epoch), len(tasks))
        self._measure(tasks, by_epoch)
        return by_epoch

    def _measure(self, tasks, results: dict) -> None:
        """Keep the median seconds one view of one checkpoint took, for the next render's default --jobs."""
        per_view = sorted(r["seconds"] / len(t.views) for t in tasks if t.views
                          for r in [results.get(t.checkpoint.epoch)] if r and not r["error"])
        if len(per_view) >= 3:
            self.manifest.costs["view_seconds"] = round(per_view[len(per_view) // 2], 4)

    def _record(self, task, result: dict) -> None:
        files = self.manifest.files
        if result["error"]:  # a failed file is no longer the checkpoint's picture
            for view, _ in task.views:
                files.pop(view.file(task.checkpoint.epoch), None)
            if task.stats is not None:
                files.pop(latents.stats_file(task.checkpoint.epoch), None)
            return
        files.update(result["files"])
        self.made.update(result["files"])


# --- finish ------------------------------------------------------------------


def finish(source: Source, manifest: plan.Manifest, chosen, settings: RenderSettings, facts: Facts,
           summary: Summary) -> None:
    """Write what is made of all epochs: run pictures, GIFs, TensorBoard, latents.csv, the report, the manifest."""
    from pipeline import animate
    from pipeline.report import write_report

    force, selected = settings.selection.force, list(source.selected)
    history = {int(r["epoch"]): r for r in run.read_history(source.run_dir / run.HISTORY_CSV)}
    stats = {e: latents.read_stats(manifest.out_dir, e)
             for e in manifest.rendered_epochs(latents.stats_file, selected)}
    for view, s in chosen:
        for name, data in view.run_files(s).items():
            writers.update_bytes(manifest.out_dir / name, data)
    if not settings.animation.deferred:  # a --follow pass while the run trains leaves these to a later pass
        for view, s in chosen:
            if view.kind == RUN_PICTURE:
                summary.rebuilt += _run_picture(manifest, view, s, stats, force=force)
            if view.summary_files:
                summary.rebuilt += _collected(manifest, view, s, selected, force=force)
        animated = [view for view, _ in chosen if view.animated]
        summary.rebuilt += animate.build_animations(manifest, selected, animated, settings.animation, history,
                                                    force=force)
        if settings.animation.tensorboard:
            summary.rebuilt += animate.write_tensorboard(manifest, selected, animated, history, force=force)
    if stats:
        writers.update_bytes(manifest.out_dir / latents.CSV, latents.csv_bytes(stats))
    write_report(manifest, source=source, chosen=chosen, settings=settings, picture=facts.picture, history=history)
    manifest.save()


def _run_picture(manifest: plan.Manifest, view, s, stats: dict, *, force: bool) -> list[str]:
    """Draw a RUN_PICTURE view from the statistics of every rendered epoch unless fresh; return what was made."""
    if not stats:
        return []
    entry = {"settings": record(s), "stats": [[e, manifest.files[latents.stats_file(e)]] for e in sorted(stats)]}
    name = view.file()
    if not force and manifest.is_fresh(name, entry):
        return []
    writers.write_png(manifest.out_dir / name, view.summarize(s, stats))
    manifest.files[name] = entry
    return [name]


def _collected(manifest: plan.Manifest, view, s, selected, *, force: bool) -> list[str]:
    """Write what an ANALYSIS view of numbers gathers from every rendered epoch (metrics.csv, ...) unless fresh."""
    epochs = manifest.rendered_epochs(view.file, selected)
    if not epochs:
        return []
    entry = {"settings": record(s), "epochs": [[e, manifest.files[view.file(e)]] for e in epochs]}
    if not force and all(manifest.is_fresh(name, entry) for name in view.summary_files):
        return []
    results = {e: json.loads((manifest.out_dir / view.file(e)).read_text()) for e in epochs}
    for name, data in view.collect(s, results).items():
        if isinstance(data, np.ndarray):
            writers.write_png(manifest.out_dir / name, data)
        else:
            writers.write_output(manifest.out_dir / name, data)
        manifest.files[name] = entry
    return list(view.summary_files)


# --- many runs, and runs still training ------------------------------------


def find_runs(root: Path) -> tuple[list[Path], list[Path]]:
    """Return (run directories, other folders) directly under `root`, sorted by name (not recursive)."""
    folders = sorted(p for p in Path(root).iterdir() if p.is_dir()) if Path(root).is_dir() else []
    return [p for p in folders if (p / run.RUN_JSON).is_file()], [p for p in folders if not (p / run.RUN_JSON).is_file()]


def render_runs(root: Path, settings: RenderSettings, *, on_summary=lambda run_dir, s: None,
                on_error=lambda run_dir, err: None, progress=None, log=lambda msg: None) -> int:
    """Render every run directory directly under `root`, each into OUT/<run name>; return the worst exit code.

    OUT is settings.out_dir or `outputs`. 0: all rendered; 1: some checkpoints
    failed; 2: a run could not be rendered (`on_error` is told) or none was found.
    """
    runs, others = find_runs(root)
    for folder in others:
        log(f"skipping {folder}: not a run directory (no {run.RUN_JSON})")
    if not runs:
        raise RunError(f"`{root}` holds no run directories (folders with a {run.RUN_JSON}). Pass RUN_DIR, "
                       f"or train with CheckpointForViz(\"{root}/NAME\") first.")
    parent = Path(settings.out_dir) if settings.out_dir is not None else Path("outputs")
    sizes = [len(plan.select(run.list_checkpoints(r), every=settings.selection.every,
                             epochs=settings.selection.epochs)) for r in runs]
    worst = 0
    for i, run_dir in enumerate(runs):
        offset, total = sum(sizes[:i]), sum(sizes)
        try:
            summary = render(run_dir, replace(settings, out_dir=parent / run_dir.name), log=log, progress=(
                None if progress is None else lambda done, _n: progress(offset + done, total)))
        except (RunError, ValueError) as err:
            on_error(run_dir, err)
            worst = 2
            continue
        if progress is not None:
            progress(offset + sizes[i], total)
        on_summary(run_dir, summary)
        worst = max(worst, 1 if summary.failed else 0)
    return worst


# While a followed run trains, its GIFs and plots of all epochs (kl.png, metrics.png, ...) are remade at most this
# often: remaking them at every new checkpoint cost the demo's follower 2.8 s of its 4.2 s a pass, on the two cores
# training uses. Every new checkpoint's frames are drawn at once, and the last pass remakes everything.
SUMMARY_EVERY_S = 30.0


def while_training(settings: RenderSettings, *, deferred: bool = False) -> RenderSettings:
    """Return the settings of a --follow pass while the run still trains: walk rows in index order and no
    view whose settings come from the last checkpoint (clusters), so no frame is redrawn at each new one;
    `deferred`: frames only, the GIFs and the run's plots left for a later pass."""
    kept = tuple(name for name in settings.views if not views.get(name).follows_last)
    return replace(settings, views=kept, latents=replace(settings.latents, sort_latents="index"),
                   animation=replace(settings.animation, deferred=deferred))


def follow_run(run_dir, settings: RenderSettings = RenderSettings(), *, poll: float = 2.0,
               idle_timeout: float = 600.0, on_summary=lambda s: None, log=lambda msg: None, sleep=time.sleep,
               progress=None) -> list[Summary]:
    """Render `run_dir` again and again as checkpoints appear; return every pass's Summary.

    While the run trains, passes use `while_training(settings)`; once run.json
    says it finished, one last pass renders with `settings` (walk rows sorted
    by KL once, the clusters drawn). Stops then, or after `idle_timeout`
    seconds without a new checkpoint (KeyboardInterrupt stops it too: every
    file is written atomically and the manifest after each chunk, so the
    outputs stay consistent). Waits for a run directory that does not exist yet.
    """
    summaries, seen, last_new, final, summarized = [], None, time.monotonic(), False, None
    while True:
        finished = run.is_finished(run_dir)  # read first: a checkpoint listed after it is not later than the finish
        stamps = [c.stamp() for c in run.list_checkpoints(run_dir)]
        if stamps != seen or (finished and not final):
            if stamps != seen:
                seen, last_new = stamps, time.monotonic()
            deferred = summarized is not None and time.monotonic() - summarized < SUMMARY_EVERY_S
            try:
                summary = render(run_dir, settings if finished else while_training(settings, deferred=deferred),
                                 progress=progress, log=log)
            except RunError as err:
                if (Path(run_dir) / run.RUN_JSON).is_file() and stamps:
                    raise  # a broken run, not one still starting
                log(f"waiting for {run_dir}: {err}")
            else:
                summaries.append(summary)
                on_summary(summary)
                final = finished
                summarized = summarized if deferred else time.monotonic()
        if final and [c.stamp() for c in run.list_checkpoints(run_dir)] == seen:
            log("the run finished; every checkpoint is rendered")
            return summaries
        if time.monotonic() - last_new > idle_timeout:
            log(f"no new checkpoint for {idle_timeout:g} s: stopping")
            return summaries
        sleep(poll)


if __name__ == "__main__":
    import sys

    if getattr(sys.modules.get("__main__"), "render", None) is render:  # not so under a profiler's runpy
        sys.modules.setdefault("pipeline.render", sys.modules["__main__"])  # the CLI imports this file: not twice
    from pipeline.startup import require_render, run_command

    require_render()  # before the CLI imports click
    from pipeline.cli import main

    run_command(main)
