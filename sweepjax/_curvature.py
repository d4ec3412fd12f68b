"""Curvature: Hessian-vector products and the largest *algebraic* Hessian eigenvalue.

Every solver is a small frozen Module called as ``solver(matvec, v0) -> Eig`` on flat vectors,
where ``matvec(v) = H v`` and ``v0`` is the warm start (the previous record's eigenvector).
"""

from __future__ import annotations

import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Bool, Float, PyTree

Vector = Float[Array, " n"]
MatVec = Callable[[Vector], Vector]


class Eig(eqx.Module):
    """An eigen-estimate: value λ, unit vector v and residual ‖Hv − λv‖."""

    value: Float[Array, ""]
    vector: Vector
    residual: Float[Array, ""]


def hvp(f: Callable[[PyTree], Float[Array, ""]], params: PyTree, v: PyTree) -> PyTree:
    """∇²f(θ) v by forward-over-reverse: jvp of grad."""
    return jax.jvp(jax.grad(f), (params,), (v,))[1]


def hessian_matvec(
    f: Callable[[PyTree], Float[Array, ""]], params: PyTree, scale: PyTree | None = None
) -> tuple[MatVec, int]:
    """v ↦ S^{1/2} ∇²f(θ) S^{1/2} v on flat vectors (S = diag(scale), identity when None), and n."""
    flat, unravel = ravel_pytree(params)
    root = None if scale is None else jnp.sqrt(ravel_pytree(scale)[0].astype(flat.dtype))
    linearized = jax.linearize(jax.grad(f), params)[1]

    def matvec(v: Vector) -> Vector:
        w = v if root is None else root * v
        hw = ravel_pytree(linearized(unravel(w.astype(flat.dtype))))[0]
        return hw if root is None else root * hw

    return matvec, flat.size


def generic_vector(n: int, dtype=float) -> Vector:
    """A fixed unit start vector that is not an eigenvector of structured Hessians.

    (``ones`` is: e.g. for ℓ(xy) at x = −y it is the eigenvector of the *lower* eigenvalue.)
    """
    v = 1.0 + 0.5 * jnp.sin(jnp.arange(n, dtype=dtype) * 1.618)
    return v / jnp.linalg.norm(v)


def _unit(v: Vector) -> Vector:
    norm = jnp.linalg.norm(v)
    fallback = jnp.zeros_like(v).at[0].set(1.0)
    return jnp.where(norm > 0, v / jnp.where(norm > 0, norm, 1.0), fallback)


def _rayleigh(matvec: MatVec, v: Vector) -> Eig:
    hv = matvec(v)
    lam = jnp.vdot(v, hv)
    return Eig(lam, v, jnp.linalg.norm(hv - lam * v))


class AbstractEigensolver(eqx.Module):
    """Estimates λ_max(H), the largest algebraic eigenvalue of a symmetric H given as a matvec."""

    @abc.abstractmethod
    def __call__(self, matvec: MatVec, v0: Vector) -> Eig:
        """Top eigenpair of H from the warm start v0 (any non-zero vector)."""

    @property
    def matvecs(self) -> int:
        """Hessian-vector products per call (for cost accounting)."""
        return 0

    @property
    def exact(self) -> bool:
        """Whether the estimate is exact up to rounding (then no residual is recorded)."""
        return False


