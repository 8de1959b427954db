"""The research views: when did each latent switch on (kl), do the classes separate (clusters), is it
disentangling (metrics); each in the report, each incremental, and a run without labels or factors says
what the missing views need."""

import json
import os

import keras
import numpy as np
import pytest
from PIL import Image

from pipeline import run
from pipeline.callback import CheckpointForViz
from pipeline.data import SHAPE_NAMES, shapes
from pipeline.model import ImageVAE

EPOCHS, LATENT = 3, 3
VIEWS = "recon,walk,kl,clusters,metrics"


def fit_with_factors(run_dir):
    images, made = shapes(512, size=16)
    names = list(made)
    keras.utils.set_random_seed(0)
    model = ImageVAE(image_size=16, channels=1, latent_dim=LATENT, filters=4)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(images, epochs=EPOCHS, batch_size=64, verbose=0, callbacks=[CheckpointForViz(
        run_dir, images, n_samples=8, labels=np.asarray(SHAPE_NAMES)[made["shape"]],
        factors=np.stack([made[k] for k in names], axis=1), factor_names=names, n_eval=300)])


@pytest.fixture(scope="module")
def labelled(tmp_path_factory, render):
    root = tmp_path_factory.mktemp("research")
    fit_with_factors(root / "run")
    result = render(root / "run", "--out", root / "out", "--views", VIEWS, "-j", 1)
    assert result.exit_code == 0, result.output
    return root


def records(out, prefix):
    files = json.loads((out / "manifest.json").read_text())["files"]
    return {name: entry for name, entry in files.items() if name.startswith(prefix)}


def test_the_evaluation_set_is_stored_once_compactly_with_labels_and_factors(labelled):
    evaluation = run.read_eval(labelled / "run" / run.EVAL_H5)
    assert len(evaluation["images"]) == 300 and evaluation["factor_names"] == ["shape", "scale", "rotation", "x", "y"]
    assert set(evaluation["labels"]) <= set(SHAPE_NAMES) and evaluation["factors"].shape == (300, 5)
    import h5py

    with h5py.File(labelled / "run" / run.EVAL_H5) as f:
        assert f["images"].dtype == np.uint8  # shapes are 8-bit levels


def test_kl_png_is_one_heatmap_in_the_walks_order_beside_the_walk_in_the_report(labelled):
    out = labelled / "out"
    entry = records(out, "kl.png")["kl.png"]
    walk_order = records(out, "walk/")["walk/epoch_0003.png"]["settings"]["order"]
    assert entry["settings"]["order"] == walk_order and len(entry["stats"]) == EPOCHS
    assert np.asarray(Image.open(out / "kl.png")).ndim == 3
    page = (out / "index.html").read_text()
    assert page.index('id="walk"') < page.index('id="kl"') < page.index('id="clusters"')


def test_clusters_draws_a_frame_per_epoch_on_fixed_axes_and_a_gif(labelled, gif_frames):
    out = labelled / "out"
    frames = records(out, "clusters/")
    assert sorted(frames) == [f"clusters/epoch_{e:04d}.png" for e in range(1, EPOCHS + 1)]
    settings = [entry["settings"] for entry in frames.values()]
    assert all(s == settings[0] for s in settings)  # one projection and one set of limits for every frame
    assert settings[0]["classes"] == sorted(SHAPE_NAMES) and settings[0]["clusters_proj"] == "active"
    assert len(gif_frames(out / "clusters.gif")) == EPOCHS
    assert 'id="clusters"' in (out / "index.html").read_text()


def test_clusters_with_pca_fixes_the_components_signs(labelled, render, tmp_path):
    result = render(labelled / "run", "--out", tmp_path, "--views", "clusters", "--clusters-proj", "pca", "-j", 1)
    assert result.exit_code == 0, result.output
    entry = records(tmp_path, "clusters/")["clusters/epoch_0001.png"]["settings"]
    components = np.asarray(entry["components"])
    assert components.shape == (2, LATENT)
    assert all(c[np.abs(c).argmax()] > 0 for c in components)


def test_metrics_writes_a_csv_row_and_a_json_per_epoch_and_a_plot(labelled):
    out = labelled / "out"
    lines = (out / "metrics.csv").read_text().splitlines()
    assert lines[0] == "epoch,mig,sap,dci_disentanglement,dci_completeness,dci_informativeness"
    assert [int(line.split(",")[0]) for line in lines[1:]] == list(range(1, EPOCHS + 1))
    for e in range(1, EPOCHS + 1):
        values = json.loads((out / "metrics" / f"epoch_{e:04d}.json").read_text())
        assert all(0 <= values[k] <= 1 for k in values)
    assert (out / "metrics.png").is_file() and '"metrics.png"' in (out / "index.html").read_text()
    assert records(out, "metrics.csv")["metrics.csv"]["settings"]["factor_levels"] == [3, 10, 10, 10, 10]


def test_a_re_render_of_the_research_views_recomputes_nothing(labelled, render):
    out = labelled / "out"
    before = {p: (os.stat(p).st_ino, os.stat(p).st_mtime_ns) for p in out.rglob("*") if p.is_file()}
    result = render(labelled / "run", "--out", out, "--views", VIEWS, "-j", 1)
    assert "nothing to render" in result.output, result.output
    assert {p: (os.stat(p).st_ino, os.stat(p).st_mtime_ns) for p in out.rglob("*") if p.is_file()} == before


def test_a_run_without_labels_or_factors_renders_the_rest_and_says_what_the_missing_views_need(
        tiny_run, render, tmp_path):
    result = render(tiny_run.run_dir, "--out", tmp_path, "--views", VIEWS, "-j", 1)
    assert result.exit_code == 0, result.output
    assert "not drawn: the metrics view needs ground-truth factors: CheckpointForViz(..., factors=F" in result.output
    for name in ("recon.gif", "walk.gif", "kl.png", "clusters.gif"):  # clusters: the samples, one colour
        assert (tmp_path / name).is_file(), name
    assert not (tmp_path / "metrics.csv").exists()
    assert records(tmp_path, "clusters/")["clusters/epoch_0001.png"]["settings"]["classes"] is None
