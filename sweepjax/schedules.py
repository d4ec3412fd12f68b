"""Step-size schedules η_t = schedule(t, η): the run's base step size η shaped over the steps t.

A schedule is a small ``equinox`` Module. Its numeric fields are hyperparameters: traced per run, so
each can be a named grid axis of a sweep (``axes={"warmup": [0, 100, 1000]}``) without a recompile.
Any function ``fn(t, lr) -> η_t`` of traced arrays is a schedule too (``Function(fn)``).
"""

from __future__ import annotations

import abc
from collections.abc import Callable

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

__all__ = ["AbstractSchedule", "Constant", "Cosine", "Function", "LinearWarmup", "StepDecay"]


def hyperparameter(value) -> np.ndarray:
    """A numeric hyperparameter as a float64 NumPy scalar: a pytree leaf, cast to the sweep dtype later."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number, np.ndarray, Array)):
        raise TypeError(f"a hyperparameter must be a real number, got {type(value).__name__} {value!r}")
    a = np.asarray(value, np.float64)
    if a.ndim or not np.isfinite(a):
        raise ValueError(f"a hyperparameter must be one finite real number, got {value!r}")
    return a


class AbstractSchedule(eqx.Module):
    """η_t as a function of the step t and the run's base step size η."""

    @abc.abstractmethod
    def __call__(self, t: Int[ArrayLike, ""], lr: Float[Array, ""]) -> Float[Array, ""]:
        """η_t."""


class Constant(AbstractSchedule):
    """η_t = η (the step size itself, bit for bit)."""

    def __call__(self, t, lr):
        return lr


class LinearWarmup(AbstractSchedule):
    """η_t = η · (start + (1 − start) · min(t / warmup, 1)); ``warmup`` = 0 is the constant η."""

    warmup: Float[np.ndarray, ""] = eqx.field(converter=hyperparameter)
    start: Float[np.ndarray, ""] = eqx.field(converter=hyperparameter, default=0.0)

    def __call__(self, t, lr):
        w = jnp.maximum(self.warmup, 1e-30)
        frac = jnp.where(self.warmup > 0, jnp.minimum(t / w, 1.0), 1.0)
        return lr * (self.start + (1 - self.start) * frac).astype(lr.dtype)


class Cosine(AbstractSchedule):
    """η_t = η · (final + (1 − final) · ½(1 + cos(π · min(t, T)/T))) with T = ``decay_steps``."""

    decay_steps: Float[np.ndarray, ""] = eqx.field(converter=hyperparameter)
    final: Float[np.ndarray, ""] = eqx.field(converter=hyperparameter, default=0.0)

    def __call__(self, t, lr):
        frac = jnp.minimum(t / jnp.maximum(self.decay_steps, 1e-30), 1.0)
        return lr * (self.final + (1 - self.final) * 0.5 * (1 + jnp.cos(jnp.pi * frac))).astype(lr.dtype)


class StepDecay(AbstractSchedule):
    """η_t = η · factor^⌊t / every⌋."""

    every: Float[np.ndarray, ""] = eqx.field(converter=hyperparameter)
    factor: Float[np.ndarray, ""] = eqx.field(converter=hyperparameter, default=0.1)

    def __call__(self, t, lr):
        return lr * (self.factor ** jnp.floor(t / jnp.maximum(self.every, 1e-30))).astype(lr.dtype)


class Function(AbstractSchedule):
    """Any η_t = fn(t, η) of traced arrays (t an int32 scalar). Pass a module-level function: a fresh
    lambda is a new static field, so a new compile."""

    fn: Callable[[Int[Array, ""], Float[Array, ""]], Float[Array, ""]] = eqx.field(static=True)

    def __call__(self, t, lr):
        return jnp.asarray(self.fn(t, lr), lr.dtype)


def as_schedule(schedule) -> AbstractSchedule:
    """None -> Constant(); a schedule as is; a callable fn(t, η) -> Function(fn)."""
    if schedule is None:
        return Constant()
    if isinstance(schedule, AbstractSchedule):
        return schedule
    if callable(schedule):
        return Function(schedule)
    raise TypeError(f"schedule must be a sweepjax.schedules schedule or a function fn(t, lr), got {type(schedule).__name__}")
