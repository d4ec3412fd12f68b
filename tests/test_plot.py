import dataclasses

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PathCollection, PolyCollection, QuadMesh  # noqa: E402
from matplotlib.contour import ContourSet  # noqa: E402

import sweepjax as sj  # noqa: E402
from sweepjax import _drawing, plot, theory  # noqa: E402
from sweepjax._result import SweepResult  # noqa: E402

LRS = np.array([0.5, 0.1, 1.0])  # deliberately unsorted
GAPS = np.array([4.0, 1.0, 9.0, 2.0])  # y0² − x0² of each init, unsorted
STEPS = np.array([0, 10, 20])


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _result() -> SweepResult:
    n_lr, n_init = LRS.size, GAPS.size
    rng = np.random.default_rng(0)
    final_sharpness = rng.uniform(1.0, 10.0, (n_lr, n_init))
    status = np.zeros((n_lr, n_init), np.int8)
    status[2, 0] = status[2, 2] = 1  # two diverged runs at η = 1
    final_sharpness[status == 1] = np.nan
    loss = rng.uniform(0.1, 2.0, (n_lr, n_init, STEPS.size))
    sharp = rng.uniform(1.0, 10.0, (n_lr, n_init, STEPS.size))
    gap_rec = np.broadcast_to(GAPS[None, :, None], (n_lr, n_init, STEPS.size)).copy()
    gap_rec[2, 2, :] = np.nan  # a run that diverged at step 0 has no records; another row still has its value
    inits = np.stack([np.ones(n_init), np.sqrt(1.0 + GAPS)], axis=-1)
    return SweepResult(
        lrs=LRS, steps=STEPS, inits=inits,
        records={"loss": loss, "sharpness": sharp, "y2_minus_x2": gap_rec},
        final={"sharpness": final_sharpness, "loss": loss[..., -1]},
        final_params=np.zeros((n_lr, n_init, 2)), status=status,
        diverged_step=np.where(status == 1, 5.0, np.nan), num_steps=np.full((n_lr, n_init), 20), metadata={},
    )  # fmt: skip


def _mesh(ax) -> QuadMesh:
    meshes = [c for c in ax.collections if isinstance(c, QuadMesh)]
    assert len(meshes) == 1
    return meshes[0]


def test_phase_diagram_sorts_and_masks():
    res = _result()
    ax = plot.phase_diagram(res, "final_sharpness", y="y2_minus_x2", overlay=theory.eos_limit)
    arr = _mesh(ax).get_array()
    lr_order, init_order = np.argsort(LRS), np.argsort(GAPS)
    expected = res["final_sharpness"][np.ix_(lr_order, init_order)].T  # rows: gaps ascending; columns: η ascending
    assert arr.shape == (GAPS.size, LRS.size)
    np.testing.assert_array_equal(np.ma.getdata(arr)[~arr.mask], expected[np.isfinite(expected)])
    diverged = res.diverged[np.ix_(lr_order, init_order)].T
    np.testing.assert_array_equal(np.ma.getmaskarray(arr), diverged)
    # the masked colour is the distinct diverged colour, and the legend names it
    assert matplotlib.colors.same_color(_mesh(ax).get_cmap().get_bad(), plot._DIVERGED_COLOR)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "2/η" in labels and "diverged (2/12)" in labels
    # axes: log η, cell edges around the sorted centers, colour bar added
    assert ax.get_xscale() == "log" and ax.get_ylabel() == "initial y2_minus_x2"
    coords = _mesh(ax).get_coordinates()  # (n_y + 1, n_x + 1, 2)
    np.testing.assert_allclose(coords[0, :, 0], _drawing._cell_edges(np.sort(LRS), log=True))
    np.testing.assert_allclose(coords[:, 0, 1], _drawing._cell_edges(np.sort(GAPS)))
    assert len(ax.figure.axes) == 2


def test_phase_diagram_overlay_data_is_the_curve():
    res = _result()
    ax = plot.phase_diagram(res, "final_sharpness", y=GAPS, overlay=[(theory.eos_limit, "EoS"), (lambda lr: 1 / lr, "1/η")])
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    x, y = lines["EoS"].get_data()
    np.testing.assert_allclose(y, 2.0 / x)
    assert x.min() < LRS.min() and x.max() > LRS.max()  # spans the whole η axis
    x, y = lines["1/η"].get_data()
    np.testing.assert_allclose(y, 1.0 / x)


def test_phase_diagram_unmasked_array_and_index_axis():
    res = _result()
    q = np.arange(12.0).reshape(3, 4)
    ax = plot.phase_diagram(res, q, mask_diverged=False, log_x=False, colorbar=False)
    arr = _mesh(ax).get_array()
    assert not np.ma.getmaskarray(arr).any()
    np.testing.assert_array_equal(np.ma.getdata(arr), q[np.argsort(LRS)].T)  # inits keep index order
    assert ax.get_ylabel() == "init index" and ax.get_xscale() == "linear"
    assert ax.get_legend() is None and len(ax.figure.axes) == 1


