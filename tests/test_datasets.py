"""sweepjax.datasets: shapes, seeding, the sparse-coding structure, and argument checks."""

import numpy as np
import pytest

import sweepjax as sj


def test_sparse_coding_shapes_and_labels():
    X, y = sj.datasets.sparse_coding(500, 20, 3.0, seed=0)
    assert X.shape == (500, 20) and y.shape == (500,)
    assert X.dtype == np.float32 and y.dtype == np.float32
    assert set(np.unique(y)) == {-1.0, 1.0}


def test_sparse_coding_is_seeded():
    a = sj.datasets.sparse_coding(50, 10, 2.0, seed=3)
    b = sj.datasets.sparse_coding(50, 10, 2.0, seed=3)
    c = sj.datasets.sparse_coding(50, 10, 2.0, seed=4)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert not np.array_equal(a[0], c[0])
    g = sj.datasets.sparse_coding(50, 10, 2.0, seed=np.random.default_rng(3))
    assert np.array_equal(g[0], a[0])


def test_sparse_coding_structure():
    """x = λ y e_j + ξ: y·x has one coordinate of mean λ; the rest is standard normal noise."""
    lam, n, d = 4.0, 4000, 8
    X, y = sj.datasets.sparse_coding(n, d, lam, seed=1)
    signed = X * y[:, None]
    j = np.argmax(signed, axis=1)
    top = signed[np.arange(n), j]
    assert abs(top.mean() - lam) < 0.2  # mostly the signal coordinate (plus a small max-of-noise bias)
    mask = np.ones_like(X, bool)
    mask[np.arange(n), j] = False
    noise = X[mask]
    assert abs(noise.mean()) < 0.05 and abs(noise.std() - 1.0) < 0.1
    assert np.allclose(np.bincount(j, minlength=d) / n, 1 / d, atol=0.03)


@pytest.mark.parametrize(
    "kwargs,name",
    [
        (dict(n=0, d=5, lam=1.0), "n"),
        (dict(n=-1, d=5, lam=1.0), "n"),
        (dict(n=3.5, d=5, lam=1.0), "n"),
        (dict(n=5, d=0, lam=1.0), "d"),
        (dict(n=5, d=True, lam=1.0), "d"),
        (dict(n=5, d=3, lam=0.0), "lam"),
        (dict(n=5, d=3, lam=-2.0), "lam"),
        (dict(n=5, d=3, lam=float("nan")), "lam"),
    ],
)
def test_sparse_coding_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"^{name} "):
        sj.datasets.sparse_coding(**kwargs, seed=0)


def test_huang_degenerate():
    X, y = sj.datasets.huang_degenerate()
    assert X.shape == (2, 1) and np.array_equal(X[:, 0], [1.0, 1.0]) and np.array_equal(y, [1.0, -1.0])


def test_huang_nonseparable_is_not_separable_through_the_origin():
    X, y = sj.datasets.huang_nonseparable()
    assert X.shape[1] == 1 and set(np.unique(y)) == {-1.0, 1.0}
    for w in (-1.0, 1.0):
        assert np.any(y * w * X[:, 0] <= 0)
