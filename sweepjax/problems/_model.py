"""Any model as a problem: an equinox module (or a pure ``apply(params, X)``), data arrays and a loss.

``Supervised(model, X, y, loss="logistic")`` trains the model's trainable array leaves
(``eqx.partition(model, trainable)``, by default every floating-point array) on the risk
R(θ) = (1/n) Σᵢ ℓ(f_θ(xᵢ), yᵢ). The data, and any non-trainable arrays of the model, are fields
(traced: new data of the same shapes does not recompile); everything else in the model (sizes,
activation functions) is static. Inits are stacked parameter pytrees: ``problem.init(key, num)``
(with an ``init_fn``) or ``stack_inits([model_1, model_2, ...])``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray, PyTree

from ._base import AbstractProblem, Params, Scalar


def mse(f: Float[Array, " n *k"], y: Float[Array, " n *k"]) -> Float[Array, " n *k"]:
    """ℓ(f, y) = ½(f − y)² (summed over output dimensions, averaged over samples)."""
    return 0.5 * (f - y) ** 2


def logistic(f: Float[Array, " n *k"], y: Float[Array, " n *k"]) -> Float[Array, " n *k"]:
    """ℓ(f, y) = log(1 + e^{−yf}), computed stably as softplus(−yf); y ∈ {±1}."""
    return jax.nn.softplus(-y * f)


def exponential(f: Float[Array, " n *k"], y: Float[Array, " n *k"]) -> Float[Array, " n *k"]:
    """ℓ(f, y) = e^{−yf}; y ∈ {±1}."""
    return jnp.exp(-y * f)


#: name -> elementwise loss ℓ(f, y); names in ``SIGN_LABEL_LOSSES`` need labels y ∈ {±1}
SUPERVISED_LOSSES: dict[str, Callable] = {"mse": mse, "logistic": logistic, "exp": exponential}
SIGN_LABEL_LOSSES = ("logistic", "exp")


def check_data(X: ArrayLike, y: ArrayLike, *, sign_labels: bool) -> tuple[np.ndarray, np.ndarray]:
    """X (n, ...) and y (n, ...) finite real arrays with matching leading axes (y ∈ {±1} if asked)."""
    arrays = []
    for name, a in (("X", X), ("y", y)):
        try:
            a = np.asarray(a)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{name} must be a real array, got {type(a).__name__}") from e
        if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
            raise ValueError(f"{name} must be a real array, got dtype {a.dtype}")
        if np.iscomplexobj(a):
            raise ValueError(f"{name} must be real, got dtype {a.dtype}")
        if a.ndim == 0 or a.shape[0] == 0:
            raise ValueError(f"{name} must have a non-empty leading sample axis, got shape {a.shape}")
        a = a.astype(np.float32) if not np.issubdtype(a.dtype, np.floating) else a
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} must be finite (found NaN or inf)")
        arrays.append(a)
    X, y = arrays
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X and y must have the same number of samples, got X {X.shape} and y {y.shape}")
    if sign_labels and not np.all(np.abs(y) == 1.0):
        raise ValueError(f"y must hold labels ±1 for this loss, got values {np.unique(y)[:5].tolist()}")
    return X, y


def _resolve_loss(loss) -> tuple[Callable, bool]:
    if isinstance(loss, str):
        if loss not in SUPERVISED_LOSSES:
            raise ValueError(f"loss must be one of {sorted(SUPERVISED_LOSSES)} or a callable ℓ(f, y), got {loss!r}")
        return SUPERVISED_LOSSES[loss], loss in SIGN_LABEL_LOSSES
    if callable(loss):
        return loss, False
    raise ValueError(f"loss must be one of {sorted(SUPERVISED_LOSSES)} or a callable ℓ(f, y), got {loss!r}")


def _shape_struct(a) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a))


class Supervised(AbstractProblem):
    r"""R(θ) = (1/n) Σᵢ ℓ(f_θ(xᵢ), yᵢ) for any model f: an ``equinox`` module or ``apply(params, X)``.

    Args:
        model: an ``equinox`` module called on ONE sample, ``model(x)`` (vmapped over X); or,
            with ``apply``, any pytree of parameters (e.g. a dict of arrays).
        X: inputs, shape (n, ...). y: targets, shape (n, ...) (±1 labels for "logistic"/"exp").
        loss: ``"mse"`` (½(f − y)²), ``"logistic"`` (softplus(−yf), stable), ``"exp"`` (e^{−yf}),
            or a module-level callable ℓ(f, y) -> elementwise losses (summed over non-sample axes,
            averaged over samples). A fresh lambda is a new static field (a recompile).
        apply: optional pure function ``apply(model, X) -> outputs (n, ...)`` of the WHOLE batch
            (then ``model`` need not be callable).
        trainable: an ``eqx.partition`` filter (callable or bool pytree) picking the trained
            leaves; default every floating-point array. Other arrays are traced constants.
        init_fn: optional ``init_fn(key) -> model`` (a fresh model); ``init(key, num)`` stacks the
            trainable leaves of ``num`` such models.
        observables: optional name -> ``fn(model) -> scalar`` of the recombined model.

    The sweep's parameters θ are ``eqx.partition(model, trainable)[0]`` (the model's pytree with
    ``None`` at non-trained leaves); inits stack them along a leading axis. Observables always
    include ``margin`` = minᵢ yᵢf(xᵢ) for the ±1-label losses.
    """

    X: Float[Array, "n ..."]
    y: Float[Array, "n ..."]
    constants: PyTree  # non-trainable array leaves of the model (traced)
    static: PyTree = eqx.field(static=True)  # everything that is not an array
    params_like: PyTree[jax.ShapeDtypeStruct] = eqx.field(static=True)
    loss_fn: Callable = eqx.field(static=True)
    sign_labels: bool = eqx.field(static=True)
    apply: Callable | None = eqx.field(static=True)
    trainable: Any = eqx.field(static=True)
    init_fn: Callable | None = eqx.field(static=True)
    observable_fns: tuple[tuple[str, Callable], ...] = eqx.field(static=True)

    def __init__(
        self,
        model: PyTree,
        X: ArrayLike,
        y: ArrayLike,
        loss: str | Callable = "mse",
        *,
        apply: Callable | None = None,
        trainable: Any = eqx.is_inexact_array,
        init_fn: Callable[[PRNGKeyArray], PyTree] | None = None,
        observables: Mapping[str, Callable[[PyTree], Scalar]] | None = None,
    ):
        self.loss_fn, self.sign_labels = _resolve_loss(loss)
        X, y = check_data(X, y, sign_labels=self.sign_labels)
        if apply is not None and not callable(apply):
            raise TypeError(f"apply must be callable, got {type(apply).__name__}")
        if apply is None and not callable(model):
            raise TypeError(f"model must be a callable equinox module (or pass apply=), got {type(model).__name__}")
        if init_fn is not None and not callable(init_fn):
            raise TypeError(f"init_fn must be callable, got {type(init_fn).__name__}")
        params, rest = eqx.partition(model, trainable)
        if not jax.tree.leaves(params):
            raise ValueError("model has no trainable array leaves (check `trainable`)")
        if not all(eqx.is_inexact_array(a) for a in jax.tree.leaves(params)):
            raise ValueError("trainable leaves of model must be floating-point arrays")
        self.constants, self.static = eqx.partition(rest, eqx.is_array)
        self.params_like = jax.tree.map(_shape_struct, params)
        self.X, self.y = jnp.asarray(X), jnp.asarray(y)
        self.apply, self.trainable, self.init_fn = apply, trainable, init_fn
        observables = dict(observables or {})
        for name, fn in observables.items():
            if not isinstance(name, str) or not callable(fn):
                raise TypeError(f"observables must map names to callables, got {name!r}: {fn!r}")
        self.observable_fns = tuple(observables.items())

    def model(self, params: Params) -> PyTree:
        """The whole model with trainable leaves ``params``."""
        return eqx.combine(params, self.constants, self.static)

    def outputs(self, params: Params) -> Float[Array, "n ..."]:
        """f_θ(xᵢ) for every sample."""
        model = self.model(params)
        if self.apply is not None:
            return self.apply(model, self.X)
        return jax.vmap(model)(self.X)

    def loss(self, params: Params) -> Scalar:
        return jnp.mean(self.sample_losses(params))

    def sample_losses(self, params: Params) -> Float[Array, " n"]:
        """ℓ(f_θ(xᵢ), yᵢ) per sample (summed over output dimensions)."""
        f = self.outputs(params)
        values = self.loss_fn(jnp.reshape(f, self.y.shape), self.y)
        return jnp.sum(jnp.reshape(values, (values.shape[0], -1)), axis=1)

    @property
    def num_samples(self) -> int:
        return self.X.shape[0]

    def minibatch_loss(self, params: Params, idx: Int[Array, " B"], weights: Float[Array, " B"]) -> Scalar:
        """Σ_b w_b ℓ(f_θ(x_{i_b}), y_{i_b}) / Σ_b w_b: the mean loss on the samples ``idx`` where w = 1."""
        batch = eqx.tree_at(lambda p: (p.X, p.y), self, (self.X[idx], self.y[idx]))
        return jnp.sum(weights * batch.sample_losses(params)) / jnp.sum(weights)

    def observables(self, params: Params) -> dict[str, Scalar]:
        out = {}
        if self.sign_labels:
            f = jnp.reshape(self.outputs(params), self.y.shape)
            out["margin"] = jnp.min(self.y * f)
        model = self.model(params)
        out.update({name: fn(model) for name, fn in self.observable_fns})
        return out

    def param_shapes(self) -> PyTree[jax.ShapeDtypeStruct]:
        return self.params_like

    def params_of(self, model: PyTree) -> Params:
        """The trainable leaves of ``model`` (one parameter point)."""
        return eqx.partition(model, self.trainable)[0]

    def init(self, key: PRNGKeyArray, num: int) -> Params:
        """The trainable leaves of ``init_fn(k)`` for ``num`` keys split from ``key``, stacked."""
        if self.init_fn is None:
            raise NotImplementedError("Supervised.init needs init_fn=...; or pass inits=stack_inits([...])")
        keys = jax.random.split(key, num)
        return stack_inits([self.init_fn(k) for k in keys], trainable=self.trainable)


def stack_inits(models: Sequence[PyTree], *, trainable: Any = eqx.is_inexact_array) -> Params:
    """Stack the trainable leaves of several models (same structure) along a new leading axis."""
    models = list(models)
    if not models:
        raise ValueError("models must be a non-empty sequence of models")
    params = [eqx.partition(m, trainable)[0] for m in models]
    structure = jax.tree.structure(params[0])
    for p in params[1:]:
        if jax.tree.structure(p) != structure:
            raise ValueError("models must share one structure to be stacked")
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *params)
