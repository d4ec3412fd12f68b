"""cohen-progressive-sharpening (quick) on its headline numbers, and the bifurcation helper (late_values,
sj.plot.bifurcation) against GD on the double well f(x) = ¼(x² − 1)², whose orbits are known in closed form:
x ← g(x) = x + ηx(1 − x²) has the fixed point x = 1 (stable for η < 1: g'(1) = 1 − 2η) and, for η > 1, the
period-2 orbit x² = ((η + 1) ± √((η − 1)(η + 3)))/(2η) (the quartic factor of g(g(x)) − x)."""

import matplotlib

matplotlib.use("Agg")


import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import sweepjax as sj  # noqa: E402
from sweepjax._bifurcation import late_values, num_late  # noqa: E402
from sweepjax.experiments._progressive import (  # noqa: E402
    ACTIVATION_CODES,
    activation,
    first_crossing,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_activation_code_selects_tanh_or_elu_exactly():
    z = jnp.linspace(-3.0, 3.0, 13)
    np.testing.assert_array_equal(activation(jnp.int32(ACTIVATION_CODES["tanh"]), z), jnp.tanh(z))
    np.testing.assert_array_equal(activation(jnp.int32(ACTIVATION_CODES["elu"]), z), jnp.where(z > 0, z, jnp.expm1(z)))


def test_first_crossing():
    assert first_crossing(np.array([1.0, 3.0, 4.0, 5.0]), 0.5) == 2  # 2/η = 4
    assert first_crossing(np.array([1.0, 3.0]), 0.5) is None


# --------------------------------------------------------------------------- bifurcation: the double well

LRS = np.array([0.5, 0.9, 1.1, 1.2, 2.5])  # fixed point, fixed point, period 2, period 2, divergence
STEPS, EVERY = 400, 4


def _well(theta):
    return 0.25 * (theta[0] ** 2 - 1.0) ** 2


def _x(theta):
    return theta[0]


@pytest.fixture(scope="module")
def well():
    problem = sj.problems.Objective(_well, params_like=np.zeros(1), observables={"x": _x})
    return sj.sweep(problem, LRS, np.array([[0.5], [0.7]]), num_steps=STEPS,
                    record=sj.Record(every=EVERY, sharpness=None), dtype=jnp.float64)  # fmt: skip


def _period_two(eta: float) -> np.ndarray:
    """The period-2 orbit's two x > 0 (ascending), from η²x⁴ − (η² + η)x² + 1 = 0."""
    root = np.sqrt((eta - 1) * (eta + 3))
    return np.sqrt(np.array([(eta + 1) - root, (eta + 1) + root]) / (2 * eta))


@pytest.mark.parametrize("eta", [1.1, 1.2])
def test_the_period_two_orbit_is_an_orbit_and_stable(eta):
    a, b = _period_two(eta)
    g = lambda x: x + eta * x * (1 - x**2)  # noqa: E731
    assert g(a) == pytest.approx(b, rel=1e-12) and g(b) == pytest.approx(a, rel=1e-12)
    slope = lambda x: 1 + eta - 3 * eta * x**2  # noqa: E731
    assert abs(slope(a) * slope(b)) < 1  # attracting: what GD ends on


def test_num_late():
    assert num_late(101, 0.2) == 21 and num_late(10, 0.2) == 2 and num_late(10, 1.0) == 10 and num_late(3, 0.01) == 1
    for bad in (0, -0.1, 1.5, True, "0.2"):
        with pytest.raises(ValueError, match="fraction"):
            num_late(10, bad)


def test_late_values_are_the_fixed_point_then_the_period_two_orbit(well):
    late = late_values(well, "x", fraction=0.2)
    n_record = STEPS // EVERY + 1
    assert late.shape == (LRS.size, 2, num_late(n_record, 0.2))
    np.testing.assert_array_equal(late, well["x"][..., -late.shape[-1] :])
    for i in (0, 1):  # η < 1: the fixed point x = 1, loss 0
        np.testing.assert_allclose(late[i], 1.0, atol=1e-9)
        np.testing.assert_allclose(late_values(well, "loss")[i], 0.0, atol=1e-15)
    for i in (2, 3):  # η > 1: both points of the period-2 orbit, recorded every EVERY = 4 steps: one of them per run
        orbit = _period_two(LRS[i])
        for j in range(2):
            values = np.unique(np.round(late[i, j], 9))
            assert values.size == 1 and np.min(np.abs(values[0] - orbit)) < 1e-9  # every 4th step: one point
    assert well.diverged[4].all() and np.all(np.isnan(late[4]))


def test_late_values_on_every_step_see_both_points():
    problem = sj.problems.Objective(_well, params_like=np.zeros(1), observables={"x": _x})
    res = sj.sweep(problem, [1.2], np.array([[0.5]]), num_steps=301, record=sj.Record(every=1, sharpness=None),
                   dtype=jnp.float64)  # fmt: skip
    late = late_values(res, "x", fraction=0.1)[0, 0]
    np.testing.assert_allclose(np.sort(np.unique(np.round(late, 9))), _period_two(1.2), atol=1e-9)


def test_late_values_refuse_bad_quantities(well):
    with pytest.raises(ValueError, match="unknown record"):
        late_values(well, "nope")
    with pytest.raises(ValueError, match="scalar record"):
        late_values(well, np.zeros((LRS.size, 2)))
    with pytest.raises(ValueError, match="trailing dims"):
        late_values(well, np.zeros((*well["x"].shape, 3)))


def test_plot_bifurcation_scatters_the_late_values_and_marks_divergence(well):
    ax = sj.plot.bifurcation(well, "x", fraction=0.2, init_index=0)
    assert ax.get_xscale() == "log"
    dots, marks = ax.collections[0], ax.collections[1]
    late = late_values(well, "x", 0.2)[:, 0]
    k = late.shape[-1]
    expected = np.stack([np.repeat(LRS[:4], k), late[:4].ravel()], axis=1)  # lr-major, then record order
    np.testing.assert_allclose(dots.get_offsets(), expected)
    np.testing.assert_allclose(np.asarray(marks.get_offsets())[:, 0], [2.5])  # the diverged run, on the η axis
    assert "diverged" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert "last" in ax.get_ylabel() and "x" in ax.get_ylabel()


def test_plot_bifurcation_of_an_array_for_every_init(well):
    scaled = well["loss"] * well.lrs[:, None, None]
    _, ax = plt.subplots()
    out = sj.plot.bifurcation(well, scaled, ax, fraction=0.5, init_index=None, log_x=False, label="η·loss",
                              mark_diverged=False)  # fmt: skip
    assert out is ax and ax.get_xscale() == "linear" and ax.get_ylabel() == "η·loss"
    assert len(ax.collections) == 2  # one per init, no divergence marks
    k = num_late(len(well.steps), 0.5)
    for j, coll in enumerate(ax.collections):
        np.testing.assert_allclose(np.asarray(coll.get_offsets())[:, 1], scaled[:4, j, -k:].ravel())
    with pytest.raises(ValueError, match="init_index"):
        sj.plot.bifurcation(well, "x", init_index=5)
