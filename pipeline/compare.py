"""Compare runs on one static page: the settings that differ, curves overlaid, KL heatmaps, views side by side.

    python -m pipeline.compare checkpoints/beta1 checkpoints/beta4 --out outputs/compare
    make compare RUNS="checkpoints/beta1 checkpoints/beta4"

Each run is first rendered where stale, with the same settings for all, into
OUT/<run name>/; the page OUT/index.html links into those folders (relative
links only, offline). One epoch slider moves every run's row of a view; a run
without a checkpoint at that epoch shows its nearest earlier one.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

if __name__ == "__main__":  # before click and Keras: say what to install where the render extra is missing
    from pipeline.startup import require_render

    require_render()

import click

from pipeline import plan, run, views, writers
from pipeline.cli import exit_codes, render_options, settings_from
from pipeline.render import render
from pipeline.report import render_template
from pipeline.startup import LEAN

__all__ = ["compare", "main"]

TEMPLATE = "compare.html.j2"
CURVES_PNG = "curves.png"
RUN_FIELDS = ("latent_dim", "input_shape", "every", "seed", "encoder_form", "decoder_output")


def _settings_table(infos: dict) -> list[dict]:
    """Return a row per setting (hparams, then run.json fields): its value in each run, and whether they differ."""
    rows = {}
    for name, info in infos.items():
        for key, value in sorted((info.get("hparams") or {}).items()):
            rows.setdefault(key, {})[name] = value
        for key in RUN_FIELDS:
            if key in info:
                rows.setdefault(key, {})[name] = info[key]
    table = []
    for key, values in rows.items():
        shown = [json.dumps(values.get(name)) if name in values else "" for name in infos]
        table.append({"name": key, "cells": shown, "differs": len(set(shown)) > 1})
    return sorted(table, key=lambda r: (not r["differs"], r["name"]))


def _curves(infos: dict, outs: dict) -> dict:
    """Return {run: {name: (epochs, values)}} of each run's history and disentanglement metrics."""
    series = {}
    for name, out in outs.items():
        # history.csv and metrics.csv are both an epoch column and columns of numbers
        rows = run.read_history(Path(infos[name]["run_dir"]) / run.HISTORY_CSV) + run.read_history(out / "metrics.csv")
        series[name] = {k: ([r["epoch"] for r in rows if k in r], [r[k] for r in rows if k in r])
                        for k in sorted({k for r in rows for k in r} - {"epoch"})}
    return series


def _view_rows(infos: dict, outs: dict, page: Path) -> tuple[list, list]:
    """Return (sections, epochs): for each animated view, each run's [[epoch, frame link]], and every epoch seen."""
    sections, epochs = [], set()
    manifests = {name: plan.Manifest(out) for name, out in outs.items()}
    checkpoints = {name: run.list_checkpoints(Path(infos[name]["run_dir"])) for name in outs}
    for view in (views.get(n) for n in views.names()):
        if not view.animated:
            continue
        rows = {}
        for name, out in outs.items():
            drawn = manifests[name].rendered_epochs(view.file, checkpoints[name])
            if drawn:
                rows[name] = [[e, _relative(out / view.file(e), page)] for e in drawn]
                epochs.update(drawn)
        if rows:
            sections.append({"id": view.name, "title": view.title, "rows": rows})
    return sections, sorted(epochs)


def _relative(path: Path, page: Path) -> str:
    return os.path.relpath(path, page).replace(os.sep, "/")


def compare(run_dirs, out_dir: Path, settings, *, log=lambda msg: None) -> Path:
    """Render each run (where stale) into out_dir/<run name> and write out_dir/index.html; return the page.

    Raises RunError naming a run that cannot be rendered, ValueError for runs with one name.
    """
    out_dir = Path(out_dir)
    names = [Path(r).resolve().name for r in run_dirs]
    if len(set(names)) != len(names) or len(names) < 2:
        raise ValueError(f"compare needs two or more runs with different folder names; received {names}.")
    infos, outs = {}, {}
    for run_dir, name in zip(run_dirs, names):
        outs[name] = out_dir / name
        summary = render(run_dir, replace(settings, out_dir=outs[name]), log=log)
        log(f"{name}: {summary.line()}")
        infos[name] = {**run.read_run(run_dir), "run_dir": str(run_dir)}
    from pipeline import plots

    series = _curves(infos, outs)
    metrics = [k for k in ("loss", "recon", "kl", "mig", "sap", "dci_disentanglement", "dci_completeness",
                           "dci_informativeness") if any(k in v for v in series.values())]
    if metrics:
        from pipeline.views.metrics import title

        figure = plots.curves(series, names=metrics, width_each=2.8, title_of=title)
        writers.update_bytes(out_dir / CURVES_PNG, plots.to_png(figure))
    sections, epochs = _view_rows(infos, outs, out_dir)
    context = {"runs": names, "settings": _settings_table(infos), "curves": CURVES_PNG if metrics else None,
               "kl": [[name, _relative(outs[name] / "kl.png", out_dir)] for name in names
                      if (outs[name] / "kl.png").is_file()],
               "reports": [[name, f"{name}/index.html"] for name in names], "sections": sections,
               "frames_json": json.dumps({s["id"]: s["rows"] for s in sections}).replace("</", "<\\/"),
               "epochs_json": json.dumps(epochs), "epochs": epochs}
    writers.update_bytes(out_dir / "index.html", render_template(TEMPLATE, context).encode())
    return out_dir / "index.html"


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path))
@render_options
@click.option("--verbose", "-v", is_flag=True, help="Say more; show tracebacks.")
def main(run_dirs, *, verbose, **options):
    """Compare RUN_DIRS on one page: settings that differ, curves, KL heatmaps, views under one epoch slider.

    \b
    Renders each run (where stale) into OUT/<run name>/ with the same settings, then writes OUT/index.html.
    --out is required.
    \b
    Example:
      python -m pipeline.compare checkpoints/beta1 checkpoints/beta4 --out outputs/compare \\
          --views recon,walk,kl,clusters,metrics
    """
    if options["out_dir"] is None:
        raise click.UsageError("pass --out DIR: the comparison and each run's outputs go there.")
    settings = settings_from(options)
    os.environ[LEAN] = "1"  # this process and its workers import Keras without what no render uses (startup.py)
    with exit_codes(verbose):
        page = compare(run_dirs, options["out_dir"], settings,
                       log=(lambda m: click.echo(m, err=True)) if verbose else (lambda m: None))
    click.echo(f"compared {len(run_dirs)} runs -> {page}")


if __name__ == "__main__":
    from pipeline.startup import run_command

    run_command(main)
