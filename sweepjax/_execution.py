"""How a chunk of runs executes: the vmap width (strategy), the parameters' layout, the chunk a memory
budget allows, and the devices its run axis is split over.

Measured on XLA:CPU (benchmarks/README.md): a wide vmap wins for tiny problems, vmapped batches of 8
for elementwise-bound ones, and runs in sequence (width 1) for matmul-bound ones, where batching
turns matmuls into slower batched ``dot_general``s. On accelerators a wide vmap wins.
"""

from __future__ import annotations

import math
import os
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jax.sharding import Mesh, PartitionSpec

from ._rules import AbstractRule, is_plain_gd
from ._validate import is_int
from .problems._base import AbstractProblem, Params

#: CPU thresholds on XLA's FLOP estimate of one loss-and-gradient evaluation
TINY_FLOPS, MATMUL_FLOPS = 1e4, 1e7
#: vmap widths: tiny problems on CPU, elementwise-bound problems on CPU, any problem on accelerators
WIDE_CPU, MID_CPU, WIDE_ACCELERATOR = 4096, 8, 16384
#: tiny problems with at most this many parameters run over their coordinates as separate scalars
FLAT_SCALARS_MAX = 8
RUNS = "runs"


def _pow2_at_least(n: int) -> int:
    return 1 << max(int(n) - 1, 0).bit_length()


def gradient_flops(problem: AbstractProblem, one_init: Params, rule=None) -> float:
    """XLA's FLOP estimate for one step (lowered, not compiled): of ∇f(θ) for GD (``rule`` None or a plain
    ``GD()``, so classic sweeps keep their strategy), else of the rule's step (e.g. SGD's minibatch
    gradient, a schedule's arithmetic); inf if the backend gives none.

    It depends only on the problem's and rule's structure and shapes, so it is lowered once per (structure,
    shapes), not on every sweep call."""
    if is_plain_gd(rule):
        rule = None
    leaves, structure = jax.tree.flatten((problem, one_init, rule))
    try:
        key = (structure, tuple((np.shape(a), str(getattr(a, "dtype", type(a)))) for a in leaves))
        hash(key)
    except TypeError:  # a static field that cannot be hashed: no caching
        return _lowered_flops(problem, one_init, rule)
    if key not in _FLOPS:
        if len(_FLOPS) >= 256:
            _FLOPS.clear()
        _FLOPS[key] = _lowered_flops(problem, one_init, rule)
    return _FLOPS[key]


_FLOPS: dict = {}  # memo of gradient_flops: (structure, leaf shapes and dtypes) -> FLOPs


def _lowered_flops(problem: AbstractProblem, one_init: Params, rule) -> float:
    if rule is None:
        fn = jax.value_and_grad(problem.loss)
    else:

        def fn(params):
            lr = jnp.ones((), ravel_pytree(params)[0].dtype)
            state = rule.init(problem, params, lr)
            return rule.step(problem, params, state, lr, jnp.array(1, jnp.int32), jnp.array(0, jnp.uint32))

    cost = jax.jit(fn).lower(one_init).cost_analysis()
    if isinstance(cost, (list, tuple)):  # older jax: one dict per computation
        cost = cost[0] if cost else None
    flops = None if not cost else cost.get("flops")
    return float("inf") if flops is None or flops < 0 else float(flops)


def choose_batch_size(problem: AbstractProblem, one_init: Params, n_runs: int, backend: str, rule=None) -> int:
    """The vmap width for ``batch_size="auto"``: fixed by the problem and the grid, never by the chunk,
    so chunking never changes a run's bits."""
    grid = _pow2_at_least(n_runs)
    if backend != "cpu":
        return min(grid, WIDE_ACCELERATOR)
    flops = gradient_flops(problem, one_init, rule)
    if flops < TINY_FLOPS:
        return min(grid, WIDE_CPU)
    if flops < MATMUL_FLOPS:
        return min(grid, MID_CPU)
    return 1


class FlatScalars(AbstractProblem):
    """A tiny problem seen through its flat coordinates θ = (θ₁, …, θₙ), one scalar leaf each.

    Vmapped over runs, each coordinate is then one contiguous array, and XLA:CPU emits fewer pads and
    concatenates to interleave the (x, y) pairs of a 2-parameter problem: fewer kernels per step, the
    same arithmetic (the sweep's bits do not change; tests/test_execution.py).
    """

    inner: AbstractProblem
    structure: Any = eqx.field(static=True)  # the treedef of one parameter point
    shapes: tuple[tuple[int, ...], ...] = eqx.field(static=True)

    def params(self, coords: tuple) -> Params:
        """The inner problem's parameter point from its coordinates (θ₁, …, θₙ)."""
        flat = jnp.stack(coords)
        cuts = np.cumsum([math.prod(s) for s in self.shapes])[:-1]
        leaves = [a.reshape(s) for a, s in zip(jnp.split(flat, cuts), self.shapes)]
        return jax.tree.unflatten(self.structure, leaves)

    def loss(self, coords):
        return self.inner.loss(self.params(coords))

    def observables(self, coords):
        return self.inner.observables(self.params(coords))

    def step_scale(self):
        scale = self.inner.step_scale()
        return None if scale is None else tuple(ravel_pytree(scale)[0])

    @property
    def num_samples(self) -> int:  # for minibatch rules (SGD) on a tiny supervised problem
        return self.inner.num_samples

    def minibatch_loss(self, coords, idx, weights):
        return self.inner.minibatch_loss(self.params(coords), idx, weights)


