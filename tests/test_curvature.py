"""Curvature: hvp against dense Hessians, eigensolvers against ``numpy.linalg.eigvalsh``.

Sharpness is the largest *algebraic* eigenvalue, so every solver is checked on PSD, indefinite
(|λ_min| > λ_max), negative definite and symmetric (±ρ) spectra, with order ≥ n, with v0 an exact
eigenvector, and on ℓ(xy). Solvers run through one ``filter_jit`` so each (solver, shape, dtype)
compiles once; most matrices are 8×8.
"""

from __future__ import annotations

import equinox as eqx
import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from jax.flatten_util import ravel_pytree

from sweepjax._curvature import DenseEigh, Eig, Lanczos, PowerIteration, hessian_matvec, hvp, sharpness
from sweepjax.problems import ProductLoss

N = 8
# solvers that must be exact (to rounding) on N×N matrices with a top gap of ≥ 20%
EXACT = {
    "lanczos_n": Lanczos(order=N),
    "lanczos_over": Lanczos(order=N + 4),  # order > n: breakdown, no spurious Ritz values
    "dense": DenseEigh(),
}
POWER = PowerIteration(num_iters=300)  # converges on the designed spectra below
ALL = {**EXACT, "power": POWER}


@eqx.filter_jit
def _solve(solver, a, v0):
    return solver(lambda v: a @ v, v0)


