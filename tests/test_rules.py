"""Update rules and named axes: each rule against an independent loop (NumPy, or optax driven by hand),
SGD reproducible from its seed, the classic call bitwise unchanged, chunking and resume neutral."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _asserts import assert_bitwise_equal

import sweepjax as sj
from sweepjax import schedules
from sweepjax.problems import Objective, ProductLoss, Supervised

DIAG = np.array([1.0, 3.0, 8.0])


def quadratic(theta):
    """f(θ) = ½ Σ dᵢ θᵢ² (Hessian diag(1, 3, 8))."""
    return 0.5 * jnp.sum(jnp.asarray(DIAG, theta.dtype) * theta**2)


QUAD = Objective(quadratic, params_like=jnp.zeros(3))
QUAD_INITS = np.array([[1.0, -0.5, 0.25], [0.3, 0.7, -0.2]])


def linear_apply(model, X):
    return X @ model["w"]


def regression(n=48, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    y = X @ np.array([1.0, -2.0, 0.5, 0.0], np.float32) + 0.1 * rng.normal(size=n).astype(np.float32)
    return Supervised({"w": jnp.zeros(4)}, X, y, apply=linear_apply), X, y


def _sweep64(*args, **kwargs):
    return sj.sweep(*args, dtype=jnp.float64, **kwargs)


def test_gd_rule_is_the_classic_sweep_bit_for_bit():
    p = ProductLoss("sqrt")
    kw = dict(num_steps=40, record=sj.Record(every=10))
    inits = p.init(jax.random.key(0), 3)
    assert_bitwise_equal(sj.sweep(p, [0.05, 0.5], inits, rule=sj.GD(), **kw), sj.sweep(p, [0.05, 0.5], inits, **kw))


def test_optax_rule_is_the_legacy_optimizer_argument_bit_for_bit():
    factory = lambda lr: optax.sgd(lr, momentum=0.9)  # noqa: E731
    kw = dict(num_steps=30, record=sj.Record(every=10))
    a = sj.sweep(QUAD, [0.01, 0.1], QUAD_INITS, optimizer=factory, **kw)
    b = sj.sweep(QUAD, [0.01, 0.1], QUAD_INITS, rule=sj.Optax(factory), **kw)
    assert_bitwise_equal(a, b)
    with pytest.raises(ValueError, match="either rule"):
        sj.sweep(QUAD, [0.01], QUAD_INITS, rule=sj.GD(), optimizer=factory, **kw)


def _optax_loop(tx, theta, steps):
    state = tx.init(theta)
    losses = [quadratic(theta)]
    for _ in range(steps):
        u, state = tx.update(jax.grad(quadratic)(theta), state, theta)
        theta = theta + u
        losses.append(quadratic(theta))
    return np.array(losses), theta


def test_adam_with_b1_and_b2_as_axes_equals_optax_driven_by_hand():
    lrs, b1s, b2s = [0.01, 0.1], [0.5, 0.9], [0.99, 0.999]
    with jax.enable_x64(True):
        res = _sweep64(
            QUAD, lrs, QUAD_INITS, num_steps=20, record=sj.Record(every=1, sharpness=None),
            rule=sj.Optax(optax.adam, b1=0.9, b2=0.999, eps=1e-8), axes={"b1": b1s, "b2": b2s},
        )  # fmt: skip
        assert res.dims == ("lr", "b1", "b2", "init") and res.shape == (2, 2, 2, 2)
        for i, lr in enumerate(lrs):
            for a, b1 in enumerate(b1s):
                for b, b2 in enumerate(b2s):
                    for j in range(2):
                        losses, theta = _optax_loop(optax.adam(lr, b1=b1, b2=b2), jnp.asarray(QUAD_INITS[j]), 20)
                        np.testing.assert_allclose(res.records["loss"][i, a, b, j], losses, rtol=1e-12, atol=1e-300)
                        np.testing.assert_allclose(res.final_params[i, a, b, j], theta, rtol=1e-12)
    sub = res.sel(b1=0.9, b2=0.99)
    assert sub.dims == ("lr", "init")
    np.testing.assert_array_equal(sub.records["loss"], res.records["loss"][:, 1, 0])


def test_heavy_ball_momentum_axis_equals_a_numpy_loop():
    lrs, betas = [0.05, 0.2], [0.0, 0.5, 0.9]
    with jax.enable_x64(True):
        res = _sweep64(
            QUAD, lrs, QUAD_INITS, num_steps=25, record=sj.Record(every=5, sharpness=None),
            rule=sj.Optax(optax.sgd, momentum=0.0), axes={"momentum": betas},
        )  # fmt: skip
    for i, lr in enumerate(lrs):
        for a, beta in enumerate(betas):
            for j in range(2):
                theta, v = QUAD_INITS[j].copy(), np.zeros(3)
                for _ in range(25):  # optax.sgd's trace: v ← g + βv, θ ← θ − ηv
                    v = DIAG * theta + beta * v
                    theta = theta - lr * v
                np.testing.assert_allclose(res.final_params[i, a, j], theta, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    "schedule,expected",
    [
        (schedules.Constant(), lambda t: np.ones_like(t)),
        (schedules.LinearWarmup(warmup=4.0), lambda t: np.minimum(t / 4.0, 1.0)),
        (schedules.LinearWarmup(warmup=4.0, start=0.5), lambda t: 0.5 + 0.5 * np.minimum(t / 4.0, 1.0)),
        (schedules.LinearWarmup(warmup=0.0), lambda t: np.ones_like(t)),
        (schedules.Cosine(decay_steps=8.0, final=0.1), lambda t: 0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * np.minimum(t, 8) / 8))),
        (schedules.StepDecay(every=3.0, factor=0.5), lambda t: 0.5 ** np.floor(t / 3)),
        (schedules.Function(lambda t, lr: lr / (1.0 + t)), lambda t: 1.0 / (1.0 + t)),
    ],
)
def test_schedules_give_their_formula(schedule, expected):
    t = np.arange(12)
    got = jax.vmap(lambda t: schedule(t, jnp.float32(0.3)))(jnp.asarray(t, jnp.int32))
    np.testing.assert_allclose(got, 0.3 * expected(t.astype(float)), rtol=1e-6)


def test_warmup_length_as_an_axis_equals_a_numpy_loop():
    warmups = [0.0, 3.0, 10.0]
    with jax.enable_x64(True):
        res = _sweep64(
            QUAD, [0.2, 0.3], QUAD_INITS, num_steps=20, record=sj.Record(every=20, sharpness=None),
            rule=sj.GD(schedules.LinearWarmup(warmup=1.0)), axes={"warmup": warmups},
        )  # fmt: skip
    for i, lr in enumerate([0.2, 0.3]):
        for a, w in enumerate(warmups):
            theta = QUAD_INITS[0].copy()
            for t in range(20):
                eta = lr * (min(t / w, 1.0) if w > 0 else 1.0)
                theta = theta - eta * DIAG * theta
            np.testing.assert_allclose(res.final_params[i, a, 0], theta, rtol=1e-12)


def test_per_group_multipliers_scale_each_group():
    def loss(p):
        return 0.5 * (3.0 * p["a"] ** 2 + p["b"] ** 2)

    prob = Objective(loss, params_like={"a": jnp.zeros(()), "b": jnp.zeros(())})
    inits = {"a": np.array([1.0]), "b": np.array([2.0])}
    rule = sj.GD(groups={"a": "lr_a", "b": "lr_b"})
    with jax.enable_x64(True):
        res = _sweep64(prob, [0.1], inits, num_steps=5, record=sj.Record(every=5, sharpness=None), rule=rule,
                       axes={"lr_a": [0.5, 1.0], "lr_b": [1.0, 3.0]})  # fmt: skip
    for a, ma in enumerate([0.5, 1.0]):
        for b, mb in enumerate([1.0, 3.0]):
            np.testing.assert_allclose(res.final_params["a"][0, a, b, 0], (1 - 0.1 * ma * 3.0) ** 5, rtol=1e-12)
            np.testing.assert_allclose(res.final_params["b"][0, a, b, 0], 2.0 * (1 - 0.1 * mb) ** 5, rtol=1e-12)
    with pytest.raises(ValueError, match="name no group"):
        sj.sweep(prob, [0.1], inits, num_steps=5, rule=sj.GD(groups={"a": "x", "b": "y"}, z=2.0))


def test_sgd_batches_are_epochs_without_replacement_and_depend_only_on_the_seed():
    rule = sj.SGD(batch_size=5, max_batch_size=8)
    n = 20
    for seed in (0, 7):
        steps = jnp.arange(8, dtype=jnp.int32)  # 4 batches of 5 per epoch, 2 epochs
        idx, w = jax.vmap(lambda t, s=seed: rule.batch(n, t, jnp.uint32(s)))(steps)
        idx, w = np.asarray(idx), np.asarray(w)
        assert np.all(w[:, :5] == 1) and np.all(w[:, 5:] == 0)
        for epoch in range(2):
            seen = np.sort(idx[4 * epoch : 4 * epoch + 4, :5].ravel())
            np.testing.assert_array_equal(seen, np.arange(n))  # every sample once per epoch
    a = np.asarray(rule.batch(n, jnp.int32(3), jnp.uint32(0))[0])
    b = np.asarray(rule.batch(n, jnp.int32(3), jnp.uint32(1))[0])
    assert not np.array_equal(a, b)
    rep = sj.SGD(batch_size=6, replace=True, max_batch_size=6)
    idx = np.asarray(rep.batch(n, jnp.int32(0), jnp.uint32(0))[0])
    assert idx.shape == (6,) and np.all((0 <= idx) & (idx < n))


def test_sgd_sweep_equals_a_numpy_loop_over_the_same_batches_and_is_reproducible():
    prob, X, y = regression()
    w0 = {"w": np.zeros((2, 4), np.float32)}
    kw = dict(num_steps=30, record=sj.Record(every=10, sharpness=None), rule=sj.SGD(batch_size=8),
              axes={"seed": [0, 3], "batch_size": [4, 16]})  # fmt: skip
    with jax.enable_x64(True):
        res = _sweep64(prob, [0.05, 0.1], {"w": w0["w"].astype(np.float64)}, **kw)
    assert res.dims == ("lr", "seed", "batch_size", "init")
    for i, lr in enumerate([0.05, 0.1]):
        for s, seed in enumerate([0, 3]):
            for b, bs in enumerate([4, 16]):
                rule = sj.SGD(batch_size=bs, max_batch_size=16)
                w = np.zeros(4)
                for t in range(30):
                    idx, mask = (np.asarray(a) for a in rule.batch(48, jnp.int32(t), jnp.uint32(seed)))
                    idx = idx[mask > 0]
                    grad = X[idx].T.astype(float) @ (X[idx].astype(float) @ w - y[idx]) / bs
                    w = w - lr * grad
                np.testing.assert_allclose(res.final_params["w"][i, s, b, 0], w, rtol=1e-9, atol=1e-12)
    again = sj.sweep(prob, [0.05, 0.1], w0, **kw)
    assert_bitwise_equal(sj.sweep(prob, [0.05, 0.1], w0, **kw), again)
    # the full batch is GD
    full = sj.sweep(prob, [0.05], w0, num_steps=30, record=sj.Record(every=10, sharpness=None), rule=sj.SGD(batch_size=48))
    gd = sj.sweep(prob, [0.05], w0, num_steps=30, record=sj.Record(every=10, sharpness=None))
    np.testing.assert_allclose(full.records["loss"], gd.records["loss"], rtol=1e-5)


def test_chunking_and_one_run_match_the_sweep_with_axes():
    prob, _, _ = regression()
    w0 = {"w": np.zeros((2, 4), np.float32)}
    kw = dict(num_steps=20, record=sj.Record(every=5, sharpness=None), rule=sj.SGD(batch_size=8),
              axes={"seed": [1, 2], "batch_size": [4, 8, 12]})  # fmt: skip
    whole = sj.sweep(prob, [0.05, 0.1], w0, batch_size=1, **kw)
    chunked = sj.sweep(prob, [0.05, 0.1], w0, batch_size=1, chunk_size=5, **kw)
    assert_bitwise_equal(whole, chunked)
    run = sj.one_run(prob, {"w": w0["w"][0]}, num_steps=20, record=kw["record"], rule=sj.SGD(batch_size=8, max_batch_size=12))
    out = run.compiled()(jnp.float32(0.1), {"w": w0["w"][1]}, hyper={"seed": 2, "batch_size": 4})
    np.testing.assert_array_equal(out.records["loss"], whole.records["loss"][1, 1, 0, 1])


def test_a_second_sweep_with_new_axis_values_does_not_recompile(trace_counter):
    kw = dict(num_steps=10, record=sj.Record(every=5, sharpness=None), rule=sj.Optax(optax.adam, b1=0.9))
    sj.sweep(QUAD, [0.1, 0.2], QUAD_INITS, axes={"b1": [0.5, 0.9]}, **kw)
    n = len(trace_counter)
    sj.sweep(QUAD, [0.3, 0.4], QUAD_INITS, axes={"b1": [0.6, 0.8]}, **kw)
    assert len(trace_counter) == n


def test_diverging_runs_along_an_axis_do_not_spoil_their_neighbours():
    res = sj.sweep(QUAD, [0.1], QUAD_INITS, num_steps=200, record=sj.Record(every=50, sharpness=None),
                   rule=sj.GD(groups=lambda p: "all"), axes={"all": [1.0, 3.0]})  # fmt: skip
    # η·m·8 = 0.8 is stable, 2.4 > 2 diverges
    assert not res.diverged[0, 0].any() and res.diverged[0, 1].all()
    assert np.all(np.isfinite(res.final["loss"][0, 0]))


@pytest.mark.parametrize(
    "axes,error,match",
    [
        ({"momentum": [0.9]}, ValueError, "names no hyperparameter"),
        ({"lr": [0.1]}, ValueError, "not an axis name"),
        ({"b1": []}, ValueError, "non-empty 1-D"),
        ({"b1": [[0.9]]}, ValueError, "non-empty 1-D"),
        ({"b1": [np.nan]}, ValueError, "finite"),
        ({"seed": [0.5]}, ValueError, "whole numbers"),
        ([("b1", [0.9])], TypeError, "axes must be a dict"),
    ],
)
def test_bad_axes_are_refused_before_compiling(axes, error, match, trace_counter):
    with pytest.raises(error, match=match):
        sj.sweep(QUAD, [0.1], QUAD_INITS, num_steps=10, rule=sj.Optax(optax.adam, b1=0.9), axes=axes)
    assert trace_counter == []


def test_sgd_needs_a_problem_with_samples_and_valid_batch_sizes():
    prob, _, _ = regression()
    w0 = {"w": np.zeros((1, 4), np.float32)}
    with pytest.raises(TypeError, match="SGD needs a problem with samples"):
        sj.sweep(QUAD, [0.1], QUAD_INITS, num_steps=10, rule=sj.SGD(batch_size=2))
    with pytest.raises(ValueError, match="batch_size must hold whole numbers"):
        sj.sweep(prob, [0.1], w0, num_steps=10, rule=sj.SGD(batch_size=2), axes={"batch_size": [4, 100]})
    with pytest.raises(ValueError, match="max_batch_size"):
        sj.sweep(prob, [0.1], w0, num_steps=10, rule=sj.SGD(batch_size=2, max_batch_size=4), axes={"batch_size": [8]})


@pytest.mark.slow
def test_checkpointed_sgd_sweep_with_axes_resumes_bit_for_bit(tmp_path):
    prob, _, _ = regression()
    w0 = {"w": np.zeros((2, 4), np.float32)}
    kw = dict(num_steps=40, record=sj.Record(every=5, sharpness=None), batch_size=2,
              rule=sj.Optax(optax.sgd, momentum=0.5), axes={"momentum": [0.0, 0.9]})  # fmt: skip
    ref = sj.sweep(prob, [0.02, 0.05], w0, **kw)
    seg = sj.sweep(prob, [0.02, 0.05], w0, **kw, out_dir=tmp_path, checkpoint_every=10)
    assert_bitwise_equal(seg, ref)
    again = sj.sweep(prob, [0.02, 0.05], w0, **kw, out_dir=tmp_path, checkpoint_every=10)  # loaded from disk
    assert_bitwise_equal(again, ref)
    with pytest.raises(ValueError, match="axes.momentum differ"):
        sj.sweep(prob, [0.02, 0.05], w0, **{**kw, "axes": {"momentum": [0.0, 0.5]}}, out_dir=tmp_path, checkpoint_every=10)


def test_a_family_parameter_of_the_problem_is_an_axis():
    from sweepjax.problems import RegularityFamily

    inits = np.array([[1.2, 0.4], [0.3, 1.5]], np.float32)
    kw = dict(num_steps=30, record=sj.Record(every=10), batch_size=1)
    res = sj.sweep(RegularityFamily(a=1.0, b=1), [0.1, 0.5], inits, axes={"a": [0.5, 1.0, 1.5]}, **kw)
    assert res.dims == ("lr", "a", "init")
    for k, a in enumerate([0.5, 1.0, 1.5]):
        alone = sj.sweep(RegularityFamily(a=a, b=1), [0.1, 0.5], inits, **kw)
        for name in alone.records:
            np.testing.assert_allclose(res.records[name][:, k], alone.records[name], rtol=1e-6, err_msg=name)
    run = sj.one_run(RegularityFamily(a=1.0, b=1), inits[0], num_steps=30, record=kw["record"])
    out = run(jnp.float32(0.5), inits[1], hyper={"a": 1.5})
    np.testing.assert_array_equal(out.records["loss"], res.records["loss"][1, 2, 1])


@pytest.mark.parametrize("n", [1, 2, 3, 17, 64, 65, 1797])
def test_the_epoch_shuffle_is_a_permutation_that_depends_on_the_key(n):
    from sweepjax._rules import shuffled

    perms = [np.asarray(shuffled(jnp.arange(n), jax.random.key(s), n)) for s in range(3)]
    for p in perms:
        np.testing.assert_array_equal(np.sort(p), np.arange(n))
    if n > 3:
        assert not np.array_equal(perms[0], perms[1]) and not np.array_equal(perms[0], np.arange(n))


def test_an_axis_with_a_column_per_init_runs_each_init_at_its_own_values():
    cols = np.array([[0.0, 0.5], [0.9, 0.2]])  # (n_momentum, n_init)
    kw = dict(num_steps=30, record=sj.Record(every=10, sharpness=None), batch_size=1)
    res = sj.sweep(QUAD, [0.1, 0.3], QUAD_INITS, rule=sj.Optax(optax.sgd, momentum=0.0), axes={"momentum": cols}, **kw)
    assert res.dims == ("lr", "momentum", "init") and res.axes["momentum"].shape == (2, 2)
    for a in range(2):
        for j in range(2):
            alone = sj.sweep(QUAD, [0.1, 0.3], QUAD_INITS[j : j + 1], rule=sj.Optax(optax.sgd, momentum=cols[a, j]), **kw)
            np.testing.assert_array_equal(res.records["loss"][:, a, j], alone.records["loss"][:, 0])
    with pytest.raises(ValueError, match="pick a row with isel"):
        res.sel(momentum=0.5)
    np.testing.assert_array_equal(res.isel(momentum=1).records["loss"], res.records["loss"][:, 1])
    with pytest.raises(ValueError, match=r"\(n, n_init\)"):
        sj.sweep(QUAD, [0.1], QUAD_INITS, num_steps=10, rule=sj.Optax(optax.sgd, momentum=0.0),
                 axes={"momentum": np.zeros((2, 3))})  # fmt: skip
