"""Training data: the built-in `shapes`, loaders for user data, and what CheckpointForViz is given.

Every loader returns float32 images shaped (N, H, W, C) with values in [0, 1],
which is what the reference model is fed and what CheckpointForViz stores.
No TensorFlow here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

SHAPE_NAMES = ("square", "ellipse", "heart")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


class DataError(ValueError):
    """User data that cannot be loaded; the message names the file and what to do."""


# --- shapes ----------------------------------------------------------------


def shapes(n: int = 4096, *, size: int = 64, seed: int = 0, supersample: int = 4):
    """Return (images, factors): dSprites-like anti-aliased shapes and what made them.

    images : (n, size, size, 1) float32 in [0, 1], a white shape on black.
    factors : dict of (n,) arrays: `shape` (0 square, 1 ellipse, 2 heart),
        `scale` (0.5..1), `rotation` (radians, 0..2 pi), `x`, `y` (centre, in
        [0.3, 0.7] of the image width/height).

    Deterministic for a seed. Anti-aliased by rendering at `supersample`
    times the size and averaging blocks (PIL's box filter).
    """
    if n < 1 or size < 8:
        raise ValueError(f"shapes needs n >= 1 and size >= 8. Received: n={n}, size={size}.")
    rng = np.random.default_rng(seed)
    factors = {
        "shape": rng.integers(0, len(SHAPE_NAMES), n),
        "scale": rng.uniform(0.5, 1.0, n),
        "rotation": rng.uniform(0, 2 * np.pi, n),
        "x": rng.uniform(0.3, 0.7, n),
        "y": rng.uniform(0.3, 0.7, n),
    }
    from PIL import Image, ImageDraw

    fine = size * supersample
    outlines = {name: _outline(name) for name in SHAPE_NAMES}
    images = np.empty((n, size, size, 1), np.float32)
    for i in range(n):
        u, v = outlines[SHAPE_NAMES[factors["shape"][i]]]
        cos, sin = np.cos(factors["rotation"][i]), np.sin(factors["rotation"][i])
        radius = 0.24 * factors["scale"][i] * fine
        px = factors["x"][i] * fine + radius * (cos * u - sin * v)
        py = factors["y"][i] * fine + radius * (sin * u + cos * v)
        canvas = Image.new("L", (fine, fine), 0)
        ImageDraw.Draw(canvas).polygon(list(zip(px.tolist(), py.tolist())), fill=255)
        images[i, :, :, 0] = np.asarray(canvas.resize((size, size), Image.BOX), np.float32) / 255.0
    return images, factors


def _outline(name: str, points: int = 96):
    """Return (u, v): a closed outline of a shape of about unit radius, centred at 0."""
    t = np.linspace(0, 2 * np.pi, points, endpoint=False)
    if name == "square":
        return np.array([-0.8, 0.8, 0.8, -0.8]), np.array([-0.8, -0.8, 0.8, 0.8])
    if name == "ellipse":
        return np.cos(t), 0.55 * np.sin(t)
    # the classic parametric heart, point up in image coordinates (y grows downwards)
    return np.sin(t) ** 3, -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)) / 16


# --- user data -------------------------------------------------------------


@dataclass
class Dataset:
    """Images and what is known of them: file names, labels (classes), generative factors."""

    images: np.ndarray
    names: list | None = None  # an image folder's files, relative to it
    labels: np.ndarray | None = None  # `shapes`: the shape's name; a folder of class folders: the folder's name
    factors: np.ndarray | None = None  # `shapes`: (N, 5) shape, scale, rotation, x, y
    factor_names: list | None = None


def load(spec: str | Path, *, image_size: int | None = None, channels: int | None = None,
         n: int = 4096, seed: int = 0) -> Dataset:
    """Return the Dataset a training or render command names.

    spec : `shapes`, an image folder (or a folder of class folders), a `.npy` / `.npz` file, or `file.h5:dataset`.
    image_size, channels : conform images to this size and channel count.
    """
    spec = str(spec)
    labels = factors = factor_names = None
    if spec == "shapes":
        images, made = shapes(n, size=image_size or 64, seed=seed)
        names, factor_names = None, list(made)
        labels = np.asarray(SHAPE_NAMES)[made["shape"]]
        factors = np.stack([made[k] for k in factor_names], axis=1).astype(np.float64)
    else:
        path, _, dataset = spec.partition(":") if _is_h5_spec(spec) else (spec, "", "")
        p = Path(path)
        if not p.exists():
            raise DataError(f"Data `{spec}` does not exist. Pass `shapes`, an image folder, "
                            f"a .npy/.npz file, or `file.h5:dataset`.")
        if p.is_dir():
            images, names = load_folder(p)
            labels = folder_labels(p, image_files(p))
        elif p.suffix.lower() in (".npy", ".npz"):
            images, names = _load_numpy(p), None
        elif p.suffix.lower() in (".h5", ".hdf5"):
            images, names = _load_h5(p, dataset), None
        else:
            raise DataError(f"Data `{spec}` has an unknown kind `{p.suffix}`. Expected an image "
                            f"folder, .npy, .npz, or `file.h5:dataset`.")
    return Dataset(conform(images, image_size=image_size, channels=channels), names, labels, factors, factor_names)


def _is_h5_spec(spec: str) -> bool:
    head, sep, _ = spec.rpartition(":")
    return bool(sep) and Path(head).suffix.lower() in (".h5", ".hdf5")


def _as_images(array: np.ndarray, where: str) -> np.ndarray:
    """Return float32 (N, H, W, C) in [0, 1] from (N, H, W) or (N, H, W, C) data."""
    array = np.asarray(array)
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4:
        raise DataError(f"{where}: expected images shaped (N, H, W) or (N, H, W, C), "
                        f"received shape {array.shape}.")
    if array.dtype.kind in "ui":
        bits = 16 if array.dtype in (np.uint16, np.int16) or array.max(initial=0) > 255 else 8
        return (array / (2 ** bits - 1)).astype(np.float32)
    return array.astype(np.float32)


def _load_numpy(path: Path) -> np.ndarray:
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DataError(f"`{path}` is not a readable numpy file ({err}).") from err
    if isinstance(data, np.lib.npyio.NpzFile):
        keys = list(data.keys())
        key = "x" if "x" in keys else "images" if "images" in keys else keys[0] if len(keys) == 1 else None
        if key is None:
            raise DataError(f"`{path}` holds several arrays {keys}; name one `x` or `images`.")
        data = data[key]
    return _as_images(data, str(path))


def _load_h5(path: Path, dataset: str) -> np.ndarray:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if not dataset:
                raise DataError(f"`{path}`: name the dataset as `{path}:NAME` "
                                f"(this file holds {sorted(f.keys())}).")
            if not isinstance(f.get(dataset), h5py.Dataset):
                raise DataError(f"`{path}:{dataset}` is not a dataset; pass one of "
                                f"{sorted(k for k, v in f.items() if isinstance(v, h5py.Dataset))}.")
            return _as_images(f[dataset][()], f"{path}:{dataset}")
    except (OSError, KeyError) as err:
        raise DataError(f"`{path}:{dataset}` cannot be read ({err}).") from err


def read_image(path: Path) -> np.ndarray:
    """Return one image file as float32 (H, W, C) in [0, 1], scaled by 2^bits - 1."""
    import imageio.v3 as iio

    # pick the plugin by suffix: guessing would try every format, DICOM included
    plugin = "tifffile" if path.suffix.lower() in (".tif", ".tiff") else "pillow"
    try:
        array = iio.imread(path, plugin=plugin)
    except Exception as err:  # imageio raises many kinds for a bad file
        raise DataError(f"`{path}` is not a readable image ({type(err).__name__}: {err}).") from err
    if array.ndim == 2:
        array = array[..., None]
    elif array.ndim == 3 and path.suffix.lower() in (".tif", ".tiff") and array.shape[0] < min(array.shape[1:]) \
            and array.shape[0] <= 16 and array.shape[-1] > 16:
        array = np.moveaxis(array, 0, -1)  # channel-first TIFF stacks, as microscopes write them
    if array.ndim != 3:
        raise DataError(f"`{path}`: expected a 2-D image with channels, received shape {array.shape}.")
    if array.dtype == np.uint8:
        return (array / 255.0).astype(np.float32)
    if array.dtype == np.uint16:
        return (array / 65535.0).astype(np.float32)
    if array.dtype.kind == "f":
        return array.astype(np.float32)
    raise DataError(f"`{path}`: expected 8- or 16-bit or float pixels, received {array.dtype}.")


def image_files(folder: Path) -> list[Path]:
    """Return the image files of `folder`, sorted by name (the order indices refer to); a folder of class
    folders (no images of its own): the images of its sub-folders, by folder then name."""
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if files:
        return files
    return [p for sub in sorted(d for d in folder.iterdir() if d.is_dir())
            for p in sorted(sub.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]


def folder_labels(folder: Path, files: list[Path]) -> np.ndarray | None:
    """Return each file's class, the name of its sub-folder, when `files` come from class folders; else None."""
    if not files or files[0].parent == Path(folder):
        return None
    return np.asarray([p.parent.name for p in files])


def load_folder(folder: Path, files: list[Path] | None = None):
    """Return (images, names) of an image folder; all images must share one shape."""
    files = image_files(folder) if files is None else files
    if not files:
        raise DataError(f"`{folder}` holds no images ({', '.join(IMAGE_SUFFIXES)}).")
    images = [read_image(p) for p in files]
    first = images[0].shape
    for p, im in zip(files, images):
        if im.shape != first:
            raise DataError(f"`{p}` has shape {im.shape}, but `{files[0]}` has {first}. "
                            f"All images of a folder must share one shape.")
    return np.stack(images), [str(p.relative_to(folder)) for p in files]


def conform(images: np.ndarray, *, image_size: int | None = None, channels: int | None = None) -> np.ndarray:
    """Return images centre-cropped to square, resized to `image_size`, with `channels`."""
    images = _as_images(images, "data")
    n, h, w, c = images.shape
    if image_size is not None and (h, w) != (image_size, image_size):
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        images = images[:, top:top + side, left:left + side]
        images = np.stack([_resize(im, image_size) for im in images])
    if channels is not None and channels != c:
        if c == 1:
            images = np.repeat(images, channels, axis=-1)
        elif channels < c:
            images = images[..., :channels]
        else:
            raise DataError(f"Data has {c} channels; the model expects {channels}.")
    return images


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    # PIL's "F" mode resizes float channels one at a time with antialiasing
    planes = [np.asarray(Image.fromarray(image[..., k]).resize((size, size), Image.BILINEAR))
              for k in range(image.shape[-1])]
    return np.stack(planes, axis=-1)


# --- what CheckpointForViz is given ---------------------------------------

STREAM_BATCHES = 32  # a stream's samples come from at most this many first batches


@dataclass
class Chosen:
    """The fixed samples CheckpointForViz keeps: the images as fed, where they came from, how they were chosen."""

    images: np.ndarray
    indices: np.ndarray  # into the data (a stream: positions in its first batches)
    source: str
    method: str
    n_total: int | None  # None for a stream
    names: list | None = None  # the files of an image folder
    conditions: np.ndarray | None = None
    labels: np.ndarray | None = None
    factors: np.ndarray | None = None


def describe_source(data):
    """Return (indexable images or None, a description of the source, the folder's files or None).

    data : None, a numpy array, an h5py dataset, or the path of an image folder
    (indexed by sorted file name). A stream (PyDataset, tf.data.Dataset, an
    iterable of batches) returns (None, "stream ...", None): see `sample_stream`.
    Raises ValueError for anything else, naming what to pass instead.
    """
    if data is None:
        return None, None, None
    if isinstance(data, (str, Path)):
        folder = Path(data).resolve()
        if not folder.is_dir():
            raise ValueError(f"data must be a numpy array, an h5py dataset or an image folder. "
                             f"Received: data={str(data)!r}, which is not a folder.")
        files = image_files(folder)
        if not files:
            raise ValueError(f"data folder `{folder}` holds no images ({', '.join(IMAGE_SUFFIXES)}).")
        return files, str(folder), files
    try:
        import h5py

        if isinstance(data, h5py.Dataset):
            return data, f"h5py:{data.file.filename}:{data.name}", None
    except ImportError:  # pragma: no cover - h5py is a dependency
        pass
    if isinstance(data, np.ndarray):
        return data, "array", None
    if _is_stream(data):
        return None, f"stream {type(data).__module__}.{type(data).__name__}", None
    raise ValueError(f"data must be a numpy array, an h5py dataset, an image folder path, a keras.utils.PyDataset, "
                     f"a tf.data.Dataset, a re-iterable of batches, or None. Received: {type(data).__name__}.")


def _is_stream(data) -> bool:
    if isinstance(data, (dict, str, bytes)):
        return False
    if hasattr(data, "__getitem__") and hasattr(data, "__len__") and hasattr(data, "on_epoch_end"):
        return True  # a keras.utils.PyDataset
    if not hasattr(data, "__iter__"):
        return False
    if iter(data) is data:
        raise ValueError(f"data is a one-shot iterator ({type(data).__name__}): drawing samples from it would "
                         f"consume batches that fit needs. Pass a re-iterable (a keras.utils.PyDataset, a "
                         f"tf.data.Dataset, a list of batches) or an array of images.")
    return True


def _batches(data):
    """Yield a stream's first batches as numpy images, without disturbing the iteration fit makes."""
    import random

    if hasattr(data, "on_epoch_end") and hasattr(data, "__getitem__"):  # PyDataset: by index
        np_state, py_state = np.random.get_state(), random.getstate()  # __getitem__ may draw from them
        try:
            for i in range(min(len(data), STREAM_BATCHES)):
                yield _images_of(data[i])
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)
        return
    for i, batch in enumerate(iter(data)):  # tf.data and re-iterables: a fresh iterator of their own
        if i == STREAM_BATCHES:
            return
        yield _images_of(batch)


