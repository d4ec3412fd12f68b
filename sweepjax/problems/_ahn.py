"""Ahn et al.'s threshold-neuron problems: the sparse-coding ReLU model, its mean model, the full net.

Data: x = λ·y·e_j + ξ (``sweepjax.datasets.sparse_coding``). Loss: logistic, averaged over samples
(the 8π/d² threshold needs the mean, not the sum). Bias learning ("threshold neurons", b∞ < 0)
happens only for η > 8π/d²: there the sharpness at the minimiser reached by gradient flow,
½d²g(0)² = d²/(4π), exceeds 2/η, GD enters the edge of stability, and b drifts down until
½d²g(b)² ≤ 2/η, i.e. b∞ ≤ g⁻¹(2/√(ηd²)) (``theory.ahn_bias_bound``).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.stats import norm
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ._base import AbstractProblem
from ._huang import check_classification_data


def smoothed_relu(b: Float[Array, "*s"]) -> Float[Array, "*s"]:
    """g(b) = E_{z~N(0,1)} ReLU(z + b) = φ(b) + bΦ(b); g' = Φ, g(0)² = 1/(2π)."""
    return norm.pdf(b) + b * norm.cdf(b)


def symmetric_logistic(s: Float[Array, "*s"]) -> Float[Array, "*s"]:
    """ℓ_sym(s) = ½[log(1 + e^{−s}) + log(1 + e^{s})]; ℓ'_sym = ½tanh(s/2), ℓ''_sym(0) = ¼."""
    return 0.5 * (jax.nn.softplus(-s) + jax.nn.softplus(s))


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


class SparseCodingReLU(AbstractProblem):
    r"""Ahn et al. (2): f(x) = a⁻ Σᵢ ReLU(−x[i] + b) + a⁺ Σᵢ ReLU(x[i] + b), R = mean ℓ_logi(y f(x)).

    Params ``{"a_minus": (), "a_plus": (), "b": ()}``; init a± ~ N(0, 1/(2d)), b = 0 (Fig. 1).
    Threshold (the paper, via the mean model): GD learns a negative bias (a threshold neuron) iff
    η > 8π/d² (``theory.threshold_neuron_lr``); Fig. 1 uses d = 200, n = 300, λ = 3 and 10/η
    iterations (``max_steps=sj.time_horizon(lrs, 10)``). Observables: ``b`` and ``A`` = d(a⁻ + a⁺).

    Unlike the mean model, this network also learns a bias under gradient flow, through the
    difference mode a⁺ − a⁻ (the linear classifier on Σᵢ[ReLU(x[i] + b) − ReLU(−x[i] + b)], whose
    noise part cancels in expectation, so the O(1) signal the mean model drops matters; b < 0
    soft-thresholds the noise). So below 8π/d² the bias is not ≈ 0 and does not plateau: it drifts
    down at a rate that does not depend on η (b is a function of the time ηT only). At Fig. 1's
    d = 200, n = 300, λ = 3 (``sweepjax reproduce ahn-relu-figure1``, 8 data seeds × 2 inits), b at
    ηT = 10 is −0.07 … −0.32 across data seeds, equal at 0.5× and 0.9× 8π/d² to within 0.0013; on
    seed 0 at η = 0.5·8π/d², b(ηT) is −0.018 (ηT = 1), −0.18 (10), −0.48 (20), −1.74 (40). The
    threshold shows cleanly in the early bias: at ηT = 1, b is −0.009 … −0.031 at 0.9× 8π/d² and
    −0.069 … −0.104 at 1.25× 8π/d², lower on every seed. Keeping only the difference mode
    (a⁻ = −a⁺) gives the same drift for every η; keeping only the mean model's mode (a⁻ = a⁺) gives
    b ≈ −0.007 below 8π/d² and the drop above it (seed 0). The init scale does not matter
    (a± ~ N(0, 1/(2d²)): −0.170 at ηT = 10, seed 0).
    """

    X: Float[Array, "n d"]
    y: Float[Array, " n"]

    def __init__(self, X: ArrayLike, y: ArrayLike):
        X, y = check_classification_data(X, y)
        self.X, self.y = jnp.asarray(X), jnp.asarray(y)

    def outputs(self, params: dict[str, Float[Array, ""]]) -> Float[Array, " n"]:
        """f(xᵢ) for every sample."""
        b = params["b"]
        neg = jnp.sum(jax.nn.relu(-self.X + b), axis=1)
        pos = jnp.sum(jax.nn.relu(self.X + b), axis=1)
        return params["a_minus"] * neg + params["a_plus"] * pos

    def loss(self, params: dict[str, Float[Array, ""]]) -> Float[Array, ""]:
        return jnp.mean(jax.nn.softplus(-self.y * self.outputs(params)))

    def observables(self, params: dict[str, Float[Array, ""]]) -> dict[str, Float[Array, ""]]:
        d = self.X.shape[1]
        return {"b": params["b"], "A": d * (params["a_minus"] + params["a_plus"])}

    def param_shapes(self) -> dict[str, jax.ShapeDtypeStruct]:
        s = jax.ShapeDtypeStruct((), jnp.float32)
        return {"a_minus": s, "a_plus": s, "b": s}

    def init(self, key: PRNGKeyArray, num: int) -> dict[str, Float[Array, " num"]]:
        """a± ~ N(0, 1/(2d)) i.i.d., b = 0."""
        d = self.X.shape[1]
        k1, k2 = jax.random.split(key)
        std = jnp.sqrt(1.0 / (2.0 * d))
        return {
            "a_minus": std * jax.random.normal(k1, (num,)),
            "a_plus": std * jax.random.normal(k2, (num,)),
            "b": jnp.zeros((num,)),
        }


