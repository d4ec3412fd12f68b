"""SweepResult: labelled host-side arrays of a sweep, shaped (lr, *named axes, init[, record])."""

from __future__ import annotations

import dataclasses
import enum
import os
import pathlib
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:
    import xarray


class Status(enum.IntEnum):
    """Per-run outcome code (stored as int8)."""

    OK = 0  #: ran its whole budget with finite loss below the divergence threshold
    DIVERGED = 1  #: loss became non-finite or exceeded the threshold; parameters frozen there


class ChunkOutput(NamedTuple):
    """The host-side outputs of one chunk of c runs, before the chunks are joined into a ``SweepResult``."""

    records: dict[str, np.ndarray]  # name -> (n_record, c, *shape of one value), time-major
    final: dict[str, np.ndarray]  # name -> (c,)
    params: Any  # pytree of (c, ...) final parameters
    alive: np.ndarray  # (c,) bool
    diverged_at: np.ndarray  # (c,) int, meaningful where not alive


@dataclasses.dataclass(frozen=True, eq=False)
class SweepResult:
    """Everything a sweep measured, as NumPy arrays with the grid as leading axes.

    The grid's dims are ``dims`` = ("lr", *axes, "init"); below, (n_lr, n_init) stands for the whole
    grid (n_lr, *axis sizes, n_init) when the sweep had named ``axes``.

    Attributes:
        lrs: (n_lr,) step sizes η, (n_lr, n_init) when each init had its own column, or the whole grid
            (n_lr, *axis sizes, n_init) with a step size per run.
        steps: (n_record,) the step t of each record (records are taken at θ_t, t = 0, k, …, T).
        inits: the initial points, a pytree of arrays with leading axis n_init.
        records: name -> (n_lr, n_init, n_record): ``loss``, ``sharpness`` (when tracked),
            ``sharpness_residual`` ‖Hv − λv‖ (iterative solvers; ``DenseEigh`` is exact and records
            none) and each observable; NaN past a run's end (divergence or step budget).
        final: name -> (n_lr, n_init): the same quantities at each run's final parameters
            (NaN for diverged runs).
        final_params: pytree of arrays with leading axes (n_lr, n_init): parameters where each run
            stopped (frozen at divergence).
        status: (n_lr, n_init) int8 ``Status`` codes.
        diverged_step: (n_lr, n_init) float, the first t whose θ_t was bad (non-finite, or loss above
            the threshold), NaN if the run did not diverge. Parameters are frozen at that θ_t when it
            is finite, else at θ_{t−1}.
        num_steps: (n_lr, n_init) int, each run's step budget.
        metadata: JSON-able dict: problem, settings, versions.
        axes: name -> (n,) values of each named axis between ``lr`` and ``init``, or (n, n_init) for
            a column per init (empty for a classic step size × init sweep).
    """

    lrs: np.ndarray
    steps: np.ndarray
    inits: Any
    records: dict[str, np.ndarray]
    final: dict[str, np.ndarray]
    final_params: Any
    status: np.ndarray
    diverged_step: np.ndarray
    num_steps: np.ndarray
    metadata: dict[str, Any]
    axes: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        """The grid: (n_lr, *axis sizes, n_init)."""
        return self.status.shape

    @property
    def dims(self) -> tuple[str, ...]:
        """The grid's dim names: ("lr", *axes, "init")."""
        return ("lr", *self.axes, "init")

    def isel(self, **indices: int) -> SweepResult:
        """The sub-result at one index along each named axis given (``res.isel(b1=0)``); those dims go."""
        for name, i in indices.items():
            if name not in self.axes:
                raise ValueError(f"isel: {name!r} is not a named axis of this result; axes: {list(self.axes)}")
            if not isinstance(i, (int, np.integer)) or not -self.axes[name].shape[0] <= i < self.axes[name].shape[0]:
                raise ValueError(f"isel: {name}={i!r} must be an int index below {self.axes[name].shape[0]}")
        where = tuple(indices.get(d, slice(None)) for d in self.dims)

        def take(a):
            return np.asarray(a)[where]

        lrs = np.asarray(self.lrs)
        return dataclasses.replace(
            self,
            lrs=lrs[where] if lrs.ndim == len(self.dims) > 2 else lrs,  # a step size per run: its slice too
            records={k: take(v) for k, v in self.records.items()},
            final={k: take(v) for k, v in self.final.items()},
            final_params=_tree_map(take, self.final_params),
            status=take(self.status),
            diverged_step=take(self.diverged_step),
            num_steps=take(self.num_steps),
            axes={k: v for k, v in self.axes.items() if k not in indices},
            metadata={**self.metadata, "selected": {**self.metadata.get("selected", {}), **{
                k: self.axes[k][i].tolist() for k, i in indices.items()}}},
        )  # fmt: skip

    def sel(self, **values: float) -> SweepResult:
        """The sub-result at one value along each named axis given (``res.sel(b1=0.9)``; the nearest value)."""
        indices = {}
        for name, v in values.items():
            if name not in self.axes:
                raise ValueError(f"sel: {name!r} is not a named axis of this result; axes: {list(self.axes)}")
            if self.axes[name].ndim != 1:
                raise ValueError(f"sel: axis {name!r} has a column of values per init; pick a row with isel({name}=i)")
            indices[name] = int(np.argmin(np.abs(self.axes[name].astype(float) - float(v))))
        return self.isel(**indices)

    @property
    def diverged(self) -> np.ndarray:
        """(n_lr, n_init) bool mask of diverged runs."""
        return self.status == Status.DIVERGED

    def __getitem__(self, name: str) -> np.ndarray:
        """``res["loss"]`` is a record array, ``res["final_loss"]`` a final array."""
        if name in self.records:
            return self.records[name]
        if name.startswith("final_") and name[len("final_") :] in self.final:
            return self.final[name[len("final_") :]]
        if name == "initial" or name.startswith("initial_"):
            key = name[len("initial_") :]
            if key in self.records:
                return self.records[key][..., 0]
        raise KeyError(f"{name!r}: known records {sorted(self.records)}, finals {['final_' + k for k in self.final]}")

    def save(self, path: str | os.PathLike) -> pathlib.Path:
        """Write every array and the metadata to a ``.npz`` archive; read it back with ``sweepjax.load``.

        Exact (bitwise, dtypes kept), pickle-free, and atomic (a temporary file beside ``path`` is
        moved into place). ``.npz`` is appended to ``path`` unless it already ends in it. Returns
        the path written. Pytrees come back as described in ``sweepjax.load``. Named axes are stored
        too (file format 2; a classic result keeps format 1, readable by older versions).
        """
        from ._export import save

        return save(self, path)

    def to_xarray(self) -> xarray.Dataset:
        """An ``xarray.Dataset`` with coords ``lr``, one per named axis, ``init`` (0..n_init-1) and ``step``.

        Grid arrays have the dims ``("lr", *axes, "init"[, "step"])``; each named axis is a coordinate
        (``long_name``; its exact name in ``sweepjax_key``; ``seed`` as integers). Below, "``lr, init``"
        stands for those dims.

        Coordinates carry ``long_name`` and ``units`` (``lr``: "step size η", "1"; ``step``: "GD step",
        "steps"). With per-init step sizes (``lrs`` shaped (n_lr, n_init)) ``lr`` is the row index and
        η the coordinate ``lr_value`` (dims ``lr, init``; with a step size per run, the grid's dims).
        Each init leaf holding one scalar per init (shape (n_init,), e.g. ``{"x": …}``) is also a
        coordinate on ``init`` (``init_x``; a bare array: ``init_value``).

        Data variables: each record (dims ``lr, init, step``); ``final_<name>``, ``status``,
        ``diverged_step``, ``num_steps`` (dims ``lr, init``); each parameter leaf as
        ``inits_<path>`` (dims ``init, param_<path>_dim0, …``) and ``final_params_<path>`` (dims
        ``lr, init, param_<path>_dim0, …``), where ``<path>`` is the leaf's key path with
        punctuation turned into ``_`` (``{"w": …}`` -> ``inits_w``; a bare array -> ``inits``,
        dims ``param_dim0, …``). Names are made unique and netCDF-safe; each variable's
        ``sweepjax_key`` attribute holds the exact record name or key path. ``attrs["metadata"]``
        is the metadata as JSON. Needs ``pip install 'sweepjax[xarray]'``.

        Example:
            ```python
            ds = res.to_xarray()
            ds[["final_loss", "status"]].to_dataframe()  # one row per run, indexed by (lr, init)
            ds["loss"].to_dataframe()  # one row per record, indexed by (lr, init, step)
            ```
        """
        from ._export import to_xarray

        return to_xarray(self)

    @classmethod
    def from_xarray(cls, ds: xarray.Dataset) -> SweepResult:
        """Inverse of ``to_xarray`` (exact), also for a Dataset read back from ``to_netcdf``."""
        from ._export import from_xarray

        return from_xarray(ds)

    def to_netcdf(self, path: str | os.PathLike) -> pathlib.Path:
        """Write ``to_xarray()`` to a netCDF-4 file (engine ``h5netcdf``), exactly and atomically.

        ``.nc`` is appended unless ``path`` ends in ``.nc`` or ``.nc4``; read it back with
        ``sweepjax.load``. Returns the path written. Needs ``pip install 'sweepjax[xarray]'``.
        """
        from ._export import to_netcdf

        return to_netcdf(self, path)

    def __repr__(self) -> str:
        sizes = ", ".join(f"n_{d}={n}" for d, n in zip(self.dims, self.shape))
        return (
            f"SweepResult({sizes}, n_record={self.steps.size}, "
            f"records={sorted(self.records)}, diverged={int(self.diverged.sum())}/{self.status.size})"
        )


def _tree_map(fn, tree):
    import jax

    return jax.tree.map(fn, tree)
