"""A fully connected network in the NTK parameterization whose width and depth are traced parameters, so
that widths and depths are named axes of one sweep (Lewkowycz et al. 2020; Kalra & Barkeshli 2023).

The parameters have the largest shape, ``max_width`` units in each of ``max_depth`` hidden layers; a run of
width w and depth d uses the first w units of the first d hidden layers. Units beyond w are multiplied by
0 and layers beyond d pass their input through, so the other weights get no gradient and no curvature:
loss, gradient, Hessian eigenvalues and GD trajectory are those of the w × d network made from the leading
blocks of the same N(0, 1) draws (``tests/test_problems_fcn.py`` checks this against the small network).
The NTK parameterization puts the 1/√fan_in in the forward pass, so the init does not depend on the width.
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
from ._nn import check_name, check_regression_data

Params = dict[str, Float[Array, "..."]]

#: φ by name; "linear" is the identity (the deep linear network, Lewkowycz et al.'s uv model at depth 1)
FCN_ACTIVATIONS = {"relu": jax.nn.relu, "tanh": jnp.tanh, "linear": lambda z: z}


def _size(value, name: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an int ≥ {low}, got {value!r}")
    return int(value)


def _real(value, name: str, *, positive: bool = False) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (positive and value <= 0) or value < 0:
        raise ValueError(f"{name} must be a {'positive' if positive else 'non-negative'} finite number, got {value!r}")
    return float(value)


class FullyConnected(AbstractProblem):
    r"""f(x) = W_out h_d / √w + σ_b b_out, h_l = φ(σ_w W_l h_{l−1} / √fan_in + σ_b b_l), h_0 = x; MSE.

    L(θ) = (1/2n) Σᵢ ‖f(xᵢ) − yᵢ‖², every weight and bias ~ N(0, 1) (the NTK parameterization: fan_in is
    d_in for the first layer and w after it). ``width`` w and ``depth`` d (hidden layers) are traced
    scalars: sweep them as named axes (``axes={"width": [32, 64], "depth": [1, 2, 4]}``); each must lie in
    [1, max_width] and [1, max_depth] (whole numbers: a width is the number of units kept). Every run
    costs a ``max_width`` × ``max_depth`` network.

    Args:
        X: (n, d_in) inputs. Y: (n, k) targets (or (n,)).
        max_width, max_depth: the largest width and number of hidden layers the sweep will use.
        width, depth: the values used outside a sweep over them (default: the largest).
        activation: φ, ``"relu"`` (default), ``"tanh"`` or ``"linear"``.
        weight_std: σ_w of the hidden layers (default √2 for ReLU, else 1); the readout has 1.
        bias_std: σ_b (default 0: the biases multiply 0, so they have no effect and never move).

    Params: ``{"w_in": (max_width, d_in), "w_hidden": (max_depth − 1, max_width, max_width),
    "w_out": (k, max_width), "b": (max_depth, max_width), "b_out": (k,)}``.
    Observables: ``output_norm`` = ‖f(X)‖_F/√n.
    """

    X: Float[Array, "n d"]
    Y: Float[Array, "n k"]
    width: Float[Array, ""]
    depth: Float[Array, ""]
    weight_std: Float[Array, ""]
    bias_std: Float[Array, ""]
    max_width: int = eqx.field(static=True)
    max_depth: int = eqx.field(static=True)
    activation: str = eqx.field(static=True)

    def __init__(
        self,
        X: ArrayLike,
        Y: ArrayLike,
        *,
        max_width: int,
        max_depth: int = 1,
        width: int | None = None,
        depth: int | None = None,
        activation: str = "relu",
        weight_std: float | None = None,
        bias_std: float = 0.0,
    ):
        X, Y = check_regression_data(X, Y)
        self.max_width, self.max_depth = _size(max_width, "max_width"), _size(max_depth, "max_depth")
        width = self.max_width if width is None else _size(width, "width")
        depth = self.max_depth if depth is None else _size(depth, "depth")
        if width > self.max_width or depth > self.max_depth:
            limits = f"width ≤ max_width = {self.max_width} and depth ≤ max_depth = {self.max_depth}"
            raise ValueError(f"{limits}, got {width}, {depth}")
        self.activation = check_name(activation, FCN_ACTIVATIONS, "activation")
        if weight_std is None:
            weight_std = math.sqrt(2.0) if activation == "relu" else 1.0
        self.X, self.Y = jnp.asarray(X), jnp.asarray(Y)
        self.width, self.depth = jnp.asarray(width, jnp.float32), jnp.asarray(depth, jnp.float32)
        self.weight_std = jnp.asarray(_real(weight_std, "weight_std", positive=True), jnp.float32)
        self.bias_std = jnp.asarray(_real(bias_std, "bias_std"), jnp.float32)

    def outputs(self, params: Params) -> Float[Array, "n k"]:
        """f(xᵢ) for every sample, at this problem's width and depth."""
        phi = FCN_ACTIVATIONS[self.activation]
        mask = (jnp.arange(self.max_width) < self.width).astype(self.X.dtype)
        sw, sb = self.weight_std, self.bias_std
        h = mask * phi(sw * self.X @ params["w_in"].T / math.sqrt(self.X.shape[1]) + sb * params["b"][0])
        for layer in range(1, self.max_depth):
            z = sw * h @ params["w_hidden"][layer - 1].T / jnp.sqrt(self.width) + sb * params["b"][layer]
            h = jnp.where(layer < self.depth, mask * phi(z), h)
        return h @ params["w_out"].T / jnp.sqrt(self.width) + sb * params["b_out"]

    def loss(self, params: Params) -> Float[Array, ""]:
        r = self.outputs(params) - self.Y
        return 0.5 * jnp.sum(r * r) / self.X.shape[0]

    def observables(self, params: Params) -> dict[str, Float[Array, ""]]:
        return {"output_norm": jnp.sqrt(jnp.sum(self.outputs(params) ** 2) / self.X.shape[0])}

    def param_shapes(self) -> dict[str, jax.ShapeDtypeStruct]:
        w, d, k = self.max_width, self.max_depth, self.Y.shape[1]
        shapes = {"w_in": (w, self.X.shape[1]), "w_hidden": (d - 1, w, w), "w_out": (k, w), "b": (d, w), "b_out": (k,)}
        return {name: jax.ShapeDtypeStruct(s, jnp.float32) for name, s in shapes.items()}

    def init(self, key: PRNGKeyArray, num: int) -> Params:
        """``num`` inits, every weight and bias i.i.d. N(0, 1) (the width scaling is in the forward pass)."""
        shapes = self.param_shapes()
        keys = jax.random.split(key, len(shapes))
        return {name: jax.random.normal(k, (num, *s.shape)) for k, (name, s) in zip(keys, shapes.items())}

    def check_axes(self, values) -> None:
        """A swept width (depth) must hold whole numbers in [1, max_width] ([1, max_depth])."""
        for name, limit in (("width", self.max_width), ("depth", self.max_depth)):
            v = np.asarray(values.get(name, 1.0))
            if np.any(v != np.round(v)) or np.any(v < 1) or np.any(v > limit):
                raise ValueError(
                    f"axes[{name!r}] must hold whole numbers in [1, max_{name} = {limit}], got {v.ravel()[:5].tolist()}"
                )

    def restrict(self, params: Params, width: int, depth: int) -> Params:
        """The leading w × d blocks of (unbatched) ``params``: the parameters of the small network they act as."""
        w, d = _size(width, "width"), _size(depth, "depth")
        p = jax.tree.map(np.asarray, params)
        return {"w_in": p["w_in"][:w], "w_hidden": p["w_hidden"][: d - 1, :w, :w], "w_out": p["w_out"][:, :w],
                "b": p["b"][:d, :w], "b_out": p["b_out"]}  # fmt: skip