def _spectral(eigs, seed):
    """Q diag(eigs) Qᵀ with a random orthogonal Q (float64 numpy)."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(len(eigs), len(eigs))))
    return (q * np.asarray(eigs, float)) @ q.T


def _designed(kind, seed):
    """N×N matrices whose top eigenvalue is separated from the rest (power iteration converges)."""
    rng = np.random.default_rng(seed)
    rest = rng.uniform(0.0, 1.0, N - 1)
    if kind == "psd":
        eigs = np.append(rest, 2.0)  # λ ∈ [0, 1] ∪ {2}
    elif kind == "indefinite":
        eigs = np.concatenate([[-6.0], -5.0 + 6.0 * rest[1:], [2.0]])  # λ_min = −6, λ_max = 2
    elif kind == "negative":
        eigs = np.append(-3.0 - 2.0 * rest, -1.0)  # λ ∈ [−5, −3] ∪ {−1}
    else:
        raise AssertionError(kind)
    return _spectral(eigs, seed)


def _v0(n=N, seed=123):
    return np.random.default_rng(seed).normal(size=n)


def _check(eig: Eig, a: np.ndarray, rtol: float, residual_bound: bool = True):
    """value = λ_max(a), vector unit and an eigenvector, residual small."""
    a = np.asarray(a, np.float64)
    top = np.linalg.eigvalsh(a)[-1]
    scale = max(1.0, np.abs(np.linalg.eigvalsh(a)).max())
    value, vec, res = float(eig.value), np.asarray(eig.vector, np.float64), float(eig.residual)
    assert abs(value - top) <= rtol * scale, (value, top)
    assert abs(np.linalg.norm(vec) - 1.0) <= rtol
    assert np.linalg.norm(a @ vec - top * vec) <= np.sqrt(rtol) * scale
    if residual_bound:
        assert res <= np.sqrt(rtol) * scale


@pytest.mark.parametrize("kind", ["psd", "indefinite", "negative"])
@pytest.mark.parametrize("name", list(ALL))
def test_solvers_top_algebraic_eigenvalue_float64(kind, name):
    with jax.enable_x64(True):
        for seed in range(3):
            a = _designed(kind, seed)
            top, bottom = np.linalg.eigvalsh(a)[[-1, 0]]
            if kind == "indefinite":
                assert -bottom > top > 0  # the largest-magnitude eigenvalue is the wrong answer
            if kind == "negative":
                assert top < 0
            eig = _solve(ALL[name], jnp.asarray(a), jnp.asarray(_v0()))
            assert eig.value.dtype == jnp.float64
            _check(eig, a, rtol=1e-10)


@pytest.mark.parametrize("kind", ["psd", "indefinite", "negative"])
@pytest.mark.parametrize("name", ["lanczos_n", "dense", "power"])
def test_solvers_float32(kind, name):
    a = _designed(kind, 7)
    eig = _solve(ALL[name], jnp.asarray(a, jnp.float32), jnp.asarray(_v0(), jnp.float32))
    assert eig.value.dtype == jnp.float32
    _check(eig, a, rtol=1e-5, residual_bound=name != "dense")
    assert float(eig.residual) <= 1e-2


def test_symmetric_spectrum_power_iteration():
    """H = [[0, 1], [1, 0]] (eigenvalues ±1): unshifted power iteration oscillates and its Rayleigh
    quotient is anything in (−1, 1); the answer must be +1 from any start, not λ₁ of phase 1."""
    a = np.array([[0.0, 1.0], [1.0, 0.0]])
    with jax.enable_x64(True):
        for v0 in ([1.0, 0.0], [1.0, 0.5], [0.3, -1.0], [1.0, -1.0 + 1e-3]):
            eig = _solve(POWER, jnp.asarray(a), jnp.asarray(v0))
            _check(eig, a, rtol=1e-10)


def test_lanczos_order_at_least_n_negative_definite_and_low_rank():
    """Rows left after the basis spans ℝⁿ must not add a spurious Ritz value (e.g. 0 above a
    negative definite spectrum); early breakdown (low rank, repeated eigenvalues) restarts."""
    with jax.enable_x64(True):
        mats = [
            _designed("negative", 11),
            -100.0 * np.eye(N) + _spectral(np.linspace(-1.0, 0.0, N), 12),
            _spectral([-3.0, 1.0] + [0.0] * (N - 2), 13),  # rank 2: Krylov space of dim ≤ 3
            _spectral([-2.0] * 5 + [0.5] * 3, 14),  # two eigenvalues only
            np.zeros((N, N)),
        ]
        for a in mats:
            for name in ("lanczos_n", "lanczos_over"):
                eig = _solve(EXACT[name], jnp.asarray(a), jnp.asarray(_v0()))
                _check(eig, a, rtol=1e-10)


def test_warm_start_exact_eigenvector():
    """v0 exactly the top eigenvector (a converged warm start): immediate breakdown, same answer.
    v0 exactly a *lower* eigenvector (a warm start from an earlier Hessian): Lanczos must restart
    rather than return that eigenvalue with residual 0."""
    d = np.diag([3.0, 1.0, -7.0, 5.0, 0.5, 2.0, -1.0, 4.0])  # λ_max = 5 at e₃
    a = _designed("indefinite", 21)
    _, q = np.linalg.eigh(a)
    with jax.enable_x64(True):
        for solver in ALL.values():
            for m, v in ((d, np.eye(N)[3]), (a, q[:, -1])):
                _check(_solve(solver, jnp.asarray(m), jnp.asarray(v)), m, rtol=1e-10)
        for name in ("lanczos_n", "lanczos_over", "dense"):
            for m, v in ((d, np.eye(N)[0]), (d, np.eye(N)[2]), (a, q[:, 0]), (a, q[:, 3])):
                _check(_solve(ALL[name], jnp.asarray(m), jnp.asarray(v)), m, rtol=1e-10)
        # few steps from a lower eigenvector still find the top of this small spectrum
        d2 = np.diag([1.0, 9.0] + [-2.0] * (N - 2))  # after e₀, a 2-dim Krylov space holds 9
        eig = _solve(Lanczos(order=3), jnp.asarray(d2), jnp.asarray(np.eye(N)[0]))
        assert abs(float(eig.value) - 9.0) < 1e-10


def test_residual_flags_unconverged_estimates():
    """Lanczos order 2 (and 3 power steps) on a 50-dim clustered spectrum are not converged: the
    reported residual must be large, and must bound the true ‖Hv − λv‖."""
    eigs = np.concatenate([np.linspace(0.0, 0.9, 45), np.linspace(0.95, 1.0, 5)])
    a = _spectral(eigs, 5)
    with jax.enable_x64(True):
        for solver in (Lanczos(order=2), PowerIteration(num_iters=3)):
            eig = _solve(solver, jnp.asarray(a), jnp.asarray(_v0(50)))
            value, vec, res = float(eig.value), np.asarray(eig.vector), float(eig.residual)
            assert value < 1.0 - 1e-3  # a Rayleigh/Ritz value, below λ_max
            assert res > 1e-2
            assert np.linalg.norm(a @ vec - value * vec) <= res * (1 + 1e-8)
            assert np.min(np.abs(eigs - value)) <= res * (1 + 1e-8)


# ----------------------------------------------------------------------------- 2×2 and ℓ(xy)


def test_dense_eigh_small():
    """The n = 2 closed form, including its degenerate cases (b = 0, a multiple of I, zero)."""
    cases = [
        [[2.0, 0.0], [0.0, -5.0]],  # b = 0, a > c
        [[-5.0, 0.0], [0.0, 2.0]],  # b = 0, a < c
        [[3.0, 0.0], [0.0, 3.0]],  # a multiple of I: any unit vector
        [[1.0, -2.0], [-2.0, 1.0]],  # a = c, b ≠ 0
        [[0.0, 1.0], [1.0, 0.0]],  # ±1
        [[-4.0, 1.0], [1.0, -3.0]],  # negative definite
        [[1e-3, 1.0], [1.0, 1e-3 + 1e-9]],  # nearly a = c
        [[0.0, 0.0], [0.0, 0.0]],
    ]
    for dtype, rtol in ((jnp.float64, 1e-12), (jnp.float32, 1e-6)):
        with jax.enable_x64(dtype == jnp.float64):
            for c in cases:
                a = np.array(c)
                eig = _solve(DenseEigh(), jnp.asarray(a, dtype), jnp.ones(2, dtype))
                assert eig.value.dtype == dtype
                _check(eig, a, rtol=rtol)
    with jax.enable_x64(True):  # n = 3 (unrolled columns, eigh) next to n = 2 (closed form) and n = 8
        a = _spectral([-4.0, 0.5, 1.0], 3)
        _check(_solve(DenseEigh(), jnp.asarray(a), jnp.ones(3)), a, rtol=1e-12)


def _ell_derivs(name, s, beta=None):
    """Closed forms (numpy): ℓ'(s), ℓ''(s)."""
    if name == "rsym":
        return np.tanh(s), 1.0 - np.tanh(s) ** 2
    if name == "sqrt":
        return s / np.sqrt(1.0 + s * s), (1.0 + s * s) ** -1.5
    if name == "huber":
        return np.clip(s, -1.0, 1.0), float(abs(s) < 1.0)
    c, r = (beta / (beta + 1.0)) ** beta / (beta + 1.0), (beta + 1.0) / beta
    if abs(s) < r:
        return s * (1.0 - c * abs(s) ** beta), 1.0 - c * (beta + 1.0) * abs(s) ** beta
    return np.sign(s), 0.0


