"""Benchmarks of vaeviz: `make bench`, or `.venv/bin/python bench/run.py [--quick]`.

Prints a table per section and writes bench/RESULTS.md: the machine, the
versions, each figure beside its goal. Every comparison runs its
configurations interleaved (A B B A ...) in one process or one series of
subprocesses, several times; tables show min and median, and ratios are of
the minima (the least disturbed runs on a shared machine).

    1. training-loop overhead of CheckpointForViz and its alternatives
    2. render throughput per checkpoint, against its floor and the original walk
    3. scaling of `python -m pipeline.render --jobs J` over the cores
    4. no-op re-render and `--help` start-up
    5. a render worker's memory over many checkpoints (bench/memory.py)
    6. CheckpointForViz's in-loop cost on the TensorFlow and JAX backends, beside ModelCheckpoint
    7. the demo model end to end: default --jobs, --jobs 1, --jobs 2 and 0.1.0, beside the floor
    8. a 1000-checkpoint run: wall time, GIF sizes, the report's first-view bytes
    9. the metrics' cost per checkpoint; rendering on Keras' JAX backend against TensorFlow
   10. adopting ModelCheckpoint files (pipeline.adopt): seconds per checkpoint, beside Keras' own load
   11. research-size models (64x64 RGB, 64 and 128 latents): render against its floor, 200 and 1,000 checkpoints
   12. the explorer (pipeline.serve) in Chromium: latent and epoch sliders, 10 clients at once (bench/serving.py)
   13. `make demo`'s wall time after install, beside its training alone (bench/demotime.py; retrains checkpoints/demo)

--quick runs tiny sizes (under two minutes) to check that it all works; its
figures mean little and it writes no RESULTS.md unless given --results.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

# FULL times the model `make demo` trains (32x32 shapes, latent 8, 16 filters; Makefile: DEMO_TRAIN)
FULL = {"size": 32, "latent_dim": 8, "filters": 16, "images": 4096, "batch": 64, "epochs": 6, "rounds": 2,
        "s2_rounds": 12, "s2_orig_rounds": 3, "s3_checkpoints": 60, "s3_rounds": 2,
        "s4_checkpoints": 200, "s4_reps": 7, "s5_checkpoints": 200, "s7_rounds": 3, "s7_views_rounds": 2,
        "s8_checkpoints": 1000, "s9_reps": 2, "s10_checkpoints": 20, "s10_rounds": 3,
        "s11_checkpoints": 20, "s11_rounds": 3, "s11_long": 200, "s13_rounds": 3}
QUICK = {"size": 16, "latent_dim": 3, "filters": 4, "images": 256, "batch": 64, "epochs": 3, "rounds": 2,
         "s2_rounds": 3, "s2_orig_rounds": 2, "s3_checkpoints": 40, "s3_rounds": 1,
         "s4_checkpoints": 40, "s4_reps": 3, "s5_checkpoints": 40, "s7_rounds": 1, "s7_views_rounds": 1,
         "s8_checkpoints": 120, "s9_reps": 1, "s10_checkpoints": 3, "s10_rounds": 1,
         "s11_checkpoints": 3, "s11_rounds": 1, "s11_long": 4, "s13_rounds": 0}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: check that the benchmark runs")
    parser.add_argument("--sections", default="1,2,3,4,5,6,7,8,9,10,11,12,13", help="which sections to run, e.g. `2,3`")
    parser.add_argument("--results", type=Path, help="markdown file to write [full: bench/RESULTS.md; quick: none]")
    parser.add_argument("--work", type=Path, help="scratch folder (kept) [default: a temporary folder, removed]")
    args = parser.parse_args(argv)
    p = dict(QUICK if args.quick else FULL)
    sections_wanted = {int(x) for x in args.sections.split(",")}
    results = args.results or (None if args.quick else BENCH / "RESULTS.md")
    work = args.work or Path(tempfile.mkdtemp(prefix="vaeviz-bench-"))
    work.mkdir(parents=True, exist_ok=True)

    import adopting
    import backends
    import demo
    import demotime
    import training
    import rendering
    import research
    import serving
    from util import load_average, machine

    started = time.perf_counter()
    info = machine()
    loads = [("start", load_average())]
    log = lambda msg: print(msg, flush=True)
    log(f"vaeviz benchmarks ({'quick' if args.quick else 'full'}) on {info['cpu']}, {info['cores']} cores; "
        f"scratch {work}")
    sections = []
    try:
        source = None
        if 1 in sections_wanted:
            sections.append(_timed(training.overhead, p, work, log))
            source = sections[-1][1]
            sections[-1] = sections[-1][0]
            loads.append(("after 1", load_average()))
        if {2, 3} & sections_wanted:
            s2_run = work / "s2_run"
            rendering.make_run(s2_run, size=p["size"], latent_dim=p["latent_dim"], filters=p["filters"],
                               checkpoints=len(list((source / "weights").glob("*.h5"))) if source else 6,
                               source=source)
            if 2 in sections_wanted:
                sections.append(_timed(rendering.throughput, p, s2_run, work, log))
                loads.append(("after 2", load_average()))
            if 3 in sections_wanted:
                s3_run = rendering.make_run(work / "s3_run", size=p["size"], latent_dim=p["latent_dim"],
                                            filters=p["filters"], checkpoints=p["s3_checkpoints"], source=s2_run)
                sections.append(_timed(rendering.scaling, p, s3_run, work, log))
                loads.append(("after 3", load_average()))
        if 4 in sections_wanted:
            sections.append(_timed(rendering.startup, p, work, log))
            loads.append(("after 4", load_average()))
        if 5 in sections_wanted:
            sections.append(_timed(rendering.memory_growth, p, work, log))
            loads.append(("after 5", load_average()))
        if 6 in sections_wanted:
            sections.append(_timed(backends.section, p, log))
            loads.append(("after 6", load_average()))
        for number, fn in ((7, demo.end_to_end), (8, demo.long_run), (9, demo.analyses_and_backends),
                           (10, adopting.adopt_files), (11, research.research_scale),
                           (12, serving.explore), (13, demotime.demo_time)):
            if number in sections_wanted:
                sections.append(_timed(fn, p, work, log))
                loads.append((f"after {number}", load_average()))
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    total = time.perf_counter() - started

    for section in sections:
        print(f"\n== {section.title} ({section.seconds:.0f} s)")
        for caption, table in section.tables:
            print(f"\n{caption}\n{table.text()}")
        for note in section.notes:
            print(f"\n{note}")
        for goal in section.goals:
            print(f"goal: {goal.figure}: {goal.value} (goal {goal.goal}) -> {'met' if goal.met else 'MISSED ' + goal.miss}")
    print(f"\ntotal {total:.0f} s")
    if results:
        results.write_text(report(sections, info, p, loads, total, quick=args.quick))
        print(f"wrote {results}")
    return 0


def _timed(fn, *args):
    """Return fn's section (and extra result) timed; a section that fails is reported, not fatal."""
    from util import Goal, Section

    started = time.perf_counter()
    try:
        out = fn(*args)
    except Exception as err:  # e.g. the renderer is mid-change: the other sections still run
        title = {"overhead": "1. Training-loop overhead", "throughput": "2. Render throughput",
                 "scaling": "3. Scaling over cores", "startup": "4. Incremental re-render and start-up",
                 "memory_growth": "5. Render worker memory", "section": "6. In-loop cost per backend",
                 "end_to_end": "7. The demo model end to end", "long_run": "8. A long run",
                 "analyses_and_backends": "9. The analyses' cost, and rendering on Keras' JAX backend",
                 "adopt_files": "10. Adopting ModelCheckpoint files",
                 "research_scale": "11. Research-size models", "explore": "12. The explorer",
                 "demo_time": "13. make demo's wall time"}
        section = Section(f"{title.get(fn.__name__, fn.__name__)} (failed)")
        section.notes.append(f"This section failed: {type(err).__name__}: {str(err)[-1500:]}")
        section.goals.append(Goal(section.title, "n/a", "runs", False, "failed"))
        print(section.notes[-1], flush=True)
        out = (section, None) if fn.__name__ == "overhead" else section
    section = out[0] if isinstance(out, tuple) else out
    section.seconds = time.perf_counter() - started
    return out