def speculates(problem: AbstractProblem, one_init: Params, rule=None) -> bool:
    """Whether the steps between records run speculatively (``Trajectory.speculate``): for a gradient under
    TINY_FLOPS on XLA:CPU, where a step costs its number of kernels and the per-step divergence test
    multiplies them (benchmarks/README.md)."""
    return jax.default_backend() == "cpu" and gradient_flops(problem, one_init, rule) < TINY_FLOPS


def flat_scalars(problem: AbstractProblem, one_init: Params, rule=None, measures=()) -> FlatScalars | None:
    """The coordinate view of a tiny problem (≤ FLAT_SCALARS_MAX parameters, a gradient under
    TINY_FLOPS), else None; None too for a rule or a measurement that reads the parameters' structure
    (``needs_structure``). Decided by the problem, the rule and the record, never by the strategy or the chunk."""
    n = ravel_pytree(one_init)[0].size
    structure = any(x.needs_structure for x in ((rule,) if rule is not None else ()) + tuple(measures))
    if structure or n > FLAT_SCALARS_MAX or gradient_flops(problem, one_init) >= TINY_FLOPS:
        return None
    leaves, structure = jax.tree.flatten(one_init)
    return FlatScalars(problem, structure, tuple(tuple(np.shape(a)) for a in leaves))


def coordinates(inits: Params) -> tuple:
    """A stack of parameter points (leading axis = points) as its n coordinate columns."""
    leaves = jax.tree.leaves(inits)
    flat = np.concatenate([np.reshape(a, (np.shape(a)[0], -1)) for a in leaves], axis=1)
    return tuple(flat[:, i] for i in range(flat.shape[1]))


def run_mesh() -> Mesh | None:
    """A 1-D mesh over every device (all processes) for the run axis, or None on a single device."""
    if jax.device_count() == 1:
        return None
    return jax.make_mesh((jax.device_count(),), (RUNS,), axis_types=(jax.sharding.AxisType.Explicit,))


def split_runs(fn, mesh: Mesh | None, n_replicated: int):
    """``fn(*replicated, *split)``: the arguments after the first ``n_replicated`` (the run indices,
    carried states) split along their first axis over the mesh's devices.

    Each device runs its slice of the chunk with the same program; records (a dict of (n_record, c)
    arrays) come back split along their run axis, everything else along its first axis.
    """
    if mesh is None:
        return fn
    runs = PartitionSpec(RUNS)

    def call(*args):
        in_specs = (PartitionSpec(),) * n_replicated + (runs,) * (len(args) - n_replicated)
        out_specs = (PartitionSpec(None, RUNS), runs)
        return jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_vma=False)(*args)

    return call


def place(tree, mesh: Mesh | None, split: bool = False):
    """Put host arrays on the mesh: replicated, or split along the first axis (runs)."""
    is_array = lambda a: isinstance(a, (np.ndarray, jax.Array))  # noqa: E731
    if mesh is None:
        return jax.tree.map(lambda a: jax.numpy.asarray(a) if is_array(a) else a, tree)
    sharding = jax.sharding.NamedSharding(mesh, PartitionSpec(RUNS) if split else PartitionSpec())
    return jax.tree.map(lambda a: jax.device_put(a, sharding) if is_array(a) else a, tree)


