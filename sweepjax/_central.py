"""The central flow of gradient descent at the edge of stability, as an update rule (Cohen, Damian et al. 2025,
"Understanding optimization in deep learning with central flows"; Damian et al. 2023, self-stabilization).

GD at step size η whose sharpness S(θ) = λ_max(∇²L(θ)) has reached 2/η oscillates along the top eigenvector u; its
time average follows dθ/dτ = −[∇L(θ) + ½σ²(θ)∇S(θ)] (τ = ηt), where σ² ≥ 0, the variance of the oscillation, is what
keeps S at 2/η, and the time-averaged loss is L(θ) + ½σ²S(θ). This module holds that flow in its single-unstable-
eigenvalue form, integrated by explicit Heun substeps, reported at GD's times τ_k = kη like ``GradientFlow``.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float

from ._curvature import Lanczos, generic_vector
from ._rules import AbstractRule
from .problems._base import AbstractProblem, Params
from .schedules import hyperparameter

Vector = Float[Array, " n"]


def sharpness_gradient(f, params: Params, u: Vector) -> Params:
    """∇_θ(uᵀ∇²f(θ)u) with u held fixed: ∇S(θ) at the top unit eigenvector u of a simple top eigenvalue S
    (Hellmann–Feynman: dS = uᵀ dH u); a third-derivative contraction, forward-over-reverse inside a reverse pass."""
    _, unravel = ravel_pytree(params)
    direction = unravel(u)

    def curvature(p):
        hu = jax.jvp(jax.grad(f), (p,), (direction,))[1]
        return jnp.vdot(u, ravel_pytree(hu)[0].astype(u.dtype))

    return jax.grad(curvature)(params)


class CentralEval(eqx.Module):
    """The central flow's field at one point θ: velocity, top eigenpair, loss and σ²."""

    velocity: Params  # −[∇L + ½σ²∇S]
    u: Vector  # top unit eigenvector (the next solve's warm start)
    loss: Float[Array, ""]
    sharpness: Float[Array, ""]  # S(θ), the top Ritz value
    sigma2: Float[Array, ""]
    time: Float[Array, ""]  # τ (GD time) of this point


