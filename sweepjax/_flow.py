"""Gradient flow as an update rule (solved with diffrax), and a rule run beside the flow that it shadows.

The flow dθ/dτ = −s ⊙ ∇f(θ) is reported at the GD times τ_k = Σ_{i<k} η_i (η_i = schedule(i, η)), so
the flow's record k sits beside GD's iterate θ_k: their gap is what large step sizes add to the flow.
"""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int, PyTree

from ._rules import GD, AbstractRule, all_finite
from .problems._base import AbstractProblem, Params, Scalar
from .schedules import AbstractSchedule, Constant, as_schedule, hyperparameter


def _velocity(tau, theta: Params, args) -> Params:
    """dθ/dτ = −s ⊙ ∇f(θ)."""
    problem, scale = args
    grad = jax.grad(problem.loss)(theta)
    if scale is None:
        return jax.tree.map(jnp.negative, grad)
    return jax.tree.map(lambda g, s: -s * g, grad, scale)


class GradientFlow(AbstractRule):
    r"""θ(τ_{k+1}) = θ(τ_k) − ∫_{τ_k}^{τ_{k+1}} s ⊙ ∇f(θ(τ)) dτ: the gradient flow at the GD times
    τ_{k+1} = τ_k + η_k, η_k = schedule(k, η), one adaptive ``diffrax.diffeqsolve`` per engine step.

    The flow is autonomous, so each step solves over [0, η_k] (no rounding of τ_{k+1} − τ_k in long
    runs); τ_k is recorded as ``flow_time``. The loss returned is f(θ(τ_k)); NaN (the run diverges,
    θ(τ_k) is kept) where the inner solve fails, e.g. runs out of ``max_steps``. The flow is stable at
    any η: it has no ``stability_edge`` (None).

    Args:
        schedule: the step-size schedule that sets the times (default: constant η, τ_k = ηk).
        rtol, atol: the ``diffrax.PIDController`` tolerances (defaults 1e-6, 1e-8: for float32; tighten them
            in float64); hyperparameters, so traced: an axis ``axes={"rtol": [...]}`` needs no recompile.
        solver: a diffrax adaptive solver (static). Default ``diffrax.Tsit5()``: explicit, a step costs 6
            gradients and no Hessian. Where GD is stable (ηλ_max ≲ 2) an interval takes 1–2 steps; past
            that the step control keeps it stable at ~ηλ_max/2.7 steps per interval. An implicit
            ``diffrax.Kvaerno5()`` takes ~2–4 steps at any ηλ_max but forms and factors the n × n Hessian,
            and in float32 its Newton iteration cannot meet rtol near eps (measured: a quadratic, n = 64,
            λ ∈ [1e-4, 1], 16 runs vmapped, 100 steps; float64 at rtol 1e-8: ηλ_max = 1.9: Tsit5 0.016 s,
            Kvaerno5 0.45 s; 100: 0.21 s vs 0.66 s; 1000: 1.9 s vs 0.79 s; float32 at the defaults,
            ηλ_max = 1.9: 0.014 s vs 36 s). Use Kvaerno5 in float64 for few parameters and ηλ_max ≫ 100.
        max_steps: the inner solver's step limit per interval (static).
    """

    schedule: AbstractSchedule = eqx.field(default_factory=Constant, converter=as_schedule)
    rtol: Float[np.ndarray, ""] = eqx.field(converter=hyperparameter, default=1e-6)
    atol: Float[np.ndarray, ""] = eqx.field(converter=hyperparameter, default=1e-8)
    solver: diffrax.AbstractAdaptiveSolver = eqx.field(static=True, default_factory=diffrax.Tsit5)
    max_steps: int = eqx.field(static=True, default=4096)

    def __check_init__(self):
        if not isinstance(self.solver, diffrax.AbstractAdaptiveSolver):
            raise TypeError(f"GradientFlow(solver=...) needs an adaptive diffrax solver, got {type(self.solver).__name__}")
        if isinstance(self.max_steps, bool) or not isinstance(self.max_steps, int) or self.max_steps < 1:
            raise ValueError(f"GradientFlow(max_steps=...) must be a positive int, got {self.max_steps!r}")

    def init(self, problem, params, lr):
        return jnp.zeros((), lr.dtype)  # τ₀ = 0

    def advance(
        self, problem: AbstractProblem, theta: Params, time: Float[Array, ""], lr: Float[Array, ""], t: Int[Array, ""],
        scale: Params | None, live: Bool[Array, ""],
    ) -> tuple[Params, Float[Array, ""], Bool[Array, ""]]:  # fmt: skip
        """(θ(τ_{k+1}), τ_{k+1}, whether the solve succeeded); no work where not ``live``."""
        eta = self.schedule(t, lr)
        length = jnp.where(live, eta, jnp.zeros_like(eta))
        # the first try is the whole interval: fewest steps where GD is stable (ηλ ≲ 2), and the controller shrinks it
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(_velocity), self.solver, jnp.zeros_like(length), length, length, theta, args=(problem, scale),
            saveat=diffrax.SaveAt(t1=True), stepsize_controller=diffrax.PIDController(rtol=self.rtol, atol=self.atol),
            adjoint=diffrax.ForwardMode(), max_steps=self.max_steps, throw=False,
        )  # fmt: skip
        new = jax.tree.map(lambda y: y[0], sol.ys)
        return new, time + length, sol.result == diffrax.RESULTS.successful

    def step(self, problem, params, state, lr, t, seed):
        loss = problem.loss(params)
        new, state, ok = self.advance(problem, params, state, lr, t, problem.step_scale(), jnp.isfinite(loss))
        return jnp.where(ok, loss, jnp.nan), new, state

    def observables(self, problem, params, state):
        return {"flow_time": state}

    def resolve(self, problem, one_init, values):
        for name in ("rtol", "atol"):
            v = np.asarray(values.get(name, getattr(self, name)), np.float64)
            if np.any(v <= 0):
                raise ValueError(f"GradientFlow {name} must be positive, got {v.ravel()[:5].tolist()}")
        return self


