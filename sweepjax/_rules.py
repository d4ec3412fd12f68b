"""Update rules: how one run moves, θ_{t+1} = rule.step(θ_t), as small Modules (the shape of optax's
init/update and diffrax's solvers).

A rule owns its state (optimizer state, ...) and sees the step t, the run's step size η and its seed as
traced data. Its numeric fields, and those of its schedule, are *hyperparameters*: pytree leaves that a
sweep replaces per run (``hyperparameters`` / ``with_hyperparameters``), so each can be a named grid axis.
"""

from __future__ import annotations

import abc
import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Bool, Float, Int, PyTree

from .problems._base import AbstractProblem, Params, Scalar
from .schedules import AbstractSchedule, Constant, as_schedule, hyperparameter
from .theory import adam_edge, momentum_edge

#: axis names the engine owns; no hyperparameter may take them
RESERVED_AXES = ("lr", "init", "seed", "step")


def apply_update(params: Params, updates: Params, factor, scale: Params | None) -> Params:
    """θ + factor · s ⊙ u (factor None: θ + s ⊙ u)."""
    if factor is None:
        if scale is None:
            return jax.tree.map(lambda p, u: p + u, params, updates)
        return jax.tree.map(lambda p, u, s: p + s * u, params, updates, scale)
    if scale is None:
        return jax.tree.map(lambda p, u: p + factor * u, params, updates)
    return jax.tree.map(lambda p, u, s: p + factor * s * u, params, updates, scale)


def all_finite(tree) -> Bool[Array, ""]:
    """Whether every entry of every leaf is finite."""
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in jax.tree.leaves(tree)]))


class AbstractRule(eqx.Module):
    """One step of a run: ``step(problem, θ, state, η, t, seed) -> (f at θ (or its estimate), θ', state')``."""

    @property
    def needs_structure(self) -> bool:
        """Whether ``step`` reads the parameters' pytree structure (then tiny problems are not run as
        flat coordinates)."""
        return False

    def init(self, problem: AbstractProblem, params: Params, lr: Float[Array, ""]) -> PyTree:
        """The rule's state at θ₀ (none by default)."""
        return ()

    @abc.abstractmethod
    def step(
        self, problem: AbstractProblem, params: Params, state: PyTree, lr: Float[Array, ""], t: Int[Array, ""],
        seed: Int[Array, ""],
    ) -> tuple[Scalar, Params, PyTree]:  # fmt: skip
        """(the loss at θ_t that decides divergence, θ_{t+1}, the new state)."""

    def observables(self, problem: AbstractProblem, params: Params, state: PyTree) -> dict[str, Scalar]:
        """Named scalars of the rule's own state recorded beside the problem's (none by default)."""
        return {}

    def resolve(self, problem: AbstractProblem, one_init: Params, values: Mapping[str, np.ndarray]) -> AbstractRule:
        """Check the rule fits the problem, one parameter point and the swept hyperparameter values
        (``values``: name -> every value a run takes) and fill in what they fix statically. Called once,
        on the host."""
        return self

    def stability_edge(self, lr: Float[Array, ""], t: Int[Array, ""]) -> Float[Array, ""] | None:
        """The edge of stability at step t for base step size η: the largest value of the ``edge_of``
        curvature at which this rule's step is linearly stable on a quadratic (2/η_t for GD); None: unknown."""
        return None

    @property
    def edge_of(self) -> str:
        """The record that ``stability_edge`` bounds: ``"sharpness"`` (λ_max of s ⊙ H),
        ``"preconditioned_sharpness"`` (λ_max(D^{1/2} H D^{1/2}), D = ``preconditioner``) or ``"batch_sharpness"``."""
        return "sharpness"

    def preconditioner(self, problem: AbstractProblem, params: Params, state: PyTree) -> Params | None:
        """The diagonal D (a params-like pytree, the problem's ``step_scale()`` included) by which the step
        scales the gradient at θ with this state, so the preconditioned sharpness is λ_max(D^{1/2} H D^{1/2})
        = λ_max(P⁻¹H); None: none known (for GD: all ones)."""
        return None


def _leaf_name(path) -> str | None:
    key = path[-1] if path else None
    if isinstance(key, jax.tree_util.GetAttrKey):
        return key.name
    if isinstance(key, jax.tree_util.DictKey) and isinstance(key.key, str):
        return key.key
    return None


