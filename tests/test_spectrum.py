"""Spectrum kernels against exact computations on H = Q diag(λ) Qᵀ with known λ (float64 unless noted).

TopK against ``eigh`` (cold, warm, most negative, degenerate, small n, breakdown, vmap, float32, cost);
Hutchinson and SLQ against the exact quadratic forms zᵀH^p z of the same probes (Gauss quadrature is
exact for p ≤ 2·order − 1) and against tr(H^p) for full-order SLQ with unit-vector probes; matfree's
Lanczos quadrature as an independent cross-check where it applies (no breakdown: it has no restart).
``Lanczos`` (which shares the tridiagonalisation with ``slq``) is pinned by tests/test_curvature.py.
Solvers run through one ``filter_jit`` so each (solver, shape, dtype) compiles once.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sweepjax._spectrum import (
    Eigs,
    TopK,
    density,
    generic_block,
    hutchinson_trace,
    negative_mass,
    rademacher,
    slq,
    spectral_moment,
)

N = 40
SEPARATED = np.concatenate([[10.0, 8.0, 6.0, 4.5, 3.5], np.linspace(-2.0, 2.0, N - 5)])


def _spectral(eigs, seed):
    """Q diag(eigs) Qᵀ with a random orthogonal Q (float64 numpy)."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(len(eigs), len(eigs))))
    return (q * np.asarray(eigs, float)) @ q.T


@eqx.filter_jit
def _topk(solver, a, v0):
    return solver(lambda v: a @ v, v0)


@eqx.filter_jit
def _slq(a, probes, order):
    return slq(lambda v: a @ v, probes, order)


def _check_eigs(eigs: Eigs, a, k, rtol, largest=True):
    """values = the k largest (or smallest) eigenvalues, vectors orthonormal eigenvectors, residuals honest."""
    a = np.asarray(a, np.float64)
    exact = np.linalg.eigvalsh(a)
    exact = exact[::-1][:k] if largest else exact[:k]
    scale = np.abs(exact).max()
    values, vecs, res = (np.asarray(x, np.float64) for x in (eigs.values, eigs.vectors, eigs.residuals))
    np.testing.assert_allclose(values, exact, rtol=rtol, atol=rtol * scale)
    true_res = np.linalg.norm(a @ vecs - vecs * values, axis=0)
    np.testing.assert_allclose(res, true_res, atol=10 * rtol * scale)  # the residuals are the true ones
    np.testing.assert_allclose(vecs.T @ vecs, np.eye(k), atol=10 * rtol)
    assert np.all(true_res <= np.sqrt(rtol) * scale)


# ----------------------------------------------------------------------------- TopK

COLD = TopK(k=5, iters=4, restarts=4)  # 17 block matvecs: converged to rounding on the spectra below


@eqx.filter_jit
def _topk_batch(solver, mats, v0s):
    return jax.vmap(lambda a, v: solver(lambda u: a @ u, v))(mats, v0s)


def _row(eigs, i):
    return jax.tree.map(lambda x: x[i], eigs)


def test_topk_cold_degenerate_and_breakdown_starts_vmapped():
    """One vmapped call over (H, V0) pairs, each against eigh: a cold start (fixed generic block) on a
    separated spectrum; a triple and a double top eigenvalue and a 1e-6 cluster (values right, vectors
    in the eigenspaces); V0 = exact eigenvectors of *lower* eigenvalues (a stale warm start: HV0 ⊂
    span V0), zeros and repeated columns (fixed generic vectors are swapped in), and the exact top
    eigenvectors. Single calls give the same numbers as the batch."""
    sep = _spectral(SEPARATED, 0)
    _, q = np.linalg.eigh(sep)
    degenerate = np.concatenate([[5.0, 5.0, 5.0, 3.0, 3.0], np.linspace(-1.0, 1.0, N - 5)])
    cluster = np.concatenate([[4.0, 4.0 - 1e-6, 4.0 - 2e-6, 3.0, 3.0 - 1e-7], np.linspace(-1.0, 1.0, N - 5)])
    cold = np.asarray(generic_block(N, 5))
    cases = [
        (sep, cold),
        (_spectral(degenerate, 3), cold),
        (_spectral(cluster, 4), cold),
        (sep, q[:, 10:15]),
        (sep, np.zeros((N, 5))),
        (sep, np.repeat(np.random.default_rng(0).normal(size=(N, 1)), 5, axis=1)),
        (sep, q[:, ::-1][:, :5]),
    ]
    mats, v0s = (np.stack(x) for x in zip(*cases))
    with jax.enable_x64(True):
        out = _topk_batch(COLD, jnp.asarray(mats), jnp.asarray(v0s))
        for i, a in enumerate(mats):
            _check_eigs(_row(out, i), a, 5, rtol=1e-10)
            assert np.all(np.diff(np.asarray(out.values[i])) <= 0)  # descending
        for i in (0, 3):
            one = _topk(COLD, jnp.asarray(mats[i]), jnp.asarray(v0s[i]))
            np.testing.assert_allclose(out.values[i], one.values, rtol=1e-12)
            np.testing.assert_allclose(out.residuals[i], one.residuals, atol=1e-10)


