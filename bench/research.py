"""Section 11 of the benchmarks: research-size models (64x64 RGB, 64 and 128 latents) rendered beside their floor.

The model is `pipeline.train`'s ImageVAE with `--image-size 64 --latent-dim 64 --filters 32` (9 MB a checkpoint),
trained one epoch on coloured `shapes` (each image tinted by a random RGB colour), its weights copied under every
epoch name. The floor is demo.floor's, measured in one process as the held-out check does it: Keras' start-up plus,
per checkpoint, reading every weight array with h5py, setting the weights, encoding the 64 fixed samples and
decoding 64 + latent_dim x 10 codes in one compiled call (the fastest of 9 checkpoints). The renders are
`python -m pipeline.render RUN --views recon,walk`, fresh each time, `--jobs 1` and the default interleaved.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from demo import _render, floor
from rendering import make_run
from pipeline import run
from util import Goal, Section, Table, interleaved, s, summary, timed_run

MODELS = {64: "64x64 RGB, 64 latents, 32 filters", 128: "64x64 RGB, 128 latents, 32 filters"}


def research_run(work: Path, latent_dim: int, checkpoints: int, *, size: int = 64, images: int = 512) -> Path:
    """Return a run directory of the research-size model with `checkpoints` epochs of the same weights."""
    base = work / f"research_{latent_dim}_base"
    if not (base / run.RUN_JSON).is_file():
        data = work / "rgb_shapes.npy"
        if not data.is_file():
            from pipeline.data import shapes

            gray, _ = shapes(images, size=size)
            tint = np.random.default_rng(0).uniform(0.2, 1.0, (len(gray), 1, 1, 3)).astype(np.float32)
            np.save(data, gray * tint)
        timed_run([sys.executable, "-m", "pipeline.train", "--data", str(data), "--image-size", str(size),
                   "--latent-dim", str(latent_dim), "--filters", "32", "--n-images", str(images), "--n-eval", "0",
                   "--epochs", "1", "--run", str(base)])
    folder = work / f"research_{latent_dim}_{checkpoints}"
    if len(run.list_checkpoints(folder)) == checkpoints:
        return folder
    return make_run(folder, size=size, latent_dim=latent_dim, filters=32, checkpoints=checkpoints, source=base)


def _sizes(out: Path) -> dict:
    """Return the bytes of the largest GIF, and of one walk and one recon PNG, in a render's outputs."""
    gifs = {p.name: p.stat().st_size for p in out.glob("*.gif")}
    largest = max(gifs, key=gifs.get)
    return {"largest GIF": (largest, gifs[largest]),
            "walk PNG": next((out / "walk").glob("*.png")).stat().st_size,
            "recon PNG": next((out / "recon").glob("*.png")).stat().st_size,
            "walk pages": (out / "index.html").read_text().count('data-page="')}


def research_scale(p: dict, work: Path, log) -> Section:
    section = Section("11. Research-size models: 64x64 RGB, 64 and 128 latents, beside their floor")
    n, rounds = p["s11_checkpoints"], p["s11_rounds"]
    table = Table(["model", "checkpoints", "configuration", "runs", "min", "median", "max", "floor", "median / floor"])
    sizes = Table(["model", "walk PNG", "recon PNG", "largest GIF", "report's walk pages"])
    for latent_dim in (64, 128):
        run_dir = research_run(work, latent_dim, n)
        total, startup, per = floor(run_dir, n, reps=3)
        log(f"11: {MODELS[latent_dim]}: floor of {n} checkpoints {s(total)} (start-up {s(startup)}, {s(per)} each)")
        times = {"--jobs 1": [], "default --jobs": []}
        configs = list(times) if latent_dim == 64 else ["default --jobs"]
        for config in interleaved(configs, rounds if latent_dim == 64 else 1):
            out = work / f"s11_out_{latent_dim}"
            times[config].append(_render(run_dir, out, *(["--jobs", "1"] if config == "--jobs 1" else [])))
            log(f"11: {MODELS[latent_dim]}, {config}: {s(times[config][-1])}")
        for config in configs:
            st = summary(times[config])
            table.add(MODELS[latent_dim], n, config, st["n"], s(st["min"]), s(st["median"]), s(st["max"]), s(total),
                      f"{st['median'] / total:.2f}")
            if latent_dim == 64:
                section.goals.append(Goal(f"{MODELS[latent_dim]}, {n} checkpoints, {config}: render / floor "
                                          f"(median of {st['n']}, spread {st['min'] / total:.2f}-"
                                          f"{st['max'] / total:.2f})", f"{st['median'] / total:.2f}", "<= 1.3",
                                          st["median"] / total <= 1.3,
                                          "" if st["median"] / total <= 1.3 else f"{st['median'] / total - 1.3:.2f} over"))
        found = _sizes(work / f"s11_out_{latent_dim}")
        sizes.add(MODELS[latent_dim], f"{found['walk PNG'] / 1e6:.1f} MB", f"{found['recon PNG'] / 1e6:.2f} MB",
                  f"{found['largest GIF'][0]}, {found['largest GIF'][1] / 1e6:.1f} MB ({n} frames)",
                  found["walk pages"])
    section.tables += [(f"`python -m pipeline.render RUN --views recon,walk`, fresh outputs each time, beside its floor "
                        f"(Keras' start-up + {n} x (h5py read, set weights, encode 64, decode 64 + latents x 10 in "
                        f"one call))", table), ("What one checkpoint's pictures weigh", sizes)]
    section.notes.append("With `--jobs 1` the model's calls keep about one and a half of the two cores busy; each "
                         "checkpoint's pictures are drawn and written in a second thread meanwhile. The default "
                         "prices frames at the last render's measured cost (0.02 s before any), so a first render "
                         "of a run is `--jobs 1`: the two rows are then one configuration, and their gap is noise.")
    section.tables.append(("200 checkpoints of the 64-latent model, default --jobs, and 1,000 extrapolated",
                           _long(work, startup_of=floor(research_run(work, 64, n), n)[1], count=p["s11_long"],
                                 log=log)))
    return section


def _long(work: Path, *, startup_of: float, count: int, log) -> Table:
    """Return a table: the wall time and largest GIF of rendering `count` checkpoints, and 1,000 extrapolated
    (start-up once, the rest per checkpoint; an animation shows at most 100 epochs, so its GIF stops growing)."""
    run_dir = research_run(work, 64, count)
    out = work / "s11_long"
    wall = _render(run_dir, out)
    per = (wall - startup_of) / count
    gif = max(out.glob("*.gif"), key=lambda g: g.stat().st_size)
    frames = sorted((out / "walk").glob("*.png"))
    png_bytes = sum(f.stat().st_size for f in out.rglob("*.png"))
    log(f"11: {count} checkpoints in {s(wall)}")
    table = Table(["checkpoints", "wall", "per checkpoint (after start-up)", "largest GIF", "PNG frames on disk"])
    table.add(count, s(wall), s(per), f"{gif.name}, {gif.stat().st_size / 1e6:.1f} MB ({min(count, 100)} frames)",
              f"{png_bytes / 1e9:.2f} GB ({len(frames)} walk frames)")
    gif_at_1000 = gif.stat().st_size * 100 / min(count, 100)  # the same 100 frames once count >= 100
    table.add("1,000 (extrapolated)", s(startup_of + 1000 * per), s(per),
              f"{gif.name}, {gif_at_1000 / 1e6:.1f} MB (100 frames)", f"{png_bytes * 1000 / count / 1e9:.1f} GB")
    return table
