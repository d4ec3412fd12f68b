"""How plot.py lays runs out and draws them: per-run arrays on a layout of cells over two of the grid's
dims (η and init by default), overlays, axes and the phase colours. Private: ``sweepjax.plot`` is the
public face."""

from __future__ import annotations

import typing as _typing
import warnings as _warnings

import numpy as _np

from . import theory as _theory
from ._phases import Phase as _Phase
from ._select import Plane, plane as _plane

if _typing.TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np
    from matplotlib.axes import Axes

    from ._result import SweepResult


#: overlay functions of η drawn with their formula as label (at their default arguments)
_KNOWN_LABELS = {_theory.eos_limit: "2/η", _theory.momentum_edge: "2/η", _theory.adam_edge: "38/η"}
_DIVERGED_COLOR = "#ff00ff"
#: phase_map's default colour and legend name of each phase
_PHASE_STYLE = {
    _Phase.STABLE: ("#4c72b0", "stable"),
    _Phase.LAZY: ("#c7c7c7", "lazy"),
    _Phase.EOS: ("#dd8452", "EoS"),
    _Phase.CATAPULT: ("#55a868", "catapult"),
    _Phase.DIVERGED: (_DIVERGED_COLOR, "diverged"),
}


def _new_axes(n: int = 1, **kwargs):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(n, 1, squeeze=False, **kwargs)
    return list(axes[:, 0])


def _grid_quantity(result: SweepResult, quantity) -> tuple[np.ndarray, str]:
    """(the per-run array on the grid, its label) for a name or an array."""
    if isinstance(quantity, str):
        try:
            values = result[quantity]
        except KeyError:
            values = getattr(result, quantity, None)
            if not isinstance(values, _np.ndarray):
                raise ValueError(
                    f"unknown quantity {quantity!r}: records {sorted(result.records)}, "
                    f"finals {['final_' + k for k in result.final]}, or diverged_step/num_steps/status"
                ) from None
        label = quantity
    else:
        values, label = quantity, ""
    values = _np.asarray(values, dtype=float)
    if values.shape != tuple(result.shape):
        is_record = values.shape[:-1] == tuple(result.shape)
        hint = " (a record: pick 'final_<name>' or 'initial_<name>')" if is_record else ""
        dims = ", ".join(f"n_{d}" for d in result.dims)
        raise ValueError(f"quantity must have shape ({dims})={tuple(result.shape)}, got {values.shape}{hint}")
    return values, label


def _init_coordinate(result: SweepResult, y, arg: str = "y") -> tuple[np.ndarray, str]:
    """(the (n_init,) coordinate labelling each init, its axis label)."""
    n_init = result.shape[-1]
    if y is None:
        return _np.arange(n_init, dtype=float), "init index"
    if isinstance(y, str):
        name = y if y.startswith("initial_") else "initial_" + y
        try:
            grid = _np.asarray(result[name], dtype=float)
        except KeyError:
            raise ValueError(
                f"{arg}={y!r} is not a record (known records {sorted(result.records)}) nor a dim {list(result.dims)}"
            ) from None
        coord = _np.fmax.reduce(grid.reshape(-1, n_init), axis=0)  # the same for every run of an init (NaN: none recorded it)
        label = y[len("initial_") :] if y.startswith("initial_") else y
        label = f"initial {label}"
    else:
        coord, label = _np.asarray(y, dtype=float), ""
    if coord.shape != (n_init,):
        raise ValueError(f"{arg} must give one value per init, shape ({n_init},), got {coord.shape}")
    if not _np.all(_np.isfinite(coord)):
        raise ValueError(f"{arg} has non-finite values (an init whose coordinate is unknown)")
    return coord, label


def _cell_edges(centers: np.ndarray, log: bool = False) -> np.ndarray:
    """Edges of cells around sorted centers: midpoints (geometric when ``log``), ends mirrored."""
    c = _np.asarray(centers, dtype=float)
    if log:
        if _np.any(c <= 0):
            raise ValueError("a log-scale axis needs positive coordinates")
        return _np.exp(_cell_edges(_np.log(c), log=False))
    if c.size == 1:
        return _np.array([c[0] - 0.5, c[0] + 0.5])
    mid = 0.5 * (c[1:] + c[:-1])
    return _np.concatenate([[2 * c[0] - mid[0]], mid, [2 * c[-1] - mid[-1]]])


