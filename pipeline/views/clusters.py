"""clusters: do the classes separate in latent space? z_mean of the analysis set, one colour per label.

The analysis set is the evaluation set (CheckpointForViz(labels=..., n_eval=...)),
or the fixed samples without one. Points lie in the two most active latents,
or the first two principal components (--clusters-proj pca, fitted once on
the last checkpoint's codes, signs fixed); the axes are fixed across epochs
from the last checkpoint's codes, so the animation shows the codes move, not
the axes rescale. A new last checkpoint redraws every frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.views.base import ANALYSIS, View

MARGIN = 0.05  # of each axis' span, around the last checkpoint's codes


@dataclass(frozen=True)
class ClustersSettings:
    clusters_proj: str  # active | pca
    dims: tuple[int, int] | None  # active: the latents on the x and y axes
    mean: tuple | None  # pca: the codes' mean and the two components (latent_dim each)
    components: tuple | None
    limits: tuple  # ((x0, x1), (y0, y1))
    classes: tuple | None  # the labels, in legend order
    analysis_set: dict


def _padded(lo, hi) -> tuple[float, float]:
    span = max(float(hi) - float(lo), 1e-6)
    return float(lo) - MARGIN * span, float(hi) + MARGIN * span


class Clusters(View):
    name, title, kind, Settings = "clusters", "Clusters", ANALYSIS, ClustersSettings
    about = "z_mean of the evaluation set (or the fixed samples), one colour per label, axes fixed across epochs"
    needs_analysis, follows_last = True, True

    def unavailable(self, facts):
        if facts.latent_dim < 2:
            return f"the clusters view needs latent_dim >= 2; this run has {facts.latent_dim}"
        if facts.analysis is None:
            return "the clusters view needs the run's samples or evaluation set (CheckpointForViz(run_dir, data))"
        return None

    def settings(self, options, facts):
        a, proj = facts.analysis, options.latents.clusters_proj
        if proj == "pca":
            limits = tuple(_padded(lo, hi) for lo, hi in zip(a["pca_min"], a["pca_max"]))
            return ClustersSettings(proj, None, tuple(a["mean"]), tuple(map(tuple, a["components"])), limits,
                                    facts.classes, facts.analysis_set)
        dims = tuple(facts.ranked[:2])
        limits = tuple(_padded(a["min"][d], a["max"][d]) for d in dims)
        return ClustersSettings(proj, dims, None, None, limits, facts.classes, facts.analysis_set)

    def analyze(self, s, inputs):
        from pipeline import plots

        z = np.asarray(inputs.analysis_z, np.float64)
        if s.clusters_proj == "pca":
            points, axes = (z - np.asarray(s.mean)) @ np.asarray(s.components).T, ("PC 1", "PC 2")
        else:
            points, axes = z[:, list(s.dims)], (f"z{s.dims[0]}", f"z{s.dims[1]}")
        labels = None if s.classes is None else inputs.analysis_labels
        return plots.scatter(points, labels, s.classes, limits=s.limits, axes=axes,
                             title=f"{len(z)} codes" + ("" if s.classes else " (no labels)"))


VIEW = Clusters()
