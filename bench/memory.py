"""Does a render worker's memory stay flat over many checkpoints?

Renders 200 checkpoints of a small run through the worker function
(`pipeline.execute.render_chunk`, as a loky worker runs it, one checkpoint per
call) in this process, reading the resident set size after each, and reports
the growth per checkpoint over the second half (after warm-up) from a
least-squares line. Prints a table; `bench/run.py` puts it in RESULTS.md.

    .venv/bin/python bench/memory.py [--checkpoints 200]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
GOAL_KIB_PER_CHECKPOINT = 20.0  # "flat": well under one frame's PNG per checkpoint


def rss_kib() -> int:
    """Return this process's resident set size in KiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def make_run(folder: Path, n_checkpoints: int) -> Path:
    """Return a run of `n_checkpoints` checkpoints (one short fit, weights perturbed per epoch)."""
    import keras

    from pipeline import run
    from pipeline.callback import CheckpointForViz
    from pipeline.data import shapes
    from pipeline.model import ImageVAE

    x, _ = shapes(256, size=32)
    keras.utils.set_random_seed(0)
    model = ImageVAE(image_size=32, latent_dim=8, filters=8)
    model.compile(optimizer="adam")
    run_dir = folder / "run"
    model.fit(x, epochs=1, batch_size=64, verbose=0, callbacks=[CheckpointForViz(run_dir, x)])
    parts = run.read_weights(run.list_checkpoints(run_dir)[0].path)
    rng = np.random.default_rng(0)
    for epoch in range(2, n_checkpoints + 1):
        noisy = {k: [a + rng.normal(0, 1e-3, a.shape).astype(a.dtype) for a in v] for k, v in parts.items()}
        run.write_weights(run_dir / run.WEIGHTS_DIR / run.checkpoint_name(epoch), noisy, epoch=epoch)
    return run_dir


def measure(n_checkpoints: int = 200) -> dict:
    """Return {"rss_kib": [...], "slope_kib": growth per checkpoint, ...} of one worker."""
    from pipeline import execute, run, views
    from pipeline.latents import StatsSettings
    from pipeline.settings import Decoding, Facts, Picture, RenderSettings

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = make_run(Path(tmp), n_checkpoints)
        out = Path(tmp) / "out"
        samples = run_dir / run.SAMPLES_H5
        info, checkpoints = run.read_run(run_dir), run.list_checkpoints(run_dir)
        # the settings a default render (recon, walk) resolves to, KL ranking aside
        facts = Facts(picture=Picture(value_range=tuple(info["value_range"]), pad_value=255),
                      latent_dim=info["latent_dim"], ranked=tuple(range(info["latent_dim"])), kl=None,
                      samples=run.file_stamp(samples), seed=0, epochs=tuple(c.epoch for c in checkpoints),
                      last_epoch=checkpoints[-1].epoch)
        work = [(views.get(n), views.get(n).settings(RenderSettings(), facts)) for n in ("recon", "walk")]
        rss, started = [], time.perf_counter()
        for ckpt in checkpoints:
            task = (ckpt.epoch, str(ckpt.path), ckpt.stamp(), work, StatsSettings(samples=facts.samples), Decoding())
            job = execute.Job(run_dir=str(run_dir), out_dir=str(out), samples_path=str(samples), eval_path=None,
                              tasks=(task,), threads=1, safe_mode=True, imports=())
            [result] = execute.render_chunk(job)
            assert result["error"] is None, result["error"]
            rss.append(rss_kib())
        seconds = time.perf_counter() - started
    half = np.arange(len(rss) // 2, len(rss))
    slope = float(np.polyfit(half, np.asarray(rss)[half], 1)[0])
    return {"rss_kib": rss, "slope_kib": slope, "seconds": seconds, "n": len(rss)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", type=int, default=200)
    args = parser.parse_args(argv)
    m = measure(args.checkpoints)
    rss = m["rss_kib"]
    marks = (1, 10, m["n"] // 2, m["n"])
    print("| worker RSS after checkpoint | " + " | ".join(str(i) for i in marks) + " |")
    print("|---|" + "---|" * len(marks))
    print("| MiB | " + " | ".join(f"{rss[i - 1] / 1024:.1f}" for i in marks) + " |")
    met = abs(m["slope_kib"]) <= GOAL_KIB_PER_CHECKPOINT
    print(f"growth over the second half: {m['slope_kib']:+.2f} KiB per checkpoint "
          f"(goal <= {GOAL_KIB_PER_CHECKPOINT:g}: {'met' if met else 'MISSED'}); "
          f"{m['n']} checkpoints in {m['seconds']:.1f} s")
    return m


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
