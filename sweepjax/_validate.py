"""Host-side argument checks: clear ValueError/TypeError naming the argument, before any compile."""

from __future__ import annotations

import dataclasses
import numbers
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from ._record import Record
from .problems._base import AbstractProblem


@dataclasses.dataclass(frozen=True)
class SweepArgs:
    lrs: np.ndarray  # (n_lr,) float64, exactly as given (cast to the sweep dtype on device)
    inits: Any  # pytree of (n_init, ...) arrays in the sweep dtype
    budgets: np.ndarray  # (n_lr, n_init) int64, or (n_lr, *axis sizes, n_init) per run
    num_steps: int
    chunk_size: int | None
    batch_size: int | str | None  # "auto" is resolved by the engine once the problem is traced


def is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def check_lrs(lrs, dtype=np.float64, name: str = "lrs") -> np.ndarray:
    try:
        arr = np.asarray(lrs)
    except Exception as e:
        raise TypeError(f"{name} must be a 1-D array of step sizes, got {type(lrs).__name__}") from e
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim < 1:
        raise ValueError(
            f"{name} must have shape (n_lr,), (n_lr, n_init) per init, or (n_lr, *axis sizes, n_init) per run; "
            f"got shape {arr.shape}"
        )
    if arr.size == 0:
        raise ValueError(f"{name} is empty: the grid needs at least one step size")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {arr[~np.isfinite(arr)][:3].tolist()}")
    if np.any(arr <= 0):
        raise ValueError(f"{name} must be positive, got {arr[arr <= 0][:3].tolist()}")
    return arr.astype(dtype)


def check_inits(inits, problem: AbstractProblem, dtype) -> Any:
    leaves = jax.tree.leaves(inits)
    if not leaves:
        raise ValueError("inits is empty: pass a pytree of arrays with a leading axis n_init")
    arrays = []
    for leaf in leaves:
        a = np.asarray(leaf)
        if a.dtype == object or not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
            raise TypeError(f"inits leaves must be real numeric arrays, got dtype {a.dtype}")
        if a.ndim == 0:
            raise ValueError("inits leaves need a leading axis n_init (got a scalar); stack the init points")
        arrays.append(a)
    n = {a.shape[0] for a in arrays}
    if len(n) != 1:
        raise ValueError(f"inits leaves disagree on the leading axis n_init: {sorted(n)}")
    if arrays[0].shape[0] == 0:
        raise ValueError("inits has n_init = 0: the grid needs at least one initialization")
    for a in arrays:
        if not np.all(np.isfinite(a)):
            raise ValueError("inits must be finite (found NaN or inf)")
    expected = problem.param_shapes()
    if expected is not None:
        treedef = jax.tree.structure(inits)
        exp_def = jax.tree.structure(expected)
        if treedef != exp_def:
            raise ValueError(f"inits structure {treedef} does not match the problem's parameters {exp_def}")
        for a, e in zip(arrays, jax.tree.leaves(expected)):
            if a.shape[1:] != tuple(e.shape):
                raise ValueError(
                    f"inits has points of shape {a.shape[1:]} but {type(problem).__name__} expects {tuple(e.shape)} "
                    f"(inits shape should be (n_init, {', '.join(map(str, e.shape))}))"
                )
    treedef = jax.tree.structure(inits)
    return jax.tree.unflatten(treedef, [a.astype(dtype) for a in arrays])


def check_dtype(dtype) -> np.dtype:
    """The training dtype: float32 or float64."""
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dtype != np.float32 and dtype != np.float64:
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def check_settings(problem, record, optimizer, threshold) -> None:
    """What a sweep and a single run share: the problem, the record, the optimizer, the threshold."""
    if not isinstance(problem, AbstractProblem):
        raise TypeError(
            f"problem must be a sweepjax problem (an AbstractProblem), got {type(problem).__name__}; "
            "wrap a loss function as sweepjax.problems.Objective(loss_fn)"
        )
    if not isinstance(record, Record):
        raise TypeError(f"record must be a sweepjax.Record, got {type(record).__name__}")
    if not (isinstance(threshold, numbers.Real) and not isinstance(threshold, bool)) or not threshold > 0:
        raise ValueError(f"divergence_threshold must be a positive number (inf allowed), got {threshold!r}")
    if not (optimizer is None or isinstance(optimizer, optax.GradientTransformation) or callable(optimizer)):
        raise TypeError(
            "optimizer must be None, an optax GradientTransformation, or a factory lr -> GradientTransformation, "
            f"got {type(optimizer).__name__}"
        )


