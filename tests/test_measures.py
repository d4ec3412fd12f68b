"""Measurements (``Record(measures=...)``), each against an exact computation: gradient norm, batch
sharpness over enumerated minibatches, gradient-noise scale against per-sample gradients, the NTK's top
eigenvalue against a dense J Jᵀ; their cadence, dtype and layout in a sweep."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sweepjax as sj
from sweepjax._trajectory import cast_floats
from sweepjax.measures import random_batches
from sweepjax.problems import Objective, Supervised, TwoLayerLinear


def tanh_apply(params, X):
    return jnp.tanh(X @ params["w1"]) @ params["w2"]


def _supervised(n=12, d=3, h=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = rng.normal(size=(n,))
    params = {"w1": rng.normal(size=(d, h)) / np.sqrt(d), "w2": rng.normal(size=(h,)) / np.sqrt(h)}
    return Supervised(params, X, y, apply=tanh_apply), params


def _stack(params, k=2, scale=0.1, seed=1):
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda a: np.stack([a + scale * i * rng.normal(size=a.shape) for i in range(k)]), params)


def _dense_hessian(f, params):
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    return np.asarray(jax.hessian(lambda v: f(unravel(v)))(flat))


def _flat_grad(f, params):
    return np.asarray(jax.flatten_util.ravel_pytree(jax.grad(f)(params))[0])


def _final_params(res, i, j):
    return jax.tree.map(lambda a: a[i, j], res.final_params)


def test_grad_norm_is_the_norm_of_the_full_gradient():
    with jax.enable_x64(True):
        prob, params = _supervised()
        res = sj.sweep(
            prob, [0.05], _stack(params), num_steps=6, dtype=jnp.float64,
            record=sj.Record(every=3, sharpness=None, measures=[sj.measures.GradNorm()]),
        )  # fmt: skip
        for j in range(2):
            p = _final_params(res, 0, j)
            expected = np.linalg.norm(_flat_grad(prob.loss, p))
            np.testing.assert_allclose(res.final["grad_norm"][0, j], expected, rtol=1e-12)


def test_batch_sharpness_is_the_average_over_its_minibatches_of_gᵀHg_over_gᵀg():
    """Recomputed from the same minibatches (``random_batches``) with dense Hessians of each batch loss."""
    with jax.enable_x64(True):
        prob, params = _supervised(n=12)
        measure = sj.measures.BatchSharpness(num_batches=5)
        rule = sj.SGD(batch_size=4)
        res = sj.sweep(
            prob, [0.1], _stack(params), num_steps=4, dtype=jnp.float64, rule=rule, axes={"seed": [3]},
            record=sj.Record(every=2, sharpness=None, measures=[measure]),
        )  # fmt: skip
        for j in range(2):
            p = jax.tree.map(lambda a, j=j: a[0, 0, j], res.final_params)  # (lr, seed, init)
            idx, w = random_batches(12, 4, 4, jnp.uint32(3), jnp.int32(4), 5)
            assert all(len(set(np.asarray(i).tolist())) == 4 for i in idx)  # distinct samples in a batch
            values = []
            for i in np.asarray(idx):
                batch = Supervised(params, prob.X[i], prob.y[i], apply=tanh_apply)
                g = _flat_grad(batch.loss, p)
                values.append(g @ _dense_hessian(batch.loss, p) @ g / (g @ g))
            np.testing.assert_allclose(res.final["batch_sharpness"][0, 0, j], np.mean(values), rtol=1e-10)


def test_batch_sharpness_of_full_batches_is_the_curvature_along_the_gradient():
    """b = n: every batch is the whole data set, so the value is gᵀHg/gᵀg of the full loss (no sampling)."""
    with jax.enable_x64(True):
        prob, params = _supervised(n=8)
        rec = sj.Record(every=1, sharpness=sj.DenseEigh(), measures=[sj.measures.BatchSharpness(num_batches=2, batch_size=8)])
        res = sj.sweep(prob, [0.1], _stack(params, k=1), num_steps=1, dtype=jnp.float64, record=rec)
        p = jax.tree.map(lambda a: a[0], _stack(params, k=1))
        g = _flat_grad(prob.loss, p)
        h = _dense_hessian(prob.loss, p)
        np.testing.assert_allclose(res.records["batch_sharpness"][0, 0, 0], g @ h @ g / (g @ g), rtol=1e-10)
        assert res.records["batch_sharpness"][0, 0, 0] <= res.records["sharpness"][0, 0, 0] * (1 + 1e-12)


def test_noise_scale_with_single_sample_batches_is_tr_sigma_over_the_squared_gradient():
    """b = 1: each batch is one sample i, and the estimate is the mean of ‖g_i − G‖² over the drawn samples;
    with many batches it approaches the exact tr Σ of the per-sample gradients."""
    with jax.enable_x64(True):
        prob, params = _supervised(n=10)
        per_sample = np.stack([_flat_grad(lambda p, i=i: prob.sample_losses(p)[i], params) for i in range(10)])
        full = per_sample.mean(0)
        spread = np.sum((per_sample - full) ** 2, axis=1)  # ‖g_i − G‖²
        measure = sj.measures.GradientNoiseScale(num_batches=7, batch_size=1)
        rec = sj.Record(every=1, sharpness=None, measures=[measure])
        res = sj.sweep(prob, [1e-3], _stack(params, k=1), num_steps=1, dtype=jnp.float64, record=rec)
        idx, _ = random_batches(10, 1, 1, jnp.uint32(0), jnp.int32(0), 7)
        trace = spread[np.asarray(idx)[:, 0]].mean()
        np.testing.assert_allclose(res.records["noise_trace"][0, 0, 0], trace, rtol=1e-10)
        np.testing.assert_allclose(res.records["noise_scale"][0, 0, 0], trace / (full @ full), rtol=1e-10)
        many = sj.sweep(
            prob, [1e-3], _stack(params, k=1), num_steps=1, dtype=jnp.float64,
            record=sj.Record(every=1, sharpness=None, measures=[sj.measures.GradientNoiseScale(num_batches=4000, batch_size=3)]),
        )  # fmt: skip
        np.testing.assert_allclose(many.records["noise_trace"][0, 0, 0], spread.mean(), rtol=0.05)


def test_ntk_eigenvalue_matches_a_dense_jacobian_and_huangs_exact_ntk():
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        X, y = rng.normal(size=(6, 2)), np.sign(rng.normal(size=6))
        prob = TwoLayerLinear(X, y, m=5, ntk="exact")
        inits = prob.init(jax.random.key(0), 2)
        measure = sj.measures.NTKEigenvalue(solver=sj.Lanczos(order=30))
        with pytest.raises(ValueError, match="'ntk', which is already recorded"):  # the problem's own observable
            sj.sweep(prob, [0.05], inits, num_steps=2, record=sj.Record(measures=[measure]))
        rec = sj.Record(every=1, sharpness=None, observables=False, measures=[measure])
        res = sj.sweep(prob, [0.05], inits, num_steps=2, dtype=jnp.float64, record=rec)
        exact = cast_floats(prob, jnp.float64)  # (its data are stored in float32)
        for j in range(2):
            np.testing.assert_allclose(res.final["ntk"][0, j], exact.ntk(_final_params(res, 0, j)), rtol=1e-10)

    with jax.enable_x64(True):
        sup, params = _supervised(n=7)
        rec = sj.Record(every=1, sharpness=None, measures=[sj.measures.NTKEigenvalue(solver=sj.Lanczos(order=25))])
        res = sj.sweep(sup, [0.1], _stack(params), num_steps=2, dtype=jnp.float64, record=rec)
        for j in range(2):
            p = _final_params(res, 0, j)
            flat, unravel = jax.flatten_util.ravel_pytree(p)
            jac = np.asarray(jax.jacobian(lambda v, u=unravel: sup.outputs(u(v)))(flat))
            expected = np.linalg.eigvalsh(jac @ jac.T / 7)[-1]
            np.testing.assert_allclose(res.final["ntk"][0, j], expected, rtol=1e-10)


def test_a_measure_with_its_own_cadence_is_nan_between_its_records_and_keeps_its_warm_start():
    """``every=4`` with records every 2 steps: values at t = 0, 4, 8 equal those of a sweep recording every 4."""
    prob, params = _supervised(n=10)
    inits = _stack(params, k=3)
    lrs = [0.05, 0.3, 40.0]  # the last diverges
    sparse = sj.Record(every=2, sharpness=None, measures=[sj.measures.NTKEigenvalue(sj.Lanczos(order=4), every=4)])
    dense = sj.Record(every=4, sharpness=None, measures=[sj.measures.NTKEigenvalue(sj.Lanczos(order=4))])
    a = sj.sweep(prob, lrs, inits, num_steps=8, record=sparse)
    b = sj.sweep(prob, lrs, inits, num_steps=8, record=dense)
    assert np.isnan(a.records["ntk"][..., 1::2]).all()
    np.testing.assert_array_equal(a.records["ntk"][..., ::2], b.records["ntk"])
    assert np.isfinite(a.records["ntk"][0, :, ::2]).all()
    assert a.status[2].tolist() == [sj.Status.DIVERGED] * 3 and np.isnan(a.final["ntk"][2]).all()


def test_measures_are_independent_of_chunks_batches_and_resume(tmp_path):
    prob, params = _supervised(n=10)
    inits = _stack(params, k=3)
    lrs = [0.05, 0.2, 50.0]
    rec = sj.Record(every=2, measures=[sj.measures.GradNorm(), sj.measures.NTKEigenvalue(sj.Lanczos(order=3))])
    one = sj.sweep(prob, lrs, inits, num_steps=8, record=rec, batch_size=1)
    chunked = sj.sweep(prob, lrs, inits, num_steps=8, record=rec, batch_size=1, chunk_size=2)
    resumed = sj.sweep(prob, lrs, inits, num_steps=8, record=rec, batch_size=1, out_dir=tmp_path, checkpoint_every=4)
    again = sj.sweep(prob, lrs, inits, num_steps=8, record=rec, batch_size=1, out_dir=tmp_path, checkpoint_every=4)
    for other in (chunked, resumed, again):
        for k in ("grad_norm", "ntk", "ntk_residual", "sharpness"):
            np.testing.assert_array_equal(other.records[k], one.records[k])
    wide = sj.sweep(prob, lrs, inits, num_steps=8, record=rec, batch_size=9)
    np.testing.assert_allclose(wide.records["ntk"], one.records["ntk"], rtol=1e-4)
    run = sj.one_run(prob, params, num_steps=8, record=rec)(jnp.float32(0.2), jax.tree.map(lambda a: a[1], inits))
    np.testing.assert_allclose(run.records["ntk"], one.records["ntk"][1, 1], rtol=1e-5)


def test_measures_in_float64_at_float32_iterates():
    prob, params = _supervised(n=10)
    rec = sj.Record(every=2, sharpness=None, sharpness_dtype=jnp.float64, measures=[sj.measures.GradNorm()])
    res = sj.sweep(prob, [0.1], _stack(params), num_steps=4, record=rec)
    assert res.records["grad_norm"].dtype == np.float64 and res.records["loss"].dtype == np.float32
    with jax.enable_x64(True):
        p = jax.tree.map(lambda a: np.asarray(a[0, 1], np.float64), res.final_params)
        np.testing.assert_allclose(
            res.final["grad_norm"][0, 1], np.linalg.norm(_flat_grad(cast_floats(prob, jnp.float64).loss, p)), rtol=1e-12
        )


def test_bad_measures_are_refused_before_compiling():
    prob, params = _supervised(n=10)
    inits = _stack(params)
    with pytest.raises(TypeError, match="measures"):
        sj.Record(measures=["sharpness"])
    with pytest.raises(ValueError, match="not a multiple of every=4"):
        sj.Record(every=4, measures=[sj.measures.GradNorm(every=6)])
    with pytest.raises(ValueError, match="num_batches"):
        sj.measures.BatchSharpness(num_batches=0)
    with pytest.raises(ValueError, match="batch_size=None"):
        sj.sweep(prob, [0.1], inits, num_steps=2, record=sj.Record(measures=[sj.measures.BatchSharpness()]))
    with pytest.raises(TypeError, match="samples to batch"):
        sj.sweep(
            Objective(lambda t: jnp.sum(t**2), params_like=jnp.zeros(2)), [0.1], np.ones((1, 2)), num_steps=2,
            record=sj.Record(measures=[sj.measures.GradientNoiseScale(batch_size=2)]),
        )  # fmt: skip
    with pytest.raises(TypeError, match="outputs"):
        sj.sweep(
            Objective(lambda t: jnp.sum(t**2), params_like=jnp.zeros(2)), [0.1], np.ones((1, 2)), num_steps=2,
            record=sj.Record(measures=[sj.measures.NTKEigenvalue()]),
        )  # fmt: skip
    with pytest.raises(ValueError, match="'sharpness', which is already recorded"):
        sj.sweep(prob, [0.1], inits, num_steps=2, record=sj.Record(measures=[sj.measures.Sharpness()]))


def _dense_preconditioned(prob, p, d):
    h = _dense_hessian(prob.loss, p)
    root = np.sqrt(d)
    return np.linalg.eigvalsh(root[:, None] * h * root[None, :])[-1]


def test_adams_preconditioned_sharpness_at_the_start_is_that_of_one_over_the_gradient_magnitude():
    """At t = 0 Adam's first step divides by √v̂ + ε with v̂ = g² (bias-corrected): D = 1/(|∇f(θ₀)| + ε)."""
    import optax

    with jax.enable_x64(True):
        prob, params = _supervised(n=10)
        eps = 1e-3
        rule = sj.Optax(optax.adam, b1=0.9, eps=eps)
        rec = sj.Record(every=1, sharpness=sj.DenseEigh(), measures=[sj.measures.PreconditionedSharpness(solver=sj.DenseEigh())])
        inits = _stack(params)
        res = sj.sweep(prob, [1e-3], inits, num_steps=2, dtype=jnp.float64, rule=rule, record=rec)
        assert res.metadata["edge_of"] == "preconditioned_sharpness"
        np.testing.assert_allclose(res.records["edge"][0, :, 0], 38 / 1e-3, rtol=1e-12)
        for j in range(2):
            p = jax.tree.map(lambda a, j=j: a[j], inits)
            d = 1 / (np.abs(_flat_grad(prob.loss, p)) + eps)
            np.testing.assert_allclose(
                res.records["preconditioned_sharpness"][0, j, 0], _dense_preconditioned(prob, p, d), rtol=1e-10
            )


