"""Gradient-based measurements: the gradient norm, SGD's batch sharpness and gradient-noise scale, and the
NTK's top eigenvalue of a supervised problem."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float, Int

from .._curvature import AbstractEigensolver, Lanczos, hessian_matvec
from ._base import AbstractMeasure, Point, check_positive_int, eigen_records, eigen_values, start_vector


class GradNorm(AbstractMeasure):
    """``grad_norm`` = ‖∇f(θ)‖ of the full loss (one gradient per record)."""

    def shapes(self, num_params):
        return {"grad_norm": ()}

    def __call__(self, point: Point, carry):
        grad = jax.grad(point.problem.loss)(point.params)
        return {"grad_norm": jnp.linalg.norm(ravel_pytree(grad)[0])}, carry

    @property
    def matvecs(self) -> int:
        return 1


def random_batches(n: int, size: int, batch_size, seed, t, num: int) -> tuple[Int[Array, "num size"], Float[Array, "num size"]]:
    """``num`` minibatches of ``batch_size`` distinct samples of n, drawn afresh at step t from the run's seed
    (independently of the batches SGD trains on): (indices, 0/1 weights), padded to ``size``."""
    from .._rules import shuffled

    key = jax.random.fold_in(jax.random.fold_in(jax.random.key(0x5EED), seed.astype(jnp.uint32)), t)
    slot = jnp.arange(size)
    idx = jax.vmap(lambda j: shuffled(slot % n, jax.random.fold_in(key, j), n))(jnp.arange(num))
    weights = (slot < jnp.asarray(batch_size).astype(jnp.int32)).astype(jnp.float32)
    return idx, jnp.broadcast_to(weights, idx.shape)


class _Minibatches(AbstractMeasure):
    """Measurements over ``num_batches`` fresh minibatches of the run's batch size (``SGD``'s, or
    ``batch_size``)."""

    num_batches: int = eqx.field(static=True, default=8)
    batch_size: int | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        check_positive_int(type(self).__name__, "num_batches", self.num_batches)
        if self.batch_size is not None:
            check_positive_int(type(self).__name__, "batch_size", self.batch_size)

    def check(self, problem, rule, one_init):
        name = type(self).__name__
        if not (hasattr(problem, "minibatch_loss") and hasattr(problem, "num_samples")):
            raise TypeError(
                f"{name} needs a problem with samples to batch (e.g. problems.Supervised), got {type(problem).__name__}"
            )
        if self.batch_size is None and getattr(rule, "max_batch_size", None) is None:
            raise ValueError(
                f"{name}(batch_size=None) takes the batch size of an SGD rule; give batch_size=... for {type(rule).__name__}"
            )
        if self.batch_size is not None and self.batch_size > problem.num_samples:
            raise ValueError(f"{name}(batch_size={self.batch_size}) exceeds the {problem.num_samples} samples")

    def batches(self, point: Point):
        """(indices, weights) of the minibatches at this record."""
        if self.batch_size is None:
            b, size = point.rule.batch_size, point.rule.max_batch_size
        else:
            b = size = self.batch_size
        return random_batches(point.problem.num_samples, size, b, point.seed, point.t, self.num_batches)

    def batch_loss(self, point: Point, idx, w):
        return lambda p: point.problem.minibatch_loss(p, idx, w.astype(point.flat_params.dtype))


class BatchSharpness(_Minibatches):
    r"""``batch_sharpness`` = E_B[g_Bᵀ H_B g_B / ‖g_B‖²], the minibatch Hessian's curvature along the minibatch
    gradient (Andreyev & Beneventano 2025), averaged over ``num_batches`` fresh batches of the run's batch size
    (with the problem's step multipliers S: g ← S^{1/2} g, H ← S^{1/2} H S^{1/2}). Under SGD it settles near
    2/η while λ_max of the full Hessian (``sharpness``) stays below."""

    def shapes(self, num_params):
        return {"batch_sharpness": ()}

    def __call__(self, point: Point, carry):
        idx, w = self.batches(point)
        step = point.problem.step_scale()
        root = None if step is None else jnp.sqrt(ravel_pytree(step)[0])

        def one(i, wi):
            f = self.batch_loss(point, i, wi)
            g = ravel_pytree(jax.grad(f)(point.params))[0]
            u = g if root is None else root * g
            hu = hessian_matvec(f, point.params, step)[0](u)
            return jnp.vdot(u, hu) / jnp.vdot(u, u)

        return {"batch_sharpness": jnp.mean(jax.vmap(one)(idx, w))}, carry

    @property
    def matvecs(self) -> int:
        return 2 * self.num_batches


class GradientNoiseScale(_Minibatches):
    r"""``noise_scale`` = B_simple = tr Σ / ‖G‖² (McCandlish et al. 2018), G the full gradient, Σ the per-sample
    gradient covariance; ``noise_trace`` = tr Σ, estimated from ``num_batches`` fresh batches of size b drawn
    without replacement: E‖g_B − G‖² = tr Σ · (n − b)/(b(n − 1)). NaN when b = n."""

    def shapes(self, num_params):
        return {"noise_trace": (), "noise_scale": ()}

    def __call__(self, point: Point, carry):
        idx, w = self.batches(point)
        full = ravel_pytree(jax.grad(point.problem.loss)(point.params))[0]

        def spread(i, wi):
            g = ravel_pytree(jax.grad(self.batch_loss(point, i, wi))(point.params))[0]
            return jnp.sum((g - full) ** 2)

        n = point.problem.num_samples
        b = jnp.sum(w[0]).astype(full.dtype)
        trace = jnp.mean(jax.vmap(spread)(idx, w)) * b * (n - 1) / jnp.where(b < n, n - b, jnp.nan)
        return {"noise_trace": trace, "noise_scale": trace / jnp.vdot(full, full)}, carry

    @property
    def matvecs(self) -> int:
        return self.num_batches + 1


class NTKEigenvalue(AbstractMeasure):
    """``ntk`` = λ_max(J Jᵀ / n) = λ_max(JᵀJ / n), J = ∂f_θ(X)/∂θ the Jacobian of a supervised problem's n
    outputs (``problem.outputs``), by ``solver`` on v ↦ Jᵀ(Jv)/n, warm-started (the scale of Huang et al.'s
    problems' own ``ntk``)."""

    solver: AbstractEigensolver = eqx.field(static=True, default_factory=Lanczos)

    def shapes(self, num_params):
        return eigen_records("ntk", self.solver)

    @property
    def needs_structure(self) -> bool:
        return True

    def check(self, problem, rule, one_init):
        if not callable(getattr(problem, "outputs", None)):
            raise TypeError(
                f"NTKEigenvalue needs a problem with outputs(params) (e.g. problems.Supervised), got {type(problem).__name__}"
            )

    def init(self, num_params, dtype):
        return start_vector(num_params, dtype)

    def __call__(self, point: Point, carry):
        flat, unravel = ravel_pytree(point.params)

        def outputs(v):
            return jnp.ravel(point.problem.outputs(unravel(v)))

        f, jvp = jax.linearize(outputs, flat)
        vjp = jax.linear_transpose(jvp, flat)
        n = point.problem.num_samples if hasattr(point.problem, "num_samples") else f.shape[0]
        return eigen_values("ntk", self.solver, lambda v: vjp(jvp(v.astype(flat.dtype)))[0] / n, carry)

    @property
    def matvecs(self) -> int:
        return self.solver.matvecs
