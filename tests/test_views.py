"""The view registry: a view defined outside pipeline/ (tests/toy_views.py), one of each kind the
built-in views lack, renders, animates, and appears in the report, the manifest and --views."""

import json

import numpy as np
import pytest
from PIL import Image

import toy_views  # noqa: F401  registers toy, spread and klmap
from pipeline import views

EPOCHS = 3  # of the tiny_run fixture


@pytest.fixture(scope="module")
def toy_out(render, tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("toy") / "o"
    result = render(tiny_run.run_dir, "--out", out, "--views", "recon,toy,spread,klmap", "--jobs", 2)
    assert result.exit_code == 0, result.output
    return out


def test_registered_views_follow_the_built_in_ones_and_are_cli_choices(render, tiny_run, tmp_path):
    assert views.names()[:len(views.BUILTIN)] == views.BUILTIN
    assert {"toy", "spread", "klmap"} <= set(views.names())
    result = render(tiny_run.run_dir, "--out", tmp_path, "--views", "nope")
    assert result.exit_code == 2 and ",".join(views.BUILTIN + ("toy", "spread", "klmap")) in result.output


def test_a_toy_frame_view_draws_a_frame_per_epoch_and_a_gif(toy_out, gif_frames):
    frames = sorted(p.name for p in (toy_out / "toy").iterdir())
    assert frames == [f"epoch_{e:04d}.png" for e in range(1, EPOCHS + 1)]
    tile, pad = 16, 2
    assert np.asarray(Image.open(toy_out / "toy" / frames[0])).shape == (tile + 2 * pad, 3 * (tile + pad) + pad)
    assert len(gif_frames(toy_out / "toy.gif")) == EPOCHS


def test_a_toy_analysis_view_writes_a_picture_per_epoch_from_encodings_alone(toy_out, gif_frames):
    assert len(list((toy_out / "spread").glob("epoch_*.png"))) == EPOCHS
    assert len(gif_frames(toy_out / "spread.gif")) == EPOCHS


def test_a_toy_run_picture_has_a_pixel_per_latent_and_epoch(toy_out):
    assert np.asarray(Image.open(toy_out / "klmap.png")).shape == (3, EPOCHS)  # latent_dim 3 of tiny_run


def test_toy_views_are_in_the_manifest_with_their_settings_and_in_the_report(toy_out):
    files = json.loads((toy_out / "manifest.json").read_text())["files"]
    assert files["toy/epoch_0001.png"]["settings"]["reach"] == 2.0
    assert files["klmap.png"]["settings"] == {"scale": 1000.0}
    assert "toy.gif" in files and "spread.gif" in files
    page = (toy_out / "index.html").read_text()
    for name, title in (("toy", "Toy frame"), ("spread", "Toy analysis"), ("klmap", "Toy KL map")):
        assert f'id="{name}"' in page and title in page


def test_a_re_render_of_toy_views_draws_nothing(render, tiny_run, toy_out):
    result = render(tiny_run.run_dir, "--out", toy_out, "--views", "recon,toy,spread,klmap", "--jobs", 1)
    assert "nothing to render" in result.output, result.output


def test_a_view_without_a_kind_or_a_taken_name_is_refused():
    class Nameless(views.View):
        title, kind, Settings = "x", views.FRAME, dict

    with pytest.raises(ValueError, match="`name`"):
        views.register(Nameless())
    with pytest.raises(ValueError, match="registered already"):
        views.register(type("Other", (toy_views.Toy,), {})())


def test_a_view_of_your_own_package_is_a_choice_after_import(tmp_path):
    """The user's path: a fresh process, `--import` names the module that registers the view."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    tests = Path(__file__).parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "pipeline.render", str(tests / "fixtures" / "run_0_1_0"), "--out",
                           str(tmp_path / "o"), "--views", "toy,klmap", "--import", "toy_views", "-j", "1"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "o" / "toy.gif").is_file() and (tmp_path / "o" / "klmap.png").is_file()
