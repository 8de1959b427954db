"""Train a tiny ImageVAE with CheckpointForViz until killed: the subject of test_crash.py.

    python tests/crash_train.py RUN_DIR IMAGES.npy SEED

Prints `training` when the model is built, just before `fit`; then trains for
ever, one checkpoint per epoch, into RUN_DIR (resuming whatever is there).
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
for _var in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # two of these run at once on two cores

import keras  # noqa: E402
import numpy as np  # noqa: E402

from pipeline.callback import CheckpointForViz  # noqa: E402
from pipeline.model import ImageVAE  # noqa: E402


def main(run_dir: str, images: str, seed: int) -> None:
    x = np.load(images)
    keras.utils.set_random_seed(seed)
    model = ImageVAE(image_size=16, channels=1, latent_dim=2, filters=4)
    # eager: no seconds-long graph trace at each start, so kills land in training and its writes
    model.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)
    print("training", flush=True)
    model.fit(x, epochs=1_000_000, batch_size=128, verbose=0,
              callbacks=[CheckpointForViz(run_dir, x, n_samples=4)])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
