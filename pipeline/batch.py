"""Checkpoints -> frame files, in parallel.

Workers are module-level functions that receive paths and plain values, never
live models. Each worker process rebuilds the run's models once (cached here)
and loads every checkpoint of its chunks into them. loky workers are fresh
processes (TensorFlow does not survive a fork); their TensorFlow thread pools
are capped so that jobs x threads <= cores.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from pipeline import grid, plan, run, writers

_MODELS: dict = {}   # per process: (run.json path, mtime, safe_mode) -> frames.Models
_SAMPLES: dict = {}  # per process: (samples path, mtime) -> images


def cores() -> int:
    """Return the CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def cap_threads(threads: int) -> None:
    """Limit TensorFlow's (and BLAS') threads in this process, before or after TF starts."""
    for var in ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS"):
        os.environ[var] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # TF already running in this process: the first setting stays


def _models(run_dir: str, safe_mode: bool, imports: tuple):
    from pipeline.frames import Models

    path = Path(run_dir) / run.RUN_JSON
    key = (str(path.resolve()), path.stat().st_mtime_ns, safe_mode, imports)
    if key not in _MODELS:
        import importlib

        for module in imports:  # named by the user (--import), never by the run directory
            importlib.import_module(module)
        _MODELS.clear()
        _MODELS[key] = Models(run.read_run(run_dir), safe_mode=safe_mode)
    return _MODELS[key]


def _samples(path: str | None):
    if path is None:
        return None
    key = (path, Path(path).stat().st_mtime_ns)
    if key not in _SAMPLES:
        _SAMPLES.clear()
        _SAMPLES[key] = run.read_samples(path)["images"]
    return _SAMPLES[key]


def view_grids(models, samples, views: list[str], settings: dict) -> dict[str, np.ndarray]:
    """Return {view: uint8 grid} of the checkpoint loaded in `models`."""
    from pipeline.frames import walk_codes

    def picture(images, cols):
        shown = grid.pick_channels(images, settings["channels"])
        return grid.tile(grid.to_uint8(shown, value_range=settings["value_range"]),
                         cols=cols, pad=settings["pad"], pad_value=settings["pad_value"])

    grids = {}
    if "recon" in views:
        z_mean, _ = models.encode(samples)
        grids["recon"] = picture(models.decode(z_mean), grid.square_cols(len(samples)))
    if "walk" in views:
        steps = settings["walk_steps"]
        lo, hi = settings["walk_range"]
        grids["walk"] = picture(models.decode(walk_codes(models.latent_dim, steps=steps, lo=lo, hi=hi)), steps)
    return grids


def render_chunk(job: dict) -> list[dict]:
    """Render the frames of a chunk of checkpoints; return one result per checkpoint.

    job: run_dir, out_dir, samples_path (or None), tasks [(epoch, path, stamp,
    views)], settings {view: settings}, common (settings of every view),
    threads, safe_mode, imports.
    A result is {"epoch", "files": {name: record}, "error": None or a reason}.
    """
    if job["threads"]:
        cap_threads(job["threads"])
    models = _models(job["run_dir"], job["safe_mode"], tuple(job["imports"]))
    samples = _samples(job["samples_path"])
    results = []
    for epoch, path, stamp, views in job["tasks"]:
        started = time.perf_counter()
        result = {"epoch": epoch, "files": {}, "error": None}
        try:
            models.load(Path(path))
            grids = view_grids(models, samples, views, job["common"])
            for view, g in grids.items():
                name = plan.frame_name(view, epoch)
                writers.write_png(Path(job["out_dir"]) / name, g)
                result["files"][name] = {"checkpoint": stamp, "settings": job["settings"][view]}
        except run.CheckpointError as err:
            result["error"] = str(err)
        except Exception as err:  # one bad checkpoint must not stop the others
            result["error"] = f"{Path(path).name}: {type(err).__name__}: {err}"
        result["seconds"] = time.perf_counter() - started
        results.append(result)
    return results


def run_jobs(jobs: list[dict], *, n_jobs: int):
    """Yield each job's results as it finishes: in this process for n_jobs=1, else loky workers."""
    if n_jobs <= 1:
        for job in jobs:
            yield render_chunk(job)
        return
    from joblib import Parallel, delayed

    parallel = Parallel(n_jobs=n_jobs, backend="loky", return_as="generator_unordered")
    yield from parallel(delayed(render_chunk)(job) for job in jobs)
