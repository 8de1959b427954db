"""Section 10 of the benchmarks: `python -m pipeline.adopt` on files Keras' ModelCheckpoint writes.

For the demo model and a research-size one (64x64 RGB, 64 latents, 32 filters), K `.weights.h5` files are
written as `ModelCheckpoint(save_weights_only=True)` writes them (the whole model with Adam's state, after a
training step), then adopted by the CLI, fresh each round. The per-checkpoint figure is the CLI's own
(loading, checking and writing, without Keras' start-up); its floor is Keras' own `load_weights` of the same
files in one process, measured in the same round. Sizes: the source file against the run's copy.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from util import QUIET_ENV, REPO, Section, Table, interleaved, summary

MODELS = {"demo model (32x32 gray, 8 latents, 16 filters)": {"image_size": 32, "channels": 1, "latent_dim": 8,
                                                               "filters": 16},
          "research size (64x64 RGB, 64 latents, 32 filters)": {"image_size": 64, "channels": 3, "latent_dim": 64,
                                                                "filters": 32}}
BUILD = """
import numpy as np
from pipeline.model import ImageVAE


def build():
    model = ImageVAE(**{kwargs})
    model(np.zeros((1, {size}, {size}, {channels}), "float32"))
    return model
"""
FLOOR = """
import sys, time
from pathlib import Path
from pipeline.startup import import_keras
import_keras()
import adopt_bench_{i} as m
model, files = m.build(), sorted(Path(sys.argv[1]).glob("*.weights.h5"))
started = time.perf_counter()
for f in files:
    model.load_weights(f)
print((time.perf_counter() - started) / len(files))
"""


def _sources(folder: Path, i: int, kwargs: dict, k: int) -> Path:
    """Write the model's builder module and K ModelCheckpoint-style files; return the files' folder."""
    (folder / f"adopt_bench_{i}.py").write_text(BUILD.format(kwargs=kwargs, size=kwargs["image_size"],
                                                             channels=kwargs["channels"]))
    source = folder / f"source_{i}"
    script = textwrap.dedent(f"""
        import numpy as np, keras
        import adopt_bench_{i} as m
        model = m.build()
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        x = np.random.default_rng(0).random((8, {kwargs['image_size']}, {kwargs['image_size']},
                                             {kwargs['channels']})).astype("float32")
        for epoch in range(1, {k} + 1):
            model.train_on_batch(x)
            model.save_weights("{source}/vae.%02d.weights.h5" % epoch)
    """)
    source.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-c", script], cwd=folder, env={**QUIET_ENV, "PYTHONPATH": str(folder)},
                   check=True, capture_output=True)
    return source


def _run(cmd, folder: Path) -> str:
    result = subprocess.run(cmd, cwd=folder, env={**QUIET_ENV, "PYTHONPATH": f"{folder}:{REPO}"},
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"`{' '.join(map(str, cmd))}` exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result.stdout


def adopt_files(p: dict, work: Path, log) -> Section:
    """Section 10."""
    k, rounds = p["s10_checkpoints"], p["s10_rounds"]
    out = Section(f"10. Adopting ModelCheckpoint files (`python -m pipeline.adopt`, {k} checkpoints)")
    folder = work / "s10"
    folder.mkdir(parents=True, exist_ok=True)
    table = Table(["model", "per checkpoint: median (min-max)", "floor: Keras load_weights", "median / floor",
                   "CLI wall time (median)", "source file", "run's copy", "1,000 checkpoints: copies"])
    for i, (name, kwargs) in enumerate(MODELS.items()):
        source = _sources(folder, i, kwargs, k)
        per, floors, walls = [], [], []
        for what in interleaved(["adopt", "floor"], rounds):
            if what == "floor":
                floors.append(float(_run([sys.executable, "-c", FLOOR.format(i=i), source], folder)))
                continue
            run_dir = folder / f"run_{i}"
            shutil.rmtree(run_dir, ignore_errors=True)
            started = time.perf_counter()
            line = _run([sys.executable, "-m", "pipeline.adopt", source, "--model", f"adopt_bench_{i}:build",
                         "--run", run_dir, "--quiet"], folder)
            walls.append(time.perf_counter() - started)
            per.append(float(re.search(r"\(([\d.]+) s a checkpoint\)", line).group(1)))
            log(f"  {name}: adopt {per[-1]:.3f} s a checkpoint, {walls[-1]:.1f} s in all")
        src = sum(f.stat().st_size for f in source.glob("*.weights.h5")) / k
        copy = sum(f.stat().st_size for f in (folder / f"run_{i}" / "weights").glob("*.h5")) / k
        a, f, w = summary(per), summary(floors), summary(walls)
        table.add(name, f"{a['median']:.3f} s ({a['min']:.3f}-{a['max']:.3f})", f"{f['median']:.3f} s",
                  f"{a['median'] / f['median']:.2f}x", f"{w['median']:.1f} s", f"{src / 1e6:.1f} MB",
                  f"{copy / 1e6:.1f} MB", f"{copy * 1000 / 1e9:.2f} GB (source {src * 1000 / 1e9:.1f} GB)")
    out.tables.append((f"Median of {rounds} interleaved rounds each; per checkpoint is the CLI's own figure "
                       f"(load, check every variable, write the copy), start-up excluded.", table))
    out.notes.append("The run's copy holds the encoder and decoder weights only: no optimizer state (Adam keeps "
                     "two more arrays per weight) and no training-only state; it renders anywhere.")
    return out
