"""A sweep's configuration, validated once: everything that determines its bits. The metadata of the
result and the resume identity (``_resume.resume_config``) both derive from it."""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ._execution import speculates
from ._record import Record
from ._rules import RESERVED_AXES, AbstractRule, Optax, hyperparameters, is_plain_gd, rule_from
from ._trajectory import Trajectory, cast_floats, records_edge
from ._validate import check_checkpoint_every, check_optimizer, check_problem, check_sweep_args, is_int
from .problems._base import AbstractProblem, Params, describe


@dataclasses.dataclass(frozen=True, eq=False)
class SweepConfig:
    """The validated inputs of a sweep (on the host, in the sweep dtype) and the trajectory they define."""

    problem: AbstractProblem  #: its floating-point arrays cast to ``dtype``
    lrs: np.ndarray  #: (n_lr,), (n_lr, n_init) or (n_lr, *axis sizes, n_init) step sizes, float64 as given
    inits: Any  #: pytree of (n_init, ...) arrays in ``dtype``
    budgets: np.ndarray  #: (n_lr, n_init) or (n_lr, *axis sizes, n_init) step budgets (a broadcast view when none were given)
    record: Record
    rule: AbstractRule  #: the update rule, resolved against the problem and the axes
    axes: dict[str, np.ndarray]  #: the named axes between ``lr`` and ``init``: name -> (n,) values
    dtype: np.dtype
    threshold: float  #: the divergence threshold
    trajectory: Trajectory
    record_shapes: dict[str, tuple[int, ...]]  #: name -> shape of one recorded value (``Record.layout``)
    chunk_size: int | None
    batch_size: int | str | None  #: an int, None or "auto" (resolved by the plan)

    @property
    def shape(self) -> tuple[int, ...]:
        """The grid: (n_lr, *axis sizes, n_init)."""
        n_lr, n_init = self.budgets.shape[0], self.budgets.shape[-1]
        return (n_lr, *(v.shape[0] for v in self.axes.values()), n_init)

    @property
    def dims(self) -> tuple[str, ...]:
        return ("lr", *self.axes, "init")

    @property
    def num_steps(self) -> int:
        return self.trajectory.num_steps

    @functools.cached_property
    def one_init(self) -> Params:
        """The first init point: it fixes the shapes every run shares."""
        return jax.tree.map(lambda a: jnp.asarray(a[0]), self.inits)

    @property
    def record_dims(self) -> dict[str, tuple[str, ...]]:
        """record name -> the dims of one value where a measurement names them (``eig``, ``node``)."""
        if not self.record.measures:  # (the sharpness names no dims)
            return {}
        names = self.record.dims(ravel_pytree(self.one_init)[0].size)
        return {k: v for k, v in names.items() if k in self.record_shapes}

    @property
    def n_fields(self) -> int:
        """Numbers recorded per record: loss, observables, sharpness (+ residual)."""
        return sum(math.prod(shape) for shape in self.record_shapes.values())

    def metadata(self, chunk: int, batch_size: int | None) -> dict[str, Any]:
        """The JSON-able description stored with the result."""
        import equinox
        import optax

        from . import __version__

        trajectory, threshold = self.trajectory, self.threshold
        return {
            "problem": describe(self.problem),
            "num_steps": self.num_steps,
            "every": self.record.every,
            "sharpness": None if trajectory.solver is None else repr(trajectory.solver),
            "rule": "GD()" if is_plain_gd(self.rule) else repr(self.rule),  # (repr costs ~0.2 ms)
            "axes": {k: v.tolist() for k, v in self.axes.items()},
            "dtype": str(self.dtype),
            "divergence_threshold": float(threshold) if math.isfinite(threshold) else str(float(threshold)),
            "chunk_size": int(chunk),
            "batch_size": batch_size,
            "backend": jax.default_backend(),
            "versions": {
                "sweepjax": __version__,
                "jax": jax.__version__,
                "equinox": equinox.__version__,
                "optax": optax.__version__,
                "numpy": np.__version__,
            },
            "sharpness_dtype": None if trajectory.sharpness_dtype is None else str(trajectory.sharpness_dtype),
            **({"measures": [repr(m) for m in self.record.measures]} if self.record.measures else {}),
            **({"record_dims": {k: list(v) for k, v in dims.items()}} if (dims := self.record_dims) else {}),
            **({"edge_of": self.rule.edge_of} if trajectory.edge else {}),
        }


def check_axes(axes, n_init: int) -> dict[str, np.ndarray]:
    """``axes``: name -> non-empty real values, (n,) shared by the inits or (n, n_init) with a column per
    init (as the boundary search uses); whole numbers in [0, 2³²), 1-D, for ``"seed"``."""
    if axes is None:
        return {}
    if not isinstance(axes, dict):
        raise TypeError(f"axes must be a dict name -> 1-D values, got {type(axes).__name__}")
    out = {}
    for name, values in axes.items():
        if not isinstance(name, str) or (name in RESERVED_AXES and name != "seed"):
            raise ValueError(f"axes: {name!r} is not an axis name (lr and init are sweep's own arguments)")
        try:
            v = np.asarray(values)
        except (TypeError, ValueError) as e:
            raise ValueError(f"axes[{name!r}] must be a 1-D array of numbers") from e
        per_init = v.ndim == 2 and v.shape[1] == n_init and name != "seed"
        if not (v.ndim == 1 or per_init) or v.size == 0 or v.dtype == bool or not np.issubdtype(v.dtype, np.number):
            raise ValueError(
                f"axes[{name!r}] must be a non-empty 1-D array of numbers (or, but for 'seed', (n, n_init) = "
                f"(n, {n_init}): a column per init), got shape {v.shape} {v.dtype}"
            )
        if not np.all(np.isfinite(v)):
            raise ValueError(f"axes[{name!r}] must be finite")
        if name == "seed":
            if not np.all(v == np.round(v)) or np.any(v < 0) or np.any(v >= 2**32):
                raise ValueError(f"axes['seed'] must hold whole numbers in [0, 2**32), got {v[:5].tolist()}")
            v = v.astype(np.uint32)
        else:
            v = v.astype(np.float64)
        out[name] = v
    return out