def product_hessian(name, xy, beta=None):
    """∇²ℓ(xy) = ℓ''(xy)[y; x][y; x]ᵀ + ℓ'(xy)[[0, 1], [1, 0]]."""
    x, y = xy
    d1, d2 = _ell_derivs(name, x * y, beta)
    u = np.array([y, x])
    return d2 * np.outer(u, u) + d1 * np.array([[0.0, 1.0], [1.0, 0.0]])


PRODUCT_CASES = [("rsym", None), ("sqrt", None), ("huber", None), ("beta", 1.5), ("beta", 4.0)]
# on the axes (PSD), off them (indefinite), x = −y (``ones`` is the *lower* eigenvector), |xy| > 1
# (points avoid |xy| = 1 and r_β, where ℓ'' of Huber/ℓ_β jumps)
PRODUCT_POINTS = [(0.0, 2.0), (0.5, 1.9), (-0.7, 1.3), (0.8, -0.8), (1.1, -1.1), (2.0, 2.0), (3.0, -0.9), (0.1, 0.1)]


PRODUCT_SOLVERS = {"dense": DenseEigh(), "power": POWER, "lanczos": Lanczos(order=2)}


@pytest.mark.parametrize("loss,beta", PRODUCT_CASES)
def test_solvers_on_product_loss_hessians(loss, beta):
    """Closed-form ∇²ℓ(xy) (n = 2: DenseEigh's closed-form path): indefinite off the axes, ±1 where ℓ'' = 0."""
    with jax.enable_x64(True):
        for point in PRODUCT_POINTS:
            h = product_hessian(loss, point, beta)
            if point[0] != 0.0:
                assert np.linalg.det(h) < 0  # indefinite off the axes
            for name, solver in PRODUCT_SOLVERS.items():
                eig = _solve(solver, jnp.asarray(h), jnp.asarray([1.0, 0.3]))
                _check(eig, h, rtol=1e-9, residual_bound=name != "power")
            # ones is an eigenvector at x = ±y, of the lower eigenvalue at x = −y: Lanczos restarts
            # (power iteration cannot leave an exact eigenvector, see PowerIteration's docstring)
            for name in ("dense", "lanczos"):
                _check(_solve(PRODUCT_SOLVERS[name], jnp.asarray(h), jnp.ones(2)), h, rtol=1e-9)


@eqx.filter_jit
def _product_sharpness(problem, points, solver):
    return jax.vmap(lambda p: sharpness(problem.loss, p, solver))(points)


