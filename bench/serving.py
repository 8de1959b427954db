"""Section 12 of the benchmarks: the explorer (`python -m pipeline.serve`) in Chromium, on the demo model.

The explorer serves the demo run (checkpoints/demo when `make demo` trained it, else copies of a one-epoch fit of
the demo model) from its own process, as a user starts it; Playwright drives Debian's headless Chromium, and each
latency is measured inside the page, from the `input` event to the new picture in place (the page marks each
picture with the state it shows; the figure includes the next animation frame, when it is painted):

  - one latent moved at a time (the next move after the picture);
  - a drag: an input every 16 ms for 3 s; each input's latency to the first picture of its state or a newer one;
  - switching epoch, each switch to an epoch not among the 4 cached (a checkpoint load, encode, decode);
  - 10 pages dragging at once for 3 s: every request answered, and each page's last picture is its last state.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from util import QUIET_ENV, REPO, Goal, Section, Table, ms

MOVES, SWITCHES, CHECKPOINTS = 60, 40, 20  # latent moves and epoch switches timed; checkpoints of a made-up run

# In the page: set the slider `id` (a latent's, or the epoch's) to each of `values` in turn, each after the last
# one's picture; return each one's latency.
MOVES_JS = """async ({id, values}) => {
  const slider = document.getElementById(id), out = [];
  for (const v of values) {
    const t0 = performance.now();
    slider.value = v; slider.dispatchEvent(new Event('input'));
    await window.benchShown(window.explorer.state.seq);
    out.push(performance.now() - t0);
  }
  return out;
}"""
# In the page: drag latent `d` (an input every 16 ms for `seconds`); resolves with each input's latency to the first
# picture of its state or a newer one, how many inputs' own states were drawn, and whether the last one was.
DRAG = """async ({d, seconds, paint}) => {
  const img = document.getElementById('decoded'), slider = document.getElementById('z' + d);
  const lo = Number(slider.min), hi = Number(slider.max), sent = new Map(), latency = [];
  let drawn = 0;
  new MutationObserver(() => {
    const shown = Number(img.dataset.seq), now = performance.now();
    if (sent.has(shown)) drawn += 1;
    for (const [seq, t] of sent) if (seq <= shown) { latency.push(now - t); sent.delete(seq); }
  }).observe(img, {attributes: true, attributeFilter: ['data-seq']});
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    const phase = (performance.now() - t0) / 1000;
    slider.value = lo + (hi - lo) * (0.5 + 0.5 * Math.sin(phase * 3)); slider.dispatchEvent(new Event('input'));
    sent.set(window.explorer.state.seq, performance.now());
    await new Promise(r => setTimeout(r, 16));
  }
  const last = window.explorer.state.seq;
  await window.benchShown(last, paint);
  return {latency, inputs: sent.size + latency.length, drawn, last, shown: Number(img.dataset.seq),
          status: document.getElementById('status').textContent};
}"""
# Installed in each page: resolves once the picture of state `seq` (or newer) is in place (and painted).
SHOWN = """() => { window.benchShown = (seq, paint = true) => new Promise(resolve => {
  const img = document.getElementById('decoded');
  const done = () => paint ? requestAnimationFrame(() => resolve()) : resolve();
  if (Number(img.dataset.seq) >= seq) return done();
  const watch = new MutationObserver(() => { if (Number(img.dataset.seq) >= seq) { watch.disconnect(); done(); } });
  watch.observe(img, {attributes: true, attributeFilter: ['data-seq']});
}); }"""


def demo_run(work: Path, p: dict) -> tuple[Path, str]:
    """Return the demo run to serve, and what it is."""
    from pipeline import run

    demo = REPO / "checkpoints" / "demo"
    if (demo / run.RUN_JSON).is_file() and run.read_run(demo).get("finished") and len(run.list_checkpoints(demo)) >= 8:
        return demo, f"checkpoints/demo ({len(run.list_checkpoints(demo))} checkpoints, as `make demo` trains it)"
    import rendering

    folder = rendering.make_run(work / "s12_run", size=p["size"], latent_dim=p["latent_dim"], filters=p["filters"],
                                checkpoints=CHECKPOINTS)
    return folder, f"{CHECKPOINTS} copies of a one-epoch fit of the demo model (no checkpoints/demo)"


def _start(run_dir: Path):
    """Return (the explorer's process, its address), once it serves."""
    child = subprocess.Popen([sys.executable, "-m", "pipeline.serve", str(run_dir), "--port", "0"], cwd=REPO,
                             env=QUIET_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = child.stdout.readline()
    found = re.search(r"http://\S+", line)
    if not found:
        child.kill()
        raise RuntimeError(f"the explorer did not start: {line}{child.stderr.read()[-3000:]}")
    return child, found.group(0)


def _page(browser, url: str):
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.goto(url)
    page.evaluate(SHOWN)
    page.evaluate("() => window.benchShown(1)")
    return page


def _row(table: Table, what: str, values: list, n_label=None) -> float:
    values = sorted(values)
    q = statistics.quantiles(values, n=10) if len(values) >= 10 else [values[0]] * 9
    median = statistics.median(values)
    table.add(what, n_label or len(values), ms(median / 1e3), f"{ms(q[0] / 1e3)} - {ms(q[-1] / 1e3)}",
              f"{ms(values[0] / 1e3)} - {ms(values[-1] / 1e3)}")
    return median


def explore(p: dict, work: Path, log) -> Section:
    from playwright.sync_api import sync_playwright

    section = Section("12. The explorer: dragging latents and epochs in Chromium")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise RuntimeError("Debian's chromium is not installed (apt-get install chromium)")
    run_dir, what = demo_run(work, p)
    child, url = _start(run_dir)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu",
                                         "--disable-background-networking", "--disable-component-update"])
            table, medians, clients = _measure(browser, url, log)
            browser.close()
    finally:
        child.terminate()
        child.wait(timeout=60)
    section.tables.append((f"{what}; latency from the input event to the new picture in place, in ms", table))
    section.tables.append(("10 pages dragging at once (one request in flight each, stale states dropped)", clients))
    latent, drag, epoch, answered = medians
    section.goals += [
        Goal("latent slider: input event to picture, median", ms(latent / 1e3), "<= 50 ms", latent <= 50,
             f"{latent / 50:.2f}x"),
        Goal("dragging a latent (an input every 16 ms): input to a picture of it or newer, median", ms(drag / 1e3),
             "<= 50 ms", drag <= 50, f"{drag / 50:.2f}x"),
        Goal("switching epoch (an epoch not cached), median", ms(epoch / 1e3), "<= 150 ms", epoch <= 150,
             f"{epoch / 150:.2f}x"),
        Goal("10 clients dragging at once: all answered, nothing dropped but superseded states", answered,
             "all", answered == "all", answered)]
    section.notes.append(
        "The page keeps one decode request in flight: inputs that arrive meanwhile only mark the state changed, "
        "and the newest state is asked for when the answer comes, so a drag's intermediate states are dropped and "
        "the picture follows the hand. 'Drawn' counts inputs whose own state became a picture. The explorer runs in "
        f"its own process (`python -m pipeline.serve`, cache of 4 epochs), Chromium in another, on {os.cpu_count()} "
        "cores shared by both.")
    return section