def test_topk_warm_starts_and_accuracy_vs_block_matvecs():
    """Warm starts along slowly perturbed matrices: each call with 3 block matvecs is within 1e-4 of eigh
    (from the previous call's vectors); from the vectors of a further-off H the error falls fast with the
    number of block matvecs."""
    a = _spectral(SEPARATED, 1)
    rng = np.random.default_rng(1)
    warm = TopK(k=5, iters=3)
    with jax.enable_x64(True):
        eigs = _topk(COLD, jnp.asarray(a), generic_block(N, 5))
        for _ in range(3):
            e = rng.normal(size=(N, N))
            a = a + 1e-3 * (e + e.T)
            eigs = _topk(warm, jnp.asarray(a), eigs.vectors)
            _check_eigs(eigs, a, 5, rtol=1e-4)
        e = rng.normal(size=(N, N))
        a1 = a + 3e-2 * (e + e.T)
        exact = np.linalg.eigvalsh(a1)[::-1][:5]
        errs = []
        for iters in (2, 3):
            out = _topk(TopK(k=5, iters=iters), jnp.asarray(a1), eigs.vectors)
            errs.append(np.max(np.abs(np.asarray(out.values) - exact)))
            assert np.all(np.asarray(out.values) <= exact + 1e-12)  # Ritz values: lower bounds (interlacing)
    assert errs[0] > 5 * errs[1] and errs[1] < 1e-4 * exact[0], errs


def test_topk_most_negative():
    """which="smallest": the k most negative eigenvalues, ascending, also when |λ_min| < λ_max."""
    eigs = np.concatenate([[-9.0, -8.0, -7.0, -6.0, -5.0], np.linspace(-1.0, 9.0, N - 5)])
    a = _spectral(eigs, 2)
    with jax.enable_x64(True):
        out = _topk(TopK(k=5, iters=4, restarts=4, which="smallest"), jnp.asarray(a), generic_block(N, 5))
        _check_eigs(out, a, 5, rtol=1e-10, largest=False)
        assert np.all(np.diff(np.asarray(out.values)) > 0)


def test_topk_small_n_exact_and_padded():
    """n ≤ k·iters: the dense H is diagonalised (n matvecs, exact); k > n pads with NaN (values,
    residuals) and zero vectors; n just above k·iters runs the Krylov path on a basis of nearly ℝⁿ."""
    with jax.enable_x64(True):
        for n in (2, 15):
            a = _spectral(np.linspace(-3.0, 4.0, n) + 0.1 * np.arange(n) ** 2, n)
            out = _topk(TopK(k=5, iters=3), jnp.asarray(a), jnp.ones((n, 5)))
            k = min(5, n)
            _check_eigs(jax.tree.map(lambda x, k=k: x[..., :k], out), a, k, rtol=1e-12)
            assert np.all(np.isnan(np.asarray(out.values[k:]))) and np.all(np.isnan(np.asarray(out.residuals[k:])))
            assert not np.any(np.asarray(out.vectors[:, k:]))
        a = _spectral(np.linspace(-3.0, 4.0, 16), 16)
        _check_eigs(_topk(TopK(k=5, iters=3, restarts=6), jnp.asarray(a), jnp.ones((16, 5))), a, 5, rtol=1e-10)


