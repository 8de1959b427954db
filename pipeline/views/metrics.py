"""metrics: is it disentangling, and when? MIG, SAP and DCI of the evaluation set's codes at every checkpoint.

Computed after training, at no cost to it, from z_mean of the evaluation set
against its ground-truth factors (CheckpointForViz(factors=..., factor_names=...)),
each factor binned into its levels, or 10 equal-width bins when it has more.
Each epoch's numbers are kept as metrics/epoch_NNNN.json; metrics.csv and
metrics.png gather them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.views.base import ANALYSIS, View

COLUMNS = ("mig", "sap", "dci_disentanglement", "dci_completeness", "dci_informativeness")


def title(column: str) -> str:
    """Return a metric column's name as a plot title: `DCI completeness` for `dci_completeness`."""
    return column.replace("dci_", "DCI ").replace("mig", "MIG").replace("sap", "SAP")


@dataclass(frozen=True)
class MetricsSettings:
    factor_names: tuple
    factor_levels: tuple  # levels each factor is binned into
    dci_estimator: str
    analysis_set: dict


class Metrics(View):
    name, title, kind, Settings = "metrics", "Disentanglement metrics", ANALYSIS, MetricsSettings
    about = "MIG, SAP and DCI of the evaluation set's z_mean against its factors, at every rendered epoch"
    needs_analysis, suffix, summary_files = True, ".json", ("metrics.csv", "metrics.png")

    def unavailable(self, facts):
        if facts.factor_names is None:
            return ("the metrics view needs ground-truth factors: CheckpointForViz(..., factors=F, "
                    "factor_names=[...]) (pipeline.train --data shapes stores them)")
        return None

    def settings(self, options, facts):
        from pipeline.metrics import DCI_ESTIMATOR

        return MetricsSettings(tuple(facts.factor_names), tuple(facts.factor_levels), DCI_ESTIMATOR,
                               facts.analysis_set)

    def analyze(self, s, inputs):
        from pipeline import metrics

        f = np.asarray(inputs.analysis_factors)
        binned = np.stack([metrics.bin_factors(f[:, k]) for k in range(f.shape[1])], axis=1)
        return metrics.all_metrics(inputs.analysis_z, binned)

    def collect(self, s, results):
        from pipeline import plots

        epochs = sorted(results)
        lines = ["epoch," + ",".join(COLUMNS)] + [
            f"{e}," + ",".join(f"{results[e][c]:.6g}" for c in COLUMNS) for e in epochs]
        values = {c: (epochs, [results[e][c] for e in epochs]) for c in COLUMNS}
        fig = plots.curves({"run": values}, names=COLUMNS, title_of=title, width_each=2.6, ylim=(0, 1))
        return {"metrics.csv": ("\n".join(lines) + "\n").encode(), "metrics.png": plots.to_png(fig)}


VIEW = Metrics()