class AhnMeanModel(AbstractProblem):
    r"""Ahn et al.'s mean model (5): GD on ℓ_sym(A·g(b)) over θ = (A, b), with the A-step scaled by 2d².

    ``step_scale()`` is (2d², 1), so one sweep step is exactly (5):
    A ← A − 2d²η ℓ'_sym(Ag(b)) g(b),  b ← b − η ℓ'_sym(Ag(b)) A g'(b),
    with g(b) = φ(b) + bΦ(b) (``smoothed_relu``) and A = d(a⁻ + a⁺). The recorded sharpness is then
    λ_max(S^{1/2}∇²S^{1/2}), the quantity to compare with 2/η; at (0, b) it is ½d²g(b)², which is
    d²/(4π) at b = 0: so b∞ ≈ −O(1/d²) for η < 8π/d² (Theorem 3) and b∞ ≤ g⁻¹(2/√(ηd²)) for
    η > 8π/d² (Theorem 4; −0.0873 at η = 10π/d²). Gradient flow conserves ½A² − 2d²κ(b),
    κ(b) = ∫₀ᵇ g/g'.

    ``d`` is a traced family parameter (a new d does not recompile). ``init`` draws A₀ ~ N(0, 1)
    (the paper's a± = Θ(1/d), so A₀ = Θ(1)) and b₀ = 0; ``init_grid(A0s)`` gives chosen A₀.
    Observables ``A`` and ``b``.
    """

    d: Float[Array, ""]

    def __init__(self, d: ArrayLike):
        d_arr = np.asarray(d, dtype=float)
        if d_arr.ndim != 0 or not np.isfinite(d_arr) or d_arr <= 0:
            raise ValueError(f"d must be a positive finite scalar, got {d!r}")
        self.d = jnp.asarray(d_arr, dtype=jnp.float32)

    def loss(self, params: Float[Array, "2"]) -> Float[Array, ""]:
        return symmetric_logistic(params[0] * smoothed_relu(params[1]))

    def step_scale(self) -> Float[Array, "2"]:
        return jnp.stack([2.0 * self.d**2, jnp.ones_like(self.d)])

    def observables(self, params: Float[Array, "2"]) -> dict[str, Float[Array, ""]]:
        return {"A": params[0], "b": params[1]}

    def param_shapes(self) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct((2,), jnp.float32)

    def init(self, key: PRNGKeyArray, num: int) -> Float[Array, "num 2"]:
        """A₀ ~ N(0, 1), b₀ = 0."""
        return jnp.stack([jax.random.normal(key, (num,)), jnp.zeros((num,))], axis=-1)

    @staticmethod
    def init_grid(A0s: ArrayLike) -> Float[Array, "n 2"]:
        """Inits (A₀, 0), one per entry of ``A0s``."""
        A0s = jnp.atleast_1d(jnp.asarray(A0s, dtype=jnp.float32))
        if A0s.ndim != 1 or not bool(jnp.all(jnp.isfinite(A0s))):
            raise ValueError(f"A0s must be a finite scalar or 1-D array, got shape {A0s.shape}")
        return jnp.stack([A0s, jnp.zeros_like(A0s)], axis=-1)


class SparseCodingNetwork(AbstractProblem):
    r"""Ahn et al. Appendix B: f(x) = Σᵢ aᵢ ReLU(wᵢᵀx + b) with one shared bias b, mean logistic loss.

    Params ``{"a": (m,), "w": (m, d), "b": ()}``; He init a ~ N(0, I/m), w ~ N(0, I/d), b = 0.
    The paper uses d = 100, m = 2000, n = 20000, λ = 5; reduced sizes run on CPU.
    Observables: ``b`` and ``a_mean`` (the mean second-layer weight, which oscillates at EoS).
    """

    X: Float[Array, "n d"]
    y: Float[Array, " n"]
    m: int = eqx.field(static=True)

    def __init__(self, X: ArrayLike, y: ArrayLike, m: int):
        X, y = check_classification_data(X, y)
        self.m = _positive_int(m, "m")
        self.X, self.y = jnp.asarray(X), jnp.asarray(y)

    def outputs(self, params: dict[str, Float[Array, "..."]]) -> Float[Array, " n"]:
        """f(xᵢ) for every sample."""
        return jax.nn.relu(self.X @ params["w"].T + params["b"]) @ params["a"]

    def loss(self, params: dict[str, Float[Array, "..."]]) -> Float[Array, ""]:
        return jnp.mean(jax.nn.softplus(-self.y * self.outputs(params)))

    def observables(self, params: dict[str, Float[Array, "..."]]) -> dict[str, Float[Array, ""]]:
        return {"b": params["b"], "a_mean": jnp.mean(params["a"])}

    def param_shapes(self) -> dict[str, jax.ShapeDtypeStruct]:
        d = self.X.shape[1]
        return {
            "a": jax.ShapeDtypeStruct((self.m,), jnp.float32),
            "w": jax.ShapeDtypeStruct((self.m, d), jnp.float32),
            "b": jax.ShapeDtypeStruct((), jnp.float32),
        }

    def init(self, key: PRNGKeyArray, num: int) -> dict[str, Float[Array, "..."]]:
        """He init: a ~ N(0, I/m), w ~ N(0, I/d), b = 0."""
        d = self.X.shape[1]
        ka, kw = jax.random.split(key)
        return {
            "a": jax.random.normal(ka, (num, self.m)) / jnp.sqrt(self.m),
            "w": jax.random.normal(kw, (num, self.m, d)) / jnp.sqrt(d),
            "b": jnp.zeros((num,)),
        }
