"""Two dims of a sweep's grid to draw: every other dim is fixed at one index (chosen, or of size 1) or
reduced (NaN-aware). Private: the plotting functions take ``x``, ``y``, ``sel`` and ``reduce``."""

from __future__ import annotations

import typing
import warnings
from collections.abc import Callable, Mapping

import numpy as np

if typing.TYPE_CHECKING:
    from ._result import SweepResult

#: the reductions known by name; each ignores NaN (diverged runs' final values)
REDUCTIONS: dict[str, Callable] = {"mean": np.nanmean, "median": np.nanmedian, "min": np.nanmin, "max": np.nanmax}


class Plane(typing.NamedTuple):
    """How a per-run array on the grid becomes the (n_x, n_y) array drawn."""

    dims: tuple[str, ...]  #: the result's dims, ("lr", *axes, "init")
    x: str
    y: str
    index: dict[str, int]  #: dims fixed at one index (``sel``, or of size 1)
    reduced: tuple[str, ...]  #: dims reduced, in grid order
    reduce: Callable | None  #: ``fn(a, axis=tuple)``, when ``reduced``

    def take(self, a, reduce: Callable | None = None) -> np.ndarray:
        """The (n_x, n_y) plane of a grid-shaped array: fixed dims indexed, the reduced ones reduced
        (by ``reduce``, default the plane's own)."""
        a = np.asarray(a)
        a = a[tuple(self.index.get(d, slice(None)) for d in self.dims)]
        kept = [d for d in self.dims if d not in self.index]
        a = np.transpose(a, [kept.index(d) for d in (self.x, self.y, *self.reduced)])
        if not self.reduced:
            return a
        fn = reduce or self.reduce
        with warnings.catch_warnings(), np.errstate(invalid="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)  # (an all-NaN cell: NaN)
            out = np.asarray(fn(a, axis=tuple(range(2, a.ndim))))
        if out.shape != a.shape[:2]:
            raise ValueError(f"reduce returned shape {out.shape} for a plane of shape {a.shape[:2]}; "
                             "it must reduce the given axes (fn(a, axis=tuple))")  # fmt: skip
        return out


def reducer(reduce) -> Callable | None:
    """``reduce``: None, a name in ``REDUCTIONS``, or a callable ``fn(a, axis=tuple)``."""
    if reduce is None or callable(reduce):
        return reduce
    if isinstance(reduce, str) and reduce in REDUCTIONS:
        return REDUCTIONS[reduce]
    raise ValueError(f"reduce must be one of {sorted(REDUCTIONS)}, a callable fn(a, axis=tuple) or None, got {reduce!r}")


def dim_index(result: SweepResult, dim: str, value) -> int:
    """The index of ``value`` along ``dim``: a named axis or ``lr`` by the nearest value (lr with per-init
    columns: the row index), ``init`` by index."""
    size = result.shape[result.dims.index(dim)]
    lrs = np.asarray(result.lrs)
    if dim == "init" or (dim == "lr" and lrs.ndim >= 2) or (dim in result.axes and result.axes[dim].ndim == 2):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not -size <= value < size:
            what = "an init index" if dim == "init" else f"the row index of the per-init {dim} columns"
            raise ValueError(f"sel[{dim!r}] must be {what}, an int below {size}, got {value!r}")
        return int(value) % size
    coord = lrs if dim == "lr" else result.axes[dim]
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"sel[{dim!r}] must be a number, got {value!r}") from None
    return int(np.argmin(np.abs(coord.astype(float) - v)))


def plane(result: SweepResult, x: str, y: str, sel: Mapping | None, reduce, where: str) -> Plane:
    """Check the choice of dims and resolve it; a ValueError names any dim left undecided."""
    dims, shape = tuple(result.dims), tuple(result.shape)
    for name, d in (("x", x), ("y", y)):
        if d not in dims:
            raise ValueError(f"{where}: {name}={d!r} is not a dim of this result; its dims are {list(dims)}")
    if x == y:
        raise ValueError(f"{where}: x and y are both {x!r}; draw two different dims of {list(dims)}")
    sel = dict(sel or {})
    for d in sel:
        if d not in dims or d in (x, y):
            why = "is drawn" if d in (x, y) else "is not a dim of this result"
            raise ValueError(f"{where}: sel[{d!r}] {why}; select among the other dims {[e for e in dims if e not in (x, y)]}")
    index = {d: dim_index(result, d, v) for d, v in sel.items()}
    rest = [d for d in dims if d not in (x, y, *index)]
    index |= {d: 0 for d in rest if shape[dims.index(d)] == 1}
    left = [d for d in rest if d not in index]
    fn = reducer(reduce)
    if left and fn is None:
        sizes = ", ".join(f"{d!r} ({shape[dims.index(d)]})" for d in left)
        # a dim with a column of values per init (lr or a named axis) is selected by its row index
        first = {d: v[0].item() if v.ndim == 1 else 0 for d, v in {"lr": np.asarray(result.lrs), **result.axes}.items()}
        named = [d for d in left if d in result.axes and result.axes[d].ndim == 1]
        hint = f"result.sel({', '.join(f'{d}={first[d]!r}' for d in named)}), or " if named else ""
        example = {d: first.get(d, 0) for d in left}
        raise ValueError(
            f"{where}: x={x!r} and y={y!r} are drawn, but the dims {sizes} have several values: pick one of each "
            f"({hint}sel={example}) or reduce them (reduce='mean', 'median', 'min', 'max' or a callable)"
        )
    return Plane(dims, x, y, index, tuple(left), fn if left else None)


def mode(codes: np.ndarray, axis: tuple[int, ...]) -> np.ndarray:
    """The most frequent value along ``axis``; ties go to the larger value (for Phase codes, the later phase)."""
    values = np.unique(codes)[::-1]
    counts = np.stack([np.count_nonzero(codes == v, axis=axis) for v in values], axis=-1)
    return values[np.argmax(counts, axis=-1)]


def as_indices(index, size: int, name: str) -> np.ndarray:
    """``index`` (an int or a non-empty sequence of ints) as a 1-D array of indices in [0, size)."""
    idx = np.atleast_1d(np.asarray(index))
    if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"{name} must be an int or a non-empty sequence of ints, got {index!r}")
    if np.any((idx < -size) | (idx >= size)):
        raise ValueError(f"{name}={index!r} out of range for {size} entries")
    return idx % size
