"""A step size and a step budget per run (``lrs`` and ``max_steps`` shaped like the grid (lr, *axes, init)),
λ₀ per run slot (``initial_sharpness``), and the boundary search over named axes with a bracket per slot,
on f = ½a‖θ‖² with ``a`` a named axis: λ_max = a, and GD's loss grows iff η > 2/a."""

import matplotlib

matplotlib.use("Agg")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import QuadMesh  # noqa: E402

import sweepjax as sj  # noqa: E402
from sweepjax import plot  # noqa: E402


def assert_same_array(a, b):
    a, b = np.asarray(a), np.asarray(b)
    np.testing.assert_array_equal(a, b, strict=True)
    assert a.tobytes() == b.tobytes()


class ScaledQuadratic(sj.problems.AbstractProblem):
    """f(θ) = ½ a ‖θ‖²: λ_max = a, and GD's loss grows iff η > 2/a."""

    a: jax.Array

    def __init__(self, a=1.0):
        self.a = jnp.asarray(a, jnp.float32)

    def loss(self, params):
        return 0.5 * self.a * jnp.sum(params**2)


def grows(res):
    """The loss rose over the run: |1 − ηa| > 1, i.e. η > 2/a exactly, whatever the number of steps."""
    return res["final_loss"] > res["initial_loss"]


def test_a_step_size_per_run_equals_separate_sweeps_and_round_trips(tmp_path):
    """lrs shaped like the grid (lr, a, init): each run gets its own η; the same bits as a sweep per axis
    value with per-init columns (one vmap width), and the step sizes survive isel, sel and export."""
    p, a = ScaledQuadratic(), np.array([1.0, 4.0])
    inits = np.array([[1.0, -2.0], [0.5, 0.25], [3.0, 1.0]], np.float32)
    lam0 = sj.initial_sharpness(p, inits, axes={"a": a}, sharpness=sj.DenseEigh())
    np.testing.assert_allclose(lam0, np.broadcast_to(a[:, None], (2, 3)), rtol=1e-6)
    c = np.array([0.5, 1.5, 2.5])
    lrs = c[:, None, None] / lam0[None]
    kw = dict(num_steps=6, record=sj.Record(every=2, sharpness=sj.DenseEigh()), batch_size=1)
    res = sj.sweep(p, lrs, inits, axes={"a": a}, **kw)
    assert res.shape == (3, 2, 3) and res.lrs.shape == (3, 2, 3)
    np.testing.assert_array_equal(grows(res), np.broadcast_to(c[:, None, None] > 2, res.shape))
    for i, ai in enumerate(a):
        one = sj.sweep(ScaledQuadratic(float(ai)), lrs[:, i], inits, **kw)
        sub = res.isel(a=i)
        assert_same_array(sub.lrs, one.lrs)
        for k in one.records:
            assert_same_array(sub.records[k], one.records[k])
        assert_same_array(res.sel(a=ai).lrs, lrs[:, i])
    np.testing.assert_array_equal(sj._phases._lr_grid(res), lrs)
    for path in (res.save(tmp_path / "r"), res.to_netcdf(tmp_path / "r")):
        back = sj.load(path)
        assert_same_array(back.lrs, res.lrs)
        assert_same_array(back.records["loss"], res.records["loss"])
    ds = res.to_xarray()
    assert ds["lr_value"].dims == ("lr", "a", "init")
    with pytest.raises(ValueError, match=r"lrs with a value per run must have the grid's shape .* = \(3, 2, 3\)"):
        sj.sweep(p, lrs[:, :1], inits, axes={"a": a}, num_steps=2)
    with pytest.raises(ValueError, match="per-init lrs"):
        sj.sweep(p, lrs[..., :2], inits, axes={"a": a}, num_steps=2)


