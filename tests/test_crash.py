"""Crash safety of CheckpointForViz: SIGKILL a training process at random moments,
again and again into the same run directory, and check after every kill that
everything under a final name is whole and every listed checkpoint loads."""

import csv
import os
import random
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from pipeline import run

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(__file__).with_name("crash_train.py")
N_IMAGES, N_SAMPLES, SEED = 256, 4, 0
# Two lanes of kills run side by side (one run directory each), since a training process
# takes ~3 s to import TensorFlow: 2 x 10 kills fit the time budget on two cores, where
# 20 in a row would not. Each lane restarts into its SAME run directory, so every
# round after a lane's first also exercises resuming (numbering, samples, run.json).
LANES, KILLS_PER_LANE = 2, 10


def kill_delay(rng: random.Random) -> float:
    """Seconds after `training` is printed: a quarter right at the start (run.json, samples.h5), the rest in epochs."""
    return rng.uniform(0.0, 0.3) if rng.random() < 0.25 else rng.uniform(0.3, 1.8)


def entries(run_dir: Path) -> set:
    """Return the names in the run directory and its weights folder (temporary files included)."""
    found = set()
    for folder in (run_dir, run_dir / run.WEIGHTS_DIR):
        try:
            found.update(f"{folder.name}/{e.name}" for e in os.scandir(folder))
        except FileNotFoundError:
            pass
    return found


class Lane:
    """One run directory, trained by a fresh process per round and killed at a seeded random moment."""

    def __init__(self, index: int, tmp_path: Path, images: Path):
        self.run_dir = tmp_path / f"run{index}"
        self.images, self.rng, self.index = images, random.Random(1000 + index), index
        self.rounds, self.proc, self.kill_at, self.started = 0, None, None, None
        self.on_write, self.seen = False, None
        self.stderr = open(tmp_path / f"lane{index}.stderr", "wb")
        self.verified = {}  # checkpoint path -> (size, mtime_ns) once it loaded
        self.new_per_round = []
        self.models = None

    def start(self):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, str(SCRIPT), str(self.run_dir), str(self.images),
                                      str(SEED + self.rounds)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                     stderr=self.stderr)
        self.started, self.kill_at = time.monotonic(), None

    def poll(self):
        """Arm the kill once the process says it is training; fail if it died on its own."""
        if self.proc.poll() is not None:
            self.stderr.flush()
            pytest.fail(f"lane {self.index} round {self.rounds}: training exited by itself "
                        f"({self.proc.returncode}):\n{Path(self.stderr.name).read_text()[-3000:]}")
        if self.kill_at is None and select.select([self.proc.stdout], [], [], 0)[0]:
            line = self.proc.stdout.readline()
            assert line.strip() == b"training", line
            self.kill_at = time.monotonic() + kill_delay(self.rng)
            # Half the rounds then wait for the next file to appear and kill at once: a write in
            # progress, which a kill at a random moment alone hits only a few times in a hundred.
            self.on_write, self.seen = self.rng.random() < 0.5, None
        if self.kill_at is None and time.monotonic() - self.started > 90:
            self.proc.kill()
            pytest.fail(f"lane {self.index}: training did not start within 90 s")

    def due(self) -> bool:
        """Return whether to kill now."""
        now = time.monotonic()
        if self.kill_at is None or now < self.kill_at:
            return False
        if not self.on_write or now > self.kill_at + 3:
            return True
        names = entries(self.run_dir)
        if self.seen is None:
            self.seen = names
        return bool(names - self.seen)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc.stdout.close()
        assert self.proc.returncode == -signal.SIGKILL
        self.rounds, self.kill_at = self.rounds + 1, None


def check_history(path: Path) -> None:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows and rows[0][0] == "epoch", rows[:1]
    epochs = []
    for row in rows[1:]:
        assert len(row) == len(rows[0]), f"history.csv has a cut row: {row}"
        epochs.append(int(row[0]))
        for v in row[1:]:
            if v:
                float(v)  # a cut number would not parse
    assert epochs == sorted(set(epochs)), f"history.csv epochs not increasing: {epochs}"


