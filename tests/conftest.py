"""Shared fixtures: tiny data and one tiny trained run directory.

Keras is imported inside the fixtures, so tests that need no model
(run format, data loaders) never pay for TensorFlow.
"""

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"  # before any TensorFlow import, here or in a subprocess

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

TINY = {"image_size": 16, "channels": 1, "filters": 4}


@dataclass
class TinyRun:
    """A run directory written by CheckpointForViz during a 3-epoch fit of `model` on `x`."""

    run_dir: Path
    model: object  # the trained ImageVAE, weights as at the last epoch
    x: np.ndarray  # (256, 16, 16, 1) float32 training images


@pytest.fixture(scope="session")
def shapes16():
    """Return (256, 16, 16, 1) float32 shapes images in [0, 1]."""
    from pipeline.data import shapes

    images, _ = shapes(256, size=16)
    return images


@pytest.fixture(scope="session")
def make_tiny_vae():
    """Return `make(latent_dim=3)`: a new compiled ImageVAE of 16x16x1 images, seeded."""
    import keras

    from pipeline.model import ImageVAE

    def make(latent_dim=3):
        keras.utils.set_random_seed(0)
        model = ImageVAE(latent_dim=latent_dim, **TINY)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        return model

    return make


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, shapes16, make_tiny_vae):
    """Return a TinyRun: ImageVAE(latent_dim=3) fitted 3 epochs with CheckpointForViz(n_samples=9).

    Shared by the session: do not train `model` further or write into `run_dir`;
    copy the folder (shutil.copytree) to change it.
    """
    from pipeline.callback import CheckpointForViz

    run_dir = tmp_path_factory.mktemp("tiny") / "run"
    model = make_tiny_vae()
    model.fit(shapes16, epochs=3, batch_size=64, verbose=0,
              callbacks=[CheckpointForViz(run_dir, shapes16, n_samples=9)])
    return TinyRun(run_dir=run_dir, model=model, x=shapes16)


@pytest.fixture(scope="session")
def render():
    """Return `render(*args, catch=False)`: run the render CLI in this process on `args`; a click Result.

    catch=True keeps an unexpected exception in result.exception instead of raising it.
    """
    from click.testing import CliRunner

    from pipeline.cli import main

    def invoke(*args, catch=False):
        return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=catch)

    return invoke


@pytest.fixture(scope="session")
def digests():
    """Return `digests(folder)`: {relative path: SHA-256} of every PNG and GIF under `folder`."""
    import hashlib

    def digest(folder: Path) -> dict:
        return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(Path(folder).rglob("*")) if p.suffix in (".png", ".gif")}

    return digest


@pytest.fixture(scope="session")
def gif_frames():
    """Return `gif_frames(path)`: the frames of a GIF as (H, W) uint8 gray arrays."""
    from PIL import Image

    def frames(path: Path) -> list[np.ndarray]:
        with Image.open(path) as im:
            out = []
            for i in range(im.n_frames):
                im.seek(i)
                out.append(np.asarray(im.convert("L")))
            return out

    return frames


@pytest.fixture(scope="session")
def browser():
    """Return headless Debian Chromium driven by Playwright (one for the session). Skips where Chromium is not
    installed."""
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (`make test` installs it with apt-get where it can; "
                    "run `apt-get install chromium` as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser):
    """Return `open_page(html_path or URL) -> (page, requests)`: the page in headless Debian Chromium, loaded,
    and the list of every URL it requested. Skips where Chromium is not installed."""
    pages = []

    def open_(path):
        page, requests = browser.new_page(viewport={"width": 1200, "height": 900}), []
        pages.append(page)
        page.on("request", lambda r: requests.append(r.url))
        page.goto(path if isinstance(path, str) else Path(path).as_uri())
        page.wait_for_load_state("load")
        return page, requests

    yield open_
    for page in pages:
        page.close()
