"""Cai, Wu, Mei, Lindsey, Bartlett: large-stepsize GD on non-homogeneous two-layer networks.

f(w; x) = (1/m) Σⱼ aⱼ φ(xᵀw⁽ʲ⁾) with fixed aⱼ = ±1 and trained w ∈ ℝ^{m×d}; logistic risk
L(w) = (1/n) Σᵢ log(1 + e^{−yᵢ f(w; xᵢ)}). Built on the generic ``Supervised`` problem: the network
is an ``equinox`` module (``CaiNetwork``) and only its ``w`` is trainable.

Claims (poster, Cor. 4.2): with budget T ≥ Ω(n) and η = Θ(T), GD leaves the EoS phase by T/2 and
L(w_T) ≤ Õ(1/T²), while any GD whose risk decreases monotonically has L(w_T) ≥ Ω(1/T). In the
stable phase the normalized margin minᵢ yᵢf/‖w‖ (M = 1) increases (nearly monotonically).
"""

from __future__ import annotations

import math
import numbers

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.stats import norm
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ._base import AbstractProblem
from ._model import Supervised


def leaky_softplus(z, c, h):
    """φ(z) = cz + (1 − c) softplus(z); φ' ∈ [c, 1], κ = (1 − c) log 2."""
    return c * z + (1.0 - c) * jax.nn.softplus(z)


def gelu(z, c, h):
    """φ(z) = zΦ(z) (exact GELU); κ = 2/(e√(2π))."""
    return z * norm.cdf(z)


def silu(z, c, h):
    """φ(z) = z·sigmoid(z); κ ≈ 0.4392."""
    return z * jax.nn.sigmoid(z)


def huberized_relu(z, c, h):
    """φ(z) = 0 (z < 0), z²/(2h) (0 ≤ z ≤ h), z − h/2 (z > h); κ = h/2."""
    u = jnp.clip(z, 0.0, h)
    return jnp.where(z > h, z - 0.5 * h, u * u / (2.0 * h))


#: Cai et al.'s activations φ(z; c, h) (c: leaky-softplus slope, h: Huberized-ReLU width)
CAI_ACTIVATIONS = {
    "leaky_softplus": leaky_softplus,
    "gelu": gelu,
    "silu": silu,
    "huberized_relu": huberized_relu,
}


class CaiNetwork(eqx.Module):
    """x ↦ (1/m) Σⱼ aⱼ φ(xᵀw⁽ʲ⁾) for one sample x; ``w`` (m, d) is trained, ``a``, ``c``, ``h`` fixed."""

    w: Float[Array, "m d"]
    a: Float[Array, " m"]
    c: Float[Array, ""]
    h: Float[Array, ""]
    activation: str = eqx.field(static=True)

    def __call__(self, x: Float[Array, " d"]) -> Float[Array, ""]:
        phi = CAI_ACTIVATIONS[self.activation]
        return jnp.mean(self.a * phi(self.w @ x, self.c, self.h))


def _trainable_w(net: CaiNetwork):
    spec = jax.tree.map(lambda _: False, net)
    return eqx.tree_at(lambda n: n.w, spec, True)


