"""Ahn et al.'s threshold-neuron problems: closed forms, bad inputs, and the 8π/d² transition via sj.sweep."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.stats import norm

import sweepjax as sj
from sweepjax.problems import REGISTRY, AhnMeanModel, SparseCodingNetwork, SparseCodingReLU
from sweepjax.problems._base import describe


@eqx.filter_jit
def _evaluate(problem, params):
    return problem.loss(params), problem.observables(params)


@pytest.fixture(scope="module")
def small_data():
    return sj.datasets.sparse_coding(30, 6, 3.0, seed=0)


def test_registered():
    assert REGISTRY["sparse_coding_relu"] is SparseCodingReLU
    assert REGISTRY["ahn_mean_model"] is AhnMeanModel
    assert REGISTRY["sparse_coding_network"] is SparseCodingNetwork


@pytest.mark.parametrize("which", ["relu", "mean", "network"])
def test_generic(which, small_data):
    """init gives finite points of param_shapes; loss/observables are finite scalars; describe is JSON."""
    X, y = small_data
    makers = {
        "relu": lambda: SparseCodingReLU(X, y),
        "mean": lambda: AhnMeanModel(7),
        "network": lambda: SparseCodingNetwork(X, y, 5),
    }
    problem = makers[which]()
    points = problem.init(jax.random.key(0), 3)
    shapes = problem.param_shapes()
    assert all(jax.tree.leaves(jax.tree.map(lambda s, a: tuple(s.shape) == a.shape[1:], shapes, points)))
    one = jax.tree.map(lambda a: a[0], points)
    loss, obs = _evaluate(problem, one)
    assert jnp.isfinite(loss) and jnp.shape(loss) == ()
    assert all(jnp.shape(v) == () and jnp.isfinite(v) for v in obs.values())
    json.dumps(describe(problem))


def test_relu_loss_matches_formula(small_data):
    X, y = small_data
    p = SparseCodingReLU(X, y)
    params = {"a_minus": jnp.array(-0.3), "a_plus": jnp.array(0.5), "b": jnp.array(-0.2)}
    Xn = np.asarray(X, float)
    f = -0.3 * np.maximum(-Xn - 0.2, 0).sum(1) + 0.5 * np.maximum(Xn - 0.2, 0).sum(1)
    loss, obs = _evaluate(p, params)
    assert np.isclose(float(loss), np.mean(np.log1p(np.exp(-y * f))), rtol=1e-5)
    assert np.isclose(float(obs["A"]), 6 * 0.2) and float(obs["b"]) == pytest.approx(-0.2)
    big = {"a_minus": jnp.array(-1e4), "a_plus": jnp.array(1e4), "b": jnp.array(0.0)}
    big_loss, big_grad = eqx.filter_jit(lambda q, t: jax.value_and_grad(q.loss)(t))(p, big)
    assert jnp.isfinite(big_loss) and jnp.isfinite(big_grad["b"])  # stable softplus


def test_relu_init_scale():
    X, y = sj.datasets.sparse_coding(10, 50, 3.0, seed=0)
    pts = SparseCodingReLU(X, y).init(jax.random.key(0), 4000)
    assert abs(float(jnp.var(pts["a_plus"])) - 1 / 100) < 1e-3 and float(jnp.max(jnp.abs(pts["b"]))) == 0.0


def test_mean_model_step_is_update_rule_5():
    """One GD step with step_scale (2d², 1) is exactly Ahn et al. (5)."""
    d, eta = 30.0, 0.01
    p = AhnMeanModel(d)
    theta = jnp.array([0.7, -0.3])
    new = eqx.filter_jit(lambda q, t: t - eta * q.step_scale() * jax.grad(q.loss)(t))(p, theta)
    A, b = 0.7, -0.3
    g = norm.pdf(b) + b * norm.cdf(b)
    lp = 0.5 * np.tanh(A * g / 2)
    expected = [A - 2 * d**2 * eta * lp * g, b - eta * lp * A * norm.cdf(b)]
    np.testing.assert_allclose(new, expected, rtol=1e-5)
    assert p.observables(theta) == {"A": theta[0], "b": theta[1]}


def test_mean_model_sharpness_at_minimiser():
    """At (0, b) the scaled sharpness λ_max(S^½∇²S^½) is ½d²g(b)² (d²/(4π) at b = 0)."""
    d = 40.0
    p = AhnMeanModel(d)
    for b in (0.0, -0.3):
        theta = jnp.array([0.0, b])
        root = jnp.sqrt(p.step_scale())
        H = jax.jit(jax.hessian(p.loss))(theta) * root[:, None] * root[None, :]
        g = norm.pdf(b) + b * norm.cdf(b)
        assert float(jnp.linalg.eigvalsh(H)[-1]) == pytest.approx(float(0.5 * d**2 * g**2), rel=1e-5)


def test_mean_model_d_is_traced():
    """A new d does not recompile the loss."""
    p1, p2 = AhnMeanModel(10), AhnMeanModel(20)

    @eqx.filter_jit
    @eqx.debug.assert_max_traces(max_traces=1)
    def step(p, theta):
        return theta - 0.001 * p.step_scale() * jax.grad(p.loss)(theta)

    step(p1, jnp.array([1.0, 0.0]))
    step(p2, jnp.array([1.0, 0.0]))


def test_network_outputs_and_init():
    X, y = sj.datasets.sparse_coding(8, 4, 3.0, seed=0)
    p = SparseCodingNetwork(X, y, 3)
    params = {"a": jnp.array([1.0, -2.0, 0.5]), "w": jnp.arange(12.0).reshape(3, 4) / 10, "b": jnp.array(-0.1)}
    f = np.maximum(np.asarray(X) @ np.asarray(params["w"]).T - 0.1, 0) @ np.asarray(params["a"])
    np.testing.assert_allclose(eqx.filter_jit(lambda q, x: q.outputs(x))(p, params), f, rtol=1e-5)
    pts = SparseCodingNetwork(*sj.datasets.sparse_coding(4, 50, 3.0, seed=0), 400).init(jax.random.key(1), 2)
    assert abs(float(jnp.var(pts["a"])) - 1 / 400) < 4e-4 and abs(float(jnp.var(pts["w"])) - 1 / 50) < 2e-3


def test_bad_inputs(small_data):
    X, y = small_data
    with pytest.raises(ValueError, match="^y "):
        SparseCodingReLU(X, np.where(y > 0, 1.0, 0.0))
    with pytest.raises(ValueError, match="^y "):
        SparseCodingReLU(X, y[:-1])
    Xbad = X.copy()
    Xbad[0, 0] = np.nan
    with pytest.raises(ValueError, match="^X "):
        SparseCodingReLU(Xbad, y)
    with pytest.raises(ValueError, match="^X "):
        SparseCodingNetwork(X[:, 0], y, 3)
    with pytest.raises(ValueError, match="^m "):
        SparseCodingNetwork(X, y, 0)
    for d in (0, -3, float("inf"), [1, 2]):
        with pytest.raises(ValueError, match="^d "):
            AhnMeanModel(d)


# ----------------------------------------------------------------------------- the transition via sj.sweep


def test_mean_model_threshold_d200():
    """d = 200, A₀ = 1, b₀ = 0, total time η·T = 10 (converged: b∞ is unchanged to 1e-6 from η·T = 5).

    |b∞| < 1e-3 for η ≤ 0.95·8π/d²; b∞ < −0.087 at η = 10π/d² (Theorem 4 bound: −0.0873);
    final scaled sharpness ≈ 2/η in the EoS regime.
    """
    d = 200
    p = AhnMeanModel(d)
    lrs = np.array([0.5, 0.8, 0.95, 1.25]) * sj.theory.threshold_neuron_lr(d)  # last: 10π/d²
    res = sj.sweep(p, lrs, p.init_grid([1.0]), max_steps=sj.time_horizon(lrs, 10), record=sj.Record(every=500))
    b = res.final["b"][:, 0]
    assert np.all(res.status == 0)
    assert np.all(np.abs(b[:3]) < 1e-3), b
    bound = sj.theory.ahn_bias_bound(lrs[3], d)
    assert b[3] < -0.087 and b[3] <= bound, (b[3], bound)
    assert res.final["sharpness"][3, 0] == pytest.approx(2 / lrs[3], rel=0.01)
    # converged: the record at half the horizon already has the final bias
    half = res["b"][3, 0][np.searchsorted(res.steps, res.num_steps[3, 0] // 2)]
    assert abs(half - b[3]) < 1e-5


def test_relu_network_transition_reduced():
    """Reduced Fig. 1 (d = 40, n = 200, λ = 3, 10/η iterations).

    At this size gradient flow itself learns some bias through a⁺ − a⁻ (b ≈ −1.1 at η·T = 10), at a
    rate that does not depend on η, so we test the transition: at ηT = 10, b is flat in η below
    0.5·8π/d² and at least 0.05 lower for η ≥ 2·8π/d²; at the early time ηT = 1, b at 1.25·8π/d² is
    at least 0.05 below b at 0.9·8π/d², which differs from b at 0.5·8π/d² by less than 0.03.
    """
    d = 40
    X, y = sj.datasets.sparse_coding(200, d, 3.0, seed=0)
    p = SparseCodingReLU(X, y)
    ratios = np.array([0.25, 0.5, 0.9, 1.25, 2.0, 4.0])
    lrs = ratios * sj.theory.threshold_neuron_lr(d)
    res = sj.sweep(
        p, lrs, p.init(jax.random.key(0), 2), max_steps=sj.time_horizon(lrs, 10),
        record=sj.Record(every=10, sharpness=None),
    )
    assert np.all(res.status == 0)
    b = res.final["b"]
    assert np.all(np.abs(b[0] - b[1]) < 0.02), b
    assert np.all(b[4:] <= b[:2].max() - 0.05), b
    assert np.all(b[5] < b[4]), b
    # ηT = 1: the record nearest that time (records every 10 steps; ⌈1/η⌉ ≥ 30 steps here)
    at_one = [np.argmin(np.abs(res.steps * lr - 1.0)) for lr in lrs]
    b1 = np.array([res["b"][i, :, k] for i, k in enumerate(at_one)])
    assert np.all(np.abs(b1[2] - b1[1]) < 0.03), b1
    assert np.all(b1[3] < b1[2] - 0.05), b1


def test_theory_threshold_and_bias_bound():
    d = 200
    assert sj.theory.threshold_neuron_lr(d) == pytest.approx(8 * np.pi / d**2)
    assert sj.theory.ahn_bias_bound(10 * np.pi / d**2, d) == pytest.approx(-0.08727, abs=1e-5)
    etas = np.array([8.0, 12.0]) * np.pi / d**2
    out = sj.theory.ahn_bias_bound(etas, d)
    assert out.shape == (2,) and abs(out[0]) < 1e-9 and out[1] < -0.08727
    g = lambda b: norm.pdf(b) + b * norm.cdf(b)  # noqa: E731
    assert float(g(out[1])) == pytest.approx(2 / np.sqrt(12 * np.pi), rel=1e-7)
    traced = jax.jit(sj.theory.ahn_bias_bound)(jnp.asarray(10 * np.pi / d**2), jnp.asarray(200.0))
    assert isinstance(traced, jax.Array) and float(traced) == pytest.approx(-0.08727, abs=1e-4)


def test_network_learns_more_bias_at_large_step_reduced():
    """Appendix B net at reduced size (d = 20, m = 40, n = 400, λ = 5, η·T = 20): the shared bias ends
    lower at a large step (η = 2: b ≈ −0.6, −1.8) than at a small one (η = 0.03: b ≈ +0.2, +0.4)."""
    X, y = sj.datasets.sparse_coding(400, 20, 5.0, seed=0)
    p = SparseCodingNetwork(X, y, 40)
    lrs = np.array([0.03, 2.0])
    res = sj.sweep(
        p, lrs, p.init(jax.random.key(0), 2), max_steps=sj.time_horizon(lrs, 20), record=sj.Record(every=10, sharpness=None)
    )
    assert np.all(res.status == sj.Status.OK)
    b = res.final["b"]
    assert np.all(b[1] < b[0] - 0.3) and np.all(b[1] < 0), b
