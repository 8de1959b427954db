"""No TensorFlow or absl start-up lines in the output of `pipeline.render` and `pipeline.train` without -v,
from the parent or any worker; real warnings from those libraries still reach the user."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.quiet import is_noise

TESTS = Path(__file__).parent
RUN = TESTS / "fixtures" / "run_0_1_0"
ABSL = re.compile(r"^[IWEF]\d{4} |absl::InitializeLog|oneDNN|cuda|TensorFlow binary", re.M)


def cli(*args, env_extra=None, cwd=None):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "VAEVIZ_VERBOSE")}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", *map(str, args)], capture_output=True, text=True,
                          env={**env, **(env_extra or {})}, cwd=cwd, timeout=600)


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_render_prints_no_start_up_lines_from_the_parent_or_its_workers(tmp_path, jobs):
    proc = cli("pipeline.render", RUN, "--out", tmp_path / "o", "-j", jobs)
    assert proc.returncode == 0, proc.stderr
    assert not ABSL.search(proc.stdout + proc.stderr), proc.stderr


def test_with_v_the_start_up_lines_are_shown(tmp_path):
    proc = cli("pipeline.render", RUN, "--out", tmp_path / "o", "-j", 1, "-v")
    assert proc.returncode == 0, proc.stderr
    assert ABSL.search(proc.stderr), "expected TensorFlow's start-up lines with -v"


def test_a_workers_real_warning_still_reaches_the_user(tmp_path):
    proc = cli("pipeline.render", RUN, "--out", tmp_path / "o", "-j", 2, "--import", "noisy_plugin")
    assert proc.returncode == 0, proc.stderr
    assert "a real warning from a worker" in proc.stderr
    assert "cudart_stub" not in proc.stderr and "absl::InitializeLog" not in proc.stderr


def test_training_prints_no_start_up_lines(tmp_path):
    proc = cli("pipeline.train", "--data", "shapes", "--run", tmp_path / "run", "--epochs", 1, "--image-size", 16,
               "--n-images", 128, "--filters", 4, "--n-eval", 0)
    assert proc.returncode == 0, proc.stderr
    assert not ABSL.search(proc.stdout + proc.stderr), proc.stderr


def test_only_known_start_up_noise_is_dropped():
    assert is_noise("I0000 00:00:1795703418.488479    4497 cudart_stub.cc:31] Could not find cuda drivers")
    assert is_noise("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR")
    assert not is_noise("W1126 12:00:00.000000 1 my_library.cc:7] a real warning")
    assert not is_noise("Traceback (most recent call last):")