class ShadowState(eqx.Module):
    """The run's rule state, and the flow from the run's θ₀ at the run's times τ_k."""

    rule: PyTree
    theta: Params  # θ(τ_k)
    time: Float[Array, ""]  # τ_k


def _distance(a: Params, b: Params) -> Scalar:
    return jnp.sqrt(sum(jnp.sum((x - y) ** 2) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))))


class WithFlow(AbstractRule):
    r"""Run ``rule`` (e.g. ``GD()``) and carry the gradient flow from the same θ₀ at its times
    τ_k = Σ_{i<k} η_i; records ``flow_distance`` = ‖θ_k − θ(τ_k)‖₂ and ``flow_loss`` = f(θ(τ_k)).

    The flow is dθ/dτ = −s ⊙ ∇f(θ), with GD's per-group multipliers m_g in s when ``rule`` is a grouped
    ``GD``. It is a reference, not the run: where its solve fails, its records turn NaN and the run goes on.

    Args:
        rule: the update rule of the run; its hyperparameters keep their names (``axes={"lr_in": ...}``).
        flow: the ``GradientFlow`` that sets the flow's solver and tolerances (default: ``GradientFlow``
            with the rule's ``schedule``, whose hyperparameters then share the rule's names and values).
    """

    rule: AbstractRule
    flow: GradientFlow

    def __init__(self, rule: AbstractRule, flow: GradientFlow | None = None):
        if not isinstance(rule, AbstractRule):
            raise TypeError(f"WithFlow(rule) needs a sweepjax update rule, got {type(rule).__name__}")
        self.rule = rule
        self.flow = GradientFlow(schedule=getattr(rule, "schedule", None)) if flow is None else flow

    @property
    def needs_structure(self) -> bool:
        return self.rule.needs_structure

    def _scale(self, problem, params, lr):
        return self.rule.step_multipliers(problem, params, lr.dtype) if isinstance(self.rule, GD) else problem.step_scale()

    def init(self, problem, params, lr):
        return ShadowState(self.rule.init(problem, params, lr), params, self.flow.init(problem, params, lr))

    def step(self, problem, params, state, lr, t, seed):
        loss, new, rule_state = self.rule.step(problem, params, state.rule, lr, t, seed)
        live = all_finite(state.theta)
        theta, time, ok = self.flow.advance(problem, state.theta, state.time, lr, t, self._scale(problem, params, lr), live)
        theta = jax.tree.map(lambda y: jnp.where(ok, y, jnp.nan), theta)  # a failed solve: NaN from here on
        return loss, new, ShadowState(rule_state, theta, time)

    def observables(self, problem, params, state):
        return {
            **self.rule.observables(problem, params, state.rule),
            "flow_distance": _distance(params, state.theta),
            "flow_loss": problem.loss(state.theta),
            "flow_time": state.time,
        }

    def stability_edge(self, lr, t):
        """The run's rule's edge (the flow beside it has none)."""
        return self.rule.stability_edge(lr, t)

    @property
    def edge_of(self) -> str:
        return self.rule.edge_of

    def preconditioner(self, problem, params, state):
        """The run's rule's, from its own state."""
        return self.rule.preconditioner(problem, params, state.rule)

    def resolve(self, problem, one_init, values):
        rule, flow = self.rule.resolve(problem, one_init, values), self.flow.resolve(problem, one_init, values)
        return eqx.tree_at(lambda r: (r.rule, r.flow), self, (rule, flow))
