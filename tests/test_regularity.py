"""RegularityFamily (Wang, Xu, Zhao, Tao eq. (2), RECONSTRUCTED): closed-form facts (gradient and Hessian by
hand), the exact GD identity, and sj.sweep's limits against a NumPy GD loop and the analytic 2/η, 1/η and
balancing bound."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sweepjax as sj
from sweepjax.problems import RegularityFamily

MEMBERS = [(0.0, 1), (0.5, 1), (1.0, 1), (1.5, 1), (2.0, 1), (1.0, 3), (2.0, 3), (2.0, 5), (0.5, 5)]


def _random_minimisers(rng, n, num):
    """(x, y) with xᵀy = 1: y = x/‖x‖² + z with z ⊥ x."""
    out = []
    for _ in range(num):
        x = rng.normal(size=n)
        z = rng.normal(size=n)
        z -= (z @ x) / (x @ x) * x
        out.append(np.concatenate([x, x / (x @ x) + z]))
    return np.array(out)


@eqx.filter_jit
def _hessian_facts(problem, points):
    def one(th):
        return problem.loss(th), jax.grad(problem.loss)(th), jnp.linalg.eigvalsh(jax.hessian(problem.loss)(th))[-1]

    return jax.vmap(one)(points), jax.vmap(problem.observables)(points)


def test_sharpness_at_minimisers_is_norm_sum():
    """At xᵀy = 1: f = 0, ∇f = 0 and λ_max(∇²f) (dense Hessian) = ‖x‖² + ‖y‖² for every (a, b)."""
    n = 3
    pts = _random_minimisers(np.random.default_rng(0), n, 5)
    with jax.enable_x64(True):
        for a, b in MEMBERS:
            p = RegularityFamily(a, b, n=n)
            p64 = eqx.tree_at(lambda q: q.a, p, jnp.asarray(a, jnp.float64))
            (loss, grad, top), obs = _hessian_facts(p64, jnp.asarray(pts))
            np.testing.assert_allclose(np.asarray(obs["xy"]), 1.0, rtol=1e-12)
            np.testing.assert_allclose(np.asarray(loss), 0.0, atol=1e-14)
            np.testing.assert_allclose(np.asarray(grad), 0.0, atol=1e-12)
            np.testing.assert_allclose(np.asarray(top), np.asarray(obs["norm_sum"]), rtol=1e-10, err_msg=f"{(a, b)}")


@pytest.mark.parametrize("a,b", MEMBERS)
def test_g_derivatives_at_one(a, b):
    """g'(1) = 0, g''(1) = 1, g ≥ 0 with g = 0 only at u = 1 (b odd), f(x, y) = g(xᵀy)."""
    p = RegularityFamily(a, b)
    with jax.enable_x64(True):
        g = lambda u: p.g(u)  # noqa: E731
        one = jnp.float64(1.0)
        assert abs(float(jax.grad(g)(one))) < 1e-14
        np.testing.assert_allclose(float(jax.grad(jax.grad(g))(one)), 1.0, rtol=1e-12)
        us = jnp.linspace(-3.0, 3.0, 601)
        vals = np.asarray(jax.vmap(g)(us))
        assert np.all(vals[np.abs(np.asarray(us) - 1.0) > 1e-9] > 0)


def test_line_formulas_and_dor():
    """Line 2 is (u^b − 1)²/(2b²); a = 0 is log(1 + s²)/(2b²); line 1 = [(s²+1)^{a/2} − 1]/(ab²); dor = a·b."""
    u = jnp.array([-1.3, 0.2, 0.9, 1.7])
    with jax.enable_x64(True):
        u = u.astype(jnp.float64)
        s3 = u**3 - 1
        np.testing.assert_allclose(RegularityFamily(2.0, 3).g(u), s3**2 / 18, rtol=1e-6)
        s1 = u - 1
        np.testing.assert_allclose(RegularityFamily(0.0, 1).g(u), np.log1p(s1**2) / 2, rtol=1e-6)
        np.testing.assert_allclose(RegularityFamily(1.0, 1).g(u), np.sqrt(1 + s1**2) - 1, rtol=1e-6)
    assert RegularityFamily(2.0, 3).degree_of_regularity == 6.0
    assert RegularityFamily(1.0, 5).degree_of_regularity == 5.0
    assert RegularityFamily(0.0, 1).degree_of_regularity == 0.0