class PowerIteration(AbstractEigensolver):
    """Two-phase shifted power iteration for λ_max (algebraic).

    Phase 1 runs ``num_iters`` steps of v ← Hv/‖Hv‖ from v0, giving v₁ with Rayleigh quotient
    λ₁ = v₁ᵀHv₁ and residual r₁ = ‖Hv₁ − λ₁v₁‖. Phase 2 runs ``num_iters`` steps from v0 on
    H − σI with σ = min(λ₁, 0) − r₁ and returns the Rayleigh quotient of H there:

    - phase 1 converged to a positive dominant eigenvalue (r₁ = 0, λ₁ > 0): σ = 0, no slow-down;
    - converged to a negative dominant one (λ₁ = λ_min): σ = λ_min, spectrum of H − σI ≥ 0;
    - still oscillating between +ρ and −ρ (a symmetric spectrum, e.g. Huber ℓ(xy) at |xy| > 1,
      where ∇²f = ±[[0, 1], [1, 0]]; then λ₁ is anything in (−ρ, ρ)): for v₁ = a e₊ + b e₋,
      r₁ = 2|ab|ρ, so σ < 0 and λ_max − σ dominates, at rate (1 − 2|ab|)/(1 + 2|ab|).

    (The shift min(λ₁, 0) alone fails in the last case: no shift, and λ₁ is returned.)
    The answer is a Rayleigh quotient, so it never exceeds λ_max; ``residual`` flags slow
    convergence. A v0 that is exactly an eigenvector of a lower eigenvalue stays one: prefer
    ``Lanczos`` for warm starts.
    """

    num_iters: int = eqx.field(static=True, default=20)

    def __check_init__(self):
        if isinstance(self.num_iters, bool) or not isinstance(self.num_iters, int) or self.num_iters < 1:
            raise ValueError(f"num_iters must be a positive int, got {self.num_iters!r}")

    def _iterate(self, op: MatVec, v: Vector) -> Vector:
        return jax.lax.fori_loop(0, self.num_iters, lambda _, u: _unit(op(u)), _unit(v))

    def __call__(self, matvec: MatVec, v0: Vector) -> Eig:
        v1 = self._iterate(matvec, v0)
        hv1 = matvec(v1)
        lam1 = jnp.vdot(v1, hv1)
        shift = jnp.minimum(lam1, 0.0) - jnp.linalg.norm(hv1 - lam1 * v1)
        v2 = self._iterate(lambda u: matvec(u) - shift * u, v0)
        return _rayleigh(matvec, v2)

    @property
    def matvecs(self) -> int:
        return 2 * self.num_iters + 2


def lanczos_tridiagonal(
    matvec: MatVec, v0: Vector, order: int
) -> tuple[Float[Array, "order n"], Float[Array, "order order"], Bool[Array, " order"], Float[Array, " order"]]:
    """``order`` Lanczos steps from v0/‖v0‖ with full reorthogonalisation: basis Q, T = Q H Qᵀ, live rows, lost β's.

    Shared by ``Lanczos`` and stochastic Lanczos quadrature (``_spectrum.slq``); see ``Lanczos`` for the
    restart on breakdown, the rows left dead once Q spans ℝⁿ (``live`` False, decoupled diagonal far below the
    spectrum) and ``lost``: β's that T does not contain (the last β and any β dropped at a breakdown).
    """
    n, k, dtype = v0.shape[0], order, v0.dtype
    tol = 1e3 * jnp.finfo(dtype).eps
    restart_key = jax.random.key(0)

    def body(j, carry):
        basis, alphas, betas, raw_betas, scale = carry
        q = basis[j]
        w = matvec(q)
        alpha = jnp.vdot(q, w)
        # full reorthogonalisation against the basis, in two passes; between them, on breakdown
        # (β ≈ 0 after the first pass), swap in a fresh vector: the second pass orthogonalises it.
        # (The fresh vector does not depend on the run, so under vmap it is drawn once.)
        w = w - basis.T @ (basis @ w)
        beta = jnp.linalg.norm(w)
        scale = jnp.maximum(scale, jnp.abs(alpha) + beta)
        ok = beta > tol * scale
        fresh = jax.random.normal(jax.random.fold_in(restart_key, j), (n,), dtype)
        w = jnp.where(ok, w, fresh)
        w = w - basis.T @ (basis @ w)
        norm = jnp.linalg.norm(w)
        # a fresh vector with nothing left after projection: the basis already spans ℝⁿ
        live_next = ok | (norm > tol * jnp.linalg.norm(fresh))
        nxt = jnp.where(live_next, w / jnp.where(live_next, norm, 1.0), 0.0)
        alphas = alphas.at[j].set(alpha)
        betas = betas.at[j].set(jnp.where(ok, norm, 0.0))
        raw_betas = raw_betas.at[j].set(jnp.where(ok, norm, beta))  # β dropped at a breakdown
        basis = jnp.where(j + 1 < k, basis.at[jnp.minimum(j + 1, k - 1)].set(nxt), basis)
        return basis, alphas, betas, raw_betas, scale

    basis0 = jnp.zeros((k, n), dtype).at[0].set(_unit(v0))
    zeros = jnp.zeros(k, dtype)
    carry = jax.lax.fori_loop(0, k, body, (basis0, zeros, zeros, zeros, jnp.zeros((), dtype)))
    basis, alphas, betas, raw_betas, scale = carry
    # rows left zero once the basis spans ℝⁿ: give their diagonal a value below the spectrum
    live = jnp.linalg.norm(basis, axis=1) > 0
    floor = -4.0 * (scale + 1.0)
    diag = jnp.where(live, alphas, floor)
    off = betas[:-1]
    tri = jnp.diag(diag) + jnp.diag(off, 1) + jnp.diag(off, -1)
    lost = raw_betas - jnp.concatenate([off, jnp.zeros(1, dtype)])  # β's that T does not contain
    return basis, tri, live, lost


