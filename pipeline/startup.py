"""A render process's start-up and end: Keras started lean and quietly, and an exit without teardown.

Keras 3 and TensorFlow import some optional packages eagerly whenever they are
installed, for features a render never touches: scikit-learn for
`keras.wrappers` (about 1 s on two cores; vaeviz itself depends on
scikit-learn for its metrics), pandas for `fit` on DataFrames and JAX for
TensorFlow Lite's converter (with those two, about 1.5 s; JAX is not hidden
when it is the Keras backend). `import_keras()` hides them while Keras
starts, in processes vaeviz owns: the render and compare CLIs (they set
LEAN) and the workers they start, which inherit it. Keras then treats them as not installed
for its own optional features; vaeviz's analyses import scikit-learn
normally, later, when they run. A render called from the user's own Python
process imports Keras as usual.

At the end, Python's own teardown of a process that imported TensorFlow
(unloading its modules and native objects, and with workers, waiting for each
to do the same) takes about 1 s on two cores, after every output is written
and closed. `run_command` runs a CLI as a process's whole life (`python -m
pipeline.render`, `python -m pipeline.compare`) and ends it without that
when no other thread or worker process is left (an inline render).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import os
import sys

from pipeline.quiet import quietly

__all__ = ["import_keras", "hidden", "run_command", "LEAN", "UNUSED"]

LEAN = "VAEVIZ_LEAN_START"  # "1": this process is vaeviz's own (the render CLI or one of its workers)
UNUSED = ("sklearn", "pandas", "jax")  # what Keras and TensorFlow import at start-up only for features no render uses


class _Hidden(importlib.abc.MetaPathFinder):
    """Makes the named top-level packages (and their submodules) look uninstalled."""

    def __init__(self, names):
        self.names = frozenset(names)

    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r} (hidden while Keras starts)", name=fullname)
        return None


@contextlib.contextmanager
def hidden(names):
    """Make `names` (top-level packages not yet imported) unimportable inside the block."""
    finder = _Hidden(n for n in names if n not in sys.modules)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


def import_keras():
    """Import Keras and the backend KERAS_BACKEND names (once per process), quietly; return the keras module."""
    if "keras" in sys.modules:
        return sys.modules["keras"]
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    names = [n for n in UNUSED if n != backend] if os.environ.get(LEAN) == "1" else []
    with quietly(), hidden(names):  # TensorFlow's start-up lines (absl, CUDA probing) stay off the terminal
        import keras
    return keras


def run_command(command) -> None:
    """Run a click command as `python -m` runs it, then end the process with its exit code, skipping the
    interpreter's teardown (unloading every module) when nothing is left running: every output is written
    and closed by then.

    Only for a process that is the command (a `__main__` block), never one that goes on, such as a test
    calling the command in-process. With another thread or a child process alive (a worker pool), the
    process exits as usual, which shuts them down in order; so it does under a profiler or a tracer
    (`python -m cProfile -o ...`, coverage), which write their results at exit. atexit handlers run
    either way. An exception other than SystemExit propagates as usual.
    """
    import atexit
    import multiprocessing
    import threading

    try:
        command.main()  # standalone: ends in SystemExit with the command's code
        code = 0
    except SystemExit as done:
        code = done.code
    watched = sys.getprofile() is not None or sys.gettrace() is not None  # a profiler, coverage: they write at exit
    if watched or threading.active_count() > 1 or multiprocessing.active_children():
        sys.exit(code)
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)  # what sys.exit("message") prints
        code = 1
    atexit._run_exitfuncs()  # what CPython's exit runs before its teardown; each prints its own error
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)