def hyperparameters(rule: eqx.Module) -> dict[str, np.ndarray]:
    """name -> value of each scalar numeric leaf of the rule (its own fields, its schedule's, an optax
    factory's keyword arguments), or of a problem (its family parameters). A name shared by several
    leaves names all of them."""
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(rule)[0]:
        name = _leaf_name(path)
        if name is not None and eqx.is_array(leaf) and jnp.ndim(leaf) == 0:
            out.setdefault(name, np.asarray(leaf))
    return out


def with_hyperparameters(rule: eqx.Module, values: Mapping[str, Any]) -> eqx.Module:
    """``rule`` (or any module, e.g. a problem) with its scalar leaves named in ``values`` replaced (traced
    values welcome)."""
    if not values:
        return rule
    leaves, treedef = jax.tree_util.tree_flatten_with_path(rule)

    def replace(path, leaf):
        name = _leaf_name(path)
        if name in values and eqx.is_array(leaf) and jnp.ndim(leaf) == 0:
            return jnp.asarray(values[name], leaf.dtype)
        return leaf

    new = [replace(path, leaf) for path, leaf in leaves]
    return jax.tree_util.tree_unflatten(treedef, new)


class GD(AbstractRule):
    """θ ← θ − η_t · m_g · s ⊙ ∇f(θ): gradient descent at η_t = schedule(t, η), with the problem's step
    multipliers s and, with ``groups``, a step multiplier m_g per parameter group.

    Args:
        schedule: a ``sweepjax.schedules`` schedule or a function ``fn(t, lr)`` (default: constant η).
        groups: a pytree of group names with the structure of the parameters (e.g. ``{"w1": "lr_in",
            "w2": "lr_out"}``), or a function params -> that pytree; each group's multiplier is a
            hyperparameter named after the group (default 1.0; set with ``**multipliers``), so
            ``axes={"lr_in": ..., "lr_out": ...}`` sweeps per-layer step sizes.
    """

    schedule: AbstractSchedule
    multipliers: dict[str, np.ndarray]
    groups: Any = eqx.field(static=True)

    def __init__(self, schedule=None, *, groups: Any = None, **multipliers):
        self.schedule = as_schedule(schedule)
        self.groups = groups
        if multipliers and groups is None:
            raise ValueError(f"GD(**multipliers) needs groups=...; got multipliers {sorted(multipliers)}")
        self.multipliers = {k: hyperparameter(v) for k, v in multipliers.items()}

    @property
    def needs_structure(self) -> bool:
        return self.groups is not None

    def group_names(self, params: Params) -> PyTree[str] | None:
        if self.groups is None:
            return None
        return self.groups(params) if callable(self.groups) else self.groups

    def step_multipliers(self, problem: AbstractProblem, params: Params, dtype) -> Params | None:
        """m_g · s per parameter leaf (None: all 1), the factors of η_t in this rule's step."""
        scale = problem.step_scale()
        names = self.group_names(params)
        if names is None:
            return scale
        m = jax.tree.map(lambda n, p: jnp.full(p.shape, self.multipliers[n], dtype), names, params)
        return m if scale is None else jax.tree.map(lambda a, b: a * b, m, scale)

    def step(self, problem, params, state, lr, t, seed):
        loss, grad = jax.value_and_grad(problem.loss)(params)
        return loss, apply_update(params, grad, -self.schedule(t, lr), self.step_multipliers(problem, params, lr.dtype)), state

    def stability_edge(self, lr, t):
        """2/η_t (with ``groups``: on the sharpness of the multiplier-preconditioned Hessian)."""
        return 2 / jnp.asarray(self.schedule(t, lr))

    @property
    def edge_of(self) -> str:
        return "sharpness" if self.groups is None else "preconditioned_sharpness"

    def preconditioner(self, problem, params, state):
        """m_g · s per parameter leaf (``step_multipliers``; None: all 1)."""
        return self.step_multipliers(problem, params, jnp.result_type(jax.tree.leaves(params)[0]))

    def resolve(self, problem, one_init, values):
        if self.groups is None:
            return self
        names = jax.tree.leaves(self.group_names(one_init))
        if not all(isinstance(n, str) for n in names):
            raise TypeError(f"GD(groups=...) must give a group name (str) per parameter leaf, got {names[:3]}")
        unknown = sorted(set(self.multipliers) - set(names))
        if unknown:
            raise ValueError(f"GD multipliers {unknown} name no group; groups: {sorted(set(names))}")
        multipliers = {**{n: np.float64(1.0) for n in names}, **self.multipliers}
        return eqx.tree_at(lambda r: r.multipliers, self, {k: np.asarray(v, np.float64) for k, v in multipliers.items()})


