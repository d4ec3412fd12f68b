"""Boundary search against closed forms: quadratics diverge past 2/λ, cosh's 2-cycle at 2w₀/sinh w₀."""

import math
from unittest import mock

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import sweepjax as sj
from sweepjax._trajectory import Trajectory
from sweepjax.problems import Objective, ProductLoss

A_DIAG = jnp.array([4.0, 1.0, 0.25])


def quad_loss(theta):
    """½ θᵀ diag(4, 1, ¼) θ."""
    return 0.5 * jnp.sum(A_DIAG * theta**2)


QUAD = Objective(quad_loss, params_like=jnp.zeros(3))
# GD on a diagonal quadratic leaves a zero component at zero, so each init's critical η is 2/λ of its
# top occupied mode: 2/4, 2/1, 2/¼; the zero init never diverges.
QUAD_INITS = jnp.array([[1.0, 1.0, 1.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
QUAD_CRITICAL = np.array([0.5, 2.0, 8.0])


def cosh_loss(w):
    """Exponential loss on the data {(1, +1), (1, −1)}: ½(e^{−w} + e^{w}) = cosh w."""
    return 0.5 * (jnp.exp(-w[0]) + jnp.exp(w[0]))


COSH = Objective(cosh_loss, params_like=jnp.zeros(1), observables={"abs_w": lambda w: jnp.abs(w[0])})
W0 = np.array([0.5, 1.0, 1.5, 2.5])
COSH_CRITICAL = 2 * W0 / np.sinh(W0)  # |w| shrinks iff η sinh(w)/w < 2


def did_not_converge(res):
    """Final |w| ≥ |w₀| (or diverged): GD w ← w − η sinh w did not shrink |w|."""
    w0 = np.abs(np.asarray(res.inits)[:, 0])
    with np.errstate(invalid="ignore"):
        return res.diverged | (res.final["abs_w"] >= w0[None])


def test_quadratic_divergence_boundary_per_init():
    b = sj.find_boundary(QUAD, QUAD_INITS, (0.1, 20.0), "diverges", rounds=6, points=3, **QUAD_KW)
    np.testing.assert_array_equal(b.found, [True, True, True, False])
    np.testing.assert_allclose(b.lr[:3], QUAD_CRITICAL, rtol=5e-3)
    assert np.all(b.width[:3] < 5e-3)
    assert np.isnan(b.lr[3]) and np.isnan(b.lo[3]) and np.isnan(b.width[3])
    assert not b.value_at_lo.any()  # converges at lo; the zero init converges everywhere
    assert b.num_sweeps == 6 and "diverges" in b.criterion and "3/4" in repr(b)


QUAD_KW = {"num_steps": 2000, "divergence_threshold": 1e3}  # one compiled shape shared by these tests


@pytest.mark.parametrize("points, rounds", [(1, 6), (3, 3)])
def test_bracket_shrinks_by_points_plus_one_in_log_per_round(points, rounds):
    lo0, hi0 = 0.1, 20.0
    b = sj.find_boundary(QUAD, QUAD_INITS, (lo0, hi0), "diverges", rounds=rounds, points=points, **QUAD_KW)
    assert b.brackets.shape == (rounds + 1, 2, 4) and b.num_sweeps == rounds
    log_width = np.log(b.brackets[:, 1] / b.brackets[:, 0])  # (rounds + 1, n_init)
    expected = math.log(hi0 / lo0) / (points + 1) ** np.arange(rounds + 1)
    np.testing.assert_allclose(log_width[:, :3], np.repeat(expected[:, None], 3, axis=1), rtol=1e-9)
    np.testing.assert_allclose(log_width[:, 3], math.log(hi0 / lo0))  # not found: the bracket is kept
    # nested brackets
    assert np.all(b.brackets[1:, 0, :3] >= b.brackets[:-1, 0, :3] * (1 - 1e-12))
    assert np.all(b.brackets[1:, 1, :3] <= b.brackets[:-1, 1, :3] * (1 + 1e-12))


def test_cosh_two_cycle_boundary_closed_form():
    b = sj.find_boundary(COSH, W0[:, None], (0.2, 5.0), did_not_converge, num_steps=50, rounds=6, points=3)
    assert b.found.all() and b.num_sweeps == 6
    assert np.all((b.lo <= COSH_CRITICAL) & (COSH_CRITICAL <= b.hi))  # the exact η_c stays bracketed
    rel = np.abs(b.lr / COSH_CRITICAL - 1)
    assert rel.max() < 5e-3  # float32: the criterion is exact after one step, so this is the width
    np.testing.assert_allclose(b.width, (5.0 / 0.2) ** (1 / 4**6) - 1, rtol=1e-9)
    assert b.width.max() < 1e-3


def test_cosh_boundary_with_a_time_horizon_and_one_compile_after_the_first_round():
    calls = []
    original = Trajectory.segment

    def counting(self, *args, **kwargs):
        calls.append(self.num_steps)
        return original(self, *args, **kwargs)

    with mock.patch.object(Trajectory, "segment", counting):
        b = sj.find_boundary(COSH, W0[:, None], (0.2, 5.0), did_not_converge, horizon=10.0, rounds=4, points=2)
    # first round (lo, 2 interior points, hi), then 2 rows per round: two shapes, one scan length ⌈10/0.2⌉
    assert calls == [50, 50]
    assert b.found.all() and np.all((b.lo <= COSH_CRITICAL) & (COSH_CRITICAL <= b.hi))


def test_criterion_true_below_the_boundary_works_too():
    converges = lambda res: ~res.diverged  # noqa: E731
    b = sj.find_boundary(QUAD, QUAD_INITS, (0.1, 20.0), converges, rounds=6, **QUAD_KW)
    np.testing.assert_array_equal(b.found, [True, True, True, False])
    assert b.value_at_lo.all()
    np.testing.assert_allclose(b.lr[:3], QUAD_CRITICAL, rtol=5e-3)


def test_tol_stops_early_and_nothing_found_stops_after_one_sweep():
    b = sj.find_boundary(COSH, W0[:, None], (0.2, 5.0), did_not_converge, num_steps=50, rounds=20, tol=0.01)
    assert b.num_sweeps == 5 and np.all(b.width <= 0.01)  # 25^(1/4^5) − 1 ≈ 0.3% ≤ 1% < 25^(1/4^4) − 1 ≈ 1.3%
    never = sj.find_boundary(QUAD, QUAD_INITS, (0.1, 0.4), "diverges", rounds=5, **QUAD_KW)
    assert not never.found.any() and np.isnan(never.lr).all() and never.num_sweeps == 1
    assert not never.value_at_lo.any()
    always = sj.find_boundary(QUAD, QUAD_INITS, (10.0, 20.0), "diverges", rounds=5, **QUAD_KW)
    assert not always.found.any() and always.value_at_lo.tolist() == [True, True, True, False]


def test_below_and_above_criteria():
    # final |w| after 20 steps: small where η < η_c (converging), large or diverged above
    res = sj.sweep(COSH, [0.5, 3.0], np.array([[1.0]]), num_steps=20, record=sj.Record(sharpness=None))
    assert res.diverged.tolist() == [[False], [True]]
    assert sj.criteria.below("abs_w", 0.5)(res).tolist() == [[True], [False]]
    assert sj.criteria.above("abs_w", 0.5)(res).tolist() == [[False], [False]]  # diverged counts False
    assert sj.criteria.above("abs_w", 0.5, diverged=True)(res).tolist() == [[False], [True]]
    assert sj.criteria.diverges()(res).tolist() == [[False], [True]]
    assert "below(name='abs_w', level=0.5" in repr(sj.criteria.below("abs_w", 0.5))
    with pytest.raises(ValueError, match="'nope'"):
        sj.criteria.below("nope", 0.0)(res)
    # above(..., diverged=True) is the built-in way to say "did not converge" at one level
    b = sj.find_boundary(COSH, W0[:, None], (0.2, 5.0), sj.criteria.above("abs_w", 1.5, diverged=True),
                         num_steps=50, rounds=4)  # fmt: skip
    assert b.found[2] and abs(b.lr[2] / COSH_CRITICAL[2] - 1) < 5e-3  # W0[2] = 1.5


def test_named_eos_criterion_on_product_loss():
    # ℓ = √(1+s²) from (3, 6): GF would end at sharpness 27, so EoS needs 2/η ≲ 27, η ≳ 0.074
    b = sj.find_boundary(ProductLoss("sqrt"), jnp.array([[3.0, 6.0]]), (0.03, 0.2), "eos", num_steps=1000,
                         rounds=2, points=3)  # fmt: skip
    assert b.found[0] and not b.value_at_lo[0]
    assert 2 / 27 <= b.lr[0] <= 1.3 * 2 / 27
    assert repr(sj.criteria.REGISTRY["eos"](eos_tol=0.1)) == "criteria.eos(eos_tol=0.1)"


def test_registry_names_and_constructors():
    assert set(sj.criteria.REGISTRY) == {"diverges", "eos", "catapults"}
    for name, make in sj.criteria.REGISTRY.items():
        assert isinstance(make(), sj.criteria.Criterion) and make().name == name
    assert sj.criteria.is_phase(sj.Phase.LAZY).needs_sharpness
    assert not sj.criteria.is_phase(sj.Phase.LAZY, curvature="ntk").needs_sharpness
    with pytest.raises(ValueError, match="unknown classify thresholds"):
        sj.criteria.eos(tolerance=0.1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"bracket": (2.0, 1.0)}, "lo < hi"),
        ({"bracket": (1.0, 1.0)}, "lo < hi"),
        ({"bracket": (0.0, 1.0)}, "positive and finite"),
        ({"bracket": (-1.0, 1.0)}, "positive and finite"),
        ({"bracket": (0.1, float("inf"))}, "positive and finite"),
        ({"bracket": (0.1,)}, "bracket"),
        ({"criterion": "nope"}, "unknown criterion 'nope'"),
        ({"criterion": "below"}, r"criteria.below\(name, level\)"),
        ({"criterion": 3}, "criterion"),
        ({"rounds": 0}, "rounds"),
        ({"rounds": 2.0}, "rounds"),
        ({"points": 0}, "points"),
        ({"num_steps": None}, "num_steps"),
        ({"num_steps": None, "horizon": -1.0}, "horizon"),
        ({"tol": 0.0}, "tol"),
        ({"max_steps": 5}, "max_steps"),
        ({"criterion": "eos", "record": sj.Record(sharpness=None)}, "sharpness"),
    ],
)
def test_bad_inputs_raise_before_any_sweep(kwargs, match):
    args = {"bracket": (0.1, 1.0), "criterion": "diverges", "num_steps": 10, **kwargs}
    with mock.patch("sweepjax._boundary.sweep", side_effect=AssertionError("swept")):
        with pytest.raises(ValueError, match=match):
            sj.find_boundary(QUAD, QUAD_INITS, args.pop("bracket"), args.pop("criterion"), **args)


