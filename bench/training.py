"""Section 1: what each callback adds to an epoch of the reference ImageVAE."""

from __future__ import annotations

import cProfile
import io
import pstats
import shutil
import statistics
import threading
import time
from pathlib import Path

import keras
import numpy as np

from inloop import InLoopViz
from pipeline import run
from pipeline.callback import CheckpointForViz
from pipeline.data import shapes
from pipeline.model import ImageVAE
from util import Goal, Section, Table, interleaved, ms, s, summary, top_entries

CONFIGS = ["no callback", "ModelCheckpoint", "CheckpointForViz", "CheckpointForViz(background=False)", "in-loop viz"]
BASE, OURS, SYNC, KERAS, INLOOP = CONFIGS[0], CONFIGS[2], CONFIGS[3], CONFIGS[1], CONFIGS[4]


class EpochClock(keras.callbacks.Callback):
    """Record each epoch's wall time with every callback's epoch-end work in it.

    An epoch runs from this callback's `on_epoch_begin` (put it first) to the
    next one's, the last epoch to the end of `tail()`'s `on_train_end` (put
    it last), so all the other callbacks' hooks fall inside.
    """

    def __init__(self):
        super().__init__()
        self.marks = []

    def on_train_begin(self, logs=None):
        self.marks = []

    def on_epoch_begin(self, epoch, logs=None):
        self.marks.append(time.perf_counter())

    def tail(self):
        clock = self

        class Tail(keras.callbacks.Callback):
            def on_train_end(self, logs=None):
                clock.marks.append(time.perf_counter())

        return Tail()

    def epochs(self) -> list[float]:
        return list(np.diff(self.marks))


def profile_hooks(callback, profiler, names=("on_epoch_end", "on_train_end")):
    """Return `callback` with `profiler` enabled inside its hooks only."""
    for name in names:
        hook = getattr(callback, name)

        def profiled(*args, _hook=hook, **kwargs):
            profiler.enable()
            try:
                return _hook(*args, **kwargs)
            finally:
                profiler.disable()

        setattr(callback, name, profiled)
    return callback


def time_hooks(callback, names=("on_epoch_end", "on_train_end")):
    """Return `callback` with its hooks timed into `callback.hook_seconds[name]`."""
    callback.hook_seconds = {name: [] for name in names}
    for name in names:
        hook = getattr(callback, name)

        def timed(*args, _hook=hook, _name=name, **kwargs):
            started = time.perf_counter()
            try:
                return _hook(*args, **kwargs)
            finally:
                callback.hook_seconds[_name].append(time.perf_counter() - started)

        setattr(callback, name, timed)
    return callback


class WriteMeter:
    """Time the run-directory writes CheckpointForViz makes, in whichever thread makes them."""

    def __init__(self):
        self.calls = []  # (thread name, wall seconds, that thread's CPU seconds)

    def __enter__(self):
        self._saved = {name: getattr(run, name) for name in ("write_weights", "add_history")}
        for name, fn in self._saved.items():
            setattr(run, name, self._wrap(fn))
        return self

    def __exit__(self, *exc):
        for name, fn in self._saved.items():
            setattr(run, name, fn)

    def _wrap(self, fn):
        def measured(*args, **kwargs):
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.calls.append((threading.current_thread().name, time.perf_counter() - wall,
                                   time.thread_time() - cpu))
        return measured


def make_callback(config: str, folder: Path, x, latent_dim: int):
    if config == BASE:
        return None
    if config == KERAS:
        return keras.callbacks.ModelCheckpoint(str(folder / "e{epoch:04d}.weights.h5"), save_weights_only=True)
    if config == OURS:
        return CheckpointForViz(folder, x)
    if config == SYNC:
        return CheckpointForViz(folder, x, background=False)
    return InLoopViz(folder, x[:64], latent_dim=latent_dim)


