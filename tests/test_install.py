"""What each install brings: `pip install vaeviz` is the training callback on any Keras 3 backend, without
TensorFlow; `vaeviz[render]` adds the render. The render's commands started without it exit 2 saying what to
install. The slow test installs the project into a fresh virtual environment with Keras on JAX and no
TensorFlow, trains there, and renders the run here: the same weights saved on TensorFlow render the same bytes.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.startup import INSTALL_RENDER, RENDER_PACKAGES

tomllib = pytest.importorskip("tomllib", reason="reads pyproject.toml with Python 3.11's tomllib")

ROOT = Path(__file__).parent.parent
TESTS = Path(__file__).parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
TEST_ONLY = {"pytest", "hypothesis", "playwright", "jax", "jaxlib", "ray", "dask", "distributed",
             "disentanglement-lib"}
COMMANDS = ["pipeline.render", "pipeline.cli", "pipeline.compare", "pipeline.adopt", "pipeline.train",
            "pipeline.serve"]

# Imported first by every Python started with it on PYTHONPATH: the top-level packages named in HIDE look
# uninstalled, as in an environment where only `pip install vaeviz` ran.
HIDER = """
import importlib.abc, os, sys

class _Hide(importlib.abc.MetaPathFinder):
    names = frozenset(os.environ["HIDE"].split(","))

    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)