def test_criterion_of_the_wrong_shape_raises():
    with pytest.raises(ValueError, match=r"criterion .*<lambda> returned shape \(4,\), dtype bool"):
        sj.find_boundary(QUAD, QUAD_INITS, (0.1, 1.0), lambda res: res.diverged[0], num_steps=10)


def test_criterion_returning_values_instead_of_bools_raises_type_error():
    # a float array used to be accepted and report found=0 silently
    match = r"criterion .*<lambda> must return .* bool array, got shape \(5, 4\), dtype float32"
    with pytest.raises(TypeError, match=match):
        sj.find_boundary(QUAD, QUAD_INITS, (0.1, 1.0), lambda r: r["final_loss"], num_steps=10)

    def as_ints(res):
        return res.diverged.astype(int)

    with pytest.raises(TypeError, match="as_ints.*dtype int"):
        sj.find_boundary(QUAD, QUAD_INITS, (0.1, 1.0), as_ints, num_steps=10)


def test_criteria_accept_every_name_result_getitem_accepts():
    res = sj.sweep(COSH, [0.5, 3.0], np.array([[1.0]]), num_steps=20, record=sj.Record(sharpness=None))
    for name in ("abs_w", "final_abs_w"):
        assert sj.criteria.below(name, 0.5)(res).tolist() == [[True], [False]]
    np.testing.assert_array_equal(sj.criteria.above("loss", 1.2)(res), sj.criteria.above("final_loss", 1.2)(res))
    assert sj.criteria.above("initial_abs_w", 0.5)(res).tolist() == [[True], [False]]  # diverged counts False
    with pytest.raises(ValueError, match="'nope' is not in the result"):
        sj.criteria.above("nope", 0.0)(res)


