"""Matplotlib views of a SweepResult. Every function takes an ``ax`` (made when None) and returns it."""

from __future__ import annotations as _annotations

import typing as _typing

import numpy as _np

from . import theory as _theory
from ._drawing import (
    _DIVERGED_COLOR,
    _PHASE_STYLE,
    _draw_cells,
    _draw_overlays,
    _edge_constant,
    _edge_label,
    _finish,
    _get_cmap,
    _grid_quantity,
    _new_axes,
    _view,
    _with_edge_overlay,
)
from ._phases import Phase as _Phase, _lr_grid, classify as _classify
from ._select import as_indices as _as_indices, mode as _mode

if _typing.TYPE_CHECKING:  # names for the annotations only: the module's public names are its __all__
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any

    import numpy as np
    from matplotlib.axes import Axes

    from ._phases import Phase
    from ._result import SweepResult

    #: an overlay curve: a function of η, or (function, legend label)
    Overlay = Callable[[np.ndarray], Any] | tuple[Callable[[np.ndarray], Any], str]
    #: how to reduce the dims not drawn: a name, or fn(array, axis=tuple of axes) -> the reduced array
    Reduce = str | Callable[..., Any]

__all__ = ["bifurcation", "phase_diagram", "phase_map", "spectral_density", "trajectories", "versus_prediction"]