def _g1(u, a, b):
    """g'(u) by hand from the docstring's formula: g' = u^{b−1} s (1 + s²)^{a/2 − 1} / b, s = u^b − 1 (every a)."""
    s = u**b - 1.0
    return u ** (b - 1) * s * (1.0 + s * s) ** (a / 2 - 1) / b


def _g2(u, a, b):
    """g''(u) by hand: d/du of _g1 (product rule; ds/du = b u^{b−1})."""
    s = u**b - 1.0
    ds = b * u ** (b - 1)
    q = (1.0 + s * s) ** (a / 2 - 1)
    dq = (a / 2 - 1) * (1.0 + s * s) ** (a / 2 - 2) * 2 * s * ds
    return ((b - 1) * u ** (b - 2) * s * q + u ** (b - 1) * (ds * q + s * dq)) / b if b > 1 else (ds * q + s * dq) / b


def _numpy_gd(a, b, x, y, eta, steps):
    """Scalar GD on f = g(xy) in float64 NumPy: final (x, y) and the final top Hessian eigenvalue (2×2 closed form)."""
    for _ in range(steps):
        gp = _g1(x * y, a, b)
        x, y = x - eta * gp * y, y - eta * gp * x
    u, gp, gpp = x * y, _g1(x * y, a, b), _g2(x * y, a, b)
    H = np.array([[gpp * y * y, gpp * u + gp], [gpp * u + gp, gpp * x * x]])
    return x, y, np.linalg.eigvalsh(H)[-1]


@pytest.mark.parametrize("a,b,x,y", [(2.0, 3, 1.0, 2.0), (1.0, 1, 2.0, 1.0), (0.5, 1, 0.3, -1.2)])
def test_gradient_and_hessian_by_hand(a, b, x, y):
    """∇f = g'(u)(y, x), ∇²f = g''(u)[y; x][y; x]ᵀ + g'(u)[[0, 1], [1, 0]] with g', g'' written out by hand.
    E.g. (a, b) = (2, 3) at (1, 2): u = 2, s = 7, g' = u²s/3 = 28/3, g'' = (2us + 3u⁴)/3 = 76/3."""
    if (a, b) == (2.0, 3):
        assert _g1(2.0, a, b) == pytest.approx(28 / 3) and _g2(2.0, a, b) == pytest.approx(76 / 3)
    p = RegularityFamily(a, b)
    u = x * y
    grad = _g1(u, a, b) * np.array([y, x])
    hess = _g2(u, a, b) * np.outer([y, x], [y, x]) + _g1(u, a, b) * np.array([[0.0, 1.0], [1.0, 0.0]])
    with jax.enable_x64(True):
        p64 = eqx.tree_at(lambda q: q.a, p, jnp.asarray(a, jnp.float64))
        th = jnp.array([x, y], jnp.float64)
        np.testing.assert_allclose(np.asarray(jax.grad(p64.loss)(th)), grad, rtol=1e-12)
        np.testing.assert_allclose(np.asarray(jax.hessian(p64.loss)(th)), hess, rtol=1e-12, atol=1e-12)


def test_imbalance_identity_under_gd():
    """w_{k+1} = (1 − η²g'(u_k)²) w_k exactly (float64, n = 2), g' by hand, from the recorded observables."""
    p = RegularityFamily(1.0, 1, n=2)
    eta = 0.05
    init = RegularityFamily.pack(np.array([[2.0, -1.0]]), np.array([[0.5, 0.3]]))
    res = sj.sweep(p, np.array([eta]), init, num_steps=40, record=sj.Record(every=1, sharpness=None), dtype=jnp.float64)
    u, w = res["xy"][0, 0], res["imbalance"][0, 0]
    gp = _g1(np.asarray(u[:-1], float), 1.0, 1)
    np.testing.assert_allclose(w[1:], (1 - eta**2 * gp**2) * w[:-1], rtol=1e-12, atol=1e-14)