def _is_pair(item) -> bool:
    return isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], str)


def _overlays(overlay) -> list[tuple[Callable, str | None]]:
    if overlay is None:
        return []
    items = [overlay] if callable(overlay) or _is_pair(overlay) else list(overlay)
    out = []
    for item in items:
        fn, label = item if _is_pair(item) else (item, None)
        if not callable(fn):
            raise TypeError(f"overlay must be a callable of η or (callable, label), got {item!r}")
        if label is None:
            label = _KNOWN_LABELS.get(fn) or getattr(fn, "label", None)  # (theory.edge_line's carry theirs)
            label = label or (None if getattr(fn, "__name__", "<lambda>") == "<lambda>" else fn.__name__)
        out.append((fn, label))
    return out


class _Grid(_typing.NamedTuple):
    """The plane laid out for drawing: row i is the i-th y value in ascending order, columns by ascending x."""

    x_index: np.ndarray  #: (n_y, n_x) the x index of each cell
    y_index: np.ndarray  #: (n_y, 1) the y index of each row
    x: np.ndarray  #: (n_y, n_x) each cell's x coordinate
    y: np.ndarray  #: (n_y,) each row's y coordinate
    x_edges: np.ndarray  #: (n_y, n_x + 1) each row's own x cell edges
    y_edges: np.ndarray  #: (n_y + 1,)

    @property
    def rectilinear(self) -> bool:
        """Every row has the same x values (e.g. a shared (n_lr,) column, or equal per-init columns)."""
        return bool(_np.all(self.x == self.x[:1]))

    def take(self, a) -> np.ndarray:
        """An (n_x, n_y) plane in this layout, (n_y, n_x)."""
        return _np.asarray(a)[self.x_index, self.y_index]


def _layout(xs: np.ndarray, ys: np.ndarray, log_x: bool, log_y: bool) -> _Grid:
    """Cells for x coordinates ``xs`` (n_x, n_y) (a column per y value: per-init step sizes) and ``ys`` (n_y,)."""
    y_order = _np.argsort(ys, kind="stable")
    x_index = _np.argsort(xs, axis=0, kind="stable").T[y_order]
    y_index = y_order[:, None]
    x = xs[x_index, y_index]
    x_edges = _np.stack([_cell_edges(row, log_x) for row in x])
    return _Grid(x_index, y_index, x, ys[y_order], x_edges, _cell_edges(ys[y_order], log_y))


class _View(_typing.NamedTuple):
    """Two dims of a result laid out as cells: ``take`` turns a per-run array into the (n_y, n_x) drawn."""

    plane: Plane
    grid: _Grid
    xlabel: str
    ylabel: str
    log_x: bool
    log_y: bool

    def take(self, a, reduce=None) -> np.ndarray:
        return self.grid.take(self.plane.take(a, reduce))


def _view(result: SweepResult, x, y, sel, reduce, log_x, log_y, where: str) -> _View:
    """Resolve ``x``/``y`` (dim names, or labels of the init dim), ``sel``, ``reduce`` and the log scales."""
    xd, xc, xlabel = _dim_spec(result, x, "lr", "x")
    yd, yc, ylabel = _dim_spec(result, y, "lr" if xd == "init" else "init", "y")
    pl = _plane(result, xd, yd, sel, reduce, where)
    xs, ys = _coordinate(result, pl, xd, xc, where), _coordinate(result, pl, yd, yc, where)
    if ys.ndim == 2:  # (per-init step sizes vary along x, the init dim: each column would need its own y cells)
        raise ValueError(f"{where}: with per-init step-size columns draw lr on x (x='lr', y='init'), or select one init")
    if xs.ndim == 1:
        xs = _np.broadcast_to(xs[:, None], (xs.size, ys.size))
    log_x = _auto_log(result, xd, xs) if log_x is None else log_x
    log_y = _auto_log(result, yd, ys) if log_y is None else log_y
    return _View(pl, _layout(xs, ys, log_x, log_y), xlabel, ylabel, log_x, log_y)


