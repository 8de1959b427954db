"""vaeviz: watch a variational autoencoder learn.

Training side: ``CheckpointForViz`` (a Keras callback) writes a run directory.
Render side: ``python -m pipeline.render RUN_DIR`` turns it into pictures.

Keras and TensorFlow are imported only when ``CheckpointForViz`` or
``ImageVAE`` is first used, so the render command starts fast.
"""

__version__ = "0.1.0"
__all__ = ["CheckpointForViz", "ImageVAE", "__version__"]


def __getattr__(name):
    if name == "CheckpointForViz":
        from pipeline.callback import CheckpointForViz

        return CheckpointForViz
    if name == "ImageVAE":
        from pipeline.model import ImageVAE

        return ImageVAE
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
