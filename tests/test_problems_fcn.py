"""FullyConnected: a masked max-width × max-depth network equals the small network made of its leading
blocks (loss, gradient, dense Hessian spectrum, GD trajectory), so width and depth can be named axes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import sweepjax as sj
from sweepjax._rules import with_hyperparameters
from sweepjax._trajectory import cast_floats
from sweepjax.problems import FullyConnected, make


def data(n=12, d=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(np.float32), rng.standard_normal((n, k)).astype(np.float32)


def numpy_forward(params, X, width, depth, act, sw=np.sqrt(2.0), sb=0.0):
    """The w × d network written out in NumPy (NTK parameterization), from the leading blocks."""
    phi = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh, "linear": lambda z: z}[act]
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    h = phi(sw * X @ p["w_in"][:width].T / np.sqrt(X.shape[1]) + sb * p["b"][0, :width])
    for layer in range(1, depth):
        h = phi(sw * h @ p["w_hidden"][layer - 1, :width, :width].T / np.sqrt(width) + sb * p["b"][layer, :width])
    return h @ p["w_out"][:, :width].T / np.sqrt(width) + sb * p["b_out"]


def dense_spectrum(problem, params):
    """Every eigenvalue of the dense float64 Hessian (under x64)."""
    flat, unravel = ravel_pytree(cast_floats(params, jnp.float64))
    problem = cast_floats(problem, jnp.float64)
    return np.linalg.eigvalsh(np.asarray(jax.hessian(lambda v: problem.loss(unravel(v)))(flat)))


@pytest.mark.parametrize("act", ["relu", "tanh", "linear"])
@pytest.mark.parametrize("width,depth", [(2, 1), (3, 2), (6, 3)])
def test_masked_network_is_the_small_network(act, width, depth):
    X, Y = data()
    big = FullyConnected(X, Y, max_width=6, max_depth=3, activation=act, bias_std=0.3)
    params = jax.tree.map(lambda a: a[0], big.init(jax.random.key(1), 1))
    at = with_hyperparameters(big, {"width": width, "depth": depth})
    small = FullyConnected(X, Y, max_width=width, max_depth=depth, activation=act, bias_std=0.3)
    sub = jax.tree.map(jnp.asarray, small.restrict(params, width, depth))
    sw = np.sqrt(2.0) if act == "relu" else 1.0
    f = numpy_forward(params, X.astype(np.float64), width, depth, act, sw, 0.3)
    np.testing.assert_allclose(at.outputs(params), f, rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(at.loss(params), small.loss(sub), rtol=1e-6)
    # the gradient: the small network's on the leading blocks, exactly 0 elsewhere
    g_big, g_small = jax.grad(at.loss)(params), jax.grad(small.loss)(sub)
    for k, v in small.restrict(g_big, width, depth).items():
        np.testing.assert_allclose(v, g_small[k], rtol=1e-5, atol=1e-6, err_msg=k)
    total = sum(float(jnp.sum(v**2)) for v in jax.tree.leaves(g_big))
    kept = sum(float(np.sum(np.asarray(v) ** 2)) for v in small.restrict(g_big, width, depth).values())
    np.testing.assert_allclose(total, kept, rtol=1e-6)
    # the Hessian spectrum: the small network's nonzero eigenvalues, plus zeros
    with jax.enable_x64():
        eb, es = (dense_spectrum(problem, point) for problem, point in ((at, params), (small, sub)))
    np.testing.assert_allclose(eb[-1], es[-1], rtol=1e-9)
    np.testing.assert_allclose(eb[0], min(es[0], 0.0), atol=1e-9)
    assert np.count_nonzero(np.abs(eb) > 1e-9) == np.count_nonzero(np.abs(es) > 1e-9)


def test_width_and_depth_as_named_axes_match_small_networks():
    """One sweep over (lr, width, depth, init) with a step size per run c/λ₀: each slice equals GD on the
    small network; the masked weights never move."""
    X, Y = data(n=16)
    big = FullyConnected(X, Y, max_width=5, max_depth=3)
    inits = big.init(jax.random.key(2), 2)
    axes = {"width": [2, 5], "depth": [1, 3]}
    lam0 = sj.initial_sharpness(big, inits, axes=axes, sharpness=sj.DenseEigh(), dtype=jnp.float64)
    assert lam0.shape == (2, 2, 2)
    c = np.array([0.5, 1.5])
    rec = sj.Record(every=5, sharpness=sj.DenseEigh())
    res = sj.sweep(big, c[:, None, None, None] / lam0[None], inits, num_steps=10, axes=axes, record=rec, dtype=jnp.float64)
    for wi, w in enumerate(axes["width"]):
        for di, d in enumerate(axes["depth"]):
            small = FullyConnected(X, Y, max_width=w, max_depth=d)
            rows = [small.restrict({k: v[j] for k, v in inits.items()}, w, d) for j in range(2)]
            sub = {k: np.stack([r[k] for r in rows]) for k in rows[0]}
            one = sj.sweep(small, c[:, None] / lam0[wi, di][None], sub, num_steps=10, record=rec, dtype=jnp.float64)
            np.testing.assert_allclose(one["initial_sharpness"][0], lam0[wi, di], rtol=1e-9)
            for k in ("loss", "sharpness"):
                np.testing.assert_allclose(res.records[k][:, wi, di], one.records[k], rtol=1e-9, err_msg=f"{k} {w} {d}")
            final = res.isel(width=wi, depth=di).final_params
            for j in range(2):
                for ci in range(2):
                    moved = {k: np.asarray(final[k][ci, j] - inits[k][j]) for k in inits}
                    frozen = {k: np.asarray(v).copy() for k, v in moved.items()}
                    for k, v in small.restrict(moved, w, d).items():  # zero the leading blocks: the rest must not move
                        idx = tuple(slice(0, n) for n in v.shape)
                        frozen[k][idx] = 0.0
                    assert all(np.all(v == 0) for v in frozen.values())


def test_registry_and_refused_settings():
    X, Y = data()
    assert isinstance(make("fully_connected", X=X, Y=Y, max_width=4), FullyConnected)
    with pytest.raises(ValueError, match="max_width"):
        FullyConnected(X, Y, max_width=0)
    with pytest.raises(ValueError, match="width ≤ max_width"):
        FullyConnected(X, Y, max_width=4, width=5)
    with pytest.raises(ValueError, match="activation"):
        FullyConnected(X, Y, max_width=4, activation="gelu")
    with pytest.raises(ValueError, match="weight_std"):
        FullyConnected(X, Y, max_width=4, weight_std=0.0)
    with pytest.raises(ValueError, match="Y must have shape"):
        FullyConnected(X, Y[:3], max_width=4)
    p = FullyConnected(X, Y, max_width=4, max_depth=2)
    inits = p.init(jax.random.key(0), 1)
    for axes, match in (({"width": [2, 5]}, r"axes\['width'\] must hold whole numbers in \[1, max_width = 4\]"),
                        ({"depth": [0]}, r"axes\['depth'\].*max_depth = 2"), ({"width": [2.5]}, "whole numbers")):  # fmt: skip
        with pytest.raises(ValueError, match=match):
            sj.sweep(p, [0.1], inits, num_steps=2, axes=axes)


def test_uv_model_catapults_at_2_and_diverges_at_4():
    """Lewkowycz et al.'s two-layer linear network on one example (x = 1, y = 0): at large width the loss first
    rises above L₀ for c = η·λ₀ > 2 and GD diverges for c > 4; one search per criterion over (width, init)."""
    X, Y = np.ones((1, 1), np.float32), np.zeros((1, 1), np.float32)
    uv = FullyConnected(X, Y, max_width=4096, max_depth=1, activation="linear")
    inits, axes = uv.init(jax.random.key(0), 2), {"width": [4096.0]}
    lam0 = sj.initial_sharpness(uv, inits, axes=axes, sharpness=sj.Lanczos(order=4))
    ntk = np.array([float(jnp.sum(inits["w_in"][j] ** 2) + jnp.sum(inits["w_out"][j] ** 2)) / 4096 for j in range(2)])
    np.testing.assert_allclose(lam0[0], ntk, rtol=0.05)  # λ₀ = (‖u‖² + ‖v‖²)/m + O(f₀)

    def rose(res):
        return (np.nanmax(res["loss"][..., 1:], axis=-1) > res["loss"][..., 0]) | res.diverged

    kw = dict(axes=axes, rounds=7, dtype=jnp.float64)
    c_max = sj.find_boundary(uv, inits, (1 / lam0, 10 / lam0), "diverges", num_steps=500, **kw).lr * lam0
    c_loss = sj.find_boundary(
        uv, inits, (1 / lam0, 3.9 / lam0), rose, num_steps=200, record=sj.Record(every=1, sharpness=None), **kw
    )
    np.testing.assert_allclose(c_max, 4.0, atol=0.04)
    np.testing.assert_allclose(c_loss.lr * lam0, 2.0, atol=0.02)
