"""The execution plan of a sweep: vmap width, chunking, devices, parameter layout and segments.

Decided once per call, on the host, from the problem's structure, the grid's size, the memory budget
and the devices; the engine then runs chunk by chunk, segment by segment, as the plan says.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import numpy as np
from jax.sharding import Mesh

from ._config import SweepConfig
from ._execution import (
    FlatScalars,
    choose_batch_size,
    chunk_for_memory,
    default_memory_budget,
    flat_scalars,
    run_mesh,
)


@dataclasses.dataclass(frozen=True)
class Plan:
    """How the ``n_runs`` runs of a sweep's grid (n_lr, *axis sizes, n_init) execute."""

    n_runs: int
    grid: tuple[int, ...]  #: (n_lr, *axis sizes, n_init)
    batch_size: int | None  #: vmap width inside a chunk (``lax.map`` over batches); None: the whole chunk
    chunk: int  #: runs per compiled chunk: whole batches on every device (the last chunk is padded)
    mesh: Mesh | None  #: the devices a chunk's runs are split over (None: one device)
    layout: FlatScalars | None  #: a tiny problem seen through its coordinates (same bits, fewer kernels)
    n_records: int  #: records per run, t = 0, k, …, T
    seg: int  #: records per segment (one compiled call each; all of them without checkpoints)

    @property
    def n_chunks(self) -> int:
        return -(-self.n_runs // self.chunk)

    @property
    def devices(self) -> int:
        return 1 if self.mesh is None else self.mesh.size

    @property
    def starts(self) -> range:
        """Each segment's first record."""
        return range(0, self.n_records, self.seg)

    def runs(self, c: int) -> tuple[np.ndarray, tuple[np.ndarray, ...], np.ndarray]:
        """(lr index, the index along each named axis, init index) of chunk c's runs (row-major over the
        grid), padded with copies of the last run (computed, then discarded)."""
        flat = np.minimum(np.arange(c * self.chunk, (c + 1) * self.chunk), self.n_runs - 1)
        idx = [i.astype(np.int32) for i in np.unravel_index(flat, self.grid)]
        return idx[0], tuple(idx[1:-1]), idx[-1]


def make_plan(config: SweepConfig, memory_budget_bytes: int | None, checkpoint_every: int | None) -> Plan:
    """Pick the vmap width (``"auto"``: from XLA's FLOP estimate), the chunk (at most ``chunk_size``
    and what the memory budget allows, rounded to whole batches per device), the mesh and the layout."""
    problem, one_init, trajectory, dtype = config.problem, config.one_init, config.trajectory, config.dtype
    grid, chunk_size, batch_size = config.shape, config.chunk_size, config.batch_size
    n_runs, n_init = math.prod(grid), grid[-1]
    mesh = run_mesh()
    n_dev = 1 if mesh is None else mesh.size
    auto = batch_size == "auto"
    if auto:
        batch_size = choose_batch_size(problem, one_init, -(-n_runs // n_dev), jax.default_backend(), config.rule)
    chunk = n_runs if chunk_size is None else min(chunk_size, n_runs)
    if memory_budget_bytes is None:
        memory_budget_bytes = default_memory_budget()
    if memory_budget_bytes is not None:
        batch = None if auto else batch_size
        fits = chunk_for_memory(memory_budget_bytes, config.n_fields, problem, one_init, trajectory, dtype, n_runs, n_init, batch)
        chunk = min(chunk, fits)
    if auto and chunk < n_runs:  # a chunk limited by chunk_size or memory caps the width, to a power of two
        batch_size = min(batch_size, 1 << (max(chunk // n_dev, 1).bit_length() - 1))
    chunk = -(-chunk // n_dev) * n_dev  # a whole number of runs per device
    if batch_size is not None:
        # every run is computed in a batch of exactly batch_size (padded), never narrower: XLA's code,
        # and so a run's bits, depend on the vmap width, and must not change with chunk_size
        chunk = -(-chunk // (batch_size * n_dev)) * batch_size * n_dev  # whole batches on every device
    n_records = trajectory.num_records
    seg = n_records if checkpoint_every is None else checkpoint_every // trajectory.every
    return Plan(
        n_runs,
        grid,
        batch_size,
        chunk,
        mesh,
        flat_scalars(problem, one_init, config.rule, config.trajectory.measures),
        n_records,
        seg,
    )
