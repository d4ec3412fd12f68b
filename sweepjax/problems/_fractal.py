"""Sohl-Dickstein (2024), "The boundary of neural network trainability is fractal": a two-layer tanh
network in the mean-field parameterization, trained by full-batch GD with one step size per layer.

The setting of the paper and its public notebook: width h = 16, input dimension d = h, as many data
points as parameters (n = h·d + h = 272), inputs and targets i.i.d. N(0, 1), one output, mean squared
error, N(0, 1) weights, no biases. The fractal is the boundary between per-layer step sizes (η₁, η₂)
for which training converges and those for which it diverges; sweep it with
``rule=sj.GD(groups={"w1": "lr1", "w2": "lr2"})`` and ``axes={"lr1": ..., "lr2": ...}`` at ``lrs=[1.0]``.
"""

from __future__ import annotations

import math
import numbers

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ._base import AbstractProblem

Params = dict[str, Float[Array, "..."]]


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def fractal_data(seed: int = 0, width: int = 16, input_dim: int = 16, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(X (n, d), y (n,)) i.i.d. N(0, 1) from ``numpy.random.default_rng(seed)``, float32; n defaults to
    the number of parameters h·d + h (the paper's ``dataset_param_multiple = 1``)."""
    width, input_dim = _positive_int(width, "width"), _positive_int(input_dim, "input_dim")
    n = width * input_dim + width if n is None else _positive_int(n, "n")
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, input_dim)).astype(np.float32)
    y = rng.standard_normal(n).astype(np.float32)
    return X, y


class TanhTwoLayer(AbstractProblem):
    r"""Sohl-Dickstein's two-layer tanh network, mean-field parameterization, MSE.

    f(x) = (1/h) Σⱼ w2ⱼ tanh(c · (W1 x)ⱼ),  L(W1, w2) = (1/n) Σᵢ (f(xᵢ) − yᵢ)²

    with c = √(2/d) (``input_scale``), as in the paper's public notebook (each layer's pre-activation
    divided by √fan_in, tanh of √2 times it, the output divided by √h once more: 1/h in all). There is
    no ½ in the loss and no bias. ``input_scale=1.0`` gives the plain f(x) = (1/h) w2ᵀ tanh(W1 x).

    Args:
        X: (n, d) inputs. y: (n,) targets. Without them, ``fractal_data(seed, width, input_dim)``:
            n = h·d + h points, X and y i.i.d. N(0, 1).
        width: h, the hidden width (default 16).
        input_dim: d, used only when the data are drawn here (default 16).
        seed: the data's seed when they are drawn here.
        input_scale: c (default √(2/d)).

    Params: ``{"w1": (h, d), "w2": (h,)}`` (h·d + h = 272 numbers at the default sizes). Init: every
    weight i.i.d. N(0, 1). Observables: none (a phase diagram of this net needs only the loss).
    """

    X: Float[Array, "n d"]
    y: Float[Array, " n"]
    input_scale: Float[Array, ""]
    width: int = eqx.field(static=True)

    def __init__(
        self,
        X: ArrayLike | None = None,
        y: ArrayLike | None = None,
        *,
        width: int = 16,
        input_dim: int = 16,
        seed: int = 0,
        input_scale: float | None = None,
    ):
        width = _positive_int(width, "width")
        if (X is None) != (y is None):
            raise ValueError("pass both X and y, or neither (then they are drawn from seed)")
        if X is None:
            X, y = fractal_data(seed, width, input_dim)
        X, y = np.asarray(X, np.float32), np.asarray(y, np.float32)
        if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError(f"X must have shape (n, d) with n, d ≥ 1, got {X.shape}")
        if y.shape != (X.shape[0],):
            raise ValueError(f"y must have shape (n,) = ({X.shape[0]},), got {y.shape}")
        if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
            raise ValueError("X and y must be finite (found NaN or inf)")
        if input_scale is None:
            input_scale = math.sqrt(2.0 / X.shape[1])
        if isinstance(input_scale, bool) or not isinstance(input_scale, numbers.Real) or not math.isfinite(input_scale):
            raise ValueError(f"input_scale must be a finite number, got {input_scale!r}")
        self.X, self.y = jnp.asarray(X), jnp.asarray(y)
        self.input_scale = jnp.asarray(input_scale, jnp.float32)
        self.width = width

    @classmethod
    def from_seed(cls, seed: int = 0, width: int = 16, input_dim: int = 16, **kwargs) -> TanhTwoLayer:
        """The paper's setting with data drawn from ``seed``: n = h·d + h points, X, y ~ N(0, 1)."""
        return cls(width=width, input_dim=input_dim, seed=seed, **kwargs)

    def outputs(self, params: Params) -> Float[Array, " n"]:
        """f(xᵢ) for every sample."""
        hidden = jnp.tanh(self.input_scale * (self.X @ params["w1"].T))
        return hidden @ params["w2"] / self.width

    def loss(self, params: Params) -> Float[Array, ""]:
        r = self.outputs(params) - self.y
        return jnp.mean(r * r)

    def param_shapes(self) -> dict[str, jax.ShapeDtypeStruct]:
        return {"w1": jax.ShapeDtypeStruct((self.width, self.X.shape[1]), jnp.float32),
                "w2": jax.ShapeDtypeStruct((self.width,), jnp.float32)}  # fmt: skip

    def init(self, key: PRNGKeyArray, num: int) -> Params:
        """``num`` inits, every weight i.i.d. N(0, 1)."""
        k1, k2 = jax.random.split(key)
        return {"w1": jax.random.normal(k1, (num, self.width, self.X.shape[1])),
                "w2": jax.random.normal(k2, (num, self.width))}  # fmt: skip
