"""`render --follow` beside a training process."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline import run
from pipeline.cli import main
from pipeline.render import follow_run
from pipeline.settings import Execution, RenderSettings

EPOCHS = 6
TRAIN = f"""
import os, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras
from pipeline.callback import CheckpointForViz
from pipeline.data import shapes
from pipeline.model import ImageVAE

x, _ = shapes(128, size=16)
keras.utils.set_random_seed(0)
model = ImageVAE(image_size=16, latent_dim=2, filters=4)
model.compile(optimizer="adam")
slow = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: time.sleep(0.7))  # a slower model
model.fit(x, epochs={EPOCHS}, batch_size=64, verbose=0,
          callbacks=[CheckpointForViz(sys.argv[1], x, n_samples=4), slow])
"""


@pytest.mark.slow
def test_follow_renders_each_epoch_once_while_training_and_ends_equal_to_a_fresh_render(digests, tmp_path):
    run_dir, out = tmp_path / "run", tmp_path / "out"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    # the follower starts first: it waits for the run directory to appear
    follower = subprocess.Popen(
        [sys.executable, "-m", "pipeline.render", str(run_dir), "--out", str(out), "--follow", "--poll", "0.2",
         "--idle-timeout", "120", "--jobs", "1", "--sort-latents", "index", "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    trainer = subprocess.run([sys.executable, "-c", TRAIN, str(run_dir)], capture_output=True, text=True,
                             env=env, timeout=300)
    assert trainer.returncode == 0, trainer.stderr
    stdout, stderr = follower.communicate(timeout=300)
    assert follower.returncode == 0, stderr

    rendered = [int(e) for line in re.findall(r"rendered epochs: ([\d, ]+)", stdout) for e in line.split(",")]
    assert sorted(rendered) == list(range(1, EPOCHS + 1)), stdout  # each epoch exactly once
    assert len(re.findall("rendered epochs", stdout)) > 1, "rendered all at the end, not as they appeared"

    fresh = tmp_path / "fresh"
    result = CliRunner().invoke(main, [str(run_dir), "--out", str(fresh), "-j", "1", "--sort-latents", "index"])
    assert result.exit_code == 0, result.output
    assert digests(out) == digests(fresh)


def test_follow_stops_after_the_idle_timeout_when_the_run_never_finishes(tiny_run, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run.run_dir, run_dir)
    run.write_run(run_dir, {**run.read_run(run_dir), "finished": False})
    clock, sleeps = [0.0], []

    def fake_sleep(seconds):
        sleeps.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr("pipeline.render.time.monotonic", lambda: clock[0])
    settings = RenderSettings(out_dir=tmp_path / "o", execution=Execution(jobs=1))
    summaries = follow_run(run_dir, settings, poll=1.0, idle_timeout=5.0, sleep=fake_sleep)
    assert len(summaries) == 1 and summaries[0].rendered == [1, 2, 3]
    assert sleeps == [1.0] * 6  # polled, not busy-looped, and gave up after 5 s idle


def test_while_following_walk_rows_keep_index_order_and_are_sorted_once_the_run_finishes(tmp_path):
    import json

    run_dir = tmp_path / "run"
    shutil.copytree(Path(__file__).parent / "fixtures" / "run_0_1_0", run_dir)  # KL order [2, 0, 1]
    run.write_run(run_dir, {**run.read_run(run_dir), "finished": False})
    out, passes = tmp_path / "o", []

    def snapshot(summary):
        files = json.loads((out / "manifest.json").read_text())["files"]
        passes.append((files["walk/epoch_0002.png"]["settings"]["order"], "clusters.gif" in files))

    def fake_sleep(seconds):  # training ends during the first poll
        run.write_run(run_dir, {**run.read_run(run_dir), "finished": True})

    settings = RenderSettings(out_dir=out, views=("walk", "clusters"), execution=Execution(jobs=1))
    summaries = follow_run(run_dir, settings, poll=0.01, idle_timeout=60, sleep=fake_sleep, on_summary=snapshot)
    assert passes == [([0, 1, 2], False), ([2, 0, 1], True)]  # index order, no clusters; then sorted, drawn
    assert summaries[0].rendered == [1, 2] and summaries[1].rendered == [1, 2]  # the walk redrawn once


def test_while_training_the_gifs_and_plots_of_all_epochs_are_remade_at_most_every_30_s_and_at_the_end(tmp_path,
                                                                                                     monkeypatch):
    import json

    from pipeline import render as render_module

    run_dir = tmp_path / "run"
    shutil.copytree(Path(__file__).parent / "fixtures" / "run_0_1_0", run_dir)
    weights = sorted((run_dir / run.WEIGHTS_DIR).iterdir())
    held = {p: p.read_bytes() for p in weights[1:]}
    for p in held:
        p.unlink()
    run.write_run(run_dir, {**run.read_run(run_dir), "finished": False})
    out, clock, passes = tmp_path / "o", [0.0], []
    monkeypatch.setattr(render_module.time, "monotonic", lambda: clock[0])

    def snapshot(summary):
        files = json.loads((out / "manifest.json").read_text())["files"]
        passes.append((clock[0], summary.rendered, "walk.gif" in files and files["walk.gif"]["frames"][-1][0]))

    def fake_sleep(seconds):  # a checkpoint every 5 s; the run finishes after the last one
        clock[0] += 5.0
        if held:
            path = min(held)
            path.write_bytes(held.pop(path))
        else:
            run.write_run(run_dir, {**run.read_run(run_dir), "finished": True})

    settings = RenderSettings(out_dir=out, views=("recon", "walk"), execution=Execution(jobs=1))
    follow_run(run_dir, settings, poll=5.0, idle_timeout=60, sleep=fake_sleep, on_summary=snapshot)
    assert [p[1] for p in passes][:2] == [[1], [2]]
    assert passes[0][2] == "walk/epoch_0001.png"  # the first pass makes the GIF
    assert passes[1][2] == "walk/epoch_0001.png"  # 5 s later: epoch 2's frames are drawn, the GIF waits
    assert passes[-1][2] == "walk/epoch_0002.png"  # the last pass remakes it
