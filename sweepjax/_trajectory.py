"""The step (an update rule's, with divergence bookkeeping) and measurement of one run, and the
trajectory of a batch of runs.

``step`` and ``measure`` are written for a single run (η, its other hyperparameters ``hyper``, θ₀);
the trajectory vmaps them over a batch inside a scan of scans, so histories come out time-major
(n_record, batch).
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

from ._curvature import AbstractEigensolver
from ._rules import AbstractRule, all_finite, is_plain_gd, with_hyperparameters
from .measures._base import AbstractMeasure, Point, keep_finite
from .measures._hessian import Sharpness
from .problems._base import AbstractProblem, Params

#: ``optimizer`` is None (plain GD), an optax direction (scaled by −η), or a factory η ↦ optax transform
Optimizer = optax.GradientTransformation | Callable[[Float[Array, ""]], optax.GradientTransformation] | None


def speculation_block(k: int) -> int | None:
    """The sub-blocks in which ``k`` steps between records run speculatively (``Trajectory.segment``): the
    largest divisor of k in [8, 32] (else 16, the remainder run exactly); None (every step exact) for k < 8."""
    if k < 8:
        return None
    return max((m for m in range(8, 33) if k % m == 0), default=16)


#: a run's hyperparameters besides η: name -> traced scalar ("seed" for the rule's randomness)
Hyper = dict[str, Array]


def cast_floats(tree, dtype):
    """Cast every floating-point array leaf of ``tree`` (params, a problem's data) to ``dtype``."""
    cast = lambda a: a.astype(dtype) if eqx.is_array(a) and jnp.issubdtype(a.dtype, jnp.floating) else a  # noqa: E731
    return jax.tree.map(cast, tree)


def records_edge(rule: AbstractRule, dtype) -> bool:
    """Whether a sweep records the rule's stability edge: every rule but plain ``GD()`` (whose edge, 2/η,
    is the classic default) that knows its edge."""
    if is_plain_gd(rule) or not hasattr(rule, "stability_edge"):
        return False
    return jax.eval_shape(rule.stability_edge, jnp.asarray(1.0, dtype), jnp.asarray(0, jnp.int32)) is not None


class RunState(eqx.Module):
    """The scan carry of one run."""

    params: Params
    rule_state: Any
    carries: tuple[Any, ...]  # each measurement's carry (e.g. the warm start of the next eigen-estimate)
    alive: Bool[Array, ""]
    diverged_at: Int[Array, ""]  # step of divergence; meaningful only where alive is False


class Trajectory(eqx.Module):
    """Static description of how one run evolves and what it records."""

    rule: AbstractRule
    problem_axes: tuple[str, ...] = eqx.field(static=True)  # the hyper names that set a problem parameter
    measures: tuple[AbstractMeasure, ...] = eqx.field(static=True)  # Sharpness(solver) first, if any
    observables: bool = eqx.field(static=True)
    every: int = eqx.field(static=True)
    num_steps: int = eqx.field(static=True)
    sharpness_dtype: Any = eqx.field(static=True, default=None)  # None: the training dtype
    # run the steps between records speculatively (``hopeful_step``): for tiny problems on XLA:CPU, whose
    # step costs its kernel count; the bits are the same either way
    speculate: bool = eqx.field(static=True, default=False)
    edge: bool = eqx.field(static=True, default=False)  # record the rule's stability edge at η_t

    @property
    def solver(self) -> AbstractEigensolver | None:
        """The eigensolver of the ``sharpness`` record (None: not recorded)."""
        return next((m.solver for m in self.measures if isinstance(m, Sharpness)), None)

    def run_rule(self, hyper: Hyper) -> AbstractRule:
        """The rule with this run's hyperparameters."""
        return with_hyperparameters(self.rule, {k: v for k, v in hyper.items() if k != "seed" and k not in self.problem_axes})

    def run_problem(self, problem: AbstractProblem, hyper: Hyper) -> AbstractProblem:
        """The problem with this run's values of its swept parameters (e.g. a family's ``a``)."""
        return with_hyperparameters(problem, {k: v for k, v in hyper.items() if k in self.problem_axes})

    def init_state(self, problem: AbstractProblem, lr, hyper: Hyper, params: Params) -> RunState:
        problem = self.run_problem(problem, hyper)
        flat = ravel_pytree(params)[0]
        dtype = flat.dtype if self.sharpness_dtype is None else self.sharpness_dtype
        return RunState(
            params=params,
            rule_state=self.run_rule(hyper).init(problem, params, lr),
            carries=tuple(m.init(flat.size, dtype) for m in self.measures),
            alive=jnp.array(True),
            diverged_at=jnp.array(0, jnp.int32),
        )

    def rule_step(self, problem: AbstractProblem, lr, hyper: Hyper, state: RunState, t):
        """(f at θ_t, θ_{t+1}, the rule's new state): this run's rule stepping this run's problem."""
        seed = hyper.get("seed", jnp.array(0, jnp.int32))
        out = self.run_rule(hyper).step(self.run_problem(problem, hyper), state.params, state.rule_state, lr, t, seed)
        if self.speculate:  # the step compiles alike in ``step`` and ``hopeful_step``: the same bits on either path
            out = jax.lax.optimization_barrier(out)
        return out

    def propose(self, problem: AbstractProblem, lr, hyper: Hyper, threshold, state: RunState, t):
        """The rule's step from θ_t: (θ_{t+1}, its state, bad: θ_t or θ_{t+1} is bad, bad_here: θ_t is)."""
        loss, new_params, rule_state = self.rule_step(problem, lr, hyper, state, t)
        bad_here = ~jnp.isfinite(loss) | (loss > threshold)  # θ_t is the first bad iterate
        bad = bad_here | ~all_finite(new_params)  # or θ_{t+1} is non-finite: keep the finite θ_t
        return new_params, rule_state, bad, bad_here

    def step(self, problem: AbstractProblem, lr, hyper: Hyper, threshold, budget, state: RunState, t) -> RunState:
        """θ ← the rule's step from θ (e.g. θ − η s ⊙ ∇f(θ)); freeze on divergence."""
        new_params, rule_state, bad, bad_here = self.propose(problem, lr, hyper, threshold, state, t)
        active = state.alive & (t < budget)
        move = active & ~bad
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(move, a, b), new, old)  # noqa: E731
        return RunState(
            params=keep(new_params, state.params),
            rule_state=keep(rule_state, state.rule_state),
            carries=state.carries,
            alive=state.alive & ~(active & bad),
            diverged_at=jnp.where(active & bad, jnp.where(bad_here, t, t + 1), state.diverged_at).astype(jnp.int32),
        )

    def hopeful_step(self, problem: AbstractProblem, lr, hyper: Hyper, threshold, live, state: RunState, t) -> RunState:
        """``step`` for a block of steps in which no run diverges or ends: runs ``live`` at the block's start
        move, the others stay, and a bad θ_t (loss non-finite or above the threshold) sends θ_{t+1} to NaN,
        which every later step keeps; a live run non-finite at the block's end means the block is redone
        with ``step``. Where nothing is bad its bits are ``step``'s (tests/test_execution.py: a run's bits
        do not depend on whether its batch speculated). It is cheaper because the divergence test feeds
        the parameters' update, its only consumer: XLA:CPU fuses each step into fewer kernels."""
        loss, new_params, rule_state = self.rule_step(problem, lr, hyper, state, t)
        ok = loss <= threshold  # False for NaN
        new_params = jax.tree.map(lambda a: jnp.where(ok, a, jnp.nan), new_params)
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(live, a, b), new, old)  # noqa: E731
        return eqx.tree_at(
            lambda s: (s.params, s.rule_state), state, (keep(new_params, state.params), keep(rule_state, state.rule_state))
        )

    def measure(
        self, problem: AbstractProblem, lr, hyper: Hyper, threshold, state: RunState, t
    ) -> tuple[dict[str, Array], RunState]:
        """Loss, observables (the problem's, then the rule's), the rule's stability edge and each due
        measurement (sharpness first) at θ_t; NaN where the run is dead or θ is bad."""
        params, problem, rule = state.params, self.run_problem(problem, hyper), self.run_rule(hyper)
        # in the training dtype (a loss may return a Python float, or float64 constants under x64)
        loss = jnp.asarray(problem.loss(params), ravel_pytree(params)[0].dtype)
        ok = state.alive & jnp.isfinite(loss) & (loss <= threshold)
        out = {"loss": loss}
        if self.observables:
            out.update(problem.observables(params))
            out.update(rule.observables(problem, params, state.rule_state))
        if self.edge:
            out["edge"] = rule.stability_edge(lr, t)
        nan = jnp.array(jnp.nan, loss.dtype)
        out = {k: jnp.where(ok, jnp.asarray(v, loss.dtype), nan) for k, v in out.items()}
        seed = hyper.get("seed", jnp.array(0, jnp.uint32))
        point = Point(problem, params, rule, state.rule_state, lr, jnp.asarray(t, jnp.int32), seed)
        sd = loss.dtype if self.sharpness_dtype is None else self.sharpness_dtype
        if self.sharpness_dtype is not None:  # the measurements in their own precision
            point = cast_floats(point, self.sharpness_dtype)
        carries = []
        for m, carry in zip(self.measures, state.carries):
            values, new = self._measure_one(m, point, carry, t, sd)
            out.update({k: jnp.where(ok, v, jnp.array(jnp.nan, sd)) for k, v in values.items()})
            carries.append(keep_finite(new, carry, ok))
        return out, eqx.tree_at(lambda s: s.carries, state, tuple(carries))

    def _measure_one(self, m: AbstractMeasure, point: Point, carry, t, dtype):
        """m's values (in ``dtype``) and new carry at θ_t; NaN and the old carry at a record it is not due."""

        def compute():
            values, new = m(point, carry)
            return {k: jnp.asarray(v, dtype) for k, v in values.items()}, jax.tree.map(lambda a, b: a.astype(b.dtype), new, carry)

        if m.every is None or m.every == self.every:
            return compute()
        skip = {k: jnp.full(shape, jnp.nan, dtype) for k, shape in m.shapes(point.num_params).items()}
        # t is shared by the batch: cond skips the work at the records in between
        return jax.lax.cond(t % m.every == 0, compute, lambda: (skip, carry))

    def start(self, problem: AbstractProblem, lrs: Float[Array, " b"], hyper: Hyper, params: Params) -> RunState:
        """The initial states of a batch of runs (params and hyper with a leading batch axis)."""
        return jax.vmap(lambda lr, h, p: self.init_state(problem, lr, h, p))(lrs, hyper, params)

    def segment(
        self,
        problem: AbstractProblem,
        lrs: Float[Array, " b"],
        hyper: Hyper,
        budgets: Int[Array, " b"],
        threshold: Float[Array, ""],
        state: RunState,
        t_start: Int[Array, ""],
        n_records: int,
        on_record: Callable[[Int[Array, ""]], None] | None = None,
    ) -> tuple[dict[str, Array], dict[str, Array], RunState]:
        """Record at t = t_start, t_start + k, … (n_records times), taking k steps after each record
        before T. Returns the records (n_record, b) (time-major, NaN past each run's budget), the
        unmasked measurement at the last of them (b,) and the carried states. ``on_record(i)`` (if
        given) is called in the loop body after the i-th record's steps, once for the whole batch.

        A whole trajectory is one segment from t = 0 with T/k + 1 records; consecutive segments
        compute the same steps in the same loop body, so the carry can be saved in between.
        """
        k = self.every
        measure = jax.vmap(lambda lr, h, s, t: self.measure(problem, lr, h, threshold, s, t), in_axes=(0, 0, 0, None))
        step = jax.vmap(lambda lr, h, b, s, t: self.step(problem, lr, h, threshold, b, s, t), in_axes=(0, 0, 0, 0, None))

        hopeful = jax.vmap(
            lambda lr, h, live, s, t: self.hopeful_step(problem, lr, h, threshold, live, s, t), in_axes=(0, 0, 0, 0, None)
        )

        def exact(state, t0, n=k):  # n steps from t0
            if n == 1:  # a length-1 inner scan costs ~2x on XLA:CPU for tiny problems
                return step(lrs, hyper, budgets, state, t0)
            return jax.lax.scan(lambda s, t: (step(lrs, hyper, budgets, s, t), None), state, t0 + jnp.arange(n))[0]

        m = speculation_block(k) if self.speculate else None

        def sub_block(carry, s0):
            """m steps from s0, hopefully or exactly. ``hope`` = (quiet, need): after a sub-block in which
            a hope failed, hope again only after ``need`` exact sub-blocks in a row in which no run
            diverged, ``need`` doubling with each failure: a grid where runs keep diverging wastes
            O(log(T/m)) sub-blocks."""
            state, (quiet, need) = carry

            def hopeful_block(state):  # assume no run diverges; redo exactly if one did
                live = state.alive
                new = jax.lax.scan(lambda s, t: (hopeful(lrs, hyper, live, s, t), None), state, s0 + jnp.arange(m))[0]
                failed = jnp.any(live & ~jax.vmap(all_finite)(new.params))
                return jax.lax.cond(failed, lambda: (exact(state, s0, m), (jnp.int32(0), 2 * need)), lambda: (new, (quiet, need)))

            def exact_block(state):
                new = exact(state, s0, m)
                return new, (jnp.where(jnp.all(new.alive == state.alive), quiet + 1, 0), need)

            # a run whose budget ends inside the sub-block needs the exact step's per-step masks
            ends = jnp.any(state.alive & (budgets < s0 + m))
            return jax.lax.cond((quiet >= need) & ~ends, hopeful_block, exact_block, state), None

        def advance(state, t0, hope):
            if m is None:
                return exact(state, t0), hope
            state, hope = jax.lax.scan(sub_block, (state, hope), t0 + m * jnp.arange(k // m))[0]
            return (state if k % m == 0 else exact(state, t0 + k - k % m, k % m)), hope

        shapes = jax.eval_shape(measure, lrs, hyper, state, t_start)[0]
        dead = {n: jnp.full(v.shape, jnp.nan, v.dtype) for n, v in shapes.items()}  # what measure gives dead runs

        def outer(carry, t0):
            state, hope, _ = carry
            # a batch whose runs have all diverged (or whose steps are all spent) skips the work (lax.cond: t0 and
            # the predicates are the batch's), with the bits it would have produced: NaN records, frozen states
            rec, state = jax.lax.cond(jnp.any(state.alive), lambda s: measure(lrs, hyper, s, t0), lambda s: (dead, s), state)
            # the record at t0 = T takes no steps
            busy = (t0 < self.num_steps) & jnp.any(state.alive & (t0 < budgets))
            state, hope = jax.lax.cond(busy, advance, lambda s, _, h: (s, h), state, t0, hope)
            if on_record is not None:
                on_record((t0 - t_start) // k)
            # masked here, not after the scan: no second pass over every record
            within = lambda v: (t0 <= budgets).reshape(budgets.shape + (1,) * (v.ndim - 1))  # noqa: E731
            return (state, hope, rec), {n: jnp.where(within(v), v, jnp.nan) for n, v in rec.items()}

        t0s = t_start + k * jnp.arange(n_records)
        last = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), shapes)
        hope = (jnp.int32(0), jnp.int32(1))  # the first sub-block runs exactly: many runs diverge early
        (state, _, last), records = jax.lax.scan(outer, (state, hope, last), t0s)
        return records, last, state

    def finish(self, budgets: Int[Array, " b"], last: dict[str, Array], state: RunState) -> tuple[dict[str, Array], RunState]:
        """The final metrics (b,): the measurement at t = T, at each run's final parameters (frozen past
        its budget; measured inside the loop body, so its bits do not depend on how runs are batched).
        A run whose last point is bad diverged at its last step."""
        end = jnp.minimum(budgets, self.num_steps)
        final_bad = state.alive & jnp.isnan(last["loss"])
        state = eqx.tree_at(
            lambda s: (s.alive, s.diverged_at),
            state,
            (state.alive & ~final_bad, jnp.where(final_bad, end, state.diverged_at).astype(jnp.int32)),
        )
        return last, state

    @classmethod
    def of(
        cls, record, rule: AbstractRule, problem_axes: tuple[str, ...], num_steps: int, num_params: int, dtype,
        speculate: bool = False,
    ) -> Trajectory:  # fmt: skip
        """The trajectory a ``Record`` asks for, for a problem of ``num_params`` parameters trained in ``dtype``
        by ``rule`` (its hyperparameters cast to ``dtype``); hyperparameters named in ``problem_axes`` set
        the problem's parameters of those names."""
        sdt = record.sharpness_dtype  # its own precision for the sharpness, where it differs from dtype
        return cls(
            rule=rule if is_plain_gd(rule) else cast_floats(rule, dtype),  # (GD() has no leaves: skip the walk)
            problem_axes=tuple(problem_axes),
            measures=record.measurements(num_params),
            observables=record.observables,
            every=record.every,
            num_steps=num_steps,
            sharpness_dtype=None if sdt is None or sdt == dtype else sdt,  # (not `in`: np.dtype(None) is float64)
            speculate=speculate,
            edge=records_edge(rule, dtype),
        )

    @property
    def num_records(self) -> int:
        """Records per run: t = 0, k, …, T."""
        return self.num_steps // self.every + 1

    def __call__(
        self,
        problem: AbstractProblem,
        lrs: Float[Array, " b"],
        hyper: Hyper,
        params: Params,
        budgets: Int[Array, " b"],
        threshold: Float[Array, ""],
    ) -> tuple[dict[str, Array], dict[str, Array], RunState]:
        """Run a batch of b runs for T = num_steps steps (a scan of scans over a vmapped step).

        Returns records (n_record, b) (time-major), final metrics (b,) and the final states.
        The step and the measurement are written for one run and vmapped over the batch.
        """
        state = self.start(problem, lrs, hyper, params)
        records, last, state = self.segment(problem, lrs, hyper, budgets, threshold, state, jnp.array(0), self.num_records)
        final, state = self.finish(budgets, last, state)
        return records, final, state
