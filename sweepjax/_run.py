"""One run as a pure function: the sweep's own program for a single (η, θ₀), to jit, vmap or loop over."""

from __future__ import annotations

import functools
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, ArrayLike, Bool, Float, Int, PyTree

from ._config import check_measures
from ._execution import FlatScalars, flat_scalars, speculates
from ._record import Record
from ._rules import AbstractRule, hyperparameters, rule_from
from ._trajectory import Optimizer, Trajectory, cast_floats
from ._validate import check_one_run
from .problems._base import AbstractProblem, Params


class RunOutput(eqx.Module):
    """What one run measured: records (n_record,) at t = 0, k, …, T, the final metrics, the final
    parameters, and whether (and at which step) it diverged."""

    records: dict[str, Float[Array, " n_record"]]
    final: dict[str, Float[Array, ""]]
    params: Params
    diverged: Bool[Array, ""]
    diverged_step: Int[Array, ""]  # meaningful where ``diverged``


class OneRun(eqx.Module):
    """GD θ_{t+1} = θ_t − η s ⊙ ∇f(θ_t) (or another update rule) from one (η, θ₀) for ``num_steps``
    steps, recording as ``record`` says: exactly the program a sweep runs for each of its runs (the same
    ``Trajectory``, the same parameter layout), as a pure function
    ``run(lr, init, max_steps=None, hyper=None)``; ``hyper`` maps hyperparameter names (and ``"seed"``)
    to this run's values, as a sweep's named axes do.

    Build it with ``sj.one_run``; ``run.compiled()`` is the same function compiled with ``jax.jit``, once
    for every (η, θ₀) of the same shapes (the problem's data stay traced arrays). Its results equal the
    sweep's at ``batch_size=1``, usually bit for bit (tests/test_run.py); they are a different XLA program,
    so a recorded value can differ in its last bit where XLA fuses its arithmetic differently (seen for
    the loss of a 3-parameter quadratic in float64). At other vmap widths they agree to rounding. For
    float64, call it under ``jax.enable_x64(True)``.
    """

    trajectory: Trajectory
    problem: AbstractProblem  # cast to the dtype; wrapped in FlatScalars for tiny problems
    threshold: float = eqx.field(static=True)
    dtype: np.dtype = eqx.field(static=True)

    def __call__(
        self, lr: ArrayLike, init: PyTree[ArrayLike], max_steps: ArrayLike | None = None,
        hyper: dict[str, ArrayLike] | None = None,
    ) -> RunOutput:  # fmt: skip
        num_steps = self.trajectory.num_steps
        lrs = jnp.reshape(jnp.asarray(lr, self.dtype), (1,))
        hyper = {
            k: jnp.reshape(jnp.asarray(v, jnp.uint32 if k == "seed" else self.dtype), (1,)) for k, v in (hyper or {}).items()
        }
        params = cast_floats(jax.tree.map(jnp.asarray, init), self.dtype)
        if isinstance(self.problem, FlatScalars):
            params = tuple(ravel_pytree(params)[0])
        budget = jnp.reshape(jnp.minimum(jnp.asarray(num_steps if max_steps is None else max_steps), num_steps), (1,))
        threshold = jnp.asarray(self.threshold, self.dtype)
        batch = jax.tree.map(lambda a: a[None], params)
        records, final, state = self.trajectory(self.problem, lrs, hyper, batch, budget.astype(jnp.int32), threshold)
        params = jax.tree.map(lambda a: a[0], state.params)
        if isinstance(self.problem, FlatScalars):
            params = self.problem.params(params)
        return RunOutput(
            records={k: v[:, 0] for k, v in records.items()},
            final={k: v[0] for k, v in final.items()},
            params=params,
            diverged=~state.alive[0],
            diverged_step=state.diverged_at[0],
        )

    def compiled(self) -> Callable[..., RunOutput]:
        """``self`` under ``jax.jit``: ``run = sj.one_run(...).compiled(); out = run(lr, init)``. Pass ``lr``
        as an array (``jnp.float32(η)``): a Python float costs a host conversion on every call."""
        return functools.partial(_jitted_call, self)


_jitted_call = jax.jit(OneRun.__call__)  # one cache for every OneRun: the module is a traced argument


def one_run(
    problem: AbstractProblem,
    init_like: PyTree[ArrayLike],
    *,
    num_steps: int,
    record: Record = Record(),
    optimizer: Optimizer = None,
    rule: AbstractRule | None = None,
    dtype=jnp.float32,
    divergence_threshold: float = 1e6,
) -> OneRun:
    """The program of one run of ``sweep(problem, ..., num_steps=..., record=..., rule=...)``.

    The rule is resolved with its own hyperparameter values (e.g. ``SGD``'s batch shape is its
    ``max_batch_size``, else its ``batch_size``): a ``hyper`` value at call time must fit them.

    ``init_like`` is one parameter point (no leading axis): its shapes fix the program and pick the
    parameter layout, as in a sweep. Returns ``run`` with ``run(lr, init, max_steps=None) -> RunOutput``.

    Example: a Python loop of jitted single runs, the baseline a sweep replaces::

        run = sj.one_run(problem, inits[0], num_steps=1000, record=sj.Record(every=10)).compiled()
        outs = [run(jnp.float32(lr), init) for lr in lrs for init in inits]
    """
    dtype = check_one_run(problem, record, num_steps, optimizer, dtype, divergence_threshold)
    problem = cast_floats(problem, dtype)
    one = cast_floats(jax.tree.map(jnp.asarray, init_like), dtype)
    rule = rule_from(optimizer, rule).resolve(problem, one, {})
    of_problem = tuple(n for n in hyperparameters(problem) if n not in hyperparameters(rule))
    size = ravel_pytree(one)[0].size
    check_measures(record, problem, rule, one, size)
    trajectory = Trajectory.of(record, rule, of_problem, num_steps, size, dtype, speculates(problem, one, rule))
    coords = flat_scalars(problem, one, rule, trajectory.measures)
    return OneRun(trajectory, problem if coords is None else coords, float(divergence_threshold), dtype)
