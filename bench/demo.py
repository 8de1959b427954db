"""Sections 7-9: what a user of `make demo` waits for, a 1000-checkpoint run, the analyses and the backends.

7. The demo model end to end: `python -m pipeline.render` of its 20- and
   100-checkpoint runs with the default --jobs, --jobs 1, --jobs 2 and 0.1.0's
   renderer (`git archive v0.1.0`, beside this code), each beside its floor.
8. A long run: 1000 checkpoints with the defaults: wall time, each GIF's size,
   and the bytes the report page loads at first view (headless Chromium).
9. The metrics' cost per checkpoint beside the decode cost, and rendering on
   Keras' JAX backend against TensorFlow end to end.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from pipeline import run
from pipeline.startup import LEAN, UNUSED
from rendering import RENDER, make_run
from util import REPO, Goal, Section, Table, interleaved, makefile, ms, s, summary, timed_run

DEMO = {"size": 32, "latent_dim": 8, "filters": 16}  # the model `make demo` trains (Makefile: DEMO_TRAIN)


DEMO_VIEWS = makefile("DEMO_VIEWS")  # every view `make demo` renders: the analyses too


def demo_runs(work: Path, counts=(20, 100)) -> dict[int, Path]:
    """Return {checkpoints: run directory} of the demo run: `pipeline.train` with make demo's arguments (its
    evaluation set, labels and factors included) for one epoch, its weights under every epoch name."""
    base = work / "demo_base"
    if not (base / run.RUN_JSON).is_file():
        shutil.rmtree(base, ignore_errors=True)
        timed_run([sys.executable, "-m", "pipeline.train", *makefile("DEMO_TRAIN").split(), "--run", str(base),
                   "--epochs", "1"])
    found = {}
    for n in counts:
        folder = work / f"demo_{n}"
        found[n] = folder if len(run.list_checkpoints(folder)) == n else make_run(folder, checkpoints=n, source=base,
                                                                                   **DEMO)
    return found


# ends as a render in its own process ends (startup.run_command): without the interpreter's teardown
IMPORT_KERAS = "from pipeline.startup import import_keras; import_keras(); import os; os._exit(0)"
_FLOORS: dict = {}
_STARTUP: dict = {}  # run directory -> {stage: seconds} of what a render spends before its first frame


def floor(run_dir: Path, n: int, reps: int = 5) -> tuple[float, float, float]:
    """Return (floor of rendering n checkpoints, one process start-up, load + encode + one decode per checkpoint).

    Start-up: the fastest of starting Python and importing Keras (TensorFlow behind it) as a render
    process does (pipeline.startup.import_keras, lean), and ending without the interpreter's teardown, as
    an inline render ends. Per checkpoint: the fastest in this process of
    loading a checkpoint, encoding the samples and decoding the recon's and the walk's codes in one call.
    """
    if run_dir in _FLOORS:
        startup, per = _FLOORS[run_dir]
        return startup + n * per, startup, per
    lean = {LEAN: "1"}
    startup = min(timed_run([sys.executable, "-c", IMPORT_KERAS], env=lean) for _ in range(reps))
    usual = min(timed_run([sys.executable, "-c", IMPORT_KERAS], env={LEAN: "0"}) for _ in range(reps))
    python = min(timed_run([sys.executable, "-c", "pass"]) for _ in range(reps))
    from pipeline.models import Models
    from pipeline.views.walk import walk_codes

    built = time.perf_counter()
    models = Models(run.read_run(run_dir))
    _STARTUP[run_dir] = {"process start (python -c pass)": python,
                         "+ Keras and TensorFlow import, as a render process does it": startup - python,
                         "+ model rebuilt from run.json and called once": time.perf_counter() - built,
                         f"(not paid: what Keras imports at start-up when installed, unused by renders: "
                         f"{', '.join(_skipped()) or 'none installed'})": usual - startup}
    samples = run.read_samples(run_dir / run.SAMPLES_H5)["images"]
    codes = walk_codes(models.latent_dim)
    times = []
    for ckpt in run.list_checkpoints(run_dir)[:10]:
        started = time.perf_counter()
        models.load(ckpt.path)
        z_mean, _ = models.encode(samples)
        models.decode(np.concatenate([z_mean, codes]))
        times.append(time.perf_counter() - started)
    per = min(times[1:])
    _FLOORS[run_dir] = startup, per
    return startup + n * per, startup, per


def _skipped() -> list[str]:
    """Return the packages a render process does not import at start-up here (installed ones of UNUSED)."""
    return [n for n in UNUSED if importlib.util.find_spec(n) is not None]


V010 = ("v0.1.0", "f1875d2")  # the tag, and the commit it names (a clone may lack tags)


def old_renderer(work: Path) -> Path:
    """Return a folder holding vaeviz 0.1.0's `pipeline` package (git archive of the v0.1.0 tag), checked to be
    the code `python -m pipeline.render` runs from that folder (not this checkout's, which the editable install
    and PYTHONPATH would otherwise let win)."""
    target = (work / "v0.1.0").resolve()
    if not (target / "pipeline").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        for ref in V010:
            found = subprocess.run(["git", "-C", str(REPO), "archive", ref, "pipeline"], capture_output=True)
            if found.returncode == 0:
                break
        archive = found.stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    probe = subprocess.run([sys.executable, "-c", "import pipeline.render; print(pipeline.render.__file__)"],
                           cwd=target, capture_output=True, text=True, check=True).stdout.strip()
    if not Path(probe).resolve().is_relative_to(target):
        raise RuntimeError(f"0.1.0's renderer would not run from {target}: `pipeline.render` resolves to {probe}")
    return target


def _render(run_dir: Path, out: Path, *extra, code: Path | None = None, views: str = "recon,walk") -> float:
    """Return the wall time of a fresh render; `code`: run the `pipeline` package in that folder (python -m puts
    the working folder first on sys.path) instead of this checkout's."""
    shutil.rmtree(out, ignore_errors=True)
    return timed_run([*RENDER, str(Path(run_dir).resolve()), "--out", str(Path(out).resolve()), "--views", views,
                      "--quiet", *extra], cwd=code)


