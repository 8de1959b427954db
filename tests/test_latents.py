"""What each latent does: KL ranking, labels, anchors, manifold, prior samples,
interpolations and the traversal."""

import csv
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from pipeline import grid, run
from pipeline.latents import kl_per_dim, rank_latents
from pipeline.models import Models
from pipeline.views.base import normal_ppf
from pipeline.views.interp import interp_codes
from pipeline.views.manifold import manifold_codes
from pipeline.views.samples import prior_codes
from pipeline.views.traversal import traversal_codes
from pipeline.views.walk import walk_codes
from pipeline.views.base import INACTIVE_GRAY, LABEL_WIDTH, row_labels

LATENT, SIZE, PAD, N_SAMPLES, EPOCHS = 6, 16, 2, 9, 3
DEAD = (1, 3, 4)  # forced inactive


# --- pure functions ----------------------------------------------------------


def test_manifold_codes_are_the_papers_grid():
    ppf = normal_ppf(np.linspace(0.05, 0.95, 4))
    codes = manifold_codes(3, (2, 0), steps=4).reshape(4, 4, 3)
    for r in range(4):
        for c in range(4):
            # x (columns) increases left to right; y (rows) decreases top to bottom, as in a plot
            np.testing.assert_array_equal(codes[r, c], np.float32([ppf[3 - r], 0, ppf[c]]))


def test_manifold_rejects_a_single_or_out_of_range_dimension():
    with pytest.raises(ValueError, match="two different dimensions below 3"):
        manifold_codes(3, (1, 1))
    with pytest.raises(ValueError, match="below 3"):
        manifold_codes(3, (0, 3))


def test_kl_per_dim_is_zero_for_the_prior_and_positive_otherwise():
    np.testing.assert_allclose(kl_per_dim(np.zeros((5, 2)), np.zeros((5, 2))), [0, 0])
    kl = kl_per_dim(np.array([[1.0, 0.0]]), np.array([[0.0, np.log(4.0)]]))
    np.testing.assert_allclose(kl, [0.5, 0.5 * (4 - 1 - np.log(4))])


def test_rank_latents_orders_by_decreasing_kl_and_keeps_the_top_k():
    assert rank_latents([0.1, 2.0, 0.0, 2.0]) == [1, 3, 0, 2]
    assert rank_latents([0.1, 2.0, 0.0, 2.0], max_latents=2) == [1, 3]


def test_row_labels_show_kl_to_two_decimals_and_grey_the_inactive():
    labels, grays = row_labels([2, 0], [0.004, 1.5, 0.12345], 0.01)
    assert labels == ["z2 0.12", "z0 0.00"]
    assert grays == [255, INACTIVE_GRAY]
    assert row_labels([1], None, 0.01) == (["z1"], [255])


def test_posterior_walk_spans_each_dimensions_own_quantiles():
    anchor, scale = np.array([1.0, -2.0]), np.array([0.5, 2.0])
    codes = walk_codes(2, steps=3, lo=0.1, hi=0.9, anchor=anchor, scale=scale).reshape(2, 3, 2)
    ppf = normal_ppf([0.1, 0.5, 0.9])
    np.testing.assert_allclose(codes[0, :, 0], 1.0 + 0.5 * ppf, rtol=1e-6)
    np.testing.assert_allclose(codes[0, :, 1], -2.0)
    np.testing.assert_allclose(codes[1, :, 1], -2.0 + 2.0 * ppf, rtol=1e-6)


def test_interp_codes_run_from_a_to_b_inclusive():
    codes = interp_codes(np.array([[0.0, 0.0]]), np.array([[2.0, 4.0]]), steps=3)
    np.testing.assert_array_equal(codes, np.float32([[0, 0], [1, 2], [2, 4]]))


def test_traversal_sweeps_out_and_back():
    codes = traversal_codes(np.zeros((2, 3)), [2], steps=4)
    ppf = normal_ppf(np.linspace(0.05, 0.95, 4))
    assert codes.shape == (6, 2, 3)  # 2 * steps - 2 frames, 1 row x 2 anchors
    np.testing.assert_allclose(codes[:, 0, 2], np.float32(np.r_[ppf, ppf[2:0:-1]]))
    assert not codes[:, :, :2].any()


def test_prior_codes_are_fixed_by_the_seed():
    np.testing.assert_array_equal(prior_codes(4, 3, seed=1), prior_codes(4, 3, seed=1))
    assert not np.array_equal(prior_codes(4, 3, seed=1), prior_codes(4, 3, seed=2))


# --- a run with three latents forced inactive --------------------------------


