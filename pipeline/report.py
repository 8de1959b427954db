"""The outputs folder's `index.html`: one static page to look at all of it, from a Jinja2 template.

No server, no network, relative links only: zip the folder and mail it. The
sections come from the view registry, in its order; the training curves are
drawn by matplotlib into `history.png`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from pipeline import animate, latents, plan, run, views, writers
from pipeline.views.base import ANIMATION, RUN_PICTURE

__all__ = ["write_report", "draw_history", "metric_names", "render_template", "HISTORY_PNG"]

HISTORY_PNG = "history.png"
TEMPLATE = "report.html.j2"
INDEX = "index.html"


def metric_names(history: dict) -> list[str]:
    """Return the logged metrics with at least one finite value: loss, recon, kl first, then the rest."""
    import math

    logged = {k for row in history.values() for k, v in row.items() if k != "epoch" and math.isfinite(v)}
    return [k for k in ("loss", "recon", "kl") if k in logged] + sorted(logged - {"loss", "recon", "kl"})


def draw_history(path: Path, history: dict) -> None:
    """Draw the training curves (loss, and recon / kl when logged, then any other metric) against epoch."""
    from pipeline import plots

    epochs, names = sorted(history), metric_names(history)
    values = {name: ([e for e in epochs if name in history[e]], [history[e][name] for e in epochs
                                                               if name in history[e]]) for name in names}
    writers.write_output(path, plots.to_png(plots.curves({"run": values}, names=names)))


def _history_section(manifest: plan.Manifest, history: dict) -> dict:
    if not metric_names(history):
        return {"id": "history", "title": "Training curves",
                "about": "no metrics were logged (history.csv holds no finite values)"}
    entry = {"history": [history[e] for e in sorted(history)]}  # a list: JSON keys would be strings
    if not manifest.is_fresh(HISTORY_PNG, entry):
        draw_history(manifest.out_dir / HISTORY_PNG, history)
        manifest.files[HISTORY_PNG] = entry
    return {"id": "history", "title": "Training curves", "picture": HISTORY_PNG, "about": "from history.csv"}


def _pages(manifest: plan.Manifest, view, s, frame: str, image_height: int) -> dict:
    """Return {"pages": [{label, top, height}], "width", "height"} of a frame the report shows a band at a time
    (see View.pages), or {} to show it whole."""
    import struct

    try:
        with open(manifest.out_dir / frame, "rb") as f:
            width, height = writers.png_size(f.read(24))
    except (OSError, struct.error):
        return {}
    bands = view.pages(s, image_height=image_height, frame_height=height)
    if not bands:
        return {}
    return {"width": width, "height": height, "caption": animate.CAPTION_HEIGHT,
            "pages": [{"label": label, "top": top, "height": h} for top, h, label in bands]}


def _view_section(manifest: plan.Manifest, view, s, selected, image_height: int) -> dict | None:
    """Return a view's section: frames with a slider (shown a page at a time where the view pages them) and its
    animations, one picture, or links."""
    section = {"id": view.name, "title": view.title, "about": view.about}
    if view.kind in (RUN_PICTURE, ANIMATION):
        return {**section, "picture": view.file()} if manifest.has(view.file()) else None
    epochs = manifest.rendered_epochs(view.file, selected)
    if not epochs:
        return None
    if not view.animated:
        made = [name for name in view.summary_files if manifest.has(name)]
        pictures = [name for name in made if name.endswith(".png")]
        return {**section, "picture": pictures[0] if pictures else None,
                "links": [(name, name) for name in made if name not in pictures]
                + [(f"epoch {e}", view.file(e)) for e in epochs]}
    return {**section, "frames": [[e, view.file(e)] for e in epochs],
            "animations": [a for a in (f"{view.name}.gif", f"{view.name}.mp4") if a in manifest.files],
            **_pages(manifest, view, s, view.file(epochs[-1]), image_height)}


def _settings_rows(settings, chosen, picture) -> list[tuple[str, str]]:
    """Return (name, JSON value) rows: the views, how pictures look, and each view's own settings."""
    rows = [("views", json.dumps(list(settings.views)))]
    rows += [(k, json.dumps(v)) for k, v in dataclasses.asdict(picture).items() if v is not None]
    for view, s in chosen:
        own = {k: v for k, v in dataclasses.asdict(s).items() if k not in ("picture", "samples", "analysis_set")}
        rows.append((view.name, json.dumps(_rounded(own), default=str)))
    return rows


def _rounded(value):
    """Return `value` with every float rounded to 4 significant digits, for reading."""
    if isinstance(value, float):
        return float(f"{value:.4g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    return value


def write_report(manifest: plan.Manifest, *, source, chosen, settings, picture, history: dict) -> None:
    """Write `index.html` (and `history.png` when the history changed) into the outputs folder.

    The page is a pure function of what the template is given: when that is
    what made the page on disk, the template is not even loaded.
    """
    selected = list(source.selected)
    sections = [_history_section(manifest, history)] if history else []
    if manifest.has("inputs.png"):
        sections.insert(0, {"id": "inputs", "title": "Inputs", "picture": "inputs.png",
                            "about": "the fixed samples, as fed to the model"})
    image_height = run.image_shape(source.info)[0]
    sections += [s for s in (_view_section(manifest, view, vs, selected, image_height) for view, vs in chosen) if s]
    missing = [n for n in settings.views if views.get(n).needs_samples and source.samples is None]
    notes = [f"not drawn: {', '.join(missing)} (they need the run's samples: pass --data PATH)"] if missing else []
    context = dict(
        name=Path(source.run_dir).name, run_dir=str(source.run_dir), n_epochs=len(selected),
        first=selected[0].epoch, last=selected[-1].epoch, settings=_settings_rows(settings, chosen, picture),
        sections=sections, notes=notes,
        latents_csv=latents.CSV if (manifest.out_dir / latents.CSV).exists() else None,
        frames_json=json.dumps({s["id"]: s["frames"] for s in sections if s.get("frames")}).replace("</", "<\\/"))
    template = hashlib.sha256((Path(__file__).parent / "templates" / TEMPLATE).read_bytes()).hexdigest()
    entry = {"template": template, "context": json.loads(json.dumps(context))}
    if manifest.is_fresh(INDEX, entry):
        return
    writers.update_bytes(manifest.out_dir / INDEX, render_template(TEMPLATE, context).encode())
    manifest.files[INDEX] = entry


def render_template(name: str, context: dict) -> str:
    """Return the package's template `name` (pipeline/templates/) filled with `context`, autoescaped."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("pipeline", "templates"), autoescape=select_autoescape(["j2", "html"]))
    return env.get_template(name).render(**context)

