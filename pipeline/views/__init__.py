"""The views: one module per view, and this registry, the one list of them.

`--views` choices, the report's sections (in this order), the GIFs and MP4s,
and the TensorBoard tags all come from `names()` / `get()`.

Adding a view is one module and its tests. Copy the smallest,
`pipeline/views/samples.py`:

    @dataclass(frozen=True)
    class SamplesSettings:              # everything its pictures depend on, nothing else:
        picture: Picture                # the manifest records it, the workers draw with it
        n_prior: int
        ...

    class Samples(View):
        name, title, kind, Settings = "samples", "Prior samples", FRAME, SamplesSettings

        def settings(self, options, facts):     # RenderSettings + the run's Facts -> SamplesSettings
            ...
        def codes(self, s, inputs):             # the codes to decode (pure numpy)
            return prior_codes(s.n_prior, s.latent_dim, seed=s.seed)
        def draw(self, s, decoded, inputs):     # decoded images -> a uint8 grid (pure numpy)
            return tiled(shown(decoded, s.picture), grid.square_cols(len(decoded)), s.picture)

    VIEW = Samples()

then add its module name to BUILTIN below (a view of your own package instead
calls `register(MyView())` when imported: pass that module to `--import`).
The kinds (`pipeline.views.base`): FRAME (a picture per checkpoint from
decoded codes), ANALYSIS (per checkpoint from encodings only: a plot or
numbers), RUN_PICTURE (one picture per run from the latent statistics of all
checkpoints) and ANIMATION (one animation of one checkpoint).
"""

from __future__ import annotations

import importlib

from pipeline.views.base import ANALYSIS, ANIMATION, FRAME, KINDS, RUN_PICTURE, Inputs, View

__all__ = ["BUILTIN", "register", "names", "get", "View", "Inputs", "FRAME", "ANALYSIS", "RUN_PICTURE", "ANIMATION"]

BUILTIN = ("recon", "walk", "kl", "manifold", "samples", "interp", "traversal", "clusters", "metrics")
_REGISTRY: dict[str, View] = {}  # the views loaded so far; a built-in view's module loads when first asked for


def register(view: View) -> View:
    """Add `view` to the registry (after the built-in views) and return it; a name may be registered once."""
    for attr in ("name", "title", "kind", "Settings"):
        if not getattr(view, attr, None):
            raise ValueError(f"a view needs `{attr}`; {type(view).__name__} has none.")
    if view.kind not in KINDS:
        raise ValueError(f"view `{view.name}` has kind `{view.kind}`; expected one of {', '.join(KINDS)}.")
    existing = get(view.name) if view.name in names() else None
    if existing is not None and type(existing) is not type(view):
        raise ValueError(f"a view named `{view.name}` is registered already ({type(existing).__name__}).")
    _REGISTRY[view.name] = view
    return view


def names() -> tuple[str, ...]:
    """Return every view's name, built-in first, in the report's order (without loading their modules)."""
    return BUILTIN + tuple(name for name in _REGISTRY if name not in BUILTIN)


def get(name: str) -> View:
    """Return the view called `name`, or raise ValueError naming the choices."""
    if name not in _REGISTRY and name in BUILTIN:
        _REGISTRY[name] = importlib.import_module(f"pipeline.views.{name}").VIEW
    if name not in _REGISTRY:
        raise ValueError(f"unknown view `{name}`; choose from {', '.join(names())}.")
    return _REGISTRY[name]
