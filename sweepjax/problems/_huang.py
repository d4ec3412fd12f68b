"""Huang et al.'s linear predictor and two-layer linear network with exponential/logistic loss.

Risk R(θ) = (1/n) Σᵢ ℓ(yᵢ f_θ(xᵢ)) with ℓ(z) = e^{−z} (``"exp"``) or log(1 + e^{−z}) (``"logistic"``),
yᵢ ∈ {±1}. The model normalisation f = vᵀu x/√m and the lazy → catapult edge are RECONSTRUCTED
(see ``sweepjax.theory.huang_catapult_lr``; ``huang_ntk_growth_lr`` is where the NTK starts to grow,
a divergence edge for exp loss only).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._curvature import Lanczos, generic_vector
from ._base import AbstractProblem
from ._nn import check_features

HUANG_LOSSES = ("exp", "logistic")
NTK_METHODS = ("exact", "lanczos")
#: problems with at most this many samples record each output f(xᵢ) as an observable ``f_i``
MAX_RECORDED_OUTPUTS = 8


def check_classification_data(X: ArrayLike, y: ArrayLike, *, vector_x: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """X (n, d) (or (n,) when ``vector_x``) finite and y (n,) in {±1}, as float32 NumPy arrays."""
    X = check_features(X, vector_ok=vector_x)
    try:
        y = np.asarray(y, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise ValueError(f"y must be a real array of ±1 labels, got {type(y).__name__}") from e
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape (n,)=({X.shape[0]},) to match X, got {y.shape}")
    if not np.all(np.abs(y) == 1.0):
        raise ValueError(f"y must hold labels ±1, got values {np.unique(y)[:5].tolist()}")
    return X, y


def _check_loss(loss) -> str:
    if not isinstance(loss, str) or loss not in HUANG_LOSSES:
        raise ValueError(f"loss must be one of {HUANG_LOSSES}, got {loss!r}")
    return loss


def _ell(name: str, z):
    """ℓ(z): e^{−z} or the stable softplus log(1 + e^{−z})."""
    return jnp.exp(-z) if name == "exp" else jax.nn.softplus(-z)


class LinearPredictor(AbstractProblem):
    r"""f(x) = w·x with R(w) = (1/n) Σᵢ ℓ(yᵢ w·xᵢ) (Huang et al. §3, Theorem 1).

    ``X`` of shape (n,) gives a scalar w; shape (n, d) gives w ∈ ℝᵈ.
    Facts: ∇²R = (1/n) Σᵢ ℓ''(yᵢw·xᵢ) xᵢxᵢᵀ; the NTK is Θ = XXᵀ/n, constant, with top eigenvalue
    λ = λ_max(XᵀX/n) (= mean ‖x‖² in 1-D). On the degenerate data {(1, +1), (1, −1)}: R = cosh w
    (exp) or log(2cosh(w/2)) (logistic), and GD from w₀ converges iff η < 2w₀/sinh w₀ (exp), resp.
    the loss decreases iff η < 4w₀/tanh(w₀/2) (logistic); see ``theory.huang_linear_critical_lr``.

    Observables: ``ntk`` (λ, constant), ``margin`` = minᵢ yᵢf(xᵢ), and ``f_i`` = f(xᵢ) for n ≤ 8.
    """

    X: Float[Array, " n *d"]
    y: Float[Array, " n"]
    loss_name: str = eqx.field(static=True)

    def __init__(self, X: ArrayLike, y: ArrayLike, loss: str = "exp"):
        self.loss_name = _check_loss(loss)
        X, y = check_classification_data(X, y, vector_x=True)
        self.X, self.y = jnp.asarray(X), jnp.asarray(y)

    def outputs(self, params: Float[Array, "*d"]) -> Float[Array, " n"]:
        """f(xᵢ) for every sample."""
        return self.X * params if self.X.ndim == 1 else self.X @ params

    def loss(self, params: Float[Array, "*d"]) -> Float[Array, ""]:
        return jnp.mean(_ell(self.loss_name, self.y * self.outputs(params)))

    def ntk(self) -> Float[Array, ""]:
        """λ_max(XXᵀ/n), the top eigenvalue of the (constant, normalised) NTK."""
        n = self.X.shape[0]
        if self.X.ndim == 1:
            return jnp.mean(self.X**2)
        return jnp.linalg.eigvalsh(self.X.T @ self.X / n)[-1]

    def observables(self, params: Float[Array, "*d"]) -> dict[str, Float[Array, ""]]:
        f = self.outputs(params)
        out = {"ntk": self.ntk(), "margin": jnp.min(self.y * f)}
        if f.shape[0] <= MAX_RECORDED_OUTPUTS:
            out.update({f"f_{i}": f[i] for i in range(f.shape[0])})
        return out

    def param_shapes(self) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct(self.X.shape[1:], jnp.float32)

    def init(self, key: PRNGKeyArray, num: int) -> Float[Array, " num *d"]:
        """w₀ ~ N(0, I)."""
        return jax.random.normal(key, (num,) + self.X.shape[1:])


class TwoLayerLinear(AbstractProblem):
    r"""f(x) = vᵀu x/√m, u ∈ ℝ^{m×d}, v ∈ ℝᵐ (Huang et al. (3), RECONSTRUCTED Lewkowycz-style scaling).

    Params ``{"u": (m, d), "v": (m,)}``. R = (1/n) Σᵢ ℓ(yᵢ f(xᵢ)).
    Observable ``ntk``: the top eigenvalue of the normalised NTK (Huang et al. (6))
    Θ = JJᵀ/n, J = ∂f(X)/∂θ (n × P), i.e. Θ(x, x') = (‖v‖² xᵀx' + xᵀuᵀu x')/(nm). On the
    Assumption-3 data (d = 1, x = 1, 1) it is λ = (‖u‖² + ‖v‖²)/m. ``ntk="exact"`` forms J with
    ``jax.jacrev`` and takes ``eigvalsh`` of JJᵀ/n (small n); ``ntk="lanczos"`` runs
    ``ntk_order`` Lanczos steps on the matrix-free map p ↦ Jᵀ(Jp)/n (one jvp and one vjp each).
    At a global minimum with f ≡ 0 (Assumption 3), ∇²R = ℓ''(0)·JᵀJ/n, so λ_max(∇²R) = λ (exp)
    and λ/4 (logistic).

    Other observables: ``margin`` = minᵢ yᵢf(xᵢ), and ``f_i`` = f(xᵢ) for n ≤ 8.
    """

    X: Float[Array, "n d"]
    y: Float[Array, " n"]
    m: int = eqx.field(static=True)
    loss_name: str = eqx.field(static=True)
    ntk_method: str = eqx.field(static=True)
    ntk_order: int = eqx.field(static=True)
    init_std: float = eqx.field(static=True)

    def __init__(
        self,
        X: ArrayLike,
        y: ArrayLike,
        m: int,
        loss: str = "exp",
        *,
        ntk: str = "exact",
        ntk_order: int = 8,
        init_std: float = 0.5,
    ):
        self.loss_name = _check_loss(loss)
        X, y = check_classification_data(X, y)
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
            raise ValueError(f"m must be a positive int, got {m!r}")
        if ntk not in NTK_METHODS:
            raise ValueError(f"ntk must be one of {NTK_METHODS}, got {ntk!r}")
        if isinstance(ntk_order, bool) or not isinstance(ntk_order, int) or ntk_order < 1:
            raise ValueError(f"ntk_order must be a positive int, got {ntk_order!r}")
        if not (isinstance(init_std, (int, float)) and np.isfinite(init_std) and init_std > 0):
            raise ValueError(f"init_std must be a positive finite number, got {init_std!r}")
        self.X, self.y = jnp.asarray(X), jnp.asarray(y)
        self.m, self.ntk_method, self.ntk_order, self.init_std = int(m), ntk, ntk_order, float(init_std)

    def outputs(self, params: dict[str, Float[Array, "..."]]) -> Float[Array, " n"]:
        """f(xᵢ) = vᵀu xᵢ/√m for every sample."""
        return (self.X @ params["u"].T) @ params["v"] / jnp.sqrt(jnp.asarray(self.m, self.X.dtype))

    def loss(self, params: dict[str, Float[Array, "..."]]) -> Float[Array, ""]:
        return jnp.mean(_ell(self.loss_name, self.y * self.outputs(params)))

    def ntk(self, params: dict[str, Float[Array, "..."]]) -> Float[Array, ""]:
        """λ_max(JJᵀ/n), exact or by Lanczos (see the class docstring)."""
        n = self.X.shape[0]
        if self.ntk_method == "exact":
            jac = jax.jacrev(self.outputs)(params)
            J = jnp.concatenate([a.reshape(n, -1) for a in jax.tree.leaves(jac)], axis=1)
            return jnp.linalg.eigvalsh(J @ J.T / n)[-1]
        flat, unravel = ravel_pytree(params)
        f_flat = lambda p: self.outputs(unravel(p))  # noqa: E731
        _, jvp = jax.linearize(f_flat, flat)
        vjp = jax.linear_transpose(jvp, flat)
        matvec = lambda p: vjp(jvp(p))[0] / n  # noqa: E731
        return Lanczos(order=self.ntk_order)(matvec, generic_vector(flat.size, flat.dtype)).value

    def observables(self, params: dict[str, Float[Array, "..."]]) -> dict[str, Float[Array, ""]]:
        f = self.outputs(params)
        out = {"ntk": self.ntk(params), "margin": jnp.min(self.y * f)}
        if f.shape[0] <= MAX_RECORDED_OUTPUTS:
            out.update({f"f_{i}": f[i] for i in range(f.shape[0])})
        return out

    def param_shapes(self) -> dict[str, jax.ShapeDtypeStruct]:
        return {
            "u": jax.ShapeDtypeStruct((self.m, self.X.shape[1]), jnp.float32),
            "v": jax.ShapeDtypeStruct((self.m,), jnp.float32),
        }

    def init(self, key: PRNGKeyArray, num: int) -> dict[str, Float[Array, "..."]]:
        """u, v i.i.d. N(0, init_std²) (Huang et al.; their per-figure σ was not recovered)."""
        ku, kv = jax.random.split(key)
        return {
            "u": self.init_std * jax.random.normal(ku, (num, self.m, self.X.shape[1])),
            "v": self.init_std * jax.random.normal(kv, (num, self.m)),
        }
