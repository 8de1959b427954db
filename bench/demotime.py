"""Section 13 of the benchmarks: `make demo`'s wall time after install, beside its floor, training alone.

`make demo` runs in this checkout, as a user runs it: `checkpoints/demo` is removed first, so it trains again
while the follower renders and the explorer waits; `outputs/demo` is rewritten (the same bytes: training and
drawing are deterministic). The figure is the `make demo took N s` line it prints. Its floor is the same
`pipeline.train` command alone (Makefile: DEMO_TRAIN), timed from the command's start as the demo is: the demo
cannot end before its training does. Both run interleaved, and each one's CPU time (its children's user + system)
says what the render's processes add to training's.
"""

from __future__ import annotations

import re
import resource
import shutil
import subprocess
import time
from pathlib import Path

from util import QUIET_ENV, REPO, Goal, Section, Table, interleaved, makefile, s, summary

GOAL_S = 120.0  # issue 19: a fresh clone's make demo, after install, on this two-core machine


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(cmd: list[str], *, cwd: Path) -> tuple[float, float, str]:
    """Return (wall seconds, CPU seconds of it and its children, its output) of a command that must succeed."""
    cpu, started = _children_cpu(), time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, env=QUIET_ENV, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` exited {result.returncode}:\n{(result.stdout + result.stderr)[-3000:]}")
    return wall, _children_cpu() - cpu, result.stdout + result.stderr


def _demo() -> tuple[float, float]:
    """Return (the N of `make demo took N s`, CPU seconds) of one `make demo` that trains anew."""
    shutil.rmtree(REPO / "checkpoints" / "demo", ignore_errors=True)
    _, cpu, out = _timed(["make", "demo"], cwd=REPO)
    return float(re.search(r"make demo took (\d+) s", out).group(1)), cpu


def _train_alone(work: Path) -> tuple[float, float]:
    """Return (wall, CPU seconds) of make demo's training command alone, into a scratch run directory."""
    run_dir = work / "s13_train_alone"
    shutil.rmtree(run_dir, ignore_errors=True)
    cmd = [str(REPO / ".venv" / "bin" / "python"), "-m", "pipeline.train", *makefile("DEMO_TRAIN").split(),
           "--run", str(run_dir), "--epochs", makefile("DEMO_EPOCHS"), "--beta", makefile("DEMO_BETA")]
    wall, cpu, _ = _timed(cmd, cwd=REPO)
    return wall, cpu


def demo_time(p: dict, work: Path, log) -> Section:
    section = Section("13. make demo's wall time after install, beside training alone")
    if not p["s13_rounds"]:
        section.notes.append("Not run with --quick: each round trains make demo's model twice (about 3.5 min).")
        return section
    runs = {"make demo": [], "training alone (floor)": []}
    for config in interleaved(list(runs), p["s13_rounds"]):
        runs[config].append(_demo() if config == "make demo" else _train_alone(work))
        log(f"13: {config}: {s(runs[config][-1][0])}, {runs[config][-1][1]:.0f} CPU-s")
    table = Table(["", "runs", "min", "median", "max", "CPU-s (median)"])
    for config, values in runs.items():
        st = summary(wall for wall, _ in values)
        table.add(config, st["n"], s(st["min"]), s(st["median"]), s(st["max"]),
                  f"{summary(cpu for _, cpu in values)['median']:.0f}")
    demo, floor = (summary(wall for wall, _ in runs[c]) for c in runs)
    section.tables.append((f"`make demo` (`DEMO_TRAIN = {makefile('DEMO_TRAIN')}`, 20 epochs, nine views), its "
                           f"own `make demo took N s`, interleaved with its training command alone", table))
    section.notes.append(f"make demo / training alone, medians: {demo['median'] / floor['median']:.2f} "
                         f"({demo['median'] - floor['median']:.0f} s: the follower's and the explorer's share of "
                         f"the two cores during training, then the follower's last pass, which sorts the walk by "
                         f"the final KL and draws the clusters, and the two screenshots).")
    section.goals.append(Goal(f"make demo took N s (median of {demo['n']}, spread {demo['min']:.0f}-"
                              f"{demo['max']:.0f} s; training alone {floor['median']:.0f} s)",
                              f"{demo['median']:.0f} s", f"<= {GOAL_S:.0f} s", demo["median"] <= GOAL_S,
                              "" if demo["median"] <= GOAL_S else f"{demo['median'] - GOAL_S:.0f} s over"))
    return section