@pytest.fixture(scope="module")
def dead_run(tmp_path_factory, shapes16, make_tiny_vae):
    """Return a run (latent_dim 6) whose encoder gives N(0, 1) for dims 1, 3, 4 at every epoch."""
    from pipeline.callback import CheckpointForViz

    run_dir = tmp_path_factory.mktemp("dead") / "dead"
    # batches of 16: enough steps for the live latents to leave the prior
    make_tiny_vae(latent_dim=LATENT).fit(shapes16, epochs=EPOCHS, batch_size=16, verbose=0,
                                         callbacks=[CheckpointForViz(run_dir, shapes16, n_samples=N_SAMPLES)])
    models = Models(run.read_run(run_dir))
    paths = [v.path for v in models.encoder.weights]
    for ckpt in run.list_checkpoints(run_dir):
        parts = run.read_weights(ckpt.path)
        for layer in ("z_mean", "z_log_var"):  # mu = 0 and log sigma^2 = 0 for the dead dims
            kernel, bias = paths.index(f"{layer}/kernel"), paths.index(f"{layer}/bias")
            parts["encoder"][kernel][:, list(DEAD)] = 0
            parts["encoder"][bias][list(DEAD)] = 0
        run.write_weights(ckpt.path, parts, epoch=ckpt.epoch)
    return run_dir


