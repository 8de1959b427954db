"""Helpers of the benchmarks: interleaved repetitions, summaries, tables, profiles, machine info."""

from __future__ import annotations

import cProfile
import datetime
import io
import os
import platform
import pstats
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUIET_ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def makefile(name: str) -> str:
    """Return the value of `NAME ?= value` (or `NAME = value`) in the Makefile: what `make demo` uses."""
    return re.search(rf"^{name}\s*\??=\s*(.*)$", (REPO / "Makefile").read_text(), re.M).group(1).strip()


def interleaved(names: list[str], rounds: int) -> list[str]:
    """Return `names` forwards, then backwards, `rounds` times: A B C C B A A B C ...

    Each configuration then sees the machine's slow drifts (another job
    starting, a warming cache) from both sides.
    """
    order = []
    for r in range(rounds):
        order += names if r % 2 == 0 else names[::-1]
    return order


def summary(values) -> dict:
    """Return {"min", "median", "max", "n"} of a list of seconds."""
    values = list(values)
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "n": len(values)}


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"


def s(seconds: float) -> str:
    return f"{seconds:.3f} s" if seconds < 10 else f"{seconds:.1f} s"


@dataclass
class Table:
    headers: list[str]
    rows: list[list] = field(default_factory=list)

    def add(self, *row) -> None:
        self.rows.append([str(c) for c in row])

    def text(self) -> str:
        widths = [max(len(str(h)), *(len(r[i]) for r in self.rows)) if self.rows else len(str(h))
                  for i, h in enumerate(self.headers)]
        line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
        return "\n".join([line(self.headers), line("-" * w for w in widths), *(line(r) for r in self.rows)])

    def markdown(self) -> str:
        out = ["| " + " | ".join(self.headers) + " |", "|" + "---|" * len(self.headers)]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in self.rows]
        return "\n".join(out)


@dataclass
class Goal:
    """One figure beside its goal."""

    figure: str
    value: str
    goal: str
    met: bool
    miss: str = ""  # by how much, when missed


@dataclass
class Section:
    title: str
    tables: list[tuple[str, Table]] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    profiles: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0


def timed_run(cmd: list[str], *, cwd=None, cpus=None, env: dict | None = None) -> float:
    """Return the wall time of a subprocess (pinned to `cpus` if given, with `env` added to the environment);
    raise with its stderr if it fails."""
    pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    started = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, env={**QUIET_ENV, **(env or {})}, capture_output=True, text=True,
                            preexec_fn=pin)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"`{' '.join(map(str, cmd))}` exited {result.returncode}:\n{result.stderr[-3000:]}")
    return elapsed


def cpu_probe(processes: int, *, loops: int = 3 * 10**7) -> float:
    """Return the wall time of `processes` concurrent copies of a pure-Python loop.

    T(1) / T(J) is the parallel efficiency the machine itself offers at that
    moment (1.0 on J idle cores): the ceiling of any J-process code then.
    """
    started = time.perf_counter()
    children = [subprocess.Popen([sys.executable, "-c", f"sum(range({loops}))"]) for _ in range(processes)]
    for child in children:
        child.wait()
    return time.perf_counter() - started


# call-through wrappers that would fill a cumulative listing without saying where the time goes
_WRAPPERS = ("<frozen ", "click/", "runpy", "traceback_utils.py", "dispatch.py", "builtins.exec",
             "builtins.__import__", "cProfile", "<string>")


def top_entries(stats: pstats.Stats, *, n: int = 10, key: str = "tottime") -> str:
    """Return the `n` heaviest functions of a profile (own or cumulative time) as a markdown table."""
    rows = []
    for (filename, line, func), (_, calls, own, cumulative, _) in stats.stats.items():
        where = _where(filename, line, func)
        if key == "cumtime" and any(w in where for w in _WRAPPERS):
            continue
        rows.append((own if key == "tottime" else cumulative, own, cumulative, calls, where))
    rows.sort(reverse=True)
    table = Table(["function", "calls", "own time", "cumulative"])
    for _, own, cumulative, calls, where in rows[:n]:
        table.add(f"`{where}`", calls, ms(own) if own < 1 else s(own), ms(cumulative) if cumulative < 1 else s(cumulative))
    return table.markdown()


def _where(filename: str, line: int, func: str) -> str:
    filename = re.sub(r"^.*(site-packages|lib/python3\.\d+)/", "", filename)
    filename = filename.replace(str(REPO) + "/", "")
    return f"{filename}:{line}({func})" if line else func


def profile_call(fn, *args, **kwargs) -> pstats.Stats:
    """Return the cProfile stats of one call of `fn`."""
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        fn(*args, **kwargs)
    finally:
        profiler.disable()
    return pstats.Stats(profiler, stream=io.StringIO())


def profile_command(module_args: list[str], out_path) -> pstats.Stats:
    """Return the cProfile stats of `python -m cProfile -o out -m ...module_args` (a subprocess)."""
    timed_run([sys.executable, "-m", "cProfile", "-o", str(out_path), "-m", *module_args])
    return pstats.Stats(str(out_path), stream=io.StringIO())


def machine() -> dict:
    """Return what the results depend on: CPU, cores, library versions, date."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    import h5py
    import keras
    import numpy
    import tensorflow as tf

    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "logical cpus": os.cpu_count(),
        "memory": _memory(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
        "h5py": h5py.__version__,
        "os": platform.platform(),
        "code": _code_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _code_version() -> str:
    """Return the commit measured, and which files under pipeline/ differ from it."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.rstrip()

    commit = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    changed = [line[3:] for line in git("status", "--porcelain", "--", "pipeline").splitlines()]
    return f"{commit}" + (f" + uncommitted changes to {', '.join(changed)}" if changed else "")


def _memory() -> str:
    try:
        with open("/proc/meminfo") as f:
            kb = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
        return f"{kb / 2**20:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        return "?"


def load_average() -> str:
    try:
        return " / ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "?"
