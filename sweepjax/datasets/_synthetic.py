"""Synthetic binary-classification data sets of Ahn et al. and Huang et al. (NumPy, float32)."""

from __future__ import annotations

import numbers

import numpy as np


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def sparse_coding(n: int, d: int, lam: float, *, seed: int | np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Ahn et al.'s sparse-coding model (1): x = λ·y·e_j + ξ.

    y ~ Unif{±1}, j ~ Unif{0, …, d−1}, ξ ~ N(0, I_d) (the noise variance 1 is RECONSTRUCTED: the
    paper says "Gaussian noise"), all drawn from ``numpy.random.default_rng(seed)``.

    Args:
        n: number of samples.
        d: dimension.
        lam: signal strength λ > 0 (the paper takes λ > 1; Fig. 1 uses λ = 3).
        seed: an int seed or a ``numpy.random.Generator``.

    Returns:
        (X, y): X of shape (n, d) and y of shape (n,) with entries ±1, both float32.
    """
    n = _positive_int(n, "n")
    d = _positive_int(d, "d")
    if isinstance(lam, bool) or not isinstance(lam, numbers.Real) or not np.isfinite(lam) or lam <= 0:
        raise ValueError(f"lam must be a positive finite number, got {lam!r}")
    rng = np.random.default_rng(seed)
    y = rng.choice(np.array([-1.0, 1.0]), size=n)
    j = rng.integers(0, d, size=n)
    X = rng.standard_normal((n, d))
    X[np.arange(n), j] += float(lam) * y
    return X.astype(np.float32), y.astype(np.float32)


def huang_degenerate() -> tuple[np.ndarray, np.ndarray]:
    """Huang et al.'s Assumption-3 data {(1, +1), (1, −1)}: X of shape (2, 1), y of shape (2,).

    With f = w·x the risks are hyperbolic: R(w) = cosh w (exponential loss) and
    log(2 cosh(w/2)) (logistic loss). (RECONSTRUCTED as the most likely Example 1/3 data set.)
    """
    return np.array([[1.0], [1.0]], np.float32), np.array([1.0, -1.0], np.float32)


def huang_nonseparable() -> tuple[np.ndarray, np.ndarray]:
    """A small non-separable 1-D data set standing in for Huang et al.'s Example 2/4 (6 points).

    The paper's exact points were NOT RECOVERED; these are our own choice. x = (−2, −1, −0.5, 0.5,
    1, 2) with y = (−1, −1, +1, −1, +1, +1): mostly y = sign(x), but the two inner points are
    flipped, so no w ≠ 0 classifies every point by sign(w·x) and the risk has a finite minimiser.
    Returns X of shape (6, 1) and y of shape (6,), float32.
    """
    x = np.array([-2.0, -1.0, -0.5, 0.5, 1.0, 2.0], np.float32)
    y = np.array([-1.0, -1.0, 1.0, -1.0, 1.0, 1.0], np.float32)
    return x[:, None], y
