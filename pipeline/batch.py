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


def cap_threads(threads: int | None) -> None:
    """Limit TensorFlow's (and BLAS') threads in this process, before or after TF starts.

    None: this process is a worker of a cluster; divide its cores by the tasks
    the cluster runs in it at once. GPUs get memory growth, so that several
    workers can share one.
    """
    threads = threads or max(1, cores() // _cluster_slots())
    for var in ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS"):
        os.environ[var] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # CUDA probing noise on CPU machines
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        for gpu in tf.config.list_physical_devices("GPU"):
            tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError:
        pass  # TF already running in this process: the first setting stays


def _cluster_slots() -> int:
    """Return how many tasks the cluster runs at once in this worker process (1 if unknown)."""
    try:
        from distributed import get_worker

        return max(1, get_worker().state.nthreads)
    except (ImportError, ValueError, AttributeError):
        return 1


def _models(run_dir: str, safe_mode: bool, imports: tuple):
    from pipeline.frames import Models

    path = Path(run_dir) / run.RUN_JSON
    key = (str(path.resolve()), path.stat().st_mtime_ns, safe_mode, imports)
    if key not in _MODELS:
        import importlib

        for module in imports:  # named by the user (--import), never by the run directory
            try:
                importlib.import_module(module)
            except ImportError as err:
                raise run.RunError(f"--import {module}: cannot import it ({err}). Pass a module "
                                   f"importable here (on PYTHONPATH) that registers the custom layers.") from err
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


INACTIVE_GRAY = 100  # label gray of a latent whose KL is below --active-kl
LABEL_WIDTH = 64


def latent_stats(z_mean, z_log_var) -> dict:
    """Return {"kl": per-dim KL or None, "mean", "std"} of z_mean over the samples (lists)."""
    from pipeline.frames import kl_per_dim

    return {"kl": None if z_log_var is None else kl_per_dim(z_mean, z_log_var).tolist(),
            "mean": z_mean.mean(axis=0).tolist(), "std": z_mean.std(axis=0).tolist()}


def row_labels(dims, kl, active_kl: float):
    """Return (labels, grays) of walk rows: `z<i> <KL to 2 decimals>`, greyed when inactive."""
    if kl is None:
        return [f"z{d}" for d in dims], [255] * len(dims)
    return ([f"z{d} {kl[d]:.2f}" for d in dims],
            [255 if kl[d] >= active_kl else INACTIVE_GRAY for d in dims])


def view_codes(models, z_mean, z_log_var, views: list[str], s: dict) -> dict[str, np.ndarray]:
    """Return {view: (n, latent_dim) codes to decode} of the views that decode codes."""
    from pipeline import frames

    d, steps = models.latent_dim, s["walk_steps"]
    lo, hi = s["walk_range"]
    codes = {}
    if "recon" in views:
        codes["recon"] = z_mean
    if "walk" in views:
        order = s.get("order") or list(range(d))
        anchor = s.get("anchor", "prior")
        if anchor == "prior" or z_mean is None:
            codes["walk"] = frames.walk_codes(d, steps=steps, lo=lo, hi=hi, order=order)
        else:
            codes["walk"] = np.concatenate([frames.walk_codes(
                d, steps=steps, lo=lo, hi=hi, order=order, anchor=z_mean[k],
                scale=np.ones(d) if z_log_var is None else np.exp(0.5 * z_log_var[k]))
                for k in range(min(int(anchor.split(":")[1]), len(z_mean)))])
    if "manifold" in views:
        codes["manifold"] = frames.manifold_codes(d, s["manifold_dims"], steps=steps, lo=lo, hi=hi)
    if "samples" in views:
        codes["samples"] = np.load(s["prior_z"], allow_pickle=False)
    if "interp" in views:
        pairs = min(s["interp_pairs"], len(z_mean) // 2)
        codes["interp"] = frames.interp_codes(z_mean[0:2 * pairs:2], z_mean[1:2 * pairs:2], steps=s["interp_steps"])
    if "traversal" in views:
        codes["traversal"] = frames.traversal_codes(traversal_anchors(z_mean, d, s), traversal_dims(d, s),
                                                    steps=steps, lo=lo, hi=hi).reshape(-1, d)
    return codes


def traversal_anchors(z_mean, d: int, s: dict) -> np.ndarray:
    """Return the codes the traversal holds still: the prior mean, then a few samples' encodings."""
    anchors = np.zeros((1, d), np.float32)
    return anchors if z_mean is None else np.concatenate([anchors, z_mean[:s["traversal_anchors"] - 1]])


def traversal_dims(d: int, s: dict) -> list[int]:
    return s["traversal_dims"] or list(range(min(d, 10)))


def view_grids(models, samples, views: list[str], settings: dict) -> dict:
    """Return {view: uint8 grid} of the checkpoint loaded in `models` ("latents": stats dict,
    "traversal": list of frames). All views' codes are decoded in one batched call.
    """
    from pipeline import frames

    s = settings
    pad, steps = s["pad"], s["walk_steps"]
    lo, hi = s["walk_range"]
    d = models.latent_dim
    nonfinite = []

    def shown(images):
        nonfinite.append(int(grid.nonfinite_mask(images).sum()))
        return grid.display(images, channels=s["channels"], value_range=s["value_range"],
                            normalize=s["normalize"], scale=s["scale"])

    def tiled(tiles, cols):
        return grid.tile(tiles, cols=cols, pad=pad, pad_value=s["pad_value"])

    def rows_labelled(tiles, cols, labels, grays=None):
        return grid.label_rows(tiled(tiles, cols), labels, grid.tile_centers(len(labels), tiles.shape[1], pad),
                               width=LABEL_WIDTH, grays=grays)

    out = {}
    z_mean = z_log_var = kl = None
    if samples is not None:
        z_mean, z_log_var = models.encode(samples)
        out["latents"] = latent_stats(z_mean, z_log_var)
        kl = out["latents"]["kl"]
    codes = view_codes(models, z_mean, z_log_var, views, s)
    if not codes:
        return out
    bounds = np.cumsum([0] + [len(c) for c in codes.values()])
    images = models.decode(np.concatenate(list(codes.values())))
    decoded = {view: images[a:b] for view, a, b in zip(codes, bounds[:-1], bounds[1:])}

    if "recon" in views:
        out["recon"] = tiled(shown(decoded["recon"]), grid.square_cols(len(samples)))
    if "walk" in views:
        order = s.get("order") or list(range(d))
        labels, grays = row_labels(order * (len(codes["walk"]) // (steps * len(order))), kl, s["active_kl"])
        out["walk"] = rows_labelled(shown(decoded["walk"]), steps, labels, grays)
    if "manifold" in views:
        i, j = s["manifold_dims"]
        tiles = shown(decoded["manifold"])
        values = frames.normal_ppf(np.linspace(lo, hi, steps))
        g = rows_labelled(tiles, steps, [f"z{j} {v:+.1f}" for v in values[::-1]])
        out["manifold"] = grid.label_columns(g, [f"{v:+.1f}" for v in values],
                                             [LABEL_WIDTH + c for c in grid.tile_centers(steps, tiles.shape[2], pad)],
                                             title=f"z{i}")
    if "samples" in views:
        out["samples"] = tiled(shown(decoded["samples"]), grid.square_cols(len(decoded["samples"])))
    if "interp" in views:
        pairs, n = len(codes["interp"]) // s["interp_steps"], s["interp_steps"]
        middle = shown(decoded["interp"])
        rows = np.concatenate(grid.match_channels([
            shown(samples[0:2 * pairs:2])[:, None], middle.reshape(pairs, n, *middle.shape[1:]),
            shown(samples[1:2 * pairs:2])[:, None]]), axis=1)
        out["interp"] = tiled(rows.reshape(-1, *rows.shape[2:]), n + 2)
    if "traversal" in views:
        dims, n_anchors = traversal_dims(d, s), len(traversal_anchors(z_mean, d, s))
        tiles = shown(decoded["traversal"])
        tiles = tiles.reshape(-1, len(dims) * n_anchors, *tiles.shape[1:])
        labels, grays = row_labels(dims, kl, s["active_kl"])
        out["traversal"] = [grid.caption(rows_labelled(frame, n_anchors, labels, grays),
                                         f"epoch {s['traverse_epoch']}") for frame in tiles]
    if sum(nonfinite):
        out["warning"] = (f"{sum(nonfinite)} pixels are NaN or Inf (the weights or codes are not finite); "
                          f"they are shown in red")
    return out


def render_chunk(job: dict) -> list[dict]:
    """Render the frames of a chunk of checkpoints; return one result per checkpoint.

    job: run_dir, out_dir, samples_path (or None), tasks [(epoch, path, stamp,
    views)], settings {view: settings}, common (settings of every view),
    threads, safe_mode, imports.
    A result is {"epoch", "files": {name: record}, "error": None or a reason}.
    """
    cap_threads(job["threads"])
    models = _models(job["run_dir"], job["safe_mode"], tuple(job["imports"]))
    samples = _samples(job["samples_path"])
    results = []
    for epoch, path, stamp, views in job["tasks"]:
        started = time.perf_counter()
        result = {"epoch": epoch, "files": {}, "error": None}
        try:
            models.load(Path(path))
            outputs = view_grids(models, samples, views, job["common"])
            result["warning"] = outputs.get("warning")
            for view in views:
                name = plan.frame_name(view, epoch)
                path = Path(job["out_dir"]) / name
                if view == "latents":
                    writers.write_json(path, outputs[view])
                elif view == "traversal":
                    writers.write_gif(path, outputs[view], fps=job["common"]["fps"])
                else:
                    writers.write_png(path, outputs[view])
                result["files"][name] = {"checkpoint": stamp, "settings": job["settings"][view]}
        except run.CheckpointError as err:
            result["error"] = str(err)
        except Exception as err:  # one bad checkpoint must not stop the others
            result["error"] = f"{Path(path).name}: {type(err).__name__}: {err}"
        result["seconds"] = time.perf_counter() - started
        results.append(result)
    return results


def run_jobs(jobs: list[dict], *, n_jobs: int, backend: str = "loky", scheduler: str | None = None):
    """Yield each job's results as it finishes.

    inline: in this process, one job after another. loky: joblib's process pool
    on this machine (its workers outlive the call, warm for the next one).
    dask: the dask.distributed cluster at `scheduler` (tcp://HOST:PORT), or a
    local one of n_jobs processes. ray: the Ray cluster at RAY_ADDRESS, or a
    local one. Cluster workers must see the run directory and the outputs
    folder at the same paths (a shared filesystem).
    """
    if backend == "dask":
        yield from _run_dask(jobs, n_jobs=n_jobs, scheduler=scheduler)
    elif backend == "ray":
        yield from _run_ray(jobs)
    elif backend == "inline":
        for job in jobs:
            yield render_chunk(job)
    else:
        from joblib import Parallel, delayed

        parallel = Parallel(n_jobs=n_jobs, backend="loky", return_as="generator_unordered")
        yield from parallel(delayed(render_chunk)(job) for job in jobs)


def _missing(extra: str, err: Exception) -> ValueError:
    return ValueError(f"--backend {extra} needs its packages: pip install 'vaeviz[{extra}]' ({err}).")


def _run_dask(jobs, *, n_jobs, scheduler):
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as err:
        raise _missing("dask", err) from err
    jobs = [{**job, "threads": None} for job in jobs]  # each worker divides its own cores
    cluster = None if scheduler else LocalCluster(n_workers=n_jobs, threads_per_worker=1, processes=True,
                                                  dashboard_address=None)
    with Client(scheduler or cluster) as client:
        try:
            for future in as_completed(client.map(render_chunk, jobs, pure=False)):
                yield future.result()
        finally:
            if cluster is not None:
                cluster.close()


def _run_ray(jobs):
    try:
        import ray
    except ImportError as err:
        raise _missing("ray", err) from err
    jobs = [{**job, "threads": None} for job in jobs]
    started = not ray.is_initialized()
    if started:
        ray.init(address=os.environ.get("RAY_ADDRESS"), include_dashboard=False, log_to_driver=False)
    try:
        pending = [ray.remote(render_chunk).remote(job) for job in jobs]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield ray.get(done[0])
    finally:
        if started:
            ray.shutdown()