def is_plain_gd(rule: AbstractRule) -> bool:
    """Whether ``rule`` is ``GD()``: a constant step size, no groups (the classic sweep)."""
    return isinstance(rule, GD) and rule.groups is None and isinstance(rule.schedule, Constant)


def _beta(h: Mapping[str, Any]):
    return 0.0 if h.get("momentum") is None else h["momentum"]


def _sgd_edge(eta, h):
    return momentum_edge(eta, _beta(h), bool(h.get("nesterov", False)))


def _adam_edge(eta, h):
    # weight decay (adamw) left out: exact at weight_decay = 0
    return adam_edge(eta, h["b1"], bool(h.get("nesterov", False)))


def _one_state(state: PyTree, kinds: tuple[type, ...]):
    """The one node of ``state`` of one of the types ``kinds`` (None: none, or several)."""
    found = [x for x in jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, kinds)) if isinstance(x, kinds)]
    return found[0] if len(found) == 1 else None


def _adam_diagonal(state, h):
    """1/(√(v̂ + ε_root) + ε), v̂ = ν/(1 − β₂^count): ``scale_by_adam``'s divisor of m̂."""
    s = _one_state(state, (optax.ScaleByAdamState,))
    if s is None:
        return None
    nu_hat = optax.tree.bias_correction(s.nu, h["b2"], s.count)
    return jax.tree.map(lambda v: 1 / (jnp.sqrt(v + h["eps_root"]) + h["eps"]), nu_hat)


def _rms_states() -> tuple[type, ...]:
    """RMSProp's state types; the bias-corrected ``...WithCount`` ones are private to optax (absent: skipped)."""
    from optax._src import transform

    names = ("ScaleByRmsWithCountState", "ScaleByRStdDevWithCountState")
    return (optax.ScaleByRmsState, optax.ScaleByRStdDevState, *(getattr(transform, n) for n in names if hasattr(transform, n)))


_RMS_STATES = _rms_states()


def _rms_diagonal(state, h):
    """``scale_by_rms``'s 1/√(v̂ + ε) (``eps_in_sqrt``, default) or 1/(√v̂ + ε); centred: v̂ − m̂² for v̂."""
    s = _one_state(state, _RMS_STATES)
    if s is None:
        return None
    decay, eps = h["decay"], h["eps"]
    counted = "count" in s._fields  # (a NamedTuple: hasattr would find tuple.count)
    nu = optax.tree.bias_correction(s.nu, decay, s.count) if counted else s.nu
    if "mu" in s._fields:
        mu = optax.tree.bias_correction(s.mu, decay, s.count) if counted else s.mu
        nu = jax.tree.map(lambda n, m: n - m * m, nu, mu)
    if h.get("eps_in_sqrt", True):
        return jax.tree.map(lambda v: jax.lax.rsqrt(v + eps), nu)
    return jax.tree.map(lambda v: 1 / (jnp.sqrt(v) + eps), nu)


def _rss_diagonal(state, h):
    """``scale_by_rss``'s 1/√(Σg² + ε) (0 where Σg² = 0)."""
    s = _one_state(state, (optax.ScaleByRssState,))
    if s is None:
        return None
    return jax.tree.map(lambda t: jnp.where(t > 0, jax.lax.rsqrt(t + h["eps"]), 0.0), s.sum_of_squares)


@dataclasses.dataclass(frozen=True)
class _Known:
    """What sweepjax knows of an optax factory: the record its edge bounds, the edge (η_t, hyper) and its
    diagonal preconditioner (state, hyper) -> D or None."""

    edge_of: str
    edge: Callable[[Any, Mapping[str, Any]], Any]
    diagonal: Callable[[PyTree, Mapping[str, Any]], Params | None] | None = None


