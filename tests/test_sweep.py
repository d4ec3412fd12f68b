"""The sweep engine against exact answers: quadratics, looped runs, chunking, divergence, budgets."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import sweepjax as sj
from sweepjax.problems import AbstractProblem, Objective, ProductLoss

A_DIAG = jnp.array([4.0, 1.0, 0.25])  # λ_max = 4, so GD diverges exactly for η > 0.5


def quad_loss(theta):
    """½ θᵀ diag(A) θ."""
    return 0.5 * jnp.sum(A_DIAG * theta**2)


QUAD = Objective(quad_loss, params_like=jnp.zeros(3), observables={"norm2": lambda th: jnp.sum(th**2)})


class ScaledQuadratic(AbstractProblem):
    """½ θᵀ diag(a) θ with per-parameter step multipliers s: GD is θ ← θ − η s ⊙ aθ."""

    a: jax.Array
    s: jax.Array

    def loss(self, params):
        return 0.5 * jnp.sum(self.a * params**2)

    def step_scale(self):
        return self.s


def test_quadratic_diverges_exactly_past_two_over_lambda_max():
    factors = np.array([0.8, 0.95, 0.99, 1.01, 1.05, 1.3])
    lrs = 0.5 * factors
    res = sj.sweep(QUAD, lrs, jnp.ones((2, 3)), num_steps=3000, record=sj.Record(every=100))
    expected = np.repeat((factors > 1)[:, None], 2, axis=1)
    np.testing.assert_array_equal(res.diverged, expected)
    # exact sharpness λ_max = 4 recorded wherever the run is alive
    sharp = res.records["sharpness"]
    np.testing.assert_allclose(sharp[np.isfinite(sharp)], 4.0, rtol=1e-6)
    assert np.all(np.isfinite(res.final["loss"][~expected]))
    assert np.all(np.isnan(res.final["loss"][expected]))
    # the divergence step is exactly the first t whose loss exceeds the threshold 1e6, from the closed
    # form θ_t = (1 − ηa)^t θ₀ per coordinate (no crossing lies within 1e-3 of the threshold, so
    # float32 rounding cannot move it)
    a = np.asarray(A_DIAG, float)
    t = np.arange(3001)[:, None]
    for i in np.where(factors > 1)[0]:
        with np.errstate(over="ignore"):
            loss_t = 0.5 * np.sum(a * (1 - lrs[i] * a) ** (2 * t), axis=1)
        t_cross = int(np.argmax(loss_t > 1e6))
        assert abs(loss_t[t_cross] / 1e6 - 1) > 1e-3 and abs(loss_t[t_cross - 1] / 1e6 - 1) > 1e-3
        assert res.diverged_step[i, 0] == t_cross, (res.diverged_step[i, 0], t_cross)


def test_an_overflowing_next_iterate_with_a_finite_loss_diverges_at_that_step():
    # f(θ) = −log cosh θ is finite wherever θ is (≈ −|θ|); at η = 2e38, θ₁ = 1 + η tanh 1 ≈ 1.5e38 is
    # finite, θ₂ = θ₁ + η tanh θ₁ overflows: the run diverges at step 2 and keeps θ₁
    neg_log_cosh = Objective(lambda th: -jnp.sum(jnp.logaddexp(th, -th) - jnp.log(2.0)))
    res = sj.sweep(neg_log_cosh, [2e38, 0.1], np.ones((1, 1)), num_steps=4, record=sj.Record(every=1))
    assert res.diverged_step[0, 0] == 2 and res.diverged[0, 0] and not res.diverged[1, 0]
    theta1 = np.float32(1) + np.float32(2e38) * np.tanh(np.float32(1))
    with np.errstate(over="ignore"):
        assert np.isfinite(theta1) and not np.isfinite(theta1 + np.float32(2e38))
    np.testing.assert_allclose(res.final_params[0, 0], [theta1], rtol=1e-6)
    assert np.isfinite(res.records["loss"][0, 0, :2]).all() and np.isnan(res.records["loss"][0, 0, 2:]).all()


def test_records_and_finals_are_consistent():
    p = ProductLoss("sqrt")
    inits = p.init_grid(jnp.array([1.0, 5.0]), x0=0.5)
    res = sj.sweep(p, jnp.array([0.05, 0.2]), inits, num_steps=40, record=sj.Record(every=10))
    np.testing.assert_array_equal(res.steps, [0, 10, 20, 30, 40])
    assert res.records["loss"].shape == (2, 2, 5)
    np.testing.assert_allclose(res.records["loss"][:, :, 0], np.asarray(jax.vmap(p.loss)(inits))[None].repeat(2, 0))
    for name in ("loss", "sharpness", "xy", "y2_minus_x2"):
        np.testing.assert_array_equal(res.records[name][..., -1], res.final[name])
    x, y = res.final_params[..., 0], res.final_params[..., 1]
    np.testing.assert_allclose(res.final["xy"], x * y, rtol=1e-6)
    assert res.status.dtype == np.int8 and not res.diverged.any()
    assert np.all(np.isnan(res.diverged_step))


def test_residual_is_recorded_for_iterative_solvers_only():
    p = ProductLoss("sqrt")
    inits = p.init_grid(jnp.array([1.0, 5.0]), x0=0.5)
    run = lambda solver: sj.sweep(p, [0.1], inits, num_steps=20, record=sj.Record(every=5, sharpness=solver))  # noqa: E731
    dense, lanczos = run(sj.DenseEigh()), run(sj.Lanczos(order=2))
    assert "sharpness_residual" not in dense.records and "sharpness_residual" not in dense.final  # exact: none
    res = lanczos.records["sharpness_residual"]
    assert res.shape == lanczos.records["sharpness"].shape and np.all(np.isfinite(res)) and np.all(res >= 0)
    np.testing.assert_allclose(lanczos.records["sharpness"], dense.records["sharpness"], rtol=1e-5)  # n = 2


def _single_gd(p, lr, theta, steps):
    """Reference: an explicit host loop of GD steps."""
    grad = jax.jit(jax.grad(p.loss))
    for _ in range(steps):
        theta = theta - lr * grad(theta)
    return theta


@pytest.mark.slow
def test_vmapped_equals_looped_and_reference_loop():
    p = ProductLoss("rsym")
    lrs = jnp.array([0.05, 0.3, 0.9])
    inits = p.init(jax.random.key(1), 4)
    rec = sj.Record(every=5)
    grid = sj.sweep(p, lrs, inits, num_steps=30, record=rec)
    for i, lr in enumerate(lrs):
        for j in range(inits.shape[0]):
            one = sj.sweep(p, lr[None], inits[j : j + 1], num_steps=30, record=rec)
            for name in grid.records:
                np.testing.assert_allclose(grid.records[name][i, j], one.records[name][0, 0], rtol=2e-5, atol=1e-6)
            ref = _single_gd(p, lr, inits[j], 30)
            np.testing.assert_allclose(grid.final_params[i, j], ref, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("chunk_size,batch_size", [(5, None), (7, 3), (None, 1)])
def test_chunked_and_mapped_equal_unchunked(chunk_size, batch_size):
    p = ProductLoss("sqrt")
    lrs = jnp.geomspace(0.05, 3.0, 6)
    inits = p.init(jax.random.key(2), 4)
    rec = sj.Record(every=10, sharpness=sj.Lanczos(order=2))
    base = sj.sweep(p, lrs, inits, num_steps=50, record=rec)
    other = sj.sweep(p, lrs, inits, num_steps=50, record=rec, chunk_size=chunk_size, batch_size=batch_size)
    for name in base.records:
        np.testing.assert_allclose(other.records[name], base.records[name], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(other.status, base.status)
    np.testing.assert_allclose(other.final_params, base.final_params, rtol=1e-6, atol=1e-7)


def test_new_values_do_not_recompile(trace_counter):
    p = ProductLoss("beta", beta=2.0)
    rec = sj.Record(every=5)
    sj.sweep(p, jnp.array([0.1, 0.2]), p.init(jax.random.key(0), 3), num_steps=10, record=rec)
    assert len(trace_counter) == 1
    # new step sizes, new inits, and a new value of the family parameter β: same program
    sj.sweep(ProductLoss("beta", beta=3.0), np.array([0.3, 0.7]), p.init(jax.random.key(5), 3), num_steps=10, record=rec)
    assert len(trace_counter) == 1
    # chunked with a padded last chunk: still one compile for the chunk shape
    sj.sweep(p, jnp.array([0.1, 0.2, 0.3]), p.init(jax.random.key(0), 3), num_steps=10, record=rec, chunk_size=4)
    assert len(trace_counter) == 2
    sj.sweep(p, jnp.array([0.5, 0.6, 0.9]), p.init(jax.random.key(3), 3), num_steps=10, record=rec, chunk_size=4)
    assert len(trace_counter) == 2


def test_divergence_is_isolated_and_frozen():
    p = ProductLoss("huber")
    inits = p.init_grid(jnp.array([2.0, 30.0]), x0=2.0)
    calm = jnp.array([0.01, 0.05])
    wild = jnp.array([0.01, 5.0, 0.05, 40.0])
    rec = sj.Record(every=5)
    a = sj.sweep(p, calm, inits, num_steps=200, record=rec)
    b = sj.sweep(p, wild, inits, num_steps=200, record=rec)
    assert b.diverged[[1, 3]].any() and not b.diverged[[0, 2]].any()
    for name in a.records:
        np.testing.assert_array_equal(b.records[name][[0, 2]], a.records[name])
    np.testing.assert_array_equal(b.final_params[[0, 2]], a.final_params)
    # a diverged run: finite frozen parameters, NaN records from its divergence on
    i, j = np.argwhere(b.diverged)[0]
    t_div = b.diverged_step[i, j]
    assert np.all(np.isfinite(b.final_params[i, j]))
    after = b.steps >= t_div
    assert np.all(np.isnan(b.records["loss"][i, j, after]))
    assert np.all(np.isfinite(b.records["loss"][i, j, ~after]))


def test_all_runs_diverging_is_a_result():
    res = sj.sweep(QUAD, jnp.array([2.0, 3.0]), jnp.ones((1, 3)), num_steps=200, record=sj.Record(every=10))
    assert res.diverged.all()
    assert np.all(np.isfinite(res.diverged_step))
    assert np.isnan(res.final["loss"]).all()


def test_step_budgets_are_masks():
    p = ProductLoss("sqrt")
    inits = p.init_grid(jnp.array([3.0]), x0=0.5)
    lrs = np.array([0.1, 0.2, 0.4])
    budgets = sj.time_horizon(lrs, 4.0)  # η·T = 4
    np.testing.assert_array_equal(budgets, [40, 20, 10])
    res = sj.sweep(p, lrs, inits, max_steps=budgets, record=sj.Record(every=10))
    assert res.steps[-1] == 40
    np.testing.assert_array_equal(res.num_steps[:, 0], budgets)
    for i, b in enumerate(budgets):
        alone = sj.sweep(p, lrs[i : i + 1], inits, num_steps=int(b), record=sj.Record(every=10))
        np.testing.assert_allclose(res.final_params[i], alone.final_params[0], rtol=1e-6)
        np.testing.assert_allclose(res.final["loss"][i], alone.final["loss"][0], rtol=1e-6)
        assert np.all(np.isnan(res.records["loss"][i, 0, res.steps > b]))
        assert np.all(np.isfinite(res.records["loss"][i, 0, res.steps <= b]))


@pytest.mark.slow
def test_optax_optimizers_with_per_run_learning_rate():
    lrs = jnp.array([0.1, 0.3])
    inits = jnp.ones((1, 3))
    gd = sj.sweep(QUAD, lrs, inits, num_steps=20, record=sj.Record(every=20))
    sgd = sj.sweep(QUAD, lrs, inits, num_steps=20, record=sj.Record(every=20), optimizer=lambda lr: optax.sgd(lr))
    np.testing.assert_allclose(sgd.final_params, gd.final_params, rtol=1e-6)
    heavy = sj.sweep(QUAD, lrs, inits, num_steps=20, record=sj.Record(every=20), optimizer=lambda lr: optax.sgd(lr, momentum=0.9))
    for i, lr in enumerate(np.asarray(lrs)):  # heavy ball: m ← 0.9m + g; θ ← θ − ηm
        th, m = np.ones(3), np.zeros(3)
        for _ in range(20):
            m = 0.9 * m + np.asarray(A_DIAG) * th
            th = th - lr * m
        np.testing.assert_allclose(heavy.final_params[i, 0], th, rtol=1e-5, atol=1e-7)
    adam = sj.sweep(QUAD, lrs, inits, num_steps=20, record=sj.Record(every=20), optimizer=optax.scale_by_adam())
    # Adam's first step moves every coordinate by η·sign(g)
    first = sj.sweep(QUAD, lrs, inits, num_steps=1, record=sj.Record(every=1), optimizer=optax.scale_by_adam())
    np.testing.assert_allclose(first.final_params[:, 0], 1.0 - np.asarray(lrs)[:, None] * np.ones(3), rtol=1e-5)
    assert np.all(adam.final["loss"] < gd.records["loss"][..., 0])


def test_step_scale_changes_the_stability_threshold():
    # effective Hessian S^{1/2} A S^{1/2} = diag(4·0.25, 1·4) → λ_max = 4 from the second coordinate
    prob = ScaledQuadratic(a=jnp.array([4.0, 1.0]), s=jnp.array([0.25, 4.0]))
    res = sj.sweep(prob, jnp.array([0.45, 0.55]), jnp.ones((1, 2)), num_steps=2000, record=sj.Record(every=100))
    np.testing.assert_array_equal(res.diverged[:, 0], [False, True])
    np.testing.assert_allclose(res.records["sharpness"][0, 0, 0], 4.0, rtol=1e-6)


def test_float64_on_request_only():
    p = ProductLoss("sqrt")
    inits = p.init_grid(jnp.array([2.0]), x0=0.5)
    r32 = sj.sweep(p, [0.1], inits, num_steps=20, record=sj.Record(every=10))
    r64 = sj.sweep(p, [0.1], inits, num_steps=20, record=sj.Record(every=10), dtype=jnp.float64)
    assert r32.records["loss"].dtype == np.float32 and r64.records["loss"].dtype == np.float64
    assert r64.final_params.dtype == np.float64
    np.testing.assert_allclose(r64.final["sharpness"], r32.final["sharpness"], rtol=1e-5)
    assert jnp.zeros(1).dtype == jnp.float32  # x64 did not leak out of the call


@pytest.mark.slow
def test_iterative_solvers_track_the_dense_sharpness():
    w_key, x_key = jax.random.split(jax.random.key(0))
    xs = jax.random.normal(x_key, (8, 3))
    ys = jnp.sin(xs[:, 0])

    def mlp_loss(params):
        h = jnp.tanh(xs @ params["w1"])
        return 0.5 * jnp.mean((h @ params["w2"] - ys) ** 2)

    like = {"w1": jnp.zeros((3, 4)), "w2": jnp.zeros(4)}
    prob = Objective(mlp_loss, params_like=like)
    inits = {
        "w1": jax.random.normal(w_key, (2, 3, 4)),
        "w2": jax.random.normal(jax.random.fold_in(w_key, 1), (2, 4)),
    }
    lrs = jnp.array([0.05, 0.5])
    out = {}
    for solver in (sj.DenseEigh(), sj.Lanczos(order=16), sj.PowerIteration(num_iters=200)):
        res = sj.sweep(prob, lrs, inits, num_steps=60, record=sj.Record(every=20, sharpness=solver), dtype=jnp.float64)
        out[type(solver).__name__] = res.records["sharpness"]
    np.testing.assert_allclose(out["Lanczos"], out["DenseEigh"], rtol=1e-8)
    np.testing.assert_allclose(out["PowerIteration"], out["DenseEigh"], rtol=1e-4)


def test_ahn_limiting_sharpness_is_min_of_gap_and_eos_limit():
    """Ahn et al.: λ_∞ ≈ min(y₀² − x₀², 2/η), away from the boundary gap = 2/η."""
    p = ProductLoss("sqrt")
    lrs = np.array([0.02, 0.05, 0.1])
    gaps = np.array([2.0, 5.0, 12.0, 30.0, 60.0])
    res = sj.sweep(p, lrs, p.init_grid(gaps, x0=0.3), num_steps=20000, record=sj.Record(every=1000))
    pred = np.minimum(gaps[None, :], 2 / lrs[:, None])
    away = np.abs(np.log(gaps[None, :] * lrs[:, None] / 2)) > np.log(1.5)
    assert away.sum() >= 10
    final = res.final["sharpness"]
    np.testing.assert_allclose(final[away], pred[away], rtol=0.05)
    # EoS runs sit just below 2/η (never above it), GF runs just below their gap
    assert np.all(final[away] <= pred[away] * (1 + 1e-3))


BAD_INPUTS = [
    (dict(lrs=[0.1, -0.2]), ValueError, "lrs"),
    (dict(lrs=[0.0]), ValueError, "lrs"),
    (dict(lrs=[np.nan]), ValueError, "lrs"),
    (dict(lrs=[np.inf]), ValueError, "lrs"),
    (dict(lrs=[]), ValueError, "lrs"),
    (dict(lrs=[[[0.1]]]), ValueError, "lrs"),
    (dict(lrs=[[0.1]]), ValueError, "lrs"),
    (dict(lrs=["a"]), TypeError, "lrs"),
    (dict(inits=np.zeros((0, 2))), ValueError, "inits"),
    (dict(inits=np.zeros((3, 3))), ValueError, "inits"),
    (dict(inits=np.zeros(2)), ValueError, "inits"),
    (dict(inits=np.array([[np.nan, 1.0]])), ValueError, "inits"),
    (dict(num_steps=15), ValueError, "every"),
    (dict(num_steps=0), ValueError, "num_steps"),
    (dict(num_steps=2.5), ValueError, "num_steps"),
    (dict(chunk_size=-1), ValueError, "chunk_size"),
    (dict(chunk_size=0), ValueError, "chunk_size"),
    (dict(batch_size=-3), ValueError, "batch_size"),
    (dict(max_steps=[10, 20, 30]), ValueError, "max_steps"),
    (dict(max_steps=[10, 200]), ValueError, "max_steps"),
    (dict(max_steps=[10, -1]), ValueError, "max_steps"),
    (dict(dtype=np.int32), ValueError, "dtype"),
    (dict(divergence_threshold=-1.0), ValueError, "divergence_threshold"),
    (dict(optimizer=3), TypeError, "optimizer"),
    (dict(problem=lambda th: th), TypeError, "problem"),
    (dict(record=5), TypeError, "record"),
]


@pytest.mark.parametrize("override,error,word", BAD_INPUTS)
def test_bad_input_raises_before_compiling(override, error, word, trace_counter):
    p = ProductLoss("sqrt")
    kwargs = dict(problem=p, lrs=[0.1, 0.2], inits=np.ones((2, 2)), num_steps=20, record=sj.Record(every=10))
    kwargs.update(override)
    with pytest.raises(error, match=word):
        sj.sweep(kwargs.pop("problem"), kwargs.pop("lrs"), kwargs.pop("inits"), **kwargs)
    assert trace_counter == []


def test_bad_configuration_objects():
    with pytest.raises(ValueError, match="loss"):
        ProductLoss("square")
    with pytest.raises(ValueError, match="every"):
        sj.Record(every=0)
    with pytest.raises(TypeError, match="sharpness"):
        sj.Record(sharpness="lanczos")
    with pytest.raises(ValueError, match="order"):
        sj.Lanczos(order=0)


def test_inits_disagreeing_on_leading_axis():
    prob = Objective(lambda th: jnp.sum(th["a"] ** 2) + jnp.sum(th["b"] ** 2))
    with pytest.raises(ValueError, match="leading axis"):
        sj.sweep(prob, [0.1], {"a": np.ones((2, 3)), "b": np.ones((3, 3))}, num_steps=1)


def test_loss_that_fails_while_tracing_gives_one_clear_error(trace_counter):
    def broken(theta):
        return theta @ jnp.ones(5)  # shape mismatch for 2-vectors

    with pytest.raises(ValueError, match="failed on one init point"):
        sj.sweep(Objective(broken), [0.1], np.ones((1, 2)), num_steps=1)
    with pytest.raises(TypeError, match="scalar"):
        sj.sweep(Objective(lambda th: th * 2), [0.1], np.ones((1, 2)), num_steps=1)
    assert trace_counter == []


def test_progress_callback_sees_every_chunk():
    seen = []
    p = ProductLoss("sqrt")
    sj.sweep(p, [0.1, 0.2, 0.3], p.init(jax.random.key(0), 2), num_steps=4, record=sj.Record(every=2),
             chunk_size=4, progress=lambda done, total: seen.append((done, total)))  # fmt: skip
    assert seen == [(1, 2), (2, 2)]


def test_problem_module_fields_are_traced_not_baked():
    # the problem's arrays are pytree leaves of the jitted function, so new data does not recompile
    prob = ScaledQuadratic(a=jnp.array([1.0, 2.0]), s=jnp.ones(2))
    r1 = sj.sweep(prob, [0.1], jnp.ones((1, 2)), num_steps=10, record=sj.Record(every=10))
    r2 = sj.sweep(ScaledQuadratic(a=jnp.array([3.0, 2.0]), s=jnp.ones(2)), [0.1], jnp.ones((1, 2)), num_steps=10,
                  record=sj.Record(every=10))  # fmt: skip
    np.testing.assert_allclose(r1.final_params[0, 0, 0], 0.9**10, rtol=1e-5)
    np.testing.assert_allclose(r2.final_params[0, 0, 0], 0.7**10, rtol=1e-5)


def test_per_init_step_size_columns():
    p = ProductLoss("sqrt")
    inits = p.init_grid(jnp.array([1.0, 4.0, 9.0]), x0=0.5)
    cols = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
    res = sj.sweep(p, cols, inits, num_steps=20, record=sj.Record(every=10))
    assert res.lrs.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            one = sj.sweep(p, cols[i, j : j + 1], inits[j : j + 1], num_steps=20, record=sj.Record(every=10))
            np.testing.assert_allclose(res.final_params[i, j], one.final_params[0, 0], rtol=1e-6)
    with pytest.raises(ValueError, match="lrs"):
        sj.sweep(p, cols[:, :2], inits, num_steps=20, record=sj.Record(every=10))


def test_gd_shrinks_the_gradient_flow_invariant_by_the_exact_factor():
    """For ℓ(xy), one GD step maps y² − x² to (y² − x²)(1 − η²ℓ'(xy)²) exactly."""
    p = ProductLoss("rsym")  # ℓ' = tanh
    lrs = np.array([0.1, 0.4])
    res = sj.sweep(p, lrs, jnp.array([[1.0, 3.0], [0.5, 6.0]]), num_steps=50, record=sj.Record(every=1),
                   dtype=jnp.float64)  # fmt: skip
    w, s = res.records["y2_minus_x2"], res.records["xy"]
    factor = 1 - lrs[:, None, None] ** 2 * np.tanh(s[..., :-1]) ** 2
    np.testing.assert_allclose(w[..., 1:], w[..., :-1] * factor, rtol=1e-12)
