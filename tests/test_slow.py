"""One real training run of a beta-VAE on the built-in shapes, rendered through the CLI: do the pictures
say what each latent does, and do the metrics say it disentangles?"""

import csv

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from pipeline import metrics, run
from pipeline.views.base import LABEL_WIDTH
from pipeline.cli import main

SIZE, LATENT, PAD, STEPS = 32, 8, 2, 10


def monotonic(values) -> bool:
    d = np.diff(values)
    return bool(np.all(d > 0) or np.all(d < 0))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Return (model, run_dir, out, factors): a beta=4 VAE fitted 15 epochs on 32x32 shapes with its factors,
    rendered (walk, metrics)."""
    import keras

    from pipeline.callback import CheckpointForViz
    from pipeline.data import shapes
    from pipeline.model import ImageVAE

    tmp_path = tmp_path_factory.mktemp("slow")
    x, factors = shapes(4096, size=SIZE, seed=0)
    keras.utils.set_random_seed(0)
    model = ImageVAE(image_size=SIZE, latent_dim=LATENT, filters=16, beta=4.0)
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    run_dir, out = tmp_path / "run", tmp_path / "out"
    model.fit(x, epochs=15, batch_size=64, verbose=0, callbacks=[CheckpointForViz(
        run_dir, x, every=5, factors=np.stack([factors[k] for k in factors], axis=1), factor_names=list(factors),
        n_eval=1000)])
    result = CliRunner().invoke(main, [str(run_dir), "--out", str(out), "--views", "walk,metrics", "-j", "1"])
    assert result.exit_code == 0, result.output
    return model, run_dir, out, factors


@pytest.mark.slow
def test_top_latents_move_a_shape_factor_monotonically_and_inactive_ones_nothing(trained):
    model, run_dir, out, factors = trained

    with open(out / "latents.csv") as f:
        kl = {int(r["dim"]): float(r["kl"]) for r in csv.DictReader(f) if int(r["epoch"]) == 15}
    order = sorted(kl, key=lambda d: (-kl[d], d))
    walk = np.asarray(Image.open(out / "walk" / "epoch_0015.png"), np.float64)[:, LABEL_WIDTH:] / 255
    tiles = np.array([[walk[PAD + r * (SIZE + PAD):][:SIZE, PAD + c * (SIZE + PAD):][:, :SIZE]
                       for c in range(STEPS)] for r in range(LATENT)])  # (rows, steps, H, W)

    samples = run.read_samples(run_dir / run.SAMPLES_H5)
    z_mean = np.asarray(model.encoder(samples["images"])[0])
    yy, xx = np.mgrid[:SIZE, :SIZE]
    for r in range(2):
        row = tiles[r]
        area = row.sum(axis=(1, 2))
        measures = {"area": area, "centre x": (row * xx).sum(axis=(1, 2)) / area,
                    "centre y": (row * yy).sum(axis=(1, 2)) / area}
        moved = [name for name, v in measures.items() if monotonic(v)]
        truth = {name: abs(np.corrcoef(z_mean[:, order[r]], factors[name][samples["indices"]])[0, 1])
                 for name in ("x", "y", "scale", "rotation")}
        print(f"z{order[r]} (KL {kl[order[r]]:.2f}) moves monotonically: {moved}; "
              f"best-correlated true factor: {max(truth, key=truth.get)} (|r| = {max(truth.values()):.2f})")
        assert moved, f"row {r} (z{order[r]}): no monotonic area or centre of mass: {measures}"

    def change(r):  # the largest mean pixel change from the row's first tile
        return np.abs(tiles[r] - tiles[r][0]).mean(axis=(1, 2)).max()

    inactive = [r for r, d in enumerate(order) if kl[d] < 0.01]
    assert inactive, f"expected collapsed latents with beta 4, KL: {kl}"
    active_change = min(change(0), change(1))
    for r in inactive:
        print(f"z{order[r]} (KL {kl[order[r]]:.4f}) inactive: mean pixel change {change(r):.4f} "
              f"(top rows: {active_change:.4f})")
        assert change(r) < 0.025 and change(r) < active_change / 4, \
            f"inactive row z{order[r]} changes by {change(r):.4f}, top rows by {active_change:.4f}"


@pytest.mark.slow
def test_the_beta_vae_scores_a_mig_clearly_above_its_codes_against_shuffled_factors(trained):
    model, run_dir, out, _ = trained
    rows = [line.split(",") for line in (out / "metrics.csv").read_text().splitlines()[1:]]
    assert [int(r[0]) for r in rows] == [5, 10, 15]  # every checkpoint, scored after training
    evaluation = run.read_eval(run_dir / run.EVAL_H5)
    codes = np.asarray(model.encoder(evaluation["images"], training=False)[0])
    binned = np.stack([metrics.bin_factors(f) for f in evaluation["factors"].T], axis=1)
    final = float(rows[-1][1])
    assert final == pytest.approx(metrics.mig(codes, binned), abs=1e-6)  # the CSV holds the model's own MIG
    shuffled = metrics.mig(codes, np.random.default_rng(0).permutation(binned))
    print(f"MIG by epoch {[float(r[1]) for r in rows]}; against shuffled factors {shuffled:.4f}")
    # the property named: far above chance (the same codes against shuffled factors). The value itself follows the
    # CPU's float arithmetic through 15 epochs: above 0.05 on the Intel machines this test was written on, 0.047 on
    # an AMD EPYC (13x its shuffled 0.0035), with the code of the last landing too
    assert final > 0.02 and final > 10 * shuffled
