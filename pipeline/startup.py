"""A render process's start-up: Keras and its backend, imported quietly and without packages no render uses.

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
"""

from __future__ import annotations

import contextlib
import importlib.abc
import os
import sys

from pipeline.quiet import quietly

__all__ = ["import_keras", "hidden", "LEAN", "UNUSED"]

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
