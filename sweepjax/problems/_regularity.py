"""Wang, Xu, Zhao, Tao's family f_{a,b}(x, y) = g(xᵀy) of regularity a·b (eq. (2), RECONSTRUCTED)."""

from __future__ import annotations

import numbers

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ._base import AbstractProblem


class RegularityFamily(AbstractProblem):
    r"""f_{a,b}(x, y) on ℝⁿ × ℝⁿ, Wang, Xu, Zhao, Tao, *Good regularity creates large learning rate
    implicit biases*, eq. (2).

    The paper's equation was lost; this form is RECONSTRUCTED (``formulas.md`` §1.3) and satisfies
    every property the paper states. With u = xᵀy and s = u^b − 1:

    - line 1, 0 < a < 2:  f = [(s² + 1)^{a/2} − 1] / (a b²)  (Ahn-style smoothing of |s|^a/(ab²));
    - a = 0 (the limit of line 1):  f = log(1 + s²) / (2b²);
    - line 2, a = 2:  f = (u^b − 1)² / (2b²)  (line 1 at a = 2 is exactly this).

    Facts (tested): f depends on (x, y) only through u, f = g(u) with g'(1) = 0, g''(1) = 1, so every
    minimiser is global, lies on {xᵀy = 1} (b odd) and has sharpness ‖x‖² + ‖y‖² for every (a, b);
    ∇²f = g''(u)[y; x][y; x]ᵀ + g'(u)[[0, I], [I, 0]]; GD conserves nothing but
    w = ‖x‖² − ‖y‖² obeys w_{k+1} = (1 − η²g'(u_k)²) w_k exactly. ``degree_of_regularity`` = a·b
    (2b on line 2). Good regularity (b = 1, a < 2): EoS (λ∞ ≈ 2/η) and balancing; a = 2, b ≥ 3:
    no EoS (λ∞ ≤ 1/η) and no balancing.

    Args:
        a: the loss's regularity, a float in [0, 2] (traced: a new ``a`` does not recompile).
        b: the activation's degree, a positive **odd** int (static). Even b is the case of
            Zhu et al. (2023), (x²y² − 1)², whose extra symmetry u → −u adds minimisers on xᵀy = −1.
        n: dimension of x and of y (static).

    Params: one (2n,) array θ = (x, y) (``pack``/``unpack`` convert). Observables ``"xy"`` (xᵀy),
    ``"norm_sum"`` (‖x‖² + ‖y‖², the sharpness at a minimiser) and ``"imbalance"`` (‖x‖² − ‖y‖²).
    """

    a: Float[Array, ""]
    b: int = eqx.field(static=True)
    n: int = eqx.field(static=True)

    def __init__(self, a: ArrayLike, b: int, n: int = 1):
        try:
            a_arr = np.asarray(a, dtype=float) if not isinstance(a, bool) else np.asarray(np.nan)
        except (TypeError, ValueError) as e:
            raise ValueError(f"a must be a real number in [0, 2], got {a!r}") from e
        if a_arr.ndim != 0 or not np.isfinite(a_arr) or not 0.0 <= float(a_arr) <= 2.0:
            raise ValueError(f"a must be a real number in [0, 2], got {a!r}")
        if isinstance(b, bool) or not isinstance(b, numbers.Integral) or b < 1:
            raise ValueError(f"b must be a positive odd int, got {b!r}")
        if b % 2 == 0:
            raise ValueError(
                f"b must be odd, got b={b}: the family needs odd b so that every minimiser lies on xᵀy = 1; "
                "even b is the Zhu et al. (2023) case, whose extra symmetry u → −u adds minimisers on xᵀy = −1"
            )
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        self.a = jnp.asarray(a_arr, dtype=jnp.float32)
        self.b = int(b)
        self.n = int(n)

    @property
    def degree_of_regularity(self) -> float:
        """dor(f_{a,b}) = a·b (= 2b on line 2), counted in the scalar u = xᵀy."""
        return float(self.a) * self.b

    def g(self, u: Float[Array, "*s"]) -> Float[Array, "*s"]:
        """g(u), so that f(x, y) = g(xᵀy)."""
        s = u**self.b - 1.0
        a = jnp.asarray(self.a, dtype=jnp.result_type(u))
        log_term = jnp.log1p(s * s)
        a_safe = jnp.where(a > 0, a, 1.0)
        line1 = jnp.where(a > 0, jnp.expm1(0.5 * a_safe * log_term) / a_safe, 0.5 * log_term)
        return jnp.where(a == 2.0, 0.5 * s * s, line1) / self.b**2

    @staticmethod
    def pack(x: ArrayLike, y: ArrayLike) -> Float[Array, "*b 2n"]:
        """θ = (x, y) from x, y of shape (..., n) (or scalars / (num,) arrays for n = 1)."""
        x, y = jnp.asarray(x, dtype=float), jnp.asarray(y, dtype=float)
        if x.shape != y.shape:
            raise ValueError(f"x and y must have the same shape, got {x.shape} and {y.shape}")
        if x.ndim <= 1:
            return jnp.stack([x, y], axis=-1)
        return jnp.concatenate([x, y], axis=-1)

    def unpack(self, params: Float[Array, "*b 2n"]) -> tuple[Float[Array, "*b n"], Float[Array, "*b n"]]:
        """(x, y) from θ."""
        return params[..., : self.n], params[..., self.n :]

    def loss(self, params: Float[Array, " 2n"]) -> Float[Array, ""]:
        x, y = self.unpack(params)
        return self.g(jnp.dot(x, y))

    def observables(self, params: Float[Array, " 2n"]) -> dict[str, Float[Array, ""]]:
        x, y = self.unpack(params)
        xx, yy = jnp.dot(x, x), jnp.dot(y, y)
        return {"xy": jnp.dot(x, y), "norm_sum": xx + yy, "imbalance": xx - yy}

    def param_shapes(self) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct((2 * self.n,), jnp.float32)

    def init(self, key: PRNGKeyArray, num: int) -> Float[Array, "num 2n"]:
        """x, y i.i.d. with entries N(0, 1/√n), so xᵀy has mean 0 and variance 1."""
        return jax.random.normal(key, (num, 2 * self.n)) / jnp.sqrt(jnp.sqrt(float(self.n)))