def test_bad_arguments():
    with pytest.raises(ValueError, match="b must be odd.*Zhu"):
        RegularityFamily(1.0, 2)
    for bad_b in (0, -3, 1.0, True):
        with pytest.raises(ValueError, match="b must be a positive odd int"):
            RegularityFamily(1.0, bad_b)
    for bad_a in (-0.1, 2.5, float("nan"), [1.0, 2.0], "one", None):
        with pytest.raises(ValueError, match="a must be"):
            RegularityFamily(bad_a, 1)
    with pytest.raises(ValueError, match="n must be"):
        RegularityFamily(1.0, 1, n=0)


def test_gd_limits_against_numpy_loop_and_theory():
    """η = 0.05, 5,000 steps, float32 sweep vs a float64 NumPy GD loop written here (g' by hand), and the
    analytic values: (a, b) = (1, 1) from (8, 2) sharpens progressively to the edge of stability
    (2/η − O(η) ≤ λ∞ ≤ 2/η) and balances, |x² − y²| ending below √(4/η² − 4) (stability at a minimiser,
    formulas.md §1.4); (2, 3) from (3, 0.45) starts above 2/η but ends at λ∞ ≤ 1/η (Th. 8: no EoS) and
    keeps its imbalance, |w∞|/|w₀| = Π(1 − η²g'(u_k)²) > 0.99 (no balancing)."""
    eta, steps = 0.05, 5000
    bound = np.sqrt(4 / eta**2 - 4)

    good = sj.sweep(RegularityFamily(1.0, 1), np.array([eta]), np.array([[8.0, 2.0]]), num_steps=steps,
                    record=sj.Record(every=500))
    sharp, imb = good["sharpness"][0, 0], np.abs(good["imbalance"][0, 0])
    x, y, lam = _numpy_gd(1.0, 1, 8.0, 2.0, eta, steps)
    assert sharp[0] < 2.0  # progressive sharpening: starts far below 2/η
    assert 2 / eta - 4 * eta <= sharp[-1] <= 2 / eta * (1 + 1e-5) and abs(sharp[-1] - sharp[-2]) < 1e-3
    np.testing.assert_allclose(sharp[-1], lam, rtol=1e-3)
    assert imb[0] == pytest.approx(60.0) and imb[-1] <= bound and imb[-1] < 0.7 * imb[0]
    np.testing.assert_allclose(imb[-1], abs(x * x - y * y), rtol=1e-3)
    np.testing.assert_allclose(good["xy"][0, 0, -1], 1.0, atol=1e-4)

    bad = sj.sweep(RegularityFamily(2.0, 3), np.array([eta]), np.array([[3.0, 0.45]]), num_steps=steps,
                   record=sj.Record(every=500))
    sharp, imb = bad["sharpness"][0, 0], np.abs(bad["imbalance"][0, 0])
    x, y, lam = _numpy_gd(2.0, 3, 3.0, 0.45, eta, steps)
    assert sharp[0] > 2 / eta
    assert sharp[-1] <= 1 / eta and abs(sharp[-1] - sharp[-2]) < 1e-3
    np.testing.assert_allclose(sharp[-1], lam, rtol=1e-3)
    assert imb[0] == pytest.approx(3.0**2 - 0.45**2)
    np.testing.assert_allclose(imb[-1], abs(x * x - y * y), rtol=1e-4)
    assert imb[-1] / imb[0] > 0.99


def test_a_is_traced():
    """A new a (even across line 1, the a = 0 limit and line 2) does not recompile the loss."""

    @eqx.filter_jit
    @eqx.debug.assert_max_traces(max_traces=1)
    def step(p, theta):
        return theta - 0.01 * jax.grad(p.loss)(theta)

    for a in (0.0, 0.7, 2.0):
        assert bool(jnp.all(jnp.isfinite(step(RegularityFamily(a, 3, n=2), jnp.array([1.0, 0.5, -0.2, 0.3])))))
