"""Sections 2-4: render throughput per checkpoint, scaling over cores, no-op re-render and start-up."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from pipeline import run
from util import Goal, Section, Table, cpu_probe, interleaved, ms, profile_call, profile_command, s, summary, timed_run, \
    top_entries

RENDER = [sys.executable, "-m", "pipeline.render"]


def make_run(folder: Path, *, size: int, latent_dim: int, filters: int, checkpoints: int,
             source: Path | None = None) -> Path:
    """Return a run directory with `checkpoints` epochs, all holding the same weights.

    The architecture, samples and weights come from `source` (a run written by
    CheckpointForViz) or, without one, from a one-epoch fit on 256 `shapes`.
    """
    shutil.rmtree(folder, ignore_errors=True)
    if source is None:
        import keras

        from pipeline.callback import CheckpointForViz
        from pipeline.data import shapes
        from pipeline.model import ImageVAE

        x, _ = shapes(256, size=size)
        keras.utils.set_random_seed(0)
        model = ImageVAE(image_size=size, latent_dim=latent_dim, filters=filters)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        model.fit(x, epochs=1, batch_size=64, verbose=0, callbacks=[CheckpointForViz(folder, x)])
    else:
        folder.mkdir(parents=True)
        for name in (run.RUN_JSON, run.SAMPLES_H5, run.EVAL_H5, run.HISTORY_CSV):
            if (source / name).exists():
                shutil.copy2(source / name, folder / name)
    weights = run.read_weights(run.list_checkpoints(source or folder)[-1].path)
    for epoch in range(1, checkpoints + 1):
        path = folder / run.WEIGHTS_DIR / run.checkpoint_name(epoch)
        if not path.exists():
            run.write_weights(path, weights, epoch=epoch)
    return folder


# --- 2. throughput per checkpoint ---------------------------------------------

STAGES = ["load", "encode", "decode (recon + walk, one call)", "grid", "PNG encode + write"]


def throughput(p: dict, run_dir: Path, work: Path, log) -> Section:
    from pipeline import grid, writers
    from pipeline.models import Models
    from pipeline.views.walk import walk_codes

    section = Section("2. Render throughput per checkpoint (jobs=1, in-process)")
    info = run.read_run(run_dir)
    samples = run.read_samples(run_dir / run.SAMPLES_H5)["images"]
    models = Models(info)
    checkpoints = run.list_checkpoints(run_dir)
    codes = walk_codes(models.latent_dim, steps=10)
    out = work / "s2_frames"
    value_range = info["value_range"]

    def picture(images, cols):
        return grid.tile(grid.to_uint8(grid.pick_channels(images), value_range=value_range), cols=cols, pad=2)

    def pipeline(ckpt, times):
        marks = [time.perf_counter()]
        models.load(ckpt.path)
        marks.append(time.perf_counter())
        z_mean, _ = models.encode(samples)
        marks.append(time.perf_counter())
        decoded = models.decode(np.concatenate([z_mean, codes]))  # as frames.draw_checkpoint: one call
        recon, walk = decoded[:len(z_mean)], decoded[len(z_mean):]
        marks.append(time.perf_counter())
        grids = {"recon": picture(recon, grid.square_cols(len(recon))), "walk": picture(walk, 10)}
        marks.append(time.perf_counter())
        for view, g in grids.items():
            writers.write_png(out / view / f"epoch_{ckpt.epoch:04d}.png", g)
        marks.append(time.perf_counter())
        for stage, a, b in zip(STAGES, marks, marks[1:]):
            times[stage].append(b - a)
        times["total"].append(marks[-1] - marks[0])

    def floor(ckpt, times):
        started = time.perf_counter()
        models.load(ckpt.path)
        z_mean, _ = models.encode(samples)
        models.decode(z_mean)
        times["floor"].append(time.perf_counter() - started)

    def compute(ckpt, times):  # every image the two views need, decoded in one call
        started = time.perf_counter()
        models.load(ckpt.path)
        z_mean, _ = models.encode(samples)
        models.decode(np.concatenate([z_mean, codes]))
        times["compute"].append(time.perf_counter() - started)

    times = {k: [] for k in [*STAGES, "total", "floor", "compute"]}
    variants = {"pipeline": pipeline, "floor": floor, "compute": compute}
    for fn in variants.values():  # first calls build Keras' call graphs: not timed
        fn(checkpoints[0], {k: [] for k in times})
    for i, variant in enumerate(interleaved(list(variants), p["s2_rounds"])):
        variants[variant](checkpoints[i // 3 % len(checkpoints)], times)

    total, base = summary(times["total"]), summary(times["floor"])
    table = Table(["stage", "min", "median", "share of median total"])
    for stage in STAGES:
        st = summary(times[stage])
        table.add(stage, ms(st["min"]), ms(st["median"]), f"{100 * st['median'] / total['median']:.0f} %")
    table.add("**total per checkpoint**", ms(total["min"]), ms(total["median"]), "100 %")
    table.add("floor: load + 1 encode batch + 1 decode batch", ms(base["min"]), ms(base["median"]),
              f"{100 * base['median'] / total['median']:.0f} %")
    both = summary(times["compute"])
    table.add(f"load + encode + 1 decode batch of recon and walk ({len(samples) + len(codes)} codes)",
              ms(both["min"]), ms(both["median"]), f"{100 * both['median'] / total['median']:.0f} %")
    ratio = total["min"] / base["min"]
    table.add("**total / floor** (ratio of minima; of medians)", f"{ratio:.2f}",
              f"{total['median'] / base['median']:.2f}", "")
    table.add("total / (load + encode + 1 decode of both views)", f"{total['min'] / both['min']:.2f}",
              f"{total['median'] / both['median']:.2f}", "")
    section.tables.append((f"Stages as a worker runs them, per checkpoint: {len(samples)} samples of "
                           f"{'x'.join(map(str, info['input_shape']))}, walk {models.latent_dim} x 10; "
                           f"{total['n']} checkpoints each, the three variants interleaved", table))
    section.goals.append(Goal("render per checkpoint / floor (ratio of minima)", f"{ratio:.2f}", "<= 1.5",
                              ratio <= 1.5, "" if ratio <= 1.5 else f"{ratio / 1.5:.2f}x over"))
    if ratio > 1.5:
        decode_share = summary(times["decode (recon + walk, one call)"])["min"] / total["min"]
        rest = sum(summary(times[k])["min"] for k in ("grid", "PNG encode + write")) / total["min"]
        section.notes.append(
            f"What bounds it: the floor decodes {len(samples)} codes; a checkpoint decodes "
            f"{len(samples) + len(codes)} (the recon's and the {len(codes)}-image walk's, in one call, "
            f"{100 * decode_share:.0f} % of the total), so the decoder's arithmetic alone puts it above the "
            f"floor; grid + PNG encoding add {100 * rest:.0f} %. Against the work both views must do (last "
            f"row) the pipeline is {total['min'] / both['min']:.2f}x.")

    # the whole render() in this process: planning, manifest and GIFs included
    try:
        from pipeline.render import render
        from pipeline.settings import Execution, RenderSettings, Selection

        whole = []
        settings = RenderSettings(out_dir=work / "s2_render", selection=Selection(force=True),
                                  execution=Execution(jobs=1))
        for _ in range(2):
            started = time.perf_counter()
            render(run_dir, settings)
            whole.append((time.perf_counter() - started) / len(checkpoints))
        section.notes.append(f"`pipeline.render.render(jobs=1, force=True)` in this process, all views it "
                             f"renders by default plus manifest and GIFs: {ms(min(whole))} per checkpoint "
                             f"(min of 2 runs over {len(checkpoints)} checkpoints), "
                             f"{min(whole) / base['min']:.2f}x the floor.")
    except Exception as err:  # the renderer is changing under us: report, do not stop the benchmark
        section.notes.append(f"`pipeline.render.render(jobs=1)` in-process failed: {type(err).__name__}: {err}")

    # a walk frame: one batched call against one predict per cell (the original callback)
    def batched():
        writers.write_png(out / "walk_batched.png", picture(models.decode(codes), 10))

    def per_cell():
        images = np.concatenate([models.decoder.predict(c[None], verbose=0) for c in codes])
        writers.write_png(out / "walk_per_cell.png", picture(images, 10))

    per_cell()  # predict's first call builds its function: not timed
    walk = {"batched": [], "per cell": []}
    for variant in interleaved(["batched", "per cell"], p["s2_orig_rounds"]):
        started = time.perf_counter()
        (batched if variant == "batched" else per_cell)()
        walk[variant].append(time.perf_counter() - started)
    a, b = summary(walk["batched"]), summary(walk["per cell"])
    speedup = b["min"] / a["min"]
    table = Table(["walk frame (decode + grid + PNG)", "runs", "min", "median"])
    table.add("vaeviz: one batched decoder call", a["n"], ms(a["min"]), ms(a["median"]))
    table.add(f"original: one `predict` per cell ({len(codes)} calls)", b["n"], s(b["min"]), s(b["median"]))
    table.add("**speed-up** (ratio of minima; of medians)", "", f"{speedup:.0f}x", f"{b['median'] / a['median']:.0f}x")
    section.tables.append((f"Per walk frame, latent_dim {models.latent_dim} x 10 steps, interleaved", table))
    section.goals.append(Goal("walk frame speed-up over one predict per cell", f"{speedup:.0f}x", ">= 20x",
                              speedup >= 20, "" if speedup >= 20 else f"{20 / speedup:.1f}x short"))

    if ratio > 1.5:
        log("  profiling the per-checkpoint stages (a goal was missed)")
        stats = profile_call(lambda: [pipeline(c, {k: [] for k in times}) for c in checkpoints * 2])
        section.profiles.append((f"cProfile of the stages over {2 * len(checkpoints)} checkpoints, by own time",
                                 top_entries(stats, n=12, key="tottime")))
    return section


# --- 3. scaling over cores ---------------------------------------------------------


def scaling(p: dict, run_dir: Path, work: Path, log) -> Section:
    section = Section("3. Scaling over cores (`python -m pipeline.render RUN --jobs J --force --quiet`)")
    cpus = sorted(os.sched_getaffinity(0))
    cores = len(cpus)
    n = len(run.list_checkpoints(run_dir))
    out = work / "s3_out"

    def command(j, *extra):
        return [*RENDER, str(run_dir), "--jobs", str(j), "--force", "--quiet", "--out", str(out), *extra]

    timed_run(command(cores))  # warms the page cache and the .pyc files: not timed
    js = list(range(1, cores + 1))
    wall = {j: [] for j in js}
    start = {j: [] for j in js}
    one_core = []  # --jobs 1 pinned to one core: one TensorFlow thread, the serial baseline
    probe = {j: [] for j in js}  # what the machine itself offers meanwhile
    labels = [f"{j}" for j in js] + ["1, one core"] + [f"start {j}" for j in js] + [f"probe {j}" for j in js]
    for label in interleaved(labels, p["s3_rounds"]):
        j = int(label.split()[-1]) if label[0].isalpha() else int(label.split(",")[0])
        if label.startswith("probe"):
            probe[j].append(cpu_probe(j))
            took = probe[j][-1]
        elif label.startswith("start"):  # j checkpoints, one per worker: start-up and one frame each
            start[j].append(timed_run(command(j, "--epochs", f"1-{j}")))
            took = start[j][-1]
        elif "core" in label:
            one_core.append(timed_run(command(1), cpus={cpus[0]}))
            took = one_core[-1]
        else:
            wall[j].append(timed_run(command(j)))
            took = wall[j][-1]
        log(f"  --jobs {label}: {took:.2f} s")

    t1, serial = min(wall[1]), min(one_core)
    per1 = (t1 - min(start[1])) / (n - 1)
    table = Table(["jobs", "wall min", "wall median", "checkpoints/s", "efficiency vs --jobs 1",
                   "efficiency vs one core", "start-up (J checkpoints)", "per checkpoint after start-up",
                   "efficiency after start-up"])
    table.add("1, pinned to one core", s(serial), s(summary(one_core)["median"]), f"{n / serial:.1f}", "",
              "100 %", "", "", "")
    efficiencies = {}
    for j in js:
        tj, sj = min(wall[j]), min(start[j])
        perj = (tj - sj) / (n - j)
        efficiencies[j] = t1 / (j * tj)
        table.add(j, s(tj), s(summary(wall[j])["median"]), f"{n / tj:.1f}", f"{100 * efficiencies[j]:.0f} %",
                  f"{100 * serial / (j * tj):.0f} %", s(sj), ms(perj), f"{100 * per1 / (j * perj):.0f} %")
    section.tables.append((
        f"{n} checkpoints of the model of section 2, the same weights under every epoch name; "
        f"{p['s3_rounds']} interleaved rounds; times are minima. Efficiency vs --jobs 1 = T(1) / (J x T(J)), "
        f"where --jobs 1 already gives TensorFlow all {cores} cores as threads; efficiency vs one core = "
        f"T(--jobs 1 pinned to one core) / (J x T(J)), the classic definition. Start-up: a render of J "
        f"checkpoints with --jobs J (processes, TensorFlow imports and model builds, one frame each); "
        f"after start-up: (T(J) - start-up) / (checkpoints - J)", table))
    worst = min(efficiencies[j] for j in js if j > 1) if cores > 1 else 1.0
    worst_core = min(serial / (j * min(wall[j])) for j in js if j > 1) if cores > 1 else 1.0
    section.goals.append(Goal(f"parallel efficiency vs --jobs 1, worst of J = 2..{cores}", f"{100 * worst:.0f} %",
                              ">= 80 %", worst >= 0.8, "" if worst >= 0.8 else f"{100 * (0.8 - worst):.0f} points short"))
    section.goals.append(Goal(f"parallel efficiency vs one core, worst of J = 2..{cores}",
                              f"{100 * worst_core:.0f} %", ">= 80 %", worst_core >= 0.8,
                              "" if worst_core >= 0.8 else f"{100 * (0.8 - worst_core):.0f} points short"))
    if cores > 1:
        offered = {j: min(probe[1]) / min(probe[j]) for j in js}
        section.notes.append(
            f"What the machine offered: J concurrent copies of a pure-Python loop, interleaved with the "
            f"renders, ran at {', '.join(f'{100 * offered[j]:.0f} % (J = {j})' for j in js[1:])} of the speed "
            f"of one copy (medians {', '.join(s(summary(probe[j])['median']) for j in js)}). "
            + ("That is the ceiling of any J-process program here: the other cores were busy with other "
               "work, so this run cannot tell how the renderer scales on idle cores."
               if min(offered[j] for j in js[1:]) < 0.9 else
               "The cores were free enough for the efficiency figures to be the renderer's own."))
        extra = min(start[cores]) - min(start[1])
        section.notes.append(
            f"Start-up: {s(min(start[1]))} for --jobs 1 and {s(min(start[cores]))} for --jobs {cores}, "
            f"i.e. {s(extra)} more, paid once per render; with {n} checkpoints it alone costs "
            f"{100 * extra / min(wall[cores]):.0f} % of the --jobs {cores} wall time. After start-up a "
            f"checkpoint takes {ms(per1)} with --jobs 1 ({cores} TensorFlow threads) and "
            f"{ms((min(wall[cores]) - min(start[cores])) / (n - cores))} of wall time with --jobs {cores} "
            f"(1 thread each).")
        # with these start-ups and per-checkpoint times, how many checkpoints would reach 80 %?
        s1, sj = min(start[1]), min(start[cores])
        p1, pj = per1, (min(wall[cores]) - sj) / (n - cores)
        denominator = p1 - 0.8 * cores * pj
        section.notes.append(
            f"Model of the wall time: T(J) = start-up(J) + checkpoints x per-checkpoint(J). With the figures "
            f"above, --jobs {cores} reaches 80 % efficiency against --jobs 1 "
            + (f"from about {max(0.0, (0.8 * cores * sj - s1) / denominator):.0f} checkpoints on."
               if denominator > 0 else
               "at no number of checkpoints: its per-checkpoint part does not scale enough on its own."))
    if worst < 0.8 or worst_core < 0.8:
        log("  profiling --jobs 1 and --jobs N renders (a goal was missed)")
        for j in sorted({1, cores}):
            stats = profile_command(["pipeline.render", str(run_dir), "--jobs", str(j), "--force", "--quiet",
                                     "--out", str(out)], work / "s3.prof")
            parent = _cumulative(stats, "render_chunk") if j > 1 else 0.0
            if parent > 0.5:
                section.notes.append(
                    f"In the --jobs {j} profile below the parent process itself renders for {s(parent)} "
                    f"(`render_chunk`; TensorFlow's import alone {s(_cumulative(stats, '<module>', 'tensorflow/__init__.py'))}) "
                    f"before its workers start and import TensorFlow and build the model again: that serial "
                    f"start-up is what --jobs > 1 adds before any parallel work.")
            section.profiles.append((f"cProfile of the --jobs {j} render's main process "
                                     f"({'all the work' if j == 1 else 'its workers are not profiled; waiting on them shows as sleep'}), "
                                     f"by cumulative time", top_entries(stats, n=14, key="cumtime")))
    return section


def _cumulative(stats, func: str, file_end: str = "") -> float:
    """Return the cumulative seconds of the function named `func` (in a file ending `file_end`) in a profile."""
    return max((v[3] for (file, _, name), v in stats.stats.items() if name == func and file.endswith(file_end)),
               default=0.0)


# --- 4. no-op re-render and start-up --------------------------------------------------


def startup(p: dict, work: Path, log) -> Section:
    section = Section("4. Incremental re-render and start-up")
    run_dir = make_run(work / "s4_run", size=16, latent_dim=3, filters=4, checkpoints=p["s4_checkpoints"])
    out = work / "s4_out"
    n = p["s4_checkpoints"]
    command = [*RENDER, str(run_dir), "--quiet", "--out", str(out)]
    first = timed_run(command)
    before = _stamps(out)
    commands = {"no-op re-render": command, "--help": [*RENDER, "--help"],
                "python -c pass (reference)": [sys.executable, "-c", "pass"],
                "python -c 'import numpy' (reference)": [sys.executable, "-c", "import numpy"]}
    times = {k: [] for k in commands}
    for name in interleaved(list(commands), p["s4_reps"]):
        times[name].append(timed_run(commands[name]))
    after = _stamps(out)
    rewritten = sorted(k for k in set(before) | set(after) if before.get(k, (0,))[0] != after.get(k, (0,))[0])
    changed = [k for k in rewritten if before.get(k, (0, 0))[1] != after.get(k, (0, 0))[1]]
    table = Table(["command", "runs", "min", "median"])
    table.add(f"first render of {n} checkpoints (all cores; not a goal)", 1, s(first), "")
    for name, values in times.items():
        st = summary(values)
        table.add(name, st["n"], s(st["min"]), s(st["median"]))
    section.tables.append((f"Subprocess wall times; a tiny run (16x16x1, latent_dim 3) of {n} checkpoints; "
                           f"interleaved", table))
    if rewritten:
        section.notes.append(f"The no-op re-renders rewrote {', '.join(f'`{k}`' for k in rewritten)} "
                             f"({'content changed: ' + ', '.join(f'`{k}`' for k in changed) if changed else 'same bytes'}); "
                             f"a re-run with nothing to do should write nothing.")
    noop, help_ = min(times["no-op re-render"]), min(times["--help"])
    section.goals.append(Goal(f"no-op re-render of {n} checkpoints", s(noop), "< 1 s", noop < 1,
                              "" if noop < 1 else f"{noop - 1:.2f} s over"))
    section.goals.append(Goal("`python -m pipeline.render --help`", s(help_), "< 0.5 s", help_ < 0.5,
                              "" if help_ < 0.5 else f"{help_ - 0.5:.2f} s over"))
    for name, args, ok in (("no-op re-render", command[1:], noop < 1), ("--help", [*RENDER[1:], "--help"], help_ < 0.5)):
        if not ok:
            stats = profile_command(args[1:], work / "s4.prof")
            section.profiles.append((f"cProfile of the {name}, by cumulative time",
                                     top_entries(stats, n=14, key="cumtime")))
            section.profiles.append((f"Slowest imports of the {name} (`python -X importtime`)",
                                     _import_times(args)))
    return section


def _stamps(folder: Path) -> dict:
    """Return {relative path: (mtime_ns, sha256)} of the files under `folder`."""
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in folder.rglob("*") if p.is_file()}


def _import_times(args: list[str], n: int = 10) -> str:
    """Return the `n` slowest imports (cumulative) of `python -X importtime ARGS` as a table."""
    result = subprocess.run([sys.executable, "-X", "importtime", *args], capture_output=True, text=True)
    rows = []
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            parts = [x.strip() for x in line[len("import time:"):].split("|")]
            if parts[1].isdigit():
                rows.append((int(parts[1]), int(parts[0]), parts[2]))
    rows.sort(reverse=True)
    table = Table(["module", "cumulative", "self"])
    for cum, own, name in rows[:n]:
        table.add(f"`{name.strip()}`", ms(cum / 1e6), ms(own / 1e6))
    return table.markdown()


# --- 5. a worker's memory over many checkpoints (bench/memory.py) ----------------------


def memory_growth(p: dict, work: Path, log) -> Section:
    import memory

    section = Section("5. Render worker memory over many checkpoints (bench/memory.py)")
    m = memory.measure(p["s5_checkpoints"])
    rss, n = m["rss_kib"], m["n"]
    marks = (1, 10, n // 2, n)
    table = Table(["worker RSS after checkpoint", *(str(i) for i in marks)])
    table.add("MiB", *(f"{rss[i - 1] / 1024:.1f}" for i in marks))
    section.tables.append((f"`execute.render_chunk` in this process, one checkpoint per call, {n} checkpoints "
                           f"of a 32x32 ImageVAE, {s(m['seconds'])}", table))
    goal = memory.GOAL_KIB_PER_CHECKPOINT
    slope = m["slope_kib"]
    section.goals.append(Goal("worker RSS growth per checkpoint over the second half (least squares)",
                              f"{slope:+.2f} KiB", f"<= {goal:g} KiB", abs(slope) <= goal,
                              "" if abs(slope) <= goal else f"{abs(slope) / goal:.1f}x the goal"))
    return section
