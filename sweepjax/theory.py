"""Analytic thresholds and predictions, as pure array functions (NumPy or JAX arrays, broadcasting).

Each function works on Python numbers, NumPy arrays and JAX arrays (traced ones included): it
returns a JAX array when any argument is one, else NumPy. Lists and tuples are read as NumPy arrays.
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike

if TYPE_CHECKING:
    from ._result import SweepResult


def _namespace(*args):
    """(jnp or np, the arguments as arrays of that namespace)."""
    if any(isinstance(a, jax.Array) for a in args):
        return jnp, [a if isinstance(a, jax.Array) else jnp.asarray(a) for a in args]
    return np, [np.asarray(a, dtype=float) if not isinstance(a, numbers.Real) else float(a) for a in args]


def eos_limit(lr: ArrayLike) -> ArrayLike:
    """Edge-of-stability sharpness 2/η: GD on a quadratic of curvature λ diverges iff λ > 2/η."""
    _, (lr,) = _namespace(lr)
    return 2.0 / lr


def gradient_flow_sharpness(x0: ArrayLike, y0: ArrayLike) -> ArrayLike:
    """y₀² − x₀²: the sharpness where gradient flow on f(x, y) = ℓ(xy) ends (its conserved quantity)."""
    _, (x0, y0) = _namespace(x0, y0)
    return y0 * y0 - x0 * x0


def ahn_limiting_sharpness(lr: ArrayLike, x0: ArrayLike, y0: ArrayLike) -> ArrayLike:
    """min(y₀² − x₀², 2/η): GD's limiting sharpness on f(x, y) = ℓ(xy) (Ahn et al.)."""
    xp, (lr, x0, y0) = _namespace(lr, x0, y0)
    return xp.minimum(gradient_flow_sharpness(x0, y0), eos_limit(lr))


def ahn_is_eos(lr: ArrayLike, x0: ArrayLike, y0: ArrayLike) -> ArrayLike:
    """y₀² − x₀² > 2/η: the run is in Ahn et al.'s edge-of-stability regime (else gradient-flow regime)."""
    _, (lr, x0, y0) = _namespace(lr, x0, y0)
    return gradient_flow_sharpness(x0, y0) > eos_limit(lr)


def ahn_prediction(result: SweepResult) -> np.ndarray:
    """min(y₀² − x₀², 2/η) on a ProductLoss sweep's grid: shape (n_lr, n_init), inits (x₀, y₀) rows."""
    inits = result.inits
    if not isinstance(inits, (np.ndarray, jax.Array)) or np.ndim(inits) != 2 or np.shape(inits)[1] != 2:
        shape = np.shape(inits) if isinstance(inits, (np.ndarray, jax.Array)) else type(inits).__name__
        raise ValueError(f"ahn_prediction needs ProductLoss inits of shape (n_init, 2), got {shape}")
    inits = np.asarray(inits, dtype=float)
    lrs = np.asarray(result.lrs, dtype=float)
    return ahn_limiting_sharpness(lrs[:, None], inits[None, :, 0], inits[None, :, 1])


def within_tolerance(measured: ArrayLike, predicted: ArrayLike, rtol: float = 0.05) -> np.ndarray:
    """|measured − predicted| ≤ rtol·|predicted|, elementwise; False where either is NaN (e.g. diverged)."""
    if not (isinstance(rtol, numbers.Real) and rtol >= 0):
        raise ValueError(f"rtol must be a non-negative number, got {rtol!r}")
    measured, predicted = np.asarray(measured, dtype=float), np.asarray(predicted, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.abs(measured - predicted) <= rtol * np.abs(predicted)
