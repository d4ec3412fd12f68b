"""How a chunk of runs executes: the vmap width (strategy) and the devices its run axis is split over.

Measured on XLA:CPU (benchmarks/README.md): a wide vmap wins for tiny problems, vmapped batches of 8
for elementwise-bound ones, and runs in sequence (width 1) for matmul-bound ones, where batching
turns matmuls into slower batched ``dot_general``s. On accelerators a wide vmap wins.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from .problems._base import AbstractProblem, Params

#: CPU thresholds on XLA's FLOP estimate of one loss-and-gradient evaluation
TINY_FLOPS, MATMUL_FLOPS = 1e4, 1e7
#: vmap widths: tiny problems on CPU, elementwise-bound problems on CPU, any problem on accelerators
WIDE_CPU, MID_CPU, WIDE_ACCELERATOR = 4096, 8, 16384
RUNS = "runs"


def _pow2_at_least(n: int) -> int:
    return 1 << max(int(n) - 1, 0).bit_length()


def gradient_flops(problem: AbstractProblem, one_init: Params) -> float:
    """XLA's FLOP estimate for one ∇f(θ) (lowered, not compiled); inf if the backend gives none."""
    cost = jax.jit(jax.value_and_grad(problem.loss)).lower(one_init).cost_analysis()
    if isinstance(cost, (list, tuple)):  # older jax: one dict per computation
        cost = cost[0] if cost else None
    flops = None if not cost else cost.get("flops")
    return float("inf") if flops is None or flops < 0 else float(flops)


def choose_batch_size(problem: AbstractProblem, one_init: Params, n_runs: int, backend: str) -> int:
    """The vmap width for ``batch_size="auto"``: fixed by the problem and the grid, never by the chunk,
    so chunking never changes a run's bits."""
    grid = _pow2_at_least(n_runs)
    if backend != "cpu":
        return min(grid, WIDE_ACCELERATOR)
    flops = gradient_flops(problem, one_init)
    if flops < TINY_FLOPS:
        return min(grid, WIDE_CPU)
    if flops < MATMUL_FLOPS:
        return min(grid, MID_CPU)
    return 1


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
