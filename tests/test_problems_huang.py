"""Huang et al.'s linear predictor and two-layer linear net: closed forms, NTK, bad inputs, phases via sj.sweep."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import sweepjax as sj
from sweepjax.problems import REGISTRY, LinearPredictor, TwoLayerLinear
from sweepjax.problems._base import describe


def test_registered():
    assert REGISTRY["linear_predictor"] is LinearPredictor and REGISTRY["two_layer_linear"] is TwoLayerLinear


@eqx.filter_jit
def _evaluate(problem, params):
    return problem.loss(params), problem.observables(params)


@pytest.mark.parametrize("loss", ["exp", "logistic"])
def test_generic(loss):
    X, y = sj.datasets.huang_nonseparable()
    for problem in (LinearPredictor(X, y, loss), LinearPredictor(X[:, 0], y, loss), TwoLayerLinear(X, y, 4, loss)):
        points = problem.init(jax.random.key(0), 3)
        same = jax.tree.map(lambda s, a: tuple(s.shape) == a.shape[1:], problem.param_shapes(), points)
        assert all(jax.tree.leaves(same))
        one = jax.tree.map(lambda a: a[0], points)
        loss, obs = _evaluate(problem, one)
        assert jnp.shape(loss) == () and jnp.isfinite(loss)
        assert {"ntk", "margin", "f_0", "f_5"} <= set(obs) and all(jnp.shape(v) == () for v in obs.values())
        json.dumps(describe(problem))


def test_degenerate_risks_are_hyperbolic():
    X, y = sj.datasets.huang_degenerate()
    w = jnp.array([0.8])
    assert float(LinearPredictor(X, y, "exp").loss(w)) == pytest.approx(np.cosh(0.8), rel=1e-6)
    assert float(LinearPredictor(X, y, "logistic").loss(w)) == pytest.approx(np.log(2 * np.cosh(0.4)), rel=1e-6)
    assert float(LinearPredictor(X, y).observables(w)["ntk"]) == pytest.approx(1.0)
    p = LinearPredictor(X, y, "logistic")
    assert jnp.isfinite(p.loss(jnp.array([1e4]))) and jnp.isfinite(jax.grad(p.loss)(jnp.array([1e4]))).all()


def test_linear_ntk_is_top_eigenvalue_of_gram():
    X, y = sj.datasets.sparse_coding(20, 3, 2.0, seed=0)
    lam = float(LinearPredictor(X, y).observables(jnp.zeros(3))["ntk"])
    assert lam == pytest.approx(np.linalg.eigvalsh(X.astype(float) @ X.T / 20)[-1], rel=1e-5)


def _dense_ntk(problem, params):
    n = problem.X.shape[0]
    flat, unravel = ravel_pytree(params)
    J = jax.jacfwd(lambda p: problem.outputs(unravel(p)))(flat)
    return float(np.linalg.eigvalsh(np.asarray(J, float) @ np.asarray(J, float).T / n)[-1])


@pytest.mark.parametrize("method", ["exact", "lanczos"])
def test_two_layer_ntk_matches_dense_jacobian(method):
    X, y = sj.datasets.sparse_coding(12, 3, 2.0, seed=1)
    p = TwoLayerLinear(X, y, 5, "exp", ntk=method, ntk_order=12)
    params = jax.tree.map(lambda a: a[0], p.init(jax.random.key(2), 1))
    got = float(eqx.filter_jit(lambda prob, q: prob.ntk(q))(p, params))
    assert got == pytest.approx(_dense_ntk(p, params), rel=1e-4)
    # formulas.md (6): Θ = (‖v‖² XXᵀ + X uᵀu Xᵀ)/(nm)
    u, v, Xn = (np.asarray(a, float) for a in (params["u"], params["v"], X))
    theta = (v @ v * Xn @ Xn.T + Xn @ u.T @ u @ Xn.T) / (12 * 5)
    assert got == pytest.approx(np.linalg.eigvalsh(theta)[-1], rel=1e-4)


def test_two_layer_ntk_under_assumption_3():
    X, y = sj.datasets.huang_degenerate()
    p = TwoLayerLinear(X, y, 7, "logistic")
    params = jax.tree.map(lambda a: a[0], p.init(jax.random.key(3), 1))
    expected = (float(jnp.sum(params["u"] ** 2)) + float(jnp.sum(params["v"] ** 2))) / 7
    obs = _evaluate(p, params)[1]
    assert float(obs["ntk"]) == pytest.approx(expected, rel=1e-5)
    f = float(params["v"] @ params["u"][:, 0] / np.sqrt(7))
    assert float(obs["f_0"]) == pytest.approx(f, rel=1e-5)


def test_bad_inputs():
    X, y = sj.datasets.huang_degenerate()
    for cls, extra in ((LinearPredictor, ()), (TwoLayerLinear, (3,))):
        with pytest.raises(ValueError, match="^loss "):
            cls(X, y, *extra, loss="hinge")
        with pytest.raises(ValueError, match="^y "):
            cls(X, np.array([1.0, 0.0]), *extra)
        with pytest.raises(ValueError, match="^y "):
            cls(X, np.array([1.0, -1.0, 1.0]), *extra)
        with pytest.raises(ValueError, match="^X "):
            cls(np.array([[1.0], [np.inf]]), y, *extra)
    with pytest.raises(ValueError, match="^X "):
        TwoLayerLinear(X[:, 0], y, 3)
    with pytest.raises(ValueError, match="^m "):
        TwoLayerLinear(X, y, 0)
    with pytest.raises(ValueError, match="^ntk "):
        TwoLayerLinear(X, y, 3, ntk="svd")


# ----------------------------------------------------------------------------- phases via sj.sweep


@pytest.mark.parametrize("loss", ["exp", "logistic"])
def test_linear_critical_lr_bracket(loss):
    """Degenerate data, w₀ = 1.5: 0.95·η_c converges / loss decreases, 1.05·η_c diverges / loss increases."""
    X, y = sj.datasets.huang_degenerate()
    p = LinearPredictor(X, y, loss)
    eta_c = sj.theory.huang_linear_critical_lr(1.5, loss)
    lrs = np.array([0.95, 1.05]) * eta_c
    res = sj.sweep(p, lrs, np.array([[1.5]]), num_steps=400, record=sj.Record(every=1, sharpness=None))
    loss0 = res["loss"][:, 0, 0]
    if loss == "exp":
        assert res.status[0, 0] == sj.Status.OK and abs(res.final_params[0, 0, 0]) < 1e-3
        assert res.status[1, 0] == sj.Status.DIVERGED
    else:  # the loss decreases below η_c and increases above (saturating at a 2-cycle: no divergence)
        assert np.all(res.status == sj.Status.OK)
        assert res.final["loss"][0, 0] < loss0[0] and res.final["loss"][1, 0] > loss0[1]
        assert np.all(np.diff(res["loss"][1, 0]) >= -1e-6)


def _degenerate_two_layer(m):
    X, y = sj.datasets.huang_degenerate()
    p = TwoLayerLinear(X, y, m, "logistic", init_std=0.5)
    inits = p.init(jax.random.key(1), 1)
    lam0 = float(_evaluate(p, jax.tree.map(lambda a: a[0], inits))[1]["ntk"])
    return p, inits, lam0


def test_two_layer_logistic_catapult():
    """η = 1.5·8/λ₀ (above the catapult edge 8/λ₀, below the NTK-growth onset 16/λ₀): the loss rises, then
    converges; final NTK < λ₀, ≤ 8/η."""
    p, inits, lam0 = _degenerate_two_layer(10)
    lazy, growth = sj.theory.huang_catapult_lr(lam0, "logistic"), sj.theory.huang_ntk_growth_lr(lam0, "logistic")
    eta = 1.5 * lazy
    assert lazy < eta < growth
    res = sj.sweep(p, [eta], inits, num_steps=300, record=sj.Record(every=1, sharpness=None))
    loss = res["loss"][0, 0]
    assert res.status[0, 0] == sj.Status.OK
    assert loss[1:10].max() > loss[0] + 1e-3  # the catapult: the loss rises first
    assert res.final["loss"][0, 0] - np.log(2) < 1e-5  # then converges to the minimum log 2
    ntk = res.final["ntk"][0, 0]
    assert ntk < lam0 and ntk <= 8 / eta


def test_two_layer_logistic_lazy():
    """η = 0.5·8/λ₀ with a wide net (m = 200): the NTK moves by < 2 %."""
    p, inits, lam0 = _degenerate_two_layer(200)
    eta = 0.5 * sj.theory.huang_catapult_lr(lam0, "logistic")
    res = sj.sweep(p, [eta], inits, num_steps=300, record=sj.Record(every=10, sharpness=None))
    assert res.status[0, 0] == sj.Status.OK
    assert res.final["loss"][0, 0] - np.log(2) < 1e-5
    assert abs(res.final["ntk"][0, 0] - lam0) < 0.02 * lam0
    assert np.all(np.diff(res["loss"][0, 0]) <= 1e-7)


@pytest.mark.parametrize("loss", ["exp", "logistic"])
def test_ntk_growth_onset_is_one_step_ntk_growth(loss):
    """From a small output (f₀ ≈ 1e-3, so ℓ'(f) ≈ ℓ''(0)f), one GD step lowers the NTK just below
    η = huang_ntk_growth_lr (4/λ₀ exp, 16/λ₀ logistic) and raises it just above, as (8) says:
    λ₁ − λ₀ = (η c f₀²/m)(η λ₀ c − 4) + O(f₀⁴), c = ℓ''(0)."""
    X, y = sj.datasets.huang_degenerate()
    m = 10
    p = TwoLayerLinear(X, y, m, loss)
    rng = np.random.default_rng(0)
    u, v = rng.normal(size=(m, 1)), rng.normal(size=m)
    v -= (v @ u[:, 0]) / (u[:, 0] @ u[:, 0]) * u[:, 0]  # vᵀu = 0 ...
    v += 1e-3 * np.sqrt(m) * u[:, 0] / (u[:, 0] @ u[:, 0])  # ... then f₀ = vᵀu/√m = 1e-3 exactly
    lam0 = (np.sum(u**2) + np.sum(v**2)) / m
    growth = sj.theory.huang_ntk_growth_lr(lam0, loss)
    assert growth * lam0 == pytest.approx(4.0 if loss == "exp" else 16.0)
    inits = {"u": u[None].astype(np.float32), "v": v[None].astype(np.float32)}
    with jax.enable_x64(True):
        res = sj.sweep(p, np.array([0.97, 1.03]) * growth, inits, num_steps=1,
                       record=sj.Record(every=1, sharpness=None), dtype=jnp.float64)
    ntk = res["ntk"][:, 0]
    assert ntk[0, 1] < ntk[0, 0] and ntk[1, 1] > ntk[1, 0]


def test_two_layer_exp_catapult_window():
    """Exp loss, m = 10, σ = 0.3: η·λ₀ = 1.5 never raises |f| (lazy); 3 raises it, then converges with
    final NTK < λ₀ and ≤ 2/η (catapult); 4.5 diverges (past the NTK-growth onset 4/λ₀)."""
    X, y = sj.datasets.huang_degenerate()
    p = TwoLayerLinear(X, y, 10, "exp", init_std=0.3)
    inits = p.init(jax.random.key(1), 1)
    lam0 = float((jnp.sum(inits["u"] ** 2) + jnp.sum(inits["v"] ** 2)) / 10)
    assert sj.theory.huang_catapult_lr(lam0, "exp") == pytest.approx(2 / lam0)
    lrs = np.array([1.5, 3.0, 4.5]) / lam0
    res = sj.sweep(p, lrs, inits, num_steps=500, record=sj.Record(every=1, sharpness=None))
    f = np.abs(res["f_0"][:, 0])
    assert res.status[0, 0] == sj.Status.OK and f[0, 1:].max() <= f[0, 0]
    assert res.status[1, 0] == sj.Status.OK and f[1, 1:].max() > f[1, 0] and f[1, -1] < 1e-3
    ntk = res.final["ntk"][1, 0]
    assert ntk < lam0 and ntk * lrs[1] <= 2.0
    assert res.status[2, 0] == sj.Status.DIVERGED


def test_theory_critical_lrs_and_boundaries():
    assert sj.theory.huang_linear_critical_lr(1.5, "exp") == pytest.approx(1.40893, rel=1e-5)
    assert sj.theory.huang_linear_critical_lr(1.5, "logistic") == pytest.approx(9.4466, rel=1e-4)
    crit = sj.theory.huang_linear_critical_lr(np.array([0.0, -1.5]), "exp")
    np.testing.assert_allclose(crit, [2.0, 1.40893], rtol=1e-5)
    assert float(sj.theory.huang_linear_critical_lr(jnp.asarray(0.0), "logistic")) == 8.0
    # η·λ₀·ℓ''(0) = 2 (catapult edge) and = 4 (NTK-growth onset); ℓ''(0) = 1 (exp), 1/4 (logistic)
    assert sj.theory.huang_catapult_lr(0.5, "exp") == 4.0 and sj.theory.huang_ntk_growth_lr(0.5, "exp") == 8.0
    assert sj.theory.huang_catapult_lr(0.5, "logistic") == 16.0
    assert sj.theory.huang_ntk_growth_lr(0.5, "logistic") == 32.0
    np.testing.assert_allclose(sj.theory.huang_catapult_lr(np.array([1.0, 4.0]), "logistic"), [8.0, 2.0])
    assert isinstance(sj.theory.huang_ntk_growth_lr(jnp.asarray([1.0]), "exp"), jax.Array)
    for fn in (sj.theory.huang_linear_critical_lr, sj.theory.huang_catapult_lr, sj.theory.huang_ntk_growth_lr):
        with pytest.raises(ValueError, match="^loss "):
            fn(1.0, "hinge")
