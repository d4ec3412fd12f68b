import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sweepjax as sj
from sweepjax import theory
from sweepjax._result import SweepResult


def _result(lrs, inits):
    n_lr, n_init = len(lrs), len(inits)
    z = np.zeros((n_lr, n_init))
    return SweepResult(
        lrs=np.asarray(lrs, float), steps=np.array([0]), inits=inits, records={}, final={}, final_params=None,
        status=np.zeros((n_lr, n_init), np.int8), diverged_step=z + np.nan, num_steps=z.astype(int), metadata={},
    )  # fmt: skip


def test_eos_limit_values():
    assert theory.eos_limit(0.25) == 8.0
    np.testing.assert_allclose(theory.eos_limit(np.array([0.5, 2.0, 0.01])), [4.0, 1.0, 200.0])
    np.testing.assert_allclose(theory.eos_limit([0.5, 1.0]), [4.0, 2.0])


def test_ahn_limiting_sharpness_values():
    # Fig. 9 of Ahn et al.: η = 1/4 (2/η = 8); (3, 4) is in the GF regime (7 < 8), (3, 6) in the EoS regime
    assert theory.ahn_limiting_sharpness(0.25, 3.0, 4.0) == 7.0
    assert theory.ahn_limiting_sharpness(0.25, 3.0, 6.0) == 8.0
    assert theory.gradient_flow_sharpness(3.0, 6.0) == 27.0
    assert not theory.ahn_is_eos(0.25, 3.0, 4.0) and theory.ahn_is_eos(0.25, 3.0, 6.0)
    # broadcasting: (n_lr, 1) against (n_init,)
    lrs = np.array([0.1, 0.5, 1.0])[:, None]
    x0, y0 = np.array([0.0, 1.0]), np.array([2.0, 3.0])  # gaps 4 and 8
    expected = [[4.0, 8.0], [4.0, 4.0], [2.0, 2.0]]
    np.testing.assert_allclose(theory.ahn_limiting_sharpness(lrs, x0, y0), expected)


def test_jax_arrays_stay_jax_and_trace():
    out = theory.ahn_limiting_sharpness(jnp.array([0.1, 1.0]), 1.0, 2.0)
    assert isinstance(out, jax.Array)
    np.testing.assert_allclose(out, [3.0, 2.0])
    jitted = jax.jit(jax.vmap(theory.ahn_limiting_sharpness, in_axes=(0, None, None)))
    np.testing.assert_allclose(jitted(jnp.array([0.1, 1.0]), 1.0, 2.0), [3.0, 2.0])
    np.testing.assert_allclose(jax.jit(theory.eos_limit)(0.5), 4.0)


def test_ahn_prediction_on_grid():
    inits = np.array([[1.0, 2.0], [0.0, 3.0], [2.0, 2.0]])  # gaps 3, 9, 0
    res = _result([0.5, 0.1], inits)
    np.testing.assert_allclose(theory.ahn_prediction(res), [[3.0, 4.0, 0.0], [3.0, 9.0, 0.0]])
    assert theory.ahn_prediction(res).shape == res.shape


def test_ahn_prediction_matches_a_real_product_sweep():
    problem = sj.problems.ProductLoss("sqrt")
    lrs = np.array([0.05, 0.2])
    inits = problem.init_grid(np.array([4.0, 20.0]), x0=0.5)  # GF for both at η = 0.05; EoS at η = 0.2 for gap 20
    res = sj.sweep(problem, lrs, inits, num_steps=4000, record=sj.Record(every=4000))
    pred = theory.ahn_prediction(res)
    np.testing.assert_allclose(pred, [[4.0, 20.0], [4.0, 10.0]], rtol=1e-5)
    assert theory.within_tolerance(res["final_sharpness"], pred, 0.05).all()


def test_ahn_prediction_rejects_other_inits():
    with pytest.raises(ValueError, match=r"\(n_init, 2\)"):
        theory.ahn_prediction(_result([0.1], np.zeros((3, 4))))
    with pytest.raises(ValueError, match=r"\(n_init, 2\)"):
        theory.ahn_prediction(_result([0.1], {"w": np.zeros((3, 2))}))


def test_within_tolerance():
    got = theory.within_tolerance([1.0, 1.06, np.nan, -2.0], [1.0, 1.0, 1.0, -2.1], rtol=0.05)
    np.testing.assert_array_equal(got, [True, False, False, True])
    with pytest.raises(ValueError, match="rtol"):
        theory.within_tolerance(1.0, 1.0, rtol=-1)


def test_huang_edges_are_linear_stability_and_ntk_growth():
    """η·λ₀·ℓ''(0) = 2 (lazy → catapult) and = 4 (NTK-growth onset), ℓ''(0) = 1 (exp), 1/4 (logistic);
    the same under jit, and broadcasting over λ₀."""
    lam0 = np.array([0.25, 0.5, 2.0])
    np.testing.assert_allclose(theory.huang_catapult_lr(lam0, "exp") * lam0, 2.0)
    np.testing.assert_allclose(theory.huang_catapult_lr(lam0, "logistic") * lam0 / 4, 2.0)
    np.testing.assert_allclose(theory.huang_ntk_growth_lr(lam0, "exp") * lam0, 4.0)
    np.testing.assert_allclose(theory.huang_ntk_growth_lr(lam0, "logistic") * lam0 / 4, 4.0)
    jitted = jax.jit(theory.huang_ntk_growth_lr, static_argnums=1)(jnp.asarray(lam0), "logistic")
    assert isinstance(jitted, jax.Array)
    np.testing.assert_allclose(jitted, 16.0 / lam0, rtol=1e-6)
