"""What every view shares: the `View` protocol, the `Inputs` it reads, drawing helpers.

Everything here is pure: arrays in, arrays out, no files and no TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from pipeline import grid

__all__ = ["FRAME", "ANALYSIS", "RUN_PICTURE", "ANIMATION", "KINDS", "View", "Inputs", "normal_ppf", "shown",
           "tiled", "labelled_rows", "row_labels", "LABEL_WIDTH", "INACTIVE_GRAY"]

# The kinds of view: what a view makes, and from what.
FRAME = "frame"  # a picture per checkpoint from decoded codes: NAME/epoch_NNNN.png, animated into NAME.gif
ANALYSIS = "analysis"  # per checkpoint from encodings only: NAME/epoch_NNNN.png (animated) or .json (numbers)
RUN_PICTURE = "run_picture"  # one picture per run from the latent statistics of every checkpoint: NAME.png
ANIMATION = "animation"  # one animation per run from decoded codes of one checkpoint: NAME.gif
KINDS = (FRAME, ANALYSIS, RUN_PICTURE, ANIMATION)

LABEL_WIDTH = 64  # pixels of the band of row labels left of a walk
INACTIVE_GRAY = 100  # label gray of a latent whose KL is below --active-kl


@dataclass(frozen=True)
class Inputs:
    """What a view reads at one checkpoint: the run's latent size, the fixed samples and their encodings.

    images : (N, H, W, C) the fixed samples as fed to the model, or None (a run without samples).
    z_mean, z_log_var : (N, latent_dim) float32 encodings of `images` (z_log_var None if the encoder has none).
    kl : each latent's KL to N(0, 1) at this checkpoint (a list), or None.
    conditions : (N, K) the samples' conditions in a conditional run, else None.
    analysis_z, analysis_labels, analysis_factors : z_mean of the analysis set (the
        evaluation set, or the fixed samples without one), its labels and factors
        (each or None); encoded only when a view that needs it is drawn.
    """

    latent_dim: int
    images: np.ndarray | None = None
    z_mean: np.ndarray | None = None
    z_log_var: np.ndarray | None = None
    kl: list | None = None
    conditions: np.ndarray | None = None
    analysis_z: np.ndarray | None = None
    analysis_labels: np.ndarray | None = None
    analysis_factors: np.ndarray | None = None


class View:
    """One view of a run. Subclass it, set the attributes, implement the methods of its kind.

    Attributes: `name` (CLI, file names, TensorBoard tag), `title` and `about`
    (the report's heading and caption), `kind` (one of KINDS), `needs_samples`
    (skipped, with a note, in a run without samples), `suffix` (of its files),
    `Settings` (a frozen dataclass: what its work reads, and what the manifest
    records to decide freshness; nothing else may change its pictures).
    """

    name: str = ""
    title: str = ""
    about: str = ""
    kind: str = FRAME
    needs_samples: bool = False
    needs_analysis: bool = False  # reads Inputs.analysis_* (the evaluation set's codes)
    follows_last: bool = False  # its settings come from the last checkpoint: drawn once a followed run finishes
    suffix: str = ".png"
    summary_files: tuple = ()  # what `collect` writes once per run (ANALYSIS with suffix .json)
    Settings: type = type(None)

    def unavailable(self, facts) -> str | None:
        """Return why this run cannot have this view (said in a note, the rest renders), or None."""
        return None

    def settings(self, options, facts):
        """Return this view's Settings from the user's RenderSettings and the run's Facts.

        Raise ValueError, naming the option, for settings that do not fit the run.
        """
        raise NotImplementedError

    def codes(self, s, inputs: Inputs):
        """FRAME and ANIMATION: return the (n, latent_dim) codes to decode (all views' in one call).

        In a conditional run a view returns (codes, their conditions) when it
        picks them itself (each sample's own); plain codes are drawn once per
        chosen condition, one labelled block each.
        """
        raise NotImplementedError

    def draw(self, s, decoded: np.ndarray, inputs: Inputs):
        """FRAME: return the uint8 grid of `decoded` (the images of `codes`); ANIMATION: a list of grids."""
        raise NotImplementedError

    def analyze(self, s, inputs: Inputs):
        """ANALYSIS: return a uint8 grid (suffix .png) or a dict of numbers (suffix .json)."""
        raise NotImplementedError

    def summarize(self, s, stats: dict):
        """RUN_PICTURE: return a uint8 grid from {epoch: {"kl", "mean", "std"}} of every rendered checkpoint."""
        raise NotImplementedError

    def collect(self, s, results: dict) -> dict:
        """ANALYSIS with numbers: return {file name: bytes or uint8 grid} from {epoch: its numbers}."""
        return {}

    def run_files(self, s) -> dict:
        """Return {name: bytes} of files it writes once per run beside its pictures (default none)."""
        return {}

    def pages(self, s, *, image_height: int, frame_height: int) -> list[tuple[int, int, str]] | None:
        """FRAME: return the bands (top, height in pixels, label) the report shows one at a time, or None."""
        return None

    def animation_epoch(self, s) -> int:
        """ANIMATION: return the epoch of the checkpoint it animates."""
        raise NotImplementedError

    @property
    def per_checkpoint(self) -> bool:
        """Whether it makes a file per checkpoint (FRAME, ANALYSIS) rather than one per run."""
        return self.kind in (FRAME, ANALYSIS)

    @property
    def decodes(self) -> bool:
        """Whether it draws decoded codes (FRAME, ANIMATION): its files depend on the run's Decoding too."""
        return self.kind in (FRAME, ANIMATION)

    @property
    def animated(self) -> bool:
        """Whether its per-checkpoint pictures become NAME.gif (and NAME.mp4, TensorBoard images)."""
        return self.per_checkpoint and self.suffix == ".png"

    def file(self, epoch: int | None = None) -> str:
        """Return its output file, relative to the outputs folder: per checkpoint, or the run's one."""
        if self.per_checkpoint:
            return f"{self.name}/epoch_{epoch:04d}{self.suffix}"
        return f"{self.name}{'.gif' if self.kind == ANIMATION else self.suffix}"


def normal_ppf(p) -> np.ndarray:
    """Return the standard-normal inverse CDF of each probability in `p` (float64)."""
    p = np.asarray(p, dtype=np.float64)
    if np.any((p <= 0) | (p >= 1)):
        raise ValueError(f"probabilities must lie strictly between 0 and 1; received {p.min()}..{p.max()}.")
    inv = NormalDist().inv_cdf
    return np.array([inv(float(v)) for v in p.ravel()]).reshape(p.shape)


def shown(images: np.ndarray, picture) -> np.ndarray:
    """Return model-space images as the uint8 tiles the user sees, per the Picture settings."""
    return grid.display(images, channels=picture.channels, value_range=picture.value_range,
                        normalize=picture.normalize, scale=picture.scale)


def tiled(tiles: np.ndarray, cols: int, picture) -> np.ndarray:
    """Return uint8 `tiles` as a grid of `cols` columns with the Picture's padding."""
    return grid.tile(tiles, cols=cols, pad=picture.pad, pad_value=picture.pad_value)


def labelled_rows(tiles: np.ndarray, cols: int, labels, picture, grays=None) -> np.ndarray:
    """Return the grid of `tiles` with a band of LABEL_WIDTH pixels at its left, one label per row."""
    return grid.label_rows(tiled(tiles, cols, picture), labels,
                           grid.tile_centers(len(labels), tiles.shape[1], picture.pad), width=LABEL_WIDTH, grays=grays)


def row_labels(dims, kl, active_kl: float):
    """Return (labels, grays) of latent rows: `z<i> <KL to 2 decimals>`, greyed when below `active_kl`."""
    if kl is None:
        return [f"z{d}" for d in dims], [255] * len(dims)
    return ([f"z{d} {kl[d]:.2f}" for d in dims],
            [255 if kl[d] >= active_kl else INACTIVE_GRAY for d in dims])