def end_to_end(p: dict, work: Path, log) -> Section:
    """Section 7."""
    section = Section("7. The demo model end to end (`python -m pipeline.render`: recon and walk; all of "
                      "make demo's views)")
    runs = demo_runs(work, (20, 100))
    old = old_renderer(work)
    configs = {"default --jobs": (), "--jobs 1": ("--jobs", "1"), "--jobs 2": ("--jobs", "2")}
    rounds = p["s7_rounds"]
    table = Table(["checkpoints", "configuration", "runs", "min", "median", "floor", "min / floor"])
    mins = {}
    for n, run_dir in runs.items():
        names = list(configs) + (["0.1.0, --jobs 1"] if n == 20 else [])
        times = {name: [] for name in names}
        for name in interleaved(names, rounds):
            if name.startswith("0.1.0"):
                times[name].append(_render(run_dir, work / "s7_out", "--jobs", "1", code=old))
            else:
                times[name].append(_render(run_dir, work / "s7_out", *configs[name]))
            log(f"  {n} checkpoints, {name}: {times[name][-1]:.1f} s")
        total, startup, per = floor(run_dir, n)
        for name in names:
            st = summary(times[name])
            mins[n, name] = st["min"]
            table.add(n, name, st["n"], s(st["min"]), s(st["median"]), s(total), f"{st['min'] / total:.2f}")
        section.notes.append(f"{n} checkpoints: floor {s(total)} = one process start-up {s(startup)} (Python and "
                             f"Keras started as a render process starts them) + {n} x {ms(per)} (load + encode + "
                             f"one decode call).")
    every_view = {name: [] for name in ("default --jobs", "--jobs 1")}
    for name in interleaved(list(every_view), p["s7_views_rounds"]):
        every_view[name].append(_render(runs[100], work / "s7_out", *configs[name], views=DEMO_VIEWS))
        log(f"  100 checkpoints, make demo's views, {name}: {every_view[name][-1]:.1f} s")
    for name, values in every_view.items():
        st = summary(values)
        mins[100, name, "views"] = st["min"]
        table.add(100, f"{name}, make demo's views", st["n"], s(st["min"]), s(st["median"]), "", "")
    section.tables.append((f"Fresh renders into an empty folder, {rounds} interleaved rounds ({p['s7_views_rounds']} "
                           f"for make demo's views: `{DEMO_VIEWS}`; their floor is not defined, as the analyses "
                           f"are more than a decode); 0.1.0 is `git archive v0.1.0` run from its own folder on the "
                           f"same run directories", table))
    stages = Table(["before the first frame", "seconds"])
    for stage, seconds in _STARTUP[runs[20]].items():
        stages.add(stage, s(seconds))
    section.tables.append(("What a render spends before its first frame (fastest of 5 for the first two; the "
                           "model build measured in this process, where TensorFlow is already imported)", stages))
    ratio20 = mins[20, "default --jobs"] / mins[20, "--jobs 1"]
    section.goals.append(Goal("default --jobs / --jobs 1, demo run (20 checkpoints)", f"{ratio20:.2f}", "<= 1.05",
                              ratio20 <= 1.05, "" if ratio20 <= 1.05 else f"{ratio20 - 1.05:.2f} over"))
    speedup = mins[100, "--jobs 1"] / mins[100, "default --jobs"]
    _, startup, per = floor(runs[100], 100)
    ideal = (startup + 100 * per) / (startup + 100 * per / os.cpu_count())
    section.goals.append(Goal("--jobs 1 / default --jobs, 100 checkpoints (ideal from start-up and per-checkpoint "
                              f"work on {os.cpu_count()} cores: {ideal:.2f})", f"{speedup:.2f}", ">= 1.4",
                              speedup >= 1.4, "" if speedup >= 1.4 else f"{1.4 - speedup:.2f} short"))
    one, default = mins[100, "--jobs 1", "views"], mins[100, "default --jobs", "views"]
    ideal_views = one / (startup + (one - startup) / os.cpu_count())
    section.goals.append(Goal(f"--jobs 1 / default --jobs, 100 checkpoints, make demo's views (ideal from start-up "
                              f"and the --jobs 1 time on {os.cpu_count()} cores: {ideal_views:.2f})",
                              f"{one / default:.2f}", ">= 1.4", one / default >= 1.4,
                              "" if one / default >= 1.4 else f"{1.4 - one / default:.2f} short"))
    versus = mins[20, "default --jobs"] / mins[20, "0.1.0, --jobs 1"]
    section.goals.append(Goal("default / 0.1.0 with --jobs 1, demo run", f"{versus:.2f}", "<= 0.8", versus <= 0.8,
                              "" if versus <= 0.8 else f"{versus - 0.8:.2f} over"))
    floor20 = floor(runs[20], 20)[0]
    if 0.8 * mins[20, "0.1.0, --jobs 1"] < floor20:
        section.notes.append(
            f"0.8x 0.1.0's time would be {s(0.8 * mins[20, '0.1.0, --jobs 1'])}, below this run's floor "
            f"({s(floor20)}: the process start-up with TensorFlow's import, {s(floor(runs[20], 20)[1])}, is most of "
            f"it). Both renderers are within {max(mins[20, 'default --jobs'], mins[20, '0.1.0, --jobs 1']) / floor20:.2f}x "
            f"of the floor; what is left to cut is the import itself.")
    if speedup < 1.4:
        section.notes.append(
            f"100 checkpoints: one process already uses both cores (TensorFlow's intra-op threads), so a second "
            f"process only adds its start-up; the ideal with both cores from the first frame is {ideal:.2f}x, and "
            f"the default renders in one process here because the {100 * 2} frames do not repay a second start-up "
            f"(execute.default_jobs).")
    section.notes.append(
        f"0.1.0 runs in this same environment, where Keras' import also imports what it finds installed of "
        f"{', '.join(_skipped()) or 'scikit-learn, pandas and JAX (none here)'} "
        f"({s(list(_STARTUP[runs[20]].values())[-1])} here). The new renderer's processes start Keras without "
        f"them (pipeline/startup.py); 0.1.0's own install had no scikit-learn (vaeviz depends on it since the "
        f"metrics), and pandas and JAX come with the dev extra.")
    to_floor = mins[20, "default --jobs"] / floor(runs[20], 20)[0]
    section.goals.append(Goal("demo run with the defaults / floor", f"{to_floor:.2f}", "<= 1.5", to_floor <= 1.5,
                              "" if to_floor <= 1.5 else f"{to_floor - 1.5:.2f} over"))
    return section