def phase_diagram(
    result: SweepResult,
    quantity: str | np.ndarray = "final_sharpness",
    ax: Axes | None = None,
    *,
    x: str | np.ndarray = "lr",
    y: str | np.ndarray | None = None,
    sel: Mapping[str, float] | None = None,
    reduce: Reduce | None = None,
    overlay: Overlay | Sequence[Overlay] | None = None,
    log_x: bool | None = None,
    log_y: bool | None = None,
    cmap: Any = "viridis",
    norm: Any = None,
    mask_diverged: bool = True,
    diverged_color: Any = _DIVERGED_COLOR,
    colorbar: bool = True,
    label: str | None = None,
    contours: int | Sequence[float] | None = None,
    **pcolormesh_kwargs,
) -> Axes:
    """Heatmap of a per-run quantity over step size η (x) and an init coordinate (y), or any two dims.

    A result with named axes (``result.dims`` = ("lr", *axes, "init")) is drawn over the two dims named
    by ``x`` and ``y`` (``x="lr_in", y="lr_out"``); every other dim of size > 1 is picked at one value
    (``result.sel(b1=0.9)`` or ``sel={"b1": 0.9}``) or reduced over (``reduce="mean"``), else a
    ValueError names it. Cells are sorted by their coordinate on both axes.

    With x = lr and y = init, each run is a cell: its init's row (edges midway between neighbouring
    init coordinates) by the η-cell around its own step size (edges midway, geometrically under
    ``log_x``, between the neighbouring step sizes of the same init). With a shared (n_lr,) column of step sizes the cells
    form a rectilinear grid, drawn with ``pcolormesh``. With per-init columns (``lrs`` shaped
    (n_lr, n_init)) each row has its own η grid, so cells of neighbouring rows share no corners:
    every run is then its own rectangle (a ``PolyCollection``), rather than a curvilinear mesh
    whose quads would join the η of one init to that of the next.

    Args:
        result: a ``SweepResult``.
        quantity: a name (``result[name]``, e.g. ``"final_sharpness"``, or ``"diverged_step"``) or
            an array shaped like the grid, ``result.shape``.
        ax: the axes to draw on (a new figure when None).
        x: the dim drawn along x: ``"lr"`` (default), ``"init"`` or a named axis (``"b1"``); or, to
            draw the init dim there, one of ``y``'s init labels.
        y: the dim drawn along y, as ``x``; for the init dim (the default, None; lr when x is init)
            what labels each init: a record name whose initial value is used (``"y2_minus_x2"``
            reads ``result["initial_y2_minus_x2"]``), an (n_init,) array, or None / ``"init"`` for
            the index. Inits are sorted by it. A dim's name wins over a record's of the same name.
        sel: one value for each dim not drawn, ``{dim: value}``: a named axis or ``lr`` at the nearest
            value (``lr`` with per-init step-size columns: the row index), ``init`` by index. Named
            axes can be picked with ``result.sel(...)`` too; dims of size 1 need nothing.
        reduce: how to reduce the dims neither drawn nor in ``sel``: ``"mean"``, ``"median"``,
            ``"min"``, ``"max"`` (NaN-aware: diverged runs, whose final values are NaN, are left
            out) or a callable ``fn(array, axis=tuple_of_axes)``. A cell then counts as diverged
            when all of its runs diverged.
        overlay: curves y = f(x) drawn over the map (f of η for x = lr): a callable (e.g.
            ``theory.eos_limit``, or ``theory.edge_line(rule)``: the rule's stability edge, labelled), a
            (callable, label) pair, ``"edge"`` (the sweep's recorded edge c/η, labelled ``"38/η"``: 2/η for GD,
            (2 + 2β₁)/((1 − β₁)η) on the preconditioned sharpness for Adam; 2/η when none is recorded), or a
            list of these.
        log_x, log_y: log-scale axes (cells then have geometric edges); None (default): log for
            ``lr``, and for a named axis whose values are positive and span more than a decade
            (``seed`` and ``init`` stay linear).
        cmap, norm: colour map and normalisation (``"log"`` or a ``matplotlib.colors.Normalize``).
        mask_diverged: show diverged runs in ``diverged_color`` (labelled in the legend) instead
            of their value; non-finite values (and values ≤ 0 under a log norm) are always drawn
            in that colour.
        colorbar: add a colour bar labelled ``label`` (default: the quantity's name).
        contours: level lines over the map: a number of levels (evenly spaced in the colour
            normalisation, so geometric under ``norm="log"``) or the levels themselves.
        **pcolormesh_kwargs: passed on to ``pcolormesh`` (``vmin``, ``vmax``, ``shading``…), or to
            the ``PolyCollection`` for per-init columns (``vmin``/``vmax`` set its limits).

    Returns:
        the axes; the heatmap is its first ``QuadMesh`` (array shaped (n_y, n_x), by default
        (n_init, n_lr); rows sorted by the y coordinate, columns by x), or for per-init columns its
        first ``PolyCollection`` (one rectangle per run, the same (n_init, n_lr) array flattened row by row).

    Example:
        ```python
        rule = sj.GD(groups={"w1": "lr_in", "w2": "lr_out"})
        res = sj.sweep(p, [0.1, 1.0], inits, num_steps=500, rule=rule, axes={"lr_in": a, "lr_out": b})
        sj.plot.phase_diagram(res, "final_loss", x="lr_in", y="lr_out", sel={"lr": 1.0}, reduce="mean")  # mean over inits
        ```
    """
    import matplotlib.colors as mcolors
    import matplotlib.patches as mpatches

    values, qlabel = _grid_quantity(result, quantity)
    view = _view(result, x, y, sel, reduce, log_x, log_y, "phase_diagram")
    grid = view.grid
    values, diverged = view.take(values), view.take(result.diverged, _np.all)  # reduced: all of a cell's runs diverged
    hide = ~_np.isfinite(values) | (diverged if mask_diverged else False)
    data = _np.ma.masked_array(values, mask=hide)  # (n_y, n_x): rows are y, columns are x

    if ax is None:
        ax = _new_axes()[0]
    cmap = _get_cmap(cmap).with_extremes(bad=diverged_color)
    if isinstance(norm, str):
        if norm != "log":
            raise ValueError(f"norm must be 'log', None or a matplotlib Normalize, got {norm!r}")
        norm = mcolors.LogNorm()
    mesh = _draw_cells(ax, grid, data, cmap, norm, pcolormesh_kwargs)
    if contours is not None and min(data.shape) >= 2 and _np.any(~data.mask):
        if isinstance(contours, int) and not isinstance(contours, bool):
            levels = mesh.norm.inverse(_np.linspace(0.0, 1.0, contours + 2)[1:-1])
        else:
            levels = _np.sort(_np.asarray(contours, dtype=float))
        ys = _np.broadcast_to(grid.y[:, None], grid.x.shape)
        cs = ax.contour(grid.x, ys, data, levels=_np.asarray(levels), colors="white", linewidths=0.7, alpha=0.7)
        ax.clabel(cs, fontsize="x-small", fmt="%.3g")

    handles = _draw_overlays(ax, _with_edge_overlay(result, overlay, view, "phase_diagram"), grid, view.log_x)
    if _np.any(diverged & mask_diverged):
        n = int(diverged.sum())
        handles.append(mpatches.Patch(color=diverged_color, label=f"diverged ({n}/{diverged.size})"))
    _finish(ax, view, handles)
    if colorbar:
        ax.figure.colorbar(mesh, ax=ax, label=qlabel if label is None else label)
    return ax