@pytest.mark.parametrize(
    "criterion, record, match",
    [
        (sj.criteria.above("nope", 1.0), None, "reads 'nope'.*records \\['abs_w', 'loss'\\]"),
        (sj.criteria.above("final_nope", 1.0), None, "reads 'final_nope'"),
        (sj.criteria.above("sharpness", 1.0), None, "reads 'sharpness'"),  # the default record has no sharpness
        (sj.criteria.above("sharpness_residual", 1.0), sj.Record(), "reads 'sharpness_residual'"),  # DenseEigh
        (sj.criteria.below("abs_w", 1.0), sj.Record(observables=False), "observables=False"),
        (sj.criteria.eos(curvature="ntk"), None, "reads 'ntk'"),
    ],
)
def test_unknown_criterion_names_raise_before_any_sweep(criterion, record, match, trace_counter):
    with mock.patch("sweepjax._boundary.sweep", side_effect=AssertionError("swept")):
        with pytest.raises(ValueError, match=match):
            sj.find_boundary(COSH, W0[:, None], (0.2, 5.0), criterion, num_steps=10, record=record)
    assert trace_counter == []  # nothing was compiled


def test_known_criterion_names_pass_the_check():
    seen = []
    with mock.patch("sweepjax._boundary.sweep", side_effect=lambda *a, **k: seen.append(1) or _raise()):
        for name in ("final_loss", "loss", "initial_abs_w", "final_abs_w", "sharpness"):
            with pytest.raises(_Swept):
                sj.find_boundary(COSH, W0[:, None], (0.2, 5.0), sj.criteria.above(name, 1.0), num_steps=10,
                                 record=sj.Record())  # fmt: skip
        with pytest.raises(_Swept):  # an observable as the curvature
            sj.find_boundary(COSH, W0[:, None], (0.2, 5.0), sj.criteria.eos(curvature="abs_w"), num_steps=10)
    assert len(seen) == 6