_PRECONDITIONED = "preconditioned_sharpness"
#: optax factories with an established edge: (2 + 2β)/η (momentum β), Nesterov (2 + 2β)/((1 + 2β)η); Adam's
#: EMA momentum (2 + 2β₁)/((1 − β₁)η) on λ_max(P⁻¹H) (Cohen et al. 2022); RMSProp, Adagrad 2/η on λ_max(P⁻¹H)
_KNOWN_FACTORIES = (
    (optax.sgd, _Known("sharpness", _sgd_edge)),
    (optax.adam, _Known(_PRECONDITIONED, _adam_edge, _adam_diagonal)),
    (optax.adamw, _Known(_PRECONDITIONED, _adam_edge, _adam_diagonal)),
    (optax.nadam, _Known(_PRECONDITIONED, _adam_edge, _adam_diagonal)),
    (optax.nadamw, _Known(_PRECONDITIONED, _adam_edge, _adam_diagonal)),
    (optax.rmsprop, _Known(_PRECONDITIONED, _sgd_edge, _rms_diagonal)),
    (optax.adagrad, _Known(_PRECONDITIONED, lambda eta, h: 2 / eta, _rss_diagonal)),
)


class Optax(AbstractRule):
    """Any optax transformation with per-run hyperparameters.

    ``Optax(factory, **hyper)``: each step applies ``factory(η_t, **hyper)`` (e.g. ``optax.adam``,
    ``optax.sgd``, or ``lambda lr: optax.sgd(lr, momentum=0.9)``), θ ← θ + s ⊙ u. Numeric keyword
    arguments (``b1=0.9``, ``momentum=0.5``, ``weight_decay=1e-4``) are hyperparameters: traced, and
    sweepable as named axes; others (``nesterov=True``) are static. ``Optax(direction)`` with a
    ``GradientTransformation`` (e.g. ``optax.scale_by_adam()``) applies θ ← θ − η_t s ⊙ u.

    Stability edge: known for the factories ``optax.sgd`` ((2 + 2β)/η_t with ``momentum`` β; Nesterov
    (2 + 2β)/((1 + 2β)η_t)), ``optax.adam``/``adamw`` ((2 + 2β₁)/((1 − β₁)η_t) on the preconditioned sharpness,
    Cohen et al. 2022; weight decay left out), ``optax.nadam``/``nadamw`` ((2 + 2β₁)/((1 + 2β₁)(1 − β₁)η_t)),
    ``optax.rmsprop`` (as ``sgd``'s, on the preconditioned sharpness) and ``optax.adagrad`` (2/η_t, preconditioned);
    their ``preconditioner`` is the diagonal the next step applies, from the optax state. Other factories (lambdas
    included: pass the factory and its keywords, ``Optax(optax.adam, b1=0.95)``) have none, unless stated:
    ``edge=fn(η_t, **kwargs) -> edge``, called with the keywords the factory gets (e.g. ``edge=lambda eta, **_:
    3 / eta``), and ``edge_of`` the record it bounds (default ``"sharpness"``).
    """

    schedule: AbstractSchedule
    hyper: dict[str, np.ndarray]
    transform: Callable[..., optax.GradientTransformation] | optax.GradientTransformation = eqx.field(static=True)
    static_kwargs: tuple[tuple[str, Any], ...] = eqx.field(static=True)
    stated_edge: Callable[..., Any] | None = eqx.field(static=True)
    stated_edge_of: str | None = eqx.field(static=True)

    def __init__(self, transform, schedule=None, *, edge: Callable[..., Any] | None = None, edge_of: str | None = None, **kwargs):
        if not (isinstance(transform, optax.GradientTransformation) or callable(transform)):
            raise TypeError(
                "Optax(transform) needs an optax GradientTransformation or a factory lr -> GradientTransformation, "
                f"got {type(transform).__name__}"
            )
        if kwargs and isinstance(transform, optax.GradientTransformation):
            raise ValueError(f"Optax(direction, **kwargs): keyword arguments need a factory, got {sorted(kwargs)}")
        if edge is not None and not callable(edge):
            raise TypeError(f"Optax(edge=...) must be a function (η_t, **kwargs) -> edge, got {type(edge).__name__}")
        if edge_of is not None and (edge is None or not isinstance(edge_of, str) or not edge_of):
            raise ValueError(f"Optax(edge_of=...) must name a record (a non-empty str) and comes with edge=...; got {edge_of!r}")
        self.transform = transform
        self.schedule = as_schedule(schedule)
        numeric = lambda v: isinstance(v, (int, float, np.number)) and not isinstance(v, bool)  # noqa: E731
        self.hyper = {k: hyperparameter(v) for k, v in kwargs.items() if numeric(v)}
        self.static_kwargs = tuple((k, v) for k, v in kwargs.items() if not numeric(v))
        self.stated_edge = edge
        self.stated_edge_of = edge_of

    @property
    def is_direction(self) -> bool:
        return isinstance(self.transform, optax.GradientTransformation)

    def _kwargs(self, dtype) -> dict[str, Any]:
        """The keyword arguments the factory gets: the hyperparameters (in ``dtype``), then the static ones."""
        return {**{k: jnp.asarray(v, dtype) for k, v in self.hyper.items()}, **dict(self.static_kwargs)}

    def tx(self, eta) -> optax.GradientTransformation:
        """The optax transform at step size η_t."""
        if self.is_direction:
            return self.transform
        return self.transform(eta, **self._kwargs(jnp.result_type(eta)))

    def init(self, problem, params, lr):
        return self.tx(self.schedule(jnp.array(0, jnp.int32), lr)).init(params)

    def step(self, problem, params, state, lr, t, seed):
        loss, grad = jax.value_and_grad(problem.loss)(params)
        eta = self.schedule(t, lr)
        updates, state = self.tx(eta).update(grad, state, params)
        return loss, apply_update(params, updates, -eta if self.is_direction else None, problem.step_scale()), state

    @property
    def known(self) -> _Known | None:
        """What sweepjax knows of the factory (its edge and preconditioner), None for others."""
        if self.is_direction:
            return None
        return next((k for f, k in _KNOWN_FACTORIES if f is self.transform), None)

    def _known_kwargs(self, dtype) -> dict[str, Any]:
        """Every keyword of the known factory: the given ones, else its signature's defaults."""
        params = inspect.signature(self.transform).parameters.values()
        defaults = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
        return {**defaults, **self._kwargs(dtype)}

    def stability_edge(self, lr, t):
        """The stated ``edge(η_t, **kwargs)``, else the known factory's (see the class), else None."""
        eta = jnp.asarray(self.schedule(t, lr))
        if self.stated_edge is not None:
            return jnp.asarray(self.stated_edge(eta, **({} if self.is_direction else self._kwargs(eta.dtype))), eta.dtype)
        known = self.known
        return None if known is None else jnp.asarray(known.edge(eta, self._known_kwargs(eta.dtype)), eta.dtype)

    @property
    def edge_of(self) -> str:
        if self.stated_edge is not None:
            return self.stated_edge_of or "sharpness"
        known = self.known
        return "sharpness" if known is None else known.edge_of

    def preconditioner(self, problem, params, state):
        """s ⊙ D, D the diagonal by which the step from θ with this state scales its direction (Adam's 1/(√v̂ + ε),
        RMSProp's, Adagrad's): read from the optax state after that step's own moment update (∇f(θ) included,
        as P_t in Cohen et al. 2022); s for ``optax.sgd``; None for other factories."""
        known, scale = self.known, problem.step_scale()
        if known is None:
            return None
        if known.diagonal is None:  # a plain gradient step (optax.sgd): the problem's multipliers
            return scale
        dtype = jnp.result_type(jax.tree.leaves(params)[0])
        grad = jax.grad(problem.loss)(params)
        _, after = self.tx(jnp.asarray(1.0, dtype)).update(grad, state, params)  # (the moments do not depend on η)
        d = known.diagonal(after, self._known_kwargs(dtype))
        if d is None or scale is None:
            return d
        return jax.tree.map(lambda a, b: a * b, d, scale)