def report(sections, info, p, loads, total, *, quick) -> str:
    """Return RESULTS.md: machine, goals, then each section's tables, notes and profiles."""
    from util import Table

    lines = ["# vaeviz benchmark results", "",
             f"Written by `bench/run.py{' --quick' if quick else ''}` (`make bench`) on {info['date']}, "
             f"in {total / 60:.1f} min. Re-run it to refresh this file; the prose beside the figures is "
             f"generated from them.", "",
             "## Machine", ""]
    machine = Table(["", ""])
    for key in ("cpu", "cores", "logical cpus", "memory", "os", "code", "python", "tensorflow", "keras", "numpy", "h5py"):
        machine.add(key, info[key])
    machine.add("load average (1/5/15 min)", "; ".join(f"{when}: {value}" for when, value in loads))
    lines += [machine.markdown(), "",
              "The machine is shared: another engineer's test runs overlapped this benchmark, so single "
              "timings are noisy (the load averages above show how busy it was). Each comparison therefore "
              "interleaves its configurations (A B B A ...), repeats them, and compares minima; medians "
              "show the spread.", ""]
    if quick:
        lines += ["**Quick mode**: tiny sizes to check that the benchmark works; the figures are not "
                  "the project's.", ""]
    lines += ["## Goals", ""]
    goals = Table(["section", "figure", "value", "goal", "met"])
    for section in sections:
        for g in section.goals:
            goals.add(section.title.split(".")[0], g.figure, g.value, g.goal,
                      "yes" if g.met else f"**no** ({g.miss})")
    lines += [goals.markdown(), ""]
    for section in sections:
        lines += [f"## {section.title}", "", f"_{section.seconds:.0f} s._", ""]
        for caption, table in section.tables:
            lines += [caption + ":", "", table.markdown(), ""]
        lines += [note + "\n" for note in section.notes]
        for caption, text in section.profiles:
            lines += [f"{caption}:", "", text, ""]
    lines += ["## Settings", "", "```", *(f"{k} = {v}" for k, v in p.items()), "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