def test_phase_diagram_result_attribute_log_y_and_contours():
    res = _result()
    fig, ax = plt.subplots()
    out = plot.phase_diagram(res, "diverged_step", ax, y=GAPS, log_y=True, mask_diverged=False, colorbar=False)
    assert out is ax and ax.get_yscale() == "log"
    arr = _mesh(ax).get_array()  # diverged runs show their value; the NaN of the others is masked
    diverged = res.diverged[np.ix_(np.argsort(LRS), np.argsort(GAPS))].T
    np.testing.assert_array_equal(np.ma.getmaskarray(arr), ~diverged)
    np.testing.assert_array_equal(np.ma.getdata(arr)[diverged], [5.0, 5.0])
    masked = plot.phase_diagram(res, "diverged_step", y=GAPS, colorbar=False)  # mask_diverged=True hides all
    assert np.ma.getmaskarray(_mesh(masked).get_array()).all()
    np.testing.assert_allclose(_mesh(ax).get_coordinates()[:, 0, 1], _drawing._cell_edges(np.sort(GAPS), log=True))
    ax2 = plot.phase_diagram(res, "final_sharpness", y=GAPS, contours=[3.0, 6.0], colorbar=False)
    (cs,) = [c for c in ax2.get_children() if isinstance(c, ContourSet)]
    np.testing.assert_allclose(cs.levels, [3.0, 6.0])


def test_cell_edges():
    np.testing.assert_allclose(_drawing._cell_edges(np.array([1.0, 2.0, 4.0])), [0.5, 1.5, 3.0, 5.0])
    np.testing.assert_allclose(_drawing._cell_edges(np.array([1.0, 4.0, 16.0]), log=True), [0.5, 2.0, 8.0, 32.0])
    np.testing.assert_allclose(_drawing._cell_edges(np.array([3.0])), [2.5, 3.5])
    with pytest.raises(ValueError, match="positive"):
        _drawing._cell_edges(np.array([0.0, 1.0]), log=True)


def test_phase_diagram_bad_input():
    res = _result()
    with pytest.raises(ValueError, match="unknown quantity"):
        plot.phase_diagram(res, "nope")
    with pytest.raises(ValueError, match=r"final_<name>"):
        plot.phase_diagram(res, "loss")  # a record, not a per-run value
    with pytest.raises(ValueError, match="one value per init"):
        plot.phase_diagram(res, "final_sharpness", y=np.arange(3.0))
    with pytest.raises(ValueError, match="not a record"):
        plot.phase_diagram(res, "final_sharpness", y="nope")
    with pytest.raises(TypeError, match="overlay"):
        plot.phase_diagram(res, "final_sharpness", overlay=[3.0])


def test_trajectories_lines_and_eos_lines():
    res = _result()
    axes = plot.trajectories(res, lr_index=[0, 2], init_index=1)
    assert len(axes) == 2
    loss_ax, sharp_ax = axes
    run_lines = [ln for ln in loss_ax.get_lines()]
    assert len(run_lines) == 2
    for ln, i in zip(run_lines, [0, 2]):
        np.testing.assert_array_equal(ln.get_xdata(), STEPS)
        np.testing.assert_array_equal(ln.get_ydata(), res["loss"][i, 1])
    assert loss_ax.get_yscale() == "log"
    sharp_lines = sharp_ax.get_lines()
    curves = [ln for ln in sharp_lines if len(ln.get_xdata()) == STEPS.size and ln.get_linestyle() == "-"]
    eos = [ln for ln in sharp_lines if ln.get_linestyle() == "--"]
    np.testing.assert_array_equal(curves[1].get_ydata(), res["sharpness"][2, 1])
    np.testing.assert_allclose([ln.get_ydata()[0] for ln in eos], 2.0 / LRS[[0, 2]])
    assert [ln.get_color() for ln in eos] == [ln.get_color() for ln in curves]
    assert "η=0.5, init 1" in [t.get_text() for t in loss_ax.get_legend().get_texts()]


def test_trajectories_given_axes_and_errors():
    res = _result()
    fig, ax = plt.subplots()
    (out,) = plot.trajectories(res, ax, lr_index=1, init_index=[0, 3], quantities=("sharpness",), eos_line=False)
    assert out is ax and len(ax.get_lines()) == 2
    with pytest.raises(ValueError, match="different lengths"):
        plot.trajectories(res, lr_index=[0, 1], init_index=[0, 1, 2])
    with pytest.raises(ValueError, match="out of range"):
        plot.trajectories(res, lr_index=3, init_index=0)
    with pytest.raises(ValueError, match="unknown record"):
        plot.trajectories(res, lr_index=0, init_index=0, quantities=("nope",))
    with pytest.raises(ValueError, match="axes"):
        plot.trajectories(res, ax, lr_index=0, init_index=0)


