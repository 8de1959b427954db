"""One source of truth: a view's settings object is what its workers draw with and what the manifest
records, so each setting changed alone redraws exactly the views that read it, and nothing else."""

import dataclasses
import os
import shutil
from pathlib import Path

import pytest

from pipeline import settings as settings_mod

RUN = Path(__file__).parent / "fixtures" / "run_0_1_0"  # 2 epochs, latent_dim 3, KL ranking [2, 0, 1]
ALL = ("recon", "walk", "manifold", "samples", "interp", "traversal")
ARGS = ["--views", ",".join(ALL), "--jobs", "1"]

# option -> (the settings field it sets, the views whose pictures must be drawn again)
CHANGES = {
    ("--pad", "3"): ("picture.pad", set(ALL)),
    ("--scale", "2"): ("picture.scale", set(ALL)),
    ("--channels", "0"): ("picture.channels", set(ALL)),
    ("--normalize", "per-image"): ("picture.normalize", set(ALL)),
    ("--walk-steps", "5"): ("latents.walk_steps", {"walk", "manifold", "traversal"}),
    ("--walk-range", "0.1", "0.9"): ("latents.walk_range", {"walk", "manifold", "traversal"}),
    ("--walk-anchor", "posterior:1"): ("latents.walk_anchor", {"walk"}),
    ("--sort-latents", "index"): ("latents.sort_latents", {"walk", "manifold", "traversal"}),
    ("--active-kl", "0.5"): ("latents.active_kl", {"walk", "traversal"}),
    ("--max-latents", "2"): ("latents.max_latents", {"walk", "traversal"}),
    ("--manifold-dims", "0,1"): ("latents.manifold_dims", {"manifold"}),
    ("--traverse-epoch", "1"): ("latents.traverse_epoch", {"traversal"}),
    ("--n-prior", "5"): ("latents.n_prior", {"samples"}),
    ("--conditions", "0"): ("latents.conditions", set()),  # this run is not conditional: nothing reads it
    ("--clusters-proj", "pca"): ("latents.clusters_proj", set()),  # clusters is not among ALL here
    ("--interp-pairs", "2"): ("latents.interp_pairs", {"interp"}),
    ("--interp-steps", "4"): ("latents.interp_steps", {"interp"}),
    ("--fps", "2"): ("animation.fps", {"traversal"}),
    ("--mp4",): ("animation.mp4", set()),
    ("--tensorboard",): ("animation.tensorboard", set()),
    ("--max-frames", "2"): ("animation.max_frames", set()),  # GIFs rebuilt from the same frames
    ("--frame-spacing", "log"): ("animation.frame_spacing", set()),
}
RESOLVED = {"picture.value_range", "picture.pad_value"}  # read from the run, not set by an option
FOLLOW = {"animation.deferred"}  # set by --follow while the run trains (tests/test_follow.py), not by an option


def stamps(out: Path) -> dict:
    return {str(p.relative_to(out)): (os.stat(p).st_ino, os.stat(p).st_mtime_ns) for p in out.rglob("*") if p.is_file()}


def redrawn(before: dict, after: dict) -> set:
    """Return the views with a picture (per-epoch frame, or traversal.gif) written again."""
    names = [n for n in after if n not in before or after[n] != before[n]]
    return {n.split("/")[0] for n in names if "/epoch_" in n and n.endswith(".png")} | \
        ({"traversal"} if "traversal.gif" in names else set())


@pytest.fixture(scope="module")
def baseline(render, tmp_path_factory):
    out = tmp_path_factory.mktemp("settings") / "o"
    assert render(RUN, "--out", out, *ARGS).exit_code == 0
    return out


def test_every_option_of_the_picture_latents_and_animation_settings_is_checked_here():
    fields = {f"{group}.{f.name}" for group, cls in (("picture", settings_mod.Picture),
                                                     ("latents", settings_mod.Latents),
                                                     ("animation", settings_mod.Animation))
              for f in dataclasses.fields(cls)}
    assert {field for field, _ in CHANGES.values()} == fields - RESOLVED - FOLLOW


@pytest.mark.parametrize("option", list(CHANGES), ids=lambda o: o[0])
def test_a_setting_changed_alone_redraws_exactly_the_views_that_read_it(render, baseline, tmp_path, option):
    out = tmp_path / "o"
    shutil.copytree(baseline, out)
    before = stamps(out)
    result = render(RUN, "--out", out, *ARGS, *option)
    assert result.exit_code == 0, result.output
    assert redrawn(before, stamps(out)) == CHANGES[option][1]


def test_the_same_settings_again_redraw_nothing(render, baseline, tmp_path):
    out = tmp_path / "o"
    shutil.copytree(baseline, out)
    before = stamps(out)
    assert "nothing to render" in render(RUN, "--out", out, *ARGS).output
    assert stamps(out) == before
