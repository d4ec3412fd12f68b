"""The sweep engine: every (η, θ₀) pair of a grid in one jit-compiled program, chunk by chunk."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from jaxtyping import ArrayLike, Float, Int, PyTree

from ._config import configure
from ._execution import (
    FlatScalars,
    check_result_fits,
    coordinates,
    place,
    split_runs,
    to_host,
)  # fmt: skip
from ._plan import make_plan
from ._progress import Progress, tick, tick_every
from ._record import Record
from ._result import ChunkOutput, SweepResult
from ._resume import ChunkStore, resume_config
from ._rules import AbstractRule
from ._trajectory import Optimizer, RunState, Trajectory
from ._validate import (
    check_dtype,
)
from .problems._base import AbstractProblem

#: loss above which a run counts as diverged (the papers' NN code stops at 1e6)
DEFAULT_DIVERGENCE_THRESHOLD = 1e6


@eqx.filter_jit
def _run_chunk(
    trajectory: Trajectory,
    problem: AbstractProblem,
    lrs: Float[jax.Array, "n_lr *axes n_init"],
    inits: PyTree,
    budgets: Int[jax.Array, "n_lr *axes n_init"],
    axes: tuple[jax.Array, ...],
    lr_idx: Int[jax.Array, " c"],
    axis_idx: tuple[Int[jax.Array, " c"], ...],
    init_idx: Int[jax.Array, " c"],
    threshold: Float[jax.Array, ""],
    batch_size: int | None,
    mesh: Mesh | None,
    state: RunState | None = None,
    t_start: Int[jax.Array, ""] | int = 0,
    n_records: int | None = None,
    finish: bool = True,
    token: Int[jax.Array, ""] | int = 0,
    ticks: bool = False,
    axis_names: tuple[str, ...] = (),
):
    """Gather one chunk's runs from the grid (η, the named axes' values, θ₀) and run them: one vmapped
    batch, or lax.map over vmapped batches of ``batch_size``; with a mesh, each device runs its slice.

    The whole trajectory by default; else one segment of ``n_records`` records from step ``t_start``,
    starting from the carried ``state`` (None: the inits); the last segment (``finish``, its last
    record at T) returns the final metrics, the others their carry. With ``ticks`` the loop body
    reports its progress to the bar of ``token`` (``_progress``).
    """
    arrays, static = eqx.partition(problem, eqx.is_array)
    n_records = trajectory.num_records if n_records is None else n_records

    def local(arrays, lrs, inits, budgets, axes, threshold, t_start, token, lr_idx, axis_idx, init_idx, state=None):
        problem = eqx.combine(arrays, static)
        c = lr_idx.shape[0]
        b = c if batch_size is None else batch_size
        units = (c // b) * n_records  # records × batches: the piece's progress units on this device

        def run_batch(xs):
            k, i, a, j, st = xs
            lr = lrs[i, j] if lrs.ndim == 2 else lrs[(i, *a, j)]
            budget = budgets[i, j] if budgets.ndim == 2 else budgets[(i, *a, j)]
            # an axis holds (n,) values, or (n, n_init): a column per init
            hyper = {name: values[ai] if values.ndim == 1 else values[ai, j] for name, values, ai in zip(axis_names, axes, a)}
            if st is None:
                st = trajectory.start(problem, lr, hyper, jax.tree.map(lambda a: a[j], inits))
            on_record = None
            if ticks:
                on_record = lambda r: tick(token, k * n_records + r + 1, units, tick_every(units))  # noqa: E731
            records, last, st = trajectory.segment(problem, lr, hyper, budget, threshold, st, t_start, n_records, on_record)
            if not finish:
                return records, st
            final, st = trajectory.finish(budget, last, st)
            params = jax.vmap(problem.params)(st.params) if isinstance(problem, FlatScalars) else st.params
            return records, (final, params, st.alive, st.diverged_at)

        xs = jax.tree.map(lambda a: a.reshape((c // b, b) + a.shape[1:]), (lr_idx, axis_idx, init_idx, state))
        xs = (jnp.arange(c // b), *xs)
        if c // b == 1:
            out = jax.tree.map(lambda a: a[None], run_batch(jax.tree.map(lambda a: a[0], xs)))
        else:
            out = jax.lax.map(run_batch, xs)
        records, rest = out
        # records stay time-major: (n_batch, n_record, b, *s) -> (n_record, c, *s); the rest (n_batch, b, ...) -> (c, ...)
        records = {n: jnp.moveaxis(v, 0, 1).reshape((v.shape[1], c) + v.shape[3:]) for n, v in records.items()}
        return records, jax.tree.map(lambda a: a.reshape((c,) + a.shape[2:]), rest)

    split = (lr_idx, axis_idx, init_idx) if state is None else (lr_idx, axis_idx, init_idx, state)
    replicated = (arrays, lrs, inits, budgets, axes, threshold, jnp.asarray(t_start), jnp.asarray(token, jnp.int32))
    return split_runs(local, mesh, len(replicated))(*replicated, *split)


def time_horizon(lrs: ArrayLike, horizon: float) -> np.ndarray:
    """Step budgets ⌈horizon/η⌉ for a fixed time horizon η·T (as in the papers' figures), shaped like ``lrs``:
    per η (n_lr,), per init (n_lr, n_init) or per run (n_lr, *axis sizes, n_init); pass them as ``max_steps``."""
    lrs = np.asarray(lrs, dtype=float)
    if not (isinstance(horizon, (int, float)) and math.isfinite(horizon) and horizon > 0):
        raise ValueError(f"horizon must be a positive finite number, got {horizon!r}")
    if lrs.ndim < 1 or lrs.size == 0 or not np.all(np.isfinite(lrs)) or np.any(lrs <= 0):
        raise ValueError("lrs must be a non-empty array of positive finite step sizes")
    return np.ceil(horizon / lrs - 1e-9).astype(np.int64)


def sweep(
    problem: AbstractProblem,
    lrs: ArrayLike,
    inits: PyTree[ArrayLike],
    *,
    num_steps: int | None = None,
    record: Record = Record(),
    max_steps: ArrayLike | None = None,
    optimizer: Optimizer = None,
    rule: AbstractRule | None = None,
    axes: dict[str, ArrayLike] | None = None,
    chunk_size: int | None = None,
    batch_size: int | Literal["auto"] | None = "auto",
    dtype: Any = jnp.float32,
    divergence_threshold: float = DEFAULT_DIVERGENCE_THRESHOLD,
    progress: bool | Callable[[int, int], None] = False,
    out_dir: str | os.PathLike | None = None,
    memory_budget_bytes: int | None = None,
    checkpoint_every: int | None = None,
    max_result_bytes: int | None = None,
) -> SweepResult:
    """Run GD from every init at every step size and record loss, sharpness and observables.

    θ_{t+1} = θ_t − η s ⊙ ∇f(θ_t) for each (η, θ₀) ∈ lrs × inits, all in one compiled program.

    Args:
        problem: the objective (an ``AbstractProblem``; wrap a plain function in ``problems.Objective``).
        lrs: (n_lr,) positive step sizes η shared by all inits, (n_lr, n_init) with a column
            of step sizes per init (as the boundary search uses), or (n_lr, *axis sizes, n_init): a step
            size per run, e.g. η = c/λ₀ with λ₀ each run's initial sharpness (``sj.initial_sharpness``).
        inits: a pytree of arrays with leading axis n_init (one parameter point per row).
        num_steps: steps T per run, a multiple of ``record.every``; defaults to the largest budget
            in ``max_steps`` rounded up to a multiple of ``record.every``.
        record: what to measure and how often (``Record(every=k, sharpness=..., observables=...)``).
        max_steps: optional per-run budgets, shape (n_lr,), (n_lr, n_init) or (n_lr, *axis sizes, n_init),
            each in [0, T]; a run stops (parameters frozen, later records NaN) after its budget. See
            ``time_horizon`` (budgets ⌈H/η⌉ shaped like ``lrs``).
        optimizer: ``None`` for GD; an optax transform used as a direction (update = −η·u, e.g.
            ``optax.scale_by_adam()``); or a factory ``η ↦ optax transform`` (e.g.
            ``lambda lr: optax.sgd(lr, momentum=0.9)``), called with each run's traced η. The same as
            ``rule=sj.Optax(optimizer)``.
        rule: the update rule (default ``sj.GD()``): ``sj.GD(schedule=..., groups=...)``,
            ``sj.Optax(optax.adam, b1=0.9)``, ``sj.SGD(batch_size=32)``, ``sj.GradientFlow()``, ... Its
            numeric fields (and its schedule's) are hyperparameters, sweepable by name in ``axes``.
        axes: more named grid axes, ``{name: 1-D values}``, between ``lr`` and ``init``: each a
            hyperparameter of the rule (``{"b1": [0.8, 0.9]}``, ``{"warmup": [0, 100]}``, per-layer
            ``{"lr_in": ..., "lr_out": ...}``), a scalar parameter of the problem (a family's ``a``,
            the mean model's ``d``; values checked by the problem's ``check_axes``), or ``"seed"`` (whole numbers; the
            rule's randomness, e.g. SGD's batches; 0 without this axis). All are traced: new values
            do not recompile. Values are (n,), or (n, n_init) for a column per init (as ``lrs`` can
            be; ``find_boundary(along=name)`` uses it). Every result array then has the dims ``("lr", *axes, "init")``;
            ``res.sel(name=value)`` picks one slice.
        chunk_size: runs per compiled chunk (default: the whole grid). The last chunk is padded
            to the same shape, so there is one compile.
        batch_size: the execution strategy. An int runs the chunk as ``lax.map`` over vmapped
            batches of that size (1 = runs in sequence inside the program); ``None`` vmaps the whole
            chunk; ``"auto"`` (default) picks the width from XLA's FLOP estimate of one gradient: on
            CPU a wide vmap for tiny problems, 8 for elementwise-bound ones, 1 for matmul-bound ones
            (where batched matmuls are slower than sequential ones); on accelerators a wide vmap;
            capped by ``chunk_size``. A run's bits depend on its vmap width (XLA emits different
            code per width), so chunking is bitwise-neutral whenever the width is fixed: pass an int,
            or a ``chunk_size`` at least the automatic width (``result.metadata["batch_size"]``).
            With several devices (``jax.device_count() > 1``, across processes too) each chunk's runs
            are split over all of them; results equal the single-device run. Results are
            bitwise reproducible for a given vmap width (``batch_size``, else the chunk size): with
            a fixed ``batch_size``, every ``chunk_size`` gives the same bits. Different widths agree
            to rounding only (XLA:CPU emits different code per batch width). Tiny problems (at most
            8 parameters, a gradient under 1e4 FLOPs) run over their coordinates as separate scalars
            (``metadata["params_layout"]``): fewer kernels per step, the same bits.
        dtype: ``jnp.float32`` (default) or ``jnp.float64`` (x64 is enabled for this call only).
        divergence_threshold: a run diverges when its loss is non-finite or exceeds this.
        progress: ``True`` for a tqdm bar (the ``progress`` extra) in run-steps with an ETA, which moves
            while the program runs (~100 host callbacks per chunk, outside the vmap: the results are
            bitwise the same); or a callback ``(done, total)`` called on the host after each of the
            ``total`` pieces (chunks, or their segments with ``checkpoint_every``).
        out_dir: a folder in which to save each finished chunk (atomically, as ``.npz``) next to a
            ``manifest.json`` holding hashes of the whole configuration. Calling again with the same
            arguments loads the finished chunks instead of recomputing them, and returns a result
            bitwise equal to an uninterrupted run; a call whose configuration differs is refused
            with a ValueError naming the differing fields.
        memory_budget_bytes: (default: half the device's memory where JAX reports it, else half
            the host's RAM) pick the largest chunk (at most ``chunk_size``) whose estimated
            footprint (records, finals, carry, step temporaries and eigensolver workspace per run,
            times the runs, plus the grid's inputs) fits in this many bytes. Only the chunking
            changes: with a fixed ``batch_size`` the result is bitwise the same.
        checkpoint_every: (needs ``out_dir``) also save each chunk's carry (parameters, optimizer
            state, warm-start vectors, status) and its records so far every this many steps (a
            multiple of ``record.every``), so a long sweep killed mid-chunk resumes from its last
            checkpoint instead of the chunk's start. The result is bitwise the same as without.
        max_result_bytes: refuse (``ValueError``, before compiling) a sweep whose result (records,
            finals and final parameters of every run, twice that while chunks are joined) is
            estimated above this many bytes; default: 3/4 of the host's available RAM.

    Returns:
        a ``SweepResult`` with arrays shaped (n_lr, *axis sizes, n_init[, n_record]).
    """
    dtype = check_dtype(dtype)
    sharpness_dtype = getattr(record, "sharpness_dtype", None)  # (record is validated inside)
    x64 = dtype == np.float64 or (sharpness_dtype is not None and sharpness_dtype == np.float64)
    with jax.enable_x64(x64):
        return _sweep(
            problem, lrs, inits, num_steps, record, max_steps, optimizer, chunk_size, batch_size, dtype,
            divergence_threshold, progress, out_dir, memory_budget_bytes, checkpoint_every, max_result_bytes,
            rule, axes,
        )  # fmt: skip


def _sweep(
    problem, lrs, inits, num_steps, record, max_steps, optimizer, chunk_size, batch_size, dtype,
    divergence_threshold, progress, out_dir=None, memory_budget_bytes=None, checkpoint_every=None,
    max_result_bytes=None, rule=None, axes=None,
) -> SweepResult:  # fmt: skip
    cfg = configure(
        problem, lrs, inits, num_steps, record, max_steps, optimizer, chunk_size, batch_size, dtype,
        divergence_threshold, progress, out_dir, checkpoint_every, max_result_bytes, rule, axes,
    )  # fmt: skip
    plan = make_plan(cfg, memory_budget_bytes, checkpoint_every)
    grid, n_runs, num_steps, trajectory = cfg.shape, plan.n_runs, cfg.num_steps, cfg.trajectory
    n_lr, n_init = grid[0], grid[-1]
    mesh, coords = plan.mesh, plan.layout
    check_result_fits(cfg.n_fields, cfg.one_init, trajectory, dtype, n_runs, plan.n_chunks, max_result_bytes)

    lrs_dev, run_inits, budgets_dev, axes_dev, threshold, run_problem = place(
        (
            (cfg.lrs if cfg.lrs.ndim > 2 else np.broadcast_to(cfg.lrs.reshape(n_lr, -1), (n_lr, n_init))).astype(dtype),
            cfg.inits if coords is None else coordinates(cfg.inits),
            cfg.budgets.astype(np.int32),
            tuple(v if k == "seed" else v.astype(dtype) for k, v in cfg.axes.items()),
            np.asarray(cfg.threshold, dtype),
            cfg.problem if coords is None else coords,
        ),
        mesh,
    )
    store = None
    if out_dir is not None:
        identity = resume_config(cfg, plan.chunk, plan.batch_size)
        store = ChunkStore(out_dir, identity, plan.n_chunks, jax.tree.structure(cfg.inits))
    n_records, seg, starts = plan.n_records, plan.seg, plan.starts
    state_def = None
    if store is not None and len(starts) > 1:  # the carry's structure, to load a saved one
        one = jax.tree.map(lambda a: a[:1], run_inits)
        hyper = {k: v.reshape(-1)[:1] for k, v in zip(cfg.axes, axes_dev)}
        state_def = jax.tree.structure(jax.eval_shape(trajectory.start, run_problem, lrs_dev[0, :1], hyper, one))
    report = Progress(progress, plan.n_chunks * len(starts), n_runs * num_steps)
    try:
        pieces = []
        for c in range(plan.n_chunks):
            piece = None if store is None else store.load(c)
            if piece is None:
                lr_idx, axis_idx, init_idx = place(plan.runs(c), mesh, True)
                parts, state = [], None
                if state_def is not None:  # resume this chunk from its last saved carry
                    saved = store.load_carry(c, seg, state_def)
                    if saved is not None:
                        parts, state = saved[0], place(saved[1], mesh, True)
                for s, r0 in enumerate(starts):
                    if s < len(parts):
                        continue
                    last = s == len(starts) - 1
                    records, rest = _run_chunk(
                        trajectory, run_problem, lrs_dev, run_inits, budgets_dev, axes_dev, lr_idx, axis_idx, init_idx,
                        threshold,
                        plan.batch_size, mesh, state, np.int32(r0 * record.every), min(seg, n_records - r0), last,
                        np.int32(report.token), report.ticks, tuple(cfg.axes),
                    )  # fmt: skip
                    parts.append(to_host(records))
                    if not last:
                        state = rest
                        if store is not None:
                            store.save_carry(c, s, seg, parts[-1], to_host(state))
                        report.piece_done(c * len(starts) + s + 1)
                records = {n: parts[0][n] if len(parts) == 1 else np.concatenate([p[n] for p in parts]) for n in parts[0]}
                piece = ChunkOutput(records, *to_host(rest))
                if store is not None:
                    store.save(c, piece)
            pieces.append(piece)
            report.piece_done((c + 1) * len(starts))
    finally:
        report.close()

    def join(axis: int):  # the chunks along their run axis (1 for time-major records, else 0), unpadded
        def cat(*xs):
            a = xs[0] if len(xs) == 1 else np.concatenate(xs, axis=axis)
            return a[:, :n_runs] if axis else a[:n_runs]

        return cat

    records = jax.tree.map(join(1), *[p.records for p in pieces])
    final, params, alive, diverged_at = jax.tree.map(join(0), *[p[1:] for p in pieces])

    on_grid = lambda a: a.reshape(grid + a.shape[1:])  # noqa: E731
    status = np.where(on_grid(alive), 0, 1).astype(np.int8)
    diverged_step = np.where(status == 1, on_grid(diverged_at).astype(float), np.nan)
    if np.all(diverged_step == 0):
        warnings.warn(
            "every run diverged at step 0: the loss is non-finite or above divergence_threshold at every "
            "init; check the loss function and the inits",
            stacklevel=3,
        )
    return SweepResult(
        lrs=cfg.lrs,
        steps=np.arange(0, num_steps + 1, record.every),
        inits=cfg.inits,
        # a (*grid, n_record, *record shape) view of time-major storage: no transpose copy
        records={k: np.moveaxis(v.reshape((v.shape[0], *grid) + v.shape[2:]), 0, len(grid)) for k, v in records.items()},
        final={k: on_grid(v) for k, v in final.items()},
        final_params=jax.tree.map(on_grid, params),
        status=status,
        diverged_step=diverged_step,
        num_steps=np.broadcast_to(
            np.minimum(cfg.budgets, num_steps)
            .astype(np.int64)
            .reshape(n_lr, *[1] * (len(grid) - cfg.budgets.ndim), *cfg.budgets.shape[1:]),
            grid,
        ).copy(),
        axes=dict(cfg.axes),
        metadata={
            **cfg.metadata(plan.chunk, plan.batch_size),
            "devices": plan.devices,
            "params_layout": "pytree" if coords is None else "flat scalars",
            "processes": jax.process_count(),
        },
    )


def initial_sharpness(
    problem: AbstractProblem,
    inits: PyTree[ArrayLike],
    *,
    axes: dict[str, ArrayLike] | None = None,
    sharpness: Any = "auto",
    rule: AbstractRule | None = None,
    dtype: Any = jnp.float32,
    **sweep_kwargs,
) -> np.ndarray:
    """λ₀ = λ_max(∇²f(θ₀)) of every run slot (*axis sizes, n_init), from one sweep that takes no step.

    For step sizes in units of the initial sharpness, η = c/λ₀ per run (Lewkowycz et al.; Kalra & Barkeshli):
    ``sweep(problem, c[:, None, …] / lam0[None], inits, axes=axes)``. ``sharpness`` is a ``Record``'s
    (an eigensolver, or "auto"); ``axes``, ``rule`` and ``dtype`` are the sweep's own, so a problem
    parameter swept as an axis (a width, a depth) sets λ₀ too; other keywords go to ``sweep``.
    """
    if sharpness is None:
        raise ValueError("sharpness must be an eigensolver or 'auto', not None: λ₀ is what this measures")
    record = Record(every=1, sharpness=sharpness, observables=False)
    kwargs = dict(axes=axes, rule=rule, dtype=dtype, **sweep_kwargs)
    res = sweep(problem, [1.0], inits, num_steps=1, max_steps=[0], record=record, **kwargs)
    return np.asarray(res["initial_sharpness"][0])
