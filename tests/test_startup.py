"""A render process starts Keras without the optional packages Keras and TensorFlow import only for
features no render uses (pipeline/startup.py), and they stay importable for what does use them."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.startup import LEAN, UNUSED

TESTS = Path(__file__).parent
RUN = TESTS / "fixtures" / "run_0_1_0"
INSTALLED = [n for n in UNUSED if importlib.util.find_spec(n) is not None]

PROBE = """
import sys
from pipeline.startup import import_keras
keras = import_keras()
before = [n for n in {names!r} if n in sys.modules]
import numpy as np
model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
out = keras.ops.convert_to_numpy(model(np.ones((1, 3), np.float32)))
import sklearn.decomposition  # vaeviz's own analyses import it later, normally
print(before, out.shape, sklearn.decomposition.PCA.__name__)
"""


def _python(code, **env):
    env = {**{k: v for k, v in os.environ.items() if k not in (LEAN, "KERAS_BACKEND")}, **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.skipif(not INSTALLED, reason="none of scikit-learn, pandas, JAX installed: nothing to hide")
def test_a_lean_process_starts_keras_without_the_unused_packages_and_can_import_them_afterwards():
    lean = _python(PROBE.format(names=UNUSED), **{LEAN: "1"})
    assert lean.returncode == 0, lean.stderr
    assert lean.stdout.split() == ["[]", "(1,", "2)", "PCA"]
    usual = _python(PROBE.format(names=UNUSED))  # the user's own process: Keras imports as it always does
    assert usual.returncode == 0, usual.stderr
    assert usual.stdout.startswith(str(INSTALLED)), usual.stdout  # what the lean start saved


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX not installed")
def test_jax_is_not_hidden_when_it_is_the_keras_backend():
    lean = _python(PROBE.format(names=("jax",)), **{LEAN: "1", "KERAS_BACKEND": "jax"})
    assert lean.returncode == 0, lean.stderr
    assert lean.stdout.startswith("['jax']"), lean.stdout


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_render_cli_and_its_workers_start_lean(tmp_path, jobs):
    probe = tmp_path / "probe.jsonl"
    env = {k: v for k, v in os.environ.items() if k != LEAN}
    env.update(PYTHONPATH=os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")]), PROBE_IMPORTS=str(probe))
    proc = subprocess.run([sys.executable, "-m", "pipeline.render", str(RUN), "--out", str(tmp_path / "o"),
                           "-j", str(jobs), "--import", "probe_imports"], capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    seen = [json.loads(line) for line in probe.read_text().splitlines()]
    drawing = [s for s in seen if s["keras"]]  # the processes that drew (the parent of workers draws nothing)
    assert len({s["pid"] for s in drawing}) == jobs, seen
    assert all(s["imported"] == [] for s in drawing), seen


COMMAND = """
import sys
import click
from pipeline.startup import run_command

@click.command()
@click.argument("how")
def main(how):
    click.echo("partial line, no newline", nl=False)
    if how == "usage":
        raise click.UsageError("bad usage")
    if how == "message":
        sys.exit("a message")
    if how == "three":
        sys.exit(3)
    if how == "atexit":
        import atexit
        atexit.register(print, " and the atexit handler's line", end="")
    if how == "pool":
        import multiprocessing, time
        child = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(0.5,))
        child.start()  # alive at the end: the usual exit joins it

run_command(main)
print("never reached")
"""


@pytest.mark.parametrize("how, code, err", [("ok", 0, ""), ("three", 3, ""), ("message", 1, "a message"),
                                            ("usage", 2, "bad usage"), ("pool", 0, ""), ("atexit", 0, "")])
def test_run_command_ends_the_process_with_the_commands_code_its_output_flushed_and_atexit_run(how, code, err):
    proc = subprocess.run([sys.executable, "-c", COMMAND, how], capture_output=True, text=True, timeout=120)
    assert proc.returncode == code, proc.stderr
    # flushed; atexit handlers ran; nothing after the command did
    assert proc.stdout == "partial line, no newline" + (" and the atexit handler's line" if how == "atexit" else "")
    assert err in proc.stderr


def test_run_command_leaves_a_profilers_exit_alone(tmp_path):
    """python -m cProfile -o FILE writes FILE once the command returns: the usual exit lets it."""
    script = tmp_path / "command.py"
    script.write_text(COMMAND)
    out = tmp_path / "command.prof"
    proc = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(out), str(script), "ok"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.is_file() and out.stat().st_size > 0
