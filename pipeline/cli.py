"""The render command line: parse options into RenderSettings, call `pipeline.render`, report.

    python -m pipeline.render checkpoints/demo            # one run
    python -m pipeline.render --every 5                   # every run under checkpoints/

Thin by design: library errors become exit codes (RunError: 2, bad settings:
2, failed checkpoints: 1). Importing it imports no TensorFlow.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from pathlib import Path

if __name__ == "__main__":  # before click and Keras: say what to install where the render extra is missing
    from pipeline.startup import require_render

    require_render()

import click

from pipeline import plan, views
from pipeline.quiet import VERBOSE
from pipeline.run import RunError
from pipeline.settings import Animation, Execution, Latents, Picture, RenderSettings, Selection
from pipeline.startup import LEAN

__all__ = ["main", "render_options", "settings_from", "exit_codes"]

CHECKPOINTS = Path("checkpoints")


class NotARun(click.ClickException):
    """A folder that cannot be rendered: exit code 2, like bad usage."""

    exit_code = 2


@contextlib.contextmanager
def exit_codes(verbose: bool):
    """Turn the library's errors into the CLIs' exits: an unrenderable run 2, bad settings found once the run
    is read (e.g. --channels) a usage error; with -v they propagate, traceback and all."""
    try:
        yield
    except RunError as err:
        if verbose:
            raise
        raise NotARun(str(err)) from err
    except ValueError as err:
        if verbose:
            raise
        raise click.UsageError(str(err)) from err


def _parsed(parse):
    """Return a click callback that parses a value with `parse`, its ValueError a usage error."""
    def callback(ctx, param, value):
        if value is None:
            return None
        try:
            return parse(value)
        except ValueError as err:
            raise click.BadParameter(str(err)) from None
    return callback


def _channels(value):
    from pipeline.grid import parse_channels

    return tuple(tuple(c) if isinstance(c, tuple) else c for c in parse_channels(value))


def _views(value):
    chosen, known = tuple(v.strip() for v in value.split(",") if v.strip()), views.names()
    if not chosen or any(v not in known for v in chosen):
        raise ValueError(f"expected views from {','.join(known)}, received `{value}`.")
    return chosen


def _anchor(value):
    head, _, k = value.partition(":")
    if value == "prior" or (head == "posterior" and k.isdigit() and int(k) >= 1):
        return value
    raise ValueError(f"expected `prior` or `posterior:K` (K >= 1), received `{value}`.")


def _dims(value):
    try:
        i, j = (int(v) for v in value.split(","))
    except ValueError:
        raise ValueError(f"expected two latent indices like `0,3`, received `{value}`.") from None
    return (i, j)


def _indices(value):
    try:
        return tuple(int(k) for k in value.split(","))
    except ValueError:
        raise ValueError(f"expected indices like `0,3,7`, received `{value}`.") from None


def _import(ctx, param, modules):
    """Import the --import modules before --views is checked, so views they register are choices."""
    import importlib

    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise click.BadParameter(f"cannot import `{module}` ({err}). Pass a module importable here "
                                     f"(on PYTHONPATH) that registers the custom layers or views.") from None
    return tuple(modules)


def _range(ctx, param, value):
    if value[0] >= value[1]:
        raise click.BadParameter(f"LO must be below HI, received {value[0]} {value[1]}.")
    return tuple(value)


_OPTIONS = [
    click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
                 help="Outputs folder. [default: outputs/<run name>; without RUN_DIR: OUT/<run name>]"),
    click.option("--every", type=click.IntRange(min=1), help="Render every Nth checkpoint, and always the last."),
    click.option("--epochs", callback=_parsed(plan.parse_epochs), help="Render these epochs only, e.g. `1,5,10-20`."),
    click.option("--views", "view_names", callback=_parsed(_views), default="recon,walk", show_default=True,
                 help=f"What to render, comma-separated, from: {','.join(views.names())} (and views "
                      f"that --import modules register)."),
    click.option("--walk-steps", default=10, show_default=True, type=click.IntRange(min=1),
                 help="Columns of the latent walk (and the manifold's side, the traversal's frames)."),
    click.option("--walk-range", nargs=2, type=click.FloatRange(0, 1, min_open=True, max_open=True),
                 default=(0.05, 0.95), show_default=True, callback=_range,
                 help="Quantiles LO HI of the standard normal that the walk spans."),
    click.option("--pad", default=2, show_default=True, type=click.IntRange(min=0), help="Pixels between tiles."),
    click.option("--channels", callback=_parsed(_channels),
                 help="Channels to show: indices `0,2,4`, or a colour composite `0:magenta,1:green,2:gray`."),
    click.option("--normalize", type=click.Choice(["global", "per-image", "none"]), default="global",
                 show_default=True, help="Intensity scaling: the model's value range, each image's own "
                 "min..max, or none."),
    click.option("--scale", default=1, show_default=True, type=click.IntRange(1, 16),
                 help="Upsample tiles K times (nearest neighbour), for tiny images."),
    click.option("--data", help="Training data to take samples from when the run has no samples.h5."),
    click.option("--fps", default=5.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
                 help="GIF frames per second."),
    click.option("--mp4", is_flag=True, help="Also write <view>.mp4 (H.264) beside each GIF."),
    click.option("--max-frames", default=100, show_default=True, type=click.IntRange(min=2),
                 help="Epochs a GIF or MP4 shows at most, spread over the run, the first and last always in; "
                      "every epoch keeps its PNG and its place on the report's slider."),
    click.option("--frame-spacing", type=click.Choice(["even", "log"]), default="even", show_default=True,
                 help="Which epochs an animation shows when there are more than --max-frames: evenly spread, or "
                      "log-spaced (denser early)."),
    click.option("--tensorboard", is_flag=True, help="Also write frames and history to OUT/tensorboard/."),
    click.option("--sort-latents", type=click.Choice(["kl", "index"]),
                 help="Walk row order: by the KL of the last rendered checkpoint, or by index. "
                      "[default: kl when the encoder gives z_log_var]"),
    click.option("--active-kl", default=0.01, show_default=True, type=click.FloatRange(min=0),
                 help="Latents with KL (nats) below this are marked inactive (greyed label)."),
    click.option("--max-latents", type=click.IntRange(min=1), help="Keep only the K most active walk rows."),
    click.option("--walk-anchor", callback=_parsed(_anchor), default="prior", show_default=True,
                 help="`prior` (others at 0) or `posterior:K` (walk around K samples' encodings)."),
    click.option("--manifold-dims", callback=_parsed(_dims),
                 help="Two latents `i,j` for the manifold. [default: the two most active]"),
    click.option("--clusters-proj", type=click.Choice(["active", "pca"]), default="active", show_default=True,
                 help="Axes of the clusters view: the two most active latents, or the first two principal "
                      "components of the last checkpoint's codes."),
    click.option("--traverse-epoch", type=int, help="Checkpoint of traversal.gif. [default: the last]"),
    click.option("--conditions", "condition_choice", callback=_parsed(_indices),
                 help="A conditional VAE's conditions to draw the walk, manifold, samples and traversal for: "
                      "classes `0,3,7` of a one-hot condition, else the k-th distinct condition vectors among "
                      "the samples. [default: up to the first 10]"),
    click.option("--n-prior", default=64, show_default=True, type=click.IntRange(min=1),
                 help="Fixed N(0, I) codes decoded by the `samples` view."),
    click.option("--interp-pairs", default=8, show_default=True, type=click.IntRange(min=1),
                 help="Rows of the `interp` view: sample pairs (0, 1), (2, 3), ..."),
    click.option("--interp-steps", default=8, show_default=True, type=click.IntRange(min=2),
                 help="Codes from one end of an interpolation to the other, both included."),
    click.option("--jobs", "-j", type=click.IntRange(min=1),
                 help="Worker processes; 1 renders in this process. [default: 1 until the frames to draw (their "
                      "count x the seconds the last render of this run measured per frame) save more on every "
                      "core than starting worker processes costs (about 4 s on 2 cores), then all cores]"),
    click.option("--backend", type=click.Choice(["loky", "dask", "ray"]), default="loky", show_default=True,
                 help="Where workers run: this machine (loky), a dask.distributed cluster, or a Ray cluster."),
    click.option("--scheduler", metavar="tcp://HOST:PORT",
                 help="With --backend dask: the cluster's scheduler. [default: a local cluster of --jobs workers]"),
    click.option("--force", is_flag=True, help="Render everything again, fresh or not."),
    click.option("--unsafe", is_flag=True, help="Load architectures without Keras safe mode (Lambda layers). "
                 "Only for run directories you trust."),
    click.option("--import", "imports", multiple=True, metavar="MODULE", is_eager=True, callback=_import,
                 help="Import MODULE first (here and in every worker): it registers the custom layers the run "
                      "uses, or views of your own (pipeline.views.register)."),
]


def render_options(command, *, only=None):
    """Add every option that builds RenderSettings to a click command (see `settings_from`), or those whose
    parameter names are in `only` (a command that shares some of the render's options: pipeline.serve)."""
    chosen = [o for o in _OPTIONS if only is None or o(lambda: None).__click_params__[0].name in only]
    return functools.reduce(lambda f, option: option(f), reversed(chosen), command)


def settings_from(o: dict) -> RenderSettings:
    """Return the RenderSettings of the options `render_options` parsed."""
    return RenderSettings(
        views=o["view_names"], out_dir=o["out_dir"], data=o["data"],
        picture=Picture(channels=o["channels"], normalize=o["normalize"], scale=o["scale"], pad=o["pad"]),
        latents=Latents(walk_steps=o["walk_steps"], walk_range=o["walk_range"], walk_anchor=o["walk_anchor"],
                        sort_latents=o["sort_latents"], active_kl=o["active_kl"], max_latents=o["max_latents"],
                        manifold_dims=o["manifold_dims"], traverse_epoch=o["traverse_epoch"],
                        conditions=o["condition_choice"], clusters_proj=o["clusters_proj"],
                        n_prior=o["n_prior"], interp_pairs=o["interp_pairs"], interp_steps=o["interp_steps"]),
        animation=Animation(fps=o["fps"], mp4=o["mp4"], tensorboard=o["tensorboard"], max_frames=o["max_frames"],
                            frame_spacing=o["frame_spacing"]),
        selection=Selection(every=o["every"], epochs=None if o["epochs"] is None else frozenset(o["epochs"]),
                            force=o["force"]),
        execution=Execution(jobs=o["jobs"], backend=o["backend"], scheduler=o["scheduler"],
                            safe_mode=not o["unsafe"], imports=tuple(o["imports"])))


class _Progress:
    """A progress bar on stderr that appears with the first report and closes at the end."""

    def __init__(self, enabled: bool, label: str = "rendering"):
        self.enabled, self.label, self.bar = enabled, label, None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done - self.bar.pos)
        if done >= total:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("run_dir", required=False, type=click.Path(file_okay=False, path_type=Path))