def _measure(browser, url: str, log):
    """Return (latency table, (latent, drag, epoch medians, clients' verdict), clients table)."""
    page = _page(browser, url)
    meta = page.evaluate("() => window.explorer.meta()")
    d, (lo, hi), n_epochs = meta["order"][0], meta["range"], len(meta["epochs"])
    # the cache warms (each cached epoch's models build and trace) before anything is timed
    page.evaluate(MOVES_JS, {"id": "epoch", "values": list(range(min(n_epochs, 6))) + [n_epochs - 1]})
    table = Table(["what", "n", "median", "10th - 90th percentile", "min - max"])
    values = [lo + (hi - lo) * ((i * 0.37) % 1) for i in range(MOVES)]
    latent = _row(table, "one latent moved at a time", page.evaluate(MOVES_JS, {"id": f"z{d}", "values": values}))
    dragged = page.evaluate(DRAG, {"d": d, "seconds": 3, "paint": True})
    drag = _row(table, "dragging a latent: input to a picture of it or newer", dragged["latency"],
                f"{dragged['inputs']} inputs, {dragged['drawn']} drawn")
    uncached = [i % n_epochs for i in range(SWITCHES)]  # each epoch in turn: never among the last 4 (of >= 5)
    epoch = _row(table, "switching epoch (not cached: load, encode, decode)",
                 page.evaluate(MOVES_JS, {"id": "epoch", "values": uncached}))
    _row(table, "switching between two epochs (both cached)",
         page.evaluate(MOVES_JS, {"id": "epoch", "values": [0, n_epochs - 1] * 10}))
    log(f"  latent {latent:.0f} ms, drag {drag:.0f} ms, epoch {epoch:.0f} ms (medians)")
    page.close()
    clients, verdict = _many(browser, url, d)
    log(f"  10 clients: {verdict}")
    return table, (latent, drag, epoch, verdict), clients


def _many(browser, url: str, d: int, n: int = 10):
    """Drag in `n` pages at once; return their table and 'all' or what went wrong."""
    pages, answers = [], []
    for _ in range(n):
        page = _page(browser, url)
        codes = []
        page.on("response", lambda r, codes=codes: codes.append(r.status) if "/decode?" in r.url else None)
        page.on("requestfailed", lambda r, codes=codes: codes.append("failed"))
        pages.append(page)
        answers.append(codes)
    for page in pages:  # start every drag, then collect: they run at once
        page.evaluate(f"() => {{ window.benchDrag = ({DRAG})({{d: {d}, seconds: 3, paint: false}}); }}")
    results = [page.evaluate("() => window.benchDrag") for page in pages]
    table = Table(["client", "inputs", "drawn", "requests answered", "last picture is the last state",
                   "input to picture: median"])
    problems = []
    for i, (result, codes) in enumerate(zip(results, answers)):
        ok = sum(1 for c in codes if c == 200)
        table.add(i + 1, result["inputs"], result["drawn"], f"{ok} of {len(codes)}",
                  "yes" if result["shown"] == result["last"] else "**no**",
                  ms(statistics.median(result["latency"]) / 1e3) if result["latency"] else "-")
        if ok != len(codes) or result["shown"] != result["last"] or result["status"]:
            problems.append(f"client {i + 1}: {len(codes) - ok} unanswered, last shown {result['shown']} of "
                            f"{result['last']} {result['status']}")
    for page in pages:
        page.close()
    return table, "all" if not problems else "; ".join(problems)