def check_num_steps(num_steps, every: int) -> None:
    if not is_int(num_steps) or num_steps < 1:
        raise ValueError(f"num_steps must be a positive int, got {num_steps!r}")
    if num_steps % every:
        raise ValueError(f"num_steps={num_steps} must be a multiple of record.every={every}")


def check_one_run(problem, record, num_steps, optimizer, dtype, threshold) -> np.dtype:
    """``one_run``'s arguments; returns the dtype."""
    check_settings(problem, record, optimizer, threshold)
    check_num_steps(num_steps, record.every)
    return check_dtype(dtype)


def check_sweep_args(
    problem, lrs, inits, num_steps, record, max_steps, optimizer, chunk_size, batch_size, dtype, threshold, progress
) -> SweepArgs:
    check_settings(problem, record, optimizer, threshold)
    lrs_np = check_lrs(lrs)
    with np.errstate(over="ignore", under="ignore"):
        cast = lrs_np.astype(dtype)
    bad = ~np.isfinite(cast) | (cast <= 0)
    if bad.any():
        raise ValueError(
            f"lrs must be finite and positive in the sweep dtype {np.dtype(dtype)}: {lrs_np[bad][:3].tolist()} "
            f"become {cast[bad][:3].tolist()}; use smaller or larger step sizes, or dtype=jnp.float64"
        )
    inits_np = check_inits(inits, problem, dtype)
    n_lr, n_init = lrs_np.shape[0], jax.tree.leaves(inits_np)[0].shape[0]
    if lrs_np.ndim >= 2 and lrs_np.shape[-1] != n_init:
        raise ValueError(
            f"per-init lrs must have shape (n_lr, n_init)=({n_lr}, {n_init}) (or (n_lr, *axis sizes, {n_init}) per run), "
            f"got {lrs_np.shape}"
        )
    every = record.every

    budgets = None
    if max_steps is not None:
        m = np.asarray(max_steps)
        if not np.issubdtype(m.dtype, np.integer):
            if np.issubdtype(m.dtype, np.floating) and np.all(np.isfinite(m)) and np.all(m == np.round(m)):
                m = m.astype(np.int64)
            else:
                bad = m[~(np.isfinite(m) & (m == np.round(m)))] if np.issubdtype(m.dtype, np.floating) else m
                raise TypeError(
                    f"max_steps must hold whole numbers of steps, got dtype {m.dtype} with values {bad.ravel()[:3].tolist()}"
                )
        if m.shape == (n_lr,):
            m = np.broadcast_to(m[:, None], (n_lr, n_init))
        elif m.shape != (n_lr, n_init) and not (m.ndim > 2 and m.shape[0] == n_lr and m.shape[-1] == n_init):
            raise ValueError(
                f"max_steps must have shape (n_lr,)={(n_lr,)}, (n_lr, n_init)={(n_lr, n_init)} or, per run, "
                f"(n_lr, *axis sizes, n_init), got {m.shape}"
            )
        if np.any(m < 0):
            raise ValueError("max_steps must be non-negative")
        budgets = m.astype(np.int64)

    if num_steps is None:
        if budgets is None:
            raise ValueError("num_steps is required (or give max_steps and it defaults to their maximum)")
        num_steps = int(-(-int(budgets.max()) // every) * every) or every
    check_num_steps(num_steps, every)
    if budgets is None:
        budgets = np.broadcast_to(np.int64(num_steps), (n_lr, n_init))  # a view: no n_runs-sized array yet
    elif np.any(budgets > num_steps):
        raise ValueError(f"max_steps must not exceed num_steps={num_steps}, got max {int(budgets.max())}")

    for name, value in (("chunk_size", chunk_size), ("batch_size", None if batch_size == "auto" else batch_size)):
        if value is not None and (not is_int(value) or value < 1):
            raise ValueError(f"{name} must be a positive int or None, got {value!r}")
    if not (isinstance(progress, bool) or callable(progress)):
        raise TypeError(f"progress must be a bool or a callback (done, total), got {type(progress).__name__}")
    as_int = lambda v: None if v is None else int(v)  # noqa: E731  (NumPy ints are static Python ints)
    batch = batch_size if batch_size == "auto" else as_int(batch_size)
    return SweepArgs(lrs_np, inits_np, budgets, int(num_steps), as_int(chunk_size), batch)


def check_problem(problem: AbstractProblem, one_init) -> dict[str, tuple[int, ...]]:
    """Trace the loss and observables abstractly on one point; turn failures into one clear error.
    Returns the observables' shapes (a scalar, or an array of fixed shape, e.g. the parameters)."""
    try:
        loss, obs = jax.eval_shape(lambda p: (problem.loss(p), problem.observables(p)), one_init)  # one trace
    except Exception as e:
        raise ValueError(
            f"{type(problem).__name__}.loss/observables failed on one init point "
            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
        ) from None
    if getattr(loss, "shape", None) != ():
        raise TypeError(f"{type(problem).__name__}.loss must return a scalar, got shape {getattr(loss, 'shape', loss)}")
    if not np.issubdtype(loss.dtype, np.floating):
        raise TypeError(f"{type(problem).__name__}.loss must return a floating-point scalar, got dtype {loss.dtype}")
    if not isinstance(obs, dict):
        raise TypeError(f"{type(problem).__name__}.observables must return a dict of arrays")
    for name, value in obs.items():
        if not (hasattr(value, "shape") and np.issubdtype(value.dtype, np.number)):
            raise TypeError(f"observable {name!r} must be a numeric scalar or array, got {value!r}")
        if name in ("loss", "sharpness", "sharpness_residual"):
            raise ValueError(f"observable name {name!r} clashes with a built-in record")
    return {name: tuple(value.shape) for name, value in obs.items()}


def check_optimizer(optimizer, one_init, lrs: np.ndarray) -> None:
    """Warn where an optax optimizer is probably not what was meant, from its first update u of the
    probe gradient g = 1 at θ₀: a direction (applied as −η·u) must point along g (u·g > 0); a factory
    η ↦ transform must give updates that depend on η."""
    if optimizer is None:
        return
    g = jax.tree.map(jnp.ones_like, one_init)

    def first_update(tx: optax.GradientTransformation):
        return tx.update(g, tx.init(one_init), one_init)[0]

    try:
        if isinstance(optimizer, optax.GradientTransformation):
            along = float(sum(jnp.vdot(u, d) for u, d in zip(jax.tree.leaves(first_update(optimizer)), jax.tree.leaves(g))))
            if along < 0:
                warnings.warn(
                    "optimizer is applied as a direction u (θ ← θ − η·u), but its update points against the "
                    "gradient: it already scales by its own negative learning rate (e.g. optax.adam(1e-3)), so "
                    "each step is scaled twice. Pass a factory, optimizer=lambda lr: optax.adam(lr), or a "
                    "direction such as optax.scale_by_adam()",
                    stacklevel=4,
                )
            return
        lo, hi = float(lrs.min()), float(lrs.max())
        hi = 2 * lo if hi == lo else hi
        u_lo, u_hi = (first_update(optimizer(jnp.asarray(lr, ravel_pytree(one_init)[0].dtype))) for lr in (lo, hi))
    except Exception:  # an optimizer the probe cannot drive: the sweep itself reports real errors
        return
    if all(bool(jnp.array_equal(a, b)) for a, b in zip(jax.tree.leaves(u_lo), jax.tree.leaves(u_hi))):
        warnings.warn(
            f"optimizer is a factory lr -> transform, but its first update is the same at lr={lo:g} and lr={hi:g}: "
            "the step size is ignored and every lr gives the same runs; use the lr it is called with, "
            "e.g. optimizer=lambda lr: optax.sgd(lr, momentum=0.9)",
            stacklevel=4,
        )


def check_checkpoint_every(checkpoint_every, every: int, out_dir) -> None:
    """``checkpoint_every``: None, or a positive multiple of ``record.every`` given with ``out_dir``."""
    if checkpoint_every is None:
        return
    if not is_int(checkpoint_every) or checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be a positive int (steps) or None, got {checkpoint_every!r}")
    if checkpoint_every % every:
        raise ValueError(f"checkpoint_every={checkpoint_every} must be a multiple of record.every={every}")
    if out_dir is None:
        raise ValueError("checkpoint_every needs out_dir: the folder its checkpoints are saved in")