def test_topk_float32():
    both = np.concatenate([[10.0, 8.0, 6.0, 4.5, 3.5], np.linspace(-1.0, 2.0, N - 10), [-6.0, -5.0, -4.0, -3.2, -2.6]])
    mats = np.stack([_spectral(both, 6), -_spectral(both, 7)])  # largest of −H = −(smallest of H)
    out = _topk_batch(COLD, jnp.asarray(mats, jnp.float32), jnp.stack([generic_block(N, 5, jnp.float32)] * 2))
    assert out.values.dtype == jnp.float32
    for i, a in enumerate(mats):
        _check_eigs(_row(out, i), a, 5, rtol=1e-5)


def test_topk_residuals_flag_unconverged_estimates():
    """Two block matvecs from a cold start on a clustered spectrum: not converged, and the residuals say
    so; each value is within its residual of an eigenvalue and below λ_max (Ritz values)."""
    lam = np.concatenate([np.linspace(0.0, 0.9, N - 5), np.linspace(0.95, 1.0, 5)])
    a = _spectral(lam, 7)
    with jax.enable_x64(True):
        out = _topk(TopK(k=5, iters=2), jnp.asarray(a), generic_block(N, 5))
    values, vecs, res = (np.asarray(x) for x in (out.values, out.vectors, out.residuals))
    assert np.max(np.abs(values - lam[::-1][:5])) > 1e-3
    assert np.all(res > 1e-2)
    np.testing.assert_allclose(res, np.linalg.norm(a @ vecs - vecs * values, axis=0), rtol=1e-8)
    assert np.all(np.min(np.abs(lam[:, None] - values[None]), axis=0) <= res * (1 + 1e-8))
    assert np.all(values <= lam.max() + 1e-12)


def test_topk_cost_is_fixed():
    """matvec is called ``matvecs`` times per call (``block_matvecs`` times when vmapped), whatever the
    restarts; the mapped and vmapped block matvecs give the same numbers."""
    n = 12
    a = jnp.asarray(_spectral(np.linspace(-1.0, 3.0, n), 9), jnp.float32)
    calls = []

    def matvec(v):
        calls.append(1)
        return a @ v

    values = {}
    for batch in ("map", "vmap"):
        solver = TopK(k=2, iters=3, restarts=2, batch=batch)
        calls.clear()
        with jax.disable_jit():  # loops run in Python: one call of matvec per column (per block when vmapped)
            values[batch] = solver(matvec, generic_block(n, 2, jnp.float32)).values
        assert len(calls) == (solver.matvecs if batch == "map" else solver.block_matvecs) == {"map": 14, "vmap": 7}[batch]
    np.testing.assert_allclose(values["map"], values["vmap"], rtol=1e-5)
    assert TopK(k=5, iters=3).matvecs == 15 and TopK(k=4, iters=3, restarts=2).matvecs == 4 * 7


# ----------------------------------------------------------------------------- Hutchinson


def test_hutchinson_trace():
    """Exactly the mean of zᵀHz over the given probes; with many Rademacher probes near tr H."""
    lam = np.linspace(-1.0, 3.0, 30)
    a = _spectral(lam, 11)
    with jax.enable_x64(True):
        probes = rademacher(jax.random.key(0), 4000, 30, jnp.float64)
        assert probes.shape == (4000, 30) and probes.dtype == jnp.float64
        assert set(np.unique(np.asarray(probes))) == {-1.0, 1.0}
        z = np.asarray(probes)
        for batch in ("map", "vmap"):
            est = float(jax.jit(lambda p, b=batch: hutchinson_trace(lambda v: jnp.asarray(a) @ v, p, b))(probes[:7]))
            assert abs(est - np.mean(np.einsum("ki,ij,kj->k", z[:7], a, z[:7]))) <= 1e-12
        est = float(jax.jit(lambda p: hutchinson_trace(lambda v: jnp.asarray(a) @ v, p))(probes))
        # Var(zᵀHz) = 2 Σ_{i≠j} H_ij² for Rademacher probes: 5 standard errors
        sd = np.sqrt(2 * (np.sum(a**2) - np.sum(np.diag(a) ** 2)) / 4000)
        assert abs(est - lam.sum()) <= 5 * sd


# ----------------------------------------------------------------------------- SLQ


