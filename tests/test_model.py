"""Supervised: any equinox model (or apply function) + data + loss as a sweepable problem."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import sweepjax as sj
from sweepjax.problems import Objective, Supervised, stack_inits

RNG = np.random.default_rng(1)
X = RNG.normal(size=(8, 3)).astype(np.float32)
Y = np.tanh(X @ np.array([1.0, -0.5, 0.3], np.float32)).astype(np.float32)
SIGNS = np.array([1, -1, 1, 1, -1, 1, -1, -1], np.float32)


def make_mlp(key):
    return eqx.nn.MLP(3, "scalar", 4, 1, activation=jnp.tanh, key=key)


MLP = make_mlp(jax.random.key(0))
_MLP_STATIC = eqx.partition(MLP, eqx.is_inexact_array)[1]


def hand_written_loss(params):
    model = eqx.combine(params, _MLP_STATIC)
    return jnp.mean(0.5 * (jax.vmap(model)(jnp.asarray(X)) - jnp.asarray(Y)) ** 2)




@pytest.mark.slow
def test_mlp_sweep_sharpness_matches_dense_hessian_and_objective():
    problem = Supervised(MLP, X, Y, loss="mse", init_fn=make_mlp)
    inits = problem.init(jax.random.key(1), 2)
    assert jax.tree.structure(inits) == jax.tree.structure(problem.param_shapes())
    rec = sj.Record(every=5, sharpness=sj.DenseEigh())
    lrs = np.array([0.05, 0.3])
    res = sj.sweep(problem, lrs, inits, num_steps=20, record=rec)
    assert not res.diverged.any()
    assert np.all(np.diff(res.records["loss"], axis=-1) < 0)  # small steps on a smooth loss
    unravel = ravel_pytree(jax.tree.map(lambda a: jnp.asarray(a[0, 0]), res.final_params))[1]
    dense_hessian = jax.jit(jax.hessian(lambda v: problem.loss(unravel(v))))
    for i in range(2):
        for j in range(2):
            params = jax.tree.map(lambda a, i=i, j=j: jnp.asarray(a[i, j]), res.final_params)
            hess = dense_hessian(ravel_pytree(params)[0])
            top = np.linalg.eigvalsh(np.asarray(hess, np.float64))[-1]
            assert res.final["sharpness"][i, j] == pytest.approx(top, rel=1e-4, abs=1e-5)
            assert res.final["loss"][i, j] == pytest.approx(float(hand_written_loss(params)), rel=1e-6)
    # the same model written by hand as an Objective: the same trajectories
    ref = sj.sweep(Objective(hand_written_loss), lrs, inits, num_steps=20, record=sj.Record(every=5, sharpness=None))
    np.testing.assert_allclose(res.records["loss"], ref.records["loss"], rtol=1e-5)
    for a, b in zip(jax.tree.leaves(res.final_params), jax.tree.leaves(ref.final_params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_new_data_does_not_recompile(trace_counter):
    rec = sj.Record(every=5, sharpness=None)
    p1 = Supervised(MLP, X, Y, loss="mse", init_fn=make_mlp)
    inits = p1.init(jax.random.key(0), 2)
    a = sj.sweep(p1, [0.1], inits, num_steps=10, record=rec)
    assert len(trace_counter) == 1
    # new data of the same shapes, a new (same-structure) model instance, new inits: same program
    p2 = Supervised(make_mlp(jax.random.key(7)), -2.0 * X, Y + 1.0, loss="mse", init_fn=make_mlp)
    b = sj.sweep(p2, [0.2], stack_inits([make_mlp(jax.random.key(k)) for k in (3, 4)]), num_steps=10, record=rec)
    assert len(trace_counter) == 1
    assert not np.allclose(a.records["loss"], b.records["loss"])


def linear_apply(params, X):
    return X @ params["w"] + params["b"]


@pytest.mark.parametrize("loss,ell", [("logistic", lambda z: np.logaddexp(0.0, -z)), ("exp", lambda z: np.exp(-z))])
def test_apply_function_and_sign_losses(loss, ell):
    params = {"w": jnp.asarray([0.5, -1.0, 2.0]), "b": jnp.asarray(0.1)}
    problem = Supervised(params, X, SIGNS, loss=loss, apply=linear_apply)
    z = SIGNS * (X @ np.asarray(params["w"]) + 0.1)
    assert float(problem.loss(params)) == pytest.approx(np.mean(ell(z)), rel=1e-5)
    assert float(problem.observables(params)["margin"]) == pytest.approx(z.min(), rel=1e-5)
    inits = stack_inits([params, jax.tree.map(lambda a: -a, params)])
    res = sj.sweep(problem, [0.5], inits, num_steps=4, record=sj.Record(every=2))
    assert res.records["margin"].shape == (1, 2, 3)


def test_custom_loss_and_observables():
    def huber(f, y):
        r = jnp.abs(f - y)
        return jnp.where(r < 1.0, 0.5 * r**2, r - 0.5)

    problem = Supervised(MLP, X, Y, loss=huber, observables={"first_bias": lambda m: m.layers[0].bias[0]})
    params = problem.params_of(MLP)
    obs = problem.observables(params)
    assert set(obs) == {"first_bias"} and float(obs["first_bias"]) == float(MLP.layers[0].bias[0])
    assert np.isfinite(float(problem.loss(params)))
    with pytest.raises(NotImplementedError, match="init_fn"):
        problem.init(jax.random.key(0), 2)


def test_non_trainable_arrays_are_traced_constants():
    spec = eqx.tree_at(lambda n: n.layers[-1], jax.tree.map(eqx.is_inexact_array, MLP), False)
    problem = Supervised(MLP, X, Y, trainable=spec)
    assert problem.params_like.layers[-1].weight is None
    assert problem.constants.layers[-1].weight.shape == (1, 4)
    expected = hand_written_loss(eqx.filter(MLP, eqx.is_inexact_array))
    assert float(problem.loss(problem.params_of(MLP))) == pytest.approx(float(expected))


@pytest.mark.parametrize(
    "kwargs,err,match",
    [
        ({"X": X[:5]}, ValueError, "samples"),
        ({"X": np.where(X > 1, np.nan, X)}, ValueError, "X"),
        ({"y": np.full(8, np.inf)}, ValueError, "y"),
        ({"y": Y, "loss": "logistic"}, ValueError, "y"),
        ({"y": np.zeros(8), "loss": "exp"}, ValueError, "y"),
        ({"loss": "hinge"}, ValueError, "loss"),
        ({"loss": 3}, ValueError, "loss"),
        ({"model": {"w": jnp.zeros(3)}}, TypeError, "model"),
        ({"apply": 3}, TypeError, "apply"),
        ({"X": np.zeros((0, 3)), "y": np.zeros(0)}, ValueError, "X"),
        ({"observables": {"a": 1.0}}, TypeError, "observables"),
    ],
)
def test_rejects_bad_input(kwargs, err, match):
    args = {"model": MLP, "X": X, "y": Y, "loss": "mse"} | kwargs
    with pytest.raises(err, match=match):
        Supervised(**args)


def test_stack_inits_rejects_bad_input():
    with pytest.raises(ValueError, match="models"):
        stack_inits([])
    with pytest.raises(ValueError, match="structure"):
        stack_inits([MLP, eqx.nn.MLP(3, "scalar", 5, 2, key=jax.random.key(0))])