class Lanczos(AbstractEigensolver):
    """``order`` Lanczos steps with full reorthogonalisation; λ_max = top Ritz value of T.

    On breakdown (β ≈ 0: the Krylov space of v0 is invariant, e.g. v0 is an eigenvector, or a
    warm start converged for an earlier Hessian) the iteration restarts from a fixed pseudo-random
    vector orthogonalised against the basis, so T becomes block-diagonal and the other eigenvalues
    are still searched. Without the restart a warm start that is an eigenvector of a *lower*
    eigenvalue would be returned with residual 0. When the basis spans ℝⁿ (order ≥ n) the remaining
    rows are zero and their diagonal is pushed far below the spectrum (no spurious Ritz values).

    The residual is the Lanczos bound Σ_j |β̃_j s_j| ≥ ‖Hy − θy‖ (up to rounding), where β̃ is the
    last β and any β dropped at a breakdown, and s the top eigenvector of T.
    """

    order: int = eqx.field(static=True, default=10)

    def __check_init__(self):
        if isinstance(self.order, bool) or not isinstance(self.order, int) or self.order < 1:
            raise ValueError(f"order must be a positive int, got {self.order!r}")

    def __call__(self, matvec: MatVec, v0: Vector) -> Eig:
        basis, tri, _, lost = lanczos_tridiagonal(matvec, v0, self.order)
        evals, evecs = jnp.linalg.eigh(tri)
        s = evecs[:, -1]
        vec = _unit(basis.T @ s)
        residual = jnp.sum(jnp.abs(lost * s))
        return Eig(evals[-1], vec, residual)

    @property
    def matvecs(self) -> int:
        return self.order


class DenseEigh(AbstractEigensolver):
    """Exact oracle for small problems: H = [H e₁, …, H eₙ] then ``eigh`` (closed form for n = 2)."""

    def __call__(self, matvec: MatVec, v0: Vector) -> Eig:
        n = v0.shape[0]
        basis = jnp.eye(n, dtype=v0.dtype)
        # tiny problems: unrolled columns avoid a size-n batch axis (about 2x faster on XLA:CPU)
        hess = jnp.stack([matvec(e) for e in basis]) if n <= 4 else jax.vmap(matvec)(basis)
        hess = 0.5 * (hess + hess.T)
        if n == 2:
            a, b, c = hess[0, 0], hess[0, 1], hess[1, 1]
            half = 0.5 * (a - c)
            rad = jnp.sqrt(half * half + b * b)
            lam = 0.5 * (a + c) + rad
            # eigenvector of [[a, b], [b, c]] for lam, choosing the better-conditioned formula
            v_a = jnp.stack([b, lam - a])
            v_c = jnp.stack([lam - c, b])
            vec = jnp.where(jnp.abs(half) + rad > 0, jnp.where(half >= 0, v_c, v_a), jnp.array([1.0, 0.0], v0.dtype))
            return Eig(lam, _unit(vec), jnp.zeros((), v0.dtype))
        evals, evecs = jnp.linalg.eigh(hess)
        return Eig(evals[-1], evecs[:, -1], jnp.zeros((), v0.dtype))

    @property
    def matvecs(self) -> int:
        return -1  # n, known only at trace time

    @property
    def exact(self) -> bool:
        return True


def sharpness(
    f: Callable[[PyTree], Float[Array, ""]],
    params: PyTree,
    solver: AbstractEigensolver | None = None,
    v0: Vector | None = None,
) -> Eig:
    """λ_max(∇²f(θ)) for one parameter point (a convenience around ``solver(hessian_matvec(...))``)."""
    solver = Lanczos() if solver is None else solver
    if not isinstance(solver, AbstractEigensolver):
        raise TypeError(f"solver must be an eigensolver (PowerIteration, Lanczos, DenseEigh) or None, got {solver!r}")
    if not callable(f):
        raise TypeError(f"f must be a function of the parameters returning a scalar, got {type(f).__name__}")
    matvec, n = hessian_matvec(f, params)
    if v0 is None:
        v0 = generic_vector(n, ravel_pytree(params)[0].dtype)
    elif jnp.shape(v0) != (n,):
        raise ValueError(f"v0 must be a flat vector of shape ({n},) (the number of parameters), got {jnp.shape(v0)}")
    return solver(matvec, v0)