def test_find_boundary_over_named_axes_with_a_bracket_per_run():
    """The critical η of f = ½a‖θ‖² is 2/a: one search over (a, init) cells, each with its own bracket."""
    p, a = ScaledQuadratic(), np.array([0.5, 2.0, 8.0])
    inits = np.array([[1.0, -2.0], [0.5, 0.25]], np.float32)
    lo = 0.4 / a[:, None] * np.ones((1, 2))
    b = sj.find_boundary(p, inits, (lo, 10 * lo), grows, num_steps=4, rounds=12, axes={"a": a},
                         record=sj.Record(every=2, sharpness=None))  # fmt: skip
    assert b.lr.shape == b.found.shape == (3, 2) and b.brackets.shape == (b.num_sweeps + 1, 2, 3, 2)
    assert b.found.all() and not b.value_at_lo.any()
    np.testing.assert_allclose(b.lr * a[:, None], 2.0, rtol=2e-3)
    assert np.all((b.lo * a[:, None] <= 2.0 + 1e-6) & (2.0 - 1e-6 <= b.hi * a[:, None]))  # (η is cast to float32)
    assert repr(b).startswith("Boundary(shape=(3, 2), found=6/6")
    # the same cells as separate searches, bit for bit
    for i, ai in enumerate(a):
        one = sj.find_boundary(ScaledQuadratic(float(ai)), inits, (lo[i], 10 * lo[i]), grows, num_steps=4, rounds=12,
                               record=sj.Record(every=2, sharpness=None))  # fmt: skip
        np.testing.assert_allclose(one.lr, b.lr[i], rtol=1e-12)
    with pytest.raises(ValueError, match=r"broadcast to \(\*axis sizes, n_init\) = \(3, 2\)"):
        sj.find_boundary(p, inits, (np.ones(3), 2 * np.ones(3)), grows, num_steps=4, axes={"a": a})


def test_plots_of_a_result_with_a_step_size_per_run():
    """η per run is drawn once every dim but lr (and init) is fixed; otherwise the error says what to select."""
    p, a = ScaledQuadratic(), np.array([1.0, 4.0])
    inits = np.array([[1.0, -2.0], [0.5, 0.25], [3.0, 1.0]], np.float32)
    lrs = np.array([0.5, 1.5, 2.5])[:, None, None] / np.broadcast_to(a[:, None], (2, 3))[None]
    res = sj.sweep(p, lrs, inits, axes={"a": a}, num_steps=4, record=sj.Record(every=2, sharpness=sj.DenseEigh()))
    fig, ax = plt.subplots()
    plot.phase_diagram(res, "final_loss", ax, x="lr", y="init", sel={"a": 4.0})
    mesh = next(c for c in ax.collections if isinstance(c, QuadMesh))
    assert np.asarray(mesh.get_array()).size == 9
    plot.phase_diagram(res, "final_loss", ax, x="lr", y="a", sel={"init": 1})
    with pytest.raises(ValueError, match=r"step size per run.*\['a'\]"):
        plot.phase_diagram(res, "final_loss", ax, x="lr", y="init", reduce="mean")
    plt.close(fig)


def test_a_step_budget_per_run_from_a_time_horizon():
    """max_steps shaped like the grid (``time_horizon`` of per-run step sizes): each run stops at its own
    ⌈H/η⌉, where f = ½a‖θ‖² is exactly (1 − ηa)^{2T} f(θ₀); the boundary search over axes takes a horizon too."""
    p, a = ScaledQuadratic(), np.array([1.0, 4.0])
    inits = np.array([[1.0, -2.0], [0.5, 0.25]], np.float32)
    c = np.array([0.3, 0.9, 1.7])
    lrs = c[:, None, None] / np.broadcast_to(a[:, None], (2, 2))[None]
    budgets = sj.time_horizon(lrs, 3.0)
    assert budgets.shape == lrs.shape and np.all(budgets == np.ceil(3.0 / lrs - 1e-9))
    every_step = sj.Record(every=1, sharpness=None)
    res = sj.sweep(p, lrs, inits, axes={"a": a}, max_steps=budgets, record=every_step, dtype=jnp.float64)
    np.testing.assert_array_equal(res.num_steps, budgets)
    expect = (1 - c[:, None, None]) ** (2 * budgets) * res["initial_loss"]
    np.testing.assert_allclose(res.final["loss"], expect, rtol=1e-10)
    last = np.take_along_axis(res["loss"], budgets[..., None], axis=-1)[..., 0]
    np.testing.assert_allclose(last, expect, rtol=1e-10)
    assert np.all(np.isnan(res["loss"][0, 1, 0, budgets[0, 1, 0] + 1 :]))  # NaN past each run's own budget
    with pytest.raises(ValueError, match=r"max_steps with a value per run must have the grid's shape"):
        sj.sweep(p, lrs, inits, axes={"a": a}, max_steps=budgets[:, :1])
    b = sj.find_boundary(p, inits, (0.4 / a[:, None], 4.0 / a[:, None]), grows, horizon=8.0, rounds=10, axes={"a": a},
                         record=sj.Record(every=1, sharpness=None))  # fmt: skip
    np.testing.assert_allclose(b.lr * a[:, None], 2.0, rtol=5e-3)