def _phase_codes(result: SweepResult, phases, classify_kwargs: dict) -> np.ndarray:
    if phases is None:
        return _classify(result, **classify_kwargs)
    if classify_kwargs:
        raise ValueError(f"classify keywords {sorted(classify_kwargs)} are used only when phases is None")
    codes = _np.asarray(phases)
    if codes.shape != tuple(result.shape):
        raise ValueError(f"phases must have the grid's shape {tuple(result.shape)} (dims {result.dims}), got {codes.shape}")
    if not _np.issubdtype(codes.dtype, _np.integer):
        raise ValueError(f"phases must be integer Phase codes (sj.classify's output), got dtype {codes.dtype}")
    unknown = sorted(set(_np.unique(codes).tolist()) - {int(p) for p in _Phase})
    if unknown:
        raise ValueError(f"phases has codes {unknown} that are not Phase values {[int(p) for p in _Phase]}")
    return codes


def phase_map(
    result: SweepResult,
    phases: np.ndarray | None = None,
    ax: Axes | None = None,
    *,
    x: str | np.ndarray = "lr",
    y: str | np.ndarray | None = None,
    sel: Mapping[str, float] | None = None,
    reduce: str | Callable[..., Any] | None = None,
    overlay: Overlay | Sequence[Overlay] | None = None,
    log_x: bool | None = None,
    log_y: bool | None = None,
    colors: Mapping[Phase, Any] | None = None,
    legend: bool = True,
    **classify_kwargs,
) -> Axes:
    """Categorical map of each run's ``Phase`` over step size η (x) and an init coordinate (y), or any two dims.

    One colour per phase (STABLE, LAZY, EOS, CATAPULT, DIVERGED), the cells laid out as in
    ``phase_diagram`` (per-init step-size columns and named axes included), and a legend naming the
    phases present with their cell counts.

    Args:
        result: a ``SweepResult`` (it gives the coordinates).
        phases: ``Phase`` codes shaped like the grid, e.g. ``sj.classify(result, curvature="ntk", edge=8)``;
            None classifies ``result`` here with ``classify_kwargs``.
        ax, x, y, sel, overlay, log_x, log_y: as in ``phase_diagram``.
        reduce: ``"mode"``: each cell shows the most frequent phase of the runs over the dims
            neither drawn nor in ``sel`` (ties go to the later phase: DIVERGED > CATAPULT > EOS > LAZY
            > STABLE); or a callable ``fn(codes, axis=tuple_of_axes)`` returning ``Phase`` codes.
        colors: ``{Phase: colour}`` overriding the defaults (diverged runs default to
            ``phase_diagram``'s diverged colour).
        legend: add the legend of phases (and of named overlays).
        **classify_kwargs: ``classify``'s thresholds (``curvature``, ``edge``, ...), when ``phases`` is None.

    Returns:
        the axes; the map is its first ``QuadMesh`` (or ``PolyCollection`` for per-init columns)
        with the codes as its (n_y, n_x) array (by default (n_init, n_lr)), a ``ListedColormap`` of one colour per phase
        and a ``BoundaryNorm`` at the half-integers, so code k is drawn in the colour of ``Phase(k)``.

    Example:
        ```python
        sj.plot.phase_map(res, curvature="ntk", edge=8, overlay=(lambda lr: 8 / lr, "8/η"))
        sj.plot.phase_diagram(adam_res, "final_preconditioned_sharpness", overlay="edge")  # 38/η
        ```
    """
    import matplotlib.colors as mcolors
    import matplotlib.patches as mpatches

    codes = _phase_codes(result, phases, classify_kwargs)
    if reduce is not None and reduce != "mode" and not callable(reduce):
        raise ValueError(f"phase_map reduces phase codes with reduce='mode' or a callable, got {reduce!r}")
    view = _view(result, x, y, sel, _mode if reduce == "mode" else reduce, log_x, log_y, "phase_map")
    shown = view.take(codes)
    if not set(_np.unique(shown).tolist()) <= {int(p) for p in _Phase}:
        raise ValueError(f"reduce={reduce!r} returned values that are not Phase codes: {sorted(_np.unique(shown).tolist())}")
    chosen = {p: style[0] for p, style in _PHASE_STYLE.items()}
    for key, color in (colors or {}).items():
        if isinstance(key, bool) or not isinstance(key, int) or key not in {int(p) for p in _Phase}:
            raise ValueError(f"colors keys must be Phase members, got {key!r}")
        chosen[_Phase(key)] = mcolors.to_rgba(color)
    data = _np.ma.masked_array(shown.astype(float), mask=False)
    cmap = mcolors.ListedColormap([chosen[p] for p in _Phase], name="phases")
    norm = mcolors.BoundaryNorm(_np.arange(len(_Phase) + 1) - 0.5, len(_Phase))

    if ax is None:
        ax = _new_axes()[0]
    _draw_cells(ax, view.grid, data, cmap, norm, {})
    handles = [
        mpatches.Patch(color=chosen[p], label=f"{_PHASE_STYLE[p][1]} ({int(n)})")
        for p in _Phase
        if (n := _np.count_nonzero(shown == p))
    ]
    handles += _draw_overlays(ax, _with_edge_overlay(result, overlay, view, "phase_map"), view.grid, view.log_x)
    _finish(ax, view, handles if legend else [])
    return ax


