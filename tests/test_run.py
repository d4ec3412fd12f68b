"""one_run: the sweep's program for a single (η, θ₀), equal to the sweep's run at vmap width 1."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import sweepjax as sj
from sweepjax.problems import ProductLoss


def _affine(p, X):
    return X @ p["w"] + p["b"]


X, Y = np.linspace(-1, 1, 12).reshape(4, 3), np.array([0.5, -1.0, 2.0, 0.1])
CASES = {
    "product, dense, flat scalars": (ProductLoss("sqrt"), ProductLoss.init_grid([2.0, 9.0]), sj.Record(every=5), None),
    "model with data, lanczos, momentum": (
        sj.problems.Supervised({"w": np.zeros(3), "b": np.zeros(())}, X, Y, apply=_affine),
        {"w": np.array([[1.0, -0.5, 0.3], [0.2, 0.8, -1.0]]), "b": np.array([0.4, -0.7])},
        sj.Record(every=4, sharpness=sj.Lanczos(order=3)), lambda lr: optax.sgd(lr, momentum=0.9),
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_a_single_run_equals_the_sweeps_run_bitwise(case):
    problem, inits, record, optimizer = CASES[case]
    lrs, budgets = np.array([0.05, 0.3, 25.0]), np.array([40, 17, 40])  # a budget, and a divergence
    res = sj.sweep(problem, lrs, inits, num_steps=40, record=record, optimizer=optimizer, max_steps=budgets, batch_size=1)
    one = jax.tree.map(lambda a: a[0], inits)
    run = sj.one_run(problem, one, num_steps=40, record=record, optimizer=optimizer).compiled()
    assert res.diverged.any() and not res.diverged.all()
    for i, lr in enumerate(lrs):
        for j in range(res.shape[1]):
            out = run(lr, jax.tree.map(lambda a, j=j: a[j], inits), budgets[i])
            for name in res.records:
                np.testing.assert_array_equal(out.records[name], res.records[name][i, j], err_msg=name)
                np.testing.assert_array_equal(out.final[name], res.final[name][i, j], err_msg=name)
            for a, b in zip(jax.tree.leaves(out.params), jax.tree.leaves(res.final_params), strict=True):
                np.testing.assert_array_equal(a, b[i, j])
            assert bool(out.diverged) == bool(res.diverged[i, j])
            if res.diverged[i, j]:
                assert int(out.diverged_step) == res.diverged_step[i, j]


def test_new_values_do_not_recompile(trace_counter):
    run = sj.one_run(ProductLoss("rsym"), np.ones(2), num_steps=20, record=sj.Record(every=10)).compiled()
    run(0.1, np.array([0.5, 2.0]))
    run(0.2, np.array([1.5, -2.0]))
    assert len(trace_counter) == 1
    run(0.3, np.array([0.1, 3.0]), 7)  # with a budget: one more signature
    run(0.4, np.array([0.2, 1.0]), 12)  # a new budget value is traced data
    assert len(trace_counter) == 2


def test_float64_under_x64():
    p = ProductLoss("sqrt")
    with jax.enable_x64(True):
        out = sj.one_run(p, np.ones(2), num_steps=10, record=sj.Record(every=5), dtype=jnp.float64)(0.1, np.array([0.5, 3.0]))
        assert out.records["loss"].dtype == jnp.float64 and out.params.dtype == jnp.float64


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(num_steps=15, record=sj.Record(every=10)), ValueError, "num_steps=15 must be a multiple of record.every=10"),
        (dict(num_steps=0), ValueError, "num_steps must be a positive int"),
        (dict(num_steps=10, dtype=jnp.float16), ValueError, "dtype must be float32 or float64"),
        (dict(num_steps=10, record="every=1"), TypeError, "record must be a sweepjax.Record"),
        (dict(num_steps=10, optimizer=3), TypeError, "optimizer must be None, an optax GradientTransformation"),
        (dict(num_steps=10, divergence_threshold=-1.0), ValueError, "divergence_threshold must be a positive number"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, error, words):
    with pytest.raises(error, match=words):
        sj.one_run(ProductLoss("sqrt"), np.ones(2), **kwargs)
    with pytest.raises(TypeError, match="problem must be a sweepjax problem"):
        sj.one_run(lambda th: th @ th, np.ones(2), num_steps=10)