class CentralFlow(AbstractRule):
    r"""dθ/dτ = −[∇L(θ) + ½σ²(θ)∇S(θ)] in GD's time τ = ηt: the central flow of GD at step size η (Cohen, Damian
    et al. 2025), single-unstable-eigenvalue form; each engine step advances τ by η, so record k sits beside GD's θ_k.

    S(θ) = λ_max(∇²L(θ)) (``order`` Lanczos steps warm-started from the previous top eigenvector u), ∇S(θ) =
    ∇_θ(uᵀ∇²L(θ)u) (``sharpness_gradient``). σ² is the smallest non-negative value that holds S at the edge
    E = 2/η: with κ = ``relax``/η,

        σ² = max(0, 2[κ(S − E) − ⟨∇S, ∇L⟩] / ‖∇S‖²)   (0 where ∇S = 0),

    so dS/dτ = ⟨∇S, dθ/dτ⟩ = −κ(S − E) wherever σ² > 0 (and ≤ that elsewhere): far below E (κ(E − S) > −⟨∇S, ∇L⟩, the
    rise of S per unit τ) σ² = 0 and this is gradient flow; once S is within about one GD step's rise of E the
    flow brakes and S relaxes onto E at rate κ (``relax`` = 1: by e⁻¹ per step's time η), and a discretisation
    overshoot above E is pulled back at the same rate. ``relax`` → ∞ is the paper's exact constraint
    (σ² = −2⟨∇S, ∇L⟩/‖∇S‖² on S = E); a finite rate keeps the explicit solver stable (κh = relax/substeps < 2).

    Recorded (observables): ``central_loss`` = L(θ) + ½σ²S(θ), the predicted time average of GD's loss;
    ``sigma2`` (the predicted variance of GD's oscillation along u); ``central_sharpness`` S(θ); ``flow_time`` τ.

    Integration: ``substeps`` explicit Heun (RK2) steps of size h = η/substeps per engine step, first-same-as-last
    (the field at the step's end is kept in the state as the next step's first stage and the records' source),
    so an engine step costs 2·``substeps`` field evaluations, each a gradient, ``order`` Hessian-vector products
    and one ∇S (≈ 2 + 2·order + 3 gradients): with the defaults ≈ 8 × 15 = 120 gradients per step. Explicit
    substeps, not diffrax: the field is non-smooth where σ² switches on, and each stage needs the warm-started
    eigenvector of the last. Stable where hS ≤ 2 (S ≤ 2/η here, so any ``substeps`` ≥ 1).

    Limits: one unstable eigenvalue (the paper's general form solves a cone program over all eigenvalues at
    the edge; when a second eigenvalue reaches E this form controls only the top one, whose eigenvector then
    switches); a constant η; the problem's ``step_scale`` must be None (no per-parameter multipliers).

    Args:
        substeps: Heun steps per engine step (static).
        order: Lanczos steps per field evaluation (static).
        relax: κη, the rate (per GD step) at which S relaxes onto 2/η (a hyperparameter).
    """

    relax: Float[np.ndarray, ""] = eqx.field(converter=hyperparameter, default=1.0)
    substeps: int = eqx.field(static=True, default=4)
    order: int = eqx.field(static=True, default=5)

    def __check_init__(self):
        for name in ("substeps", "order"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"CentralFlow({name}=...) must be a positive int, got {v!r}")

    def field(self, problem: AbstractProblem, params: Params, u0: Vector, lr: Float[Array, ""], time) -> CentralEval:
        """The flow's velocity, S, u, L and σ² at θ, the top eigenvector warm-started from u0."""
        flat, unravel = ravel_pytree(params)
        dtype = flat.dtype
        grad, linear = jax.linearize(jax.grad(problem.loss), params)
        eig = Lanczos(self.order)(lambda v: ravel_pytree(linear(unravel(v.astype(dtype))))[0], u0.astype(dtype))
        u = eig.vector
        g = ravel_pytree(grad)[0]
        gs = ravel_pytree(sharpness_gradient(problem.loss, params, u))[0]
        edge = 2 / lr
        kappa = jnp.asarray(self.relax, dtype) / lr
        norm2 = jnp.vdot(gs, gs)
        ok = norm2 > jnp.finfo(dtype).tiny
        sigma2 = jnp.where(ok, 2 * (kappa * (eig.value - edge) - jnp.vdot(gs, g)) / jnp.where(ok, norm2, 1.0), 0.0)
        sigma2 = jnp.maximum(sigma2, 0.0)
        velocity = unravel(-(g + 0.5 * sigma2 * gs))
        return CentralEval(velocity, u, problem.loss(params), eig.value, sigma2, jnp.asarray(time, dtype))

    def init(self, problem, params, lr):
        flat = ravel_pytree(params)[0]
        return self.field(problem, params, generic_vector(flat.size, flat.dtype), lr, jnp.zeros((), lr.dtype))

    def step(self, problem, params, state: CentralEval, lr, t, seed):
        h = lr / self.substeps

        def heun(_, carry):
            theta, first = carry
            trial = jax.tree.map(lambda p, v: p + h * v, theta, first.velocity)
            mid = self.field(problem, trial, first.u, lr, first.time + h)
            new = jax.tree.map(lambda p, a, b: p + 0.5 * h * (a + b), theta, first.velocity, mid.velocity)
            return new, self.field(problem, new, mid.u, lr, first.time + h)

        new, last = jax.lax.fori_loop(0, self.substeps, heun, (params, state))
        return state.loss, new, last

    def observables(self, problem, params, state: CentralEval) -> dict[str, Float[Array, ""]]:
        return {
            "central_loss": state.loss + 0.5 * state.sigma2 * state.sharpness,
            "sigma2": state.sigma2,
            "central_sharpness": state.sharpness,
            "flow_time": state.time,
        }

    def stability_edge(self, lr, t):
        """2/η: the edge the flow holds S at (GD's)."""
        return 2 / jnp.asarray(lr)

    def resolve(self, problem, one_init, values):
        if problem.step_scale() is not None:
            raise ValueError("CentralFlow needs a problem without per-parameter step multipliers (step_scale None)")
        relax = np.asarray(values.get("relax", self.relax), np.float64)
        if np.any(relax <= 0):
            raise ValueError(f"CentralFlow relax must be positive, got {relax.ravel()[:5].tolist()}")
        return self


__all__ = ["CentralEval", "CentralFlow", "sharpness_gradient"]
