"""Curvature of the loss at θ_t: λ_max of the Hessian, plain or preconditioned by the update rule."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float

from .._curvature import AbstractEigensolver, Lanczos
from .._spectrum import TopK, generic_block, hutchinson_trace, rademacher, slq
from ._base import AbstractMeasure, Point, check_positive_int, eigen_records, eigen_values, start_vector


class Sharpness(AbstractMeasure):
    """``sharpness`` = λ_max(S^{1/2} ∇²f(θ) S^{1/2}) (S the problem's step multipliers), warm-started from
    the previous record's top eigenvector, and its residual for an iterative solver. ``Record(sharpness=...)``
    makes this measurement; it is listed here to be composed and tested like the others."""

    solver: AbstractEigensolver = eqx.field(static=True, default_factory=Lanczos)

    def shapes(self, num_params):
        return eigen_records("sharpness", self.solver)

    def init(self, num_params, dtype):
        return start_vector(num_params, dtype)

    def __call__(self, point: Point, carry):
        return eigen_values("sharpness", self.solver, point.hessian(), carry)

    @property
    def matvecs(self) -> int:
        return self.solver.matvecs


class PreconditionedSharpness(AbstractMeasure):
    """``preconditioned_sharpness`` = λ_max(P⁻¹H) = λ_max(D^{1/2} H D^{1/2}), D = P⁻¹ the diagonal
    preconditioner the update rule applies at θ_t (``rule.preconditioner``: Adam's 1/(√v̂ + ε) read from
    its state, RMSProp's, Adagrad's; GD's step multipliers), by ``solver`` warm-started like ``Sharpness``.
    Its edge is the rule's ``stability_edge`` (e.g. (2 + 2β₁)/((1 − β₁)η) for Adam, Cohen et al. 2022)."""

    solver: AbstractEigensolver = eqx.field(static=True, default_factory=Lanczos)

    def shapes(self, num_params):
        return eigen_records("preconditioned_sharpness", self.solver)

    def init(self, num_params, dtype):
        return start_vector(num_params, dtype)

    def check(self, problem, rule, one_init):
        def diagonal(params):
            return rule.preconditioner(problem, params, rule.init(problem, params, jnp.asarray(1.0)))

        edge = jax.eval_shape(rule.stability_edge, jnp.asarray(1.0), jnp.asarray(0, jnp.int32))
        plain = edge is not None and rule.edge_of != "preconditioned_sharpness"  # None: plain gradient steps, D = s
        if jax.eval_shape(diagonal, one_init) is None and not plain:
            raise ValueError(
                f"PreconditionedSharpness: the update rule {type(rule).__name__} exposes no preconditioner (known: "
                "GD's step multipliers; optax adam/adamw/rmsprop/adagrad states)"
            )

    def __call__(self, point: Point, carry):
        d = point.rule.preconditioner(point.problem, point.params, point.rule_state)
        flat = None if d is None else ravel_pytree(d)[0].astype(point.flat_params.dtype)
        return eigen_values("preconditioned_sharpness", self.solver, point.hessian(flat), carry)

    @property
    def matvecs(self) -> int:
        return self.solver.matvecs


class TopEigenvalues(AbstractMeasure):
    """``eigenvalues`` (k,): the k largest eigenvalues of S^{1/2}HS^{1/2}, descending, and their residuals
    ``eigenvalue_residuals`` ‖Hy − θy‖, by a block Krylov method warm-started from the previous record's
    eigenvectors (``TopK``: ``iters`` block matvecs of k HVPs each per record; exact for n ≤ k·iters). With
    ``negative``: also the k most negative, ``negative_eigenvalues`` (ascending) and their residuals; with
    ``vectors``: the eigenvectors too, ``eigenvectors`` (k, n) (large: record them rarely, with ``every``).
    Export dims: ``eig`` (and ``param``)."""

    k: int = eqx.field(static=True, default=5)
    iters: int = eqx.field(static=True, default=3)
    restarts: int = eqx.field(static=True, default=0)
    negative: bool = eqx.field(static=True, default=False)
    vectors: bool = eqx.field(static=True, default=False)
    batch: str = eqx.field(static=True, default="map")  # the k HVPs of a block one after another, or vmapped

    def __check_init__(self):
        super().__check_init__()
        self.solver("largest")  # (TopK checks k, iters, restarts, batch)
        for name in ("negative", "vectors"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"TopEigenvalues({name}=...) must be a bool, got {getattr(self, name)!r}")

    def solver(self, which: str) -> TopK:
        return TopK(self.k, self.iters, self.restarts, which, self.batch)

    def shapes(self, num_params):
        out = {"eigenvalues": (self.k,), "eigenvalue_residuals": (self.k,)}
        if self.negative:
            out.update({"negative_eigenvalues": (self.k,), "negative_eigenvalue_residuals": (self.k,)})
        if self.vectors:
            out["eigenvectors"] = (self.k, num_params)
        return out

    def dims(self):
        out = {name: ("eig",) for name in self.shapes(0) if name != "eigenvectors"}
        return out | ({"eigenvectors": ("eig", "param")} if self.vectors else {})

    def init(self, num_params, dtype):
        v = generic_block(num_params, self.k, dtype)
        return (v, v) if self.negative else (v,)

    def __call__(self, point: Point, carry):
        matvec = point.hessian()
        top = self.solver("largest")(matvec, carry[0])
        out = {"eigenvalues": top.values, "eigenvalue_residuals": top.residuals}
        new = (top.vectors,)
        if self.negative:
            low = self.solver("smallest")(matvec, carry[1])
            out.update({"negative_eigenvalues": low.values, "negative_eigenvalue_residuals": low.residuals})
            new = (top.vectors, low.vectors)
        if self.vectors:
            out["eigenvectors"] = top.vectors.T
        return out, new

    @property
    def matvecs(self) -> int:
        return self.solver("largest").matvecs * (2 if self.negative else 1)


def _probes(point: Point, salt: int, num: int) -> Float[Array, "K n"]:
    """Rademacher probes drawn afresh at each record from the run's seed and the step."""
    key = jax.random.fold_in(jax.random.fold_in(jax.random.key(salt), point.seed.astype(jnp.uint32)), point.t)
    return rademacher(key, num, point.num_params, point.flat_params.dtype)


class HessianTrace(AbstractMeasure):
    """``hessian_trace`` ≈ tr(S^{1/2}HS^{1/2}) by Hutchinson's estimator (1/K) Σ zᵀHz over K = ``probes``
    Rademacher probes drawn afresh at each record (K HVPs; standard error ≈ ‖H‖_F·√(2/K))."""

    probes: int = eqx.field(static=True, default=10)
    batch: str = eqx.field(static=True, default="map")

    def __check_init__(self):
        super().__check_init__()
        check_positive_int("HessianTrace", "probes", self.probes)

    def shapes(self, num_params):
        return {"hessian_trace": ()}

    def __call__(self, point: Point, carry):
        return {"hessian_trace": hutchinson_trace(point.hessian(), _probes(point, 0x7ACE, self.probes), self.batch)}, carry

    @property
    def matvecs(self) -> int:
        return self.probes


class SpectralDensity(AbstractMeasure):
    """The spectral density of S^{1/2}HS^{1/2} by stochastic Lanczos quadrature: ``density_nodes`` and
    ``density_weights`` (``probes``·``order``,), the Ritz values of ``order`` Lanczos steps from each of
    ``probes`` Rademacher probes and their Gauss weights, summing to 1; n·Σ w θᵖ estimates tr(Hᵖ), exactly
    for the probes when p < 2·order. Summaries: ``sj.measures.density`` (smoothed, on a grid),
    ``negative_mass``, ``spectral_moment``; plot: ``sj.plot.spectral_density``. Export dim: ``node``."""

    order: int = eqx.field(static=True, default=20)
    probes: int = eqx.field(static=True, default=1)
    batch: str = eqx.field(static=True, default="map")

    def __check_init__(self):
        super().__check_init__()
        check_positive_int("SpectralDensity", "order", self.order)
        check_positive_int("SpectralDensity", "probes", self.probes)

    def shapes(self, num_params):
        return {"density_nodes": (self.probes * self.order,), "density_weights": (self.probes * self.order,)}

    def dims(self):
        return {"density_nodes": ("node",), "density_weights": ("node",)}

    def __call__(self, point: Point, carry):
        nodes, weights = slq(point.hessian(), _probes(point, 0xD157, self.probes), self.order, self.batch)
        return {"density_nodes": nodes, "density_weights": weights}, carry

    @property
    def matvecs(self) -> int:
        return self.probes * self.order
