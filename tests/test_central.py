"""CentralFlow (the central flow of GD at the edge of stability, single-eigenvalue form) against exact answers: gradient
flow on a quadratic, the exact stationary point of ½(xy − 1)² held at S = 2/η, ∇S against finite differences of eigh,
a sweep over η; and the central-flow experiment's quick check."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sweepjax as sj
from sweepjax._central import CentralFlow, sharpness_gradient

A3 = np.array([[1.0, 0.2, 0.0], [0.2, 0.5, 0.1], [0.0, 0.1, 0.05]])  # SPD, λ_max ≈ 1.07
EIG3, VEC3 = np.linalg.eigh(A3)


def _quad3(theta):
    return 0.5 * theta @ (jnp.asarray(A3, theta.dtype) @ theta)


def _product(theta):  # ½(xy − 1)²: gradient flow from x = y = 0.1 sharpens to S = 2 at (1, 1)
    return 0.5 * (theta[0] * theta[1] - 1.0) ** 2


QUAD3 = sj.problems.Objective(_quad3, params_like=np.zeros(3))
PRODUCT = sj.problems.Objective(_product, params_like=np.zeros(2))


def test_quadratic_below_the_edge_is_gradient_flow():
    """S = λ_max(A) ≈ 1.07 < 2/η = 4 and ∇S = 0: σ² = 0 and θ(τ_k) = exp(−τ_k A)θ₀ up to Heun's O(h²) error
    (halving h = η/substeps quarters it)."""
    inits = np.array([[1.0, -2.0, 0.5], [0.3, 0.1, -1.0]])
    errors = []
    for substeps in (8, 16):
        res = sj.sweep(
            QUAD3, np.array([0.5]), inits, num_steps=40, rule=CentralFlow(substeps=substeps),
            record=sj.Record(every=5, sharpness=None), dtype=jnp.float64, batch_size=None,
        )  # fmt: skip
        tau = res.records["flow_time"][0, 0]
        np.testing.assert_allclose(tau, 0.5 * res.steps, rtol=1e-12)
        exact = np.einsum("ij,kj,lj,l->ki", VEC3, np.exp(-np.outer(tau, EIG3)), VEC3, inits[-1])
        loss = 0.5 * np.einsum("ki,ij,kj->k", exact, A3, exact)
        np.testing.assert_allclose(res.records["loss"][0, -1], loss, rtol=1e-3)
        errors.append(np.abs(res.final_params[0, -1] - exact[-1]).max() / np.abs(exact[-1]).max())
        assert np.all(res.records["sigma2"] == 0.0)
        np.testing.assert_allclose(res.records["central_loss"], res.records["loss"], rtol=1e-12)
        np.testing.assert_allclose(res.records["central_sharpness"], EIG3[-1], rtol=1e-10)
    assert errors[1] < 1e-4 and 3.5 < errors[0] / errors[1] < 4.5, errors


def test_holds_the_sharpness_at_two_over_eta_at_the_exact_stationary_point():
    """½(xy − 1)² at η = 4/3: gradient flow from x = y would reach S = 2 > 2/η = 1.5; the central flow stops on x = y
    where S = 3a² − 1 = 1.5 (a² = 5/6), with ∇L + ½σ²∇S = 0: σ² = 2(1 − a²)/3 = 1/9, L + ½σ²S = 1/72 + 1/12 = 7/72."""
    eta = 4.0 / 3.0
    inits = np.array([[0.1, 0.1], [0.1, 0.15]])
    res = sj.sweep(
        PRODUCT, np.array([eta]), inits, num_steps=300, rule=CentralFlow(),
        record=sj.Record(every=1, sharpness=None), dtype=jnp.float64, batch_size=None,
    )  # fmt: skip
    assert np.all(res.status == sj.Status.OK)
    s = res.records["central_sharpness"][0]
    sigma2 = res.records["sigma2"][0]
    for j in range(2):
        onset = np.flatnonzero(sigma2[j] > 0)[0]
        assert 0 < onset < 100
        assert np.all(s[j] <= 2 / eta * (1 + 1e-3))  # never past the edge
        np.testing.assert_allclose(s[j, onset + 20 :], 2 / eta, rtol=1e-3)
        assert np.all(np.diff(res.records["loss"][0, j]) <= 1e-12)  # the loss L(θ) decreases
    np.testing.assert_allclose(res.final_params[0], np.sqrt(5 / 6), rtol=1e-6)
    np.testing.assert_allclose(res.final["sigma2"][0], 1 / 9, rtol=1e-6)
    np.testing.assert_allclose(res.final["central_loss"][0], 7 / 72, rtol=1e-6)
    np.testing.assert_allclose(res.final["loss"][0], 1 / 72, rtol=1e-6)


def _mlp(theta):  # a tiny tanh net on fixed data: 13 parameters, a simple top Hessian eigenvalue
    X = jnp.linspace(-1.0, 1.0, 12, dtype=theta.dtype).reshape(4, 3)
    y = jnp.array([0.5, -1.0, 1.5, 0.2], theta.dtype)
    w, v, b = theta[:9].reshape(3, 3), theta[9:12], theta[12]
    return 0.5 * jnp.mean((jnp.tanh(X @ w) @ v + b - y) ** 2)


def test_sharpness_gradient_matches_finite_differences_of_eigh():
    with jax.enable_x64(True):
        theta = jnp.asarray(np.random.default_rng(0).normal(size=13))
        top = jax.jit(lambda p: jnp.linalg.eigvalsh(jax.hessian(_mlp)(p))[-1])
        evals, evecs = np.linalg.eigh(np.asarray(jax.hessian(_mlp)(theta)))
        assert evals[-1] - evals[-2] > 1e-2 * abs(evals[-1])  # simple top eigenvalue
        grad = np.asarray(sharpness_gradient(_mlp, theta, jnp.asarray(evecs[:, -1])))
        h = 1e-5
        fd = np.array([(top(theta.at[i].add(h)) - top(theta.at[i].add(-h))) / (2 * h) for i in range(13)])
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8 * np.abs(fd).max())


def test_a_sweep_over_eta_runs_each_eta_as_alone():
    lrs = np.array([1.2, 4 / 3, 1.45])
    init = np.array([[0.1, 0.12]])
    kw = {
        "num_steps": 150,
        "rule": CentralFlow(),
        "record": sj.Record(every=10, sharpness=None),
        "dtype": jnp.float64,
        "batch_size": None,
    }
    res = sj.sweep(PRODUCT, lrs, init, **kw)
    alone = sj.sweep(PRODUCT, lrs[1:2], init, **kw)
    for name in ("loss", "central_loss", "sigma2", "central_sharpness"):
        np.testing.assert_allclose(res.records[name][1], alone.records[name][0], rtol=1e-9, atol=1e-12)
    for i, eta in enumerate(lrs):
        s = res.records["central_sharpness"][i, 0]
        assert np.all(s <= 2 / eta * (1 + 1e-3)) and abs(s[-1] - 2 / eta) < 1e-3 * 2 / eta
    if "edge" in res.records:
        np.testing.assert_allclose(res.records["edge"][:, 0, -1], 2 / lrs)


def test_rejects_bad_settings():
    with pytest.raises(ValueError, match="substeps"):
        CentralFlow(substeps=0)
    with pytest.raises(ValueError, match="relax"):
        sj.sweep(PRODUCT, np.array([1.0]), np.array([[0.1, 0.1]]), num_steps=2, rule=CentralFlow(relax=-1.0),
                 record=sj.Record(sharpness=None))  # fmt: skip
