"""Latent statistics: KL to the prior, mean and std of z_mean per dimension, at each checkpoint.

Computed by the workers from the fixed samples' encodings, kept per epoch as
`latents/epoch_NNNN.json` (so an up-to-date re-render needs no TensorFlow),
gathered into `latents.csv`, and used to rank latents for the walks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["StatsSettings", "kl_per_dim", "latent_stats", "analysis_summary", "rank_latents", "stats_file",
           "read_stats", "csv_bytes", "STATS", "CSV"]

STATS = "latents"  # folder of the per-epoch statistics
CSV = "latents.csv"


@dataclass(frozen=True)
class StatsSettings:
    """What an epoch's statistics depend on besides its checkpoint (recorded in the manifest)."""

    samples: dict  # stamp of the samples encoded
    analysis_set: dict | None = None  # stamp of the analysis set summarized too (when a view needs it)
    # how an undecided decoder is tested (run.decides_output): statistics of another test are stale
    decoder_test: str | None = None


def kl_per_dim(z_mean: np.ndarray, z_log_var: np.ndarray) -> np.ndarray:
    """Return each dimension's KL(N(mu, sigma^2) || N(0, 1)) in nats, averaged over samples (d,)."""
    mu, lv = np.asarray(z_mean, np.float64), np.asarray(z_log_var, np.float64)
    return np.mean(0.5 * (mu ** 2 + np.exp(lv) - 1.0 - lv), axis=0)


def latent_stats(z_mean: np.ndarray, z_log_var: np.ndarray | None) -> dict:
    """Return {"kl": per-dim KL or None, "mean", "std"} of z_mean over the samples, as lists."""
    return {"kl": None if z_log_var is None else kl_per_dim(z_mean, z_log_var).tolist(),
            "mean": z_mean.mean(axis=0).tolist(), "std": z_mean.std(axis=0).tolist()}


def analysis_summary(z: np.ndarray) -> dict:
    """Return where the analysis set's codes lie: per-latent min and max, and the first two principal
    components (signs fixed: each component's largest entry is positive) with the projections' range."""
    from sklearn.decomposition import PCA

    z = np.asarray(z, np.float64)
    out = {"min": z.min(axis=0).tolist(), "max": z.max(axis=0).tolist()}
    if z.shape[1] >= 2 and len(z) >= 2:
        pca = PCA(n_components=2).fit(z)
        components = pca.components_ * np.sign(pca.components_[np.arange(2), np.abs(pca.components_).argmax(1)])[:, None]
        projected = (z - pca.mean_) @ components.T
        out.update(mean=pca.mean_.tolist(), components=components.tolist(),
                   pca_min=projected.min(axis=0).tolist(), pca_max=projected.max(axis=0).tolist())
    return out


def rank_latents(kl, *, max_latents: int | None = None) -> list[int]:
    """Return dimensions by decreasing KL (ties by index), the first `max_latents` of them."""
    kl = np.nan_to_num(np.asarray(kl, np.float64), nan=-np.inf)  # a NaN KL ranks last
    order = sorted(range(len(kl)), key=lambda d: (-kl[d], d))
    return order[:max_latents] if max_latents else order


def stats_file(epoch: int) -> str:
    """Return the statistics file of an epoch, relative to the outputs folder."""
    return f"{STATS}/epoch_{epoch:04d}.json"


def read_stats(out_dir: Path, epoch: int) -> dict:
    """Return the statistics an epoch's worker wrote ({"kl", "mean", "std"})."""
    return json.loads((Path(out_dir) / stats_file(epoch)).read_text())


def csv_bytes(stats: dict[int, dict]) -> bytes:
    """Return latents.csv (epoch, dim, kl, mean, std of z_mean) of {epoch: statistics}."""
    lines = ["epoch,dim,kl,mean,std"]
    for epoch, s in sorted(stats.items()):
        for d, (mean, std) in enumerate(zip(s["mean"], s["std"])):
            kl = "" if s["kl"] is None else f"{s['kl'][d]:.6g}"
            lines.append(f"{epoch},{d},{kl},{mean:.6g},{std:.6g}")
    return ("\n".join(lines) + "\n").encode()
