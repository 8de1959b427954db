"""kl: when did each latent switch on or collapse? A heatmap of KL per latent (rows) by epoch (columns).

Rows come in the walk's order (by KL at the last checkpoint); latents below
--active-kl at the last epoch are marked inactive. Drawn from the latent
statistics of every rendered checkpoint, once per run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.views.base import RUN_PICTURE, View


@dataclass(frozen=True)
class KLSettings:
    order: tuple[int, ...]  # latents top to bottom
    active_kl: float


class KL(View):
    name, title, kind, Settings = "kl", "KL per latent by epoch", RUN_PICTURE, KLSettings
    about = "each latent's KL to the prior (nats) at every rendered epoch, in the walk's order"

    def unavailable(self, facts):
        if facts.kl is None:
            return "the kl view needs KL per latent: an encoder that gives z_log_var, and the run's samples"
        return None

    def settings(self, options, facts):
        return KLSettings(order=tuple(facts.ranked), active_kl=options.latents.active_kl)

    def summarize(self, s, stats):
        from pipeline import plots

        epochs = sorted(e for e in stats if stats[e]["kl"] is not None)
        kl = np.array([stats[e]["kl"] for e in epochs])
        return plots.kl_heatmap(kl, epochs, s.order, active_kl=s.active_kl)


VIEW = KL()
