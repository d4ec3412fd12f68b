"""Cai et al.'s data sets: separable with margin γ in the unit ball, the Fig. 4 five points, XOR."""

import numpy as np
import pytest

from sweepjax.datasets import cai_five_points, linearly_separable, xor


@pytest.mark.parametrize("width", [0.0, 0.5, 1.0])
def test_linearly_separable(width):
    X, y = linearly_separable(200, 4, 0.2, width=width, seed=3)
    assert X.shape == (200, 4) and y.shape == (200,) and X.dtype == y.dtype == np.float32
    assert set(np.unique(y)) == {-1.0, 1.0}
    assert np.all(np.linalg.norm(X.astype(float), axis=1) <= 1.0 + 1e-6)
    margins = y * X[:, 0]
    assert margins.min() >= 0.2 - 1e-6
    if width == 0.0:
        np.testing.assert_allclose(margins, 0.2, rtol=1e-6)
    else:
        assert margins.max() > 0.3
    X2, y2 = linearly_separable(200, 4, 0.2, width=width, seed=3)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(X, linearly_separable(200, 4, 0.2, width=width, seed=4)[0])
    X1, _ = linearly_separable(5, 1, 0.5, seed=0)  # d = 1: just the signed margin coordinate
    assert X1.shape == (5, 1) and np.all(np.abs(X1) >= 0.5 - 1e-6)


def test_five_points():
    X, y = cai_five_points()
    assert X.shape == (5, 3) and y.tolist() == [1.0, 1.0, -1.0, 1.0, 1.0]
    # the max-margin direction e₁ separates with margin 0.05
    assert np.min(y * X[:, 0]) == pytest.approx(0.05)


def test_xor():
    X, y = xor(400, noise=0.1, seed=0)
    assert X.shape == (400, 2) and y.shape == (400,)
    assert np.all(np.linalg.norm(X, axis=1) <= 1.0 + 1e-6)
    assert set(np.unique(y)) == {-1.0, 1.0}
    agree = np.mean(np.sign(X[:, 0] * X[:, 1]) == y)
    assert agree > 0.9
    X0, y0 = xor(8, noise=0.0, seed=1)
    np.testing.assert_allclose(np.abs(X0), 1 / np.sqrt(2), rtol=1e-6)
    np.testing.assert_array_equal(np.sign(X0[:, 0] * X0[:, 1]), y0)


@pytest.mark.parametrize(
    "fn,kwargs,match",
    [
        (linearly_separable, {"n": 0, "d": 2, "gamma": 0.1}, "n"),
        (linearly_separable, {"n": 3, "d": 2.5, "gamma": 0.1}, "d"),
        (linearly_separable, {"n": 3, "d": 2, "gamma": 0.0}, "gamma"),
        (linearly_separable, {"n": 3, "d": 2, "gamma": 1.5}, "gamma"),
        (linearly_separable, {"n": 3, "d": 2, "gamma": 0.1, "width": 2.0}, "width"),
        (xor, {"n": -1}, "n"),
        (xor, {"n": 4, "noise": 0.7}, "noise"),
    ],
)
def test_rejects_bad_input(fn, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fn(**kwargs, seed=0)