def _dim_spec(result: SweepResult, spec, default: str, arg: str) -> tuple[str, np.ndarray | None, str]:
    """(dim, its init labels or None, the axis label) of an ``x``/``y`` argument: a dim name, or for the
    init dim a record name (its initial value) or an (n_init,) array."""
    spec = default if spec is None else spec
    if isinstance(spec, str) and spec in result.dims:
        labels = {"lr": "step size η", "init": "init index"}
        return spec, (_np.arange(result.shape[-1], dtype=float) if spec == "init" else None), labels.get(spec, spec)
    return "init", *_init_coordinate(result, spec, arg)


def _coordinate(result: SweepResult, pl: Plane, dim: str, labels, where: str) -> np.ndarray:
    """The coordinate of a drawn dim: (n,), or (n, n_init) for per-init columns (of η or a named axis)
    drawn against init."""
    if dim == "init":
        return labels
    coord = _np.asarray(result.lrs if dim == "lr" else result.axes[dim], dtype=float)
    if coord.ndim == len(result.dims) > 2:  # a step size per run: (n_lr,), or a column per value of the other drawn dim
        coord = coord[tuple(pl.index.get(d, slice(None)) for d in result.dims)]
        kept = [d for d in result.dims if d not in pl.index]
        if kept == ["lr"] or (len(kept) == 2 and kept[1] in (pl.x, pl.y)):
            return coord
        varies = [d for d in kept[1:] if d not in (pl.x, pl.y)]
        raise ValueError(f"{where}: with a step size per run, the lr coordinate varies along {varies}: select one "
                         "value of each (sel={...}) rather than reduce over them")  # fmt: skip
    if coord.ndim == 1 or "init" in (pl.x, pl.y):
        return coord
    if "init" in pl.index:  # a column per init (lrs, or a named axis): the selected init's
        return coord[:, pl.index["init"]]
    raise ValueError(f"{where}: with a column of {dim} values per init, the value of a cell reduced over inits "
                     "is undefined: select one init (sel={'init': j}) or draw init")  # fmt: skip


def _auto_log(result: SweepResult, dim: str, coord: np.ndarray) -> bool:
    """lr: log; a named numeric axis: log when positive and spanning more than a decade; else linear."""
    if dim == "lr":
        return True
    if dim in ("init", "seed"):
        return False
    return bool(_np.all(coord > 0) and coord.max() > 10 * coord.min())


def _draw_cells(ax: Axes, grid: _Grid, data: np.ma.MaskedArray, cmap, norm, kwargs: dict):
    """Draw (n_y, n_x) ``data``: a QuadMesh when every row shares its x cells, else one rectangle per run."""
    if grid.rectilinear:
        return ax.pcolormesh(grid.x_edges[0], grid.y_edges, data, cmap=cmap, norm=norm, **kwargs)
    from matplotlib.collections import PolyCollection

    x0, x1 = grid.x_edges[:, :-1], grid.x_edges[:, 1:]
    y0 = _np.broadcast_to(grid.y_edges[:-1, None], x0.shape)
    y1 = _np.broadcast_to(grid.y_edges[1:, None], x0.shape)
    corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    verts = _np.stack([_np.stack(c, axis=-1) for c in corners], axis=-2).reshape(-1, 4, 2)
    kwargs = dict(kwargs)
    kwargs.pop("shading", None)  # (a pcolormesh option; these cells are flat)
    vmin, vmax = kwargs.pop("vmin", None), kwargs.pop("vmax", None)
    kwargs.setdefault("edgecolors", "none")
    kwargs.setdefault("antialiaseds", False)
    cells = PolyCollection(verts, array=data.ravel(), cmap=cmap, norm=norm, **kwargs)
    if vmin is not None or vmax is not None:
        cells.set_clim(vmin, vmax)
    cells.autoscale_None()
    ax.add_collection(cells)
    return cells