def test_grouped_gd_preconditioned_sharpness_uses_its_multipliers():
    with jax.enable_x64(True):
        prob, params = _supervised(n=10)
        rule = sj.GD(groups={"w1": "inner", "w2": "outer"}, outer=0.25)
        rec = sj.Record(every=1, sharpness=None, measures=[sj.measures.PreconditionedSharpness(solver=sj.Lanczos(order=30))])
        inits = _stack(params)
        res = sj.sweep(prob, [0.01], inits, num_steps=1, dtype=jnp.float64, rule=rule, record=rec)
        p = jax.tree.map(lambda a: a[1], inits)
        d = np.concatenate([np.ones(params["w1"].size), np.full(params["w2"].size, 0.25)])
        np.testing.assert_allclose(res.records["preconditioned_sharpness"][0, 1, 0], _dense_preconditioned(prob, p, d), rtol=1e-9)


def test_preconditioned_sharpness_needs_a_rule_with_a_preconditioner():
    prob, params = _supervised(n=10)
    rule = sj.Optax(lambda lr: __import__("optax").lion(lr))
    with pytest.raises(ValueError, match="exposes no preconditioner"):
        sj.sweep(
            prob,
            [0.1],
            _stack(params),
            num_steps=2,
            rule=rule,
            record=sj.Record(measures=[sj.measures.PreconditionedSharpness()]),
        )