def test_versus_prediction_scatter_and_title():
    res = _result()
    pred = res["final_sharpness"].copy()
    pred[0, 0] *= 1.5  # one finite miss; the two diverged runs are misses too
    ax = plot.versus_prediction(res, pred, rtol=0.05)
    (sc,) = [c for c in ax.collections if isinstance(c, PathCollection)]
    shown = np.isfinite(res["final_sharpness"])
    got = sorted(map(tuple, sc.get_offsets()))
    assert got == sorted(zip(pred[shown], res["final_sharpness"][shown]))
    assert ax.get_title().startswith(f"{9 / 12:.1%} of 12 runs within 5%")
    (identity,) = [ln for ln in ax.get_lines() if ln.get_label() == "measured = predicted"]
    x, y = identity.get_data()
    np.testing.assert_allclose(x, y)


def test_namespace_is_the_plotting_functions():
    public = [n for n in dir(plot) if not n.startswith("_")]
    assert (
        public
        == sorted(plot.__all__)
        == ["bifurcation", "phase_diagram", "phase_map", "spectral_density", "trajectories", "versus_prediction"]
    )
    assert all(callable(getattr(plot, n)) for n in public)


# per-init step-size columns: each init has its own (unsorted) η values
LR_COLS = np.array([[0.5, 0.04, 2.0, 0.3], [0.1, 0.02, 1.0, 0.9], [1.0, 0.08, 4.0, 0.6]])


def _cells(ax) -> PolyCollection:
    (cells,) = [c for c in ax.collections if type(c) is PolyCollection]
    return cells


def test_phase_diagram_per_init_columns_draws_each_inits_own_step_sizes():
    res = dataclasses.replace(_result(), lrs=LR_COLS)
    ax = plot.phase_diagram(res, "final_sharpness", y=GAPS, contours=2, overlay=theory.eos_limit)
    cells = _cells(ax)
    assert not [c for c in ax.collections if isinstance(c, QuadMesh)]
    n_lr, n_init = LR_COLS.shape
    init_order = np.argsort(GAPS)
    y_edges = _drawing._cell_edges(np.sort(GAPS))
    boxes = np.array([p.vertices[:4] for p in cells.get_paths()]).reshape(n_init, n_lr, 4, 2)
    for row, j in enumerate(init_order):  # rows by ascending gap, each with its own η cells
        lr_order = np.argsort(LR_COLS[:, j])
        x_lo, x_hi = boxes[row, :, :, 0].min(axis=-1), boxes[row, :, :, 0].max(axis=-1)
        edges = _drawing._cell_edges(LR_COLS[lr_order, j], log=True)
        np.testing.assert_allclose(x_lo, edges[:-1])
        np.testing.assert_allclose(x_hi, edges[1:])
        assert np.all((x_lo < LR_COLS[lr_order, j]) & (LR_COLS[lr_order, j] < x_hi))  # the plotted η are init j's
        np.testing.assert_allclose(boxes[row, :, :, 1].min(axis=-1), y_edges[row])
        np.testing.assert_allclose(boxes[row, :, :, 1].max(axis=-1), y_edges[row + 1])
        expected = res["final_sharpness"][lr_order, j]
        got = cells.get_array().reshape(n_init, n_lr)[row]
        np.testing.assert_array_equal(np.ma.getmaskarray(got), res.diverged[lr_order, j])
        np.testing.assert_array_equal(got[~got.mask], expected[np.isfinite(expected)])
    assert ax.get_xlim() == (pytest.approx(boxes[..., 0].min()), pytest.approx(boxes[..., 0].max()))
    assert len(ax.figure.axes) == 2 and ax.get_xscale() == "log"
    # equal columns are a rectilinear grid again: one QuadMesh
    same = dataclasses.replace(_result(), lrs=np.repeat(LRS[:, None], GAPS.size, axis=1))
    np.testing.assert_allclose(_mesh(plot.phase_diagram(same)).get_coordinates()[0, :, 0],
                               _drawing._cell_edges(np.sort(LRS), log=True))  # fmt: skip


def test_trajectories_label_each_runs_own_step_size():
    res = dataclasses.replace(_result(), lrs=LR_COLS)
    loss_ax, sharp_ax = plot.trajectories(res, lr_index=0, init_index=[1, 2])
    assert [t.get_text() for t in loss_ax.get_legend().get_texts()] == ["η=0.04, init 1", "η=2, init 2"]
    eos = [ln for ln in sharp_ax.get_lines() if ln.get_linestyle() == "--"]
    np.testing.assert_allclose([ln.get_ydata()[0] for ln in eos], 2.0 / LR_COLS[0, [1, 2]])