@pytest.fixture(scope="module")
def dead_out(render, dead_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("dead_out") / "o"
    result = render(dead_run, "--out", out, "-j", 1, "--views", "recon,walk,manifold,samples,interp,traversal")
    assert result.exit_code == 0, result.output
    return out


def latents_table(out):
    with open(out / "latents.csv") as f:
        return list(csv.DictReader(f))


def test_latents_csv_has_a_row_per_epoch_and_dim_and_dead_dims_have_kl_below_001(dead_out):
    rows = latents_table(dead_out)
    assert len(rows) == EPOCHS * LATENT
    assert list(rows[0]) == ["epoch", "dim", "kl", "mean", "std"]
    for r in rows:
        if int(r["dim"]) in DEAD:
            assert float(r["kl"]) < 0.01
    assert min(float(r["kl"]) for r in rows if int(r["dim"]) not in DEAD and int(r["epoch"]) == EPOCHS) > 0.01


def walk_records(out):
    manifest = json.loads((out / "manifest.json").read_text())
    return [manifest["files"][f"walk/epoch_{e:04d}.png"] for e in range(1, EPOCHS + 1)]


def test_dead_rows_are_last_in_every_frame(dead_out):
    orders = [r["settings"]["order"] for r in walk_records(dead_out)]
    assert all(order == orders[0] for order in orders)  # one order for the whole GIF
    assert orders[0][-3:] == list(DEAD)
    assert sorted(orders[0]) == list(range(LATENT))


def test_dead_rows_have_greyed_labels_and_live_rows_white(dead_out):
    walk = np.asarray(Image.open(dead_out / "walk" / f"epoch_{EPOCHS:04d}.png"))
    band = walk[:, :LABEL_WIDTH]
    row_max = [band[PAD + r * (SIZE + PAD): PAD + r * (SIZE + PAD) + SIZE].max() for r in range(LATENT)]
    assert row_max[:3] == [255, 255, 255]
    assert all(0 < m <= INACTIVE_GRAY for m in row_max[3:])


def decode_tiles(run_dir, epoch, codes):
    models = Models(run.read_run(run_dir))
    models.load(run.list_checkpoints(run_dir)[epoch - 1].path)
    return grid.to_uint8(models.decode(codes))[..., 0]


def tile_at(picture, r, c, *, left=0):
    top, x = PAD + r * (SIZE + PAD), left + PAD + c * (SIZE + PAD)
    return picture[top:top + SIZE, x:x + SIZE]


def test_every_walk_frame_shows_its_rows_in_the_shared_order(dead_run, dead_out):
    order = walk_records(dead_out)[0]["settings"]["order"]
    for epoch in (1, EPOCHS):
        expected = decode_tiles(dead_run, epoch, walk_codes(LATENT, order=order)).reshape(LATENT, 10, SIZE, SIZE)
        walk = np.asarray(Image.open(dead_out / "walk" / f"epoch_{epoch:04d}.png"))
        for r in range(LATENT):
            for c in (0, 9):
                np.testing.assert_array_equal(tile_at(walk, r, c, left=LABEL_WIDTH), expected[r, c])


def test_walk_gif_frames_keep_the_row_order(dead_out):
    with Image.open(dead_out / "walk.gif") as gif:
        assert gif.n_frames == EPOCHS
        for epoch in range(1, EPOCHS + 1):
            gif.seek(epoch - 1)
            frame = np.asarray(gif.convert("L"))
            png = np.asarray(Image.open(dead_out / "walk" / f"epoch_{epoch:04d}.png"))
            np.testing.assert_array_equal(frame[-png.shape[0]:], png)


def test_manifold_png_has_steps_by_steps_tiles_of_the_two_most_active_dims(dead_run, dead_out):
    record = json.loads((dead_out / "manifest.json").read_text())["files"]["manifold/epoch_0003.png"]
    dims = record["settings"]["manifold_dims"]
    order = walk_records(dead_out)[0]["settings"]["order"]
    assert dims == order[:2]
    picture = np.asarray(Image.open(dead_out / "manifold" / "epoch_0003.png"))
    assert picture.shape == (10 * (SIZE + PAD) + PAD + 14, LABEL_WIDTH + 10 * (SIZE + PAD) + PAD)
    expected = decode_tiles(dead_run, EPOCHS, manifold_codes(LATENT, dims)).reshape(10, 10, SIZE, SIZE)
    for r, c in ((0, 0), (9, 9), (4, 7)):
        np.testing.assert_array_equal(tile_at(picture, r, c, left=LABEL_WIDTH), expected[r, c])


def test_prior_samples_of_two_epochs_decode_the_same_stored_z(dead_run, dead_out):
    z = np.load(dead_out / "prior_z.npy")
    assert z.shape == (64, LATENT)
    for epoch in (1, EPOCHS):
        expected = decode_tiles(dead_run, epoch, z)
        picture = np.asarray(Image.open(dead_out / "samples" / f"epoch_{epoch:04d}.png"))
        for k in (0, 63):
            np.testing.assert_array_equal(tile_at(picture, k // 8, k % 8), expected[k])


def test_interpolation_ends_are_the_inputs_then_their_reconstructions(dead_out):
    for epoch in (1, EPOCHS):
        interp = np.asarray(Image.open(dead_out / "interp" / f"epoch_{epoch:04d}.png"))
        inputs = np.asarray(Image.open(dead_out / "inputs.png"))
        recon = np.asarray(Image.open(dead_out / "recon" / f"epoch_{epoch:04d}.png"))
        cols = 8 + 2
        for pair in range(N_SAMPLES // 2):
            a, b = 2 * pair, 2 * pair + 1
            np.testing.assert_array_equal(tile_at(interp, pair, 0), tile_at(inputs, a // 3, a % 3))
            np.testing.assert_array_equal(tile_at(interp, pair, cols - 1), tile_at(inputs, b // 3, b % 3))
            np.testing.assert_array_equal(tile_at(interp, pair, 1), tile_at(recon, a // 3, a % 3))
            np.testing.assert_array_equal(tile_at(interp, pair, cols - 2), tile_at(recon, b // 3, b % 3))


def test_traversal_gif_sweeps_the_active_latents_out_and_back(dead_out):
    record = json.loads((dead_out / "manifest.json").read_text())["files"]["traversal.gif"]
    assert record["settings"]["traverse_epoch"] == EPOCHS
    assert set(record["settings"]["traversal_dims"]).isdisjoint(DEAD)
    with Image.open(dead_out / "traversal.gif") as gif:
        assert gif.n_frames == 2 * 10 - 2
        assert gif.info["loop"] == 0


def test_sort_by_index_and_max_latents(render, dead_run, tmp_path):
    assert render(dead_run, "--out", tmp_path, "-j", 1, "--views", "walk", "--sort-latents", "index").exit_code == 0
    assert walk_records(tmp_path)[0]["settings"]["order"] == list(range(LATENT))
    out = tmp_path / "top2"
    assert render(dead_run, "--out", out, "-j", 1, "--views", "walk", "--max-latents", 2).exit_code == 0
    walk = Image.open(out / "walk" / "epoch_0001.png")
    assert walk.size[1] == 2 * (SIZE + PAD) + PAD


def test_posterior_anchor_draws_one_walk_block_per_anchor(render, dead_run, tmp_path):
    result = render(dead_run, "--out", tmp_path, "-j", 1, "--views", "walk", "--walk-anchor", "posterior:2")
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "walk" / "epoch_0001.png").size[1] == 2 * LATENT * (SIZE + PAD) + PAD


def test_a_new_last_checkpoint_with_the_same_order_leaves_older_walk_frames_alone(render, dead_run, dead_out, tmp_path):
    out = tmp_path / "o"
    shutil.copytree(dead_out, out)
    before = (out / "walk" / "epoch_0001.png").stat().st_mtime_ns
    result = render(dead_run, "--out", out, "-j", 1, "--views", "recon,walk,manifold,samples,interp,traversal")
    assert "nothing to render" in result.output
    assert (out / "walk" / "epoch_0001.png").stat().st_mtime_ns == before


def test_encoder_without_log_var_falls_back_to_index_order_and_says_so(render, tmp_path, shapes16):
    import keras

    from pipeline.callback import CheckpointForViz
    from pipeline.model import build_decoder

    inputs = keras.Input((16, 16, 1))
    z_mean = keras.layers.Dense(3)(keras.layers.Flatten()(inputs))
    encoder, decoder = keras.Model(inputs, z_mean), build_decoder(16, 1, 3, filters=4)
    ae = keras.Model(inputs, decoder(encoder(inputs)))
    ae.compile(optimizer="adam", loss="mse")
    run_dir = tmp_path / "ae"
    ae.fit(shapes16[:64], shapes16[:64], epochs=1, verbose=0,
           callbacks=[CheckpointForViz(run_dir, shapes16, n_samples=4, encoder=encoder, decoder=decoder)])
    result = render(run_dir, "--out", tmp_path / "o", "-j", 1)
    assert result.exit_code == 0, result.output
    assert result.output.count("no z_log_var") == 1
    rows = latents_table(tmp_path / "o")
    assert rows and all(r["kl"] == "" for r in rows)
