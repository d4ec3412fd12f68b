"""Binary-classification sets for Cai et al.: linearly separable with margin γ, the 5-point Fig. 4 set, XOR."""

from __future__ import annotations

import numbers

import numpy as np

from ._synthetic import _positive_int


def linearly_separable(
    n: int, d: int, gamma: float, *, width: float = 1.0, seed: int | np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """n points in the unit ball of ℝᵈ separated by w* = e₁ with margin γ: yᵢ xᵢ[0] ≥ γ, ‖xᵢ‖ ≤ 1.

    yᵢ ~ Unif{±1}; xᵢ[0] = yᵢ(γ + width·(1 − γ)u), u ~ Unif[0, 1]; the other coordinates are a
    uniform direction scaled by √(1 − xᵢ[0]²)·v, v ~ Unif[0, 1] (so ‖xᵢ‖ ≤ 1). ``width`` ∈ [0, 1]
    squeezes the points toward the margin: with width = 0 every point has yᵢxᵢ[0] = γ and most of its
    norm orthogonal to w*, so the first large GD step (along Σᵢ yᵢxᵢ) misclassifies points and
    large-stepsize GD goes through an EoS phase, as on Cai et al.'s Fig. 4 set. Drawn from
    ``numpy.random.default_rng(seed)``. Returns X (n, d) and y (n,), float32.
    """
    n = _positive_int(n, "n")
    d = _positive_int(d, "d")
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real) or not 0.0 < gamma <= 1.0:
        raise ValueError(f"gamma must lie in (0, 1], got {gamma!r}")
    if isinstance(width, bool) or not isinstance(width, numbers.Real) or not 0.0 <= width <= 1.0:
        raise ValueError(f"width must lie in [0, 1], got {width!r}")
    rng = np.random.default_rng(seed)
    y = rng.choice(np.array([-1.0, 1.0]), size=n)
    first = y * (gamma + width * (1.0 - gamma) * rng.uniform(size=n))
    X = np.zeros((n, d))
    X[:, 0] = first
    if d > 1:
        rest = rng.standard_normal((n, d - 1))
        rest /= np.maximum(np.linalg.norm(rest, axis=1, keepdims=True), 1e-12)
        radius = np.sqrt(np.clip(1.0 - first**2, 0.0, None)) * rng.uniform(size=(n, 1))[:, 0]
        X[:, 1:] = rest * radius[:, None]
    # float32 rounding must not break the guarantees
    X = X.astype(np.float32)
    X /= np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1.0)
    return X, y.astype(np.float32)


def cai_five_points() -> tuple[np.ndarray, np.ndarray]:
    """The 5 points in ℝ³ of Cai et al.'s Fig. 4 (appendix), labels ±1.

    ((0.05, 1, 2), +1), ((0.05, −2, 1), +1), ((−1, 0, 2), −1), ((0.05, −2, −2), +1),
    ((0.05, 1, −2), +1). Max-margin direction (1, 0, 0), margin 0.05. The paper trains m = 2
    neurons with outer weights ±½ (a = ±1 with the 1/m), leaky softplus (z + softplus(z))/2, η = 3.
    """
    X = np.array(
        [[0.05, 1.0, 2.0], [0.05, -2.0, 1.0], [-1.0, 0.0, 2.0], [0.05, -2.0, -2.0], [0.05, 1.0, -2.0]], np.float32
    )
    return X, np.array([1.0, 1.0, -1.0, 1.0, 1.0], np.float32)


def xor(n: int, *, noise: float = 0.1, seed: int | np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """An XOR-like set in ℝ²: corners (±1, ±1)/√2 plus N(0, noise²) jitter, y = sign(x₁x₂) of the corner.

    Not linearly separable; points are rescaled into the unit ball. Returns X (n, 2), y (n,), float32.
    """
    n = _positive_int(n, "n")
    if isinstance(noise, bool) or not isinstance(noise, numbers.Real) or not 0.0 <= noise < 0.5:
        raise ValueError(f"noise must lie in [0, 0.5), got {noise!r}")
    rng = np.random.default_rng(seed)
    corners = rng.choice(np.array([-1.0, 1.0]), size=(n, 2))
    y = corners[:, 0] * corners[:, 1]
    X = corners / np.sqrt(2.0) * (1.0 - noise) + noise * rng.standard_normal((n, 2)) / np.sqrt(2.0)
    X = X.astype(np.float32)
    X /= np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1.0)
    return X, y.astype(np.float32)
