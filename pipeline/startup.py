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

Before any of that, `require_render()` checks that the render's packages are
installed: `pip install vaeviz` brings only the training callback, so a
render started without `vaeviz[render]` exits 2 saying what to install,
instead of failing on its first import. The vaeviz-* scripts start here.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.util
import os
import sys

from pipeline.quiet import quietly

__all__ = ["import_keras", "hidden", "run_command", "require_render", "missing_render_packages", "LEAN", "UNUSED",
           "INSTALL_RENDER"]

LEAN = "VAEVIZ_LEAN_START"  # "1": this process is vaeviz's own (the render CLI or one of its workers)
UNUSED = ("sklearn", "pandas", "jax")  # what Keras and TensorFlow import at start-up only for features no render uses
INSTALL_RENDER = "pip install 'vaeviz[render]'"
RENDER_PACKAGES = {  # pyproject.toml's [render] extra: the name each is imported by -> the name pip installs it by
    "tensorflow": "tensorflow", "click": "click", "joblib": "joblib", "matplotlib": "matplotlib",
    "tensorboard": "tensorboard", "imageio_ffmpeg": "imageio-ffmpeg", "jinja2": "jinja2", "sklearn": "scikit-learn",
}


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


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None  # finds the package without importing it
    except (ImportError, ValueError):  # a finder that hides it; a half-imported module
        return False


def missing_render_packages() -> list[str]:
    """Return the [render] extra's packages not installed here, by pip's names (none is imported)."""
    return [pip_name for name, pip_name in RENDER_PACKAGES.items() if not _installed(name)]


def require_render() -> None:
    """Exit 2, naming what is missing and the install line, where the render's packages are not installed.

    Called by each render command before it imports click or Keras: `python -m pipeline.render`, compare,
    adopt, train, serve, and the vaeviz-* scripts.
    """
    missing = missing_render_packages()
    if not missing:
        return
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    command = f"python -m {spec.name}" if spec else os.path.basename(sys.argv[0])
    print(f"{command} needs {', '.join(missing)}, not installed here: `pip install vaeviz` brings only the training "
          f"callback (CheckpointForViz); its commands need the render's packages: {INSTALL_RENDER}", file=sys.stderr)
    sys.exit(2)


def _script(module: str):
    """Return a console script's function: require_render(), then the click command `module`.main."""
    def script():
        require_render()
        return importlib.import_module(module).main()
    return script


vaeviz_render, vaeviz_compare = _script("pipeline.cli"), _script("pipeline.compare")
vaeviz_adopt, vaeviz_train = _script("pipeline.adopt"), _script("pipeline.train")
vaeviz_serve = _script("pipeline.serve")


def import_keras():
    """Import Keras and the backend KERAS_BACKEND names (once per process), quietly; return the keras module."""
    if "keras" in sys.modules:
        return sys.modules["keras"]
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    names = [n for n in UNUSED if n != backend] if os.environ.get(LEAN) == "1" else []
    try:
        with quietly(), hidden(names):  # TensorFlow's start-up lines (absl, CUDA probing) stay off the terminal
            import keras
    except ModuleNotFoundError as err:  # a render called from Python where only `pip install vaeviz` is
        if (err.name or "").partition(".")[0] != "tensorflow":
            raise
        raise ModuleNotFoundError(f"Keras' backend is TensorFlow, which is not installed here: {INSTALL_RENDER} "
                                  f"(or set KERAS_BACKEND to the backend you have).", name=err.name) from err
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
