"""WangTwoLayer / WangThreeLayer and the shared pieces in problems._nn: shapes, batch norm, init norms,
the loss against a NumPy forward pass, a dense-Hessian sharpness check on a tiny net, bad inputs."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from sweepjax._curvature import Lanczos, sharpness
from sweepjax.problems import WangThreeLayer, WangTwoLayer
from sweepjax.problems._nn import ACTIVATIONS, LOSSES, batch_norm

RNG = np.random.default_rng(0)
X = RNG.normal(size=(7, 5)).astype(np.float32)
Y = np.eye(3, dtype=np.float32)[RNG.integers(0, 3, size=7)]
V = np.array([[1.0, -1.0], [-1.0, -1.0], [1.0, 1.0]], np.float32)

NP_ACT = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0), "relu3": lambda z: np.maximum(z, 0) ** 3}
NP_LOSS = {"mse": lambda r: 0.5 * r**2, "huber": lambda r: np.where(np.abs(r) <= 1, 0.5 * r**2, np.abs(r) - 0.5)}


def _np_bn(z):
    return (z - z.mean(0)) / np.sqrt(z.var(0) + 1e-5)


def test_tables():
    assert set(ACTIVATIONS) == {"tanh", "relu", "relu3"} and set(LOSSES) == {"mse", "huber"}
    z = jnp.array([-2.0, -0.5, 0.5, 2.0])
    np.testing.assert_allclose(LOSSES["huber"](z), [1.5, 0.125, 0.125, 1.5])
    np.testing.assert_allclose(ACTIVATIONS["relu3"](z), [0, 0, 0.125, 8.0])


def test_batch_norm_zero_mean_unit_variance():
    z = jnp.asarray(RNG.normal(3.0, 5.0, size=(50, 4)), jnp.float32)
    out = np.asarray(batch_norm(z))
    np.testing.assert_allclose(out.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.var(0), 1.0, rtol=1e-4)  # σ² / (σ² + ε)
    np.testing.assert_allclose(out, _np_bn(np.asarray(z, np.float64)), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("bn", [False, True])
def test_two_layer_matches_numpy(act, loss, bn):
    p = WangTwoLayer(X, Y, width=4, activation=act, loss=loss, batch_norm=bn)
    params = p.init(jax.random.key(1), 1)
    params = jax.tree.map(lambda a: a[0], params)
    W1, W2 = (np.asarray(params[k], np.float64) for k in ("W1", "W2"))
    z = X.astype(np.float64) @ W1.T
    out = NP_ACT[act](_np_bn(z) if bn else z) @ W2.T
    expected = np.mean(np.sum(NP_LOSS[loss](out - Y), axis=1))
    np.testing.assert_allclose(float(p.loss(params)), expected, rtol=1e-5)


@pytest.mark.parametrize("bn", [False, True])
def test_three_layer_matches_numpy(bn):
    p = WangThreeLayer(X, Y, V, width=4, batch_norm=bn)  # defaults: relu3 + huber
    params = jax.tree.map(lambda a: a[0], p.init(jax.random.key(2), 1, norms=(2.0, 1.5)))
    assert params["W1"].shape == (4, 5) and params["W2"].shape == (2, 4)
    z = X.astype(np.float64) @ np.asarray(params["W1"], np.float64).T @ np.asarray(params["W2"], np.float64).T
    out = NP_ACT["relu3"](_np_bn(z) if bn else z) @ V.T
    expected = np.mean(np.sum(NP_LOSS["huber"](out - Y), axis=1))
    np.testing.assert_allclose(float(p.loss(params)), expected, rtol=1e-5)
    assert set(p.observables(params)) == {"norm_W1", "norm_W2"}


@pytest.mark.slow
def test_init_shapes_bounds_and_norms():
    p = WangTwoLayer(X, Y, width=6)
    shapes = p.param_shapes()
    assert shapes["W1"].shape == (6, 5) and shapes["W2"].shape == (3, 6)
    raw = p.init(jax.random.key(0), 4)
    assert raw["W1"].shape == (4, 6, 5) and raw["W2"].shape == (4, 3, 6)
    assert float(jnp.max(jnp.abs(raw["W1"]))) <= 1 / np.sqrt(5) and float(jnp.max(jnp.abs(raw["W2"]))) <= 1 / np.sqrt(6)
    scaled = p.init(jax.random.key(0), 4, norms=(10.0, 40.0))
    obs = jax.vmap(p.observables)(scaled)
    np.testing.assert_allclose(obs["norm_W1"], 10.0, rtol=1e-5)
    np.testing.assert_allclose(obs["norm_W2"], 40.0, rtol=1e-5)
    # same draw, rescaled: directions agree
    np.testing.assert_allclose(scaled["W1"][0] / 10.0, raw["W1"][0] / jnp.linalg.norm(raw["W1"][0]), rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="norms"):
        p.init(jax.random.key(0), 2, norms=(1.0,))
    with pytest.raises(ValueError, match="norms"):
        p.init(jax.random.key(0), 2, norms=(1.0, -2.0))


@pytest.mark.slow
def test_dense_hessian_sharpness():
    """A tiny net with BN (2·3 + 3·1 = 9 parameters): Lanczos on Hessian-vector products (what the sweep
    records) equals the top eigenvalue of the dense jax.hessian, which is symmetric."""
    Xs, Ys = X[:, :2], Y[:, :1]
    p = WangTwoLayer(Xs, Ys, width=3, activation="tanh", loss="mse", batch_norm=True)
    th = jax.tree.map(lambda a: a[0], p.init(jax.random.key(3), 1, norms=(1.5, 1.0)))
    flat, unravel = ravel_pytree(th)
    H = np.asarray(jax.hessian(lambda v: p.loss(unravel(v)))(flat), np.float64)
    np.testing.assert_allclose(H, H.T, atol=1e-4)
    eig = eqx.filter_jit(lambda q, t: sharpness(q.loss, t, Lanczos(order=9)))(p, th)
    np.testing.assert_allclose(float(eig.value), np.linalg.eigvalsh(H)[-1], rtol=1e-3)


def test_bad_inputs():
    with pytest.raises(ValueError, match="activation"):
        WangTwoLayer(X, Y, activation="gelu")
    with pytest.raises(ValueError, match="loss"):
        WangTwoLayer(X, Y, loss="l1")
    with pytest.raises(ValueError, match="Y"):
        WangTwoLayer(X, Y[:5])
    with pytest.raises(ValueError, match="X"):
        WangTwoLayer(X[:, 0], Y)
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="X must be finite"):
        WangTwoLayer(bad, Y)
    badY = Y.copy()
    badY[1, 1] = np.inf
    with pytest.raises(ValueError, match="Y must be finite"):
        WangTwoLayer(X, badY)
    with pytest.raises(ValueError, match="width"):
        WangTwoLayer(X, Y, width=0)
    with pytest.raises(ValueError, match="batch_norm"):
        WangTwoLayer(X, Y, batch_norm=1)
    with pytest.raises(ValueError, match="V must have shape"):
        WangThreeLayer(X, Y, V[:2])
    with pytest.raises(ValueError, match="V must be finite"):
        WangThreeLayer(X, Y, np.full((3, 2), np.nan))
    with pytest.raises(ValueError, match="activation"):
        WangThreeLayer(X, Y, V, activation="sigmoid")


def test_new_data_does_not_recompile():
    @eqx.filter_jit
    @eqx.debug.assert_max_traces(max_traces=1)
    def loss(p, params):
        return p.loss(params)

    p1 = WangTwoLayer(X, Y, width=4, activation="relu", batch_norm=True)
    params = jax.tree.map(lambda a: a[0], p1.init(jax.random.key(0), 1))
    loss(p1, params)
    loss(WangTwoLayer(X + 1.0, Y[::-1], width=4, activation="relu", batch_norm=True), params)
