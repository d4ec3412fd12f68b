"""One run: the pure GD step and the trajectory (a scan of scans) with its records.

Everything here is written for a single (η, θ₀) pair; the sweep gets grids with ``jax.vmap``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Bool, Float, Int

from ._curvature import AbstractEigensolver, hessian_matvec
from .problems._base import AbstractProblem, Params

#: ``optimizer`` is None (plain GD), an optax direction (scaled by −η), or a factory η ↦ optax transform
Optimizer = optax.GradientTransformation | Callable[[Float[Array, ""]], optax.GradientTransformation] | None


class RunState(eqx.Module):
    """The scan carry of one run."""

    params: Params
    opt_state: Any
    eigvec: Float[Array, " n"]  # warm start for the next sharpness estimate
    alive: Bool[Array, ""]
    diverged_at: Int[Array, ""]  # step of divergence; meaningful only where alive is False


class Trajectory(eqx.Module):
    """Static description of how one run evolves and what it records."""

    optimizer: Optimizer = eqx.field(static=True)
    solver: AbstractEigensolver | None = eqx.field(static=True)
    observables: bool = eqx.field(static=True)
    every: int = eqx.field(static=True)
    num_steps: int = eqx.field(static=True)

    def _transform(self, lr) -> tuple[optax.GradientTransformation | None, Any]:
        if self.optimizer is None:
            return None, -lr
        if isinstance(self.optimizer, optax.GradientTransformation):
            return self.optimizer, -lr
        return self.optimizer(lr), 1.0

    def init_state(self, problem: AbstractProblem, lr, params: Params) -> RunState:
        tx, _ = self._transform(lr)
        flat = ravel_pytree(params)[0]
        # a fixed, generic start vector (not an eigenvector of structured Hessians)
        v0 = 1.0 + 0.5 * jnp.sin(jnp.arange(flat.size, dtype=flat.dtype) * 1.618)
        return RunState(
            params=params,
            opt_state=() if tx is None else tx.init(params),
            eigvec=v0 / jnp.linalg.norm(v0),
            alive=jnp.array(True),
            diverged_at=jnp.array(0, jnp.int32),
        )

    def step(self, problem: AbstractProblem, lr, threshold, budget, state: RunState, t) -> RunState:
        """θ ← θ + s ⊙ u with u = −η∇f(θ) (or the optimizer's update); freeze on divergence."""
        tx, factor = self._transform(lr)
        loss, grad = jax.value_and_grad(problem.loss)(state.params)
        if tx is None:
            updates, opt_state = grad, state.opt_state
        else:
            updates, opt_state = tx.update(grad, state.opt_state, state.params)
        scale = problem.step_scale()
        if scale is None:
            new_params = jax.tree.map(lambda p, u: p + factor * u, state.params, updates)
        else:
            new_params = jax.tree.map(lambda p, u, s: p + factor * s * u, state.params, updates, scale)
        finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(p)) for p in jax.tree.leaves(new_params)]))
        bad = ~jnp.isfinite(loss) | (loss > threshold) | ~finite
        active = state.alive & (t < budget)
        move = active & ~bad
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(move, a, b), new, old)  # noqa: E731
        return RunState(
            params=keep(new_params, state.params),
            opt_state=keep(opt_state, state.opt_state),
            eigvec=state.eigvec,
            alive=state.alive & ~(active & bad),
            diverged_at=jnp.where(active & bad, t, state.diverged_at).astype(jnp.int32),
        )

    def measure(self, problem: AbstractProblem, threshold, state: RunState) -> tuple[dict[str, Array], RunState]:
        """Loss, observables and sharpness at θ; NaN where the run is dead or θ is bad."""
        params = state.params
        loss = problem.loss(params)
        ok = state.alive & jnp.isfinite(loss) & (loss <= threshold)
        out = {"loss": loss}
        if self.observables:
            out.update(problem.observables(params))
        eigvec = state.eigvec
        if self.solver is not None:
            matvec, _ = hessian_matvec(problem.loss, params, problem.step_scale())
            eig = self.solver(matvec, state.eigvec)
            out["sharpness"], out["sharpness_residual"] = eig.value, eig.residual
            good_vec = ok & jnp.all(jnp.isfinite(eig.vector))
            eigvec = jnp.where(good_vec, eig.vector.astype(eigvec.dtype), eigvec)
        nan = jnp.array(jnp.nan, loss.dtype)
        out = {k: jnp.where(ok, jnp.asarray(v, loss.dtype), nan) for k, v in out.items()}
        return out, eqx.tree_at(lambda s: s.eigvec, state, eigvec)

    def __call__(
        self, problem: AbstractProblem, lr: Float[Array, ""], params: Params, budget: Int[Array, ""], threshold
    ) -> tuple[dict[str, Array], dict[str, Array], RunState]:
        """Run T = num_steps steps; return records (n_record,), final metrics and the final state."""
        k = self.every
        state = self.init_state(problem, lr, params)

        def outer(state, i):
            t0 = i * k
            rec, state = self.measure(problem, threshold, state)
            rec = {n: jnp.where(t0 <= budget, v, jnp.nan) for n, v in rec.items()}

            def inner(state, t):
                return self.step(problem, lr, threshold, budget, state, t), None

            state, _ = jax.lax.scan(inner, state, t0 + jnp.arange(k))
            return state, rec

        state, records = jax.lax.scan(outer, state, jnp.arange(self.num_steps // k))
        final, state = self.measure(problem, threshold, state)
        end = jnp.minimum(budget, self.num_steps)
        # a run whose last point is bad diverged at its last step
        final_bad = state.alive & jnp.isnan(final["loss"])
        state = eqx.tree_at(
            lambda s: (s.alive, s.diverged_at),
            state,
            (state.alive & ~final_bad, jnp.where(final_bad, end, state.diverged_at).astype(jnp.int32)),
        )
        last = {n: jnp.where(self.num_steps <= budget, v, jnp.nan) for n, v in final.items()}
        records = {n: jnp.concatenate([records[n], last[n][None]]) for n in records}
        return records, final, state
