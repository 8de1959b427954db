"""Where the work runs: chunks of checkpoints to loky processes, a dask or Ray cluster, or inline.

Workers are module-level functions that receive a `Job` of paths and plain
values (and the views, which pickle by reference), never live models. Each
worker process rebuilds the run's models once (cached here) and loads every
checkpoint of its chunks into them. loky workers are fresh processes
(TensorFlow does not survive a fork); their TensorFlow thread pools are
capped so that jobs x threads <= cores.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from pipeline import run
from pipeline.quiet import quietly
from pipeline.startup import import_keras

__all__ = ["Job", "cores", "default_jobs", "cap_threads", "chunked", "run_jobs", "render_chunk",
           "WORKER_STARTUP_S", "VIEW_SECONDS"]

# Measured on 2 cores (bench/RESULTS.md, section 3): a render with 2 worker processes reaches its first
# frames this many seconds later than one rendering in its own process (spawning, and two TensorFlow
# imports sharing the cores): 3.3 s and 4.2 s in two runs once processes started Keras lean (startup.py).
# Since workers warm up together and an inline render skips the interpreter's teardown, 100 demo
# checkpoints x 2 views (4 s of work) take about as long either way (8.9 and 9.6 s inline, 9.3 and 9.7 s
# with 2 workers): a break-even nearer 2.5 s, kept at 4 s so that one process stays the choice until
# the saving is clear.
WORKER_STARTUP_S = 4.0
VIEW_SECONDS = 0.02  # a view of one checkpoint of the demo model (measured), until a render of the run has

_MODELS: dict = {}   # per process: (run.json path, mtime, safe_mode, imports) -> models.Models
_SAMPLES: dict = {}  # per process: (samples path, mtime) -> {"images", "conditions"}


@dataclass(frozen=True)
class Job:
    """A chunk of checkpoints for one worker: paths and plain values.

    tasks : (epoch, checkpoint path, checkpoint stamp, [(view, settings)], stats settings or None,
        Decoding) each: plan.Task.plain().
    threads : TensorFlow threads for the worker; None on a cluster (it divides its own cores).
    """

    run_dir: str
    out_dir: str
    samples_path: str | None
    eval_path: str | None
    tasks: tuple
    threads: int | None
    safe_mode: bool
    imports: tuple[str, ...]


def cores() -> int:
    """Return the CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def default_jobs(work_seconds: float, *, cores: int) -> int:
    """Return how many workers to render `work_seconds` of work with (the default of --jobs).

    1 (in this process) until spreading the work over every core saves more
    than the extra start-up of worker processes costs (WORKER_STARTUP_S), then
    every core: so the default is never the slow choice on little work, and a
    run with many checkpoints uses every core.
    """
    if cores < 2 or work_seconds * (1 - 1 / cores) <= WORKER_STARTUP_S:
        return 1
    return cores


def chunked(tasks: list, *, n_jobs: int, **job) -> list[Job]:
    """Return `tasks` cut into about 4 chunks per worker, each a Job with `job`'s fields.

    Only --jobs 1 renders in the calling process. Otherwise the pool has n_jobs
    workers even for one task: the parent never pays TensorFlow's start-up,
    and a worker's thread count (fixed when its TensorFlow starts) fits the
    full pool. With fewer tasks than workers (the last checkpoint, drawn first
    for its KL ranking), the other workers get a Job with no tasks, which
    starts their TensorFlow and builds the models: every worker warms up at
    once, instead of the second starting only when the frames are handed out.
    """
    threads = max(1, cores() // n_jobs)
    chunks = [c for c in np.array_split(np.arange(len(tasks)), min(len(tasks), n_jobs * 4)) if len(c)]
    jobs = [Job(tasks=tuple(tasks[i] for i in chunk), threads=threads, **job) for chunk in chunks]
    warm_ups = [Job(tasks=(), threads=threads, **job)] * (n_jobs - len(jobs)) if n_jobs > 1 else []
    return jobs + warm_ups


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
    import_keras()  # and its backend, quietly, with the thread variables above in place
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        return  # the JAX and PyTorch backends read the thread variables above
    with quietly():
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
    from pipeline.models import Models

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
        with quietly():
            _MODELS[key] = Models(run.read_run(run_dir), safe_mode=safe_mode)
    return _MODELS[key]


def _samples(path: str | None, eval_path: str | None):
    """Return {"images", "conditions", "eval"} of the run's samples (and evaluation set), cached per process."""
    if path is None:
        return None
    key = tuple((p, Path(p).stat().st_mtime_ns) for p in (path, eval_path) if p)
    if key not in _SAMPLES:
        _SAMPLES.clear()
        samples = run.read_samples(path)
        _SAMPLES[key] = {"images": samples["images"], "conditions": samples["conditions"],
                         "eval": run.read_eval(eval_path) if eval_path else None}
    return _SAMPLES[key]


def render_chunk(job: Job) -> list[dict]:
    """Render a chunk of checkpoints; return one result per checkpoint (see frames.render_checkpoints)."""
    from pipeline.frames import render_checkpoints

    cap_threads(job.threads)
    models = _models(job.run_dir, job.safe_mode, tuple(job.imports))
    samples = _samples(job.samples_path, job.eval_path)
    return render_checkpoints(models, samples, job.tasks, Path(job.out_dir))


def run_jobs(jobs: list[Job], *, n_jobs: int, backend: str = "loky", scheduler: str | None = None):
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
    jobs = [replace(job, threads=None) for job in jobs]  # each worker divides its own cores
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
    jobs = [replace(job, threads=None) for job in jobs]
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