def _images_of(batch) -> np.ndarray:
    x = batch[0] if isinstance(batch, (tuple, list)) else batch  # (x, y) or (x, y, sample_weight)
    return np.asarray(x)


def sample_stream(data, n_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Return (images, positions, method): `n_samples` images drawn from a stream's first batches.

    A seeded reservoir sample (Algorithm R with numpy's default_rng(seed)) over
    at most STREAM_BATCHES batches: deterministic for a seed and a stream that
    yields the same first batches; kept in stream order.
    """
    rng = np.random.default_rng(seed)
    kept, positions, seen, batches = [], [], 0, 0
    for images in _batches(data):
        batches += 1
        for image in images:
            if seen < n_samples:
                kept.append(image)
                positions.append(seen)
            else:
                j = int(rng.integers(0, seen + 1))
                if j < n_samples:
                    kept[j], positions[j] = image, seen
            seen += 1
    if seen < n_samples:
        raise ValueError(f"n_samples must be at most the images in the stream's first {batches} batches ({seen}). "
                         f"Received: n_samples={n_samples}. Pass a smaller n_samples.")
    order = np.argsort(positions)
    method = (f"seeded reservoir sample (numpy default_rng({seed}), Algorithm R) of the first {seen} images "
              f"({batches} batches) of the stream, kept in stream order")
    return np.stack([kept[i] for i in order]), np.asarray(positions, np.int64)[order], method


def choose_samples(data, *, n_samples: int, seed: int, conditions=None, labels=None, factors=None,
                   input_shape=None) -> Chosen | None:
    """Return the fixed samples of `data` (see `describe_source`), or None without data.

    Arrays, h5py datasets and folders: `n_samples` sorted indices drawn without
    replacement with numpy's default_rng(seed), with the conditions, labels and
    factors (aligned with data; a folder of class folders labels itself) of the
    chosen images. A folder's images are conformed to `input_shape` (H, W, C)
    when it is known.
    """
    from pipeline import run

    indexable, source, files = describe_source(data)
    if indexable is None and source is None:
        return None
    if indexable is None:
        images, indices, method = sample_stream(data, n_samples, seed)
        return Chosen(images, indices, source, method, None)
    if n_samples > len(indexable):
        raise ValueError(f"n_samples must be at most the number of images in data ({len(indexable)}). "
                         f"Received: n_samples={n_samples}. Pass a smaller n_samples.")
    indices = run.choose_indices(len(indexable), n_samples, seed)
    names = None
    if files is not None:
        images, names = load_folder(Path(source), [files[i] for i in indices])
        if input_shape is not None and len(input_shape) == 3:
            h, w, c = input_shape
            images = conform(images, image_size=h if h == w else None, channels=c)
    else:
        images = np.asarray(indexable[indices])  # h5py needs increasing indices: sorted
    if files is not None and labels is None:
        labels = folder_labels(Path(source), files)
    method = "numpy default_rng(seed).choice(n_total, n_samples, replace=False), sorted"
    picked = [None if a is None else np.asarray(a)[indices] for a in (conditions, labels, factors)]
    return Chosen(images, indices, source, method, len(indexable), names, *picked)