@render_options
@click.option("--follow", is_flag=True, help="Keep rendering new checkpoints while training runs; stop when "
              "run.json says the run finished, after --idle-timeout, or on Ctrl-C. Needs RUN_DIR.")
@click.option("--poll", default=2.0, show_default=True, type=click.FloatRange(min=0.05),
              help="Seconds between looks for new checkpoints with --follow.")
@click.option("--idle-timeout", default=600.0, show_default=True, type=click.FloatRange(min=0),
              help="With --follow, stop after this many seconds without a new checkpoint.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar, only the summary line.")
@click.option("--verbose", "-v", is_flag=True, help="Say more; show tracebacks.")
def main(run_dir, *, follow, poll, idle_timeout, quiet, verbose, **options):
    """Render RUN_DIR's checkpoints into pictures and GIFs (without RUN_DIR: every run under checkpoints/).

    \b
    Writes into --out (default outputs/<run name>):
      inputs.png, recon/epoch_NNNN.png, walk/epoch_NNNN.png, recon.gif, walk.gif,
      latents.csv, index.html, and with --views more: manifold/, samples/, interp/, traversal.gif
    A re-run renders only what is missing or stale.

    \b
    Examples:
      python -m pipeline.render checkpoints/demo --every 5 --jobs 2
      python -m pipeline.render checkpoints/demo --follow      # while training runs
      python -m pipeline.render --every 5                      # every run under checkpoints/
    """
    from pipeline.render import follow_run, render, render_runs  # not for --help: it starts fast

    settings = settings_from(options)
    os.environ[LEAN] = "1"  # this process and its workers import Keras without what no render uses (startup.py)
    if verbose:
        os.environ[VERBOSE] = "1"  # TensorFlow's start-up lines too, here and in every worker
    say = (lambda msg: None) if quiet else (lambda msg: click.echo(msg, err=True))
    log = say if verbose else (lambda msg: None)
    bar = _Progress(not quiet and sys.stderr.isatty())

    def report(summary, prefix=""):
        if not verbose:
            for note in summary.notes:
                say(prefix + note)
        for epoch, message in sorted(summary.warnings.items()):
            click.echo(f"{prefix}warning: epoch {epoch}: {message}", err=True)
        for epoch, reason in sorted(summary.failed.items()):
            click.echo(f"{prefix}failed: epoch {epoch}: {reason}", err=True)
        if follow and summary.rendered:
            click.echo(f"rendered epochs: {', '.join(map(str, summary.rendered))}")
        click.echo(prefix + summary.line())

    with contextlib.closing(bar), exit_codes(verbose):  # the bar closes last, on any exit
        if run_dir is None:
            if follow:
                raise click.UsageError("--follow renders one run as it trains: pass its RUN_DIR.")
            code = render_runs(CHECKPOINTS, settings, progress=bar, log=say,
                               on_summary=lambda d, s: report(s, prefix=f"{d.name}: "),
                               on_error=lambda d, err: click.echo(f"{d.name}: error: {err}", err=True))
            if code:
                sys.exit(code)
            return
        if follow:
            summaries = []
            try:
                follow_run(run_dir, settings, poll=poll, idle_timeout=idle_timeout, progress=bar, log=log,
                           on_summary=lambda s: (summaries.append(s), report(s)))
            except KeyboardInterrupt:
                say("stopped (Ctrl-C); the outputs are consistent: render again to complete them")
            failed = any(s.failed for s in summaries[-1:])
        else:
            summary = render(run_dir, settings, progress=bar, log=log)
            report(summary)
            failed = bool(summary.failed)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    from pipeline.startup import run_command

    run_command(main)