def _check_scalar(name: str, value, low: float, high: float, high_inclusive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if not (low < value and (value <= high if high_inclusive else value < high)):
        raise ValueError(f"{name} must lie in ({low}, {high}{']' if high_inclusive else ')'}, got {value!r}")
    return float(value)


class CaiTwoLayer(AbstractProblem):
    r"""Cai et al.'s two-layer net (2): f(w; x) = (1/m) Σⱼ aⱼ φ(xᵀw⁽ʲ⁾), logistic risk (mean).

    Args:
        X: (n, d) inputs (the theory assumes ‖xᵢ‖ ≤ 1). y: (n,) labels ±1.
        m: width. aⱼ = +1 for the first ⌈m/2⌉ neurons, −1 for the rest (a field, traced).
        activation: ``"leaky_softplus"`` (slope c ∈ (0, 1]; the paper's c = 0.5), ``"gelu"``,
            ``"silu"``, ``"huberized_relu"`` (width h > 0).

    Params: w of shape (m, d). Init: wⱼ ~ N(0, I/d) (``init_scale`` times that).
    Observables: ``normalized_margin`` = minᵢ yᵢf(w; xᵢ)/‖w‖ (M = 1), ``w_norm`` = ‖w‖_F and
    ``margin`` = minᵢ yᵢf(w; xᵢ). Facts: ‖∇_w f‖ ≤ sup|φ'|·max‖xᵢ‖/√m and
    ‖∇²_w f‖ ≤ sup|φ''|·max‖xᵢ‖²/m.
    The 5-point set of Fig. 4 (``datasets.cai_five_points``) uses m = 2, leaky softplus c = 0.5
    and η = 3.
    """

    base: Supervised
    init_scale: Float[Array, ""]

    def __init__(
        self,
        X: ArrayLike,
        y: ArrayLike,
        m: int,
        activation: str = "leaky_softplus",
        c: float = 0.5,
        h: float = 1.0,
        init_scale: float = 1.0,
    ):
        if not isinstance(activation, str) or activation not in CAI_ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(CAI_ACTIVATIONS)}, got {activation!r}")
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
            raise ValueError(f"m must be a positive int, got {m!r}")
        c = _check_scalar("c", c, 0.0, 1.0, True)
        h = _check_scalar("h", h, 0.0, math.inf, False)
        init_scale = _check_scalar("init_scale", init_scale, -math.inf, math.inf, False)
        X_np = np.asarray(X, dtype=np.float32) if not isinstance(X, np.ndarray) else X
        if X_np.ndim != 2:
            raise ValueError(f"X must have shape (n, d), got {np.shape(X)}")
        m = int(m)
        a = np.where(np.arange(m) < (m + 1) // 2, 1.0, -1.0).astype(np.float32)
        net = CaiNetwork(
            w=jnp.zeros((m, X_np.shape[1]), jnp.float32),
            a=jnp.asarray(a),
            c=jnp.asarray(c, jnp.float32),
            h=jnp.asarray(h, jnp.float32),
            activation=activation,
        )
        self.base = Supervised(net, X, y, loss="logistic", trainable=_trainable_w(net))
        if self.base.y.ndim != 1:
            raise ValueError(f"y must have shape (n,), got {self.base.y.shape}")
        self.init_scale = jnp.asarray(init_scale, jnp.float32)

    @property
    def X(self) -> Float[Array, "n d"]:
        return self.base.X

    @property
    def y(self) -> Float[Array, " n"]:
        return self.base.y

    def _params(self, w: Float[Array, "m d"]):
        return jax.tree.unflatten(jax.tree.structure(self.base.params_like), [w])

    def outputs(self, w: Float[Array, "m d"]) -> Float[Array, " n"]:
        """f(w; xᵢ) for every sample."""
        return self.base.outputs(self._params(w))

    def loss(self, w: Float[Array, "m d"]) -> Float[Array, ""]:
        return self.base.loss(self._params(w))

    def observables(self, w: Float[Array, "m d"]) -> dict[str, Float[Array, ""]]:
        margin = jnp.min(self.y * self.outputs(w))
        norm_w = jnp.sqrt(jnp.sum(w * w))
        return {"normalized_margin": margin / norm_w, "w_norm": norm_w, "margin": margin}

    def param_shapes(self) -> jax.ShapeDtypeStruct:
        return jax.tree.leaves(self.base.params_like)[0]

    def init(self, key: PRNGKeyArray, num: int) -> Float[Array, "num m d"]:
        """wⱼ ~ init_scale · N(0, I/d), i.i.d."""
        m, d = self.param_shapes().shape
        return self.init_scale * jax.random.normal(key, (num, m, d)) / jnp.sqrt(d)