def problem_axes(axes: dict[str, np.ndarray], rule: AbstractRule, problem: AbstractProblem) -> tuple[str, ...]:
    """The axes that set a parameter of the problem; each other axis but ``"seed"`` must name a
    hyperparameter of the (resolved) rule, and no axis may name both."""
    of_rule, of_problem = hyperparameters(rule), hyperparameters(problem)
    for name in axes:
        if name in of_rule and name in of_problem:
            raise ValueError(f"axes[{name!r}] is ambiguous: both the rule and the problem have a parameter {name!r}")
        if name != "seed" and name not in of_rule and name not in of_problem:
            raise ValueError(
                f"axes[{name!r}] names no hyperparameter of the rule {type(rule).__name__} ({sorted(of_rule)}) nor a "
                f"scalar parameter of the problem {type(problem).__name__} ({sorted(of_problem)}); 'seed' is always an axis"
            )
    return tuple(name for name in axes if name in of_problem)


def configure(
    problem, lrs, inits, num_steps, record, max_steps, optimizer, chunk_size, batch_size, dtype: np.dtype,
    threshold, progress, out_dir, checkpoint_every, max_result_bytes, rule=None, axes=None,
) -> SweepConfig:  # fmt: skip
    """Validate every argument of ``sweep`` (clear errors naming the argument, before any compile), cast
    the problem and the inits to ``dtype``, trace the loss and observables once, probe the optimizer."""
    args = check_sweep_args(
        problem, lrs, inits, num_steps, record, max_steps, optimizer, chunk_size, batch_size, dtype, threshold,
        progress,
    )  # fmt: skip
    rule = rule_from(optimizer, rule)
    axes = check_axes(axes, jax.tree.leaves(args.inits)[0].shape[0])
    grid = (args.lrs.shape[0], *(v.shape[0] for v in axes.values()), jax.tree.leaves(args.inits)[0].shape[0])
    for name, value in (("lrs", args.lrs), ("max_steps", args.budgets)):  # a step size (budget) per run: the whole grid
        if value.ndim > 2 and value.shape != grid:
            raise ValueError(
                f"{name} with a value per run must have the grid's shape (n_lr, *axis sizes, n_init) = {grid} "
                f"(axes {list(axes)}), got {value.shape}"
            )
    check_checkpoint_every(checkpoint_every, record.every, out_dir)
    if max_result_bytes is not None and (not is_int(max_result_bytes) or max_result_bytes < 1):
        raise ValueError(f"max_result_bytes must be a positive int or None, got {max_result_bytes!r}")
    problem = cast_floats(problem, dtype)
    one_init = jax.tree.map(lambda a: jnp.asarray(a[0]), args.inits)
    observables = check_problem(problem, one_init)
    if isinstance(rule, Optax):
        check_optimizer(rule.transform if rule.is_direction else rule.tx, one_init, args.lrs)
    rule = rule.resolve(problem, one_init, {k: v for k, v in axes.items() if k != "seed"})
    of_problem = problem_axes(axes, rule, problem)
    problem.check_axes({k: axes[k] for k in of_problem})
    num_params = ravel_pytree(one_init)[0].size
    check_measures(record, problem, rule, one_init, num_params)
    edge = records_edge(rule, dtype)
    record_shapes = record.layout(observables, rule_observables(rule, problem, one_init, dtype), num_params, edge)
    trajectory = Trajectory.of(record, rule, of_problem, args.num_steps, num_params, dtype, speculates(problem, one_init, rule))
    return SweepConfig(
        problem, args.lrs, args.inits, args.budgets, record, rule, axes, dtype, float(threshold), trajectory,
        record_shapes, args.chunk_size, args.batch_size,
    )  # fmt: skip


def rule_observables(rule: AbstractRule, problem, one_init, dtype) -> dict[str, tuple[int, ...]]:
    """The shapes of what the rule records beside the problem's observables, traced abstractly."""
    if type(rule).observables is AbstractRule.observables:  # none (no trace: the host overhead of small sweeps)
        return {}
    lr = jnp.asarray(1.0, dtype)

    def observe(params):
        return rule.observables(problem, params, rule.init(problem, params, lr))

    return {name: tuple(v.shape) for name, v in jax.eval_shape(observe, one_init).items()}


def check_measures(record: Record, problem, rule: AbstractRule, one_init, num_params: int) -> None:
    """Each measurement fits the problem and the rule (its own clear error), and their names are distinct
    from each other and from the built-in records (``Record.layout`` says which)."""
    for m in record.measurements(num_params):
        m.check(problem, rule, one_init)