def test_slq_gauss_quadrature_is_exact_for_the_probes():
    """n·Σ w θ^p = n·Σ_k z_kᵀH^p z_k / Σ_k ‖z_k‖² (= Hutchinson's (1/K)Σ zᵀH^p z for Rademacher) for p ≤ 2·order − 1."""
    n, order, k = 30, 6, 4
    lam = np.concatenate([np.linspace(-2.0, 1.0, n - 2), [3.0, 4.0]])
    a = _spectral(lam, 12)
    with jax.enable_x64(True):
        probes = rademacher(jax.random.key(1), k, n, jnp.float64)
        nodes, weights = (np.asarray(x) for x in _slq(jnp.asarray(a), probes, order))
    assert nodes.shape == weights.shape == (k * order,)
    assert np.all(weights >= 0) and abs(weights.sum() - 1.0) <= 1e-12
    z = np.asarray(probes)
    for p in range(2 * order):
        exact = np.mean(np.einsum("ki,ij,kj->k", z, np.linalg.matrix_power(a, p), z))
        assert abs(spectral_moment(nodes, weights, p, n) - exact) <= 1e-8 * max(1.0, np.abs(lam).max() ** p) * n
    # not exact beyond 2·order − 1 (the quadrature has only `order` nodes per probe)
    p = 2 * order + 2
    exact = np.mean(np.einsum("ki,ij,kj->k", z, np.linalg.matrix_power(a, p), z))
    assert abs(spectral_moment(nodes, weights, p, n) - exact) > 1e-6 * abs(exact)


def test_slq_full_order_unit_probes_exact_traces_and_negative_mass():
    """Unit-vector probes e_1..e_n: Σ_i e_iᵀH^p e_i = tr(H^p). With order = n + 5 (breakdown at step n, rows
    past n dead) every moment is exact and the nodes are the eigenvalues; negative_mass is the exact
    fraction of negative eigenvalues; the order − n rows past the breakdown get weight exactly 0."""
    lam = np.concatenate([np.linspace(-3.0, -0.5, 13), np.linspace(0.5, 6.0, N - 13)])
    a, order = _spectral(lam, 13), N + 5
    with jax.enable_x64(True):
        nodes, weights = (np.asarray(x) for x in _slq(jnp.asarray(a), jnp.eye(N), order))
    assert abs(weights.sum() - 1.0) <= 1e-12 and np.all(weights >= 0)
    for p in range(13):
        exact = np.sum(lam**p)
        assert abs(spectral_moment(nodes, weights, p, N) - exact) <= 1e-8 * np.abs(lam).max() ** p * N, p
    assert abs(negative_mass(nodes, weights) - 13 / N) <= 1e-10
    assert np.all(np.sum(weights.reshape(N, order) == 0.0, axis=1) >= order - N)  # dead rows
    assert np.all((nodes >= lam.min() - 1e-8) & (nodes <= lam.max() + 1e-8))  # dead nodes inside the spectrum too
    live = weights > 1e-14
    assert np.all(np.min(np.abs(nodes[live][:, None] - lam[None]), axis=1) <= 1e-8)


def test_slq_invariant_krylov_space_keeps_the_quadrature_exact():
    """H block diagonal (3×3 and 12×12): the Krylov space of e_1 has dimension 3, Lanczos restarts and
    the restarted rows get weight 0, so every moment of e_1ᵀH^p e_1 stays exact (order 8 > 3)."""
    b1, b2 = _spectral([-1.0, 0.5, 2.0], 14), _spectral(np.linspace(-2.0, 3.0, 12), 15)
    a = np.block([[b1, np.zeros((3, 12))], [np.zeros((12, 3)), b2]])
    probes = np.zeros((2, 15))
    probes[0, 0], probes[1, 1] = 2.0, -1.0  # unequal norms: weights ‖z‖²-proportional
    with jax.enable_x64(True):
        nodes, weights = (np.asarray(x) for x in _slq(jnp.asarray(a), jnp.asarray(probes), 8))
    assert abs(weights.sum() - 1.0) <= 1e-12
    assert abs(weights[:8].sum() - 0.8) <= 1e-12
    for p in range(16):
        exact = sum(z @ np.linalg.matrix_power(a, p) @ z for z in probes) / np.sum(probes**2) * 15
        assert abs(spectral_moment(nodes, weights, p, 15) - exact) <= 1e-9 * 2.0**p * 15, p
    # nodes carrying weight are eigenvalues of the first block
    assert np.all(np.min(np.abs(nodes[weights > 1e-14][:, None] - np.array([-1.0, 0.5, 2.0])), axis=1) <= 1e-9)