def _mix32(x: Array) -> Array:
    """A 32-bit integer hash (the "lowbias32" finalizer): every input bit affects every output bit."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def shuffled(position: Int[Array, " B"], key, n: int) -> Int[Array, " B"]:
    """π(position) for a pseudo-random permutation π of {0, …, n−1} drawn from ``key``, evaluated only where
    asked: a 4-round Feistel network on 2h bits (4^h ≥ n), walked until it lands below n (a bijection of
    [0, 4^h) restricted to [0, n) is one of [0, n)). A batch costs O(b), not the O(n log n) of sorting n
    keys, so an epoch's order need not be stored or redrawn each step."""
    h = max(1, (max(n, 2) - 1).bit_length() + 1) // 2
    mask = jnp.uint32((1 << h) - 1)
    round_keys = jax.random.bits(key, (4,), jnp.uint32)

    def feistel(x):
        left, right = x >> h, x & mask
        for r in range(4):
            left, right = right, left ^ (_mix32(right ^ round_keys[r]) & mask)
        return (left << h) | right

    def walk(x):
        return jax.lax.while_loop(lambda y: jnp.any(y >= n), lambda y: jnp.where(y >= n, feistel(y), y), feistel(x))

    return walk(position.astype(jnp.uint32)).astype(jnp.int32)


