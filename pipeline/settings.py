"""What a render is told: frozen settings from the CLI's options, completed once the run is read.

    RenderSettings           everything the user chose (the CLI builds it; `render()` takes it)
      .picture  Picture      how every picture looks
      .latents  Latents      how the latent views lay out their codes
      .animation Animation   GIF speed, MP4, TensorBoard
      .selection Selection   which checkpoints, and whether to redraw fresh frames
      .execution Execution   where and how wide the workers run
    Facts                    what only the run can tell (value range, pad colour, KL ranking, ...)
      .decoding Decoding     how its decoder's output is read, and the conditions drawn

Each view turns (RenderSettings, Facts) into its own frozen settings object
(`pipeline.views`): that object is what its workers draw with and, as
`record()`, what the manifest keeps to decide whether a frame is fresh. One
name per concept: a field is called what its CLI option is called.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Picture", "Latents", "Animation", "Selection", "Execution", "RenderSettings", "Decoding", "Facts",
           "record"]


@dataclass(frozen=True)
class Picture:
    """How every picture looks: channels shown, intensity scaling, tile scale, padding between tiles."""

    channels: tuple | None = None  # indices (0, 2, 4), or a composite ((0, "magenta"), (1, "green"))
    normalize: str = "global"  # global | per-image | none
    scale: int = 1
    pad: int = 2
    value_range: tuple[float, float] | None = None  # the model's; known once run.json is read
    pad_value: int | None = None  # a gray that contrasts with the samples; known once they are read


@dataclass(frozen=True)
class Latents:
    """How the latent views choose and lay out their codes (walk, manifold, samples, interp, traversal)."""

    walk_steps: int = 10
    walk_range: tuple[float, float] = (0.05, 0.95)  # standard-normal quantiles the walk spans
    walk_anchor: str = "prior"  # prior | posterior:K
    sort_latents: str | None = None  # kl | index; None: kl where the encoder gives z_log_var
    active_kl: float = 0.01
    max_latents: int | None = None
    manifold_dims: tuple[int, int] | None = None  # None: the two most active
    clusters_proj: str = "active"  # active: the two most active latents; pca: the first two principal components
    conditions: tuple[int, ...] | None = None  # a conditional run's: classes (one-hot) or k-th distinct vectors
    traverse_epoch: int | None = None  # None: the last checkpoint
    n_prior: int = 64
    interp_pairs: int = 8
    interp_steps: int = 8


@dataclass(frozen=True)
class Animation:
    """What is made from the frames of all epochs."""

    fps: float = 5.0
    mp4: bool = False
    tensorboard: bool = False
    max_frames: int = 100  # epochs an animation shows at most (every epoch keeps its PNG)
    frame_spacing: str = "even"  # even | log: which epochs, when there are more than max_frames
    deferred: bool = False  # a --follow pass while the run trains: GIFs and the run's plots wait for a later pass


@dataclass(frozen=True)
class Selection:
    """Which checkpoints to render, and whether fresh frames are drawn again."""

    every: int | None = None
    epochs: frozenset[int] | None = None
    force: bool = False


@dataclass(frozen=True)
class Execution:
    """Where the workers run: processes on this machine (loky), a dask or Ray cluster, or in this process."""

    jobs: int | None = None  # None: all cores
    backend: str = "loky"  # loky | dask | ray
    scheduler: str | None = None  # dask: tcp://HOST:PORT
    safe_mode: bool = True  # Keras safe mode when rebuilding the architecture
    imports: tuple[str, ...] = ()  # modules that register custom layers


@dataclass(frozen=True)
class RenderSettings:
    """Everything a render is told."""

    views: tuple[str, ...] = ("recon", "walk")
    out_dir: Path | None = None  # None: outputs/<run name>
    data: str | None = None  # where to take samples from when the run has none
    picture: Picture = field(default_factory=Picture)
    latents: Latents = field(default_factory=Latents)
    animation: Animation = field(default_factory=Animation)
    selection: Selection = field(default_factory=Selection)
    execution: Execution = field(default_factory=Execution)


@dataclass(frozen=True)
class Decoding:
    """How codes become images: how the decoder's output is read, and the conditions prior views are drawn for."""

    decoder_output: str = "probabilities"  # probabilities | logits (a sigmoid) | gaussian (the mean)
    conditions: tuple | None = None  # a conditional run's condition vectors: one block of rows each
    condition_labels: tuple | None = None


@dataclass(frozen=True)
class Facts:
    """What only the run can tell a view's settings; resolved before any frame is drawn."""

    picture: Picture  # completed: value_range and pad_value filled in
    latent_dim: int
    ranked: tuple[int, ...]  # latents by decreasing KL at the last selected checkpoint (index order without KL)
    kl: tuple[float, ...] | None  # KL per latent at that checkpoint, None without z_log_var or samples
    samples: dict | None  # stamp of the fixed samples file, None without samples
    seed: int
    epochs: tuple[int, ...]  # every checkpoint of the run
    last_epoch: int  # the last selected checkpoint
    decoding: Decoding = field(default_factory=Decoding)
    analysis: dict | None = None  # the analysis set's codes at the last checkpoint, summarized (see latents)
    analysis_set: dict | None = None  # stamp of the analysis set: eval.h5, or the samples without one
    classes: tuple | None = None  # the analysis set's labels, sorted
    factor_names: tuple | None = None
    factor_levels: tuple | None = None  # distinct values of each factor (binned into 10 when more)


def record(settings) -> dict:
    """Return a settings object as the manifest keeps it: plain JSON values (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(settings), default=str))