def first_view_bytes(page_path: Path) -> tuple[int, int]:
    """Return (bytes of the files the report requests at first view, how many), in headless Chromium."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        return -1, 0
    from playwright.sync_api import sync_playwright

    urls = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu",
                                                                    "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("request", lambda r: urls.append(r.url))
        page.goto(page_path.as_uri())
        page.wait_for_load_state("networkidle")  # the lazy pictures in the first screen have loaded too
        browser.close()
    from urllib.parse import unquote, urlparse

    files = {Path(unquote(urlparse(u).path)) for u in urls if u.startswith("file://")}
    return sum(f.stat().st_size for f in files if f.is_file()), len(files)


def long_run(p: dict, work: Path, log) -> Section:
    """Section 8."""
    section = Section(f"8. A long run: {p['s8_checkpoints']} checkpoints with the defaults")
    n = p["s8_checkpoints"]
    run_dir = demo_runs(work, (n,))[n]
    out = work / "s8_out"
    views = "recon,walk,kl,manifold,samples,interp,traversal"
    shutil.rmtree(out, ignore_errors=True)
    wall = timed_run([*RENDER, str(run_dir), "--out", str(out), "--views", views, "--quiet"])
    log(f"  {n} checkpoints: {wall:.0f} s")
    table = Table(["file", "size", "frames (GIF)"])
    biggest = 0
    from PIL import Image

    for gif in sorted(out.glob("*.gif")):
        with Image.open(gif) as im:
            frames = im.n_frames
        biggest = max(biggest, gif.stat().st_size)
        table.add(gif.name, f"{gif.stat().st_size / 1e6:.2f} MB", frames)
    loaded, count = first_view_bytes(out / "index.html")
    section.tables.append((f"`render {views}` of {n} checkpoints (demo model), defaults: {s(wall)} wall, "
                           f"{s(wall / n)} per checkpoint", table))
    section.notes.append(f"The report page loads {loaded / 1e6:.2f} MB in {count} files at first view "
                         f"(headless Chromium, 1200x900 window; pictures below the fold load lazily, when scrolled to)."
                         if loaded >= 0 else "Chromium is not installed: the report's first-view bytes were not measured.")
    section.goals.append(Goal("largest GIF with the defaults (--max-frames 100)", f"{biggest / 1e6:.2f} MB",
                              "<= 20 MB", biggest <= 20e6, "" if biggest <= 20e6 else f"{biggest / 1e6 - 20:.1f} MB over"))
    return section


def analyses_and_backends(p: dict, work: Path, log) -> Section:
    """Section 9."""
    from pipeline import metrics

    section = Section("9. The analyses' cost, and rendering on Keras' JAX backend")
    rng = np.random.default_rng(0)
    factors = rng.integers(0, 10, size=(10_000, 5))
    codes = np.concatenate([factors + rng.normal(0, 1, factors.shape), rng.standard_normal((10_000, 3))], axis=1)
    table = Table(["work, per checkpoint", "runs", "min", "median"])
    for name, fn in (("MIG, 10,000 codes x 8 latents, 5 factors", metrics.mig),
                     ("SAP", metrics.sap), ("DCI (random forest)", metrics.dci),
                     ("all three", metrics.all_metrics)):
        times = []
        for _ in range(p["s9_reps"]):
            started = time.perf_counter()
            fn(codes, factors)
            times.append(time.perf_counter() - started)
        st = summary(times)
        table.add(name, st["n"], s(st["min"]), s(st["median"]))
        if name == "all three":
            all_three = st["min"]
    runs = demo_runs(work, (20,))
    _, _, per = floor(runs[20], 20)
    table.add("decode cost: load + encode + one decode call (demo model, recon + walk)", "", ms(per), "")
    section.tables.append(("In this process, two cores", table))
    section.goals.append(Goal("all three metrics on 10,000 codes, per checkpoint", s(all_three), "<= 5 s",
                              all_three <= 5, "" if all_three <= 5 else f"{all_three - 5:.1f} s over"))
    section.tables.append(_backends(runs[20], work, p["s9_reps"], log))
    section.notes.append("No GPU machine was lent to the session that ran this benchmark (the device tool's status: "
                         "not drawn), so there are no GPU figures: training overhead and render throughput with 1, 2 "
                         "and 4 workers sharing one GPU remain to be measured where one is available.")
    return section


def _backends(run_dir: Path, work: Path, reps: int, log) -> tuple[str, Table]:
    """Render the demo run with Keras on TensorFlow and on JAX (interleaved); compare time and pixels."""
    times = {"tensorflow": [], "jax": []}
    for backend in interleaved(list(times), reps):
        out = work / f"s9_{backend}"
        shutil.rmtree(out, ignore_errors=True)
        times[backend].append(timed_run([*RENDER, str(run_dir), "--out", str(out), "--views", "recon,walk", "-j", "1",
                                         "--quiet"], env={"KERAS_BACKEND": backend}))
        log(f"  render on {backend}: {times[backend][-1]:.1f} s")
    from PIL import Image

    worst = max(int(np.abs(np.asarray(Image.open(work / "s9_tensorflow" / f), np.int16)
                           - np.asarray(Image.open(work / "s9_jax" / f), np.int16)).max())
                for f in ("recon/epoch_0020.png", "walk/epoch_0020.png"))
    table = Table(["Keras backend", "runs", "min", "median"])
    for backend, values in times.items():
        st = summary(values)
        table.add(backend, st["n"], s(st["min"]), s(st["median"]))
    faster = min(times, key=lambda b: min(times[b]))
    return (f"`render --jobs 1` of the demo run's 20 checkpoints (recon, walk), KERAS_BACKEND set, interleaved; "
            f"the pictures differ by at most {worst} grey level(s); {faster} is faster, so "
            f"{'TensorFlow stays the default' if faster == 'tensorflow' else 'JAX could be the default'}", table)