def test_slq_vmap_and_float32():
    """vmap over matrices gives the single-matrix numbers; float32 weights sum to 1 and its moments
    match float64."""
    lam = np.concatenate([np.linspace(-2.0, 1.0, 28), [3.0, 4.0]])
    mats = np.stack([_spectral(lam * (1 + 0.2 * i), 16 + i) for i in range(3)])
    with jax.enable_x64(True):
        probes = rademacher(jax.random.key(2), 4, 30, jnp.float64)
        batched = eqx.filter_jit(jax.vmap(lambda a: slq(lambda v: a @ v, probes, 6)))(jnp.asarray(mats))
        one = _slq(jnp.asarray(mats[0]), probes, 6)
        np.testing.assert_allclose(batched[0][0], one[0], atol=1e-12)
        np.testing.assert_allclose(batched[1][0], one[1], atol=1e-12)
        ref = [spectral_moment(*(np.asarray(x) for x in batched), p, 30) for p in range(4)]
    nodes, weights = _slq(jnp.asarray(mats[0], jnp.float32), jnp.asarray(probes, jnp.float32), 6)
    assert nodes.dtype == weights.dtype == jnp.float32
    assert abs(float(weights.sum()) - 1.0) <= 1e-5
    for p in range(4):
        assert abs(float(spectral_moment(nodes, weights, p, 30)) - ref[p][0]) <= 1e-4 * 5.0**p * 30


def test_slq_matches_matfree():
    """matfree's Lanczos quadrature (no restart on breakdown: generic probes, order < n) gives the same
    quadrature for a non-polynomial f (here exp), so both build the same T."""
    import matfree.decomp as matfree_decomp  # (in the test extra: a missing package fails, never skips)
    import matfree.funm as matfree_funm
    n, order = 30, 6  # the shapes of the tests above: no new compile of ours
    a = _spectral(np.linspace(-1.0, 2.0, n), 17)
    with jax.enable_x64(True):
        probes = jax.random.normal(jax.random.key(3), (4, n), jnp.float64)
        nodes, weights = _slq(jnp.asarray(a), probes, order)
        quadform = matfree_funm.monte_carlo_funm_sym(matfree_funm.dense_funm_sym_eigh(jnp.exp), matfree_decomp.tridiag_sym(order))
        theirs = jax.vmap(lambda z: quadform(lambda v: jnp.asarray(a) @ v, z))(probes)  # ‖z‖² e₁ᵀ exp(T) e₁
        ours = float(jnp.sum(weights * jnp.exp(nodes)))
        assert abs(ours - float(jnp.sum(theirs) / jnp.sum(probes**2))) <= 1e-10


def test_slq_validation():
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="order"):
            slq(lambda v: v, jnp.ones((2, 3)), bad)
    with pytest.raises(ValueError, match="batch"):
        slq(lambda v: v, jnp.ones((2, 3)), 2, batch="loop")


# ----------------------------------------------------------------------------- summaries


def test_density_moment_and_negative_mass_summaries():
    """density integrates to ≈ 1 (numpy and jax inputs, leading batch axes); moments and negative mass
    vectorise over leading axes."""
    rng = np.random.default_rng(18)
    nodes = rng.uniform(-2.0, 3.0, (2, 3, 20))
    weights = rng.uniform(0.0, 1.0, (2, 3, 20))
    weights /= weights.sum(-1, keepdims=True)
    grid = np.linspace(-6.0, 7.0, 2001)
    for xp in (np, jnp):
        rho = density(xp.asarray(nodes), xp.asarray(weights), xp.asarray(grid), 0.3)
        assert rho.shape == (2, 3, 2001) and isinstance(rho, np.ndarray) == (xp is np)
        np.testing.assert_allclose(np.trapezoid(np.asarray(rho), grid, axis=-1), 1.0, atol=1e-6)
        moments = spectral_moment(xp.asarray(nodes), xp.asarray(weights), 2, 50)
        np.testing.assert_allclose(moments, 50 * np.sum(weights * nodes**2, -1), rtol=1e-6)
        mass = negative_mass(xp.asarray(nodes), xp.asarray(weights))
        assert mass.shape == (2, 3)
        np.testing.assert_allclose(mass, np.sum(weights * (nodes < 0), -1), rtol=1e-6)
    np.testing.assert_allclose(spectral_moment(nodes, weights, 0, 50), 50.0)