class SGD(AbstractRule):
    r"""θ ← θ − η_t s ⊙ ∇f_B(θ): minibatch SGD on a ``Supervised`` problem, f_B the mean loss on a batch B.

    Batches come from the run's seed (``axes={"seed": [0, 1, 2]}``; seed 0 without that axis): with
    ``replace=False`` (default) the samples are shuffled each epoch (``shuffled``, keyed by ``fold_in(key(seed), epoch)``)
    and cut into ⌊n/b⌋ batches, the remainder dropped; with ``replace=True`` each step draws b indices
    uniformly (by ``fold_in(key(seed), t)``). Runs with the same seed see the same batches, whatever
    their η or init. ``batch_size`` b is a hyperparameter: the batch is a fixed ``max_batch_size``
    shape with a mask, so b can be a grid axis (``max_batch_size`` defaults to the largest swept b).
    The loss that decides divergence is the batch's.
    """

    batch_size: Float[np.ndarray, ""] = eqx.field(converter=hyperparameter)
    schedule: AbstractSchedule = eqx.field(default_factory=Constant, converter=as_schedule)
    replace: bool = eqx.field(static=True, default=False)
    max_batch_size: int | None = eqx.field(static=True, default=None)

    def batch(self, n: int, t, seed) -> tuple[Int[Array, " B"], Float[Array, " B"]]:
        """(indices, 0/1 weights) of step t's batch, padded to ``max_batch_size``."""
        size = self.max_batch_size
        b = self.batch_size.astype(jnp.int32)
        key = jax.random.key(seed.astype(jnp.uint32))
        slot = jnp.arange(size)
        if self.replace:
            idx = jax.random.randint(jax.random.fold_in(key, t), (size,), 0, n)
        else:
            per_epoch = jnp.maximum(n // b, 1)
            idx = shuffled(((t % per_epoch) * b + slot) % n, jax.random.fold_in(key, t // per_epoch), n)
        return idx, (slot < b).astype(jnp.float32)

    def step(self, problem, params, state, lr, t, seed):
        idx, w = self.batch(problem.num_samples, t, seed)
        loss, grad = jax.value_and_grad(problem.minibatch_loss)(params, idx, w.astype(lr.dtype))
        return loss, apply_update(params, grad, -self.schedule(t, lr), problem.step_scale()), state

    def stability_edge(self, lr, t):
        """2/η_t on the batch sharpness (Andreyev & Beneventano)."""
        return 2 / jnp.asarray(self.schedule(t, lr))

    @property
    def edge_of(self) -> str:
        return "batch_sharpness"

    def preconditioner(self, problem, params, state):
        """The problem's step multipliers s (None: all 1)."""
        return problem.step_scale()

    def resolve(self, problem, one_init, values):
        if not (hasattr(problem, "minibatch_loss") and hasattr(problem, "num_samples")):
            raise TypeError(f"SGD needs a problem with samples to batch (e.g. problems.Supervised), got {type(problem).__name__}")
        sizes = np.asarray(values.get("batch_size", self.batch_size), np.float64).ravel()
        n = problem.num_samples
        if np.any(sizes != np.round(sizes)) or np.any(sizes < 1) or np.any(sizes > n):
            raise ValueError(f"batch_size must hold whole numbers in [1, n_samples={n}], got {sizes[:5].tolist()}")
        need = int(sizes.max())
        if self.max_batch_size is not None and self.max_batch_size < need:
            raise ValueError(f"SGD(max_batch_size={self.max_batch_size}) is below the largest batch_size {need}")
        return self if self.max_batch_size is not None else dataclasses.replace(self, max_batch_size=need)


def rule_from(optimizer, rule: AbstractRule | None) -> AbstractRule:
    """The rule a sweep runs: ``rule``, or the one the legacy ``optimizer=`` argument describes."""
    if rule is not None and optimizer is not None:
        raise ValueError("pass either rule=... or optimizer=..., not both (optimizer=f is rule=sj.Optax(f))")
    if rule is not None:
        if not isinstance(rule, AbstractRule):
            raise TypeError(f"rule must be a sweepjax update rule (sj.GD, sj.Optax, sj.SGD, ...), got {type(rule).__name__}")
        return rule
    return GD() if optimizer is None else Optax(optimizer)
