"""A sweep's configuration, validated once: everything that determines its bits. The metadata of the
result and the resume identity (``_resume.resume_config``) both derive from it."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ._execution import record_fields
from ._record import Record
from ._trajectory import Optimizer, Trajectory, cast_floats
from ._validate import check_checkpoint_every, check_optimizer, check_problem, check_sweep_args, is_int
from .problems._base import AbstractProblem, Params, describe


@dataclasses.dataclass(frozen=True, eq=False)
class SweepConfig:
    """The validated inputs of a sweep (on the host, in the sweep dtype) and the trajectory they define."""

    problem: AbstractProblem  #: its floating-point arrays cast to ``dtype``
    lrs: np.ndarray  #: (n_lr,) or (n_lr, n_init) step sizes, float64 as given
    inits: Any  #: pytree of (n_init, ...) arrays in ``dtype``
    budgets: np.ndarray  #: (n_lr, n_init) step budgets (a broadcast view when none were given)
    record: Record
    optimizer: Optimizer
    dtype: np.dtype
    threshold: float  #: the divergence threshold
    trajectory: Trajectory
    observables: tuple[str, ...]  #: the problem's observable names
    chunk_size: int | None
    batch_size: int | str | None  #: an int, None or "auto" (resolved by the plan)

    @property
    def shape(self) -> tuple[int, int]:
        """(n_lr, n_init)."""
        return self.budgets.shape

    @property
    def num_steps(self) -> int:
        return self.trajectory.num_steps

    @property
    def one_init(self) -> Params:
        """The first init point: it fixes the shapes every run shares."""
        return jax.tree.map(lambda a: jnp.asarray(a[0]), self.inits)

    @property
    def n_fields(self) -> int:
        """Scalars recorded per record: loss, observables, sharpness (+ residual)."""
        return record_fields(len(self.observables), self.trajectory)

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
            "optimizer": None if trajectory.optimizer is None else repr(trajectory.optimizer),
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
        }


def configure(
    problem, lrs, inits, num_steps, record, max_steps, optimizer, chunk_size, batch_size, dtype: np.dtype,
    threshold, progress, out_dir, checkpoint_every, max_result_bytes,
) -> SweepConfig:  # fmt: skip
    """Validate every argument of ``sweep`` (clear errors naming the argument, before any compile), cast
    the problem and the inits to ``dtype``, trace the loss and observables once, probe the optimizer."""
    args = check_sweep_args(
        problem, lrs, inits, num_steps, record, max_steps, optimizer, chunk_size, batch_size, dtype, threshold,
        progress,
    )  # fmt: skip
    check_checkpoint_every(checkpoint_every, record.every, out_dir)
    if max_result_bytes is not None and (not is_int(max_result_bytes) or max_result_bytes < 1):
        raise ValueError(f"max_result_bytes must be a positive int or None, got {max_result_bytes!r}")
    problem = cast_floats(problem, dtype)
    one_init = jax.tree.map(lambda a: jnp.asarray(a[0]), args.inits)
    observables = check_problem(problem, one_init)
    check_optimizer(optimizer, one_init, args.lrs)
    trajectory = Trajectory.of(record, optimizer, args.num_steps, ravel_pytree(one_init)[0].size, dtype)
    return SweepConfig(
        problem, args.lrs, args.inits, args.budgets, record, optimizer, dtype, float(threshold), trajectory,
        observables, args.chunk_size, args.batch_size,
    )  # fmt: skip