def check_run_dir(lane: Lane, x: np.ndarray) -> None:
    """Everything under a final name is whole; every listed checkpoint loads; old ones never change."""
    from pipeline.models import Models

    run_dir = lane.run_dir
    finals = {run.RUN_JSON, run.SAMPLES_H5, run.HISTORY_CSV}
    for path in run_dir.rglob("*"):
        rel = path.relative_to(run_dir).as_posix()
        if path.is_dir():
            assert rel == run.WEIGHTS_DIR, rel
        elif path.name.startswith("."):
            assert path.name.endswith(".tmp"), f"unexpected hidden file {rel}"
        else:
            assert rel in finals or re.fullmatch(rf"{run.WEIGHTS_DIR}/epoch_\d{{4,}}\.weights\.h5", rel), \
                f"unexpected file {rel}"
    checkpoints = run.list_checkpoints(run_dir)
    assert not any(c.name.startswith(".") for c in checkpoints)

    if not (run_dir / run.RUN_JSON).exists():  # killed before the first run.json: nothing else yet
        assert not checkpoints
        lane.new_per_round.append(0)
        return
    info = run.read_run(run_dir)
    assert info["latent_dim"] == 2 and info["input_shape"] == [16, 16, 1]
    if info.get("samples") is not None:
        assert (run_dir / run.SAMPLES_H5).is_file(), "run.json names samples that are not there"
    if (run_dir / run.SAMPLES_H5).exists():
        samples = run.read_samples(run_dir / run.SAMPLES_H5)
        expected = run.choose_indices(N_IMAGES, N_SAMPLES, SEED)
        np.testing.assert_array_equal(samples["indices"], expected)
        np.testing.assert_array_equal(samples["images"], x[expected])
    if (run_dir / run.HISTORY_CSV).exists():
        check_history(run_dir / run.HISTORY_CSV)

    if lane.models is None:
        lane.models = Models(info)
    new = 0
    for c in checkpoints:
        stamp = (c.size, c.mtime_ns)
        if c.path in lane.verified:
            assert lane.verified[c.path] == stamp, f"{c.name} was rewritten by a later round"
            continue
        parts = run.read_weights(c.path)
        assert len(parts["encoder"]) and len(parts["decoder"])
        lane.models.load(c.path)
        lane.verified[c.path] = stamp
        new += 1
    assert set(lane.verified) == {c.path for c in checkpoints}, "a checkpoint disappeared"
    lane.new_per_round.append(new)


@pytest.mark.slow
def test_sigkill_at_random_moments_never_leaves_a_broken_run(tmp_path):
    import keras  # noqa: F401 - imported now, not in the middle of the kills (the first check needs it)

    from pipeline.data import shapes
    from pipeline.cli import main

    x, _ = shapes(N_IMAGES, size=16, seed=0)
    images = tmp_path / "x.npy"
    np.save(images, x)
    lanes = [Lane(i, tmp_path, images) for i in range(LANES)]
    try:
        for lane in lanes:
            lane.start()
        while any(lane.proc is not None for lane in lanes):
            for lane in lanes:
                if lane.proc is None:
                    continue
                lane.poll()
                if lane.due():
                    lane.kill()
                    check_run_dir(lane, x)
                    if lane.rounds < KILLS_PER_LANE:
                        lane.start()
                    else:
                        lane.proc = None
            watching = any(lane.on_write and lane.kill_at and time.monotonic() >= lane.kill_at for lane in lanes)
            time.sleep(0.001 if watching else 0.01)
    finally:
        for lane in lanes:
            if lane.proc is not None and lane.proc.poll() is None:
                lane.proc.kill()
                lane.proc.wait()
            lane.stderr.close()

    for lane in lanes:
        left = sorted(p.name for p in lane.run_dir.rglob(".*"))
        print(f"lane {lane.index}: {len(lane.verified)} checkpoints, new per round {lane.new_per_round}, "
              f"temporary files left by kills mid-write: {left}")
        assert lane.rounds == KILLS_PER_LANE
        # resume was exercised: rounds after the first added checkpoints, numbered on
        assert sum(lane.new_per_round[1:]) > 0, lane.new_per_round
        out = tmp_path / f"out{lane.index}"
        result = CliRunner().invoke(main, [str(lane.run_dir), "--out", str(out), "--jobs", "1"])
        assert result.exit_code == 0, result.output
        epochs = [c.epoch for c in run.list_checkpoints(lane.run_dir)]
        assert sorted(p.name for p in (out / "recon").iterdir()) == [f"epoch_{e:04d}.png" for e in epochs]