CODES = np.array([[0, 1, 2, 2], [3, 3, 2, 0], [4, 3, 4, 2]], np.int8)  # LAZY once, no other phase missing


@pytest.mark.parametrize("lrs", [LRS, LR_COLS], ids=["shared", "per-init"])
def test_phase_map_colours_and_legend_name_the_phases_present(lrs):
    res = dataclasses.replace(_result(), lrs=lrs)
    codes = CODES.copy()
    codes[codes == 1] = 0  # no LAZY run: it must not be in the legend
    ax = plot.phase_map(res, codes, y=GAPS, colors={sj.Phase.EOS: "black"})
    cells = _mesh(ax) if lrs.ndim == 1 else _cells(ax)
    ax.figure.canvas.draw()
    n_lr, n_init = codes.shape
    lr_index = np.argsort(np.broadcast_to(lrs.reshape(n_lr, -1), codes.shape), axis=0).T[np.argsort(GAPS)]
    shown = codes[lr_index, np.argsort(GAPS)[:, None]]  # (n_init, n_lr): rows by gap, columns by η
    np.testing.assert_array_equal(np.asarray(cells.get_array()).reshape(n_init, n_lr), shown)
    legend = ax.get_legend()
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == ["stable (3)", "EoS (4)", "catapult (3)", "diverged (2)"]
    patch_color = dict(zip(labels, [h.get_facecolor() for h in legend.legend_handles]))
    face = cells.get_facecolors().reshape(n_init, n_lr, 4)
    for label, phase in zip(labels, [sj.Phase.STABLE, sj.Phase.EOS, sj.Phase.CATAPULT, sj.Phase.DIVERGED]):
        assert np.all(face[shown == phase] == matplotlib.colors.to_rgba(patch_color[label]))  # cell colour = legend's
    assert matplotlib.colors.same_color(patch_color["EoS (4)"], "black")
    assert matplotlib.colors.same_color(patch_color["diverged (2)"], plot._DIVERGED_COLOR)


@pytest.mark.filterwarnings("ignore::sweepjax._phases.SparseRecordWarning")  # random records, every = 10
def test_phase_map_classifies_when_no_phases_are_given_and_checks_input():
    res = _result()
    ax = plot.phase_map(res, curvature="sharpness", lazy_tol=None)
    expected = sj.classify(res, lazy_tol=None)
    np.testing.assert_array_equal(_mesh(ax).get_array(), expected[np.argsort(LRS)].T)
    assert ax.get_xlabel() == "step size η" and ax.get_ylabel() == "init index"
    with pytest.raises(ValueError, match="shape"):
        plot.phase_map(res, CODES[:2])
    with pytest.raises(ValueError, match="not Phase values"):
        plot.phase_map(res, CODES + 3)
    with pytest.raises(ValueError, match="integer"):
        plot.phase_map(res, CODES.astype(float))
    with pytest.raises(ValueError, match="only when phases is None"):
        plot.phase_map(res, CODES, edge=8.0)
    with pytest.raises(ValueError, match="colors keys"):
        plot.phase_map(res, CODES, colors={"eos": "red"})


def test_spectral_density_draws_the_recorded_density_peaked_at_the_eigenvalues():
    """A quadratic with eigenvalues −1, 2, 5 (SLQ with order ≥ n is exact): the smoothed density peaks there,
    and the legend gives the negative mass 1/3 · (the probes' weight on that eigenvector)."""
    import jax.numpy as jnp

    a = jnp.asarray(np.diag([-1.0, 2.0, 5.0]))
    prob = sj.problems.Objective(lambda th: 0.5 * th @ a.astype(th.dtype) @ th, params_like=jnp.zeros(3))
    rec = sj.Record(every=5, sharpness=None, measures=[sj.measures.SpectralDensity(order=4, probes=3, every=10)])
    res = sj.sweep(prob, [0.01, 0.1], np.ones((2, 3)) * 1e-3, num_steps=20, record=rec)
    ax = sj.plot.spectral_density(res, lr_index=[0, 1], init_index=1, step=15, sigma=0.1)
    lines = ax.get_lines()
    assert len(lines) == 2 and "t=10" in lines[0].get_label()
    x, y = lines[0].get_data()
    peaks = x[1:-1][(y[1:-1] >= y[:-2]) & (y[1:-1] > y[2:])]  # (a symmetric peak may be two equal points)
    np.testing.assert_allclose(np.sort(peaks), [-1.0, 2.0, 5.0], atol=0.02)
    assert "negative mass 0.33" in lines[0].get_label()  # Rademacher probes weigh each eigenvector equally
    with pytest.raises(ValueError, match="density_nodes"):
        sj.plot.spectral_density(sj.sweep(prob, [0.01], np.ones((1, 3)), num_steps=2), lr_index=0, init_index=0)
    plt.close("all")
