"""Train the reference ImageVAE with CheckpointForViz.

    python -m pipeline.train --data shapes --run checkpoints/demo --epochs 20

Data: `shapes` (built in), an image folder, a .npy/.npz file or `file.h5:dataset`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if __name__ == "__main__":  # before click and Keras: say what to install where the render extra is missing
    from pipeline.startup import require_render

    require_render()

import click


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data", default="shapes", show_default=True,
              help="`shapes`, an image folder, a .npy/.npz file, or `file.h5:dataset`.")
@click.option("--run", "run_dir", default="checkpoints/demo", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Run directory to write.")
@click.option("--epochs", default=20, show_default=True, type=click.IntRange(min=1))
@click.option("--latent-dim", default=10, show_default=True, type=click.IntRange(min=1))
@click.option("--image-size", default=64, show_default=True, type=click.IntRange(16, 256),
              help="Side of the (square) images the model takes; a multiple of 8.")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1))
@click.option("--beta", default=1.0, show_default=True, type=click.FloatRange(min=0), help="Weight of the KL term.")
@click.option("--filters", default=16, show_default=True, type=click.IntRange(min=1), help="Filters of the first conv.")
@click.option("--n-images", default=4096, show_default=True, type=click.IntRange(min=1),
              help="How many `shapes` images to generate.")
@click.option("--n-samples", default=64, show_default=True, type=click.IntRange(min=1),
              help="Fixed samples kept for rendering.")
@click.option("--every", default="1", show_default=True, help="Checkpoint every N epochs, or `log`.")
@click.option("--n-eval", default=2000, show_default=True, type=click.IntRange(min=0),
              help="Images of the evaluation set the clusters and metrics views use (data with labels or factors: "
                   "`shapes`, or a folder of class folders).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--xla/--no-xla", default=False, show_default=True,
              help="Compile each training step with XLA (Keras' jit_compile; on a GPU Keras does so anyway). On two CPU "
                   "cores an epoch of 4,096 images on make demo's model takes 3.2 s instead of 4.8, after about 6 s "
                   "of compiling.")
@click.option("--verbose", "-v", is_flag=True, help="Show TensorFlow's start-up lines too.")
def main(data, run_dir, epochs, latent_dim, image_size, batch_size, beta, filters, n_images, n_samples,
         every, n_eval, seed, xla, verbose):
    """Train the reference convolutional VAE and save a run directory for rendering.

    \b
    Example:
      python -m pipeline.train --data shapes --run checkpoints/demo --epochs 20
      python -m pipeline.render checkpoints/demo
    """
    if image_size % 8:
        raise click.BadParameter(f"must be a multiple of 8, received {image_size}.", param_hint="--image-size")
    if every != "log":
        try:
            every = int(every)
            if every < 1:
                raise ValueError
        except ValueError:
            raise click.BadParameter(f"expected an integer >= 1 or `log`, received `{every}`.",
                                     param_hint="--every") from None
    from pipeline import data as data_mod
    from pipeline.quiet import VERBOSE, quietly

    if verbose:
        os.environ[VERBOSE] = "1"

    try:
        loaded = data_mod.load(data, image_size=image_size, n=n_images, seed=seed)
    except data_mod.DataError as err:
        raise click.ClickException(str(err)) from err
    images = loaded.images
    channels = images.shape[-1]
    if not 1 <= channels <= 16:
        raise click.ClickException(f"Data has {channels} channels; the reference model takes 1 to 16.")
    click.echo(f"data: {len(images)} images {images.shape[1:]} from {data}", err=True)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with quietly():  # TensorFlow's start-up lines (absl, CUDA probing) stay off the terminal; -v shows them
        import keras

        from pipeline import CheckpointForViz, ImageVAE

        keras.utils.set_random_seed(seed)
        model = ImageVAE(image_size=image_size, channels=channels, latent_dim=latent_dim, filters=filters, beta=beta)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=True if xla else "auto")
        model(images[:1])  # builds it: the first ops probe the devices
    hparams = {"data": data, "epochs": epochs, "latent_dim": latent_dim, "image_size": image_size,
               "batch_size": batch_size, "beta": beta, "filters": filters, "n_images": len(images),
               "learning_rate": 1e-3, "seed": seed, "xla": xla}
    callback = CheckpointForViz(run_dir, images, n_samples=min(n_samples, len(images)), seed=seed, every=every,
                                labels=loaded.labels, factors=loaded.factors, factor_names=loaded.factor_names,
                                n_eval=min(n_eval, len(images)) if (loaded.labels is not None or
                                                                   loaded.factors is not None) else 0,
                                hparams=hparams)
    try:
        model.fit(images, epochs=epochs, batch_size=batch_size, shuffle=True, callbacks=[callback],
                  verbose=1 if sys.stderr.isatty() else 2)
    except ValueError as err:  # e.g. a run_dir holding another architecture
        raise click.ClickException(str(err)) from err
    click.echo(f"trained {epochs} epochs; run directory: {run_dir}", err=True)
    click.echo(f"render it with: python -m pipeline.render {run_dir}", err=True)


if __name__ == "__main__":
    main()
