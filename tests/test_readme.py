"""The README's examples run as written."""

import re
from pathlib import Path

import numpy as np

from pipeline import run

README = (Path(__file__).parent.parent / "README.md").read_text()


def python_block(marker: str) -> str:
    """Return the README's ```python block that starts with the comment line `marker`."""
    for block in re.findall(r"```python\n(.*?)```", README, flags=re.S):
        if block.startswith(marker):
            return block
    raise AssertionError(f"the README has no python block starting with {marker!r}")


def test_the_custom_training_loop_example_writes_a_run(tmp_path, shapes16, monkeypatch):
    import keras
    import tensorflow as tf

    import zoo_models
    from pipeline import CheckpointForViz

    keras.utils.set_random_seed(0)
    model = zoo_models.CVAE(2)

    def train_step(model, batch, optimizer):
        with tf.GradientTape() as tape:
            mean, logvar = model.encode(batch)
            logits = model.decoder(mean + tf.exp(0.5 * logvar) * tf.random.normal(tf.shape(mean)))
            loss = tf.reduce_mean(tf.reduce_sum(
                tf.nn.sigmoid_cross_entropy_with_logits(logits=logits, labels=batch), axis=[1, 2, 3]))
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        return loss

    monkeypatch.chdir(tmp_path)
    exec(python_block("# A hand-written training loop"), {
        "keras": keras, "tf": tf, "CheckpointForViz": CheckpointForViz, "model": model, "x_train": shapes16[:128],
        "epochs": 2, "train_step": train_step, "optimizer": keras.optimizers.Adam(1e-3)})
    info = run.read_run(tmp_path / "checkpoints" / "cvae")
    assert info["finished"] and info["encoder_form"] == "concat" and info["decoder_output"] == "logits"
    assert [c.epoch for c in run.list_checkpoints(tmp_path / "checkpoints" / "cvae")] == [1, 2]
    assert np.isfinite([r["loss"] for r in run.read_history(tmp_path / "checkpoints" / "cvae" / run.HISTORY_CSV)]).all()


def test_every_option_the_readme_gives_adopt_is_one_it_takes():
    from pipeline.adopt import main

    section = README[README.index("### Checkpoints you already have"):README.index("## 3. What each latent does")]
    named = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", section))
    assert named and named <= {opt for param in main.params for opt in param.opts}, named