class _Swept(Exception):
    pass


def _raise():
    raise _Swept


def test_horizon_budgets_are_ceil_horizon_over_lr_capped_by_num_steps():
    seen = []
    original = sj.sweep

    def spy(problem, lrs, inits, **kwargs):
        seen.append((kwargs["num_steps"], np.asarray(kwargs["max_steps"])[:, 0].tolist(), np.asarray(lrs)[:, 0]))
        return original(problem, lrs, inits, **kwargs)

    crit = sj.criteria.above("abs_w", 1.0, diverged=True)
    record = sj.Record(every=4, sharpness=None)
    with mock.patch("sweepjax._boundary.sweep", spy):
        sj.find_boundary(COSH, np.array([[1.0]]), (0.2, 5.0), crit, horizon=10.0, rounds=2, points=1, record=record)
        sj.find_boundary(COSH, np.array([[1.0]]), (0.2, 5.0), crit, horizon=10.0, num_steps=20, rounds=1, points=1,
                         record=record)  # fmt: skip
    # scan length ⌈10/0.2⌉ = 50 rounded up to a multiple of every = 52, fixed across rounds
    assert [s[0] for s in seen] == [52, 52, 20]
    assert seen[0][1] == [50, 10, 2] and seen[1][1] == [5]  # ⌈10/η⌉ at η = 0.2, 1, 5 and then √5
    np.testing.assert_allclose(seen[1][2], [math.sqrt(5.0)])
    assert seen[2][1] == [20, 10, 2]  # num_steps caps the budgets