def overhead(p: dict, work: Path, log) -> tuple[Section, Path]:
    """Return the section and a run directory CheckpointForViz wrote (for section 2)."""
    section = Section("1. Training-loop overhead")
    x, _ = shapes(p["images"], size=p["size"])
    keras.utils.set_random_seed(0)
    model = ImageVAE(image_size=p["size"], latent_dim=p["latent_dim"], filters=p["filters"])
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model(x[:1])  # builds the subclassed model, which ModelCheckpoint needs
    model.fit(x, epochs=1, batch_size=p["batch"], verbose=0)  # trace once; no fit below pays for it

    epochs = {c: [] for c in CONFIGS}
    hooks = {c: {"on_epoch_end": [], "on_train_end": []} for c in CONFIGS}
    writes = {c: [] for c in CONFIGS}
    order = interleaved(CONFIGS, p["rounds"])
    keep = None
    for i, config in enumerate(order):
        folder = work / f"s1_{i:02d}"
        shutil.rmtree(folder, ignore_errors=True)
        callback = make_callback(config, folder, x, p["latent_dim"])
        clock = EpochClock()
        callbacks = [clock] + ([time_hooks(callback)] if callback else []) + [clock.tail()]
        with WriteMeter() as meter:
            model.fit(x, epochs=p["epochs"], batch_size=p["batch"], verbose=0, callbacks=callbacks)
        writes[config].append((p["epochs"], meter.calls))
        epochs[config] += clock.epochs()[1:]  # the first epoch warms caches: dropped
        if callback is not None:
            for name in hooks[config]:
                hooks[config][name] += callback.hook_seconds[name]
        if config == OURS:
            keep = folder  # section 2 renders its checkpoints
        else:
            shutil.rmtree(folder, ignore_errors=True)
        log(f"  {config}: epochs {' '.join(f'{t:.2f}' for t in clock.epochs())} s")

    base = summary(epochs[BASE])
    table = Table(["configuration", "epochs timed", "min / epoch", "median / epoch",
                   "ratio of minima", "ratio of medians"])
    for config in CONFIGS:
        st = summary(epochs[config])
        table.add(config, st["n"], s(st["min"]), s(st["median"]),
                  f"{st['min'] / base['min']:.3f}", f"{st['median'] / base['median']:.3f}")
    section.tables.append((f"Wall time per epoch, callbacks' epoch-end work included "
                           f"({p['images']} images of {p['size']}x{p['size']}, batch {p['batch']}, "
                           f"{p['epochs']} epochs per fit, the first dropped; {p['rounds']} interleaved rounds: "
                           f"{' / '.join(order)})", table))

    hook_table = Table(["callback", "on_epoch_end min", "on_epoch_end median", "on_epoch_end max",
                        "on_train_end median", "share of a median epoch"])
    for config in CONFIGS[1:]:
        st = summary(hooks[config]["on_epoch_end"])
        end = statistics.median(hooks[config]["on_train_end"])
        hook_table.add(config, ms(st["min"]), ms(st["median"]), ms(st["max"]), ms(end),
                       f"{100 * st['median'] / base['median']:.2f} %")
    section.tables.append(("Time spent inside each callback's hooks (in the training thread): "
                           "CheckpointForViz's on_train_end waits for the background writes to finish", hook_table))

    write_table = Table(["callback", "files written per epoch", "written by thread", "wall / epoch",
                         "CPU / epoch (that thread)"])
    write_cpu = {}
    for config in (OURS, SYNC):
        fits = [(calls, n) for n, calls in writes[config]]
        wall = statistics.median(sum(c[1] for c in calls) / n for calls, n in fits)
        write_cpu[config] = statistics.median(sum(c[2] for c in calls) / n for calls, n in fits)
        threads = sorted({c[0] for calls, _ in fits for c in calls})
        write_table.add(config, f"{len(fits[0][0]) / fits[0][1]:.0f}", ", ".join(threads), ms(wall),
                        ms(write_cpu[config]))
    section.tables.append(("CheckpointForViz's file writes (weights .h5 and history.csv, each to a temporary "
                           "name, fsync, rename), medians over fits", write_table))

    ours, mc = summary(epochs[OURS]), summary(epochs[KERAS])
    ratio = ours["min"] / base["min"]
    section.goals.append(Goal("CheckpointForViz epoch / no-callback epoch (ratio of minima)",
                              f"{ratio:.3f}", "<= 1.01", ratio <= 1.01,
                              "" if ratio <= 1.01 else f"{100 * (ratio - 1.01):.1f} points over"))
    ours_hook = statistics.median(hooks[OURS]["on_epoch_end"])
    mc_hook = statistics.median(hooks[KERAS]["on_epoch_end"])
    bound = 1 + (ours_hook + write_cpu[OURS]) / base["median"]
    section.goals.append(Goal("1 + CheckpointForViz's own work per epoch (hook in the training thread + "
                              "writer thread CPU) / median no-callback epoch",
                              f"{bound:.4f}", "<= 1.01", bound <= 1.01,
                              "" if bound <= 1.01 else f"{100 * (bound - 1.01):.2f} points over"))
    cheaper = ours_hook < mc_hook
    section.goals.append(Goal("CheckpointForViz cheaper than ModelCheckpoint (median in-loop hook time; "
                              "epoch minima beside it)",
                              f"{ms(ours_hook)} vs {ms(mc_hook)}; epochs {s(ours['min'])} vs {s(mc['min'])}",
                              "cheaper", cheaper, "" if cheaper else "not cheaper"))
    inloop = summary(epochs[INLOOP])["min"] / base["min"]
    section.notes.append(
        f"The in-loop visualising callback costs {inloop:.2f}x an epoch (ratio of minima): "
        f"{ms(statistics.median(hooks[INLOOP]['on_epoch_end']))} per epoch inside on_epoch_end "
        f"({p['latent_dim'] * 10 + 1} `predict` calls and two PNGs). CheckpointForViz spends "
        f"{ms(ours_hook)} there with the background writer (copying the weights to host memory and "
        f"queueing two writes) and {ms(statistics.median(hooks[SYNC]['on_epoch_end']))} writing "
        f"synchronously; ModelCheckpoint {ms(mc_hook)}.")
    spread = max(summary(epochs[c])["max"] / summary(epochs[c])["min"] for c in CONFIGS)
    section.notes.append(
        f"Noise: the epochs of one configuration vary by up to {spread:.2f}x (slowest / fastest) on this "
        f"shared machine, and their minima by several percent between configurations that do the same "
        f"work, while the effect under test is a few milliseconds in seconds. The ratio of epoch minima "
        f"therefore cannot resolve 1 %; the direct measurements (hook time, writer-thread CPU time) can, "
        f"and the second goal row uses them.")

    if not all(g.met for g in section.goals):
        log("  profiling CheckpointForViz's hooks (a goal was missed)")
        folder = work / "s1_profile"
        shutil.rmtree(folder, ignore_errors=True)
        profiler = cProfile.Profile()
        callback = profile_hooks(CheckpointForViz(folder, x), profiler)
        model.fit(x, epochs=3, batch_size=p["batch"], verbose=0, callbacks=[callback])
        stats = pstats.Stats(profiler, stream=io.StringIO())
        section.profiles.append(("cProfile of CheckpointForViz's hooks in the training thread over a "
                                 "3-epoch fit (on_epoch_end x3 and on_train_end), by cumulative time",
                                 top_entries(stats, n=14, key="cumtime")))
        shutil.rmtree(folder, ignore_errors=True)
    return section, keep

