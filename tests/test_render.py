"""The render pipeline, end to end through the CLI: files, layout, selection,
determinism, incrementality, portability and exit codes."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from pipeline import run
from pipeline.views.base import LABEL_WIDTH
from pipeline.cli import main

EPOCHS, LATENT, N_SAMPLES, SIZE, PAD, STEPS = 12, 3, 9, 16, 2, 10


@pytest.fixture(scope="module")
def run12(tmp_path_factory, shapes16, make_tiny_vae):
    """Return a run directory of 12 epochs (latent_dim 3, 9 samples of 16x16)."""
    from pipeline.callback import CheckpointForViz

    run_dir = tmp_path_factory.mktemp("render") / "run12"
    make_tiny_vae(latent_dim=LATENT).fit(
        shapes16[:128], epochs=EPOCHS, batch_size=64, verbose=0,
        callbacks=[CheckpointForViz(run_dir, shapes16, n_samples=N_SAMPLES)])
    return run_dir


@pytest.fixture(scope="module")
def rendered(render, run12, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "o"
    result = render(run12, "--out", out, "--jobs", 1)
    assert result.exit_code == 0, result.output
    return out


def test_one_recon_and_one_walk_frame_per_epoch(rendered):
    for view in ("recon", "walk"):
        names = sorted(p.name for p in (rendered / view).iterdir())
        assert names == [f"epoch_{e:04d}.png" for e in range(1, EPOCHS + 1)]


def test_walk_has_one_row_per_latent_and_steps_columns(rendered):
    walk = np.asarray(Image.open(rendered / "walk" / "epoch_0012.png"))
    assert walk.shape == (LATENT * (SIZE + PAD) + PAD, LABEL_WIDTH + STEPS * (SIZE + PAD) + PAD)


def test_recon_layout_equals_inputs_layout(rendered):
    inputs = Image.open(rendered / "inputs.png")
    recon = Image.open(rendered / "recon" / "epoch_0001.png")
    assert inputs.size == recon.size == (3 * (SIZE + PAD) + PAD,) * 2
    assert inputs.mode == recon.mode == "L"  # 1-channel data stays grayscale


def test_inputs_png_shows_the_samples_exactly(rendered, run12):
    samples = run.read_samples(run12 / run.SAMPLES_H5)["images"]
    inputs = np.asarray(Image.open(rendered / "inputs.png"))
    first_tile = inputs[PAD:PAD + SIZE, PAD:PAD + SIZE]
    np.testing.assert_array_equal(first_tile, np.rint(samples[0, ..., 0] * 255).astype(np.uint8))


def test_each_gif_has_one_frame_per_epoch_in_epoch_order_captioned_above_the_grid(gif_frames, rendered):
    for view in ("recon", "walk"):
        frames = gif_frames(rendered / f"{view}.gif")
        assert len(frames) == EPOCHS
        for epoch, frame in enumerate(frames, start=1):
            png = np.asarray(Image.open(rendered / view / f"epoch_{epoch:04d}.png"))
            band = frame.shape[0] - png.shape[0]
            assert band > 0
            np.testing.assert_array_equal(frame[band:], png)  # the caption never covers a tile
    with Image.open(rendered / "walk.gif") as im:
        assert im.info["loop"] == 0 and im.info["duration"] == 200  # forever, 5 fps


def test_every_5_of_12_renders_5_10_and_12(render, gif_frames, run12, tmp_path):
    result = render(run12, "--out", tmp_path, "--every", 5, "--jobs", 1)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "recon").iterdir()) == \
        ["epoch_0005.png", "epoch_0010.png", "epoch_0012.png"]
    assert len(gif_frames(tmp_path / "walk.gif")) == 3


def test_epochs_picks_explicitly(render, run12, tmp_path):
    assert render(run12, "--out", tmp_path, "--epochs", "1,3-4", "-j", 1).exit_code == 0
    assert sorted(p.name for p in (tmp_path / "walk").iterdir()) == \
        ["epoch_0001.png", "epoch_0003.png", "epoch_0004.png"]


def test_two_jobs_give_the_same_bytes_as_one_and_as_a_second_render(render, digests, run12, rendered, tmp_path):
    result = render(run12, "--out", tmp_path / "two", "--jobs", 2)
    assert result.exit_code == 0, result.output
    again = render(run12, "--out", tmp_path / "again", "--jobs", 1)
    assert again.exit_code == 0
    reference = digests(rendered)
    assert len(reference) == 2 * EPOCHS + 4  # frames, inputs.png, two GIFs, history.png
    assert digests(tmp_path / "two") == reference
    assert digests(tmp_path / "again") == reference


def test_second_run_renders_nothing_writes_nothing_and_does_not_import_tensorflow(run12, rendered, tmp_path):
    out = tmp_path / "o"
    shutil.copytree(rendered, out)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    code = ("import sys\nfrom pipeline.cli import main\n"
            f"try:\n    main([{str(run12)!r}, '--out', {str(out)!r}])\n"
            "except SystemExit as e:\n    assert e.code in (0, None), e.code\n"
            "print('TF_IMPORTED' if 'tensorflow' in sys.modules else 'TF_NOT_IMPORTED')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "nothing to render" in proc.stdout
    assert "TF_NOT_IMPORTED" in proc.stdout
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before  # and writes nothing


def test_touching_one_checkpoint_rerenders_only_that_epoch_and_the_gifs(render, run12, rendered, tmp_path):
    run_dir, out = tmp_path / "run", tmp_path / "out"
    shutil.copytree(run12, run_dir)
    shutil.copytree(rendered, out)
    # the manifest stamps checkpoints by name, size and mtime: copying changed the mtimes
    assert render(run_dir, "--out", out, "-j", 1).exit_code == 0
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    gif_before = (out / "walk.gif").stat().st_mtime_ns
    ckpt = run_dir / run.WEIGHTS_DIR / run.checkpoint_name(7)
    os.utime(ckpt, ns=(ckpt.stat().st_atime_ns, ckpt.stat().st_mtime_ns + 10**9))
    result = render(run_dir, "--out", out, "-j", 1)
    assert result.exit_code == 0
    assert "rendered 1 checkpoints (2 frames)" in result.output
    changed = {p.relative_to(out).as_posix() for p, t in before.items() if p.stat().st_mtime_ns != t}
    assert changed == {"recon/epoch_0007.png", "walk/epoch_0007.png"}
    assert (out / "walk.gif").stat().st_mtime_ns != gif_before


def test_a_copied_run_renders_the_same_without_training_code_or_data(digests, run12, rendered, tmp_path):
    elsewhere = tmp_path / "elsewhere" / "run12"
    shutil.copytree(run12, elsewhere)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-m", "pipeline.render", str(elsewhere), "--out", str(out), "-j", "1"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert digests(out) == digests(rendered)


def test_default_out_is_outputs_slash_run_name(render, run12, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert render(run12, "--epochs", "12", "-j", 1).exit_code == 0
    assert (tmp_path / "outputs" / "run12" / "walk" / "epoch_0012.png").is_file()


def test_help_does_not_import_tensorflow():
    code = ("import sys\nfrom click.testing import CliRunner\nfrom pipeline.cli import main\n"
            "r = CliRunner().invoke(main, ['--help'])\nassert r.exit_code == 0 and '--every' in r.output\n"
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "False"]


# --- errors ----------------------------------------------------------------


def test_a_folder_that_is_not_a_run_exits_2_saying_what_is_missing(render, tmp_path):
    result = render(tmp_path, "--out", tmp_path / "o")
    assert result.exit_code == 2
    assert "run.json" in result.output and "Traceback" not in result.output


def test_a_run_without_checkpoints_exits_2(render, run12, tmp_path):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    shutil.copy(run12 / run.RUN_JSON, run_dir)
    result = render(run_dir, "--out", tmp_path / "o")
    assert result.exit_code == 2 and "no checkpoints" in result.output


def test_bad_usage_exits_2(render, run12, tmp_path):
    assert render(run12, "--epochs", "x-y").exit_code == 2
    assert render(run12, "--walk-range", "0.9", "0.1").exit_code == 2
    assert render(run12, "--out", tmp_path, "--channels", "0,3").exit_code == 2


def test_a_corrupt_checkpoint_is_named_the_others_render_and_exit_is_1(gif_frames, run12, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(run12, run_dir)
    bad = run_dir / run.WEIGHTS_DIR / run.checkpoint_name(5)
    bad.write_bytes(bad.read_bytes()[:1000])  # truncated
    (run_dir / run.WEIGHTS_DIR / run.checkpoint_name(6)).write_bytes(b"")  # zero bytes
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [str(run_dir), "--out", str(out), "-j", "1"])
    assert result.exit_code == 1
    assert "epoch_0005.weights.h5" in result.output and "epoch_0006.weights.h5: empty file" in result.output
    assert "Traceback" not in result.output
    assert len(list((out / "recon").iterdir())) == EPOCHS - 2
    assert len(gif_frames(out / "recon.gif")) == EPOCHS - 2


def test_render_leaves_no_temporary_files(rendered):
    assert [p for p in rendered.rglob("*") if p.name.startswith(".")] == []


# --- runs without samples --------------------------------------------------


@pytest.fixture(scope="module")
def bare_run(tmp_path_factory, shapes16, make_tiny_vae):
    """Return a run trained with the bare CheckpointForViz(run_dir): no samples.h5."""
    from pipeline.callback import CheckpointForViz

    run_dir = tmp_path_factory.mktemp("bare") / "bare"
    make_tiny_vae(latent_dim=LATENT).fit(shapes16[:64], epochs=2, batch_size=64, verbose=0,
                                         callbacks=[CheckpointForViz(run_dir)])
    return run_dir


def test_a_run_without_samples_renders_the_walk_only_and_says_why(render, bare_run, tmp_path):
    result = render(bare_run, "--out", tmp_path, "-j", 1)
    assert result.exit_code == 0, result.output
    assert "walk only" in result.output and "--data" in result.output
    assert (tmp_path / "walk.gif").is_file()
    assert not (tmp_path / "recon").exists() and not (tmp_path / "inputs.png").exists()


def test_data_gives_a_bare_run_its_samples_chosen_with_the_runs_seed(render, bare_run, shapes16, tmp_path):
    data = tmp_path / "x.npy"
    np.save(data, shapes16)
    out = tmp_path / "out"
    result = render(bare_run, "--out", out, "--data", data, "-j", 1)
    assert result.exit_code == 0, result.output
    recorded = run.read_samples(out / run.SAMPLES_H5)
    expected = run.choose_indices(len(shapes16), 64, 0)
    np.testing.assert_array_equal(recorded["indices"], expected)
    np.testing.assert_array_equal(recorded["images"], shapes16[expected])
    assert (out / "inputs.png").is_file() and len(list((out / "recon").iterdir())) == 2
    # the same data again: the samples file is kept, nothing re-renders
    assert "nothing to render" in render(bare_run, "--out", out, "--data", data, "-j", 1).output


# --- every run under checkpoints/ ------------------------------------------

FIXTURE_RUN = Path(__file__).parent / "fixtures" / "run_0_1_0"  # 2 epochs


@pytest.fixture
def two_runs(tmp_path, monkeypatch):
    """A working folder whose checkpoints/ holds runs `a` and `b` and a stray folder; cwd set to it."""
    for name in ("a", "b"):
        shutil.copytree(FIXTURE_RUN, tmp_path / "checkpoints" / name)
    (tmp_path / "checkpoints" / "stray").mkdir()
    (tmp_path / "checkpoints" / "stray" / "notes.txt").write_text("not a run\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_without_a_run_dir_every_run_under_checkpoints_renders_into_outputs(render, two_runs):
    result = render("--every", 5, "-j", 1)
    assert result.exit_code == 0, result.output
    for name in ("a", "b"):
        assert sorted(p.name for p in (two_runs / "outputs" / name / "walk").iterdir()) == ["epoch_0002.png"]
        assert f"{name}: rendered 1 checkpoints" in result.output
    assert "stray" in result.output and "not a run directory" in result.output
    assert not (two_runs / "outputs" / "stray").exists()


def test_without_a_run_dir_out_is_the_parent_of_each_runs_outputs(render, two_runs):
    assert render("--out", "elsewhere", "-j", 1).exit_code == 0
    assert sorted(p.name for p in (two_runs / "elsewhere").iterdir()) == ["a", "b"]


def test_the_exit_code_is_the_worst_of_the_runs(render, two_runs):
    (two_runs / "checkpoints" / "b" / run.RUN_JSON).write_text("{broken")
    result = render("-j", 1)
    assert result.exit_code == 2
    assert "a: rendered 2 checkpoints" in result.output and "b: error:" in result.output
    assert (two_runs / "outputs" / "a" / "index.html").is_file()


def test_without_runs_or_with_follow_it_says_what_to_pass(render, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    result = render()
    assert result.exit_code == 2 and "holds no run directories" in result.output
    result = render("--follow")
    assert result.exit_code == 2 and "RUN_DIR" in result.output


# --- long runs stay small ---------------------------------------------------------


def test_frame_epochs_keep_the_first_and_last_and_spread_the_rest():
    from pipeline.animate import frame_epochs

    epochs = list(range(1, 1001))
    even = frame_epochs(epochs, 100)
    assert len(even) == 100 and even[0] == 1 and even[-1] == 1000
    gaps = np.diff(even)
    assert gaps.max() - gaps.min() <= 1  # evenly spread
    log = frame_epochs(epochs, 100, "log")
    assert log[0] == 1 and log[-1] == 1000 and len(log) <= 100
    assert np.diff(log)[:10].mean() < np.diff(log)[-10:].mean()  # denser early
    assert frame_epochs([3, 5], 100) == [3, 5]


def test_max_frames_bounds_the_gif_while_every_png_and_the_slider_keep_every_epoch(
        render, run12, tmp_path, gif_frames):
    import json

    result = render(run12, "--out", tmp_path, "--max-frames", 4, "-j", 1)
    assert result.exit_code == 0, result.output
    assert len(gif_frames(tmp_path / "walk.gif")) == 4
    used = [name for name, _ in json.loads((tmp_path / "manifest.json").read_text())["files"]["walk.gif"]["frames"]]
    assert used[0] == "walk/epoch_0001.png" and used[-1] == f"walk/epoch_{EPOCHS:04d}.png"
    assert len(list((tmp_path / "walk").glob("epoch_*.png"))) == EPOCHS
    page = (tmp_path / "index.html").read_text()
    assert all(f"walk/epoch_{e:04d}.png" in page for e in range(1, EPOCHS + 1))  # the slider reaches each


def test_the_default_jobs_is_one_for_little_work_and_every_core_for_much():
    from pipeline import execute

    assert execute.default_jobs(2.0, cores=2) == 1
    assert execute.default_jobs(2 * execute.WORKER_STARTUP_S + 1, cores=2) == 2
    assert execute.default_jobs(1000.0, cores=1) == 1
    assert execute.default_jobs(1000.0, cores=8) == 8


def test_a_draw_of_fewer_tasks_than_workers_gives_every_worker_a_job_that_warms_it(tiny_run):
    """The last checkpoint is drawn alone first (its KL ranking): the other workers get a job with no tasks,
    which starts their TensorFlow and builds the models, so they are warm when the frames are handed out."""
    from pipeline import execute

    fields = dict(run_dir=str(tiny_run.run_dir), out_dir="unused", samples_path=None, eval_path=None,
                  safe_mode=True, imports=())
    jobs = execute.chunked(["the last checkpoint's task"], n_jobs=3, **fields)
    assert [len(j.tasks) for j in jobs] == [1, 0, 0]
    assert len({j.threads for j in jobs}) == 1
    assert [len(j.tasks) for j in execute.chunked(["a"], n_jobs=1, **fields)] == [1]  # inline: no warm-up
    many = execute.chunked(list("abcdefghij"), n_jobs=2, **fields)  # enough tasks: no job without
    assert all(j.tasks for j in many) and sum(len(j.tasks) for j in many) == 10
    execute._MODELS.clear()
    assert execute.render_chunk(jobs[1]) == []
    assert any(key[0] == str((tiny_run.run_dir / "run.json").resolve()) for key in execute._MODELS)  # built