# ------------------------------------------------------------------------- along a named axis (issue 12)

_DIAG = np.array([1.0, 4.0])


def _two_modes(theta):
    """½(θ₁² + 4θ₂²): the modes λ = 1 and 4."""
    return 0.5 * jnp.sum(jnp.asarray(_DIAG, theta.dtype) * theta**2)


def test_the_heavy_ball_edge_along_the_momentum_axis():
    """Heavy-ball GD (optax.sgd's trace) on a mode λ is stable iff ηλ < 2 + 2β: at η = 0.7 the λ = 4 mode
    diverges for β < ηλ/2 − 1 = 0.4; an init with no weight on it never diverges (not found)."""
    quad = sj.problems.Objective(_two_modes, params_like=jnp.zeros(2))
    inits = np.array([[1.0, 1.0], [0.5, -0.2], [1.0, 0.0]])
    b = sj.find_boundary(quad, inits, (0.0, 0.95), "diverges", along="momentum", spacing="linear", lr=0.7,
                         num_steps=3000, rounds=8, rule=sj.Optax(optax.sgd, momentum=0.0))  # fmt: skip
    assert b.along == "momentum" and list(b.found) == [True, True, False]
    np.testing.assert_allclose(b.value[:2], 0.4, atol=0.005)
    assert np.all(b.value_at_lo[:2])  # diverging at β = 0, stable above the edge
    assert np.all(b.hi[:2] - b.lo[:2] < 1e-3) and np.all(b.width[:2] == b.hi[:2] - b.lo[:2])


def test_a_per_layer_step_multiplier_edge_is_2_over_eta_lambda():
    def loss(p):
        return 0.5 * (3.0 * p["a"] ** 2 + p["b"] ** 2)

    prob = sj.problems.Objective(loss, params_like={"a": jnp.zeros(()), "b": jnp.zeros(())})
    inits = {"a": np.array([1.0, 0.5]), "b": np.array([1.0, 2.0])}
    rule = sj.GD(groups={"a": "m_a", "b": "m_b"})
    b = sj.find_boundary(prob, inits, (0.1, 10.0), "diverges", along="m_a", lr=0.2, num_steps=2000, rounds=6, rule=rule)
    np.testing.assert_allclose(b.value, 2 / (0.2 * 3.0), rtol=0.02)  # η m_a λ_a = 2


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(along="momentum"), "needs the step size"),
        (dict(along="momentum", lr=0.1, horizon=10.0), "horizon"),
        (dict(spacing="linear"), "spacing must be 'log'"),
        (dict(lr=0.1), "lr= fixes"),
        (dict(along="momentum", lr=0.1, spacing="cubic"), "spacing must be"),
    ],
)
def test_a_search_along_an_axis_checks_its_arguments(kwargs, match):
    quad = sj.problems.Objective(_two_modes, params_like=jnp.zeros(2))
    kwargs = {"num_steps": 10, **kwargs}
    with pytest.raises(ValueError, match=match):
        sj.find_boundary(quad, np.ones((1, 2)), (0.1, 0.9), "diverges", rule=sj.Optax(optax.sgd, momentum=0.0), **kwargs)
