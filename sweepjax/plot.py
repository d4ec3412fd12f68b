"""Matplotlib views of a SweepResult. Every function takes an ``ax`` (made when None) and returns it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from . import theory

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from ._result import SweepResult

#: an overlay curve: a function of η, or (function, legend label)
Overlay = Callable[[np.ndarray], Any] | tuple[Callable[[np.ndarray], Any], str]

_KNOWN_LABELS = {theory.eos_limit: "2/η"}
DIVERGED_COLOR = "#ff00ff"


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
            if not isinstance(values, np.ndarray):
                raise ValueError(
                    f"unknown quantity {quantity!r}: records {sorted(result.records)}, "
                    f"finals {['final_' + k for k in result.final]}, or diverged_step/num_steps/status"
                ) from None
        label = quantity
    else:
        values, label = quantity, ""
    values = np.asarray(values, dtype=float)
    if values.shape != tuple(result.shape):
        is_record = values.shape[:2] == tuple(result.shape)
        hint = " (a record: pick 'final_<name>' or 'initial_<name>')" if is_record else ""
        raise ValueError(f"quantity must have shape (n_lr, n_init)={tuple(result.shape)}, got {values.shape}{hint}")
    return values, label


def _init_coordinate(result: SweepResult, y) -> tuple[np.ndarray, str]:
    """(the (n_init,) coordinate labelling each init, its axis label)."""
    n_init = result.shape[1]
    if y is None:
        return np.arange(n_init, dtype=float), "init index"
    if isinstance(y, str):
        name = y if y.startswith("initial_") else "initial_" + y
        try:
            grid = np.asarray(result[name], dtype=float)
        except KeyError:
            raise ValueError(f"y={y!r} is not a record; known records {sorted(result.records)}") from None
        coord = np.fmax.reduce(grid, axis=0)  # the same in every row; NaN only where no run recorded it
        label = y[len("initial_") :] if y.startswith("initial_") else y
        label = f"initial {label}"
    else:
        coord, label = np.asarray(y, dtype=float), ""
    if coord.shape != (n_init,):
        raise ValueError(f"y must give one value per init, shape ({n_init},), got {coord.shape}")
    if not np.all(np.isfinite(coord)):
        raise ValueError("y has non-finite values (an init whose coordinate is unknown)")
    return coord, label


def cell_edges(centers: np.ndarray, log: bool = False) -> np.ndarray:
    """Edges of cells around sorted centers: midpoints (geometric when ``log``), ends mirrored."""
    c = np.asarray(centers, dtype=float)
    if log:
        if np.any(c <= 0):
            raise ValueError("a log-scale axis needs positive coordinates")
        return np.exp(cell_edges(np.log(c), log=False))
    if c.size == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5])
    mid = 0.5 * (c[1:] + c[:-1])
    return np.concatenate([[2 * c[0] - mid[0]], mid, [2 * c[-1] - mid[-1]]])


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


def phase_diagram(
    result: SweepResult,
    quantity: str | np.ndarray = "final_sharpness",
    ax: Axes | None = None,
    *,
    y: str | np.ndarray | None = None,
    overlay: Overlay | Sequence[Overlay] | None = None,
    log_x: bool = True,
    log_y: bool = False,
    cmap: Any = "viridis",
    norm: Any = None,
    mask_diverged: bool = True,
    diverged_color: Any = DIVERGED_COLOR,
    colorbar: bool = True,
    label: str | None = None,
    contours: int | Sequence[float] | None = None,
    **pcolormesh_kwargs,
) -> Axes:
    """Heatmap of a per-run quantity over step size η (x) and an init coordinate (y).

    Args:
        result: a ``SweepResult``.
        quantity: a name (``result[name]``, e.g. ``"final_sharpness"``, or ``"diverged_step"``) or
            an (n_lr, n_init) array.
        ax: the axes to draw on (a new figure when None).
        y: what labels each init: a record name whose initial value is used (``"y2_minus_x2"``
            reads ``result["initial_y2_minus_x2"]``), an (n_init,) array, or None for the index.
            Inits are sorted by it.
        overlay: curves y = f(η) drawn over the map: a callable (e.g. ``theory.eos_limit``), a
            (callable, label) pair, or a list of either.
        log_x, log_y: log-scale axes (cells then have geometric edges).
        cmap, norm: colour map and normalisation (``"log"`` or a ``matplotlib.colors.Normalize``).
        mask_diverged: show diverged runs in ``diverged_color`` (labelled in the legend) instead
            of their value; non-finite values (and values ≤ 0 under a log norm) are always drawn
            in that colour.
        colorbar: add a colour bar labelled ``label`` (default: the quantity's name).
        contours: level lines over the map: a number of levels (evenly spaced in the colour
            normalisation, so geometric under ``norm="log"``) or the levels themselves.
        **pcolormesh_kwargs: passed on (``vmin``, ``vmax``, ``shading``…).

    Returns:
        the axes; the heatmap is its first ``QuadMesh`` (array shaped (n_init, n_lr), rows
        sorted by the init coordinate, columns by η).
    """
    import matplotlib.colors as mcolors
    import matplotlib.patches as mpatches

    values, qlabel = _grid_quantity(result, quantity)
    coord, ylabel = _init_coordinate(result, y)
    lrs = np.asarray(result.lrs, dtype=float)
    lr_order, init_order = np.argsort(lrs, kind="stable"), np.argsort(coord, kind="stable")
    lrs, coord = lrs[lr_order], coord[init_order]
    values = values[np.ix_(lr_order, init_order)]
    diverged = np.asarray(result.diverged)[np.ix_(lr_order, init_order)]
    hide = ~np.isfinite(values) | (diverged if mask_diverged else False)
    data = np.ma.masked_array(values, mask=hide).T  # (n_init, n_lr): rows are y, columns are x

    if ax is None:
        ax = _new_axes()[0]
    cmap = _get_cmap(cmap).with_extremes(bad=diverged_color)
    if isinstance(norm, str):
        if norm != "log":
            raise ValueError(f"norm must be 'log', None or a matplotlib Normalize, got {norm!r}")
        norm = mcolors.LogNorm()
    x_edges, y_edges = cell_edges(lrs, log_x), cell_edges(coord, log_y)
    mesh = ax.pcolormesh(x_edges, y_edges, data, cmap=cmap, norm=norm, **pcolormesh_kwargs)
    if log_x:
        ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    if contours is not None and min(data.shape) >= 2 and np.any(~data.mask):
        if isinstance(contours, int) and not isinstance(contours, bool):
            levels = mesh.norm.inverse(np.linspace(0.0, 1.0, contours + 2)[1:-1])
        else:
            levels = np.sort(np.asarray(contours, dtype=float))
        cs = ax.contour(lrs, coord, data, levels=np.asarray(levels), colors="white", linewidths=0.7, alpha=0.7)
        ax.clabel(cs, fontsize="x-small", fmt="%.3g")

    handles = []
    if overlay is not None:
        grid = np.geomspace(x_edges[0], x_edges[-1], 512) if log_x else np.linspace(x_edges[0], x_edges[-1], 512)
        for fn, name in _overlays(overlay):
            curve = np.broadcast_to(np.asarray(fn(grid), dtype=float), grid.shape)
            (line,) = ax.plot(grid, curve, color="white", lw=1.8, ls="--", label=name)
            line.set_path_effects(_outline())
            if name:
                handles.append(line)
    if np.any(diverged & mask_diverged):
        n = int(diverged.sum())
        handles.append(mpatches.Patch(color=diverged_color, label=f"diverged ({n}/{diverged.size})"))
    if handles:
        ax.legend(handles=handles, loc="best", fontsize="small", framealpha=0.8)
    ax.set_xlim(x_edges[0], x_edges[-1])
    ax.set_ylim(y_edges[0], y_edges[-1])
    ax.set_xlabel("step size η")
    ax.set_ylabel(ylabel)
    if colorbar:
        ax.figure.colorbar(mesh, ax=ax, label=qlabel if label is None else label)
    return ax


def _get_cmap(cmap):
    import matplotlib

    return matplotlib.colormaps[cmap] if isinstance(cmap, str) else cmap


def _outline():
    import matplotlib.patheffects as pe

    return [pe.Stroke(linewidth=3.2, foreground="black", alpha=0.6), pe.Normal()]


def _as_indices(index, size: int, name: str) -> np.ndarray:
    idx = np.atleast_1d(np.asarray(index))
    if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"{name} must be an int or a non-empty sequence of ints, got {index!r}")
    if np.any((idx < -size) | (idx >= size)):
        raise ValueError(f"{name}={index!r} out of range for {size} entries")
    return idx % size


def trajectories(
    result: SweepResult,
    ax: Axes | Sequence[Axes] | None = None,
    *,
    lr_index: int | Sequence[int],
    init_index: int | Sequence[int],
    quantities: Sequence[str] = ("loss", "sharpness"),
    eos_line: bool = True,
    log_loss: bool = True,
) -> list[Axes]:
    """Recorded quantities against step t for selected runs, one panel per quantity.

    Args:
        result: a ``SweepResult``.
        ax: one axes per quantity (a single ``Axes`` when there is one quantity), or None for a
            new figure with stacked panels sharing the step axis.
        lr_index, init_index: the runs: ints, or sequences of equal length (a scalar pairs with
            every entry of the other).
        quantities: record names (``result[name]`` shaped (n_lr, n_init, n_record)).
        eos_line: on the ``"sharpness"`` panel draw y = 2/η for each run, dashed in its colour.
        log_loss: log-scale the ``"loss"`` panel when the plotted losses are all positive.

    Returns:
        the list of axes, one per quantity; each run is one line labelled ``η=…, init j``.
    """
    quantities = [quantities] if isinstance(quantities, str) else list(quantities)
    if not quantities:
        raise ValueError("quantities must name at least one record")
    n_lr, n_init = result.shape
    li = _as_indices(lr_index, n_lr, "lr_index")
    ii = _as_indices(init_index, n_init, "init_index")
    if li.size != ii.size and 1 not in (li.size, ii.size):
        raise ValueError(f"lr_index and init_index have different lengths ({li.size} and {ii.size})")
    li, ii = np.broadcast_arrays(li, ii)
    for q in quantities:
        if q not in result.records:
            raise ValueError(f"unknown record {q!r}; known records {sorted(result.records)}")

    if ax is None:
        axes = _new_axes(len(quantities), sharex=True, figsize=(6.4, 2.6 * len(quantities)))
    else:
        axes = [ax] if not isinstance(ax, Sequence | np.ndarray) else list(np.ravel(ax))
        if len(axes) != len(quantities):
            raise ValueError(f"got {len(axes)} axes for {len(quantities)} quantities")
    steps = np.asarray(result.steps)
    for a, q in zip(axes, quantities):
        data = np.asarray(result[q], dtype=float)
        for k, (i, j) in enumerate(zip(li, ii)):
            color = f"C{k % 10}"
            a.plot(steps, data[i, j], color=color, lw=1.2, label=f"η={result.lrs[i]:.3g}, init {j}")
            if eos_line and q == "sharpness":
                a.axhline(float(theory.eos_limit(float(result.lrs[i]))), color=color, ls="--", lw=1.0)
        if q == "loss" and log_loss:
            shown = data[li, ii]
            shown = shown[np.isfinite(shown)]
            if shown.size and np.all(shown > 0):
                a.set_yscale("log")
        a.set_ylabel(q + (" (dashed: 2/η)" if eos_line and q == "sharpness" else ""))
    axes[-1].set_xlabel("step t")
    axes[0].legend(fontsize="small")
    return axes


def versus_prediction(
    result: SweepResult,
    predicted: np.ndarray,
    ax: Axes | None = None,
    *,
    quantity: str | np.ndarray = "final_sharpness",
    rtol: float = 0.05,
    log: bool = True,
    color: Any = None,
) -> Axes:
    """Scatter of a measured per-run quantity against a prediction, with the identity line.

    The title reports the fraction of runs within ``rtol`` (relative) of the prediction; diverged
    or non-finite runs count as misses and are not drawn. Points may be coloured by ``color``, an
    (n_lr, n_init) array (default: inside/outside the tolerance).

    Returns:
        the axes; the scatter is its first collection, with offsets (predicted, measured) in a
        shuffled order.
    """
    measured, qlabel = _grid_quantity(result, quantity)
    predicted = np.broadcast_to(np.asarray(predicted, dtype=float), measured.shape)
    ok = theory.within_tolerance(measured, predicted, rtol)
    show = np.isfinite(measured) & np.isfinite(predicted)
    if log:
        show &= (measured > 0) & (predicted > 0)
    if ax is None:
        ax = _new_axes()[0]
    if color is None:
        c = np.where(ok, "C0", "C3")[show]
    else:
        c = np.broadcast_to(np.asarray(color), measured.shape)[show]
    order = np.random.default_rng(0).permutation(int(show.sum()))  # no group of points hides another
    x, y = predicted[show][order], measured[show][order]
    ax.scatter(x, y, c=c[order], s=4, alpha=0.5, linewidths=0, rasterized=True)
    both = np.concatenate([predicted[show], measured[show]])
    if both.size:
        lo, hi = both.min(), both.max()
        pad = (hi / lo) ** 0.03 if log else None
        lo, hi = (lo / pad, hi * pad) if log else (lo - 0.03 * (hi - lo), hi + 0.03 * (hi - lo))
        ax.plot([lo, hi], [lo, hi], color="black", lw=1.0, ls="--", label="measured = predicted")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel("predicted")
    ax.set_ylabel(f"measured {qlabel}".strip())
    ax.set_title(f"{ok.mean():.1%} of {ok.size} runs within {rtol:.0%} of the prediction", fontsize="medium")
    ax.legend(fontsize="small", loc="upper left")
    return ax