sys.meta_path.insert(0, _Hide())
"""


def names(requirements) -> set:
    """Return the distribution names of PEP 508 requirement strings, lower case."""
    return {re.match(r"[A-Za-z0-9_.-]+", r).group().lower().replace("_", "-") for r in requirements}


def hiding(tmp_path, hide) -> dict:
    """Return an environment whose Pythons see the packages `hide` as not installed."""
    (tmp_path / "hider").mkdir(exist_ok=True)
    (tmp_path / "hider" / "sitecustomize.py").write_text(HIDER)
    path = os.pathsep.join([str(tmp_path / "hider"), str(ROOT)])
    return {**os.environ, "PYTHONPATH": path, "HIDE": ",".join(hide), "TF_CPP_MIN_LOG_LEVEL": "3"}


def test_pip_install_vaeviz_brings_the_callback_and_its_data_readers_only():
    base = names(PYPROJECT["project"]["dependencies"])
    assert base == {"keras", "numpy", "h5py", "imageio", "tifffile", "pillow"}


def test_the_render_extra_is_tensorflow_and_the_renders_packages_and_no_test_tool():
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert names(extras["render"]) == set(RENDER_PACKAGES.values())  # what require_render() checks
    assert "tensorflow" in names(extras["render"])
    assert not names(extras["render"]) & TEST_ONLY
    for extra in ("dask", "ray", "dev"):
        assert "vaeviz[render]" in extras[extra], extra


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_make_demo_installs_the_render_extra_and_make_test_adds_the_dev_extra(tmp_path):
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path)

    def installs(target):
        out = subprocess.run(["make", "-n", target], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
        return re.findall(r"pip install --quiet -e '\.\[(\w+)\]'", out)

    assert installs("demo") == ["render"]  # a fresh clone: no venv yet
    assert installs("test") == ["dev"]
    venv = tmp_path / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch(mode=0o755)
    (venv / ".installed-render").touch()  # as `make demo` leaves it
    assert installs("demo") == [] and installs("test") == ["dev"]
    (venv / ".installed-dev").touch()  # as `make test` leaves it: both are up to date
    assert installs("demo") == [] and installs("test") == []
    os.utime(tmp_path / "pyproject.toml", (2e9, 2e9))  # edited since
    assert installs("demo") == ["render"] and installs("test") == ["dev"]


def test_the_callback_imports_without_tensorflow_and_the_renders_packages(tmp_path):
    pytest.importorskip("jax")
    probe = ("import pipeline, pipeline.callback, pipeline.data, pipeline.run, pipeline.modelspec\n"
             "from pipeline import CheckpointForViz\n"
             "images, _ = pipeline.data.shapes(8, size=16)\n"
             "print(CheckpointForViz.__name__)")
    env = {**hiding(tmp_path, ["tensorflow", *RENDER_PACKAGES]), "KERAS_BACKEND": "jax"}
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "CheckpointForViz", proc.stderr[-3000:]


@pytest.mark.parametrize("command", COMMANDS + list(PYPROJECT["project"]["scripts"]))
def test_a_render_command_without_the_render_packages_exits_2_saying_what_to_install(tmp_path, command):
    if command in COMMANDS:
        args = ["-m", command, "--help"]
    else:  # a console script: what pip's wrapper calls
        module, function = PYPROJECT["project"]["scripts"][command].split(":")
        args = ["-c", f"import sys, {module}; sys.argv[1:] = ['--help']; {module}.{function}()"]
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          env=hiding(tmp_path, ["tensorflow", "click"]), timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "needs tensorflow, click," in proc.stderr and INSTALL_RENDER in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_render_called_from_python_without_tensorflow_says_what_to_install(tmp_path):
    probe = "from pipeline.startup import import_keras\nimport_keras()"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env={**hiding(tmp_path, ["tensorflow"]), "KERAS_BACKEND": "tensorflow"}, timeout=120)
    assert proc.returncode == 1
    assert f"ModuleNotFoundError: Keras' backend is TensorFlow, which is not installed here: {INSTALL_RENDER}" \
        in proc.stderr, proc.stderr[-3000:]


# --- a fresh virtual environment: Keras on JAX, no TensorFlow ------------------------------------------------

PIP_TIMEOUT = 240  # seconds for each pip install: jax comes from pip's cache or the index, or the test skips


def pip(venv: Path, *args, timeout=PIP_TIMEOUT):
    return subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *args],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def jax_venv(tmp_path_factory):
    """Return a virtual environment with jax and `pip install vaeviz` (a copy of this checkout, not editable)."""
    root = tmp_path_factory.mktemp("jax_venv")
    source = root / "source"
    shutil.copytree(ROOT / "pipeline", source / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    try:
        proc = pip(venv, "jax")
    except subprocess.TimeoutExpired:
        pytest.skip(f"jax did not install within {PIP_TIMEOUT} s")
    if proc.returncode:
        pytest.skip(f"jax cannot be installed here: {proc.stderr.strip()[-500:]}")
    proc = pip(venv, str(source))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return venv


def in_venv(venv, *args, cwd, timeout=300):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([str(venv / "bin" / "python"), *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=timeout)


@pytest.mark.slow
def test_pip_install_vaeviz_in_a_jax_environment_brings_no_tensorflow_and_refuses_to_render(jax_venv, tmp_path):
    probe = ("import importlib.util, pipeline\n"
             "print(pipeline.__file__)\n"
             "print([n for n in ('tensorflow', 'click', 'joblib') if importlib.util.find_spec(n)])")
    proc = in_venv(jax_venv, "-c", probe, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    where, found = proc.stdout.splitlines()
    assert Path(where).is_relative_to(jax_venv) and found == "[]"
    for args in (["-m", "pipeline.render", str(tmp_path)], [str(jax_venv / "bin" / "vaeviz-render"), str(tmp_path)]):
        proc = in_venv(jax_venv, *args, cwd=tmp_path)
        assert proc.returncode == 2 and INSTALL_RENDER in proc.stderr, proc.stderr[-3000:]


@pytest.mark.slow
def test_a_run_trained_on_jax_without_tensorflow_renders_here_as_its_weights_saved_on_tensorflow(
        jax_venv, tmp_path, shapes16, render, digests):
    import keras

    import zoo_models
    from pipeline import CheckpointForViz, run

    x = shapes16[:128]
    np.save(tmp_path / "x.npy", x)
    jax_run = tmp_path / "checkpoints" / "jax"
    proc = in_venv(jax_venv, str(TESTS / "zoo_models.py"), "any_backend", str(jax_run), str(tmp_path / "x.npy"),
                   cwd=tmp_path, timeout=600)  # fit with CheckpointForViz, in the venv's vaeviz
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert run.read_run(jax_run)["versions"]["keras_backend"] == "jax"

    # The same model on TensorFlow, here, given each of the JAX run's checkpoints and saved by the callback.
    tf_run = tmp_path / "checkpoints" / "tensorflow"
    encoder, decoder = zoo_models.keras_io_models()
    vae = zoo_models.AnyBackendVAE(encoder, decoder)
    callbacks = keras.callbacks.CallbackList([CheckpointForViz(tf_run, x, n_samples=8)], model=vae)
    callbacks.on_train_begin()
    for checkpoint in run.list_checkpoints(jax_run):
        weights = run.read_weights(checkpoint.path)
        encoder.set_weights(weights["encoder"])
        decoder.set_weights(weights["decoder"])
        callbacks.on_epoch_begin(checkpoint.epoch - 1)
        callbacks.on_epoch_end(checkpoint.epoch - 1, {})
    callbacks.on_train_end()

    outputs = {}
    for name in ("jax", "tensorflow"):
        result = render(tmp_path / "checkpoints" / name, "--out", tmp_path / "outputs" / name, "--views", "recon,walk",
                        "-j", "1", "--quiet")
        assert result.exit_code == 0, result.output
        outputs[name] = digests(tmp_path / "outputs" / name)
    frames = [f"{view}/epoch_{e:04d}.png" for view in ("recon", "walk") for e in range(1, zoo_models.EPOCHS + 1)]
    assert set(frames) <= set(outputs["jax"])
    for frame in frames:
        assert np.asarray(Image.open(tmp_path / "outputs" / "jax" / frame)).std() > 0, f"{frame} is blank"
    assert outputs["jax"] == outputs["tensorflow"]