def test_top_and_negative_eigenvalues_match_dense_eigh_in_a_sweep_and_export_with_an_eig_dim(tmp_path):
    with jax.enable_x64(True):
        prob, params = _supervised(n=20, d=3, h=8)  # 32 parameters, an indefinite Hessian
        top = sj.measures.TopEigenvalues(k=3, iters=4, restarts=8, negative=True)
        rec = sj.Record(every=2, sharpness=sj.Lanczos(order=32), measures=[top])
        inits = _stack(params)
        res = sj.sweep(prob, [0.05, 0.5], inits, num_steps=4, dtype=jnp.float64, record=rec)
        assert res.records["eigenvalues"].shape == (2, 2, 3, 3)
        for i in range(2):
            for j in range(2):
                evals = np.linalg.eigvalsh(_dense_hessian(prob.loss, jax.tree.map(lambda a, i=i, j=j: a[i, j], res.final_params)))
                np.testing.assert_allclose(res.final["eigenvalues"][i, j], evals[::-1][:3], rtol=1e-8)
                # (the bottom is clustered: slower to converge, within 1e-7 of the spectral norm)
                np.testing.assert_allclose(res.final["negative_eigenvalues"][i, j], evals[:3], atol=1e-7 * np.abs(evals).max())
                assert evals[0] < 0 and np.all(res.final["eigenvalue_residuals"][i, j] < 1e-6)
        np.testing.assert_allclose(res.records["eigenvalues"][..., 0], res.records["sharpness"], rtol=1e-8)
        ds = res.to_xarray()
        assert ds["eigenvalues"].dims == ("lr", "init", "step", "eig") == ds["negative_eigenvalues"].dims
        assert ds.sizes["eig"] == 3
        for back in (sj.load(res.save(tmp_path / "r")), sj.load(res.to_netcdf(tmp_path / "r"))):
            np.testing.assert_array_equal(back.records["negative_eigenvalues"], res.records["negative_eigenvalues"])


