"""Wang, Xu, Zhao, Tao's networks (§7 / Appendix F): two- and three-layer nets without biases,
optional full-batch batch norm, MSE or Huber loss (setup recovered from the authors' code)."""

from __future__ import annotations

import abc
import numbers

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ._base import AbstractProblem
from ._nn import ACTIVATIONS, LOSSES, batch_norm, check_name, check_regression_data, torch_linear_init

Params = dict[str, Float[Array, "..."]]


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _check_norms(norms, count: int):
    if norms is None:
        return (None,) * count
    arr = np.asarray(norms, dtype=float)
    if arr.shape != (count,) or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"norms must be {count} positive finite Frobenius norms (one per trained layer), got {norms!r}")
    return tuple(float(v) for v in arr)


def _risk(loss_name: str, out: Float[Array, "n k"], Y: Float[Array, "n k"]) -> Float[Array, ""]:
    """(1/n) Σᵢ Σₖ ℓ(f_k(xᵢ) − y_ik)."""
    return jnp.mean(jnp.sum(LOSSES[loss_name](out - Y), axis=1))


def _frobenius(params: Params) -> dict[str, Float[Array, ""]]:
    return {f"norm_{name}": jnp.sqrt(jnp.sum(W * W)) for name, W in params.items()}


def _common_settings(width, activation, loss, batch_norm) -> tuple[int, str, str, bool]:
    """Validated (width, activation, loss, batch_norm) shared by both networks."""
    if not isinstance(batch_norm, bool):
        raise ValueError(f"batch_norm must be a bool, got {batch_norm!r}")
    return (_positive_int(width, "width"), check_name(activation, ACTIVATIONS, "activation"),
            check_name(loss, LOSSES, "loss"), batch_norm)  # fmt: skip


class _AbstractWangNetwork(AbstractProblem):
    """Trained layers ``{"W1": (width, d), "W2": (k, width)}``; the risk, the balancing observables
    (Frobenius norms) and the rescaled PyTorch init are shared by both networks."""

    X: eqx.AbstractVar[Float[Array, "n d"]]
    Y: eqx.AbstractVar[Float[Array, "n k_out"]]
    width: eqx.AbstractVar[int]
    activation: eqx.AbstractVar[str]
    loss_name: eqx.AbstractVar[str]
    batch_norm: eqx.AbstractVar[bool]

    @abc.abstractmethod
    def outputs(self, params: Params) -> Float[Array, "n k_out"]:
        """f(xᵢ) for every sample."""

    @abc.abstractmethod
    def _w2_rows(self) -> int:
        """k, the number of rows of W₂."""

    def loss(self, params: Params) -> Float[Array, ""]:
        return _risk(self.loss_name, self.outputs(params), self.Y)

    def observables(self, params: Params) -> dict[str, Float[Array, ""]]:
        return _frobenius(params)

    def param_shapes(self) -> dict[str, jax.ShapeDtypeStruct]:
        d, k = self.X.shape[1], self._w2_rows()
        return {"W1": jax.ShapeDtypeStruct((self.width, d), jnp.float32),
                "W2": jax.ShapeDtypeStruct((k, self.width), jnp.float32)}  # fmt: skip

    def init(self, key: PRNGKeyArray, num: int, norms: tuple[float, float] | None = None) -> Params:
        """PyTorch's default U(−1/√fan_in, 1/√fan_in) per layer, rescaled to Frobenius norms
        ``norms = (‖W₁‖_F, ‖W₂‖_F)`` when given (the paper: (10, 40) MNIST, (6, 20) CIFAR-10)."""
        n1, n2 = _check_norms(norms, 2)
        shapes = self.param_shapes()
        k1, k2 = jax.random.split(key)
        return {"W1": torch_linear_init(k1, num, shapes["W1"].shape, n1),
                "W2": torch_linear_init(k2, num, shapes["W2"].shape, n2)}  # fmt: skip


