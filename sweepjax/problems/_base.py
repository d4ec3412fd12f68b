"""The problem interface: a loss as a pure function of a parameter pytree, plus observables."""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

Params = PyTree[Float[Array, "..."]]
Scalar = Float[Array, ""]


class AbstractProblem(eqx.Module):
    """An objective f(θ) for gradient descent, with named observables of θ.

    Subclasses are immutable: data arrays and numeric family parameters are fields
    (pytree leaves, traced by the sweep), sizes and named callables are static fields.
    """

    @abc.abstractmethod
    def loss(self, params: Params) -> Scalar:
        """f(θ): the scalar objective that GD minimises."""

    def observables(self, params: Params) -> dict[str, Scalar]:
        """Named functions of θ recorded alongside the loss (none by default): scalars, or arrays of a fixed
        shape (e.g. θ itself), recorded with their shape after the grid and step dims."""
        return {}

    def init(self, key: PRNGKeyArray, num: int) -> Params:
        """`num` initial points stacked along a leading axis."""
        raise NotImplementedError(f"{type(self).__name__} has no default initializer; pass inits explicitly")

    def step_scale(self) -> Params | None:
        """Per-parameter step multipliers s, so that GD is θ ← θ − η s ⊙ ∇f(θ) (None: s = 1)."""
        return None

    def param_shapes(self) -> PyTree[jax.ShapeDtypeStruct] | None:
        """Shapes of one parameter point, used to validate inits (None: not known)."""
        return None

    def check_axes(self, values: Mapping[str, np.ndarray]) -> None:
        """Refuse (a ValueError naming the axis), before anything compiles, values of this problem's parameters
        swept as named axes that it cannot take; ``values``: parameter name -> its axis values. Default: any."""


class Objective(AbstractProblem):
    """Any pure loss function of a parameter pytree, e.g. ``Objective(lambda θ: 0.5 * θ @ A @ θ)``.

    A fresh lambda is a new static field, so pass the same function object to reuse a compile.
    ``params_like`` (one parameter point) lets the sweep check the shape of inits.
    """

    loss_fn: Callable[[Params], Scalar] = eqx.field(static=True)
    params_like: PyTree[jax.ShapeDtypeStruct] | None = eqx.field(static=True, default=None)
    observable_fns: tuple[tuple[str, Callable[[Params], Scalar]], ...] = eqx.field(static=True, default=())

    def __init__(
        self,
        loss_fn: Callable[[Params], Scalar],
        params_like: Params | None = None,
        observables: Mapping[str, Callable[[Params], Scalar]] | None = None,
    ):
        if not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
        self.loss_fn = loss_fn
        self.params_like = (
            None
            if params_like is None
            else jax.tree.map(lambda a: jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a)), params_like)
        )
        observables = dict(observables or {})
        for name, fn in observables.items():
            if not isinstance(name, str) or not callable(fn):
                raise TypeError(f"observables must map names to callables, got {name!r}: {fn!r}")
        self.observable_fns = tuple(observables.items())

    def loss(self, params: Params) -> Scalar:
        return self.loss_fn(params)

    def observables(self, params: Params) -> dict[str, Scalar]:
        return {name: fn(params) for name, fn in self.observable_fns}

    def param_shapes(self) -> PyTree[jax.ShapeDtypeStruct] | None:
        return self.params_like


def describe(problem: AbstractProblem) -> dict[str, Any]:
    """A JSON-able description of a problem (its class and scalar/static fields) for metadata."""
    out: dict[str, Any] = {"class": type(problem).__name__}
    for name in getattr(problem, "__dataclass_fields__", {}):
        value = getattr(problem, name)
        if isinstance(value, (str, int, float, bool)) or value is None:
            out[name] = value
        elif callable(value):
            out[name] = getattr(value, "__qualname__", repr(value))
        elif hasattr(value, "shape") and jnp.ndim(value) == 0:
            out[name] = float(value)
        elif hasattr(value, "shape"):
            out[name] = f"array{tuple(jnp.shape(value))}"
    return out