def _chosen_runs(result: SweepResult, caller: str, lr_index, init_index, axis_index):
    """The runs selected by (lr_index, axis_index, init_index), paired like ``zip`` (scalars broadcast):
    (list of grid indices, the broadcast index arrays, the named axes of size > 1 as (dim, name, values))."""
    n_lr, n_init = result.shape[0], result.shape[-1]
    axis_index = dict(axis_index or {})
    unknown = sorted(set(axis_index) - set(result.axes))
    if unknown:
        raise ValueError(f"axis_index names {unknown}, which are not named axes of this result ({list(result.axes)})")
    missing = [k for k, v in result.axes.items() if v.size > 1 and k not in axis_index]
    if missing:
        raise ValueError(
            f"{caller}: give the index of the runs along the named axes {missing} (axis_index="
            f"{ {k: 0 for k in missing} }) or pass result.isel({', '.join(f'{k}=0' for k in missing)})"
        )
    index = [_as_indices(lr_index, n_lr, "lr_index")]
    index += [_as_indices(axis_index.get(k, 0), v.size, f"axis_index[{k!r}]") for k, v in result.axes.items()]
    index.append(_as_indices(init_index, n_init, "init_index"))
    sizes = {i.size for i in index} - {1}
    if len(sizes) > 1:
        lengths = ", ".join(f"{d} {i.size}" for d, i in zip(result.dims, index))
        raise ValueError(f"lr_index, init_index and axis_index have different lengths ({lengths})")
    index = _np.broadcast_arrays(*index)
    shown_axes = [(n, k, v) for n, (k, v) in enumerate(result.axes.items(), start=1) if v.size > 1]
    return list(zip(*index)), index, shown_axes


def _run_label(result: SweepResult, run, shown_axes) -> str:
    names = "".join(f", {name}={v[run[n]].item():.3g}" for n, name, v in shown_axes)
    return f"η={_lr_grid(result)[run]:.3g}{names}, init {run[-1]}"