class WangTwoLayer(_AbstractWangNetwork):
    r"""f(x) = W₂ σ(W₁x) (no biases), or W₂ σ(BN(W₁x)) with ``batch_norm=True``; risk
    R = (1/n) Σᵢ Σₖ ℓ(f_k(xᵢ) − y_ik) with ℓ = ½r² (``"mse"``) or Huber δ = 1 (``"huber"``).

    Wang et al. Table 1: dor(ℓ ∘ σ) = dor(ℓ)·dor(σ) with dor tanh 0, ReLU 1, ReLU³ 3, Huber 1, MSE 2;
    EoS iff dor < 2, balancing iff dor ≤ 2; batch norm (train mode over all n samples, no affine,
    ε = 1e-5) makes the activation bounded (dor 0) and restores EoS. The paper's runs: width 200,
    n = 1000, one-hot labels, ‖W₁‖_F/‖W₂‖_F = 10/40 (MNIST) or 6/20 (CIFAR-10).

    Params ``{"W1": (width, d), "W2": (k, width)}``; observables ``norm_W1``, ``norm_W2`` (Frobenius
    norms, the balancing curves). ``activation`` ∈ {"tanh", "relu", "relu3"} (ReLU³ = max(0, z)³).
    """

    X: Float[Array, "n d"]
    Y: Float[Array, "n k"]
    width: int = eqx.field(static=True)
    activation: str = eqx.field(static=True)
    loss_name: str = eqx.field(static=True)
    batch_norm: bool = eqx.field(static=True)

    def __init__(self, X: ArrayLike, Y: ArrayLike, width: int = 200, activation: str = "tanh",
                 loss: str = "mse", batch_norm: bool = False):
        X, Y = check_regression_data(X, Y)
        self.width, self.activation, self.loss_name, self.batch_norm = _common_settings(width, activation, loss, batch_norm)
        self.X, self.Y = jnp.asarray(X), jnp.asarray(Y)

    def outputs(self, params: Params) -> Float[Array, "n k"]:
        """f(xᵢ) for every sample, shape (n, k)."""
        z = self.X @ params["W1"].T
        if self.batch_norm:
            z = batch_norm(z)
        return ACTIVATIONS[self.activation](z) @ params["W2"].T

    def _w2_rows(self) -> int:
        return self.Y.shape[1]


class WangThreeLayer(_AbstractWangNetwork):
    r"""f(x) = V σ(W₂W₁x) (σ on the k-dim vector W₂W₁x; with ``batch_norm=True`` V σ(BN(W₂W₁x)));
    V is FIXED (a data field, not trained; the paper draws its entries uniformly from {±1}, e.g.
    ``jax.random.rademacher``). Risk as in ``WangTwoLayer``. The paper uses it for Huber + ReLU³
    (dor 3: no EoS; with BN: EoS), with ‖W₁‖_F/‖W₂‖_F = 3/10 (CIFAR-10) or ≈ 6/15 (MNIST).

    Params ``{"W1": (width, d), "W2": (k, width)}`` with k = V.shape[1]; V has shape (k_out, k) with
    k_out = Y.shape[1]. Observables ``norm_W1``, ``norm_W2``.
    """

    X: Float[Array, "n d"]
    Y: Float[Array, "n k_out"]
    V: Float[Array, "k_out k"]
    width: int = eqx.field(static=True)
    activation: str = eqx.field(static=True)
    loss_name: str = eqx.field(static=True)
    batch_norm: bool = eqx.field(static=True)

    def __init__(self, X: ArrayLike, Y: ArrayLike, V: ArrayLike, width: int = 200, activation: str = "relu3",
                 loss: str = "huber", batch_norm: bool = False):
        X, Y = check_regression_data(X, Y)
        try:
            V = np.asarray(V, dtype=np.float32)
        except (TypeError, ValueError) as e:
            raise ValueError(f"V must be a real matrix, got {type(V).__name__}") from e
        if V.ndim != 2 or V.shape[0] != Y.shape[1] or V.shape[1] == 0:
            raise ValueError(f"V must have shape (k_out, k) with k_out = {Y.shape[1]} (Y's columns), got {V.shape}")
        if not np.all(np.isfinite(V)):
            raise ValueError("V must be finite (found NaN or inf)")
        self.width, self.activation, self.loss_name, self.batch_norm = _common_settings(width, activation, loss, batch_norm)
        self.X, self.Y, self.V = jnp.asarray(X), jnp.asarray(Y), jnp.asarray(V)

    def outputs(self, params: Params) -> Float[Array, "n k_out"]:
        """f(xᵢ) for every sample, shape (n, k_out)."""
        z = (self.X @ params["W1"].T) @ params["W2"].T
        if self.batch_norm:
            z = batch_norm(z)
        return ACTIVATIONS[self.activation](z) @ self.V.T

    def _w2_rows(self) -> int:
        return self.V.shape[1]
