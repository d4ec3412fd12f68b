"""How plot.py lays runs out and draws them: per-run arrays on an (η, init) layout of cells, overlays,
axes and the phase colours. Private: ``sweepjax.plot`` is the public face."""

from __future__ import annotations

import typing as _typing

import numpy as _np

from . import theory as _theory
from ._phases import Phase as _Phase, _lr_grid

if _typing.TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np
    from matplotlib.axes import Axes

    from ._result import SweepResult


_KNOWN_LABELS = {_theory.eos_limit: "2/η"}
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
    """(the (n_lr, n_init) array, its label) for a name or an array."""
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
        is_record = values.shape[:2] == tuple(result.shape)
        hint = " (a record: pick 'final_<name>' or 'initial_<name>')" if is_record else ""
        raise ValueError(f"quantity must have shape (n_lr, n_init)={tuple(result.shape)}, got {values.shape}{hint}")
    return values, label


def _init_coordinate(result: SweepResult, y) -> tuple[np.ndarray, str]:
    """(the (n_init,) coordinate labelling each init, its axis label)."""
    n_init = result.shape[1]
    if y is None:
        return _np.arange(n_init, dtype=float), "init index"
    if isinstance(y, str):
        name = y if y.startswith("initial_") else "initial_" + y
        try:
            grid = _np.asarray(result[name], dtype=float)
        except KeyError:
            raise ValueError(f"y={y!r} is not a record; known records {sorted(result.records)}") from None
        coord = _np.fmax.reduce(grid, axis=0)  # the same in every row; NaN only where no run recorded it
        label = y[len("initial_") :] if y.startswith("initial_") else y
        label = f"initial {label}"
    else:
        coord, label = _np.asarray(y, dtype=float), ""
    if coord.shape != (n_init,):
        raise ValueError(f"y must give one value per init, shape ({n_init},), got {coord.shape}")
    if not _np.all(_np.isfinite(coord)):
        raise ValueError("y has non-finite values (an init whose coordinate is unknown)")
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
            label = _KNOWN_LABELS.get(fn) or (None if fn.__name__ == "<lambda>" else fn.__name__)
        out.append((fn, label))
    return out


class _Grid(_typing.NamedTuple):
    """The runs laid out for drawing: row i is the i-th init by its coordinate, columns by ascending η."""

    lr_index: np.ndarray  #: (n_init, n_lr) the lr row of each cell
    init_index: np.ndarray  #: (n_init, 1) the init of each row
    x: np.ndarray  #: (n_init, n_lr) each cell's step size
    y: np.ndarray  #: (n_init,) each row's init coordinate
    x_edges: np.ndarray  #: (n_init, n_lr + 1) each row's own η cell edges
    y_edges: np.ndarray  #: (n_init + 1,)

    @property
    def rectilinear(self) -> bool:
        """Every row has the same step sizes (a shared (n_lr,) column, or equal per-init columns)."""
        return bool(_np.all(self.x == self.x[:1]))

    def take(self, a) -> np.ndarray:
        """An (n_lr, n_init) per-run array in this layout, (n_init, n_lr)."""
        return _np.asarray(a)[self.lr_index, self.init_index]


def _layout(result: SweepResult, coord: np.ndarray, log_x: bool, log_y: bool) -> _Grid:
    lrs = _lr_grid(result)  # (n_lr, n_init), also for a shared (n_lr,) column
    init_order = _np.argsort(coord, kind="stable")
    lr_index = _np.argsort(lrs, axis=0, kind="stable").T[init_order]
    init_index = init_order[:, None]
    x = lrs[lr_index, init_index]
    y = coord[init_order]
    x_edges = _np.stack([_cell_edges(row, log_x) for row in x])
    return _Grid(lr_index, init_index, x, y, x_edges, _cell_edges(y, log_y))


def _draw_cells(ax: Axes, grid: _Grid, data: np.ma.MaskedArray, cmap, norm, kwargs: dict):
    """Draw (n_init, n_lr) ``data``: a QuadMesh on a shared η grid, else one rectangle per run."""
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


def _finish(ax: Axes, grid: _Grid, log_x: bool, log_y: bool, ylabel: str, handles: list) -> None:
    if log_x:
        ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    if handles:
        ax.legend(handles=handles, loc="best", fontsize="small", framealpha=0.8)
    ax.set_xlim(grid.x_edges.min(), grid.x_edges.max())
    ax.set_ylim(grid.y_edges[0], grid.y_edges[-1])
    ax.set_xlabel("step size η")
    ax.set_ylabel(ylabel)


def _get_cmap(cmap):
    import matplotlib

    return matplotlib.colormaps[cmap] if isinstance(cmap, str) else cmap


def _outline():
    import matplotlib.patheffects as pe

    return [pe.Stroke(linewidth=3.2, foreground="black", alpha=0.6), pe.Normal()]