def trajectories(
    result: SweepResult,
    ax: Axes | Sequence[Axes] | None = None,
    *,
    lr_index: int | Sequence[int],
    init_index: int | Sequence[int],
    axis_index: Mapping[str, int | Sequence[int]] | None = None,
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
            every entry of the others).
        axis_index: for a result with named axes, the index along each of them, ``{"b1": [0, 2]}``
            (ints or sequences, paired with ``lr_index`` and ``init_index`` as those are with each
            other). Every named axis of size > 1 needs one; or pass ``result.isel(b1=0)``.
        quantities: record names (``result[name]`` shaped (*result.shape, n_record)).
        eos_line: on the panel of the curvature the rule's edge bounds (``result.metadata["edge_of"]``,
            default ``"sharpness"``) draw each run's stability edge, dashed in its colour: the recorded
            ``"edge"`` (e.g. 38/η for Adam, 2/η_t under a schedule), else y = 2/η.
        log_loss: log-scale the ``"loss"`` panel when the plotted losses are all positive.

    Returns:
        the list of axes, one per quantity; each run is one line labelled ``η=…, init j`` (with
        ``name=value`` for each named axis of size > 1 between them).

    Example:
        ```python
        sj.plot.trajectories(res, lr_index=2, init_index=0, axis_index={"seed": [0, 1, 2]})  # three seeds
        ```
    """
    quantities = [quantities] if isinstance(quantities, str) else list(quantities)
    if not quantities:
        raise ValueError("quantities must name at least one record")
    runs, index, shown_axes = _chosen_runs(result, "trajectories", lr_index, init_index, axis_index)
    for q in quantities:
        if q not in result.records:
            raise ValueError(f"unknown record {q!r}; known records {sorted(result.records)}")

    if ax is None:
        axes = _new_axes(len(quantities), sharex=True, figsize=(6.4, 2.6 * len(quantities)))
    else:
        axes = [ax] if not isinstance(ax, (list, tuple, _np.ndarray)) else list(_np.ravel(ax))
        if len(axes) != len(quantities):
            raise ValueError(f"got {len(axes)} axes for {len(quantities)} quantities")
    steps = _np.asarray(result.steps)
    lrs = _lr_grid(result)  # each run's own η, also for per-init columns
    recorded = "edge" in result.records
    edge_of = result.metadata.get("edge_of", "sharpness") if recorded else "sharpness"
    for a, q in zip(axes, quantities):
        data = _np.asarray(result[q], dtype=float)
        for k, run in enumerate(runs):
            color = f"C{k % 10}"
            a.plot(steps, data[run], color=color, lw=1.2, label=_run_label(result, run, shown_axes))
            if eos_line and q == edge_of and recorded:
                a.plot(steps, _np.asarray(result.records["edge"], dtype=float)[run], color=color, ls="--", lw=1.0)
            elif eos_line and q == edge_of:
                a.axhline(float(_theory.eos_limit(float(lrs[run]))), color=color, ls="--", lw=1.0)
        if q == "loss" and log_loss:
            shown = data[tuple(index)]
            shown = shown[_np.isfinite(shown)]
            if shown.size and _np.all(shown > 0):
                a.set_yscale("log")
        if eos_line and q == edge_of:
            c = _edge_constant(result)[tuple(index)] if recorded else _np.array([2.0])
            one = bool(_np.all(_np.isfinite(c)) and _np.isclose(c.min(), c.max(), rtol=1e-6))
            a.set_ylabel(f"{q} (dashed: {_edge_label(float(c.min()), 'sharpness') if one else 'its edge'})")
        else:
            a.set_ylabel(q)
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

    Every run of the grid is one point (with named axes too: pass ``result.sel(...)`` for a slice).
    The title reports the fraction of runs within ``rtol`` (relative) of the prediction; diverged
    or non-finite runs count as misses and are not drawn. ``predicted`` and ``color`` (default:
    inside/outside the tolerance) are arrays broadcast to the grid's shape, ``result.shape``.

    Returns:
        the axes; the scatter is its first collection, with offsets (predicted, measured) in a
        shuffled order.
    """
    measured, qlabel = _grid_quantity(result, quantity)
    predicted = _np.broadcast_to(_np.asarray(predicted, dtype=float), measured.shape)
    ok = _theory.within_tolerance(measured, predicted, rtol)
    show = _np.isfinite(measured) & _np.isfinite(predicted)
    if log:
        show &= (measured > 0) & (predicted > 0)
    if ax is None:
        ax = _new_axes()[0]
    if color is None:
        c = _np.where(ok, "C0", "C3")[show]
    else:
        c = _np.broadcast_to(_np.asarray(color), measured.shape)[show]
    order = _np.random.default_rng(0).permutation(int(show.sum()))  # no group of points hides another
    x, y = predicted[show][order], measured[show][order]
    ax.scatter(x, y, c=c[order], s=4, alpha=0.5, linewidths=0, rasterized=True)
    both = _np.concatenate([predicted[show], measured[show]])
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


