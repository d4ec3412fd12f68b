"""Named grid axes outside the engine: export round trips, plots over any two dims, classification."""

import dataclasses
import itertools
import warnings

import matplotlib

matplotlib.use("Agg")

import jax  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.collections import QuadMesh  # noqa: E402

import sweepjax as sj  # noqa: E402
from sweepjax import _drawing, _export, plot  # noqa: E402
from sweepjax._result import SweepResult  # noqa: E402

FORMATS = ["npz", "nc"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def swept():
    """A real sweep over lr × momentum × seed × init, with diverged runs (η = 3)."""
    p = sj.problems.ProductLoss("sqrt")
    rule = sj.Optax(optax.sgd, momentum=0.0)
    axes = {"momentum": [0.0, 0.5], "seed": [0, 7]}
    return sj.sweep(p, [0.1, 0.5, 3.0], p.init_grid(np.array([1.0, 4.0])), num_steps=20, record=sj.Record(every=5),
                    rule=rule, axes=axes)  # fmt: skip


def assert_same_array(a, b):
    a, b = np.asarray(a), np.asarray(b)
    np.testing.assert_array_equal(a, b, strict=True)  # shapes, dtypes, values (NaN == NaN)
    assert a.tobytes() == b.tobytes()


def assert_same(a, b):
    """Every array bit for bit (as test_export's), the metadata, and the named axes in order with their dtypes."""
    for name in ("lrs", "steps", "status", "diverged_step", "num_steps"):
        assert_same_array(getattr(a, name), getattr(b, name))
    for name in ("records", "final"):
        assert list(getattr(a, name)) == list(getattr(b, name))
        for k in getattr(a, name):
            assert_same_array(getattr(a, name)[k], getattr(b, name)[k])
    for x, y in zip(jax.tree.leaves(a.final_params) + jax.tree.leaves(a.inits),
                    jax.tree.leaves(b.final_params) + jax.tree.leaves(b.inits), strict=True):  # fmt: skip
        assert_same_array(x, y)
    assert a.metadata == b.metadata
    assert_same_axes(a, b)


def assert_same_axes(a, b):
    assert list(a.axes) == list(b.axes) and a.dims == b.dims
    for k in a.axes:
        assert_same_array(a.axes[k], b.axes[k])


def roundtrip(res, fmt, tmp_path):
    return sj.load(res.save(tmp_path / "r") if fmt == "npz" else res.to_netcdf(tmp_path / "r"))


# -- export -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_roundtrip_with_named_axes_is_exact(swept, fmt, tmp_path):
    assert swept.diverged.any() and swept.axes["seed"].dtype == np.uint32
    back = roundtrip(swept, fmt, tmp_path)
    assert_same(swept, back)
    assert back.axes["seed"].dtype == np.uint32 and back.axes["momentum"].dtype == np.float64


def test_xarray_layout_with_named_axes(swept):
    ds = swept.to_xarray()
    grid = ("lr", "momentum", "seed", "init")
    assert ds["loss"].dims == (*grid, "step")
    for name in ("final_loss", "status", "diverged_step", "num_steps"):
        assert ds[name].dims == grid
    assert ds["final_params"].dims == (*grid, "param_dim0") and ds["inits"].dims == ("init", "param_dim0")
    assert ds["seed"].dtype == np.uint32 and ds["seed"].attrs["long_name"] == "random seed of the rule"
    assert ds["momentum"].attrs["long_name"] == "hyperparameter momentum"
    assert_same_array(ds["momentum"].values, swept.axes["momentum"])
    assert ds.attrs["sweepjax_format"] == "sweepjax.SweepResult/2"
    assert_same(swept, sj.SweepResult.from_xarray(ds))
    df = ds[["final_loss", "status"]].to_dataframe()
    assert df.index.names == list(grid) and len(df) == swept.status.size


def test_netcdf_is_readable_by_plain_xarray(swept, tmp_path):
    with xr.open_dataset(swept.to_netcdf(tmp_path / "r"), engine="h5netcdf") as ds:
        assert {"momentum", "seed"} <= set(ds.coords) and ds["final_loss"].dims == ("lr", "momentum", "seed", "init")
        np.testing.assert_array_equal(
            ds["final_loss"].sel(seed=7, momentum=0.5).values, swept.sel(seed=7, momentum=0.5)["final_loss"]
        )


def test_classic_results_keep_format_1(tmp_path):
    p = sj.problems.ProductLoss("sqrt")
    res = sj.sweep(p, [0.1], p.init_grid(np.array([1.0])), num_steps=4, record=sj.Record(every=2))
    with np.load(res.save(tmp_path / "c"), allow_pickle=False) as z:
        assert str(z["__sweepjax_format__"]) == "sweepjax.SweepResult/1"
        assert not any(k == "__axes__" or k.startswith("axes/") for k in z.files)
    assert res.to_xarray().attrs["sweepjax_format"] == "sweepjax.SweepResult/1"
    assert sj.load(tmp_path / "c.npz").axes == {}


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_older_reader_refuses_a_result_with_axes(swept, fmt, tmp_path, monkeypatch):
    path = swept.save(tmp_path / "r") if fmt == "npz" else swept.to_netcdf(tmp_path / "r")
    monkeypatch.setattr(_export, "FORMAT_VERSION", 1)
    with pytest.raises(ValueError, match="version 2"):
        sj.load(path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_axis_names_that_are_not_netcdf_safe_or_clash_come_back_exactly(swept, fmt, tmp_path):
    # hand-made: an axis named like a record ("loss") and one with a space (a parameter group's name)
    axes = {"loss": swept.axes["momentum"], "w 1/b": np.array([3, 1], np.uint32)}
    res = dataclasses.replace(swept, axes=axes)
    ds = res.to_xarray()
    assert ds["status"].dims == ("lr", "loss", "w_1_b", "init") and ds["w_1_b"].attrs["sweepjax_key"] == "w 1/b"
    assert ds["loss_1"].attrs["sweepjax_key"] == "loss"  # the record made way for the axis
    assert_same(res, roundtrip(res, fmt, tmp_path))


# -- plots --------------------------------------------------------------------------------------

LRS = np.array([0.5, 0.1])
LR_IN = np.array([1.0, 0.1, 10.0])  # unsorted, spans two decades: a log axis
LR_OUT = np.array([0.5, 0.25])  # within a decade: linear
SEEDS = np.array([0, 1, 2], np.uint32)
N_INIT = 2


def _result() -> SweepResult:
    shape = (LRS.size, LR_IN.size, LR_OUT.size, SEEDS.size, N_INIT)
    rng = np.random.default_rng(1)
    final_loss = rng.uniform(0.1, 2.0, shape)
    status = np.zeros(shape, np.int8)
    status[1, 2, 0, :, 1] = 1  # every seed of one cell diverged
    status[0, 0, 1, 0, 0] = 1  # one seed of another
    final_loss[status == 1] = np.nan
    loss = rng.uniform(0.1, 2.0, (*shape, 3))
    sharp = rng.uniform(1.0, 10.0, (*shape, 3))
    return SweepResult(
        lrs=LRS, steps=np.array([0, 10, 20]), inits=np.ones((N_INIT, 2)),
        records={"loss": loss, "sharpness": sharp}, final={"loss": final_loss, "sharpness": sharp[..., -1]},
        final_params=np.zeros((*shape, 2)), status=status, diverged_step=np.where(status == 1, 5.0, np.nan),
        num_steps=np.full(shape, 20), metadata={}, axes={"lr_in": LR_IN, "lr_out": LR_OUT, "seed": SEEDS},
    )  # fmt: skip


def _mesh(ax) -> QuadMesh:
    (mesh,) = [c for c in ax.collections if isinstance(c, QuadMesh)]
    return mesh


def _expected(plane: np.ndarray, x_coord, y_coord) -> np.ndarray:
    """An (n_x, n_y) plane as drawn: rows by ascending y, columns by ascending x."""
    return plane[np.ix_(np.argsort(x_coord), np.argsort(y_coord))].T


def test_phase_diagram_over_two_named_axes_draws_the_selected_plane():
    res = _result()
    ax = plot.phase_diagram(res, "final_loss", x="lr_in", y="lr_out", sel={"lr": 0.1, "seed": 2, "init": 1})
    arr = _mesh(ax).get_array()
    plane = res.final["loss"][1, :, :, 2, 1]  # (lr_in, lr_out) at η = 0.1, seed 2, init 1
    want = _expected(plane, LR_IN, LR_OUT)
    np.testing.assert_array_equal(np.ma.getdata(arr)[~arr.mask], want[np.isfinite(want)])
    np.testing.assert_array_equal(np.ma.getmaskarray(arr), _expected(res.diverged[1, :, :, 2, 1], LR_IN, LR_OUT))
    assert ax.get_xscale() == "log" and ax.get_yscale() == "linear"
    assert ax.get_xlabel() == "lr_in" and ax.get_ylabel() == "lr_out"
    coords = _mesh(ax).get_coordinates()
    np.testing.assert_allclose(coords[0, :, 0], _drawing._cell_edges(np.sort(LR_IN), log=True))
    np.testing.assert_allclose(coords[:, 0, 1], _drawing._cell_edges(np.sort(LR_OUT)))
    # res.sel on the named axis is the same; the default dims are lr (x) and init (y)
    again = plot.phase_diagram(res.sel(seed=2), "final_loss", x="lr_in", y="lr_out", sel={"lr": 0.1, "init": 1})
    np.testing.assert_array_equal(_mesh(again).get_array(), arr)
    default = plot.phase_diagram(res.isel(lr_in=1, lr_out=0, seed=0), "final_loss")
    want = _expected(res.final["loss"][:, 1, 0, 0, :], LRS, np.arange(N_INIT))
    np.testing.assert_array_equal(np.ma.getdata(_mesh(default).get_array()), want)
    assert default.get_xlabel() == "step size η" and default.get_xscale() == "log"
    swapped = plot.phase_diagram(res.isel(lr_in=1, lr_out=0, seed=0), "final_loss", x="init")  # y: then lr
    np.testing.assert_array_equal(np.ma.getdata(_mesh(swapped).get_array()), want.T)
    assert swapped.get_ylabel() == "step size η" and swapped.get_yscale() == "log" and swapped.get_xscale() == "linear"


@pytest.mark.parametrize("reduce", ["mean", "median", "min", "max", np.nanmax])
def test_phase_diagram_reduces_the_other_dims_nan_aware(reduce):
    res = _result()
    ax = plot.phase_diagram(res, "final_loss", x="lr_in", y="seed", sel={"lr": 0.5}, reduce=reduce, colorbar=False)
    arr = _mesh(ax).get_array()
    fn = {"mean": np.nanmean, "median": np.nanmedian, "min": np.nanmin, "max": np.nanmax}.get(reduce, reduce)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        plane = fn(res.final["loss"][0], axis=(1, 3))  # (lr_in, seed) over lr_out and init
    want = _expected(plane, LR_IN, SEEDS)
    np.testing.assert_allclose(np.ma.getdata(arr)[~arr.mask], want[np.isfinite(want)])
    # the one diverged seed leaves its cell a value; no cell had all of its runs diverged
    assert np.isfinite(want).all() and not np.ma.getmaskarray(arr).any() and ax.get_yscale() == "linear"


def test_phase_diagram_masks_cells_whose_runs_all_diverged():
    res = _result()
    ax = plot.phase_diagram(res, "final_loss", x="lr_in", y="lr_out", sel={"lr": 0.1, "init": 1}, reduce="mean")
    mask = np.ma.getmaskarray(_mesh(ax).get_array())
    np.testing.assert_array_equal(mask, _expected(res.diverged[1, :, :, :, 1].all(axis=-1), LR_IN, LR_OUT))
    assert mask.sum() == 1 and "diverged (1/6)" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_size_one_dims_are_dropped_and_errors_name_the_dims():
    res = _result()
    ax = plot.phase_diagram(res.isel(lr_in=0).isel(lr_out=1), "final_loss", x="seed", y="init", sel={"lr": 0.5})
    assert _mesh(ax).get_array().shape == (N_INIT, SEEDS.size)
    one = _with_size_one_axis(res.isel(seed=0))
    ax = plot.phase_diagram(one, "final_loss", x="lr_in", y="lr_out", sel={"lr": 0.5, "init": 0})  # "k" (size 1) drops
    assert _mesh(ax).get_array().shape == (LR_OUT.size, LR_IN.size)
    with pytest.raises(ValueError, match=r"'seed' \(3\).*'init' \(2\).*result\.sel\(seed=0\).*reduce="):
        plot.phase_diagram(res, "final_loss", x="lr_in", y="lr_out", sel={"lr": 0.5})
    with pytest.raises(ValueError, match="nor a dim"):
        plot.phase_diagram(res, "final_loss", x="nope")
    with pytest.raises(ValueError, match="both 'lr_in'"):
        plot.phase_diagram(res, "final_loss", x="lr_in", y="lr_in")
    with pytest.raises(ValueError, match=r"sel\['lr_in'\] is drawn"):
        plot.phase_diagram(res, "final_loss", x="lr_in", y="lr_out", sel={"lr_in": 1.0}, reduce="mean")
    with pytest.raises(ValueError, match="reduce must be one of"):
        plot.phase_diagram(res, "final_loss", x="lr_in", y="lr_out", reduce="sum")
    with pytest.raises(ValueError, match="init index"):
        plot.phase_diagram(res, "final_loss", x="lr_in", y="lr_out", sel={"init": 0.5}, reduce="mean")


def _with_size_one_axis(res: SweepResult) -> SweepResult:
    """``res`` with a named axis "k" of size 1 inserted before init."""
    add = lambda a: np.expand_dims(np.asarray(a), len(res.shape) - 1)  # noqa: E731
    return dataclasses.replace(
        res, records={k: add(v) for k, v in res.records.items()}, final={k: add(v) for k, v in res.final.items()},
        final_params=add(res.final_params), status=add(res.status), diverged_step=add(res.diverged_step),
        num_steps=add(res.num_steps), axes={**res.axes, "k": np.array([2.0])},
    )  # fmt: skip


def test_phase_map_with_named_axes_and_mode():
    res = _result()
    codes = np.random.default_rng(2).integers(0, 4, res.shape).astype(np.int8)
    codes[res.diverged] = sj.Phase.DIVERGED
    ax = plot.phase_map(res, codes, x="lr_in", y="lr_out", sel={"lr": 0.1, "seed": 0, "init": 0})
    np.testing.assert_array_equal(_mesh(ax).get_array(), _expected(codes[1, :, :, 0, 0], LR_IN, LR_OUT))
    ax = plot.phase_map(res, codes, x="lr_in", y="lr_out", sel={"lr": 0.1, "init": 1}, reduce="mode")
    runs = codes[1, :, :, :, 1]  # (lr_in, lr_out, seed)
    mode = np.array([[max(set(r.tolist()), key=lambda c: (r.tolist().count(c), c)) for r in row] for row in runs])
    np.testing.assert_array_equal(_mesh(ax).get_array(), _expected(mode, LR_IN, LR_OUT))
    assert mode[2, 0] == sj.Phase.DIVERGED  # every seed diverged there
    with pytest.raises(ValueError, match="mode"):
        plot.phase_map(res, codes, x="lr_in", y="lr_out", reduce="mean")


def test_trajectories_pick_runs_by_named_axes():
    res = _result()
    (ax,) = plot.trajectories(res, lr_index=1, init_index=0, axis_index={"lr_in": 2, "lr_out": 0, "seed": [0, 2]},
                              quantities="loss")  # fmt: skip
    for line, s in zip(ax.get_lines(), [0, 2]):
        np.testing.assert_array_equal(line.get_ydata(), res["loss"][1, 2, 0, s, 0])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["η=0.1, lr_in=10, lr_out=0.5, seed=0, init 0", "η=0.1, lr_in=10, lr_out=0.5, seed=2, init 0"]
    (ax,) = plot.trajectories(res.isel(lr_in=2, lr_out=0), lr_index=1, init_index=0, axis_index={"seed": [0, 2]},
                              quantities="loss")  # fmt: skip
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["η=0.1, seed=0, init 0", "η=0.1, seed=2, init 0"]
    with pytest.raises(ValueError, match=r"named axes \['lr_in', 'lr_out'\].*result\.isel\(lr_in=0, lr_out=0\)"):
        plot.trajectories(res, lr_index=0, init_index=0, axis_index={"seed": 0})
    with pytest.raises(ValueError, match="not named axes"):
        plot.trajectories(res, lr_index=0, init_index=0, axis_index={"b1": 0})


def test_versus_prediction_takes_every_run_of_the_grid():
    res = _result()
    ax = plot.versus_prediction(res, res["final_loss"], log=False)
    assert len(ax.collections[0].get_offsets()) == np.isfinite(res["final_loss"]).sum()


def test_per_init_step_sizes_with_a_named_axis():
    res = _result().isel(lr_out=0, seed=0)  # (lr, lr_in, init)
    cols = np.array([[0.1, 0.2], [0.3, 0.5]])
    res = dataclasses.replace(res, lrs=cols)
    ax = plot.phase_diagram(res, "final_loss", x="lr", y="lr_in", sel={"init": 1}, mask_diverged=False)
    coords = _mesh(ax).get_coordinates()
    np.testing.assert_allclose(coords[0, :, 0], _drawing._cell_edges(cols[:, 1], log=True))  # init 1's step sizes
    np.testing.assert_array_equal(_mesh(ax).get_array(), _expected(res.final["loss"][:, :, 1], cols[:, 1], LR_IN))
    with pytest.raises(ValueError, match="per init"):
        plot.phase_diagram(res, "final_loss", x="lr", y="lr_in", reduce="mean")
    with pytest.raises(ValueError, match="per-init"):
        plot.phase_diagram(res, "final_loss", x="init", y="lr", sel={"lr_in": 1.0})


# -- classification -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def phases_grid():
    """lr × momentum × seed × init with every record (every = 1), so that runs land in several phases."""
    p = sj.problems.ProductLoss("sqrt")
    inits = np.array([[3.0, 4.0], [3.0, 6.0], [1.0, 2.0]], np.float32)
    return sj.sweep(p, [0.05, 0.25, 0.6], inits, num_steps=200, rule=sj.Optax(optax.sgd, momentum=0.0),
                    axes={"momentum": [0.0, 0.3], "seed": [0, 1]})  # fmt: skip


def _slices(res):
    for idx in itertools.product(*(range(v.size) for v in res.axes.values())):
        yield idx, res.isel(**dict(zip(res.axes, idx)))


def test_classify_on_a_4d_grid_equals_classify_on_each_slice(phases_grid):
    res = phases_grid
    codes = sj.classify(res)
    assert codes.shape == res.shape == (3, 2, 2, 3) and len(np.unique(codes)) >= 3
    onset = sj.monotone_onset(res)
    crit = {"eos": sj.criteria.eos(), "diverges": sj.criteria.diverges(), "below": sj.criteria.below("loss", 0.5)}
    on_grid = {k: c(res) for k, c in crit.items()}
    for (m, s), sub in _slices(res):
        np.testing.assert_array_equal(codes[:, m, s], sj.classify(sub))
        np.testing.assert_array_equal(onset[:, m, s], sj.monotone_onset(sub))
        for k, c in crit.items():
            np.testing.assert_array_equal(on_grid[k][:, m, s], c(sub), err_msg=k)


def test_classify_on_a_3d_grid_with_per_init_step_sizes():
    p = sj.problems.ProductLoss("sqrt")
    inits = np.array([[3.0, 4.0], [3.0, 6.0]], np.float32)
    cols = np.array([[0.05, 0.25], [0.25, 0.6]])
    res = sj.sweep(p, cols, inits, num_steps=100, rule=sj.Optax(optax.sgd, momentum=0.0), axes={"momentum": [0.0, 0.5]})
    codes = sj.classify(res)
    rules = sj._phases.phase_rules(res)
    for (m,), sub in _slices(res):
        np.testing.assert_array_equal(codes[:, m], sj.classify(sub))
        for phase, mask in sj._phases.phase_rules(sub).items():
            np.testing.assert_array_equal(rules[phase][:, m], mask)


def test_find_boundary_along_an_axis_refuses_other_named_axes():
    p = sj.problems.ProductLoss("sqrt")
    rule = sj.Optax(optax.sgd, momentum=0.0, nesterov=False)
    with pytest.raises(ValueError, match=r"no other named axes.*\['b1'\]"):
        sj.find_boundary(p, np.array([[1.0, 2.0]]), (0.0, 0.5), "diverges", num_steps=4, along="momentum", lr=0.1,
                         spacing="linear", rule=rule, axes={"b1": [0.9]})  # fmt: skip


@pytest.mark.parametrize("fmt", ["npz", "nc"])
def test_an_axis_with_a_column_per_init_round_trips(tmp_path, fmt):
    import optax

    p = sj.problems.ProductLoss("sqrt")
    inits = np.array([[1.0, 2.0], [0.5, 1.5], [2.0, 0.5]], np.float32)
    cols = np.array([[0.0, 0.1, 0.2], [0.5, 0.6, 0.7]])
    res = sj.sweep(p, [0.05], inits, num_steps=20, record=sj.Record(every=10, sharpness=None),
                   rule=sj.Optax(optax.sgd, momentum=0.0), axes={"momentum": cols})  # fmt: skip
    path = res.save(tmp_path / "r") if fmt == "npz" else res.to_netcdf(tmp_path / "r")
    back = sj.load(path)
    np.testing.assert_array_equal(back.axes["momentum"], cols)
    assert back.dims == res.dims
    np.testing.assert_array_equal(back.records["loss"], res.records["loss"])
    if fmt == "nc":
        import xarray as xr

        ds = xr.open_dataset(path, engine="h5netcdf")
        assert ds["momentum_value"].dims == ("momentum", "init")
        ds.close()