def test_sharpness_of_product_loss():
    """End to end through ``sharpness(problem.loss, θ)``: default solver (Lanczos(order=10) > n, from
    a generic v0) and DenseEigh, at points where ∇² is indefinite; rsym at (2, 2) has eigenvalues
    1.0101 and −0.9993, a nearly symmetric spectrum."""
    with jax.enable_x64(True):
        # (the two βs share a compile: β is a traced leaf)
        for loss, beta, solver in (("rsym", None, None), ("beta", 1.5, DenseEigh()), ("beta", 4.0, DenseEigh())):
            eigs = _product_sharpness(ProductLoss(loss, beta=beta), jnp.asarray(PRODUCT_POINTS), solver)
            for i, point in enumerate(PRODUCT_POINTS):
                _check(jax.tree.map(lambda a, i=i: a[i], eigs), product_hessian(loss, point, beta), rtol=1e-9)


# ----------------------------------------------------------------------------- hvp / scale / pytrees


def _pytree_loss(p, data):
    return jnp.sum(jnp.tanh(data @ p["w"] + p["b"]) ** 2) + 0.1 * jnp.sum(p["w"] ** 4) - jnp.prod(p["b"])


def _pytree_problem(seed):
    """A non-quadratic loss of {"w": (3, 2), "b": (2,)} with mixed partials, and its dense Hessian."""
    rng = np.random.default_rng(seed)
    data = jnp.asarray(rng.normal(size=(4, 3)))
    params = {"w": jnp.asarray(rng.normal(size=(3, 2))), "b": jnp.asarray(rng.normal(size=(2,)))}
    return data, params, ravel_pytree(params)[1], np.asarray(_pytree_dense(params, data))


@jax.jit
def _pytree_dense(params, data):
    flat, unravel = ravel_pytree(params)
    return jax.hessian(lambda z: _pytree_loss(unravel(z), data))(flat)


@jax.jit
def _pytree_hvp(params, data, v):
    return hvp(lambda p: _pytree_loss(p, data), params, v)


@jax.jit
def _pytree_matvec(params, data, scale, v):
    matvec, n = hessian_matvec(lambda p: _pytree_loss(p, data), params, scale)
    assert n == v.shape[0]
    return matvec(v)


@eqx.filter_jit
def _pytree_sharpness(params, data, solver, scale=None):
    if scale is None:
        return sharpness(lambda p: _pytree_loss(p, data), params, solver)
    matvec, n = hessian_matvec(lambda p: _pytree_loss(p, data), params, scale)
    return solver(matvec, jnp.ones(n, ravel_pytree(params)[0].dtype))


def test_hvp_matches_dense_hessian_on_pytrees():
    with jax.enable_x64(True):
        for seed in range(3):
            data, params, unravel, dense = _pytree_problem(seed)
            assert dense.shape == (8, 8)
            v = np.random.default_rng(seed + 100).normal(size=8)
            out = _pytree_hvp(params, data, unravel(jnp.asarray(v)))
            assert jax.tree.structure(out) == jax.tree.structure(params)
            np.testing.assert_allclose(ravel_pytree(out)[0], dense @ v, rtol=1e-12, atol=1e-12)
            # the flat matvec without a scale is the same thing
            flat_hv = _pytree_matvec(params, data, None, jnp.asarray(v))
            np.testing.assert_allclose(flat_hv, dense @ v, rtol=1e-12, atol=1e-12)


def test_hessian_matvec_with_scale_pytree():
    with jax.enable_x64(True):
        data, params, _, dense = _pytree_problem(1)
        rng = np.random.default_rng(2)
        scale = {"w": jnp.asarray(rng.uniform(0.1, 4.0, (3, 2))), "b": jnp.asarray([0.5, 9.0])}
        s_half = np.diag(np.sqrt(np.asarray(ravel_pytree(scale)[0])))
        expected = s_half @ dense @ s_half
        for v in [*np.eye(8)[:3], rng.normal(size=8)]:
            scaled_hv = _pytree_matvec(params, data, scale, jnp.asarray(v))
            np.testing.assert_allclose(scaled_hv, expected @ v, rtol=1e-12, atol=1e-12)
        # λ_max(S½HS½) is the sharpness that sets GD's threshold 2/η for θ ← θ − η S∇f
        eig = _pytree_sharpness(params, data, DenseEigh(), scale)
        _check(eig, expected, rtol=1e-10)
        assert abs(float(eig.value) - np.linalg.eigvalsh(dense)[-1]) > 1e-3  # the scale matters


def test_sharpness_on_pytree_params():
    with jax.enable_x64(True):
        for seed in range(2):
            data, params, _, dense = _pytree_problem(seed)
            for solver in (DenseEigh(), Lanczos(order=8)):
                _check(_pytree_sharpness(params, data, solver), dense, rtol=1e-10)
        data, params, _, dense = _pytree_problem(0)
        data32, params32 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), (data, params))
    eig = _pytree_sharpness(params32, data32, Lanczos(order=8))
    assert eig.value.dtype == jnp.float32
    _check(eig, dense, rtol=1e-5)


