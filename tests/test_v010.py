"""Runs and outputs of vaeviz 0.1.0 (tag v0.1.0) still render, to the very pixels 0.1.0 drew.

The fixtures were made by tests/fixtures/make_v010.py at v0.1.0: a tiny run
directory, the outputs 0.1.0 rendered from it, and the SHA-256 of every frame's
pixels under each of its RENDERS settings.
"""

import json
import shutil
from pathlib import Path

import pytest

from fixtures.make_v010 import RENDERS, pixel_hashes
from pipeline import plan

FIXTURES = Path(__file__).parent / "fixtures"
RUN = FIXTURES / "run_0_1_0"
PIXELS = json.loads((FIXTURES / "pixels_0_1_0.json").read_text())


@pytest.mark.parametrize("name", list(RENDERS))
def test_a_0_1_0_run_renders_the_pixels_0_1_0_drew(render, tmp_path, name):
    result = render(RUN, "--out", tmp_path / "o", "--jobs", 1, *RENDERS[name])
    assert result.exit_code == 0, result.output
    assert pixel_hashes(tmp_path / "o") == PIXELS[name]


def test_outputs_written_by_0_1_0_are_drawn_again_under_the_new_manifest(render, tmp_path):
    out = tmp_path / "o"
    shutil.copytree(FIXTURES / "outputs_0_1_0", out)
    assert json.loads((out / plan.MANIFEST).read_text())["version"] == 1
    result = render(RUN, "--out", out, "--jobs", 1, *RENDERS["all"])
    assert result.exit_code == 0, result.output
    assert "rendered 2 checkpoints" in result.output
    assert json.loads((out / plan.MANIFEST).read_text())["version"] == plan.MANIFEST_VERSION
    assert pixel_hashes(out) == PIXELS["all"]
    assert "nothing to render" in render(RUN, "--out", out, "--jobs", 1, *RENDERS["all"]).output
