"""The outputs folder's `index.html`: one static page to look at all of it.

No server, no network, relative links only: zip the folder and mail it. The
training curves are drawn by matplotlib into `history.png`.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from pipeline import plan, writers

HISTORY_PNG = "history.png"
TITLES = {"recon": "Reconstructions", "walk": "Latent walk", "manifold": "2-D manifold",
          "samples": "Prior samples", "interp": "Interpolations"}

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>vaeviz: {name}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; background: #fafafa; color: #222; }}
section {{ margin-bottom: 2em; }} img {{ image-rendering: pixelated; max-width: 100%; }}
.pair {{ display: flex; gap: 1.5em; flex-wrap: wrap; align-items: flex-start; }}
.pair figure {{ margin: 0; }} figcaption {{ font-size: 0.9em; color: #555; }}
table {{ border-collapse: collapse; font-size: 0.9em; }} td {{ padding: 0.1em 0.8em 0.1em 0; }}
input[type=range] {{ width: 30em; max-width: 90vw; }}
</style></head><body>
<h1>{name}</h1>
<p>Rendered by vaeviz from <code>{run_dir}</code>: {n_epochs} epochs ({first}&ndash;{last}).
Files: <a href="manifest.json">manifest.json</a>{latents_link}</p>
<table>{settings}</table>
{sections}
<script>
const FRAMES = {frames_json};
for (const [view, frames] of Object.entries(FRAMES)) {{
  const slider = document.getElementById("slider-" + view);
  const img = document.getElementById("frame-" + view);
  const label = document.getElementById("label-" + view);
  slider.addEventListener("input", () => {{
    const [epoch, src] = frames[slider.value];
    img.src = src; label.textContent = "epoch " + epoch;
  }});
}}
</script>
</body></html>
"""


def _view_section(view: str, frames: list, animations: list[str]) -> str:
    epoch, src = frames[-1]
    anim = "".join(f'<figure><img src="{a}" alt="{view} animation"><figcaption>{a}</figcaption></figure>'
                   if a.endswith(".gif") else f'<p><a href="{a}">{a}</a></p>' for a in animations)
    return (f'<section id="{view}"><h2>{TITLES.get(view, view)}</h2><div class="pair">'
            f'<figure><img id="frame-{view}" src="{src}" alt="{view} frame">'
            f'<figcaption><span id="label-{view}">epoch {epoch}</span><br>'
            f'<input type="range" id="slider-{view}" min="0" max="{len(frames) - 1}" value="{len(frames) - 1}" '
            f'aria-label="{view} epoch"></figcaption></figure>{anim}</div></section>')


def _figure(title: str, src: str, note: str = "") -> str:
    return (f'<section><h2>{title}</h2><figure><img src="{src}" alt="{title}">'
            f'<figcaption>{note}</figcaption></figure></section>')


def draw_history(path: Path, history: dict) -> None:
    """Draw the training curves (loss, and recon / kl when logged) against epoch into a PNG."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    epochs = sorted(history)
    keys = [k for k in ("loss", "recon", "kl") if any(k in history[e] for e in epochs)]
    keys += sorted({k for e in epochs for k in history[e]} - set(keys) - {"epoch"})
    fig = Figure(figsize=(3.2 * len(keys), 2.6), dpi=100, layout="constrained")
    for i, key in enumerate(keys):
        ax = fig.add_subplot(1, len(keys), i + 1)
        xs = [e for e in epochs if key in history[e]]
        ax.plot(xs, [history[e][key] for e in xs], marker="." if len(xs) < 50 else None)
        ax.set_title(key)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    writers.write_bytes(path, buf.getvalue())


def write_report(out_dir: Path, *, run_dir: Path, manifest: dict, selected, views, settings: dict,
                 history: dict) -> None:
    """Write `index.html` (and `history.png` when the history changed) into `out_dir`."""
    out_dir = Path(out_dir)
    files = manifest["files"]
    if history:
        record = {"history": [history[e] for e in sorted(history)]}  # a list: JSON keys would be strings
        if not plan.is_fresh(out_dir, manifest, HISTORY_PNG, record):
            draw_history(out_dir / HISTORY_PNG, history)
            files[HISTORY_PNG] = record
    sections, frames = [], {}
    if "inputs.png" in files:
        sections.append(_figure("Inputs", "inputs.png", "the fixed samples, as fed to the model"))
    if HISTORY_PNG in files and history:
        sections.append(_figure("Training curves", HISTORY_PNG, "from history.csv"))
    for view in views:
        if view == "traversal":
            if "traversal.gif" in files:
                sections.append(_figure("Traversal", "traversal.gif",
                                        "each active latent swept out and back, others at a few anchors"))
            continue
        items = [[e, plan.frame_name(view, e)] for e in plan.rendered_epochs(out_dir, manifest, view, selected)]
        if not items:
            continue
        frames[view] = items
        sections.append(_view_section(view, items, [a for a in (f"{view}.gif", f"{view}.mp4") if a in files]))
    shown = {k: v for k, v in settings.items() if v is not None}
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td><code>{html.escape(json.dumps(v))}</code></td></tr>"
                   for k, v in sorted(shown.items()))
    page = _PAGE.format(
        name=html.escape(Path(run_dir).name), run_dir=html.escape(str(run_dir)), n_epochs=len(selected),
        first=selected[0].epoch, last=selected[-1].epoch, settings=rows, sections="\n".join(sections),
        latents_link=', <a href="latents.csv">latents.csv</a>' if (out_dir / "latents.csv").exists() else "",
        frames_json=json.dumps(frames).replace("</", "<\\/"))
    writers.update_bytes(out_dir / "index.html", page.encode())