def test_hessian_trace_and_spectral_density_in_a_sweep():
    with jax.enable_x64(True):
        prob, params = _supervised(n=20, d=3, h=4)  # 16 parameters
        rec = sj.Record(
            every=1, sharpness=None,
            measures=[sj.measures.HessianTrace(probes=3000), sj.measures.SpectralDensity(order=20, probes=2, every=2)],
        )  # fmt: skip
        inits = _stack(params, k=1)
        res = sj.sweep(prob, [0.1], inits, num_steps=2, dtype=jnp.float64, record=rec)
        h = _dense_hessian(prob.loss, jax.tree.map(lambda a: a[0], inits))
        evals = np.linalg.eigvalsh(h)
        se = np.linalg.norm(h) * np.sqrt(2 / 3000)  # Hutchinson's standard error with Rademacher probes
        assert abs(res.records["hessian_trace"][0, 0, 0] - np.trace(h)) < 5 * se
        nodes, weights = res.records["density_nodes"][0, 0], res.records["density_weights"][0, 0]
        assert nodes.shape == (3, 40) and np.isnan(nodes[1]).all() and np.isfinite(nodes[[0, 2]]).all()
        np.testing.assert_allclose(weights[0].sum(), 1.0, rtol=1e-12)
        # order ≥ n: every node with weight is an eigenvalue of H (the Krylov space of each probe is ℝⁿ)
        live = weights[0] > 1e-10
        assert np.all(np.min(np.abs(nodes[0][live][:, None] - evals[None, :]), axis=1) < 1e-8 * np.abs(evals).max())
        np.testing.assert_allclose(sj.measures.negative_mass(nodes[0], weights[0]), weights[0][nodes[0] < 0].sum())
        assert sj.measures.negative_mass(nodes[0], weights[0]) > 0 and np.sum(evals < 0) > 0
        assert res.to_xarray()["density_nodes"].dims == ("lr", "init", "step", "node")


def test_a_memory_budget_counts_the_measurements_carries_and_workspace():
    prob, params = _supervised(n=20, d=3, h=16)
    inits = _stack(params, k=4)
    lrs = np.geomspace(0.01, 1, 8)
    kw = dict(num_steps=4, memory_budget_bytes=60_000)
    plain = sj.sweep(prob, lrs, inits, record=sj.Record(every=2), **kw)
    heavy = sj.sweep(prob, lrs, inits, record=sj.Record(every=2, measures=[sj.measures.TopEigenvalues(k=8, iters=4)]), **kw)
    assert heavy.metadata["chunk_size"] < plain.metadata["chunk_size"]
    np.testing.assert_array_equal(heavy.records["loss"], plain.records["loss"])
