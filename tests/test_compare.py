"""`python -m pipeline.compare`: two runs of different beta on one page, checked in headless Chromium."""

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from pipeline import compare, run
from pipeline.callback import CheckpointForViz
from pipeline.data import shapes
from pipeline.model import ImageVAE

VIEWS = "recon,walk,kl,clusters,metrics"


def train(run_dir, beta, epochs):
    images, made = shapes(256, size=16)
    factors = np.stack([made[k] for k in made], axis=1)
    keras.utils.set_random_seed(0)
    model = ImageVAE(image_size=16, channels=1, latent_dim=3, filters=4, beta=beta)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(images, epochs=epochs, batch_size=64, verbose=0, callbacks=[CheckpointForViz(
        run_dir, images, n_samples=4, labels=made["shape"], factors=factors, factor_names=list(made), n_eval=200,
        hparams={"beta": beta, "learning_rate": 3e-3})])


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    train(root / "beta1", 1.0, 3)
    train(root / "beta4", 4.0, 2)  # a shorter run: the slider shows its nearest earlier checkpoint
    result = CliRunner().invoke(compare.main, [str(root / "beta1"), str(root / "beta4"), "--out", str(root / "cmp"),
                                               "--views", VIEWS, "-j", "1"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return root


def test_one_page_names_both_runs_and_highlights_the_settings_that_differ(compared):
    page = (compared / "cmp" / "index.html").read_text()
    assert "beta1 vs beta4" in page
    rows = {r["name"]: r for r in compare._settings_table({n: run.read_run(compared / n) for n in ("beta1", "beta4")})}
    assert rows["beta"]["differs"] and not rows["learning_rate"]["differs"] and not rows["latent_dim"]["differs"]
    assert '<tr class="differs"><td>beta</td>' in page


def test_the_curves_overlay_every_run(compared):
    series = compare._curves({n: {"run_dir": compared / n} for n in ("beta1", "beta4")},
                             {n: compared / "cmp" / n for n in ("beta1", "beta4")})
    assert set(series) == {"beta1", "beta4"}
    assert all({"loss", "kl", "mig"} <= set(values) for values in series.values())
    assert (compared / "cmp" / compare.CURVES_PNG).is_file()


def test_the_slider_moves_every_runs_row_and_the_page_stays_offline(compared, open_page, tmp_path):
    page, requests = open_page(compared / "cmp" / "index.html")
    walk = {n: page.locator(f"#frame-walk-{n}") for n in ("beta1", "beta4")}
    assert walk["beta1"].get_attribute("src").endswith("walk/epoch_0003.png")
    assert walk["beta4"].get_attribute("src").endswith("walk/epoch_0002.png")  # its last, nearest earlier
    page.locator("#epoch-slider").fill("0")  # epoch 1: both rows move
    assert walk["beta1"].get_attribute("src").endswith("walk/epoch_0001.png")
    assert walk["beta4"].get_attribute("src").endswith("walk/epoch_0001.png")
    assert page.locator("#epoch-label").inner_text() == "1"
    page.evaluate("document.querySelectorAll('img').forEach(i => i.loading = 'eager')")
    page.wait_for_function("[...document.images].every(i => i.complete)")
    broken = page.eval_on_selector_all("img", "imgs => imgs.filter(i => !i.naturalWidth).map(i => i.src)")
    assert broken == []
    page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)
    assert requests and all(url.startswith("file://") for url in requests)


def test_compare_needs_two_runs_of_different_names(compared):
    result = CliRunner().invoke(compare.main, [str(compared / "beta1"), "--out", str(compared / "x")])
    assert result.exit_code == 2 and "two or more runs" in result.output