def _edge_constant(result: SweepResult) -> np.ndarray:
    """Per run, c such that its recorded edge is c/η (NaN where edge·η moves over its records, e.g. under a
    schedule); 2 without an ``"edge"`` record."""
    from ._phases import _lr_grid

    lrs = _lr_grid(result)
    if "edge" not in result.records:
        return _np.full(lrs.shape, 2.0)
    c = _np.asarray(result.records["edge"], dtype=float) * lrs[..., None]
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore", RuntimeWarning)  # (a run without a finite record: NaN)
        lo, hi = _np.nanmin(c, axis=-1), _np.nanmax(c, axis=-1)
    return _np.where(_np.isclose(lo, hi, rtol=1e-6, atol=0.0), lo, _np.nan)


def _edge_label(c: float, edge_of: str) -> str:
    """``"38/η"``, naming the record it bounds when that is not the sharpness."""
    return f"{c:.3g}/η" + ("" if edge_of == "sharpness" else f" ({edge_of})")


def _with_edge_overlay(result: SweepResult, overlay, view: _View, where: str):
    """``overlay`` with each ``"edge"`` entry made the sweep's recorded stability edge c/η (2/η when none is
    recorded), labelled with its formula; a ValueError when x is not η or c is not one number over the drawn runs."""
    if overlay is None or callable(overlay) or _is_pair(overlay):
        return overlay
    items = [overlay] if isinstance(overlay, str) else list(overlay)
    out = []
    for item in items:
        if isinstance(item, str):
            if item != "edge":
                raise ValueError(f"{where}: an overlay given by name must be 'edge' (the sweep's stability edge), got {item!r}")
            if view.plane.x != "lr":
                raise ValueError(f"{where}: overlay='edge' is a function of η; draw x='lr' (got x={view.plane.x!r})")
            c = _edge_constant(result)
            lo, hi = view.take(c, _np.min), view.take(c, _np.max)  # over the runs of each cell (NaN: a moving edge)
            if not (_np.all(_np.isfinite(lo)) and _np.all(_np.isfinite(hi)) and _np.isclose(lo.min(), hi.max(), rtol=1e-6)):
                raise ValueError(
                    f"{where}: overlay='edge': the recorded edge is not one c/η over the drawn runs (a schedule, or a "
                    "swept hyperparameter not picked with sel=...); overlay theory.edge_line(rule, t) instead"
                )
            c0 = float(lo.min())
            label = _edge_label(c0, result.metadata.get("edge_of", "sharpness"))
            item = (lambda lr, c0=c0: c0 / _np.asarray(lr, dtype=float)), label
        out.append(item)
    return out


def _draw_overlays(ax: Axes, overlay, grid: _Grid, log_x: bool) -> list:
    lo, hi = grid.x_edges.min(), grid.x_edges.max()
    handles = []
    if overlay is not None:
        xs = _np.geomspace(lo, hi, 512) if log_x else _np.linspace(lo, hi, 512)
        for fn, name in _overlays(overlay):
            curve = _np.broadcast_to(_np.asarray(fn(xs), dtype=float), xs.shape)
            (line,) = ax.plot(xs, curve, color="white", lw=1.8, ls="--", label=name)
            line.set_path_effects(_outline())
            if name:
                handles.append(line)
    return handles


def _finish(ax: Axes, view: _View, handles: list) -> None:
    grid = view.grid
    if view.log_x:
        ax.set_xscale("log")
    if view.log_y:
        ax.set_yscale("log")
    if handles:
        ax.legend(handles=handles, loc="best", fontsize="small", framealpha=0.8)
    ax.set_xlim(grid.x_edges.min(), grid.x_edges.max())
    ax.set_ylim(grid.y_edges[0], grid.y_edges[-1])
    ax.set_xlabel(view.xlabel)
    ax.set_ylabel(view.ylabel)


def _get_cmap(cmap):
    import matplotlib

    return matplotlib.colormaps[cmap] if isinstance(cmap, str) else cmap


def _outline():
    import matplotlib.patheffects as pe

    return [pe.Stroke(linewidth=3.2, foreground="black", alpha=0.6), pe.Normal()]
