"""Shared pieces of the small neural-network problems: activations, per-output losses, batch norm,
PyTorch-style init and data validation. Names map to module-level functions (no lambdas), so a
problem stores the *name* as a static field and one compile serves every data set of a shape."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray


def relu3(z: Float[Array, "*s"]) -> Float[Array, "*s"]:
    """Cubic ReLU σ(z) = max(0, z)³ (Wang et al.'s ReLU³, degree of regularity 3)."""
    return jax.nn.relu(z) ** 3


def mse(r: Float[Array, "*s"]) -> Float[Array, "*s"]:
    """½r², elementwise on the residual r = f − y (degree of regularity 2)."""
    return 0.5 * r * r


def huber(r: Float[Array, "*s"]) -> Float[Array, "*s"]:
    """Huber with δ = 1: ½r² for |r| ≤ 1, |r| − ½ beyond (degree of regularity 1)."""
    a = jnp.abs(r)
    return jnp.where(a <= 1.0, 0.5 * r * r, a - 0.5)


ACTIVATIONS: dict[str, Callable] = {"tanh": jnp.tanh, "relu": jax.nn.relu, "relu3": relu3}
LOSSES: dict[str, Callable] = {"mse": mse, "huber": huber}


def batch_norm(z: Float[Array, "n k"], eps: float = 1e-5) -> Float[Array, "n k"]:
    """Train-mode batch norm over the sample axis 0, full batch, no affine: (z − μ_B)/√(σ_B² + ε),
    with the biased batch variance σ_B² (as ``torch.nn.BatchNorm1d(affine=False)`` in training)."""
    mu = jnp.mean(z, axis=0, keepdims=True)
    var = jnp.mean((z - mu) ** 2, axis=0, keepdims=True)
    return (z - mu) * jax.lax.rsqrt(var + eps)


def check_name(value, table: dict, name: str) -> str:
    """``value`` is a key of ``table``, else ValueError naming the argument ``name``."""
    if not isinstance(value, str) or value not in table:
        raise ValueError(f"{name} must be one of {sorted(table)}, got {value!r}")
    return value


def check_features(X: ArrayLike, *, vector_ok: bool = False) -> np.ndarray:
    """X (n, d) (or (n,) when ``vector_ok``) with n, d ≥ 1 and finite, as a float32 NumPy array."""
    try:
        X = np.asarray(X, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise ValueError(f"X must be a real array, got {type(X).__name__}") from e
    if X.ndim not in ((1, 2) if vector_ok else (2,)) or X.size == 0:
        raise ValueError(f"X must have shape (n, d){' or (n,)' if vector_ok else ''} with n, d ≥ 1, got {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X must be finite (found NaN or inf)")
    return X


def check_regression_data(X: ArrayLike, Y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """X (n, d) and Y (n, k) (or (n,), taken as k = 1) finite, as float32 NumPy arrays."""
    X = check_features(X)
    try:
        Y = np.asarray(Y, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise ValueError(f"Y must be a real array, got {type(Y).__name__}") from e
    if Y.ndim == 1:
        Y = Y[:, None]
    if Y.ndim != 2 or Y.shape[0] != X.shape[0] or Y.shape[1] == 0:
        raise ValueError(f"Y must have shape (n, k) with n = {X.shape[0]} rows to match X, got {Y.shape}")
    if not np.all(np.isfinite(Y)):
        raise ValueError("Y must be finite (found NaN or inf)")
    return X, Y


def torch_linear_init(key: PRNGKeyArray, num: int, shape: tuple[int, int], norm: ArrayLike | None) -> Float[Array, "num o i"]:
    """``num`` matrices of ``shape`` = (fan_out, fan_in) drawn from PyTorch's default Linear init
    U(−1/√fan_in, 1/√fan_in), each rescaled to Frobenius norm ``norm`` (None: not rescaled)."""
    bound = 1.0 / np.sqrt(shape[1])
    W = jax.random.uniform(key, (num, *shape), minval=-bound, maxval=bound)
    if norm is None:
        return W
    return W * (jnp.asarray(norm, W.dtype) / jnp.linalg.norm(W.reshape(num, -1), axis=1))[:, None, None]