def to_host(tree):
    """Fetch a chunk's outputs to host NumPy; with several processes, gather every process's slice."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))
    return jax.device_get(tree)


def default_memory_budget(fraction: float = 0.5) -> int | None:
    """A chunk budget when the user gives none: half the device's memory where JAX reports it
    (accelerators), else half the host's physical memory; None if neither is known."""
    try:
        stats = jax.devices()[0].memory_stats()
    except Exception:  # some backends do not implement memory_stats
        stats = None
    if stats and stats.get("bytes_limit"):
        return int(fraction * stats["bytes_limit"])
    try:
        return int(fraction * os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def run_footprint_bytes(num_params: int, n_records: int, n_fields: int, solver, itemsize: int, opt_state_size: int) -> int:
    """Estimated bytes one run adds to a chunk: its records and finals, its scan carry (params,
    optimizer state, eigenvector), the step's temporaries (gradient, new params) and the
    eigensolver's workspace (a Lanczos basis, a dense Hessian)."""
    from ._curvature import DenseEigh, Lanczos, PowerIteration

    n = num_params
    workspace = 0
    if isinstance(solver, Lanczos):
        workspace = solver.order * n + 4 * n
    elif isinstance(solver, DenseEigh):
        workspace = n * n + 2 * n
    elif isinstance(solver, PowerIteration):
        workspace = 4 * n
    words = (n_records + 1) * n_fields + 4 * n + opt_state_size + n + workspace
    return itemsize * words + 16  # + status, step of divergence, indices


def chunk_for_memory_budget(budget, per_run: int, fixed: int, n_runs: int, batch_size: int | None) -> int:
    """The largest chunk (a multiple of batch_size, at most the grid) whose estimate fits the budget."""
    if not is_int(budget) or budget < 1:
        raise ValueError(f"memory_budget_bytes must be a positive int or None, got {budget!r}")
    unit = 1 if batch_size is None else batch_size
    fits = (int(budget) - fixed) // per_run // unit * unit
    if fits < unit:
        raise ValueError(
            f"memory_budget_bytes={budget} is too small: the grid's inputs take ~{fixed} bytes and "
            f"{'a batch of ' + str(unit) + ' runs' if unit > 1 else 'one run'} ~{unit * per_run} more"
        )
    return min(fits, -(-n_runs // unit) * unit)


def chunk_for_memory(
    budget: int, n_fields: int, problem: AbstractProblem, one_init: Params, trajectory, dtype, n_runs: int,
    n_init: int, batch_size: int | None,
) -> int:  # fmt: skip
    """The largest chunk (a multiple of ``batch_size``) whose estimated footprint fits ``budget`` bytes:
    per run, its ``n_fields`` records and finals, scan carry, step temporaries and eigensolver
    workspace; fixed, the grid's inputs."""
    num_params = ravel_pytree(one_init)[0].size
    itemsize = np.dtype(dtype).itemsize
    # the update rule's state (e.g. Adam's moments), traced abstractly (GD has none)
    opt = 0
    if type(trajectory.rule).init is not AbstractRule.init:
        rule_state = jax.eval_shape(trajectory.rule.init, problem, one_init, jnp.asarray(1.0, dtype))
        opt = sum(math.prod(x.shape) for x in jax.tree.leaves(rule_state))
    # other measurements: their carries (warm-start blocks) and a Krylov workspace of ~2 vectors per HVP
    extra = trajectory.measures[1:] if trajectory.solver is not None else trajectory.measures  # (Sharpness first)
    opt += sum(math.prod(x.shape) for m in extra for x in jax.tree.leaves(jax.eval_shape(lambda m=m: m.init(num_params, dtype))))
    opt += max((2 * m.matvecs * num_params for m in extra), default=0)
    per_run = run_footprint_bytes(num_params, trajectory.num_records, n_fields, trajectory.solver, itemsize, opt)
    fixed = n_runs * (itemsize + 4) + n_init * num_params * itemsize
    return chunk_for_memory_budget(budget, per_run, fixed, n_runs, batch_size)


def result_bytes(n_runs: int, n_records: int, n_fields: int, num_params: int, itemsize: int, n_chunks: int) -> int:
    """Peak host bytes of a sweep's result: records, finals and final parameters of every run, plus
    status, step counts and indices (~40 bytes a run); twice that when chunks are joined (a copy)."""
    per_run = itemsize * ((n_records + 1) * n_fields + num_params) + 40
    return n_runs * per_run * (2 if n_chunks > 1 else 1)


def available_host_memory() -> int | None:
    """Bytes the host can still give (``MemAvailable``: free plus reclaimable caches), None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _human(n: float) -> str:
    """A byte count in the largest binary unit it reaches: "11.2 GiB", "480 bytes"."""
    for exp, unit in ((30, "GiB"), (20, "MiB"), (10, "KiB")):
        if n >= 2**exp:
            return f"{n / 2**exp:.3g} {unit}"
    return f"{n:.0f} bytes"


def check_result_fits(n_fields: int, one_init: Params, trajectory, dtype, n_runs: int, n_chunks: int, budget: int | None) -> None:
    """Refuse, before anything is compiled, a sweep whose result would not fit ``budget`` bytes (default:
    3/4 of the host's available memory)."""
    sdt = trajectory.sharpness_dtype
    itemsize = max(np.dtype(dtype).itemsize, 0 if sdt is None else np.dtype(sdt).itemsize)
    n_records = trajectory.num_records
    estimate = result_bytes(n_runs, n_records, n_fields, ravel_pytree(one_init)[0].size, itemsize, n_chunks)
    if budget is None and (available := available_host_memory()) is not None:
        budget = 3 * available // 4
    if budget is None or estimate <= budget:
        return
    raise ValueError(
        f"the sweep's result would take ~{_human(estimate)} of host memory ({n_runs:,} runs x {n_records:,} records), "
        f"over max_result_bytes={budget:,} ({_human(budget)}; default: 3/4 of the RAM available now). Record less "
        f"often (a larger Record(every=...), now {trajectory.every}), record finals only (Record(every=num_steps)), sweep "
        "fewer runs (or split the grid over several calls), or raise max_result_bytes"
    )
