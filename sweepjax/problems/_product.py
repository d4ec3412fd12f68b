"""Ahn et al.'s single neuron f(x, y) = ℓ(xy) and its Lipschitz losses."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ._base import AbstractProblem


def _rsym(s):
    """ℓ_rsym(s) = ½ℓ_logi(−2s) + ½ℓ_logi(2s), so ℓ'(s) = tanh s."""
    return 0.5 * (jax.nn.softplus(-2.0 * s) + jax.nn.softplus(2.0 * s))


def _sqrt(s):
    """ℓ_sqr(s) = √(1 + s²)."""
    return jnp.sqrt(1.0 + s * s)


def _huber(s):
    """ℓ_Hub(s) = s²/2 for |s| ≤ 1, |s| − ½ otherwise."""
    a = jnp.abs(s)
    return jnp.where(a <= 1.0, 0.5 * s * s, a - 0.5)


def _beta(s, beta):
    """ℓ_β through ℓ'_β(s) = s(1 − c_β|s|^β) on |s| < r_β, sgn(s) beyond; c_β = (β/(β+1))^β/(β+1), r_β = (β+1)/β."""
    c = (beta / (beta + 1.0)) ** beta / (beta + 1.0)
    r = (beta + 1.0) / beta
    a = jnp.abs(s)
    a_in = jnp.minimum(a, r)
    inner = 0.5 * a_in**2 - c * a_in ** (beta + 2.0) / (beta + 2.0)
    return inner + jnp.maximum(a - r, 0.0)


PRODUCT_LOSSES = ("rsym", "sqrt", "huber", "beta")


class ProductLoss(AbstractProblem):
    r"""f(x, y) = ℓ(xy) on θ = (x, y) ∈ ℝ² (Ahn et al., §single neuron).

    Facts: ∇f = ℓ'(xy)(y, x);  ∇²f = ℓ''(xy)[y; x][y; x]ᵀ + ℓ'(xy)[[0, 1], [1, 0]].
    Every loss here is even, 1-Lipschitz, ℓ''(0) = 1, so at a minimiser (0, y) the sharpness is y².
    Gradient flow conserves y² − x²; GD's limiting sharpness is ≈ min(y₀² − x₀², 2/η).
    ℓ' is odd, so ∇²f(0, 0) = 0. Off the axes ∇²f is indefinite (det = −ℓ'(s)(ℓ'(s) + 2sℓ''(s)) < 0
    at s = xy ≠ 0); where ℓ'' = 0 (|xy| ≥ 1 for Huber, ≥ r_β for ℓ_β) it is ±[[0, 1], [1, 0]]:
    eigenvalues ±1, a symmetric spectrum on which plain power iteration does not converge.

    Losses: ``"rsym"`` (ℓ' = tanh), ``"sqrt"`` (√(1+s²)), ``"huber"`` and ``"beta"`` (ℓ_β, needs ``beta``).
    """

    loss_name: str = eqx.field(static=True)
    beta: Float[Array, ""] | None

    def __init__(self, loss: str = "sqrt", beta: ArrayLike | None = None):
        if not isinstance(loss, str) or loss not in PRODUCT_LOSSES:
            raise ValueError(f"loss must be one of {PRODUCT_LOSSES}, got {loss!r}")
        if loss == "beta":
            if beta is None:
                raise ValueError("beta is required for loss='beta'")
            b = jnp.asarray(beta, dtype=float)
            if b.ndim != 0 or not bool(jnp.isfinite(b)) or float(b) <= 0:
                raise ValueError(f"beta must be a positive finite scalar, got {beta!r}")
            self.beta = b
        else:
            if beta is not None:
                raise ValueError(f"beta only applies to loss='beta', got beta={beta!r} with loss={loss!r}")
            self.beta = None
        self.loss_name = loss

    def ell(self, s: Float[Array, "*b"]) -> Float[Array, "*b"]:
        """ℓ(s)."""
        if self.loss_name == "rsym":
            return _rsym(s)
        if self.loss_name == "sqrt":
            return _sqrt(s)
        if self.loss_name == "huber":
            return _huber(s)
        return _beta(s, jnp.asarray(self.beta, dtype=jnp.result_type(s)))

    def loss(self, params: Float[Array, "2"]) -> Float[Array, ""]:
        return self.ell(params[0] * params[1])

    def observables(self, params: Float[Array, "2"]) -> dict[str, Float[Array, ""]]:
        x, y = params[0], params[1]
        return {"xy": x * y, "y2_minus_x2": y * y - x * x}

    def param_shapes(self) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct((2,), jnp.float32)

    def init(self, key: PRNGKeyArray, num: int) -> Float[Array, "num 2"]:
        """x₀ ~ U(0, 2), y₀ = √(x₀² + g) with gap g = y₀² − x₀² ~ U(0, 16)."""
        kx, kg = jax.random.split(key)
        x0 = jax.random.uniform(kx, (num,), minval=0.0, maxval=2.0)
        gap = jax.random.uniform(kg, (num,), minval=0.0, maxval=16.0)
        return jnp.stack([x0, jnp.sqrt(x0**2 + gap)], axis=-1)

    @staticmethod
    def init_grid(gaps: ArrayLike, x0: float = 1.0) -> Float[Array, "n 2"]:
        """Inits (x₀, y₀) with y₀ = √(x₀² + gap), one per gap = y₀² − x₀² (the GF invariant)."""
        gaps = jnp.asarray(gaps, dtype=float)
        if gaps.ndim != 1 or gaps.size == 0:
            raise ValueError(f"gaps must be a non-empty 1-D array, got shape {gaps.shape}")
        if not bool(jnp.all(jnp.isfinite(gaps))) or bool(jnp.any(gaps + x0**2 < 0)):
            raise ValueError("gaps must be finite with gap + x0² ≥ 0")
        return jnp.stack([jnp.full_like(gaps, x0), jnp.sqrt(x0**2 + gaps)], axis=-1)
