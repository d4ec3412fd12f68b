"""The measurement interface: what a run records at θ_t besides its loss and observables.

A measurement is a small frozen Module. The engine calls it once per run at every record it is due
(t a multiple of its ``every``), vmapped over the runs, with the run's ``Point`` and its own carry (e.g.
the previous record's eigenvectors, the warm start) and records the named values it returns.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float, Int, PyTree

from .._curvature import AbstractEigensolver, MatVec, hessian_matvec
from ..problems._base import AbstractProblem, Params

Shapes = dict[str, tuple[int, ...]]


class Point(eqx.Module):
    """One run at one record: what a measurement may read. Arrays are in the measuring dtype
    (``Record(sharpness_dtype=...)``, else the training dtype). A tiny problem may be seen through its flat
    coordinates (``params`` a tuple of scalars) unless the measurement ``needs_structure``."""

    problem: AbstractProblem  #: the run's problem (its swept parameters set)
    params: Params  #: θ_t
    rule: eqx.Module  #: the run's update rule (its hyperparameters set)
    rule_state: PyTree  #: the rule's state at θ_t (e.g. Adam's moments), in the engine's layout
    lr: Float[Array, ""]  #: the run's base step size η
    t: Int[Array, ""]  #: the step
    seed: Array  #: the run's seed (uint32; 0 without a seed axis)

    @property
    def num_params(self) -> int:
        return ravel_pytree(self.params)[0].size

    @property
    def flat_params(self) -> Float[Array, " n"]:
        return ravel_pytree(self.params)[0]

    def hessian(self, scale: PyTree | Float[Array, " n"] | None = None) -> MatVec:
        """v ↦ S^{1/2} ∇²f(θ) S^{1/2} v on flat vectors: S = diag(``scale``) (a flat vector or a params-like
        pytree, e.g. an update rule's preconditioner), or the problem's step multipliers when None."""
        if scale is None:
            return hessian_matvec(self.problem.loss, self.params, self.problem.step_scale())[0]
        flat = scale if isinstance(scale, jax.Array) and scale.ndim == 1 else ravel_pytree(scale)[0]
        root = jnp.sqrt(flat.astype(self.flat_params.dtype))
        matvec = hessian_matvec(self.problem.loss, self.params)[0]
        return lambda v: root * matvec(root * v)


class AbstractMeasure(eqx.Module):
    """Named values of a run at θ_t: ``measure(point, carry) -> ({name: value}, carry)``.

    ``every``: measure at t = 0, every, 2·every, … only (a multiple of ``Record.every``; None: at every
    record); at other records its values are NaN. ``init`` gives the carry at θ₀ (e.g. a warm start),
    kept between records; the engine keeps the old carry where a run is dead or the new one is not
    finite. Values are NaN where the run is dead or θ_t is bad.
    """

    every: int | None = eqx.field(static=True, default=None, kw_only=True)

    def __check_init__(self):
        if self.every is not None and (isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 1):
            raise ValueError(f"{type(self).__name__}(every=...) must be a positive int or None, got {self.every!r}")

    @abc.abstractmethod
    def shapes(self, num_params: int) -> Shapes:
        """name -> shape of each value it records, for a problem of ``num_params`` parameters."""

    def dims(self) -> dict[str, tuple[str, ...]]:
        """name -> the names of the dims of one value (e.g. ``("eig",)``), for export; default ``<name>_dim<i>``."""
        return {}

    def init(self, num_params: int, dtype) -> PyTree:
        """The carry at θ₀ (none by default)."""
        return ()

    @abc.abstractmethod
    def __call__(self, point: Point, carry: PyTree) -> tuple[dict[str, Array], PyTree]:
        """(the values at θ_t, the new carry)."""

    def check(self, problem: AbstractProblem, rule: eqx.Module, one_init: Params) -> None:
        """Raise a ValueError/TypeError if the measurement does not apply to this problem, rule (resolved)
        and parameter point (called once, on the host, before anything is compiled)."""

    @property
    def needs_structure(self) -> bool:
        """Whether it reads more of the problem than its loss (then tiny problems keep their own layout)."""
        return False

    @property
    def matvecs(self) -> int:
        """Hessian-vector products (or gradient-cost equivalents) per measurement, for cost accounting."""
        return 0


def check_positive_int(owner: str, name: str, value, low: int = 1) -> None:
    """``owner(name=...)`` must be an int ≥ ``low``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{owner}({name}=...) must be an int >= {low}, got {value!r}")


def start_vector(n: int, dtype) -> Float[Array, " n"]:
    """The fixed, generic unit start vector of every eigen-measurement (not an eigenvector of structured
    Hessians; ``ones`` is one, e.g. of ℓ(xy) at x = −y)."""
    v = 1.0 + 0.5 * jnp.sin(jnp.arange(n, dtype=dtype) * 1.618)
    return v / jnp.linalg.norm(v)


def keep_finite(new: PyTree, old: PyTree, ok) -> PyTree:
    """``new`` where ``ok`` and every entry of ``new`` is finite, else ``old``."""
    leaves = jax.tree.leaves(new)
    good = ok if not leaves else ok & jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in leaves]))
    return jax.tree.map(lambda a, b: jnp.where(good, a.astype(b.dtype), b), new, old)


def eigen_records(name: str, solver: AbstractEigensolver) -> dict[str, tuple[int, ...]]:
    """``name`` and, for an iterative solver, ``name_residual``: what a top-eigenvalue measurement records
    (an exact solve has no residual: no constant array to record)."""
    return {name: ()} if solver.exact else {name: (), f"{name}_residual": ()}


def eigen_values(name: str, solver: AbstractEigensolver, matvec: MatVec, warm: Float[Array, " n"]):
    """(``eigen_records``' values, the top eigenvector: the next record's warm start) of the matvec's λ_max."""
    eig = solver(matvec, warm)
    out = {name: eig.value}
    if not solver.exact:
        out[f"{name}_residual"] = eig.residual
    return out, eig.vector