def test_solver_validation():
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="order"):
            Lanczos(order=bad)
        with pytest.raises(ValueError, match="num_iters"):
            PowerIteration(num_iters=bad)


# ----------------------------------------------------------------------------- property test


@settings(max_examples=25, deadline=None)
@given(
    m=hnp.arrays(np.float64, (N, N), elements=st.floats(-10.0, 10.0, allow_subnormal=False)),
    shift=st.floats(-30.0, 30.0),
)
def test_property_random_symmetric(m, shift):
    """Exact solvers give eigvalsh's top; any estimate is ≤ λ_max and within its residual of an
    eigenvalue, with ‖Hv − λv‖ ≤ residual (the residual is an honest error bar)."""
    a = 0.5 * (m + m.T) + shift * np.eye(N)
    eigs = np.linalg.eigvalsh(a)
    scale = max(1.0, np.abs(eigs).max())
    tol = 1e-9 * scale
    with jax.enable_x64(True):
        aj, v0 = jnp.asarray(a), jnp.asarray(_v0())
        for solver in EXACT.values():
            eig = _solve(solver, aj, v0)
            assert abs(float(eig.value) - eigs[-1]) <= tol
            assert abs(float(jnp.linalg.norm(eig.vector)) - 1.0) <= 1e-9
        for solver in (Lanczos(order=3), POWER):
            eig = _solve(solver, aj, v0)
            value, vec, res = float(eig.value), np.asarray(eig.vector), float(eig.residual)
            assert abs(np.linalg.norm(vec) - 1.0) <= 1e-9
            assert value <= eigs[-1] + tol
            assert np.linalg.norm(a @ vec - value * vec) <= res + tol
            assert np.min(np.abs(eigs - value)) <= res + tol


@pytest.mark.slow
def test_warm_started_low_order_lanczos_tracks_the_sharpness_along_a_sweep():
    """The cheap setting the benchmarks recommend: Lanczos(order=3), warm-started through the scan,
    against the dense top eigenvalue at every record of a small tanh network's GD trajectories."""
    import sweepjax as sj

    x = jax.random.normal(jax.random.key(0), (64, 8))
    target = jnp.sin(x[:, 0]) + x[:, 1]

    def loss(p):
        return 0.5 * jnp.mean((jnp.tanh(x @ p["w1"]) @ p["w2"] - target) ** 2)

    prob = sj.problems.Objective(loss, params_like={"w1": jnp.zeros((8, 16)), "w2": jnp.zeros(16)})
    k1, k2 = jax.random.split(jax.random.key(1))
    inits = {"w1": jax.random.normal(k1, (2, 8, 16)) / np.sqrt(8), "w2": jax.random.normal(k2, (2, 16)) / 4}
    lrs = np.array([0.05, 0.2, 0.5, 1.0])  # the last ends at the edge of stability (λ·η/2 ≈ 1)
    exact = sj.sweep(prob, lrs, inits, num_steps=400, record=sj.Record(every=10, sharpness=DenseEigh()))
    cheap = sj.sweep(prob, lrs, inits, num_steps=400, record=sj.Record(every=10, sharpness=Lanczos(order=3)))
    assert not exact.diverged.any()
    np.testing.assert_allclose(exact.final["sharpness"][-1] * lrs[-1] / 2, 1.0, atol=0.05)
    rel = (exact["sharpness"] - cheap["sharpness"]) / exact["sharpness"]
    assert np.all(rel > -1e-4)  # a Ritz value never exceeds λ_max (up to rounding)
    assert np.max(rel[:3, :, 5:]) < 1e-3  # stable runs, once the warm start has settled
    assert np.median(rel) < 1e-4 and np.max(rel[3, :, 5:]) < 0.25  # at EoS the top direction turns: ~10%


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(solver="lanczos"), TypeError, "solver must be an eigensolver"),
        (dict(f=3.0), TypeError, "f must be a function"),
        (dict(v0=jnp.ones(3)), ValueError, r"v0 must be a flat vector of shape \(2,\)"),
    ],
)
def test_sharpness_bad_input_names_the_argument(kwargs, error, match):
    args = {"f": lambda th: th[0] ** 2 + 3 * th[1] ** 2, "params": jnp.ones(2), **kwargs}
    with pytest.raises(error, match=match):
        sharpness(**args)