def spectral_density(
    result: SweepResult,
    ax: Axes | None = None,
    *,
    lr_index: int | Sequence[int],
    init_index: int | Sequence[int],
    axis_index: Mapping[str, int | Sequence[int]] | None = None,
    step: int | None = None,
    sigma: float | None = None,
    num_points: int = 400,
    log: bool = True,
) -> Axes:
    """The Hessian's spectral density of selected runs at one step, from a sweep that recorded
    ``sj.measures.SpectralDensity``: the quadrature nodes and weights smoothed by Gaussians of width ``sigma``
    (``sj.measures.density``), one line per run, with the fraction of negative mass in the legend.

    Args:
        result: a ``SweepResult`` with ``density_nodes`` and ``density_weights`` records.
        lr_index, init_index, axis_index: the runs, as in ``trajectories``.
        step: the step t to show (the record at or before it where the density was measured; default: the
            last record where it was).
        sigma: the smoothing width (default: 1/100 of the range of the drawn nodes).
        num_points: grid points of each curve.
        log: log-scale the density axis (the bulk near 0 and the outliers on one plot).
    """
    from ._spectrum import density, negative_mass

    for name in ("density_nodes", "density_weights"):
        if name not in result.records:
            raise ValueError(f"spectral_density needs the {name!r} record: Record(measures=[sj.measures.SpectralDensity()])")
    runs, _, shown_axes = _chosen_runs(result, "spectral_density", lr_index, init_index, axis_index)
    nodes_all, weights_all = _np.asarray(result.records["density_nodes"]), _np.asarray(result.records["density_weights"])
    steps = _np.asarray(result.steps)
    picked = []
    for run in runs:
        measured = _np.flatnonzero(
            _np.all(_np.isfinite(nodes_all[run]), axis=-1) & (steps <= (steps[-1] if step is None else step))
        )
        if measured.size == 0:
            raise ValueError(f"run {run} has no density measured at or before step {step}")
        r = measured[-1]
        picked.append((run, nodes_all[run][r], weights_all[run][r], steps[r]))
    lo = min(p[1].min() for p in picked)
    hi = max(p[1].max() for p in picked)
    width = sigma if sigma is not None else max(hi - lo, 1e-12) / 100
    grid = _np.linspace(lo - 5 * width, hi + 5 * width, num_points)
    if ax is None:
        ax = _new_axes()[0]
    for k, (run, nodes, weights, t) in enumerate(picked):
        values = _np.asarray(density(nodes, weights, grid, width))
        neg = float(negative_mass(nodes, weights))
        label = f"{_run_label(result, run, shown_axes)}, t={int(t)} (negative mass {neg:.2g})"
        ax.plot(grid, _np.maximum(values, 1e-300) if log else values, color=f"C{k % 10}", lw=1.2, label=label)
    if log:
        ax.set_yscale("log")
        top = max(ln.get_ydata().max() for ln in ax.get_lines())
        ax.set_ylim(top * 1e-8, top * 2)
    ax.set_xlabel("eigenvalue of the Hessian")
    ax.set_ylabel(f"density (Gaussian σ = {width:.2g})")
    ax.legend(fontsize="small")
    return ax


def bifurcation(
    result: SweepResult,
    quantity: str | np.ndarray = "loss",
    ax: Axes | None = None,
    *,
    fraction: float = 0.2,
    init_index: int | Sequence[int] | None = 0,
    axis_index: Mapping[str, int] | None = None,
    log_x: bool = True,
    log_y: bool = False,
    mark_diverged: bool = True,
    label: str | None = None,
    color: Any = None,
    s: float = 4.0,
    **scatter_kwargs,
) -> Axes:
    """Bifurcation diagram: for each η, the values a record takes over the last ``fraction`` of the records.

    A fixed point shows as one dot per η, a period-2 orbit as two, chaos as a band (Kalra et al.'s UV-model
    figures); diverged runs are marked on the η axis (an ``x`` at the bottom, in ``phase_diagram``'s
    diverged colour) and their values left out. The data are ``late_values(result, quantity, fraction)``.

    Args:
        result: a ``SweepResult``.
        quantity: a scalar record name (``"loss"``, ``"sharpness"``, an observable) or an array shaped
            (*result.shape, n_record), e.g. ``res["sharpness"] * res.lrs[:, None, None] / 2``.
        ax: the axes (a new figure when None).
        fraction: the late part of the records, in (0, 1]: the last ⌈fraction · n_record⌉ of them.
        init_index: the init(s) drawn, one colour each; None draws every init.
        axis_index: for a result with named axes, one index along each of size > 1 (``{"b1": 2}``).
        log_x, log_y: log-scale η (default) and the values.
        mark_diverged: mark diverged runs on the η axis.
        label: the y label (default: the record's name and the fraction).
        color: the dots' colour (default: C0, C1, … per init).
        s: the dots' size; ``scatter_kwargs`` go to ``ax.scatter``.

    Returns:
        the axes; each init's dots are one collection, with offsets (η, value) for every finite late value
        of every run that did not diverge (lr-major, then record order), followed by the diverged marks.
    """
    import matplotlib.transforms as mtransforms

    from ._bifurcation import late_values, record_array

    values, name = record_array(result, quantity)
    late = late_values(result, values, fraction)
    lrs = _lr_grid(result)
    n_lr, n_init = result.shape[0], result.shape[-1]
    inits = range(n_init) if init_index is None else _np.atleast_1d(_as_indices(init_index, n_init, "init_index"))
    if ax is None:
        ax = _new_axes()[0]
    bottom = mtransforms.blended_transform_factory(ax.transData, ax.transAxes)
    drawn_any_diverged = False
    for k, j in enumerate(inits):
        runs, _, _ = _chosen_runs(result, "bifurcation", _np.arange(n_lr), int(j), axis_index)
        diverged = _np.array([bool(result.diverged[run]) for run in runs])
        eta = _np.array([lrs[run] for run in runs])
        vals = _np.stack([late[run] for run in runs])  # (n_lr, k)
        keep = ~diverged[:, None] & _np.isfinite(vals)
        if log_y:
            keep &= vals > 0
        xs = _np.broadcast_to(eta[:, None], vals.shape)[keep]
        c = color if color is not None else f"C{k % 10}"
        tag = f"init {int(j)}" if len(inits) > 1 else None
        ax.scatter(xs, vals[keep], s=s, color=c, linewidths=0, label=tag, **scatter_kwargs)
        if mark_diverged and diverged.any():
            ax.scatter(eta[diverged], _np.full(int(diverged.sum()), 0.03), marker="x", color=_DIVERGED_COLOR,
                       transform=bottom, clip_on=False, label=None if drawn_any_diverged else "diverged")  # fmt: skip
            drawn_any_diverged = True
            xy = _np.column_stack([eta[diverged], _np.zeros(int(diverged.sum()))])
            ax.update_datalim(xy, updatex=True, updatey=False)  # the marks' η inside the x range
            ax.autoscale_view()
    if log_x:
        ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("step size η")
    k_late = late.shape[-1]
    ax.set_ylabel(label if label is not None else f"{name or 'value'}, last {k_late} of {values.shape[-1]} records")
    if len(inits) > 1 or drawn_any_diverged:
        ax.legend(fontsize="small")
    return ax
